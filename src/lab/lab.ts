/**
 * The lab: the whole fabric on one machine (DESIGN.md §1, issue 8). N hosts are network
 * namespaces on one bridge that lives in the lab's own "fabric" namespace (the root namespace
 * is never touched), each running a real calico-node (dataplane and BGP mesh) inside it. The
 * datastore is a sqlite file in the state directory, or a real etcd inside the fabric namespace
 * on the bridge address. Workloads are namespaces attached by the real `calico` CNI plugin,
 * each running a probe agent, so connectivity is measured with real packets.
 *
 *            fabric ns: br0 198.18.0.254 / fd00::fe   (etcd listens here with --datastore etcd)
 *           /               |               \
 *   h1 198.18.0.1     h2 198.18.0.2     h3 198.18.0.3     calico-node in each; BGP mesh
 *     |  cali…            |  cali…          |  cali…
 *   frontend           backend, client     db             workload namespaces (CNI), 198.19.0.0/16
 *
 * calico-apiserver serves the datastore on 198.18.0.254:5473 in the fabric namespace. With
 * `--tor` the mesh is off and every host peers with a BIRD route reflector (lab-tor.ts).
 *
 * Everything made is recorded in the state file (lab-state.ts) before it is made, and every
 * namespace carries the lab's prefix, so `labDown` removes all of it even after a crash.
 * docs/lab.md has the details.
 */
import { setBigTcp } from "../dataplane/big-tcp.js";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run, runOk, type RunResult } from "../dataplane/netns.js";
import { CalicoError } from "../errors.js";
import { installCni } from "../cni/install.js";
import { PLUGIN_MAIN } from "../cni/plugin-paths.js";
import { readAgentStatus } from "./agent-status.js";
import { DEMO_NAMESPACE, DEMO_WORKLOADS, LAB_PROBE_PORTS, demoExpect, demoResources } from "./lab-demo.js";
import { labDatastore, type LabDsReply, type LabDsRequest } from "./lab-datastore.js";
import { connectivityMatrix, type MatrixCell } from "./lab-probe.js";
import { isOurs, spawnDetached, stopProcesses } from "./lab-procs.js";
import {
  LAB_STATE_VERSION,
  readLabState,
  removeStateDir,
  requireLabState,
  withLabLock,
  writeLabState,
  type LabDatastoreKind,
  type LabHost,
  type LabLocation,
  type LabState,
  type LabTor,
  type LabWorkload,
} from "./lab-state.js";
import { listNetns } from "./netns-set.js";
import { BIRD_BIN, EXT_V4, TOR_V4, torSessions, wireTor, torResources, type TorSession } from "./lab-tor.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const NODE_MAIN = join(HERE, "..", "agent", "main.js");
const WORKLOAD_MAIN = join(HERE, "lab-workload-main.js");
export const ETCD_BIN = process.env.ETCD_BIN ?? "/usr/bin/etcd";

export const FABRIC_V4 = "198.18.0.254";
export const FABRIC_V6 = "fd00::fe";
const ETCD_URL = `etcd://${FABRIC_V4}:2379`;
export const APISERVER_URL = `http://${FABRIC_V4}:5473`;
const APISERVER_MAIN = join(HERE, "..", "apiserver", "main.js");
export const MAX_LAB_HOSTS = 200;

