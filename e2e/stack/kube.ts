// A real Kubernetes control plane on loopback for tests and the demo: etcd and
// kube-apiserver with TLS, client-certificate authentication and RBAC; optionally
// kube-scheduler and kube-controller-manager. Binaries come from tools/build.sh.
import { KubeConfig } from "@kubernetes/client-node";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { CertificateAuthority, serviceAccountKeys, type Identity } from "./certs.ts";
import { get } from "./http.ts";
import { binary, tempDir } from "./paths.ts";
import { freePort } from "./ports.ts";
import { ManagedProcess } from "./process.ts";
import { waitFor } from "./wait.ts";

export interface KubeStackOptions {
  /** Run kube-scheduler, so that pods get bound to nodes. */
  scheduler?: boolean;
  /** Run kube-controller-manager (garbage collection, service accounts, node lifecycle, ...). */
  controllerManager?: boolean;
  /** Extra kube-apiserver flags, e.g. ["--v=4"]. */
  apiserverArgs?: string[];
  /** Seconds to wait for every component; cold starts on two cores take a while. */
  timeoutSec?: number;
  /**
   * Where kube-apiserver listens: "127.0.0.1" (the default) or e.g. "0.0.0.0" for pods on a real
   * node (node.ts) to reach it at their node's bridge address, as a cluster without kube-proxy
   * must (pods cannot use the `kubernetes` Service's ClusterIP there). `server` stays loopback.
   */
  bindAddress?: string;
  /** More IP addresses for the serving certificate, e.g. a node's bridge address pods dial. */
  servingIps?: string[];
}

export interface UserCredentials {
  kubeconfigPath: string;
  kubeConfig(): KubeConfig;
}

export interface KubeStack extends UserCredentials {
  /** https://127.0.0.1:PORT */
  server: string;
  /** http://127.0.0.1:PORT of etcd, for tests that compact or inspect storage. */
  etcdUrl: string;
  /** Temporary directory holding certificates, kubeconfigs, data and logs. */
  dir: string;
  /** CA certificate (PEM) of the API server. */
  caPem: string;
  /** The same CA certificate as a file, for servers that trust the stack's clients (kubelets). */
  caFile: string;
  processes: ManagedProcess[];
  /** A client-certificate identity with no rights until RBAC grants them. */
  mintUser(name: string, groups?: string[]): Promise<UserCredentials>;
  /**
   * A kubelet's identities (e2e/stack/node.ts): the client certificate of `system:node:NAME` in
   * `system:nodes`, which the Node authorizer and NodeRestriction admission confine to that node
   * and its pods, and a serving certificate for its IP, which the API server verifies when it
   * calls the kubelet (logs, exec).
   */
  mintNode(name: string, ip: string): Promise<NodeCredentials>;
  stop(): Promise<void>;
}

export interface NodeCredentials extends UserCredentials {
  servingCertFile: string;
  servingKeyFile: string;
}

