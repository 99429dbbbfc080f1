// A real Kubernetes node for tests and the demo: containerd (CRI, runc, overlayfs), a CNI bridge
// and a kubelet built from the same pinned Kubernetes as the control plane (tools/build.sh),
// joined to a stack from kube.ts. Pods run as containers from images imported out of local OCI
// archives (no registry). GPUs come from a device-plugin stand-in (device-plugin.ts). The facts
// behind the settings: ../shared/reference/real-kubelet.md; usage: docs/testing.md, "Real nodes".
//
// A node touches the rest of the machine as little as it can, so that stop() (or the reapers,
// when the test process is killed) leaves nothing, and nodes of tests running side by side never
// meet (e2e/stack/node-ns.sh holds the three things below and removes them):
// - a private mount namespace that containerd and the kubelet share: /run, /var/lib and /var/log
//   are the node's own directories there, so every mount they make, the kubelet's device-plugin
//   socket, the CRI's network namespaces, runc's state and the pod logs (all at fixed paths) live
//   and end with it. The kernel settings the kubelet insists on are files there, not the host's.
// - its own cgroup tree (the kubelet's cgroupRoot) holding containerd, the kubelet, the shims and
//   every container: what is in it is the node, and killing it all is a lost node.
// - its own bridge and /24, named after the node's directory. The bridge address is the node's
//   InternalIP. No iptables rule is made (kubelet makeIPTablesUtilChains false, CNI ipMasq
//   false, isGateway false: the address is set here, so ip_forward is left alone).
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CoreV1Api, type V1Node } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { type DevicePluginStandIn, startDevicePlugin } from "./device-plugin.ts";
import type { KubeStack } from "./kube.ts";
import { localImages } from "./local-images.ts";
import { binary, systemBinary, tempDir } from "./paths.ts";
import { isAlive } from "./proc.ts";
import { freePort } from "./ports.ts";
import { ManagedProcess } from "./process.ts";
import { waitFor } from "./wait.ts";

const run = promisify(execFile);
const nodeNs = join(dirname(fileURLToPath(import.meta.url)), "node-ns.sh");
const cniBin = "/usr/lib/cni";
/** Where a node's pod subnet is picked when none is given: 10.200.0.0/24 ... 10.215.255.0/24. */
const SUBNET_POOL = { first: 200, count: 16 };

export interface NodeOptions {
  /** The Node's name (and host name). */
  name: string;
  /** `nvidia.com/gpu` devices the device-plugin stand-in advertises; none when 0 or absent. */
  gpus?: number;
  /** The node's pod subnet, a /24 such as "10.201.7.0/24"; a free one is picked when absent. */
  podCidr?: string;
  /** OCI archives (e.g. build/images/*.oci.tar) to import besides the stack's own images. */
  images?: string[];
  /** Node labels the kubelet registers with (NodeRestriction allows only some domains). */
  labels?: Record<string, string>;
  /** Seconds to wait for each step; a loaded two-core machine needs a while. */
  timeoutSec?: number;
}

export interface KubeNode {
  name: string;
  /** The node's directory: containerd's and the kubelet's state, configuration and logs. */
  dir: string;
  /** InternalIP: the bridge address. The API server reaches the kubelet here, pods the host. */
  ip: string;
  podCidr: string;
  bridge: string;
  /** The node's cgroup under every hierarchy: /sys/fs/cgroup/<controller>/<cgroup>. */
  cgroup: string;
  containerdSocket: string;
  processes: ManagedProcess[];
  devicePlugin: DevicePluginStandIn | undefined;
  /** Milliseconds each start step took (containerd, images, kubelet, ready, gpus). */
  timings: Record<string, number>;
  /** Imports OCI archives into the node's containerd, by name and by repository@digest. */
  importImages(archives: string[]): Promise<void>;
  /** Image references the node holds (what the CRI can run without pulling). */
  images(): Promise<string[]>;
  /** Node loss: the kubelet, containerd, every container and the device plugin die at once. */
  kill(): Promise<void>;
  /** Ends every process of the node and removes all it made; throws naming what is left. */
  stop(): Promise<void>;
  /** What of this node remains on the machine (empty once stop() has succeeded). */
  leftovers(): string[];
}

