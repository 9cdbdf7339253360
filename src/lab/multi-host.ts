/**
 * A multi-host fabric: N host namespaces on one bridge (in its own "fabric" namespace), each
 * running a real `calico-node` *inside* its namespace (nsenter, no `--netns`: Node cannot open
 * the BGP speaker's sockets in another namespace), all sharing one sqlite datastore file.
 * Workload namespaces are wired to a host Calico-style. Everything is created under one
 * per-run prefix and removed in `stop()`.
 *
 *          fabric ns: br0 (198.18.0.254, fd00::fe)
 *         /            |             \
 *   h1 (198.18.0.1)  h2 (198.18.0.2)  h3 …        each: eth0 on the bridge, calico-node, workloads
 *
 * The BGP mesh test uses it; the lab (issue 8) builds on it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { commandIn, runOk } from "../dataplane/netns.js";
import { openDatastore } from "../datastore/open.js";
import { ResourceStore } from "../datastore/resources.js";
import type { Datastore } from "../datastore/types.js";
import { readAgentStatus } from "./agent-status.js";
import { NetnsSet, runPrefix } from "./netns-set.js";
import { ProbeAgent } from "./probe.js";
import { hostVethName, wireWorkload } from "./workload.js";

const NODE_MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "agent", "main.js");

export const FABRIC_GW_V4 = "198.18.0.254";
export const FABRIC_GW_V6 = "fd00::fe";

export interface Host {
  /** Node name: h1, h2, … */
  name: string;
  netns: string;
  v4: string;
  v6: string;
  statusFile: string;
  agent?: ChildProcess | undefined;
  agentLog: string;
}

export interface MultiHostWorkload {
  host: Host;
  namespace: string;
  name: string;
  v4: string;
  v6?: string | undefined;
  iface: string;
  netns: string;
  probe: ProbeAgent;
}

export interface MultiHostOptions {
  hosts: number;
  /** Datastore URL (default: a sqlite file in the fabric's directory). */
  dbUrl?: string;
  tag?: string;
}

export const PROBE_PORTS = [80, 8080];

export class MultiHostFabric {
  readonly nets: NetnsSet;
  readonly dir = mkdtempSync(join(tmpdir(), "cts-mh-"));
  readonly dbUrl: string;
  readonly hosts: Host[] = [];
  readonly workloads: MultiHostWorkload[] = [];
  fabric = "";
  store!: ResourceStore;
  #ds?: Datastore;
  readonly #count: number;

