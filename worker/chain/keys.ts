/**
 * The worker's hotkey, read from the file where the peer's Secret is mounted. The file holds
 * a mnemonic, a 0x-prefixed 32-byte seed or a secret URI. Neither the contents nor the
 * pair's secret ever reach a log line or an error message; only the SS58 address does.
 */
import { readFile, stat } from "node:fs/promises";
import type { KeyringPair } from "@polkadot/keyring/types";
import { hotkeyFromSecret } from "../../protocol/chain/hotkey.ts";

/** Secrets are small; anything larger is not a key file. */
export const MAX_KEY_FILE_BYTES = 4096;

export async function loadHotkey(path: string): Promise<KeyringPair> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    throw new Error(
      `hotkey file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"}); mount the peer's hotkey Secret there`,
    );
  }
  if (size > MAX_KEY_FILE_BYTES)
    throw new Error(`hotkey file ${path} is ${size} bytes; a key file is at most ${MAX_KEY_FILE_BYTES}`);
  const bytes = await readFile(path);
  try {
    return await hotkeyFromSecret(bytes);
  } catch (e) {
    throw new Error(`hotkey file ${path}: ${(e as Error).message}`);
  } finally {
    bytes.fill(0);
  }
}
