import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { hexToU8a, u8aToHex } from "@polkadot/util";
import { blake2AsU8a } from "@polkadot/util-crypto";
import {
  commitHash as chainCommitHash,
  epochIndex as chainEpochIndex,
  isCommitExpired,
  isRevealBlockRange,
  revealBlocks,
} from "../../e2e/chain/dispatch.ts";
import type { Subnet } from "../../e2e/chain/state.ts";
import { ChainCallError, parseWeightCommits, poolRefusal } from "./client.ts";
import { commitHash, epochIndex, newSalt, revealTiming, revealWindow, SALT_WORDS } from "./commit-reveal.ts";
import {
  FileCommitStore,
  MemoryCommitStore,
  parsePendingCommits,
  serializePendingCommits,
  type PendingCommit,
} from "./pending.ts";

// //Alice's public key and SS58 address.
const ALICE = "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
const ALICE_SS58 = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

describe("commit hash", () => {
  it("is blake2-256 of the SCALE encoding, as the local chain (and subtensor) computes it", () => {
    // (AccountId, u16 netuid index, Vec<u16> uids, Vec<u16> values, Vec<u16> salt, u64 version)
    const scale = [
      ALICE.slice(2), // the hotkey's 32 bytes
      "0300", // netuid 3, u16 little-endian
      "08" + "01000200", // uids [1, 2]: compact length 2, then u16s
      "08" + "ffffff7f", // values [65535, 32767]
      "0c" + "070008000900", // salt [7, 8, 9]
      "2a00000000000000", // version key 42, u64 little-endian
    ].join("");
    assert.equal(scale.length, 2 * (32 + 2 + 5 + 5 + 7 + 8));
    const vector = "0x43716e15d516bf55ac3257762133e0e4a473a8952bf20b62d1178e5086dc309f";
    assert.equal(u8aToHex(blake2AsU8a(hexToU8a("0x" + scale), 256)), vector);
    assert.equal(commitHash(hexToU8a(ALICE), 3, [1, 2], [65535, 32767], [7, 8, 9], 42n), vector);
    assert.equal(chainCommitHash(ALICE, 3, [1, 2], [65535, 32767], [7, 8, 9], 42n), vector);
  });

  it("agrees with the local chain on other inputs", () => {
    for (const [netuid, n, version] of [
      [0, 0, 0n],
      [4095, 70, (1n << 64n) - 1n],
      [277, 300, 1_000_001n],
    ] as const) {
      const uids = Array.from({ length: n }, (_, i) => (i * 7919) % 65536);
      const values = uids.map((u) => (u * 31) % 65536);
      const salt = newSalt();
      assert.equal(
        commitHash(hexToU8a(ALICE), netuid, uids, values, salt, version),
        chainCommitHash(ALICE, netuid, uids, values, salt, version),
      );
    }
  });

  it("refuses values that are not u16 without naming them", () => {
    const key = hexToU8a(ALICE);
    assert.throws(() => commitHash(key, 3, [1], [65536], [1], 0n), /a weight value must be a u16/);
    assert.throws(
      () => commitHash(key, 3, [1], [1], [31337.5], 0n),
      (e: Error) => !e.message.includes("31337"),
    );
    assert.throws(() => commitHash(key, 3, [1, 2], [1], [1], 0n), /same length/);
    assert.throws(() => commitHash(key.slice(1), 3, [1], [1], [1], 0n), /32-byte/);
    assert.throws(() => commitHash(key, 3, [1], [1], [1], 1n << 64n), /u64/);
  });

  it("draws a fresh 8-word salt each time", () => {
    const a = newSalt();
    const b = newSalt();
    assert.equal(a.length, SALT_WORDS);
    assert.ok(a.every((x) => Number.isInteger(x) && x >= 0 && x <= 65535));
    assert.notDeepEqual(a, b);
  });
});