  constructor(opts: MultiHostOptions) {
    if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 200)
      throw new Error(`A multi-host fabric needs 1-200 hosts, not ${opts.hosts}`);
    this.#count = opts.hosts;
    this.nets = new NetnsSet(runPrefix(opts.tag ?? "ctsm"));
    this.dbUrl = opts.dbUrl ?? `sqlite:${join(this.dir, "calico.db")}`;
  }

  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (h === undefined) throw new Error(`No host "${name}" in this fabric`);
    return h;
  }

  async start(): Promise<void> {
    this.fabric = await this.nets.add("fab");
    const f = this.fabric;
    await runOk("ip", ["-n", f, "link", "add", "br0", "type", "bridge"]);
    await runOk("ip", ["-n", f, "addr", "add", `${FABRIC_GW_V4}/24`, "dev", "br0"]);
    await runOk("ip", ["-n", f, "addr", "add", `${FABRIC_GW_V6}/64`, "dev", "br0", "nodad"]);
    await runOk("ip", ["-n", f, "link", "set", "br0", "up"]);
    for (let i = 1; i <= this.#count; i++) {
      const name = `h${i}`;
      const netns = await this.nets.add(name);
      const h: Host = {
        name,
        netns,
        v4: `198.18.0.${i}`,
        v6: `fd00::${i.toString(16)}`,
        statusFile: join(this.dir, `${name}-status.json`),
        agentLog: "",
      };
      await runOk("ip", [
        "-n",
        netns,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        `p${i}`,
        "netns",
        f,
      ]);
      await runOk("ip", ["-n", f, "link", "set", `p${i}`, "master", "br0", "up"]);
      await runOk("ip", ["-n", netns, "addr", "add", `${h.v4}/24`, "dev", "eth0"]);
      await runOk("ip", ["-n", netns, "addr", "add", `${h.v6}/64`, "dev", "eth0", "nodad"]);
      await runOk("ip", ["-n", netns, "link", "set", "eth0", "up"]);
      // A default route: the kernel answers proxy ARP for 169.254.1.1 only when it has a route.
      await runOk("ip", ["-n", netns, "route", "add", "default", "via", FABRIC_GW_V4]);
      await runOk("ip", ["-n", netns, "-6", "route", "add", "default", "via", FABRIC_GW_V6]);
      this.hosts.push(h);
    }
    this.#ds = await openDatastore(this.dbUrl);
    this.store = new ResourceStore(this.#ds);
    await this.store.ensureBuiltins();
  }

  get datastore(): Datastore {
    if (this.#ds === undefined) throw new Error("The fabric is not started");
    return this.#ds;
  }

  /**
   * Start calico-node for `host`; it registers its Node with its addresses. By default it runs
   * inside the host's namespace (nsenter); `viaNetnsFlag` runs it here with `--netns`, where it
   * starts its BGP speaker as a child process inside the namespace.
   */
  startAgent(
    host: Host,
    extraArgs: string[] = [],
    env: NodeJS.ProcessEnv = {},
    opts: { viaNetnsFlag?: boolean } = {},
  ): void {
    rmSync(host.statusFile, { force: true });
    host.agentLog = "";
    const node = [
      NODE_MAIN,
      "--datastore",
      this.dbUrl,
      "--nodename",
      host.name,
      "--ip",
      `${host.v4}/24`,
      "--ip6",
      `${host.v6}/64`,
      "--status-file",
      host.statusFile,
      ...extraArgs,
    ];
    const [cmd, ...args] =
      opts.viaNetnsFlag === true
        ? [process.execPath, ...node, "--netns", host.netns]
        : commandIn(host.netns, process.execPath, node);
    const child = spawn(cmd!, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    const keep = (d: string) => {
      host.agentLog = (host.agentLog + d).slice(-200_000);
    };
    child.stdout.setEncoding("utf8").on("data", keep);
    child.stderr.setEncoding("utf8").on("data", keep);
    host.agent = child;
  }

  /** Stop a host's calico-node (SIGTERM, SIGKILL after 5 s). */
  async stopAgent(host: Host, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const a = host.agent;
    if (a === undefined || a.exitCode !== null || a.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => a.once("exit", () => resolve()));
    a.kill(signal);
    const t = setTimeout(() => a.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  }

  /** Wait until `test` holds for a host's status file; fails with the agent's log otherwise. */
  async waitForStatus(
    host: Host,
    test: (s: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = readAgentStatus(host.statusFile) as unknown as Record<string, unknown> | undefined;
      if (s !== undefined && test(s)) return s;
      const a = host.agent;
      if (a !== undefined && (a.exitCode !== null || a.signalCode !== null))
        throw new Error(
          `calico-node on ${host.name} exited (${a.exitCode ?? a.signalCode}):\n${host.agentLog.slice(-5000)}`,
        );
      if (Date.now() > deadline)
        throw new Error(
          `${host.name}: ${what} not reached within ${timeoutMs} ms; status ${JSON.stringify(s)}\n${host.agentLog.slice(-5000)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Wire a workload namespace to `host`, start a probe agent in it and write its WorkloadEndpoint. */
  async addWorkload(
    host: Host,
    spec: { namespace: string; name: string; labels: Record<string, string>; v4: string; v6?: string },
  ): Promise<MultiHostWorkload> {
    const id = `${host.name}.${spec.namespace}.${spec.name}`;
    const netns = await this.nets.add(`w${this.workloads.length}`);
    const iface = hostVethName(`${this.nets.prefix}${id}`);
    await wireWorkload({
      hostNetns: host.netns,
      workloadNetns: netns,
      hostIface: iface,
      ipv4: [spec.v4],
      ...(spec.v6 !== undefined ? { ipv6: [spec.v6] } : {}),
    });
    const probe = await ProbeAgent.start({ netns, name: id, tcpPorts: PROBE_PORTS, udpPorts: PROBE_PORTS });
    await this.store.apply({
      apiVersion: "projectcalico.org/v3",
      kind: "WorkloadEndpoint",
      metadata: {
        namespace: spec.namespace,
        name: `${host.name}-k8s-${spec.name}-eth0`,
        labels: spec.labels,
      },
      spec: {
        orchestrator: "k8s",
        node: host.name,
        pod: spec.name,
        endpoint: "eth0",
        interfaceName: iface,
        ipNetworks: [`${spec.v4}/32`, ...(spec.v6 !== undefined ? [`${spec.v6}/128`] : [])],
        profiles: [`kns.${spec.namespace}`],
      },
    });
    const w: MultiHostWorkload = {
      host,
      namespace: spec.namespace,
      name: spec.name,
      v4: spec.v4,
      v6: spec.v6,
      iface,
      netns,
      probe,
    };
    this.workloads.push(w);
    return w;
  }

  /** Stop every agent and probe, delete every namespace, the datastore and the directory. Never throws. */
  async stop(): Promise<void> {
    for (const h of this.hosts) await this.stopAgent(h).catch(() => undefined);
    for (const w of this.workloads) await w.probe.stop().catch(() => undefined);
    await this.nets.cleanup();
    await this.#ds?.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