export async function startKube(opts: KubeStackOptions = {}): Promise<KubeStack> {
  const timeoutMs = (opts.timeoutSec ?? 120) * 1000;
  const tmp = tempDir("kube");
  const dir = tmp.path;
  const processes: ManagedProcess[] = [];
  const stopAll = async () => {
    for (const p of [...processes].reverse()) await p.stop();
  };
  try {
    const ca = CertificateAuthority.create(dir);
    const serving = ca.serving(
      "kube-apiserver",
      ["127.0.0.1", "10.0.0.1", ...(opts.servingIps ?? [])],
      [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
      ],
    );
    const sa = serviceAccountKeys(dir);
    // What the API server presents to kubelets: they trust the stack's CA, and the kubelet's
    // authorizer asks the API server about this user, whom system:masters lets do anything.
    const kubeletClient = ca.client("kube-apiserver-kubelet-client", ["system:masters"]);
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const server = `https://127.0.0.1:${apiPort}`;

    const etcd = ManagedProcess.start({
      name: "etcd",
      command: binary("etcd"),
      logFile: join(dir, "etcd.log"),
      args: [
        "--name=default",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
    });
    processes.push(etcd);
    await etcd.untilReady(
      waitFor("etcd health", async () => (await get(`${etcdUrl}/health`)).body.includes('"health":"true"'), {
        timeoutMs,
      }),
    );

    const apiserver = ManagedProcess.start({
      name: "kube-apiserver",
      command: binary("kube-apiserver"),
      logFile: join(dir, "kube-apiserver.log"),
      args: [
        `--etcd-servers=${etcdUrl}`,
        `--bind-address=${opts.bindAddress ?? "127.0.0.1"}`,
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        `--cert-dir=${dir}`,
        `--tls-cert-file=${serving.certFile}`,
        `--tls-private-key-file=${serving.keyFile}`,
        `--client-ca-file=${ca.certFile}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${sa.publicKeyFile}`,
        `--service-account-signing-key-file=${sa.privateKeyFile}`,
        "--service-cluster-ip-range=10.0.0.0/24",
        // Node authorizes kubelets (system:node:NAME) for their own node and pods, as in a real
        // cluster; nobody else is affected, and RBAC decides the rest.
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        // Kubelets of the stack's real nodes (node.ts): reached at their InternalIP (the host name
        // resolves to loopback here), over TLS verified against the stack's CA.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        `--kubelet-certificate-authority=${ca.certFile}`,
        `--kubelet-client-certificate=${kubeletClient.certFile}`,
        `--kubelet-client-key=${kubeletClient.keyFile}`,
        "--allow-privileged=true",
        "--profiling=false",
        // Without the controller manager nobody creates service accounts, so pods could not be admitted.
        ...(opts.controllerManager ? [] : ["--disable-admission-plugins=ServiceAccount"]),
        ...(opts.apiserverArgs ?? []),
      ],
    });
    processes.push(apiserver);

    const admin = ca.client("admin", ["system:masters"]);
    const adminKubeconfig = writeKubeconfig(dir, "admin", server, ca.certPem, admin);
    const tls = { ca: ca.certPem, cert: readFileSync(admin.certFile), key: readFileSync(admin.keyFile) };
    await apiserver.untilReady(
      waitFor("kube-apiserver /readyz", async () => (await get(`${server}/readyz`, tls)).status === 200, {
        timeoutMs,
        intervalMs: 250,
      }),
    );

    if (opts.scheduler) {
      const port = await freePort();
      const scheduler = ManagedProcess.start({
        name: "kube-scheduler",
        command: binary("kube-scheduler"),
        logFile: join(dir, "kube-scheduler.log"),
        args: [
          `--kubeconfig=${adminKubeconfig}`,
          `--authentication-kubeconfig=${adminKubeconfig}`,
          `--authorization-kubeconfig=${adminKubeconfig}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${port}`,
          `--cert-dir=${join(dir, "scheduler-certs")}`,
          "--leader-elect=false",
        ],
      });
      processes.push(scheduler);
      await scheduler.untilReady(probeHealthz("kube-scheduler", port, timeoutMs));
    }

    if (opts.controllerManager) {
      const port = await freePort();
      const cm = ManagedProcess.start({
        name: "kube-controller-manager",
        command: binary("kube-controller-manager"),
        logFile: join(dir, "kube-controller-manager.log"),
        args: [
          `--kubeconfig=${adminKubeconfig}`,
          `--authentication-kubeconfig=${adminKubeconfig}`,
          `--authorization-kubeconfig=${adminKubeconfig}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${port}`,
          `--cert-dir=${join(dir, "controller-manager-certs")}`,
          "--leader-elect=false",
          `--service-account-private-key-file=${sa.privateKeyFile}`,
          `--root-ca-file=${ca.certFile}`,
          "--use-service-account-credentials=false",
          // Faster node lifecycle than production, so node-loss tests take seconds.
          "--node-monitor-grace-period=20s",
          "--node-monitor-period=2s",
        ],
      });
      processes.push(cm);
      await cm.untilReady(probeHealthz("kube-controller-manager", port, timeoutMs));
    }

    const credentials = (kubeconfigPath: string): UserCredentials => ({
      kubeconfigPath,
      kubeConfig() {
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        return kc;
      },
    });

    return {
      ...credentials(adminKubeconfig),
      server,
      etcdUrl,
      dir,
      caPem: ca.certPem,
      caFile: ca.certFile,
      processes,
      async mintUser(name, groups = []) {
        const identity = ca.client(name, groups);
        return credentials(writeKubeconfig(dir, name, server, ca.certPem, identity));
      },
      async mintNode(name, ip) {
        const user = `system:node:${name}`;
        const identity = ca.client(user, ["system:nodes"]);
        const serving = ca.serving(`kubelet-${name}`, [ip], [name]);
        return {
          ...credentials(writeKubeconfig(dir, user, server, ca.certPem, identity)),
          servingCertFile: serving.certFile,
          servingKeyFile: serving.keyFile,
        };
      },
      async stop() {
        await stopAll();
        tmp.remove();
      },
    };
  } catch (err) {
    await stopAll();
    tmp.remove();
    throw err;
  }
}

function probeHealthz(name: string, port: number, timeoutMs: number): Promise<boolean> {
  return waitFor(
    `${name} /healthz`,
    async () =>
      (await get(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false })).status === 200,
    { timeoutMs, intervalMs: 250 },
  );
}

/** Writes a kubeconfig with the CA and the client certificate embedded. */
function writeKubeconfig(dir: string, name: string, server: string, caPem: string, id: Identity): string {
  const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "covenant-local", cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [
      {
        name,
        user: {
          "client-certificate-data": b64(readFileSync(id.certFile)),
          "client-key-data": b64(readFileSync(id.keyFile)),
        },
      },
    ],
    contexts: [{ name, context: { cluster: "covenant-local", user: name } }],
    "current-context": name,
  };
  const path = join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.kubeconfig`);
  writeFileSync(path, stringify(config), { mode: 0o600 });
  return path;
}