describe("epoch arithmetic", () => {
  const subnet = (netuid: number, tempo: number, revealPeriodEpochs: number) =>
    ({ netuid, tempo, revealPeriodEpochs }) as Subnet;

  it("matches the local chain's examples: netuid 3, tempo 10, epoch(b) = (b + 4) / 11", () => {
    const p = { netuid: 3, tempo: 10, revealPeriodEpochs: 1 };
    assert.deepEqual(
      [0, 6, 7, 17, 18, 21, 28, 29, 39, 40].map((b) => epochIndex(b, 3, 10)),
      [0, 0, 1, 1, 2, 2, 2, 3, 3, 4],
    );
    assert.deepEqual(revealWindow(21, p), { epoch: 3, firstBlock: 29, lastBlock: 39 });
    assert.deepEqual(revealWindow(31, p), { epoch: 4, firstBlock: 40, lastBlock: 50 });
    assert.deepEqual(
      [21, 28, 29, 39, 40].map((b) => revealTiming(21, b, p)),
      ["early", "early", "due", "due", "expired"],
    );
    assert.deepEqual(revealWindow(0, { netuid: 3, tempo: 10, revealPeriodEpochs: 3 }), {
      epoch: 3,
      firstBlock: 29,
      lastBlock: 39,
    });
  });

  it("agrees with the local chain's functions over many subnets, tempos and reveal periods", () => {
    for (const netuid of [0, 1, 3, 64, 4095]) {
      for (const tempo of [0, 1, 10, 99, 360]) {
        for (const period of [1, 2, 5]) {
          const sn = subnet(netuid, tempo, period);
          const p = { netuid, tempo, revealPeriodEpochs: period };
          for (let commit = 0; commit < 1500; commit += 37) {
            assert.equal(epochIndex(commit, netuid, tempo), Number(chainEpochIndex(sn, BigInt(commit))));
            const w = revealWindow(commit, p);
            assert.deepEqual(
              [w.firstBlock, w.lastBlock],
              revealBlocks(sn, BigInt(commit)).map(Number),
              `netuid ${netuid} tempo ${tempo} period ${period} commit ${commit}`,
            );
            for (const block of [commit, w.firstBlock - 1, w.firstBlock, w.lastBlock, w.lastBlock + 1]) {
              if (block < commit) continue;
              const t = revealTiming(commit, block, p);
              assert.equal(t === "due", isRevealBlockRange(sn, BigInt(commit), BigInt(block)));
              assert.equal(t === "expired", isCommitExpired(sn, BigInt(commit), BigInt(block)));
            }
          }
        }
      }
    }
  });
});