export interface LabUpOptions {
  nodes: number;
  ipv6: boolean;
  datastore: LabDatastoreKind;
  /** A BIRD ToR router with the mesh off, and a plain host behind it (lab-tor.ts). */
  tor?: boolean;
  /** Start calico-apiserver in the fabric namespace (default true). */
  apiserver?: boolean;
  /** Start the demo workloads and policies (default true). */
  demo?: boolean;
  /** BIG TCP (192 KiB GSO/GRO) on every lab link and workload veth when the kernel can (default true). */
  bigTcp?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

const hostV4 = (i: number) => `198.18.0.${i}`;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function labError(code: string, message: string, cause?: unknown): CalicoError {
  return new CalicoError(code, message, cause !== undefined ? { cause } : undefined);
}

/** Everything `lab up` needs that is not ours to install. */
async function checkPrerequisites(kind: LabDatastoreKind): Promise<void> {
  if (process.getuid?.() !== 0)
    throw labError("LAB_NOT_ROOT", "The lab creates network namespaces: run calicoctl lab as root");
  for (const tool of ["ip", "nsenter", "sysctl"]) {
    const r = await run("sh", ["-c", `command -v ${tool}`]);
    if (r.code !== 0)
      throw labError(
        "LAB_MISSING_TOOL",
        `The lab needs "${tool}" on PATH (apt-get install iproute2 util-linux procps)`,
      );
  }
  if (!existsSync(NODE_MAIN) || !existsSync(PLUGIN_MAIN.calico))
    throw labError(
      "LAB_NOT_BUILT",
      `calico-node or the calico CNI plugin is not built (${NODE_MAIN}): run npm run build`,
    );
  if (kind === "etcd" && !existsSync(ETCD_BIN))
    throw labError("LAB_MISSING_TOOL", `--datastore etcd needs ${ETCD_BIN} (apt-get install etcd-server)`);
}

/** Namespaces of this lab that exist now (by prefix: also those a crashed run did not record). */
function existingNetns(loc: LabLocation): string[] {
  return listNetns().filter((n) => n.startsWith(loc.prefix));
}

/** Create a namespace, recorded in the state file before it exists. */
async function addNetns(s: LabState, name: string): Promise<string> {
  const full = `${s.prefix}${name}`;
  s.netns.push(full);
  writeLabState(s);
  await runOk("ip", ["netns", "add", full]);
  // IPv6 duplicate address detection off, or the first v6 packets fail for ~2 s
  // (reference/lab-recipes.md §1); forwarding is off in a new namespace.
  await runOk("ip", ["-n", full, "link", "set", "lo", "up"]);
  await runOk(
    "sysctl",
    [
      "-qw",
      "net.ipv6.conf.all.accept_dad=0",
      "net.ipv6.conf.default.accept_dad=0",
      "net.ipv4.ip_forward=1",
      "net.ipv6.conf.all.forwarding=1",
    ],
    { netns: full },
  );
  return full;
}

async function ipBatch(netns: string, lines: string[]): Promise<void> {
  await runOk("ip", ["-n", netns, "-batch", "-"], { input: `${lines.join("\n")}\n` });
}

async function buildFabric(s: LabState, count: number): Promise<void> {
  s.fabricNetns = await addNetns(s, "fab");
  const f = s.fabricNetns;
  // Bridged frames must not meet netfilter in the fabric namespace (lab-recipes.md §8).
  await run(
    "sysctl",
    ["-qw", "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0"],
    {
      netns: f,
    },
  );
  await ipBatch(f, [
    "link add br0 type bridge",
    `addr add ${FABRIC_V4}/24 dev br0`,
    `addr add ${FABRIC_V6}/64 dev br0 nodad`,
    "link set br0 up",
  ]);
  for (let i = 1; i <= count; i++) {
    s.hosts.push({
      name: `h${i}`,
      netns: `${s.prefix}h${i}`,
      v4: hostV4(i),
      v6: s.ipv6 ? `fd00::${i.toString(16)}` : undefined,
      statusFile: join(s.stateDir, `h${i}-status.json`),
      log: join(s.stateDir, "logs", `h${i}-calico-node.log`),
      pid: undefined,
    });
  }
  writeLabState(s);
  await Promise.all(
    s.hosts.map(async (h, idx) => {
      const port = `p${idx + 1}`;
      await addNetns(s, h.name);
      await ipBatch(h.netns, [
        `link add eth0 type veth peer name ${port} netns ${f}`,
        `addr add ${h.v4}/24 dev eth0`,
        ...(h.v6 !== undefined ? [`addr add ${h.v6}/64 dev eth0 nodad`] : []),
        "link set eth0 up",
        // Proxy ARP answers for 169.254.1.1 only when the host has a route covering it.
        `route add default via ${FABRIC_V4} dev eth0`,
        ...(h.v6 !== undefined ? [`route add ::/0 via ${FABRIC_V6} dev eth0`] : []),
      ]);
      await ipBatch(f, [`link set ${port} master br0`, `link set ${port} up`]);
    }),
  );
  if (s.bigTcp === true) {
    const problems = [
      ...(await setBigTcp(f, ["br0", ...s.hosts.map((_, i) => `p${i + 1}`)])),
      ...(await Promise.all(s.hosts.map((h) => setBigTcp(h.netns, ["eth0"])))).flat(),
    ];
    // An older kernel (< 6.3) cannot: the lab runs with 64 KiB packets, as before.
    if (problems.length > 0) s.bigTcp = false;
    writeLabState(s);
  }
}

function dsNetns(s: LabState): string | undefined {
  return s.datastore.kind === "etcd" ? s.fabricNetns : undefined;
}

function ds(s: LabState, req: LabDsRequest): Promise<LabDsReply> {
  return labDatastore(s.datastore.url, dsNetns(s), req);
}

export async function startEtcd(s: LabState): Promise<void> {
  const dir = join(s.stateDir, "etcd");
  mkdirSync(dir, { recursive: true });
  const p = spawnDetached(
    s.fabricNetns,
    ETCD_BIN,
    [
      "--name",
      "lab",
      "--data-dir",
      join(dir, "data"),
      "--listen-client-urls",
      `http://${FABRIC_V4}:2379,http://127.0.0.1:2379`,
      "--advertise-client-urls",
      `http://${FABRIC_V4}:2379`,
      "--listen-peer-urls",
      "http://127.0.0.1:2380",
      "--initial-advertise-peer-urls",
      "http://127.0.0.1:2380",
      "--initial-cluster",
      "lab=http://127.0.0.1:2380",
    ],
    join(s.stateDir, "logs", "etcd.log"),
  );
  s.processes.push({ pid: p.pid, role: "etcd", marker: s.stateDir });
  writeLabState(s);
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await ds(s, { op: "revision" });
      return;
    } catch (e) {
      if (p.child.exitCode !== null || Date.now() > deadline)
        throw labError(
          "LAB_ETCD_FAILED",
          `etcd did not become healthy within 20 s (log ${join(s.stateDir, "logs", "etcd.log")}): ${tail(join(s.stateDir, "logs", "etcd.log"))}`,
          e,
        );
      await sleep(200);
    }
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * calico-apiserver in front of the lab's datastore, in the fabric namespace on the bridge
 * address (every host reaches it: `calicoctl --datastore ${APISERVER_URL}` from a host).
 * No token file: it listens only inside the lab. Resolves once it listens.
 */
async function startApiserver(s: LabState): Promise<void> {
  const log = join(s.stateDir, "logs", "apiserver.log");
  const p = spawnDetached(
    s.fabricNetns,
    process.execPath,
    // --diagnostic-dir puts the state directory on its command line (with etcd nothing else
    // does): the marker `lab down` and `lab status` check before trusting the PID.
    [
      `--diagnostic-dir=${s.stateDir}`,
      APISERVER_MAIN,
      "--datastore",
      s.datastore.url,
      "--listen",
      `${FABRIC_V4}:5473`,
    ],
    log,
  );
  s.apiserver = { url: APISERVER_URL, pid: p.pid, log };
  s.processes.push({ pid: p.pid, role: "calico-apiserver", marker: s.stateDir });
  writeLabState(s);
  const deadline = Date.now() + 20_000;
  while (!readFileSync(log, "utf8").includes("listening on")) {
    if (p.child.exitCode !== null || Date.now() > deadline)
      throw labError("LAB_APISERVER_FAILED", `calico-apiserver did not start (log ${log}): ${tail(log)}`);
    await sleep(50);
  }
}

export function startAgent(s: LabState, h: LabHost): void {
  rmSync(h.statusFile, { force: true });
  const p = spawnDetached(
    h.netns,
    process.execPath,
    [
      NODE_MAIN,
      "--datastore",
      s.datastore.url,
      "--nodename",
      h.name,
      "--ip",
      `${h.v4}/24`,
      ...(h.v6 !== undefined ? ["--ip6", `${h.v6}/64`] : []),
      "--status-file",
      h.statusFile,
    ],
    h.log,
  );
  h.pid = p.pid;
  s.processes.push({ pid: p.pid, role: `calico-node ${h.name}`, marker: s.stateDir });
  writeLabState(s);
}

/** The plugin's exit code, result and log. */
type CniRun = RunResult;

/** Where `lab up` installs the plugins (`calicoctl cni install`'s layout under the state dir). */
const cniBinDir = (s: LabState): string => join(s.stateDir, "cni", "bin");

/**
 * Install the plugins as a runtime's plugin directory would have them: the executables that hand
 * an invocation to the host's calico-node (its CNI daemon) and run it themselves when there is
 * none. The ES-module form: building the bundle would add seconds to `lab up` for the fallback.
 */
function installLabCni(s: LabState): void {
  installCni({
    binDir: cniBinDir(s),
    confDir: join(s.stateDir, "cni", "net.d"),
    datastore: s.datastore.url,
    networkName: "k8s-pod-network",
    cniVersion: "1.0.0",
    ipv6: s.ipv6,
    bigTcp: s.bigTcp === true,
    bundle: false,
  });
}

/**
 * Run the real `calico` CNI plugin in `host`'s namespace, as a container runtime does (the
 * installed executable: answered by the host's calico-node when it runs). Exported for
 * bench/fabric.bench.ts, which times exactly this.
 */
export function invokeCni(
  s: LabState,
  host: LabHost,
  command: "ADD" | "DEL",
  w: Pick<LabWorkload, "name" | "namespace" | "netns" | "containerID" | "labels">,
): Promise<CniRun> {
  const conf = {
    cniVersion: "1.0.0",
    name: "k8s-pod-network",
    type: "calico",
    nodename: host.name,
    datastore: s.datastore.url,
    log_file_path: join(s.stateDir, "logs", "cni.log"),
    ...(s.bigTcp === true ? { big_tcp: true } : {}),
    ipam: { type: "calico-ipam", assign_ipv4: "true", assign_ipv6: s.ipv6 ? "true" : "false" },
    runtimeConfig: { labels: w.labels },
  };
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: w.containerID,
    CNI_NETNS: `/run/netns/${w.netns}`,
    CNI_IFNAME: "eth0",
    CNI_ARGS: `K8S_POD_NAMESPACE=${w.namespace};K8S_POD_NAME=${w.name}`,
    CNI_PATH: dirname(PLUGIN_MAIN.calico),
  };
  // A lab brought up before the plugins were installed under the state dir runs them from dist/.
  const installed = join(cniBinDir(s), "calico");
  const [cmd, args] = existsSync(installed) ? [installed, []] : [process.execPath, [PLUGIN_MAIN.calico]];
  return run(cmd, args, {
    netns: host.netns,
    env,
    input: JSON.stringify(conf),
    timeoutMs: 60_000,
  });
}

