/**
 * A one-host fabric for real-traffic policy tests: a host namespace running a real
 * `calico-node`, workload namespaces wired Calico-style, and an "outside" namespace (a
 * non-Calico host on the underlay) — all under one per-run prefix and removed in `stop()`.
 *
 *   ext (198.18.0.2, fd00::2) ── veth ── host (198.18.0.1, fd00::1) ── cali… ── workloads
 *
 * The test writes WorkloadEndpoints itself (no CNI yet); the agent programs the host side.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runOk } from "../dataplane/netns.js";
import { openDatastore } from "../datastore/open.js";
import type { Datastore } from "../datastore/types.js";
import { ResourceStore } from "../datastore/resources.js";
import { NetnsSet, runPrefix } from "./netns-set.js";
import { ProbeAgent } from "./probe.js";
import { hostVethName, wireWorkload } from "./workload.js";

const NODE_MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "agent", "main.js");

export const HOST_NAME = "h1";
export const HOST_V4 = "198.18.0.1";
export const HOST_V6 = "fd00::1";
export const EXT_V4 = "198.18.0.2";
export const EXT_V6 = "fd00::2";

export interface WorkloadSpec {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  v4: string;
  v6: string;
  profiles?: string[];
  ports?: { name: string; protocol: "TCP" | "UDP"; port: number }[];
}

export interface Workload extends WorkloadSpec {
  iface: string;
  netns: string;
  probe: ProbeAgent;
}

export const PROBE_TCP_PORTS = [80, 81, 8080];
export const PROBE_UDP_PORTS = [80, 81];

export interface FabricOptions {
  /** Datastore URL (default: a sqlite file in the fabric's directory), e.g. a test etcd. */
  dbUrl?: string;
}

export class OneHostFabric {
  readonly nets = new NetnsSet(runPrefix("ctsf"));
  readonly dir = mkdtempSync(join(tmpdir(), "cts-fabric-"));
  readonly dbUrl: string;
  readonly statusFile = join(this.dir, "node-status.json");
  readonly workloads = new Map<string, Workload>();
  host = "";
  ext = "";
  extProbe?: ProbeAgent;
  hostProbe?: ProbeAgent;
  agent?: ChildProcess;
  agentLog = "";
  private ds?: Datastore;
  store?: ResourceStore;

  constructor(opts: FabricOptions = {}) {
    this.dbUrl = opts.dbUrl ?? `sqlite:${join(this.dir, "calico.db")}`;
  }

