// The Helm chart a GPU provider installs: it ships exactly the generated CRDs and
// RBAC, refuses bad values with the field named, and installs onto a real API
// server into a namespace that enforces Pod Security "restricted".
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { AppsV1Api, CoreV1Api, ApiextensionsV1Api } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { binary, repoRoot } from "../stack/paths.ts";
import { waitFor } from "../stack/wait.ts";

const run = promisify(execFile);
const chart = join(repoRoot, "charts/covenant-operator");
const helm = (args: string[], env: Record<string, string> = {}) =>
  run(binary("helm"), args, {
    env: { ...process.env, HELM_CACHE_HOME: join(repoRoot, "build/helm-cache"), ...env },
    timeout: 120_000,
  });

const sameFiles = (a: string, b: string) => {
  const names = readdirSync(a).filter((n) => n.endsWith(".yaml"));
  assert.deepEqual(
    readdirSync(b)
      .filter((n) => n.endsWith(".yaml"))
      .sort(),
    names.sort(),
    `${b} lists ${a}`,
  );
  for (const n of names) assert.equal(readFileSync(join(b, n), "utf8"), readFileSync(join(a, n), "utf8"), n);
};

describe("Helm chart", { timeout: 240_000 }, () => {
  test("ships the generated CRDs and RBAC rules unchanged (run `make generate` when this fails)", () => {
    sameFiles(join(repoRoot, "crds"), join(chart, "crds"));
    sameFiles(join(repoRoot, "config/rbac"), join(chart, "files/rbac"));
  });

  test("lints cleanly and renders the operator's ClusterRole from the generated rules", async () => {
    await helm(["lint", "--strict", chart]);
    const { stdout } = await helm(["template", "covenant-operator", chart, "--namespace", "covenant-system"]);
    type Doc = { kind: string; metadata: { name: string }; rules?: unknown };
    const docs = parseAllDocuments(stdout)
      .map((d) => d.toJS() as Doc | null)
      .filter((d): d is Doc => d !== null);
    const role = docs.find((d) => d.kind === "ClusterRole" && d.metadata.name === "covenant-operator");
    const generated = parseAllDocuments(
      readFileSync(join(repoRoot, "config/rbac/role.yaml"), "utf8"),
    )[0]!.toJS() as {
      rules: unknown;
    };
    assert.deepEqual(role?.rules, generated.rules);
  });

  test("mounts the operator's NATS credentials and passes the bus and chain flags when asked", async () => {
    type Container = { args: string[]; volumeMounts?: { name: string; mountPath: string }[] };
    type Deployment = {
      kind: string;
      spec: {
        template: { spec: { containers: Container[]; volumes?: { secret?: { secretName: string } }[] } };
      };
    };
    const render = async (...set: string[]) => {
      const { stdout } = await helm(["template", "covenant", chart, ...set.flatMap((v) => ["--set", v])]);
      return parseAllDocuments(stdout)
        .map((d) => d.toJS() as Deployment | null)
        .find((d) => d?.kind === "Deployment")!.spec.template.spec;
    };
    const plain = await render();
    assert.ok(plain.containers[0]!.args.includes("--chain=true"));
    assert.ok(!plain.containers[0]!.args.some((a) => a.startsWith("--nats-creds")));
    assert.equal(plain.volumes, undefined);
    const withBus = await render(
      "bus.credentialsSecret=operator-nats",
      "bus.membership=false",
      "chain.enabled=false",
    );
    const args = withBus.containers[0]!.args;
    assert.ok(args.includes("--nats-creds=/etc/covenant/nats/nats.creds"), args.join(" "));
    assert.ok(args.includes("--membership=false"));
    assert.ok(args.includes("--chain=false"));
    assert.equal(withBus.volumes?.[0]?.secret?.secretName, "operator-nats");
    assert.equal(withBus.containers[0]!.volumeMounts?.[0]?.mountPath, "/etc/covenant/nats");
    assert.ok(args.includes("--provision-bus=false"), "only the organiser's operator provisions");
    // The organiser's operator on the 3-server TLS hub.
    const organiser = await render(
      "bus.credentialsSecret=operator-nats",
      "bus.provision=true",
      "bus.replicas=3",
      "bus.caSecret=hub-ca",
    );
    const hubArgs = organiser.containers[0]!.args;
    for (const a of ["--provision-bus=true", "--bus-replicas=3", "--nats-ca=/etc/covenant/nats-ca/ca.crt"]) {
      assert.ok(hubArgs.includes(a), `${a} in ${hubArgs.join(" ")}`);
    }
    assert.deepEqual(
      organiser.volumes?.map((v) => v.secret?.secretName),
      ["operator-nats", "hub-ca"],
    );
    assert.deepEqual(
      organiser.containers[0]!.volumeMounts?.map((m) => m.mountPath),
      ["/etc/covenant/nats", "/etc/covenant/nats-ca"],
    );
  });

  test("refuses bad values, naming the field", async () => {
    const bad: [string, RegExp][] = [
      ["replicaCount=0", /replicaCount/],
      ["image.digest=latest", /image\.digest|digest/],
      ["logging.level=loud", /logging\.level|level/],
      ["httpPort=80", /httpPort/],
      ["watchNamespace=Bad_Name", /watchNamespace/],
      ["bus.credentialsSecret=Not_A_Name", /credentialsSecret/],
      ["bus.membership=maybe", /membership/],
      ["bus.replicas=7", /replicas/],
      ["bus.caSecret=Not_A_Name", /caSecret/],
    ];
    for (const [set, field] of bad) {
      await assert.rejects(
        helm(["template", "covenant", chart, "--set", set]),
        (err: { stderr?: string }) => {
          assert.match(err.stderr ?? "", field, set);
          return true;
        },
      );
    }
  });

  describe("installed onto a real API server", () => {
    let kube: KubeStack;
    before(async () => {
      kube = await startKube({ controllerManager: true });
    });
    after(async () => {
      await kube?.stop();
    });

    test("installs CRDs, RBAC and an operator whose pods pass Pod Security restricted", async () => {
      const kc = kube.kubeConfig();
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespace({
        body: {
          metadata: {
            name: "covenant-system",
            labels: { "pod-security.kubernetes.io/enforce": "restricted" },
          },
        },
      });
      const env = { KUBECONFIG: kube.kubeconfigPath };
      await helm(["install", "covenant", chart, "--namespace", "covenant-system"], env);

      const ext = kc.makeApiClient(ApiextensionsV1Api);
      const crds = (await ext.listCustomResourceDefinition()).items.map((c) => c.metadata?.name).sort();
      assert.deepEqual(crds, ["covenantpeers.covenant.io", "trainingruns.covenant.io"]);

      // The ReplicaSet controller creates the pods only if admission lets them in.
      const pods = await waitFor(
        "operator pods admitted",
        async () => {
          const list = await core.listNamespacedPod({ namespace: "covenant-system" });
          return list.items.length === 2 ? list.items : undefined;
        },
        { timeoutMs: 60_000 },
      );
      for (const pod of pods) {
        const c = pod.spec?.containers[0];
        assert.equal(pod.spec?.securityContext?.runAsNonRoot, true);
        assert.equal(c?.securityContext?.allowPrivilegeEscalation, false);
        assert.deepEqual(c?.securityContext?.capabilities?.drop, ["ALL"]);
      }

      await helm(["uninstall", "covenant", "--namespace", "covenant-system", "--wait"], env);
      const apps = kc.makeApiClient(AppsV1Api);
      assert.equal((await apps.listNamespacedDeployment({ namespace: "covenant-system" })).items.length, 0);
      // Helm never deletes CRDs (and so never the runs they hold).
      assert.equal((await ext.listCustomResourceDefinition()).items.length, 2);
    });
  });
});