const WORKLOAD_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

async function createWorkload(
  s: LabState,
  hostName: string,
  name: string,
  labels: Record<string, string>,
  namespace: string,
): Promise<LabWorkload> {
  if (!WORKLOAD_NAME_RE.test(name))
    throw labError(
      "LAB_BAD_NAME",
      `Invalid workload name ${JSON.stringify(name)}: use lower-case letters, digits and '-' (at most 32)`,
    );
  if (/^h\d+$/.test(name) || ["tor", "ext", "fabric"].includes(name))
    throw labError(
      "LAB_BAD_NAME",
      `Invalid workload name ${JSON.stringify(name)}: h<N>, tor, ext and fabric name the lab's own namespaces`,
    );
  const socket = join(s.stateDir, "w", `${name}.sock`);
  // sockaddr_un holds 108 bytes.
  if (Buffer.byteLength(socket) > 100)
    throw labError(
      "LAB_BAD_OPTION",
      `The workload socket ${socket} is too long for a Unix socket (108 bytes): use a shorter --state-dir`,
    );
  const host = s.hosts.find((h) => h.name === hostName);
  if (host === undefined)
    throw labError(
      "LAB_NO_SUCH_HOST",
      `No host "${hostName}" in lab "${s.name}"; hosts: ${s.hosts.map((h) => h.name).join(", ")}`,
    );
  if (s.workloads.some((w) => w.name === name))
    throw labError("LAB_WORKLOAD_EXISTS", `Workload "${name}" already exists in lab "${s.name}"`);
  mkdirSync(join(s.stateDir, "w"), { recursive: true });
  const w: LabWorkload = {
    name,
    host: host.name,
    namespace,
    netns: `${s.prefix}w-${name}`,
    containerID: `${s.prefix}${name}`,
    labels,
    ipv4: [],
    ipv6: [],
    iface: "",
    socket,
    pid: undefined,
  };
  s.workloads.push(w);
  writeLabState(s);
  await addNetns(s, `w-${name}`);
  const add = await invokeCni(s, host, "ADD", w);
  if (add.code !== 0)
    throw labError(
      "LAB_CNI_FAILED",
      `The calico CNI plugin failed to add "${name}" on ${host.name} (exit ${add.code}): ${add.stdout.trim()} ${add.stderr.trim()}`,
    );
  const result = JSON.parse(add.stdout) as {
    ips?: { address: string }[];
    interfaces?: { name: string; sandbox?: string }[];
  };
  for (const ip of result.ips ?? []) {
    const a = ip.address.split("/")[0]!;
    (a.includes(":") ? w.ipv6 : w.ipv4).push(a);
  }
  w.iface = result.interfaces?.find((i) => i.sandbox === undefined)?.name ?? "";
  writeLabState(s);
  w.pid = await startProbe(s, w.netns, name, w.socket, (pid) => (w.pid = pid));
  writeLabState(s);
  return w;
}