  async start(): Promise<void> {
    this.host = await this.nets.add("host");
    this.ext = await this.nets.add("ext");
    await runOk("ip", [
      "-n",
      this.host,
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      this.ext,
    ]);
    for (const [ns, v4, v6] of [
      [this.host, HOST_V4, HOST_V6],
      [this.ext, EXT_V4, EXT_V6],
    ] as const) {
      await runOk("ip", ["-n", ns, "addr", "add", `${v4}/24`, "dev", "eth0"]);
      await runOk("ip", ["-n", ns, "addr", "add", `${v6}/64`, "dev", "eth0", "nodad"]);
      await runOk("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    }
    // The host's default route (needed for proxy ARP to answer for 169.254.1.1) and the
    // outside host's routes to the workloads: what a ToR would hold.
    await runOk("ip", ["-n", this.host, "route", "add", "default", "via", EXT_V4]);
    await runOk("ip", ["-n", this.host, "-6", "route", "add", "default", "via", EXT_V6]);
    await runOk("ip", ["-n", this.ext, "route", "add", "198.19.0.0/16", "via", HOST_V4]);
    await runOk("ip", ["-n", this.ext, "-6", "route", "add", "fd00:19::/48", "via", HOST_V6]);
    this.ds = await openDatastore(this.dbUrl);
    this.store = new ResourceStore(this.ds);
    await this.store.ensureBuiltins();
    await this.store.apply({
      apiVersion: "projectcalico.org/v3",
      kind: "Node",
      metadata: { name: HOST_NAME },
      spec: { bgp: { ipv4Address: `${HOST_V4}/24`, ipv6Address: `${HOST_V6}/64` } },
    });
    this.extProbe = await ProbeAgent.start({
      netns: this.ext,
      name: "ext",
      tcpPorts: PROBE_TCP_PORTS,
      udpPorts: PROBE_UDP_PORTS,
    });
    this.hostProbe = await ProbeAgent.start({
      netns: this.host,
      name: "host",
      tcpPorts: [22, ...PROBE_TCP_PORTS],
      udpPorts: PROBE_UDP_PORTS,
    });
  }

  async addWorkload(spec: WorkloadSpec): Promise<Workload> {
    const id = `${spec.namespace}.${spec.name}`;
    const netns = await this.nets.add(`w-${spec.namespace}-${spec.name}`);
    const iface = hostVethName(`${this.nets.prefix}${id}`);
    await wireWorkload({
      hostNetns: this.host,
      workloadNetns: netns,
      hostIface: iface,
      ipv4: [spec.v4],
      ipv6: [spec.v6],
    });
    const probe = await ProbeAgent.start({
      netns,
      name: id,
      tcpPorts: PROBE_TCP_PORTS,
      udpPorts: PROBE_UDP_PORTS,
    });
    await this.store!.apply({
      apiVersion: "projectcalico.org/v3",
      kind: "WorkloadEndpoint",
      metadata: {
        namespace: spec.namespace,
        name: `${HOST_NAME}-k8s-${spec.name}-eth0`,
        labels: spec.labels,
      },
      spec: {
        orchestrator: "k8s",
        node: HOST_NAME,
        pod: spec.name,
        endpoint: "eth0",
        interfaceName: iface,
        ipNetworks: [`${spec.v4}/32`, `${spec.v6}/128`],
        profiles: spec.profiles ?? [`kns.${spec.namespace}`],
        ...(spec.ports !== undefined ? { ports: spec.ports } : {}),
      },
    });
    const w = { ...spec, iface, netns, probe };
    this.workloads.set(id, w);
    return w;
  }

  /** The datastore's current revision (what `waitForAgent` waits for). */
  async revision(): Promise<number> {
    return (await this.store!.datastore.list("/calico/resources/")).revision;
  }

  /** Start calico-node for the host namespace (`env` is added to this process's environment). */
  startAgent(extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): void {
    // A status file left by a previous agent must not satisfy waitForAgent for this one.
    rmSync(this.statusFile, { force: true });
    const args = [
      NODE_MAIN,
      "--datastore",
      this.dbUrl,
      "--nodename",
      HOST_NAME,
      "--netns",
      this.host,
      "--status-file",
      this.statusFile,
      ...extraArgs,
    ];
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    const keep = (d: string) => {
      this.agentLog = (this.agentLog + d).slice(-200_000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    this.agent = child;
  }

  /** Resolves with the agent's exit code (or signal) once it has exited. */
  agentExited(): Promise<number | NodeJS.Signals> {
    const a = this.agent;
    if (a === undefined) return Promise.reject(new Error("no agent started"));
    if (a.exitCode !== null || a.signalCode !== null) return Promise.resolve(a.exitCode ?? a.signalCode!);
    return new Promise((resolve) => a.once("exit", (code, sig) => resolve(code ?? sig!)));
  }

  async stopAgent(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const a = this.agent;
    if (a === undefined || a.exitCode !== null || a.signalCode !== null) return;
    a.kill(signal);
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        a.kill("SIGKILL");
        resolve();
      }, 5000);
      a.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    await this.stopAgent();
    for (const w of this.workloads.values()) await w.probe.stop();
    await this.extProbe?.stop();
    await this.hostProbe?.stop();
    await this.nets.cleanup();
    await this.ds?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
