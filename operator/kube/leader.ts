/**
 * Leader election on a coordination.k8s.io/v1 Lease.
 *
 * A candidate tries every `retryPeriodMs` to take the lease when it is free, expired or
 * already its own; updates use the object's resourceVersion, so two candidates never both
 * win. Expiry is judged on this process's clock: a lease counts as expired when its record
 * has not changed for `leaseDurationMs` since this process first saw it, so clock skew
 * between machines does not matter. The leader renews every `retryPeriodMs`; if no renewal
 * succeeds within `renewDeadlineMs` it steps down (onStoppedLeading) before the lease can
 * expire for the others. `release()` hands the lease back at once on graceful shutdown.
 *
 * Never two leaders: a standby takes over no sooner than `leaseDurationMs` after it saw the
 * last renewal, and it cannot see a renewal before the attempt that wrote it was sent. So the
 * leader holds leadership only until (start of its last successful attempt + renewDeadline),
 * on a timer of its own: it does not wait for a hung request to come back (the request
 * timeout of the client is far longer than the lease), and it aborts the attempt in flight.
 * Every attempt is bounded by the renew deadline too, so a candidate whose acquisition
 * answered late does not start leading on a lease that may already have expired.
 */
import type { OperatorMetrics } from "../metrics/registry.ts";
import { isAlreadyExists, isConflict, isNotFound, type KubeClient } from "./client.ts";
import { CORE, resourceLabel, resourcePath } from "./keys.ts";
import { silentLogger, type Logger } from "../../protocol/log.ts";

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown };
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  leaseName: string;
  leaseNamespace: string;
  /** Unique per process (pod name plus a random suffix). */
  identity: string;
  /** Default 15 s. */
  leaseDurationMs?: number;
  /** Default 10 s; must be shorter than the lease duration. */
  renewDeadlineMs?: number;
  /** Default 2 s; must be shorter than the renew deadline. */
  retryPeriodMs?: number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
  metrics?: OperatorMetrics;
  logger?: Logger;
}

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;

/** Microsecond timestamps as the Lease API writes them. */
const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

