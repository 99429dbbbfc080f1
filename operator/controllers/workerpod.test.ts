import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fieldChange } from "../../api/index.ts";
import { controllerOptions } from "./options.ts";
import { TEST_IMAGE, makePeer, makeRun } from "./testing.ts";
import { desiredWorkerPod, specHashOf, workerPodName } from "./workerpod.ts";

const opts = controllerOptions();

describe("desiredWorkerPod", () => {
  const run = makeRun("run").defaulted();
  const peer = makePeer("alice").defaulted();
  const pod = desiredWorkerPod(peer, run, opts);
  const c = pod.spec!.containers[0]!;

  it("requests the peer's GPUs (default 8) and places on B200 nodes", () => {
    assert.equal(c.resources?.requests?.["nvidia.com/gpu"], "8");
    assert.equal(c.resources?.limits?.["nvidia.com/gpu"], "8");
    assert.equal(pod.spec?.nodeSelector?.["nvidia.com/gpu.product"], "NVIDIA-B200");
    assert.ok(pod.spec?.tolerations?.some((t) => t.key === "nvidia.com/gpu" && t.operator === "Exists"));
    assert.equal(c.image, TEST_IMAGE);
  });

  it("meets Pod Security restricted", () => {
    assert.equal(pod.spec?.securityContext?.runAsNonRoot, true);
    assert.equal(pod.spec?.securityContext?.seccompProfile?.type, "RuntimeDefault");
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"]);
    assert.equal(pod.spec?.automountServiceAccountToken, false);
  });

  it("mounts a memory /dev/shm, the run config and the hotkey read-only, and exposes metrics on 9400", () => {
    const shm = pod.spec?.volumes?.find((v) => v.name === "shm");
    assert.equal(shm?.emptyDir?.medium, "Memory");
    assert.equal(shm?.emptyDir?.sizeLimit, "64Gi");
    assert.equal(pod.spec?.volumes?.find((v) => v.name === "run-config")?.configMap?.name, "run-run-config");
    assert.equal(pod.spec?.volumes?.find((v) => v.name === "hotkey")?.secret?.secretName, "alice-hotkey");
    for (const m of ["run-config", "hotkey"]) {
      assert.equal(c.volumeMounts?.find((v) => v.name === m)?.readOnly, true, m);
    }
    assert.equal(c.volumeMounts?.find((v) => v.name === "shm")?.mountPath, "/dev/shm");
    assert.deepEqual(c.ports, [{ name: "metrics", containerPort: 9400, protocol: "TCP" }]);
  });

  it("is owned by its peer and named deterministically", () => {
    assert.equal(pod.metadata?.name, workerPodName("alice"));
    const ref = pod.metadata?.ownerReferences?.[0];
    assert.equal(ref?.kind, "CovenantPeer");
    assert.equal(ref?.uid, "uid-peer-alice");
    assert.equal(ref?.controller, true);
  });

  it("honours overrides: GPUs, product label, empty product, extra tolerations and NATS credentials", () => {
    const p = makePeer("bob")
      .gpus(4)
      .set("spec.placement.gpuProductLabel", "example.com/gpu")
      .set("spec.placement.gpuProduct", "H200")
      .set("spec.placement.tolerations", [
        { key: "dedicated", operator: "Equal", value: "ml", effect: "NoSchedule" },
      ])
      .defaulted();
    const r = makeRun("run").set("spec.transport.credentialsSecretRef", { name: "nats" }).defaulted();
    const got = desiredWorkerPod(p, r, opts);
    assert.equal(got.spec?.containers[0]?.resources?.requests?.["nvidia.com/gpu"], "4");
    assert.deepEqual(got.spec?.nodeSelector, { "example.com/gpu": "H200" });
    assert.ok(got.spec?.tolerations?.some((t) => t.key === "dedicated"));
    assert.equal(
      got.spec?.volumes?.find((v) => v.name === "nats-creds")?.secret?.items?.[0]?.key,
      "nats.creds",
    );
    const any = desiredWorkerPod(makePeer("c").set("spec.placement.gpuProduct", "").defaulted(), r, opts);
    assert.deepEqual(any.spec?.nodeSelector, {});
  });

  it("mounts the bus CA a run names, read-only, for a worker that logs in by its hotkey", () => {
    const r = makeRun("run").set("spec.transport.caSecretRef", { name: "hub-ca" }).defaulted();
    const got = desiredWorkerPod(peer, r, opts);
    const c = got.spec!.containers[0]!;
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.COVENANT_BUS_CA, "/etc/covenant/bus-ca/ca.crt");
    // No credentials Secret: no creds file, so the worker's default login is its hotkey.
    assert.equal(env.COVENANT_NATS_CREDS, undefined);
    assert.equal(
      got.spec?.volumes?.some((v) => v.name === "nats-creds"),
      false,
    );
    assert.deepEqual(
      c.volumeMounts?.find((m) => m.name === "bus-ca"),
      { name: "bus-ca", mountPath: "/etc/covenant/bus-ca", readOnly: true },
    );
    assert.deepEqual(got.spec?.volumes?.find((v) => v.name === "bus-ca")?.secret, {
      secretName: "hub-ca",
      items: [{ key: "ca.crt", path: "ca.crt" }],
      defaultMode: 0o444,
    });
    // Read once by the worker: naming or changing the CA replaces the pods.
    assert.notEqual(specHashOf(got), specHashOf(desiredWorkerPod(peer, run, opts)));
    const other = makeRun("run").set("spec.transport.caSecretRef", { name: "hub-ca", key: "bundle.pem" });
    assert.notEqual(specHashOf(desiredWorkerPod(peer, other.defaulted(), opts)), specHashOf(got));
    assert.equal(fieldChange("spec.transport").change, "rollout", "spec.transport covers caSecretRef");
    // Without one, no CA is mounted: the system's CAs verify a tls:// bus.
    assert.equal(
      desiredWorkerPod(peer, run, opts).spec?.containers[0]?.env?.some((e) => e.name === "COVENANT_BUS_CA"),
      false,
    );
  });

  it("the spec hash follows the spec and nothing else", () => {
    assert.equal(specHashOf(desiredWorkerPod(peer, run, opts)), specHashOf(pod));
    const other = makeRun("run")
      .image("x@sha256:" + "f".repeat(64))
      .defaulted();
    assert.notEqual(specHashOf(desiredWorkerPod(peer, other, opts)), specHashOf(pod));
  });

  it("the hash covers where the worker reaches the bus and the chain, not the round-level config", () => {
    const base = specHashOf(desiredWorkerPod(peer, run, opts));
    const hashWith = (path: string, value: unknown) =>
      specHashOf(desiredWorkerPod(peer, makeRun("run").set(path, value).defaulted(), opts));
    assert.notEqual(hashWith("spec.transport.natsUrl", "nats://elsewhere:4222"), base);
    assert.notEqual(hashWith("spec.chain.endpoint", "wss://chain.example"), base);
    assert.notEqual(hashWith("spec.chain.register", true), base);
    assert.equal(hashWith("spec.innerSteps", 99), base, "adopted by config epochs, not new pods");
    assert.equal(hashWith("spec.outer.learningRate", 0.5), base);
    assert.equal(hashWith("spec.membership.podGraceSeconds", 5), base);
  });
});