export async function startNode(kube: KubeStack, opts: NodeOptions): Promise<KubeNode> {
  const timeoutMs = (opts.timeoutSec ?? 120) * 1000;
  const podCidr = opts.podCidr ?? (await freeSubnet());
  const ip = gatewayOf(podCidr);
  const tmp = tempDir("node");
  const dir = tmp.path;
  // The directory's name carries the test run's id (paths.ts): so do the cgroup and the bridge's
  // alias, which lets scripts/check-leftovers.sh tell this run's leftovers from another's.
  const cgroup = basename(dir);
  const bridge = `cvn${dir.slice(-6)}`;
  const processes: ManagedProcess[] = [];
  const timings: Record<string, number> = {};
  const socket = join(dir, "containerd", "containerd.sock");
  let holder: ManagedProcess | undefined;
  let devicePlugin: DevicePluginStandIn | undefined;
  let nsInode = "";

  const ctr = (...args: string[]) =>
    run(systemBinary("ctr"), ["--address", socket, "--namespace", "k8s.io", ...args], {
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
    });

  const leftovers = (): string[] => {
    const left: string[] = [];
    for (const p of processes) if (p.running) left.push(`process ${p.name} (pid ${p.pid})`);
    for (const m of mountsUnder(dir)) left.push(`mount ${m}`);
    for (const h of cgroupHierarchies()) if (existsSync(join(h, cgroup))) left.push(`cgroup ${h}/${cgroup}`);
    if (existsSync(`/sys/class/net/${bridge}`)) left.push(`bridge ${bridge}`);
    for (const pid of mountNamespaceMembers(nsInode))
      left.push(`process ${pid} in the node's mount namespace`);
    return left;
  };

  const cleanup = async (): Promise<void> => {
    await devicePlugin?.stop();
    for (const p of [...processes].reverse()) await p.stop(p === holder ? 30_000 : 10_000);
    // The holder's trap and its guard ran the same cleanup; wait for the guard, then once more
    // here, in case neither got to run (the cleanup is idempotent).
    const guard = readPid(join(dir, "guard.pid"));
    if (guard !== undefined) {
      await waitFor("node guard exit", () => !isAlive(guard), { timeoutMs: 60_000, intervalMs: 100 }).catch(
        () => {},
      );
    }
    await run(nodeNs, ["cleanup", cgroup, bridge], { timeout: 60_000 }).catch(() => {});
  };

  const stop = async (): Promise<void> => {
    await cleanup();
    const left = leftovers();
    tmp.remove();
    if (left.length > 0) throw new Error(`node ${opts.name} left behind:\n  ${left.join("\n  ")}`);
  };

  try {
    const step = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
      const start = Date.now();
      const value = await body();
      timings[name] = Date.now() - start;
      return value;
    };

    makeCgroups(cgroup);
    await makeBridge(bridge, ip, podCidr, cgroup);
    const images = await localImages();
    writeCniConfig(dir, opts.name, bridge, podCidr, ip);
    const containerdConfig = writeContainerdConfig(dir, socket, images.pause.name);

    // The holder owns the mount namespace; containerd and the kubelet enter it (node-ns.sh).
    holder = ManagedProcess.start({
      name: `node-ns ${opts.name}`,
      command: nodeNs,
      args: ["hold", dir, cgroup, bridge],
      logFile: join(dir, "node-ns.log"),
    });
    processes.push(holder);
    const holderPid = await holder.untilReady(
      waitFor("node mount namespace", () => readPid(join(dir, "ns.pid")), { timeoutMs }),
    );
    nsInode = readlinkSync(`/proc/${holderPid}/ns/mnt`);
    const inNode = (name: string, command: string, args: string[]) => {
      const p = ManagedProcess.start({
        name: `${name} ${opts.name}`,
        command: nodeNs,
        args: ["exec", cgroup, String(holderPid), command, ...args],
        logFile: join(dir, `${name}.log`),
      });
      processes.push(p);
      return p;
    };

    await step("containerd", async () => {
      const containerd = inNode("containerd", systemBinary("containerd"), ["--config", containerdConfig]);
      await containerd.untilReady(
        waitFor("containerd", () => ctr("version").then(() => true), { timeoutMs, intervalMs: 250 }),
      );
    });

    const importImages = async (archives: string[]): Promise<void> => {
      for (const archive of archives) await ctr("images", "import", archive);
      await tagByDigest(ctr);
    };
    await step("images", () =>
      importImages([images.pause.archive, images.testServer.archive, ...(opts.images ?? [])]),
    );

    const core = kube.kubeConfig().makeApiClient(CoreV1Api);
    let kubelet: ManagedProcess | undefined;
    await step("kubelet", async () => {
      const credentials = await kube.mintNode(opts.name, ip);
      const config = writeKubeletConfig(dir, {
        ip,
        port: await freePort(),
        healthzPort: await freePort(),
        caFile: kube.caFile,
        certFile: credentials.servingCertFile,
        keyFile: credentials.servingKeyFile,
        cgroup,
        socket,
      });
      const labels = Object.entries(opts.labels ?? {}).map(([k, v]) => `${k}=${v}`);
      kubelet = inNode("kubelet", binary("kubelet"), [
        `--config=${config}`,
        `--kubeconfig=${credentials.kubeconfigPath}`,
        `--root-dir=${join(dir, "var-lib", "kubelet")}`,
        `--cert-dir=${join(dir, "kubelet-pki")}`,
        `--hostname-override=${opts.name}`,
        `--node-ip=${ip}`,
        ...(labels.length > 0 ? [`--node-labels=${labels.join(",")}`] : []),
        "--v=2",
      ]);
      await kubelet.untilReady(
        waitFor("Node registered", () => core.readNode({ name: opts.name }).then(() => true), {
          timeoutMs,
          intervalMs: 250,
        }),
      );
    });

    await step("ready", async () => {
      await kubelet!.untilReady(
        waitFor("Node Ready", async () => isReady(await core.readNode({ name: opts.name })), {
          timeoutMs,
          intervalMs: 250,
        }),
      );
      await untaintWhenReady(core, opts.name, timeoutMs);
    });

    if (opts.gpus) {
      const count = opts.gpus;
      await step("gpus", async () => {
        devicePlugin = await startDevicePlugin({
          dir: join(dir, "var-lib", "kubelet", "device-plugins"),
          count,
        });
        await waitFor(
          `${count} nvidia.com/gpu allocatable`,
          async () =>
            (await core.readNode({ name: opts.name })).status?.allocatable?.["nvidia.com/gpu"] ===
            String(count),
          { timeoutMs, intervalMs: 250 },
        );
      });
    }

    return {
      name: opts.name,
      dir,
      ip,
      podCidr,
      bridge,
      cgroup,
      containerdSocket: socket,
      processes,
      get devicePlugin() {
        return devicePlugin;
      },
      timings,
      importImages,
      async images() {
        const { stdout } = await ctr("images", "list", "--quiet");
        return stdout.split("\n").filter(Boolean);
      },
      async kill() {
        await devicePlugin?.stop();
        // Everything in the node's cgroup: kubelet, containerd, shims, containers; the holder
        // (outside it) keeps the namespace and the bridge until stop().
        await run(nodeNs, ["kill", cgroup], { timeout: 60_000 });
        for (const p of processes) if (p !== holder) await p.exited;
      },
      stop,
      leftovers,
    };
  } catch (err) {
    await cleanup().catch(() => {});
    tmp.remove();
    throw err;
  }
}

