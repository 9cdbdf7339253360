/**
 * Test and bench support: what a container runtime does, for real. A "host" network namespace
 * the plugins run in (so nothing touches the root namespace), container namespaces, a sqlite
 * datastore in a temp dir, and the plugin executables started as processes with CNI_* set and
 * the configuration on stdin. Everything made here is removed by `close()`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PLUGIN_MAIN } from "./plugin-paths.js";
import { run, runOk } from "../dataplane/netns.js";
import { SqliteDatastore } from "../datastore/sqlite.js";
import { ResourceStore } from "../datastore/resources.js";

export { PLUGIN_MAIN };

export interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json: Record<string, unknown> | undefined;
  ms: number;
  /** User + system CPU time of the plugin process and its children (`measureCpu`). */
  cpuMs?: number;
}

export interface Invocation {
  command: string;
  containerID?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  conf: Record<string, unknown>;
  plugin?: keyof typeof PLUGIN_MAIN;
  /** More environment for the plugin process. */
  env?: NodeJS.ProcessEnv;
}

export class CniLab {
  readonly dir: string;
  readonly dbUrl: string;
  readonly hostNs: string;
  private readonly netnses: string[] = [];
  private n = 0;
  /**
   * Where `calicoctl cni install` put the plugins; set, invoke() runs those executables (what
   * a runtime runs), else the ES-module executables in dist/ directly.
   */
  installedBinDir: string | undefined;
  /**
   * Also measure the CPU time the invocation used (a shell's `times` after it): on a loaded
   * machine wall time mostly measures the wait for a CPU, CPU time what the plugin costs.
   */
  measureCpu = false;

  constructor(readonly prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    this.dbUrl = `sqlite:${join(this.dir, "calico.db")}`;
    this.hostNs = `${prefix}h`;
  }

  /**
   * Create the host netns and the resources. The host gets an uplink (a veth pair inside it)
   * with 198.18.0.1/24 and a default route, as a real host has: proxy ARP for 169.254.1.1 only
   * answers when the host has a unicast route out of another interface.
   */
  async start(resources: unknown[]): Promise<void> {
    await this.addNetns(this.hostNs);
    const batch = [
      "link set lo up",
      "link add up0 type veth peer name up1",
      "addr add 198.18.0.1/24 dev up0",
      "link set up0 up",
      "link set up1 up",
      "route add default via 198.18.0.254 dev up0",
    ];
    await runOk("ip", ["-n", this.hostNs, "-batch", "-"], { input: `${batch.join("\n")}\n` });
    await this.apply(resources);
  }

  async apply(resources: unknown[]): Promise<void> {
    await this.withStore(async (s) => {
      for (const r of resources) await s.apply(r);
    });
  }

  async withStore<T>(fn: (s: ResourceStore) => Promise<T>): Promise<T> {
    const ds = new SqliteDatastore(this.dbUrl.slice("sqlite:".length));
    try {
      return await fn(new ResourceStore(ds));
    } finally {
      await ds.close();
    }
  }

  private async addNetns(name: string): Promise<void> {
    await runOk("ip", ["netns", "add", name]);
    this.netnses.push(name);
  }

  /** A new container netns; returns its path (what a runtime passes as CNI_NETNS). */
  async container(): Promise<string> {
    const name = `${this.prefix}c${this.n++}`;
    await this.addNetns(name);
    return `/run/netns/${name}`;
  }

  async removeNetns(path: string): Promise<void> {
    const name = path.slice("/run/netns/".length);
    await run("ip", ["netns", "del", name]);
    this.netnses.splice(this.netnses.indexOf(name), 1);
  }

  /** Run a plugin executable in the host netns, as a runtime would. */
  invoke(inv: Invocation): Promise<PluginRun> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      CNI_COMMAND: inv.command,
      CNI_PATH: dirname(PLUGIN_MAIN.calico),
      ...(inv.containerID !== undefined ? { CNI_CONTAINERID: inv.containerID } : {}),
      ...(inv.netns !== undefined ? { CNI_NETNS: inv.netns } : {}),
      ...(inv.ifname !== undefined ? { CNI_IFNAME: inv.ifname } : {}),
      ...(inv.args !== undefined ? { CNI_ARGS: inv.args } : {}),
      ...inv.env,
    };
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const plugin = inv.plugin ?? "calico";
      const argv =
        this.installedBinDir !== undefined
          ? [join(this.installedBinDir, plugin)]
          : [process.execPath, PLUGIN_MAIN[plugin]];
      const cmd = this.measureCpu ? ["sh", "-c", `"$@"; rc=$?; times >&2; exit $rc`, "sh", ...argv] : argv;
      const child = spawn("nsenter", [`--net=/run/netns/${this.hostNs}`, "--", ...cmd], {
        env,
        stdio: ["pipe", "pipe", "pipe"],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => err.push(b));
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        const stdout = Buffer.concat(out).toString("utf8");
        let json: Record<string, unknown> | undefined;
        try {
          json = stdout.trim() === "" ? undefined : (JSON.parse(stdout) as Record<string, unknown>);
        } catch {
          json = undefined;
        }
        const ms = performance.now() - t0;
        let stderr = Buffer.concat(err).toString("utf8");
        let cpuMs: number | undefined;
        if (this.measureCpu) {
          // `times`: the shell's user and system time, then its children's (`0m0.090000s 0m0.030000s`).
          const lines = stderr.trimEnd().split("\n");
          const kids = lines.at(-1)?.match(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/);
          if (kids !== null && kids !== undefined) {
            cpuMs = (Number(kids[1]) * 60 + Number(kids[2]) + Number(kids[3]) * 60 + Number(kids[4])) * 1000;
            stderr = lines.slice(0, -2).join("\n");
          }
        }
        resolve({ code: code ?? 1, stdout, stderr, json, ms, ...(cpuMs !== undefined ? { cpuMs } : {}) });
      });
      child.stdin.end(JSON.stringify(inv.conf));
    });
  }

  /** Links in the host netns named cali…. */
  async hostCaliLinks(): Promise<string[]> {
    const links = JSON.parse(await runOk("ip", ["-j", "-n", this.hostNs, "link", "show"])) as {
      ifname: string;
    }[];
    return links.map((l) => l.ifname).filter((n) => n.startsWith("cali"));
  }

  async close(): Promise<void> {
    for (const ns of [...this.netnses].reverse()) await run("ip", ["netns", "del", ns]);
    this.netnses.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** IP pools in the project's ranges and the node, for a lab. */
export function labResources(node: string, v4 = "198.19.0.0/24", v6 = "fd00:19::/120"): unknown[] {
  return [
    { apiVersion: "projectcalico.org/v3", kind: "Node", metadata: { name: node }, spec: {} },
    {
      apiVersion: "projectcalico.org/v3",
      kind: "IPPool",
      metadata: { name: "pool4" },
      spec: { cidr: v4, blockSize: 26 },
    },
    {
      apiVersion: "projectcalico.org/v3",
      kind: "IPPool",
      metadata: { name: "pool6" },
      spec: { cidr: v6, blockSize: 122 },
    },
  ];
}
