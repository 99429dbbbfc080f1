/**
 * Reading an sr25519 hotkey from the bytes of a mounted Secret: a BIP-39 mnemonic, a
 * 0x-prefixed 32-byte seed, or a secret URI (`//Name`, `mnemonic//path`). The secret itself
 * is never put into an error message.
 */
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";

export const SS58_FORMAT = 42;

export async function hotkeyFromSecret(bytes: Uint8Array | string): Promise<KeyringPair> {
  await cryptoWaitReady();
  const text = (typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8")).trim();
  if (text.length === 0) throw new Error("the hotkey secret is empty");
  if (text.length > 1024)
    throw new Error("the hotkey secret is longer than 1024 characters; expected a mnemonic, seed or URI");
  if (/^0x/i.test(text) && !/^0x[0-9a-f]{64}$/i.test(text)) {
    throw new Error("the hotkey secret looks like hex but is not a 0x-prefixed 32-byte seed (64 hex digits)");
  }
  const keyring = new Keyring({ type: "sr25519", ss58Format: SS58_FORMAT });
  try {
    return keyring.addFromUri(text);
  } catch {
    throw new Error("the hotkey secret is not a valid mnemonic, 32-byte seed or secret URI");
  }
}

export async function hotkeyAddress(bytes: Uint8Array | string): Promise<string> {
  return (await hotkeyFromSecret(bytes)).address;
}
