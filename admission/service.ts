// The admission service: answers nats-server's authorization requests for one run.
// Every request gets an answer (an admission or a refusal with its reason), is logged and
// counted; nothing a client sends, and no failure of the chain, can make it throw.
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import type { KeyPair } from "@nats-io/jwt";
import type { Logger } from "../protocol/log.ts";
import { encodeAdmission, encodeRefusal } from "./claims.ts";
import { ChainUnavailable, type StandingSource } from "./chain.ts";
import { decide, precheck, signatureValid, type Decision, type Standing } from "./decision.ts";
import type { AdmissionMetrics } from "./metrics.ts";
import type { RefusalReason } from "./reasons.ts";
import { parseRequest, type Login, type ServerAsk } from "./request.ts";
import { AUTH_CALLOUT_SUBJECT } from "./server-config.ts";

export interface AdmissionOptions {
  run: string;
  /** Issuer account key pair (from its seed); signs every answer. */
  issuer: KeyPair;
  /** Lifetime of an admission in whole seconds: the bound on how long a deregistered hotkey stays connected. */
  ttlSeconds: number;
  /** Hotkeys admitted as validators without a validator permit. */
  validators?: readonly string[];
  standings: StandingSource;
  metrics: AdmissionMetrics;
  log: Logger;
  now?: () => number;
}

/** Queue group: several replicas of the service share the requests. */
export const QUEUE_GROUP = "covenant-admission";

export interface Answer {
  /** What goes back to the server: a response JWT, or empty when the request named no connection to answer. */
  payload: Uint8Array;
  decision: Decision;
}

export class AdmissionService {
  private readonly validators: ReadonlySet<string>;
  private readonly inflight = new Set<Promise<void>>();
  private sub: Subscription | undefined;

  constructor(private readonly o: AdmissionOptions) {
    this.validators = new Set(o.validators ?? []);
  }

  /** Decides one request and encodes the answer. Never throws. */
  async answer(data: Uint8Array): Promise<Answer> {
    const started = performance.now();
    let ask: ServerAsk | undefined;
    let login: Login | undefined;
    let decision: Decision;
    let payload = new Uint8Array(0);
    let exp: number | undefined;
    try {
      const parsed = parseRequest(data);
      ask = parsed.ask;
      if (!parsed.ok) decision = { admit: false, reason: parsed.reason, detail: parsed.detail };
      else {
        login = parsed.login;
        decision = precheck(this.o.run, login, signatureValid) ?? (await this.fromChain(login));
      }
      if (ask) {
        if (decision.admit) {
          const a = await encodeAdmission(
            this.o.issuer,
            ask,
            { run: this.o.run, hotkey: decision.hotkey, role: decision.role },
            this.o.ttlSeconds,
            this.o.now?.(),
          );
          payload = new TextEncoder().encode(a.token);
          exp = a.exp;
        } else {
          payload = new TextEncoder().encode(
            await encodeRefusal(this.o.issuer, ask, decision.reason, decision.detail),
          );
        }
      }
    } catch (e) {
      decision = { admit: false, reason: "internal", detail: (e as Error)?.message ?? String(e) };
      payload = new Uint8Array(0);
      if (ask) {
        try {
          payload = new TextEncoder().encode(
            await encodeRefusal(this.o.issuer, ask, "internal", "internal error"),
          );
        } catch {
          // An empty answer refuses too ("no reason supplied").
        }
      }
    }
    this.record(decision, ask, login, exp, (performance.now() - started) / 1000);
    return { payload, decision };
  }

  private async fromChain(login: Login): Promise<Decision> {
    let standing: Standing;
    try {
      standing = await this.o.standings.standing(login.hotkey);
    } catch (e) {
      if (e instanceof ChainUnavailable)
        return { admit: false, reason: "chain_unreachable", detail: e.message };
      throw e;
    }
    return decide(login, standing, this.validators);
  }

  private record(
    d: Decision,
    ask: ServerAsk | undefined,
    login: Login | undefined,
    exp: number | undefined,
    seconds: number,
  ): void {
    const result = d.admit ? "admitted" : "refused";
    const reason: string = d.admit ? d.role : (d.reason satisfies RefusalReason);
    this.o.metrics.decisions.inc({ result, reason });
    this.o.metrics.latency.observe({ result }, seconds);
    // Never the signature, the nonce or any JWT: a line says who, what and why.
    const fields = {
      hotkey: login?.hotkey,
      role: login?.role,
      server: ask?.serverName || ask?.serverId,
      client: ask?.clientHost,
      clientName: ask?.clientName,
      ms: Math.round(seconds * 1000),
    };
    if (d.admit) this.o.log.info("admitted", { ...fields, uid: d.uid, expiresAt: exp });
    else this.o.log.warn("refused", { ...fields, reason: d.reason, detail: d.detail });
  }

  /** Subscribes to the server's authorization requests on a connection of the callout user. */
  start(nc: NatsConnection): void {
    if (this.sub) throw new Error("the admission service is already started");
    this.sub = nc.subscribe(AUTH_CALLOUT_SUBJECT, {
      queue: QUEUE_GROUP,
      callback: (err, msg) => {
        if (err) {
          this.o.log.error("subscription error", { err });
          return;
        }
        const p = this.reply(msg).finally(() => this.inflight.delete(p));
        this.inflight.add(p);
      },
    });
  }

  private async reply(msg: Msg): Promise<void> {
    const { payload } = await this.answer(msg.data);
    try {
      if (!msg.respond(payload)) this.o.log.warn("request without a reply subject", {});
    } catch (e) {
      this.o.log.warn("could not send the answer", { err: e });
    }
  }

  /** Stops taking requests and waits for the ones being answered. */
  async stop(): Promise<void> {
    const sub = this.sub;
    this.sub = undefined;
    if (sub && !sub.isClosed()) await sub.drain().catch(() => undefined);
    await Promise.allSettled([...this.inflight]);
  }
}