// ---- host resources: cgroups, bridge, subnet -----------------------------------------------

/** The mounted cgroup hierarchies: every v1 controller here, and the v2 one beside them. */
function cgroupHierarchies(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .filter((f) => f[f.indexOf("-") + 1]?.startsWith("cgroup"))
    .map((f) => f[4]!)
    .filter((path) => path.startsWith("/sys/fs/cgroup/"));
}

/**
 * The node's cgroup and its `runtime` child (containerd and the kubelet) in every hierarchy: the
 * kubelet requires its cgroupRoot to exist, and a cpuset cgroup takes no process until it has
 * CPUs and memory nodes (a new one starts with none).
 */
function makeCgroups(cgroup: string): void {
  for (const h of cgroupHierarchies()) {
    for (const path of [join(h, cgroup), join(h, cgroup, "runtime")]) {
      mkdirSync(path, { recursive: true });
      if (basename(h) === "cpuset") {
        for (const f of ["cpuset.cpus", "cpuset.mems"])
          writeFileSync(join(path, f), readFileSync(join(h, f)));
      }
    }
  }
}

/**
 * The node's bridge with its gateway address, made before the kubelet starts because that
 * address is the node's IP (the kubelet refuses a loopback one). The CNI bridge plugin adopts it.
 * Its alias names the node's directory, for the leftover check.
 */