describe("pending-commit store", () => {
  const commit = (round: number, extra: Partial<PendingCommit> = {}): PendingCommit => ({
    hotkey: ALICE_SS58,
    netuid: 3,
    round,
    hash: "0x" + String(round % 10).repeat(64),
    uids: [1, 2],
    values: [65535, 100],
    salt: [1, 2, 3, 4, 5, 6, 7, 8],
    versionKey: 18446744073709551615n,
    ...extra,
  });

  it("keeps commits in a private file across instances, replaced atomically", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "covenant-commits-")), "state");
    try {
      const a = new FileCommitStore(dir, 3, ALICE_SS58);
      assert.deepEqual(await a.load(), { commits: [], problems: [] }, "no file yet: nothing pending");
      await a.save([commit(4), commit(6, { commitBlock: 21 })]);
      assert.equal(statSync(a.file).mode & 0o777, 0o600);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      const b = new FileCommitStore(dir, 3, ALICE_SS58);
      assert.deepEqual(await b.load(), {
        commits: [commit(4), commit(6, { commitBlock: 21 })],
        problems: [],
      });
      await b.save([]);
      assert.deepEqual((await a.load()).commits, []);
      // Another subnet's file is another file.
      assert.notEqual(new FileCommitStore(dir, 4, ALICE_SS58).file, a.file);
      assert.throws(() => new FileCommitStore(dir, 3, "../../etc"), /SS58/);
    } finally {
      rmSync(dirname(dir), { recursive: true, force: true });
    }
  });

  it("leaves out malformed entries and files, naming only their position", async () => {
    const good = commit(2);
    const text = serializePendingCommits([good]);
    const doc = JSON.parse(text) as { commits: Record<string, unknown>[] };
    const bad = [
      { ...doc.commits[0], hotkey: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty" },
      { ...doc.commits[0], netuid: 4 },
      { ...doc.commits[0], salt: [70000] },
      { ...doc.commits[0], salt: [] },
      { ...doc.commits[0], uids: [1] },
      { ...doc.commits[0], hash: "0x1234" },
      { ...doc.commits[0], versionKey: "18446744073709551616" },
      { ...doc.commits[0], round: -1 },
      { ...doc.commits[0], commitBlock: "21" },
      null,
    ];
    const out = parsePendingCommits(
      JSON.stringify({ format: 1, commits: [doc.commits[0], ...bad] }),
      3,
      ALICE_SS58,
    );
    assert.deepEqual(out.commits, [good]);
    assert.equal(out.problems.length, bad.length);
    assert.ok(out.problems.every((p) => /^commit \d+: .*; left out$/.test(p) && !p.includes("70000")));
    assert.deepEqual(parsePendingCommits("{", 3, ALICE_SS58), {
      commits: [],
      problems: ["not JSON; ignored"],
    });
    assert.equal(parsePendingCommits('{"format":2,"commits":[]}', 3, ALICE_SS58).problems.length, 1);

    const dir = mkdtempSync(join(tmpdir(), "covenant-commits-"));
    try {
      const s = new FileCommitStore(dir, 3, ALICE_SS58);
      writeFileSync(s.file, "not json");
      const r = await s.load();
      assert.deepEqual(r.commits, []);
      assert.match(r.problems[0]!, /not JSON/);
      await s.save([good]);
      assert.equal(JSON.parse(readFileSync(s.file, "utf8")).commits[0].versionKey, "18446744073709551615");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("in memory, hands out copies", async () => {
    const m = new MemoryCommitStore();
    const c = commit(1);
    await m.save([c]);
    c.salt.push(9);
    const [back] = (await m.load()).commits;
    assert.equal(back!.salt.length, 8);
  });
});

describe("chain answers", () => {
  it("a payer that cannot pay the fee is a ChainCallError with reason cannot_pay_fee", () => {
    // What @polkadot/api rejects with when the node answers author_submitAndWatchExtrinsic
    // with 1010 Payment (the data as substrate sends it, the message as the coder formats it).
    const rpc = Object.assign(
      new Error("1010: Invalid Transaction: Inability to pay some fees , e.g. account balance too low"),
      { code: 1010, data: "Inability to pay some fees (e.g. account balance too low)" },
    );
    const e = poolRefusal("burned_register", rpc, ALICE_SS58);
    assert.ok(e instanceof ChainCallError);
    assert.equal(e.reason, "cannot_pay_fee");
    assert.equal(e.stage, "pool");
    assert.equal(e.call, "burned_register");
    assert.match(e.message, /^burned_register refused \(cannot_pay_fee\): the payer 5Grwva\S+ cannot pay/);
    assert.match(e.message, /Inability to pay some fees/);
  });

  it("names other refusals and leaves non-RPC failures plain", () => {
    const rpc = (code: number, data?: string) =>
      Object.assign(new Error(`${code}: refused${data ? `: ${data}` : ""}`), { code, data });
    const reason = (e: Error) => (e instanceof ChainCallError ? e.reason : "plain");
    assert.equal(reason(poolRefusal("x", rpc(1010, "Custom error: 16"), ALICE_SS58)), "commit_not_found");
    assert.equal(reason(poolRefusal("x", rpc(1010, "Custom error: 17"), ALICE_SS58)), "reveal_out_of_range");
    assert.equal(reason(poolRefusal("x", rpc(1010, "Custom error: 3"), ALICE_SS58)), "custom_error");
    assert.equal(reason(poolRefusal("x", rpc(1010, "Transaction is outdated"), ALICE_SS58)), "stale_nonce");
    assert.equal(
      reason(poolRefusal("x", rpc(1010, "Transaction has a bad signature"), ALICE_SS58)),
      "bad_signature",
    );
    assert.equal(reason(poolRefusal("x", rpc(1010, "something new"), ALICE_SS58)), "invalid_transaction");
    assert.equal(reason(poolRefusal("x", rpc(1014), ALICE_SS58)), "priority_too_low");
    assert.equal(reason(poolRefusal("x", rpc(-32000), ALICE_SS58)), "refused");
    const plain = poolRefusal("set_weights", new Error("WebSocket is not connected"), ALICE_SS58);
    assert.equal(reason(plain), "plain");
    assert.equal(plain.message, "set_weights rejected: WebSocket is not connected");
    // A dispatch error keeps its message and is `error` for the counter.
    const d = new ChainCallError("set_weights", "subtensorModule.SettingWeightsTooFast");
    assert.deepEqual(
      [d.reason, d.stage, d.message],
      ["error", "block", "set_weights failed on chain: subtensorModule.SettingWeightsTooFast"],
    );
  });

  it("reads WeightCommits and refuses malformed answers", () => {
    const h = "0x" + "ab".repeat(32);
    assert.deepEqual(parseWeightCommits(null), []);
    assert.deepEqual(parseWeightCommits([[h, 21, "0x1d", 39]]), [
      { hash: h, commitBlock: 21, firstRevealBlock: 29, lastRevealBlock: 39 },
    ]);
    for (const bad of [
      {},
      [[h, 21, 29]],
      [["0x12", 21, 29, 39]],
      [[h, -1, 29, 39]],
      [[h, true, 29, 39]],
      [[h, 2 ** 60, 1, 1]],
    ])
      assert.throws(() => parseWeightCommits(bad), /WeightCommits/);
  });
});
