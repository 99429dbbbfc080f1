// Reading the service's two nkey seeds from mounted files. A seed never appears in an
// error message or a log line; only the file name and the public key do.
import { readFileSync } from "node:fs";
import { fromSeed, type KeyPair } from "@nats-io/nkeys";

/** The first seed of the given kind in the text: `SU...` (user) or `SA...` (account); a `.creds` file works too. */
export function seedFromText(text: string, kind: "user" | "account"): KeyPair | undefined {
  const prefix = kind === "user" ? "SU" : "SA";
  const m = new RegExp(`\\b${prefix}[A-Z2-7]{56}\\b`).exec(text);
  if (!m) return undefined;
  try {
    return fromSeed(new TextEncoder().encode(m[0]));
  } catch {
    return undefined;
  }
}

export function readSeedFile(file: string, kind: "user" | "account"): KeyPair {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
  }
  const kp = seedFromText(text, kind);
  if (!kp)
    throw new Error(`${file} holds no valid NATS ${kind} nkey seed (${kind === "user" ? "SU" : "SA"}...)`);
  return kp;
}