async function makeBridge(bridge: string, ip: string, podCidr: string, alias: string): Promise<void> {
  const prefix = podCidr.split("/")[1];
  const ipCmd = (...args: string[]) => run(systemBinary("ip"), args);
  await ipCmd("link", "add", bridge, "type", "bridge");
  await ipCmd("link", "set", bridge, "alias", alias);
  await ipCmd("addr", "add", `${ip}/${prefix}`, "dev", bridge);
  await ipCmd("link", "set", bridge, "up");
}

/**
 * A /24 in the pool that no interface address or route of the machine uses yet. Exported for a
 * test that must know its node's address (gatewayOf) before the node starts, e.g. to put it in
 * the API server's certificate (kube.ts servingIps); it then passes it as `podCidr`.
 */
export async function freeSubnet(): Promise<string> {
  const { stdout: addrs } = await run(systemBinary("ip"), ["-4", "-o", "addr", "show"]);
  const { stdout: routes } = await run(systemBinary("ip"), ["-4", "route", "show", "table", "all"]);
  const used = `${addrs}\n${routes}`;
  for (let attempt = 0; attempt < 100; attempt++) {
    const second = SUBNET_POOL.first + Math.floor(Math.random() * SUBNET_POOL.count);
    const third = Math.floor(Math.random() * 256);
    const net = `10.${second}.${third}.`;
    if (!new RegExp(`(^|[^0-9])${net.replaceAll(".", "\\.")}`, "m").test(used)) return `${net}0/24`;
  }
  throw new Error("no free /24 for a node's pods in 10.200.0.0/12");
}

/** The node's address on its pod subnet (the bridge's, and the node's InternalIP): x.y.z.1. */
export function gatewayOf(podCidr: string): string {
  const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(podCidr);
  if (!m) throw new Error(`podCidr must be a /24 such as 10.201.7.0/24, not ${podCidr}`);
  return `${m[1]}.1`;
}

