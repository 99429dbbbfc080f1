// How every part of the project connects to a run's bus: one place for the connection
// policy (a server list, the login, TLS verification, reconnecting forever, pings), so the
// worker, the operator's controllers and the admission service behave alike on the hub.
import { connect } from "@nats-io/transport-node";
import { nkeyAuthenticator } from "@nats-io/nats-core";
import type { Authenticator, NatsConnection, TlsOptions } from "@nats-io/nats-core";

export interface BusTls {
  /** PEM file of the CA that signed the servers' certificates. */
  caFile?: string;
  /** The same as PEM text. */
  caPem?: string;
}

export interface BusConnectOptions {
  /** nats://host:port or tls://host:port, comma-separated for several servers. */
  servers: string;
  /** Connection name shown by the server's monitoring. */
  name: string;
  /** NATS user nkey seed ("SU..."), for the static users (operator, admission service). */
  nkeySeed?: string | Uint8Array;
  /** Any other login, e.g. the hotkey signature of protocol/bus/hotkey-auth.ts. */
  authenticator?: Authenticator;
  /** Verify the servers against this CA and refuse plain text. */
  tls?: BusTls;
  /** Deadline of the first connect and of requests (ms, default 10 s). */
  timeoutMs?: number;
  /** Wait between reconnect attempts (ms, default 250). */
  reconnectWaitMs?: number;
  /** Keep trying when no server answers the first connect (default true). */
  waitOnFirstConnect?: boolean;
}

export function connectBus(o: BusConnectOptions): Promise<NatsConnection> {
  return connect({
    servers: o.servers.split(",").map((s) => s.trim()),
    name: o.name,
    authenticator: authenticators(o),
    tls: tlsOptions(o.tls),
    maxReconnectAttempts: -1,
    reconnectTimeWait: o.reconnectWaitMs ?? 250,
    waitOnFirstConnect: o.waitOnFirstConnect ?? true,
    timeout: o.timeoutMs ?? 10_000,
    pingInterval: 5_000,
  });
}

function authenticators(o: BusConnectOptions): Authenticator | Authenticator[] | undefined {
  const all: Authenticator[] = [];
  if (o.nkeySeed) {
    const seed = typeof o.nkeySeed === "string" ? new TextEncoder().encode(o.nkeySeed) : o.nkeySeed;
    all.push(nkeyAuthenticator(seed));
  }
  if (o.authenticator) all.push(o.authenticator);
  return all.length > 1 ? all : all[0];
}

/**
 * The transport's TLS options. An object (even empty) makes the client insist on TLS;
 * hostname and chain verification stay on (the transport's default rejectUnauthorized).
 */
export function tlsOptions(tls: BusTls | undefined): TlsOptions | undefined {
  if (!tls) return undefined;
  if (tls.caFile && tls.caPem) throw new Error("tls: give caFile or caPem, not both");
  return tls.caFile ? { caFile: tls.caFile } : tls.caPem ? { ca: tls.caPem } : {};
}
