// Reading the process table from /proc (Linux), for tests that check cleanup.
import { readdirSync, readFileSync } from "node:fs";

/** Fields 2, 4 and 5 of /proc/PID/stat: command name, parent pid and process group. */
function stat(pid: number): { comm: string; ppid: number; pgrp: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    const comm = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { comm, ppid: Number(fields[1]), pgrp: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

/** Every live process in the process group. */
export function processGroupMembers(pgrp: number): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => stat(pid)?.pgrp === pgrp);
}

/**
 * The server a reaper runs: the reaper leads its process group, and its one child that is
 * not the `sleep` of its polling loop is the command. Fails when there is none.
 */
export function serverOfGroup(pgrp: number): number {
  const server = processGroupMembers(pgrp).find((pid) => {
    const s = stat(pid);
    return s !== undefined && s.ppid === pgrp && s.comm !== "sleep";
  });
  if (server === undefined) throw new Error(`process group ${pgrp} runs no server`);
  return server;
}

export function isAlive(pid: number): boolean {
  const s = stat(pid);
  if (!s) return false;
  // A zombie has exited; only its parent has not collected it yet.
  try {
    return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
