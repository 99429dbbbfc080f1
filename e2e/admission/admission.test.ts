// Admission by chain identity, end to end: a real nats-server configured for auth callout,
// the admission service as its own process (admission/main.ts), and the local chain over
// real WebSocket JSON-RPC. Peers log in with nothing but their hotkey.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { createAccount, createUser } from "@nats-io/nkeys";
import { nkeyAuthenticator, type Authenticator, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { u8aToHex } from "@polkadot/util";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { calloutServerConfig } from "../../admission/server-config.ts";
import { startAdmissionService } from "./process.ts";
import type { PeerRole } from "../../protocol/bus/auth.ts";
import { BusClient } from "../../protocol/bus/client.ts";
import { formatLoginParams, hotkeyAuthenticator, loginMessage } from "../../protocol/bus/hotkey-auth.ts";
import { applyBus, planBus } from "../../operator/bus/provision.ts";
import { busNames } from "../../protocol/names.ts";
import { startLocalChain, type LocalChain } from "../chain/local.ts";
import { RawRpc } from "../chain/rpc-client.ts";
import { get } from "../stack/http.ts";
import { startNats, type NatsServer } from "../stack/nats.ts";
import { tempDir } from "../stack/paths.ts";
import type { ManagedProcess } from "../stack/process.ts";
import { waitFor } from "../stack/wait.ts";

const RUN = "adm-e2e";
const NETUID = 3;
const TTL_SECONDS = 3;
const names = busNames(RUN);
const text = (s: string) => new TextEncoder().encode(s);

/** The decision counter's value for one result and reason, from /metrics text. */
function decisions(metrics: string, result: string, reason: string): number {
  const line = metrics
    .split("\n")
    .find((l) => l.startsWith(`covenant_admission_decisions_total{result="${result}",reason="${reason}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe(
  "admission by chain identity (auth callout) on a real nats-server and the local chain",
  { timeout: 120_000 },
  () => {
    const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
    let miner: KeyringPair,
      validator: KeyringPair,
      victim: KeyringPair,
      stranger: KeyringPair,
      newcomer: KeyringPair;
    let chain: LocalChain | undefined;
    let control: RawRpc | undefined;
    let nats: NatsServer | undefined;
    let admission: ManagedProcess | undefined;
    let metricsUrl = "";
    let operatorSeed: Uint8Array;
    const tmp = tempDir("admission");
    const open: NatsConnection[] = [];

    const metrics = async () => (await get(`${metricsUrl}/metrics`)).body;
    const login = async (authenticator: Authenticator, name = "peer"): Promise<NatsConnection> => {
      const nc = await connect({
        servers: nats!.url,
        name,
        authenticator,
        reconnectTimeWait: 100,
        maxReconnectAttempts: -1,
      });
      open.push(nc);
      return nc;
    };
    const peer = (pair: KeyringPair, role: PeerRole) => login(hotkeyAuthenticator(pair, { run: RUN, role }));
    const publish = (js: JetStreamClient, subject: string) =>
      js.publish(subject, text("x"), { timeout: 3_000 });

    before(async () => {
      await cryptoWaitReady();
      [miner, validator, victim, stranger, newcomer] = [
        "Miner",
        "Validator",
        "Victim",
        "Stranger",
        "Newcomer",
      ].map((n) => keyring.addFromUri(`//admission/${n}`)) as [
        KeyringPair,
        KeyringPair,
        KeyringPair,
        KeyringPair,
        KeyringPair,
      ];
      // uids in order: miner 0, validator 1, victim 2. The stranger is never registered.
      chain = await startLocalChain({
        netuid: NETUID,
        neurons: 0,
        registered: [
          { hotkey: miner.address },
          { hotkey: validator.address, stake: 10n ** 12n, validatorPermit: true },
          { hotkey: victim.address },
        ],
        blockTimeMs: 250,
      });
      control = await RawRpc.connect(chain.url);

      const issuer = createAccount();
      const callout = createUser();
      const operator = createUser();
      operatorSeed = operator.getSeed();
      const issuerFile = join(tmp.path, "issuer.nk");
      const calloutFile = join(tmp.path, "callout.nk");
      writeFileSync(issuerFile, issuer.getSeed(), { mode: 0o600 });
      writeFileSync(calloutFile, callout.getSeed(), { mode: 0o600 });
      nats = await startNats({
        extraConfig: calloutServerConfig({
          run: RUN,
          issuer: issuer.getPublicKey(),
          calloutNkey: callout.getPublicKey(),
          operatorNkey: operator.getPublicKey(),
          maxFileBytes: 1024 ** 3,
          maxMemoryBytes: 64 * 1024 ** 2,
        }),
      });

      // The operator is a static user (auth_users): it provisions the run before anyone is admitted.
      const op = await login(nkeyAuthenticator(operatorSeed), "operator");
      await applyBus(
        op,
        planBus({
          run: RUN,
          roundMs: 60_000,
          retainRounds: 4,
          maxPayloadBytes: 1024 * 1024,
          retainCheckpoints: 2,
          maxCheckpointBytes: 1024 * 1024,
          miners: [miner.address, victim.address],
          validators: [validator.address],
        }),
      );

      const service = await startAdmissionService({
        run: RUN,
        natsUrl: nats.url,
        calloutFile,
        issuerFile,
        chainEndpoint: chain.url,
        netuid: NETUID,
        ttl: `${TTL_SECONDS}s`,
        dir: tmp.path,
      });
      admission = service.proc;
      metricsUrl = service.url;
    });

    after(async () => {
      await Promise.allSettled(open.map((nc) => nc.close()));
      try {
        if (admission) {
          const exit = await admission.stop();
          assert.equal(
            exit.code,
            0,
            `the service exits cleanly on SIGTERM; its log:\n${admission.logTail()}`,
          );
        }
      } finally {
        await nats?.stop();
        control?.close();
        await chain?.stop();
        tmp.remove();
      }
    });

    test("a registered miner is admitted and publishes under its own hotkey only", async () => {
      const nc = await peer(miner, "miner");
      const js = jetstream(nc);
      assert.equal((await publish(js, names.submit(1, miner.address))).stream, names.stream);
      await publish(js, names.heartbeat(miner.address));
      // Refused by the server: another hotkey's announcement and heartbeat, any selection.
      await assert.rejects(() => publish(js, names.submit(1, validator.address)), /permission/i);
      await assert.rejects(() => publish(js, names.heartbeat(victim.address)), /permission/i);
      await assert.rejects(() => publish(js, names.selection(1, miner.address)), /permission/i);
      // It reads the whole run.
      const jsm = await js.jetstreamManager();
      assert.ok((await jsm.streams.info(names.stream)).state.messages >= 2);
      assert.equal(decisions(await metrics(), "admitted", "miner") >= 1, true);
    });

    test("a hotkey with a validator permit is admitted as validator and publishes its selection", async () => {
      const js = jetstream(await peer(validator, "validator"));
      await publish(js, names.selection(1, validator.address));
      await assert.rejects(() => publish(js, names.selection(1, miner.address)), /permission/i);
      assert.equal(decisions(await metrics(), "admitted", "validator"), 1);
    });

    test("a miner asking for the validator role is refused", async () => {
      await assert.rejects(() => peer(miner, "validator"), /authorization violation/i);
      assert.equal(decisions(await metrics(), "refused", "not_validator"), 1);
    });

    test("an unregistered hotkey cannot connect, and the refusal is counted with its reason", async () => {
      await assert.rejects(() => peer(stranger, "miner"), /authorization violation/i);
      assert.equal(decisions(await metrics(), "refused", "unregistered"), 1);
    });

    test("forged logins are refused: another key's signature, another nonce, another run", async () => {
      const params = { run: RUN, role: "miner" as const };
      // The stranger signs, claiming to be the registered miner.
      const otherKey: Authenticator = (nonce) => ({
        user: miner.address,
        pass: formatLoginParams(params),
        sig: u8aToHex(stranger.sign(loginMessage(params, nonce!))),
      });
      // The miner's genuine signature, but over a nonce this connection was not given (a replay).
      const replayed = u8aToHex(miner.sign(loginMessage(params, "AAAAAAAAAAAAAAA")));
      const otherNonce: Authenticator = () => ({
        user: miner.address,
        pass: formatLoginParams(params),
        sig: replayed,
      });
      const before = await metrics();
      await assert.rejects(() => login(otherKey), /authorization violation/i);
      await assert.rejects(() => login(otherNonce), /authorization violation/i);
      await assert.rejects(
        () => login(hotkeyAuthenticator(miner, { run: "other-run", role: "miner" })),
        /authorization violation/i,
      );
      const now = await metrics();
      assert.equal(
        decisions(now, "refused", "bad_signature") - decisions(before, "refused", "bad_signature"),
        2,
      );
      assert.equal(decisions(now, "refused", "wrong_run"), 1);
    });

    test("the bus client logs in with the hotkey alone and writes only its own payload bucket", async () => {
      const bus = await BusClient.connect({
        servers: nats!.url,
        run: RUN,
        name: `miner-${miner.address}`,
        authenticator: hotkeyAuthenticator(miner, { run: RUN, role: "miner" }),
        requestTimeoutMs: 5_000,
      });
      try {
        const data = randomBytes(300_000);
        await bus.putPayload(miner.address, 1, data);
        assert.deepEqual(Buffer.from((await bus.getPayload(miner.address, 1, { maxBytes: 1 << 20 }))!), data);
        await assert.rejects(() => bus.putPayload(victim.address, 1, randomBytes(100)), /permission/i);
      } finally {
        await bus.close();
      }
    });

    test("a hotkey deregistered mid-run is cut off within the admission's lifetime; others stay", async () => {
      const staying = await peer(miner, "miner");
      let reconnects = 0;
      void (async () => {
        for await (const s of staying.status()) if (s.type === "reconnect") reconnects++;
      })();
      const nc = await peer(victim, "miner");
      await publish(jetstream(nc), names.submit(2, victim.address));
      const before = decisions(await metrics(), "refused", "unregistered");
      // Another hotkey takes the victim's uid (the chain's only way out: replacement).
      await control!.result("covenantTest_replaceNeuron", [NETUID, 2, newcomer.address, newcomer.address]);
      await control!.result("covenantTest_advanceBlocks", [1]); // in the best block now, not in 250 ms
      const since = Date.now();
      const closed = await Promise.race([
        nc.closed(),
        new Promise<"open">((r) => setTimeout(() => r("open"), (TTL_SECONDS + 8) * 1000)),
      ]);
      const elapsed = Date.now() - since;
      assert.notEqual(closed, "open", "the deregistered hotkey's connection was closed");
      assert.ok(elapsed <= (TTL_SECONDS + 3) * 1000, `cut off after ${elapsed} ms (ttl ${TTL_SECONDS} s)`);
      assert.match(String(closed), /authorization|expired/i);
      assert.ok(
        decisions(await metrics(), "refused", "unregistered") > before,
        "its re-login was refused as unregistered",
      );
      // The registered miner goes through the same expiry and is admitted again on its reconnect.
      await waitFor("the registered miner's re-admission", () => reconnects >= 1, { timeoutMs: 10_000 });
      await publish(jetstream(staying), names.heartbeat(miner.address));
      assert.equal(staying.isClosed(), false);
    });

    test("while the chain cannot be read, logins are refused (fail closed); then admitted again", async () => {
      const readyz = async () => (await get(`${metricsUrl}/readyz`)).status;
      await chain!.pause();
      try {
        await waitFor("the service to see the chain gone", async () => (await readyz()) === 503);
        // Connections still open from earlier tests log in again as their admissions expire:
        // count what this test adds, at least its own refusal.
        const before = decisions(await metrics(), "refused", "chain_unreachable");
        await assert.rejects(() => peer(miner, "miner"), /authorization violation/i);
        assert.ok(decisions(await metrics(), "refused", "chain_unreachable") > before);
      } finally {
        await chain!.restart();
      }
      await waitFor("the service back on the chain", async () => (await readyz()) === 200, {
        timeoutMs: 40_000,
      });
      await peer(miner, "miner");
    });
  },
);
