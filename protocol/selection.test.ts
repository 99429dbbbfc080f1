import assert from "node:assert/strict";
import { before, test } from "node:test";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { encodeSelection, signSelection, verifySelection } from "./selection.ts";

let val: KeyringPair, eve: KeyringPair;
const D = `0x${"ab".repeat(32)}`;
before(async () => {
  await cryptoWaitReady();
  const k = new Keyring({ type: "sr25519" });
  val = k.addFromUri("//Val");
  eve = k.addFromUri("//Eve");
});

const body = () => ({
  run: "r1",
  round: 4,
  epoch: 2,
  selected: [{ hotkey: eve.address, digest: D }],
  reserves: [],
  rejected: { [val.address]: "late" as const },
});

test("a signed selection verifies for its run, round and validator", () => {
  const bytes = encodeSelection(signSelection(body(), val));
  const v = verifySelection(bytes, { run: "r1", round: 4, validator: val.address });
  assert.ok(v.ok);
  assert.equal(v.value.selected[0]!.hotkey, eve.address);
  assert.equal(verifySelection(bytes, { run: "r1", round: 5, validator: val.address }).ok, false);
  assert.equal(verifySelection(bytes, { run: "r1", round: 4, validator: eve.address }).ok, false);
});

test("a selection signed by someone else, altered, or malformed is refused", () => {
  const forged = { ...signSelection(body(), eve), validator: val.address };
  assert.deepEqual(
    verifySelection(encodeSelection(forged), { run: "r1", round: 4, validator: val.address }),
    {
      ok: false,
      detail: "signature does not verify",
    },
  );
  const s = signSelection(body(), val);
  const altered = { ...s, selected: [{ hotkey: val.address, digest: D }] };
  assert.equal(
    verifySelection(encodeSelection(altered), { run: "r1", round: 4, validator: val.address }).ok,
    false,
  );
  const badReason = { ...s, rejected: { x: "nope" } };
  assert.equal(
    verifySelection(encodeSelection(badReason as never), { run: "r1", round: 4, validator: val.address }).ok,
    false,
  );
  assert.equal(
    verifySelection(new Uint8Array([0xff, 0xfe]), { run: "r1", round: 4, validator: val.address }).ok,
    false,
  );
  assert.equal(
    verifySelection(new Uint8Array(70_000), { run: "r1", round: 4, validator: val.address }).ok,
    false,
  );
});

test("the config digest a round ran under is signed with the selection", () => {
  const config = "c".repeat(64);
  const expect = { run: "r1", round: 4, validator: val.address };
  const s = signSelection({ ...body(), config }, val);
  const v = verifySelection(encodeSelection(s), expect);
  assert.ok(v.ok);
  assert.equal(v.value.config, config);
  const swapped = { ...s, config: "d".repeat(64) };
  assert.deepEqual(verifySelection(encodeSelection(swapped), expect), {
    ok: false,
    detail: "signature does not verify",
  });
  const dropped: Record<string, unknown> = { ...s };
  delete dropped.config;
  assert.equal(verifySelection(encodeSelection(dropped as never), expect).ok, false);
  assert.deepEqual(verifySelection(encodeSelection({ ...s, config: "xyz" }), expect), {
    ok: false,
    detail: "config",
  });
  // A selection without one (an older validator) still verifies.
  const plain = verifySelection(encodeSelection(signSelection(body(), val)), expect);
  assert.ok(plain.ok && plain.value.config === undefined);
});