/** Mount points under `dir` in this (the host's) mount namespace. */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Processes still in the node's mount namespace ("mnt:[inode]"). */
function mountNamespaceMembers(ns: string): number[] {
  if (!ns) return [];
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/mnt`) === ns) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

// ---- configuration files ------------------------------------------------------------------

/** bridge + host-local: pods get addresses on the node's /24 and a default route via the bridge. */
function writeCniConfig(dir: string, node: string, bridge: string, podCidr: string, gateway: string): void {
  const conf = {
    cniVersion: "1.0.0",
    name: `covenant-${node}`,
    plugins: [
      {
        type: "bridge",
        bridge,
        // The address is already on the bridge (makeBridge): the plugin need not add it, and so
        // does not switch on the machine's ip_forward either. Nothing is masqueraded.
        isGateway: false,
        ipMasq: false,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: podCidr, gateway }]],
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: join(dir, "cni", "ipam"),
        },
      },
    ],
  };
  mkdirSync(join(dir, "cni", "net.d"), { recursive: true });
  writeFileSync(join(dir, "cni", "net.d", "10-covenant.conflist"), JSON.stringify(conf, null, 2));
}

/** containerd 1.6 (Debian's), CRI plugin included, everything under the node's directory. */
function writeContainerdConfig(dir: string, socket: string, sandboxImage: string): string {
  const d = (...p: string[]) => JSON.stringify(join(dir, ...p));
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const config = `version = 2
root = ${d("containerd", "root")}
state = ${d("containerd", "state")}
# /opt/containerd and the snapshotters this machine cannot use
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = ${JSON.stringify(socket)}

[ttrpc]
  address = ${JSON.stringify(`${socket}.ttrpc`)}

[${cri}]
  sandbox_image = ${JSON.stringify(sandboxImage)}
  # Root here lacks CAP_SYS_RESOURCE: runc must not try to lower oom_score_adj.
  restrict_oom_score_adj = true
  # exec, attach and port-forward streams; a fixed port would clash between nodes.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = ${JSON.stringify(systemBinary("runc"))}

[${cri}.cni]
  bin_dir = ${JSON.stringify(cniBin)}
  conf_dir = ${d("cni", "net.d")}
  max_conf_num = 1
`;
  const path = join(dir, "containerd.toml");
  mkdirSync(dirname(socket), { recursive: true });
  writeFileSync(path, config);
  return path;
}

interface KubeletSettings {
  ip: string;
  port: number;
  healthzPort: number;
  caFile: string;
  certFile: string;
  keyFile: string;
  cgroup: string;
  socket: string;
}

function writeKubeletConfig(dir: string, s: KubeletSettings): string {
  const config = {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: s.ip,
    port: s.port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: s.healthzPort,
    tlsCertFile: s.certFile,
    tlsPrivateKeyFile: s.keyFile,
    // Callers must hold a certificate of the stack's CA (the API server does) or a token the API
    // server vouches for, and the API server decides what each may do: as in a real cluster.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: s.caFile },
    },
    authorization: { mode: "Webhook" },
    containerRuntimeEndpoint: `unix://${s.socket}`,
    cgroupDriver: "cgroupfs",
    cgroupRoot: `/${s.cgroup}`,
    failSwapOn: false,
    failCgroupV1: false,
    // node-ns.sh shows the kubelet these as they should be; refuse rather than write the host's.
    protectKernelDefaults: true,
    // No KUBE-FIREWALL and canary chains on the host: nothing here needs them (no kube-proxy).
    makeIPTablesUtilChains: false,
    // Root here cannot lower its oom_score_adj.
    oomScoreAdj: 0,
    // A small, shared test disk must neither evict test pods nor collect their images.
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    resolvConf: "/etc/resolv.conf",
    // Faster than production, so tests see pod changes (and GPUs) sooner. The controller manager
    // declares a node lost 20 s after its last status (kube.ts).
    nodeStatusUpdateFrequency: "3s",
    // ... but posts an unchanged status only this often (the Lease says it is alive meanwhile).
    nodeStatusReportFrequency: "1m",
    syncFrequency: "10s",
    fileCheckFrequency: "5s",
  };
  const path = join(dir, "kubelet.yaml");
  writeFileSync(path, stringify(config));
  return path;
}

// ---- images and the Node object ------------------------------------------------------------

/**
 * Adds a repository@digest name to every image imported by name, as a registry pull records both:
 * pods that pin an image by digest (the operator's do) find it without pulling.
 */
async function tagByDigest(ctr: (...args: string[]) => Promise<{ stdout: string }>): Promise<void> {
  const { stdout } = await ctr("images", "list");
  const have = new Set<string>();
  const tagged: [string, string][] = [];
  for (const line of stdout.split("\n").slice(1)) {
    const [ref, , digest] = line.split(/\s+/);
    // The CRI also names each image by its ID (sha256:...): that one has no repository.
    if (!ref || ref.startsWith("sha256:") || !digest?.startsWith("sha256:")) continue;
    have.add(ref);
    if (!ref.includes("@")) tagged.push([ref, `${ref.replace(/:[^:/]+$/, "")}@${digest}`]);
  }
  for (const [ref, byDigest] of tagged) if (!have.has(byDigest)) await ctr("images", "tag", ref, byDigest);
}

function isReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/**
 * The node lifecycle controller lifts the not-ready taint of a Ready node; without a controller
 * manager nobody would, so it is lifted here too (both do the same, whichever comes first).
 */
async function untaintWhenReady(core: CoreV1Api, name: string, timeoutMs: number): Promise<void> {
  const notReady = "node.kubernetes.io/not-ready";
  await waitFor(
    "not-ready taint lifted",
    async () => {
      const node = await core.readNode({ name });
      const taints = node.spec?.taints ?? [];
      if (!taints.some((t) => t.key === notReady)) return true;
      node.spec!.taints = taints.filter((t) => t.key !== notReady);
      await core.replaceNode({ name, body: node }); // a conflict retries with a fresh read
      return false;
    },
    { timeoutMs, intervalMs: 500 },
  );
}