/** Start a probe agent (lab-workload-main.ts) in `netns`, recorded before it is waited for. */
async function startProbe(
  s: LabState,
  netns: string,
  name: string,
  socket: string,
  record: (pid: number) => void,
): Promise<number> {
  const ports = LAB_PROBE_PORTS.join(",");
  const log = join(s.stateDir, "logs", `w-${name}.log`);
  const p = spawnDetached(
    netns,
    process.execPath,
    [WORKLOAD_MAIN, "--socket", socket, "--name", name, "--tcp", ports, "--udp", ports],
    log,
  );
  record(p.pid);
  s.processes.push({ pid: p.pid, role: `workload ${name}`, marker: s.stateDir });
  writeLabState(s);
  const deadline = Date.now() + 10_000;
  while (!readFileSync(log, "utf8").includes("ready")) {
    if (p.child.exitCode !== null || Date.now() > deadline)
      throw labError("LAB_WORKLOAD_FAILED", `The probe agent of "${name}" did not start: ${tail(log)}`);
    await sleep(25);
  }
  return p.pid;
}

/** The ToR router and the plain host behind it (lab-tor.ts). */
async function buildTor(s: LabState): Promise<void> {
  const tor = await addNetns(s, "tor");
  const ext = await addNetns(s, "ext");
  const { conf, ctl } = await wireTor(s, tor, ext);
  const t: LabTor = {
    netns: tor,
    extNetns: ext,
    conf,
    ctl,
    pid: undefined,
    extSocket: join(s.stateDir, "w", "ext.sock"),
    extPid: undefined,
  };
  s.tor = t;
  const log = join(s.stateDir, "logs", "tor-bird.log");
  const p = spawnDetached(tor, BIRD_BIN, ["-f", "-c", conf, "-s", ctl], log);
  t.pid = p.pid;
  s.processes.push({ pid: p.pid, role: "bird tor", marker: s.stateDir });
  writeLabState(s);
  mkdirSync(join(s.stateDir, "w"), { recursive: true });
  await startProbe(s, ext, "ext", t.extSocket, (pid) => (t.extPid = pid));
  writeLabState(s);
}

