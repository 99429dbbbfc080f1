// The Helm chart a GPU provider installs: it ships exactly the generated CRDs and
// RBAC, refuses bad values with the field named, and installs onto a real API
// server into a namespace that enforces Pod Security "restricted". The organiser's
// installation adds the run's admission service (admission.enabled).
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

// A pod template's parts the tests look at.
interface Container {
  name: string;
  image: string;
  command?: string[];
  args: string[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: {
    name: string;
    secret?: { secretName: string; defaultMode?: number; items?: { key: string; path: string }[] };
  }[];
}
interface Doc {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: {
    selector?: { matchLabels?: Record<string, string> } & Record<string, unknown>;
    template?: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

/** What the organiser sets to run the admission service (docs/admission.md). */
const ADMISSION = [
  "admission.enabled=true",
  "admission.run=llama-72b",
  "admission.netuid=3",
  "admission.chainEndpoint=wss://entrypoint-finney.opentensor.ai:443",
  "admission.natsUrls={tls://bus-0:4222,tls://bus-1:4222}",
  "admission.calloutSecret=admission-callout",
  "admission.issuerSecret=admission-issuer",
];
const isAdmission = (d: Doc) => d.metadata.labels?.["app.kubernetes.io/name"] === "covenant-admission";

describe("Helm chart", { timeout: 300_000 }, () => {
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

  test("runs covenant-admission from the operator image when enabled, and nothing of it otherwise", async () => {
    const renderAll = async (...set: string[]) => {
      const { stdout } = await helm(["template", "covenant", chart, ...set.flatMap((v) => ["--set", v])]);
      return parseAllDocuments(stdout)
        .map((d) => d.toJS() as Doc | null)
        .filter((d): d is Doc => d !== null);
    };
    const off = await renderAll("metrics.serviceMonitor.enabled=true");
    assert.deepEqual(off.filter(isAdmission), []);
    assert.ok(!off.some((d) => d.metadata.name.includes("admission")));

    const on = await renderAll(...ADMISSION, "bus.caSecret=hub-ca", "metrics.serviceMonitor.enabled=true");
    const operator = on.find((d) => d.kind === "Deployment" && !isAdmission(d))!;
    const admission = on.filter(isAdmission);
    assert.deepEqual(admission.map((d) => d.kind).sort(), ["Deployment", "Service", "ServiceMonitor"]);
    const deployment = admission.find((d) => d.kind === "Deployment")!;
    const pod = deployment.spec!.template!.spec;
    const c = pod.containers[0]!;
    assert.equal(pod.containers.length, 1);
    // The operator's image: the admission service is a second command in it.
    assert.equal(c.image, operator.spec!.template!.spec.containers[0]!.image);
    assert.match(c.image, /^ghcr\.io\/covenant-io\/covenant-operator@sha256:[0-9a-f]{64}$/);
    assert.deepEqual(c.command, ["/usr/local/bin/covenant-admission"]);
    assert.deepEqual(c.args, [
      "--run=llama-72b",
      "--netuid=3",
      "--chain-endpoint=wss://entrypoint-finney.opentensor.ai:443",
      "--nats-url=tls://bus-0:4222,tls://bus-1:4222",
      "--nats-creds=/etc/covenant/admission/callout/callout.nk",
      "--issuer-seed-file=/etc/covenant/admission/issuer/issuer.nk",
      "--nats-ca=/etc/covenant/nats-ca/ca.crt",
      "--ttl=5m",
      "--chain-timeout=3s",
      "--http-address=:8080",
      "--log-level=info",
    ]);
    // Seeds only as read-only files from their Secrets, never as values.
    assert.deepEqual(
      c.volumeMounts?.map((m) => [m.mountPath, m.readOnly]),
      [
        ["/etc/covenant/admission/callout", true],
        ["/etc/covenant/admission/issuer", true],
        ["/etc/covenant/nats-ca", true],
      ],
    );
    assert.deepEqual(
      pod.volumes?.map((v) => [v.name, v.secret?.secretName, v.secret?.items?.[0]?.key]),
      [
        ["callout-seed", "admission-callout", "callout.nk"],
        ["issuer-seed", "admission-issuer", "issuer.nk"],
        ["nats-ca", "hub-ca", "ca.crt"],
      ],
    );
    for (const v of pod.volumes!.slice(0, 2)) assert.equal(v.secret?.defaultMode, 0o440, v.name);
    assert.deepEqual(
      c.volumeMounts?.map((m) => m.name),
      pod.volumes?.map((v) => v.name),
    );
    // The operator's pod security, and no Kubernetes API token.
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.equal(pod.securityContext?.runAsUser, 65532);
    assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    assert.deepEqual(c.livenessProbe?.httpGet, { path: "/healthz", port: "http" });
    assert.deepEqual(c.readinessProbe?.httpGet, { path: "/readyz", port: "http" });
    assert.equal((deployment.spec as { replicas?: number }).replicas, 2);
    // Neither the operator's selectors nor the admission's take in the other's pods.
    const selects = (sel: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(sel).every(([k, v]) => labels[k] === v);
    const adLabels = deployment.spec!.template!.metadata.labels;
    const opLabels = operator.spec!.template!.metadata.labels;
    assert.ok(!selects(operator.spec!.selector!.matchLabels!, adLabels));
    assert.ok(!selects(deployment.spec!.selector!.matchLabels!, opLabels));
    const services = on.filter((d) => d.kind === "Service");
    assert.equal(services.length, 2);
    for (const svc of services) {
      const sel = svc.spec!.selector as Record<string, string>;
      assert.equal(selects(sel, adLabels), isAdmission(svc), svc.metadata.name);
    }

    // Other keys, validators, no TLS hub: the flags follow.
    const other = (
      await renderAll(
        ...ADMISSION,
        "admission.calloutKey=nats.creds",
        "admission.issuerSecret=admission-callout",
        "admission.issuerKey=issuer.seed",
        "admission.ttl=90s",
        "admission.validators={5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY}",
        "admission.replicas=1",
        "admission.logLevel=debug",
      )
    ).find((d) => isAdmission(d) && d.kind === "Deployment")!;
    const args = other.spec!.template!.spec.containers[0]!.args;
    for (const a of [
      "--nats-creds=/etc/covenant/admission/callout/nats.creds",
      "--issuer-seed-file=/etc/covenant/admission/issuer/issuer.seed",
      "--ttl=90s",
      "--validators=5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
      "--log-level=debug",
    ])
      assert.ok(args.includes(a), `${a} in ${args.join(" ")}`);
    assert.ok(!args.some((a) => a.startsWith("--nats-ca")));
    assert.deepEqual(
      other.spec!.template!.spec.volumes?.map((v) => [v.secret?.secretName, v.secret?.items?.[0]?.key]),
      [
        ["admission-callout", "nats.creds"],
        ["admission-callout", "issuer.seed"],
      ],
    );
  });

  test("refuses bad values, naming the field", async () => {
    // The admission service's required values, each left out in turn.
    const without = (key: string) => ADMISSION.filter((s) => !s.startsWith(`admission.${key}=`));
    const bad: [string | string[], RegExp][] = [
      ["replicaCount=0", /replicaCount/],
      ["image.digest=latest", /image\.digest|digest/],
      ["logging.level=loud", /logging\.level|level/],
      ["httpPort=80", /httpPort/],
      ["watchNamespace=Bad_Name", /watchNamespace/],
      ["bus.credentialsSecret=Not_A_Name", /credentialsSecret/],
      ["bus.membership=maybe", /membership/],
      ["bus.replicas=7", /replicas/],
      ["bus.caSecret=Not_A_Name", /caSecret/],
      ...["run", "netuid", "chainEndpoint", "natsUrls", "calloutSecret", "issuerSecret"].map(
        (key): [string[], RegExp] => [without(key), new RegExp(`admission/${key}'|property '${key}'`)],
      ),
      [[...ADMISSION, "admission.run=Llama_72B"], /admission\/run/],
      [[...ADMISSION, "admission.netuid=65536"], /admission\/netuid/],
      [[...ADMISSION, "admission.chainEndpoint=https://chain.example"], /admission\/chainEndpoint/],
      [[...ADMISSION, "admission.natsUrls={http://bus-0:4222}"], /admission\/natsUrls/],
      [[...ADMISSION, "admission.calloutSecret=Not_A_Name"], /admission\/calloutSecret/],
      [[...ADMISSION, "admission.issuerKey=a/b"], /admission\/issuerKey/],
      [[...ADMISSION, "admission.ttl=5 minutes"], /admission\/ttl/],
      [[...ADMISSION, "admission.validators={not-a-hotkey}"], /admission\/validators/],
      [[...ADMISSION, "admission.replicas=0"], /admission\/replicas/],
      [[...ADMISSION, "admission.logLevel=loud"], /admission\/logLevel/],
    ];
    for (const [set, field] of bad) {
      const sets = typeof set === "string" ? [set] : set;
      await assert.rejects(
        helm(["template", "covenant", chart, ...sets.flatMap((v) => ["--set", v])]),
        (err: { stderr?: string }) => {
          assert.match(err.stderr ?? "", field, sets.join(" "));
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

    test("installs the organiser's admission service, whose pods pass Pod Security restricted", async () => {
      const kc = kube.kubeConfig();
      const core = kc.makeApiClient(CoreV1Api);
      const namespace = "covenant-organiser";
      await core.createNamespace({
        body: {
          metadata: { name: namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
        },
      });
      const env = { KUBECONFIG: kube.kubeconfigPath };
      const set = [...ADMISSION, "bus.caSecret=hub-ca"].flatMap((v) => ["--set", v]);
      const { stdout } = await helm(["install", "organiser", chart, "--namespace", namespace, ...set], env);
      assert.match(stdout, /Admission service \(covenant-admission\) for run llama-72b on netuid 3/);

      const podsOf = (name: string) =>
        waitFor(
          `${name} pods admitted`,
          async () => {
            const list = await core.listNamespacedPod({
              namespace,
              labelSelector: `app.kubernetes.io/name=${name}`,
            });
            return list.items.length === 2 ? list.items : undefined;
          },
          { timeoutMs: 60_000 },
        );
      const admission = await podsOf("covenant-admission");
      for (const pod of admission) {
        const c = pod.spec?.containers[0];
        assert.equal(pod.spec?.automountServiceAccountToken, false);
        assert.equal(pod.spec?.securityContext?.runAsNonRoot, true);
        assert.equal(pod.spec?.securityContext?.seccompProfile?.type, "RuntimeDefault");
        assert.deepEqual(c?.command, ["/usr/local/bin/covenant-admission"]);
        assert.equal(c?.securityContext?.allowPrivilegeEscalation, false);
        assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
        assert.deepEqual(c?.securityContext?.capabilities?.drop, ["ALL"]);
      }
      // The operator's own two, apart from the admission's.
      const operators = await podsOf("covenant-operator");
      assert.ok(operators.every((p) => p.spec?.containers[0]?.name === "operator"));
      const apps = kc.makeApiClient(AppsV1Api);
      assert.equal((await apps.listNamespacedDeployment({ namespace })).items.length, 2);

      await helm(["uninstall", "organiser", "--namespace", namespace, "--wait"], env);
      assert.equal((await apps.listNamespacedDeployment({ namespace })).items.length, 0);
    });
  });
});
