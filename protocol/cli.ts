// Command-line values the entry points share (operator, admission service): the error a bad
// flag gives, and durations written as 500ms, 15s, 2m or 1h.

export class ConfigError extends Error {}

/** `500ms`, `15s`, `2m`, `1h`, or a plain number of seconds. */
export function parseDuration(value: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m)
    throw new ConfigError(`invalid ${what} "${value}": expected a duration such as 500ms, 15s, 2m or 1h`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Math.round(n * unit);
}