export class LeaderElector {
  private readonly leaseMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private readonly log: Logger;
  private leading = false;
  private stopped = false;
  private observed: { record: string; at: number } | undefined;
  private lastLease: Lease | undefined;
  /** performance.now() until which this process may act as leader. */
  private leadUntil = 0;
  private stepDownTimer: NodeJS.Timeout | undefined;
  /** The acquire/renew attempt in flight, aborted when leadership ends under it. */
  private inflight: AbortController | undefined;
  private currentLeader = "";
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly options: LeaderElectionOptions,
  ) {
    this.leaseMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.renewMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.retryMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    if (!(this.leaseMs > this.renewMs && this.renewMs > this.retryMs && this.retryMs > 0)) {
      throw new Error(
        `leader election: need leaseDuration > renewDeadline > retryPeriod > 0, got ${this.leaseMs}/${this.renewMs}/${this.retryMs} ms`,
      );
    }
    if (!options.identity) throw new Error("leader election: identity must not be empty");
    this.log = (options.logger ?? silentLogger).child({
      lease: `${options.leaseNamespace}/${options.leaseName}`,
      identity: options.identity,
    });
    this.setGauge();
  }

  isLeader(): boolean {
    // Also false once the deadline has passed, should the step-down timer fire late.
    return this.leading && performance.now() < this.leadUntil;
  }

  /** The holder last observed (may be this process). */
  leader(): string {
    return this.currentLeader;
  }

  /** Starts campaigning in the background; resolves when the loop ends (stop or lost lease). */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.loop;
  }

  /** Stops campaigning; if leading, releases the lease so another candidate takes over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (!this.leading) return;
    try {
      const lease = this.lastLease;
      if (lease && lease.spec?.holderIdentity === this.options.identity) {
        const now = new Date();
        // Bounded so that a hung API server does not hold up shutdown; the lease then expires.
        await this.replaceLease(
          {
            ...lease,
            spec: {
              ...lease.spec,
              holderIdentity: "",
              leaseDurationSeconds: 1,
              renewTime: microTime(now),
              acquireTime: microTime(now),
            },
          },
          AbortSignal.timeout(this.renewMs),
        );
        this.log.info("released lease");
      }
    } catch (e) {
      this.log.warn("could not release lease; it will expire", { error: e });
    }
    this.transition(false);
  }

  private async run(): Promise<void> {
    // Campaign.
    while (!this.stopped && !this.leading) {
      const started = performance.now();
      if (await this.attempt(started)) {
        if (this.holdUntil(started + this.renewMs)) {
          this.transition(true);
          break;
        }
        this.log.warn("took the lease too late to lead on it; trying again");
      }
      await this.sleep(this.untilNextAttempt());
    }
    // Renew until stopped or until the step-down timer ends leadership.
    while (!this.stopped && this.leading) {
      await this.sleep(this.retryMs);
      if (this.stopped || !this.leading) break;
      const started = performance.now();
      if ((await this.attempt(started)) && this.leading) this.holdUntil(started + this.renewMs);
    }
  }

  /**
   * One acquire/renew attempt that gives up at (started + renew deadline), or sooner when
   * leadership ends. It answers then even if a request does not honour its abort signal.
   */
  private async attempt(started: number): Promise<boolean> {
    const ctl = new AbortController();
    this.inflight = ctl;
    const timer = setTimeout(
      () => ctl.abort(new Error("lease attempt ran past the renew deadline")),
      started + this.renewMs - performance.now(),
    );
    const aborted = new Promise<boolean>((resolve) => {
      const onAbort = () => {
        this.log.warn("lease attempt abandoned", { reason: ctl.signal.reason });
        resolve(false);
      };
      ctl.signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([this.tryAcquireOrRenew(ctl.signal), aborted]);
    } finally {
      clearTimeout(timer);
      if (this.inflight === ctl) this.inflight = undefined;
    }
  }

  /**
   * Extends leadership to `until` and (re)arms the step-down timer; answers false, stepping
   * down if leading, when `until` has already passed (the attempt answered too late to count).
   */
  private holdUntil(until: number): boolean {
    clearTimeout(this.stepDownTimer);
    const remaining = until - performance.now();
    if (remaining <= 0) {
      this.stepDown();
      return false;
    }
    this.leadUntil = until;
    this.stepDownTimer = setTimeout(() => this.stepDown(), remaining);
    return true;
  }

  /** Ends leadership now, without waiting for the attempt in flight, which is aborted. */
  private stepDown(): void {
    clearTimeout(this.stepDownTimer);
    this.inflight?.abort(new Error("renew deadline passed"));
    if (!this.leading) return;
    this.log.warn("failed to renew lease within the renew deadline; stepping down");
    this.transition(false);
    this.wake?.();
  }

  /** One attempt; answers true when this process holds the lease afterwards. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { leaseName: name, leaseNamespace: namespace, identity } = this.options;
    const now = new Date();
    const leaseSeconds = Math.ceil(this.leaseMs / 1000);
    try {
      const current = await this.getLease(signal);
      // An abandoned attempt must not act on, nor record, what it reads late.
      signal.throwIfAborted();
      if (!current) {
        const created = await this.createLease(
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: leaseSeconds,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: 0,
            },
          },
          signal,
        );
        signal.throwIfAborted();
        this.observe(created);
        return true;
      }
      this.observe(current);
      const spec = current.spec ?? {};
      const holder = spec.holderIdentity ?? "";
      const mine = holder === identity;
      const durationMs = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
      const expired = holder === "" || performance.now() - this.observed!.at >= durationMs;
      if (!mine && !expired) return false;
      const next: Lease = {
        ...current,
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: leaseSeconds,
          acquireTime: mine ? (spec.acquireTime ?? microTime(now)) : microTime(now),
          renewTime: microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      };
      const updated = await this.replaceLease(next, signal);
      signal.throwIfAborted();
      this.observe(updated);
      return true;
    } catch (e) {
      if (signal.aborted) return false; // attempt() logged why it gave up
      if (isConflict(e) || isAlreadyExists(e) || isNotFound(e)) {
        this.log.debug("lost a race for the lease", { error: e });
      } else {
        this.log.warn("lease request failed", { error: e });
      }
      return false;
    }
  }

  // The Lease requests, through KubeClient.request so that each carries the attempt's signal.

  private async getLease(signal: AbortSignal): Promise<Lease | undefined> {
    const { leaseName, leaseNamespace } = this.options;
    try {
      return await this.client.request<Lease>({
        method: "GET",
        path: resourcePath(CORE.leases, leaseNamespace, leaseName),
        resource: resourceLabel(CORE.leases),
        signal,
      });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private createLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    return this.client.request<Lease>({
      method: "POST",
      path: resourcePath(CORE.leases, lease.metadata.namespace),
      body: lease,
      resource: resourceLabel(CORE.leases),
      signal,
    });
  }

  private replaceLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    return this.client.request<Lease>({
      method: "PUT",
      path: resourcePath(CORE.leases, lease.metadata.namespace, lease.metadata.name),
      body: lease,
      resource: resourceLabel(CORE.leases),
      signal,
    });
  }

  /**
   * The retry period with jitter, or less when the observed lease expires sooner: a standby
   * takes over as soon as the lease runs out instead of up to a retry period later.
   */
  private untilNextAttempt(): number {
    const retry = jitter(this.retryMs);
    const spec = this.lastLease?.spec;
    if (!this.observed || !spec?.holderIdentity) return retry;
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseMs / 1000) * 1000;
    const remaining = this.observed.at + durationMs - performance.now();
    return remaining < retry ? Math.max(50, remaining + 50) : retry;
  }

  private observe(lease: Lease): void {
    this.lastLease = lease;
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity ?? ""}|${spec.renewTime ?? ""}|${spec.leaseTransitions ?? 0}`;
    if (this.observed?.record !== record) this.observed = { record, at: performance.now() };
    const holder = spec.holderIdentity ?? "";
    if (holder !== this.currentLeader) {
      this.currentLeader = holder;
      if (holder) {
        this.log.info("observed leader", { leader: holder });
        try {
          this.options.onNewLeader?.(holder);
        } catch (e) {
          this.log.error("onNewLeader threw", { error: e });
        }
      }
    }
  }

  private transition(leading: boolean): void {
    if (this.leading === leading) return;
    if (!leading) clearTimeout(this.stepDownTimer);
    this.leading = leading;
    this.setGauge();
    this.options.metrics?.leaderTransitions.inc({ lease: this.options.leaseName });
    this.log.info(leading ? "started leading" : "stopped leading");
    try {
      if (leading) this.options.onStartedLeading?.();
      else this.options.onStoppedLeading?.();
    } catch (e) {
      this.log.error("leader election callback threw", { error: e });
    }
  }

  private setGauge(): void {
    this.options.metrics?.leaderIsLeader.set({ lease: this.options.leaseName }, this.leading ? 1 : 0);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

/** Up to 20% extra, so candidates do not retry in lockstep. */
function jitter(ms: number): number {
  return ms * (1 + Math.random() * 0.2);
}
