// The worker's login to the run's bus and what it says when the login fails. With
// --bus-auth hotkey the worker signs each server nonce with its hotkey and the run's
// admission service (NATS auth callout, docs/admission.md) admits it by its registration
// on chain; with nkey it presents a NATS user seed handed out beforehand. A refused login
// is not a reason to exit: the chain may register the hotkey later, the admission service
// may be restarting. So the worker says why on its log and /readyz and tries again.
import type { KeyringPair } from "@polkadot/keyring/types";
import { isTransient } from "../protocol/bus/client.ts";
import type { BusClient, BusClientOptions } from "../protocol/bus/client.ts";
import { hotkeyAuthenticator } from "../protocol/bus/hotkey-auth.ts";
import type { BusLogin, Role } from "./config.ts";
import type { Log } from "./log.ts";

/** Who logs in where: enough to build the client options and to explain a refusal. */
export interface LoginTarget {
  servers: string;
  run: string;
  /** The run's subnet, named in a refusal (registration there is what admission checks). */
  netuid: number;
  role: Role;
  pair: KeyringPair;
  login: BusLogin;
  /** --bus-ca */
  caFile?: string;
}

/** The NATS user nkey seed (SU...) in a seed or .creds file's text, if there is one. */
export const nkeySeedIn = (text: string): string | undefined => /\bSU[A-Z2-7]{56}\b/.exec(text)?.[0];

/** BusClient options for a login; `nkeySeed` is the seed read from the login's file (nkey only). */
export function busClientOptions(t: LoginTarget, nkeySeed?: string): BusClientOptions {
  const o: BusClientOptions = { servers: t.servers, run: t.run, name: `${t.role}-${t.pair.address}` };
  if (t.login.kind === "hotkey") o.authenticator = hotkeyAuthenticator(t.pair, { run: t.run, role: t.role });
  else o.nkeySeed = nkeySeed;
  if (t.caFile) o.tls = { caFile: t.caFile };
  return o;
}

/**
 * Why a connection failed or closed, in words a provider can act on. Pure. Only the
 * error's kind and message are used: nats.js errors carry no credentials, and the
 * worker's own files are named, never read out.
 */
export function busProblem(
  err: unknown,
  t: Pick<LoginTarget, "servers" | "netuid" | "role" | "pair" | "login">,
): string {
  if (err === undefined || err === null) return `the bus connection at ${t.servers} closed`;
  const e = err as { name?: string; message?: string };
  const said = (e.message ?? String(err)).trim();
  const who =
    t.login.kind === "hotkey"
      ? `hotkey ${t.pair.address} as ${t.role}`
      : `the NATS user in ${t.login.credsFile}`;
  if (e.name === "AuthorizationError" || /authorization violation/i.test(said)) {
    const hint =
      t.login.kind === "hotkey"
        ? `the run's admission service refused it or did not answer in time: is the hotkey registered on netuid ${t.netuid}` +
          (t.role === "validator"
            ? " with a validator permit (or named in the service's --validators)"
            : "") +
          "? The service's covenant_admission_decisions_total counts refusals by reason"
        : "is this user in the run's account?";
    return `the bus refused the login of ${who}: ${said.toLowerCase()} (${hint})`;
  }
  if (e.name === "UserAuthenticationExpiredError")
    return `the bus login of ${who} expired and was not renewed (${said.toLowerCase()})`;
  if (/sent no nonce/i.test(said))
    return `the bus at ${t.servers} is not set up for hotkey logins (its servers send no nonce): use the run's hub, or --bus-auth nkey with --nats-creds`;
  if (/certificate|self[- ]signed|CERT_|UNABLE_TO_VERIFY|\btls\b/i.test(said))
    return `TLS with the bus at ${t.servers} failed: ${said} (is --bus-ca the CA of the run's servers?)`;
  return `the bus connection at ${t.servers} failed: ${said}`;
}

/**
 * Whether an operation failed because the bus did not answer in time rather than refused it:
 * a transient error, or BusClient giving up its own retries of one (they span about 5 s;
 * after a server of the hub crashes, its streams can take longer to elect new leaders).
 */
export function busDidNotAnswer(err: unknown): boolean {
  return isTransient(err) || /failed after \d+ attempts/.test(String((err as Error)?.message ?? ""));
}

/**
 * Milliseconds before retry `attempt` (0-based): 1 s doubling to 60 s, then 60 s, each
 * scaled by 0.8..1.2 so that peers refused together (the chain was away) come back spread out.
 */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.min(attempt, 6));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Resolves after `ms`, or at once when `signal` aborts; true when the whole wait passed. */
export function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve(!signal.aborted);
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

export interface ConnectLoop {
  /** One connection attempt: BusClient.connect with the login's options. */
  connect(): Promise<BusClient>;
  /** Turns a failure into the message logged and shown on /readyz. */
  problem(err: unknown): string;
  /** Called with each failure's message, for the readiness reason while not connected. */
  onProblem(why: string): void;
  log: Log;
  signal: AbortSignal;
  /** Log that it is still connecting after this long (default 30 s): a bus that never answers is silent otherwise. */
  quietMs?: number;
  delayMs?: (attempt: number) => number;
}

/**
 * Connects, trying again with backoff after each refused or failed attempt, until it is in
 * or `signal` aborts (then undefined). nats.js itself keeps dialling a server that does not
 * answer (waitOnFirstConnect), and gives up on a login the server refused twice in a row:
 * that refusal is what comes back here.
 */
export async function connectWithRetry(c: ConnectLoop): Promise<BusClient | undefined> {
  for (let attempt = 0; !c.signal.aborted; attempt++) {
    const started = Date.now();
    const quiet = setInterval(
      () => c.log.warn(`still connecting to the bus after ${Math.round((Date.now() - started) / 1000)} s`),
      c.quietMs ?? 30_000,
    );
    const pending = c.connect();
    let aborted: () => void = () => undefined;
    const stop = new Promise<"aborted">((resolve) => {
      aborted = () => resolve("aborted");
      c.signal.addEventListener("abort", aborted, { once: true });
    });
    try {
      const got = await Promise.race([pending, stop]);
      if (got !== "aborted") return got;
      // Stopped while connecting: a client that connects later is closed at once.
      pending.then(
        (b) => b.close(),
        () => undefined,
      );
      return undefined;
    } catch (err) {
      const why = c.problem(err);
      const ms = (c.delayMs ?? retryDelayMs)(attempt);
      c.onProblem(why);
      c.log.warn(`${why}; trying again in ${(ms / 1000).toFixed(1)} s`);
      if (!(await pause(ms, c.signal))) return undefined;
    } finally {
      clearInterval(quiet);
      c.signal.removeEventListener("abort", aborted);
    }
  }
  return undefined;
}
