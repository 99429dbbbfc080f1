// Config epochs: the round-level run config (api/runconfig.ts, RoundConfig) changes
// only at a round boundary, the same one for every worker. The operator lists the epochs in
// the run config it mounts into every worker pod; a worker re-reads them at each boundary
// and trains round r with the epoch in force for r. The validator names the digest of the
// config it closed a round with in its signed selection, and every peer applies that round's
// outer step with exactly that config, so peers never disagree on the weights even when one
// of them saw a new epoch late (docs/decisions/run-changes.md).
import { createHash } from "node:crypto";
import {
  ROUND_CONFIG_FIELDS,
  roundConfigOf,
  type ConfigEpoch,
  type ResolvedRunConfig,
  type RoundConfig,
} from "../api/runconfig.ts";
import { canonicalJson } from "./canonical.ts";

export const CONFIG_DIGEST_PATTERN = /^[0-9a-f]{64}$/;

/** SHA-256 (hex) of the canonical JSON of the round-level fields. */
export function roundConfigDigest(c: RoundConfig): string {
  return createHash("sha256")
    .update(canonicalJson(roundConfigOf(c)))
    .digest("hex");
}

/** The epochs of a run config; one from round 0 with its own round-level fields when it lists none. */
export function configEpochs(base: ResolvedRunConfig): ConfigEpoch[] {
  if (base.epochs && base.epochs.length > 0) return base.epochs;
  const config = roundConfigOf(base);
  return [{ epoch: 1, fromRound: 0, digest: roundConfigDigest(config), config }];
}

/**
 * The epoch in force for `round`: of the epochs whose fromRound has come, the latest; before
 * the first epoch's fromRound (its predecessors were dropped), the first.
 */
export function epochFor(epochs: readonly ConfigEpoch[], round: number): ConfigEpoch {
  if (epochs.length === 0) throw new Error("no config epoch");
  let best: ConfigEpoch | undefined;
  for (const e of epochs) if (e.fromRound <= round && (!best || e.epoch > best.epoch)) best = e;
  return best ?? epochs.reduce((a, b) => (b.fromRound < a.fromRound ? b : a));
}

/** The full run config of an epoch: the base with the epoch's round-level fields. */
export function configOf(base: ResolvedRunConfig, e: ConfigEpoch): ResolvedRunConfig {
  return { ...base, ...structuredClone(e.config) };
}

/** Problems of a list of epochs as read from a run config; empty when it is usable. */
export function epochProblems(epochs: unknown): string[] {
  if (!Array.isArray(epochs)) return ["epochs must be a list"];
  if (epochs.length === 0) return ["epochs must not be empty"];
  const p: string[] = [];
  let prev: ConfigEpoch | undefined;
  for (const [i, raw] of epochs.entries()) {
    const e = raw as Partial<ConfigEpoch>;
    const at = `epochs[${i}]`;
    if (typeof e !== "object" || e === null) {
      p.push(`${at} is not an object`);
      continue;
    }
    if (!Number.isSafeInteger(e.epoch) || (e.epoch ?? 0) < 1)
      p.push(`${at}.epoch must be a positive integer`);
    if (!Number.isSafeInteger(e.fromRound) || (e.fromRound ?? -1) < 0)
      p.push(`${at}.fromRound must be a round number`);
    if (typeof e.config !== "object" || e.config === null) {
      p.push(`${at}.config is missing`);
      continue;
    }
    const missing = ROUND_CONFIG_FIELDS.filter((k) => e.config![k] === undefined);
    if (missing.length) p.push(`${at}.config lacks ${missing.join(", ")}`);
    else if (typeof e.digest !== "string" || e.digest !== roundConfigDigest(e.config))
      p.push(`${at}.digest does not match its config`);
    if (prev && e.epoch !== undefined && e.epoch <= prev.epoch) p.push(`${at}.epoch must grow`);
    if (prev && e.fromRound !== undefined && e.fromRound < prev.fromRound)
      p.push(`${at}.fromRound must not go back`);
    prev = e as ConfigEpoch;
  }
  return p;
}

/** Round-level field paths (spec.*) whose values differ between two configs. */
export function changedFields(a: RoundConfig, b: RoundConfig): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    if (canonicalJson(x) === canonicalJson(y)) return;
    const isObj = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
    if (isObj(x) && isObj(y)) {
      const keys = new Set([...Object.keys(x as object), ...Object.keys(y as object)]);
      for (const k of [...keys].sort())
        walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], `${path}.${k}`);
      return;
    }
    out.push(path);
  };
  for (const k of ROUND_CONFIG_FIELDS) walk(a[k], b[k], `spec.${k}`);
  return out;
}