/** Wait until every agent is ready, has applied `revision` and has its mesh sessions up. */
export async function waitConverged(s: LabState, revision: number, timeoutMs: number): Promise<string[]> {
  const peersPerHost = (s.tor !== undefined ? 1 : s.hosts.length - 1) * (s.ipv6 ? 2 : 1);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const waiting: string[] = [];
    for (const h of s.hosts) {
      const st = readAgentStatus(h.statusFile) as
        { ready?: boolean; appliedRevision?: number; bgp?: { peers?: { state: string }[] } } | undefined;
      if (h.pid !== undefined && !isOurs({ pid: h.pid, role: "", marker: s.stateDir }))
        throw labError(
          "LAB_AGENT_DIED",
          `calico-node on ${h.name} exited; the end of its log (${h.log}):\n${tail(h.log)}`,
        );
      const est = st?.bgp?.peers?.filter((p) => p.state === "Established").length ?? 0;
      if (st?.ready !== true) waiting.push(`${h.name}: not ready`);
      else if ((st.appliedRevision ?? 0) < revision)
        waiting.push(`${h.name}: applied revision ${st.appliedRevision} < ${revision}`);
      else if (est < peersPerHost) waiting.push(`${h.name}: ${est}/${peersPerHost} BGP sessions Established`);
    }
    if (waiting.length === 0 || Date.now() > deadline) return waiting;
    await sleep(100);
  }
}

export interface LabUpResult {
  state: LabState;
  /** What had not converged when `lab up` stopped waiting (empty: all converged). */
  notConverged: string[];
  ms: number;
}

/** Bring a lab up. On any failure everything made so far is removed again, then it throws. */
export async function labUp(loc: LabLocation, opts: LabUpOptions): Promise<LabUpResult> {
  const t0 = performance.now();
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_LAB_HOSTS)
    throw labError("LAB_BAD_OPTION", `--nodes must be 1-${MAX_LAB_HOSTS}, not ${opts.nodes}`);
  await checkPrerequisites(opts.datastore);
  if (opts.tor === true && (await run("sh", ["-c", `command -v ${BIRD_BIN} && command -v birdc`])).code !== 0)
    throw labError("LAB_MISSING_TOOL", "--tor needs BIRD 2 (bird, birdc): apt-get install bird2");
  return withLabLock(loc, () => labUpLocked(loc, opts, t0));
}

