// A server process started for a test or the demo, and the guarantee that it
// does not outlive us: each runs under reaper.sh in its own process group, so a
// stop signals the whole group, our exit kills every group still alive, and the
// reaper ends the command if this process dies without running any handler.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { removeTempDirs } from "./paths.ts";

const reaper = join(dirname(fileURLToPath(import.meta.url)), "reaper.sh");
const live = new Set<ManagedProcess>();

export interface StartOptions {
  /** Short name used in messages, e.g. "etcd". */
  name: string;
  command: string;
  args: string[];
  /** File receiving stdout and stderr. */
  logFile: string;
  env?: Record<string, string>;
  cwd?: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly #exited: Promise<Exit>;
  #exit: Exit | undefined;

  private constructor(opts: StartOptions) {
    this.name = opts.name;
    this.logFile = opts.logFile;
    const log = openSync(opts.logFile, "a");
    const child = spawn(reaper, [String(process.pid), opts.command, ...opts.args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", log, log],
      detached: true,
    });
    closeSync(log);
    if (child.pid === undefined) throw new Error(`${opts.name}: could not start ${opts.command}`);
    this.pid = child.pid;
    // Let the event loop end while the server still runs; stop() or exit handlers end it.
    child.unref();
    this.#exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        resolve(this.#exit);
      });
    });
    live.add(this);
  }

  static start(opts: StartOptions): ManagedProcess {
    installExitHandlers();
    return new ManagedProcess(opts);
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last lines of the process' output, for error messages. */
  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** Signals the process group and waits; escalates to SIGKILL after the grace period. */
  async stop(graceMs = 10_000): Promise<Exit> {
    if (!this.running) return this.#exit as Exit;
    signalGroup(this.pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(this.pid, "SIGKILL"), graceMs);
    try {
      return await this.#waitForExit();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process group at once (to simulate a crash). */
  async kill(): Promise<Exit> {
    signalGroup(this.pid, "SIGKILL");
    return this.#waitForExit();
  }

  /**
   * Resolves when the process has exited. The child itself is unref'd (a forgotten server must
   * not keep a test process alive; the exit handlers end it), so waiting holds the event loop.
   */
  get exited(): Promise<Exit> {
    return this.#waitForExit();
  }

  async #waitForExit(): Promise<Exit> {
    if (this.#exit) return this.#exit;
    const hold = setInterval(() => {}, 1_000);
    try {
      return await this.#exited;
    } finally {
      clearInterval(hold);
    }
  }

  /** Fails with the log tail when the process exits before `ready` resolves. */
  async untilReady<T>(ready: Promise<T>): Promise<T> {
    const early = this.#exited.then((exit) => {
      throw new Error(
        `${this.name} exited (${exit.signal ?? `code ${exit.code}`}) before it was ready; its log:\n${this.logTail()}`,
      );
    });
    try {
      return await Promise.race([ready, early]);
    } catch (err) {
      if (!this.running) throw err;
      throw new Error(`${(err as Error).message}\n${this.name} log:\n${this.logTail()}`);
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Process groups of every server still running; for tests of the cleanup itself. */
export function liveProcessGroups(): number[] {
  return [...live].map((p) => p.pid);
}

let installed = false;
function installExitHandlers(): void {
  if (installed) return;
  installed = true;
  process.once("exit", () => {
    for (const p of live) signalGroup(p.pid, "SIGKILL");
    removeTempDirs();
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      // Servers get a short grace to exit (their children's exit events still arrive), then
      // the exit handler kills what is left and removes the temporary directories.
      const code = 128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1);
      const pending = [...live];
      for (const p of pending) signalGroup(p.pid, "SIGTERM");
      const deadline = setTimeout(() => process.exit(code), signalGraceMs);
      void Promise.all(pending.map((p) => p.exited)).then(() => {
        clearTimeout(deadline);
        process.exit(code);
      });
    });
  }
}

/** How long a signalled owner waits for its servers before killing them. */
const signalGraceMs = 3_000;
