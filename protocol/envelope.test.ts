import assert from "node:assert/strict";
import { before, test } from "node:test";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import {
  canonicalBytes,
  encodeAnnouncement,
  signEnvelope,
  verifyAnnouncement,
  verifyPayload,
  type SignedEnvelope,
} from "./envelope.ts";

let alice: KeyringPair;
let bob: KeyringPair;
const payload = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const expect = { run: "demo-run", round: 7, maxPayloadBytes: 1024 };

before(async () => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
  alice = keyring.addFromUri("//Alice");
  bob = keyring.addFromUri("//Bob");
});

const signed = (over: Partial<{ run: string; round: number; format: number }> = {}, data = payload) =>
  signEnvelope({ run: "demo-run", round: 7, format: 1, ...over }, data, alice);
const tamper = (e: SignedEnvelope, over: Record<string, unknown>) =>
  new TextEncoder().encode(JSON.stringify({ ...e, ...over }));

test("a signed announcement verifies and its payload matches", () => {
  const e = signed();
  const v = verifyAnnouncement(encodeAnnouncement(e), expect);
  assert.ok(v.ok, JSON.stringify(v));
  assert.equal(v.value.hotkey, alice.address);
  assert.ok(verifyPayload(v.value, payload).ok);
});

test("canonical bytes are deterministic and cover every field", () => {
  const e = signed();
  assert.deepEqual(canonicalBytes(e), canonicalBytes({ ...e }));
  for (const change of [
    { round: 8 },
    { format: 2 },
    { size: 9 },
    { run: "other" },
    { hotkey: bob.address },
  ]) {
    assert.notDeepEqual(canonicalBytes({ ...e, ...change }), canonicalBytes(e), JSON.stringify(change));
  }
});

test("each kind of bad announcement is refused with its reason", () => {
  const e = signed();
  const cases: [string, Uint8Array, string][] = [
    ["not JSON", new TextEncoder().encode("{nope"), "malformed"],
    ["invalid UTF-8", new Uint8Array([0xff, 0xfe, 0x7b]), "malformed"],
    ["an array", new TextEncoder().encode("[1,2]"), "malformed"],
    ["huge", new Uint8Array(5000).fill(32), "oversized-announcement"],
    ["missing digest", tamper(e, { digest: undefined }), "malformed"],
    ["negative round", tamper(e, { round: -1 }), "malformed"],
    ["fractional size", tamper(e, { size: 1.5 }), "malformed"],
    ["bad hotkey", tamper(e, { hotkey: "not-an-address" }), "malformed"],
    ["version 2", tamper(e, { version: 2 }), "unsupported-version"],
    ["another run", encodeAnnouncement(signed({ run: "other-run" })), "wrong-run"],
    ["replayed old round", encodeAnnouncement(signed({ round: 6 })), "stale-round"],
    ["future round", encodeAnnouncement(signed({ round: 8 })), "future-round"],
    ["oversized payload", encodeAnnouncement(signed({}, new Uint8Array(2048))), "oversized"],
    ["forged hotkey", tamper(e, { hotkey: bob.address }), "bad-signature"],
    ["changed digest", tamper(e, { digest: `0x${"00".repeat(32)}` }), "bad-signature"],
    ["garbage signature", tamper(e, { signature: `0x${"11".repeat(64)}` }), "bad-signature"],
  ];
  for (const [name, bytes, reason] of cases) {
    const v = verifyAnnouncement(bytes, expect);
    assert.equal(v.ok, false, name);
    if (!v.ok) assert.equal(v.reason, reason, `${name}: ${v.detail}`);
  }
});

test("a payload that differs from its envelope is refused", () => {
  const e = signed();
  const short = verifyPayload(e, payload.slice(1));
  assert.equal(short.ok ? "" : short.reason, "size-mismatch");
  const flipped = payload.slice();
  flipped[0] = flipped[0]! ^ 1;
  const changed = verifyPayload(e, flipped);
  assert.equal(changed.ok ? "" : changed.reason, "digest-mismatch");
});