async function labUpLocked(loc: LabLocation, opts: LabUpOptions, t0: number): Promise<LabUpResult> {
  const say = opts.log ?? (() => undefined);
  const log = (line: string) =>
    say(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(4)} s] ${line}`);
  const prior = readLabState(loc);
  if (prior !== undefined || existingNetns(loc).length > 0)
    throw labError(
      "LAB_ALREADY_UP",
      `Lab "${loc.name}" is already up (or left over from a crash: state ${loc.stateDir}, namespaces ${loc.prefix}*); run: calicoctl lab down${loc.name === "lab" ? "" : ` --name ${loc.name}`}`,
    );
  mkdirSync(join(loc.stateDir, "logs"), { recursive: true });
  const s: LabState = {
    version: LAB_STATE_VERSION,
    name: loc.name,
    prefix: loc.prefix,
    stateDir: loc.stateDir,
    createdAt: new Date().toISOString(),
    phase: "starting",
    datastore: {
      kind: opts.datastore,
      url: opts.datastore === "etcd" ? ETCD_URL : `sqlite:${join(loc.stateDir, "calico.db")}`,
    },
    ipv6: opts.ipv6,
    bigTcp: opts.bigTcp !== false,
    fabricNetns: "",
    hosts: [],
    workloads: [],
    netns: [],
    processes: [],
    tor: undefined,
    apiserver: undefined,
  };
  writeLabState(s);
  try {
    log(`Creating ${opts.nodes} hosts (network namespaces ${loc.prefix}h1…) on a bridge in ${loc.prefix}fab`);
    await buildFabric(s, opts.nodes);
    if (opts.tor === true) {
      log(
        `Starting the ToR router (BIRD, ${TOR_V4}) in ${loc.prefix}tor and a plain host ${EXT_V4} behind it`,
      );
      await buildTor(s);
    }
    if (opts.datastore === "etcd") {
      log(`Starting etcd on ${FABRIC_V4}:2379 (in ${s.fabricNetns})`);
      await startEtcd(s);
    }
    log(
      `Writing IP pools, ${opts.tor === true ? "BGP peerings with the ToR (mesh off)" : "the BGP mesh"}${opts.demo === false ? "" : " and the demo policies"} to ${s.datastore.url}`,
    );
    const resources = demoResources({
      ipv6: opts.ipv6,
      hosts: s.hosts.map((h) => ({ name: h.name, v4: h.v4, ...(h.v6 !== undefined ? { v6: h.v6 } : {}) })),
    });
    const kind = (r: unknown) => (r as { kind: string }).kind;
    await ds(s, {
      op: "apply",
      resources: [
        ...resources.filter(
          (r) =>
            !(opts.demo === false && kind(r) === "NetworkPolicy") &&
            !(opts.tor === true && kind(r) === "BGPConfiguration"),
        ),
        ...(opts.tor === true ? torResources(opts.ipv6) : []),
      ],
    });
    installLabCni(s);
    log(`Starting calico-node on ${s.hosts.map((h) => h.name).join(", ")}`);
    for (const h of s.hosts) startAgent(s, h);
    if (opts.demo !== false) {
      log(
        `Attaching demo workloads through the calico CNI plugin: ${DEMO_WORKLOADS.map((w) => w.name).join(", ")}`,
      );
      await Promise.all(
        DEMO_WORKLOADS.map((d) =>
          createWorkload(s, s.hosts[d.hostIndex % s.hosts.length]!.name, d.name, d.labels, DEMO_NAMESPACE),
        ),
      );
    }
    // Started once the CNI work is done (they share the CPU) and waited for at the end; its
    // failure is kept (not left unhandled) until then.
    const apiserver =
      opts.apiserver === false
        ? undefined
        : startApiserver(s).then(
            () => undefined,
            (e: unknown) => e,
          );
    if (apiserver !== undefined) log(`Starting calico-apiserver on ${APISERVER_URL} (in ${s.fabricNetns})`);
    const { revision } = await ds(s, { op: "revision" });
    log("Waiting for every calico-node to program the workloads and bring up its BGP sessions");
    const notConverged = await waitConverged(s, revision, 45_000);
    const apiserverError = await apiserver;
    if (apiserverError !== undefined)
      throw apiserverError instanceof Error ? apiserverError : new Error(JSON.stringify(apiserverError));
    s.phase = "up";
    writeLabState(s);
    return { state: s, notConverged, ms: performance.now() - t0 };
  } catch (e) {
    s.phase = "failed";
    writeLabState(s);
    await labDown(loc).catch(() => undefined);
    throw e;
  }
}

export interface LabDownResult {
  found: boolean;
  netns: string[];
  processes: number;
}

/**
 * Remove everything a lab made: its processes (recorded PIDs whose command line still names
 * the state directory), then every namespace with its prefix (killing whatever still runs
 * inside), then the state directory. Idempotent; works after kill -9 of any part of the lab.
 */
export async function labDown(loc: LabLocation): Promise<LabDownResult> {
  let s: LabState | undefined;
  try {
    s = readLabState(loc);
  } catch {
    s = undefined; // a corrupt state file: the prefix still finds the namespaces
  }
  const procs = s?.processes ?? [];
  const live = procs.filter(isOurs);
  // The lab is going away with its namespaces and files: no point in a graceful stop.
  await stopProcesses(live, 300);
  const names = [...new Set([...(s?.netns ?? []), ...existingNetns(loc)])].filter((n) =>
    n.startsWith(loc.prefix),
  );
  const removed: string[] = [];
  // Workloads first, then hosts, then the fabric: the reverse of creation.
  for (const ns of names.reverse()) {
    if (!existsSync(`/run/netns/${ns}`)) continue;
    const pids = await run("ip", ["netns", "pids", ns]);
    for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
    await run("ip", ["netns", "del", ns]);
    removed.push(ns);
  }
  removeStateDir(loc.stateDir);
  return { found: s !== undefined || removed.length > 0, netns: removed, processes: live.length };
}

export interface LabHostStatus {
  name: string;
  netns: string;
  v4: string;
  v6: string | undefined;
  agent: "running" | "stopped";
  pid: number | undefined;
  ready: boolean;
  appliedRevision: number | undefined;
  bgp: { peer: string; type: string; state: string; since: string }[];
}

export interface LabWorkloadStatus {
  name: string;
  host: string;
  namespace: string;
  labels: Record<string, string>;
  ipv4: string[];
  ipv6: string[];
  iface: string;
  netns: string;
  probe: "running" | "stopped";
}

export interface LabMatrix {
  family: 4 | 6;
  proto: "tcp";
  port: number;
  cells: (MatrixCell & { expected: boolean | undefined })[];
}

export interface LabStatus {
  /** calico-apiserver's URL (reachable from every host namespace) and whether it runs. */
  apiserver: { url: string; state: "running" | "stopped" } | undefined;
  /** With --tor: the ToR's BGP sessions (BIRD's view) and the plain host behind it. */
  tor:
    | { netns: string; address: string; bird: "running" | "stopped"; sessions: TorSession[]; ext: string }
    | undefined;
  name: string;
  stateDir: string;
  phase: LabState["phase"];
  datastore: string;
  /** Whether the lab's links and workload veths take 192 KiB GSO/GRO packets (BIG TCP). */
  bigTcp: boolean;
  prefix: string;
  hosts: LabHostStatus[];
  workloads: LabWorkloadStatus[];
  matrices: LabMatrix[];
}

/** The lab as it is now; with `probe`, also the connectivity matrices, measured with real packets. */
export async function labStatus(
  loc: LabLocation,
  opts: { probe: boolean; settleMs?: number } = { probe: true },
): Promise<LabStatus> {
  const s = requireLabState(loc);
  const alive = (pid: number | undefined) =>
    pid !== undefined && isOurs({ pid, role: "", marker: s.stateDir });
  const hosts = s.hosts.map((h): LabHostStatus => {
    const st = readAgentStatus(h.statusFile) as
      | {
          ready?: boolean;
          appliedRevision?: number;
          bgp?: { peers?: { address: string; type: string; state: string; since: string }[] };
        }
      | undefined;
    const running = alive(h.pid);
    return {
      name: h.name,
      netns: h.netns,
      v4: h.v4,
      v6: h.v6,
      agent: running ? "running" : "stopped",
      pid: h.pid,
      ready: running && st?.ready === true,
      appliedRevision: st?.appliedRevision,
      bgp: (st?.bgp?.peers ?? []).map((p) => ({
        peer: p.address,
        type: p.type,
        state: p.state,
        since: p.since,
      })),
    };
  });
  const workloads = s.workloads.map((w): LabWorkloadStatus => ({
    name: w.name,
    host: w.host,
    namespace: w.namespace,
    labels: w.labels,
    ipv4: w.ipv4,
    ipv6: w.ipv6,
    iface: w.iface,
    netns: w.netns,
    probe: alive(w.pid) ? "running" : "stopped",
  }));
  const matrices: LabMatrix[] = [];
  if (opts.probe && s.workloads.length > 1) {
    for (const family of s.ipv6 ? ([4, 6] as const) : ([4] as const)) {
      const eps = s.workloads.map((w) => ({
        name: w.name,
        socket: w.socket,
        addr: family === 4 ? w.ipv4[0] : w.ipv6[0],
      }));
      // The plain host behind the ToR (IPv4 only).
      if (s.tor !== undefined && family === 4)
        eps.push({ name: "ext", socket: s.tor.extSocket, addr: EXT_V4 });
      const cells = await connectivityMatrix(eps, {
        port: 80,
        settleMs: opts.settleMs ?? 0,
        expect: demoExpect,
      });
      matrices.push({
        family,
        proto: "tcp",
        port: 80,
        cells: cells.map((c) => ({ ...c, expected: demoExpect(c.from, c.to) })),
      });
    }
  }
  const tor =
    s.tor === undefined
      ? undefined
      : {
          netns: s.tor.netns,
          address: TOR_V4,
          bird: alive(s.tor.pid) ? ("running" as const) : ("stopped" as const),
          sessions: await torSessions(s.tor.ctl),
          ext: EXT_V4,
        };
  return {
    apiserver:
      s.apiserver === undefined
        ? undefined
        : { url: s.apiserver.url, state: alive(s.apiserver.pid) ? "running" : "stopped" },
    tor,
    name: s.name,
    stateDir: s.stateDir,
    phase: s.phase,
    datastore: s.datastore.url,
    bigTcp: s.bigTcp === true,
    prefix: s.prefix,
    hosts,
    workloads,
    matrices,
  };
}

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text.trim() === "") return out;
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const k = (eq < 0 ? part : part.slice(0, eq)).trim();
    const v = eq < 0 ? "" : part.slice(eq + 1).trim();
    if (
      !/^([a-zA-Z0-9.-]+\/)?[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/.test(k) ||
      !/^([a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?)?$/.test(v)
    )
      throw labError(
        "LAB_BAD_LABELS",
        `Invalid label ${JSON.stringify(part)} in --labels: write key=value,key=value`,
      );
    out[k] = v;
  }
  return out;
}

export { parseLabels };

/** Attach a new workload to `host` through the CNI plugin; waits until every agent applied it. */
export function labAddWorkload(
  loc: LabLocation,
  host: string,
  name: string,
  labels: Record<string, string>,
  namespace = DEMO_NAMESPACE,
): Promise<LabWorkload> {
  requireLabState(loc);
  return withLabLock(loc, () => addWorkloadLocked(loc, host, name, labels, namespace));
}

async function addWorkloadLocked(
  loc: LabLocation,
  host: string,
  name: string,
  labels: Record<string, string>,
  namespace: string,
): Promise<LabWorkload> {
  const s = requireLabState(loc);
  let w: LabWorkload;
  try {
    w = await createWorkload(s, host, name, labels, namespace);
  } catch (e) {
    // Leave nothing half-made: the netns, the probe agent and the record go again.
    if (
      !isLabError(e, "LAB_WORKLOAD_EXISTS") &&
      !isLabError(e, "LAB_BAD_NAME") &&
      !isLabError(e, "LAB_NO_SUCH_HOST")
    )
      await removeWorkload(s, name).catch(() => undefined);
    throw e;
  }
  const { revision } = await ds(s, { op: "revision" });
  const waiting = await waitConverged(s, revision, 20_000);
  if (waiting.length > 0)
    throw labError(
      "LAB_NOT_CONVERGED",
      `Workload ${name} is attached on ${host} (${w.ipv4.join(", ")}), but not every calico-node has programmed it within 20 s: ${waiting.join("; ")}`,
    );
  return w;
}

function isLabError(e: unknown, code: string): boolean {
  return e instanceof CalicoError && e.code === code;
}

async function removeWorkload(s: LabState, name: string): Promise<void> {
  const w = s.workloads.find((x) => x.name === name);
  if (w === undefined) throw labError("LAB_NO_SUCH_WORKLOAD", `No workload "${name}" in lab "${s.name}"`);
  const host = s.hosts.find((h) => h.name === w.host);
  if (w.pid !== undefined) await stopProcesses([{ pid: w.pid, role: "", marker: s.stateDir }], 1000);
  let cniError: string | undefined;
  if (host !== undefined && existsSync(`/run/netns/${host.netns}`)) {
    const del = await invokeCni(s, host, "DEL", w);
    if (del.code !== 0) cniError = `${del.stdout.trim()} ${del.stderr.trim()}`;
  }
  if (existsSync(`/run/netns/${w.netns}`)) await run("ip", ["netns", "del", w.netns]);
  s.workloads = s.workloads.filter((x) => x !== w);
  s.netns = s.netns.filter((n) => n !== w.netns);
  s.processes = s.processes.filter((p) => p.pid !== w.pid);
  rmSync(w.socket, { force: true });
  writeLabState(s);
  if (cniError !== undefined)
    throw labError("LAB_CNI_FAILED", `The calico CNI plugin failed to delete "${name}": ${cniError}`);
}

/** Detach a workload (CNI DEL: its endpoint and addresses go), stop it and delete its namespace. */
export async function labDelWorkload(loc: LabLocation, name: string): Promise<void> {
  requireLabState(loc);
  await withLabLock(loc, () => removeWorkload(requireLabState(loc), name));
}

/** The argv that runs `cmd` inside a workload's (or a host's) network namespace. */
export function labExecArgv(loc: LabLocation, target: string, cmd: readonly string[]): string[] {
  const s = requireLabState(loc);
  const special: Record<string, string | undefined> = {
    tor: s.tor?.netns,
    ext: s.tor?.extNetns,
    fabric: s.fabricNetns,
  };
  const netns =
    s.workloads.find((w) => w.name === target)?.netns ??
    s.hosts.find((h) => h.name === target)?.netns ??
    special[target];
  if (netns === undefined)
    throw labError(
      "LAB_NO_SUCH_WORKLOAD",
      `No workload or host "${target}" in lab "${s.name}"; workloads: ${s.workloads.map((w) => w.name).join(", ") || "none"}; hosts: ${s.hosts.map((h) => h.name).join(", ")}${s.tor !== undefined ? ", tor, ext" : ""}; also: fabric`,
    );
  if (cmd.length === 0) throw labError("LAB_BAD_OPTION", "lab exec needs a command after --");
  return ["nsenter", `--net=/run/netns/${netns}`, "--", ...cmd];
}
