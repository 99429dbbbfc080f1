/**
 * Structured JSON logger: one JSON object per line, a level, a message and fields.
 * Fields whose name looks like a secret are redacted, and values of type Error are
 * reduced to their message so that request bodies never leak through stack traces.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
  readonly level: LogLevel;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; default process.stderr. */
  write?: (line: string) => void;
  fields?: LogFields;
  /** Clock for the `ts` field (tests). */
  now?: () => Date;
}

const SECRET_FIELD =
  /(secret|token|passw|private|mnemonic|seed|credential|authorization|api[-_]?key|cookie)/i;
export const REDACTED = "[redacted]";

export function parseLogLevel(value: string | undefined, fallback: LogLevel = "info"): LogLevel {
  if (value === undefined || value === "") return fallback;
  const v = value.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  throw new Error(`invalid log level "${value}": expected one of ${LOG_LEVELS.join(", ")}`);
}

/** Makes a value safe to log: secret-named fields redacted, errors reduced, depth bounded. */
export function sanitize(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const out: LogFields = { message: value.message, name: value.name };
    const code = (value as { code?: unknown }).code;
    if (typeof code === "string" || typeof code === "number") out.code = code;
    return out;
  }
  if (value === null || typeof value !== "object") {
    return typeof value === "bigint" ? value.toString() : value;
  }
  if (depth >= 6) return "[depth]";
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => sanitize(v, depth + 1));
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  const out: LogFields = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_FIELD.test(k) ? REDACTED : sanitize(v, depth + 1);
  }
  return out;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const write = options.write ?? ((line: string) => void process.stderr.write(line + "\n"));
  const now = options.now ?? (() => new Date());
  const base = options.fields ?? {};
  const min = LOG_LEVELS.indexOf(level);
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (LOG_LEVELS.indexOf(lvl) < min) return;
    const record = sanitize({ ...base, ...fields }) as LogFields;
    write(JSON.stringify({ ts: now().toISOString(), level: lvl, msg, ...record }));
  };
  return {
    level,
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...options, level, write, now, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (tests and library defaults). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });
