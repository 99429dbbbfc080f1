// Progress lines a person can follow: one line per event, prefixed with the peer.
export interface Log {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function consoleLog(prefix: string, out: NodeJS.WritableStream = process.stdout): Log {
  const line = (level: string, msg: string) =>
    out.write(`${new Date().toISOString()} ${level} ${prefix} ${msg}\n`);
  return {
    info: (m) => line("INFO ", m),
    warn: (m) => line("WARN ", m),
    error: (m) => line("ERROR", m),
  };
}
