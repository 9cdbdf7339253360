/**
 * A real container runtime on our network: podman (CNI network backend, runc) on two hosts of a
 * multi-host fabric, each host a network namespace running a real calico-node (BGP mesh), all
 * sharing one sqlite datastore. Each host has its own plugin directory and conflist, written by
 * `calicoctl cni install` with its own `nodename`, and podman is run with
 * `nsenter --net=<host netns>`: podman runs the CNI plugin in its own network namespace, so the
 * host end of the veth lands in that host (reference/lab-recipes.md §6). The image is a busybox
 * rootfs made here and loaded with `podman import` (no registry).
 *
 * Shows: containers get their addresses from our IPAM (handle `<network>.<containerID>`, on
 * their node's affine blocks), reach each other across hosts by plain routed IP over the
 * BGP-learned block routes, a policy applied with calicoctl blocks and then allows them (real
 * packets), and `podman rm` releases everything (no allocation, endpoint, interface or route).
 *
 * Podman leaves no global configuration behind: storage (`--root`/`--runroot`), its tmp dir and
 * the CNI config and plugin dirs are per run (CONTAINERS_CONF), and the two system directories
 * podman writes regardless (containers/image's blob-info cache, libcni's result cache) are
 * removed afterwards when this test created them.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { cidrContains, parseCIDR, parseCIDROrIP } from "../src/api/net.js";
import { runOk } from "../src/dataplane/netns.js";
import { IPAM } from "../src/ipam/index.js";
import { HANDLE_PREFIX } from "../src/ipam/block.js";
import { MultiHostFabric, type Host } from "../src/lab/multi-host.js";

const CLI_MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const NETWORK = "ctsnet";
const IMAGE = "localhost/ctsbox:latest";
const PODMAN_TIMEOUT_MS = 120_000;

const isRoot = process.getuid?.() === 0;
const have = (cmd: string, args: string[]): boolean =>
  spawnSync(cmd, args, { stdio: "ignore", timeout: 20_000 }).status === 0;
const missing = [
  ["podman", ["--version"]],
  ["runc", ["--version"]],
  ["busybox", ["true"]],
  ["nsenter", ["--version"]],
]
  .filter(([cmd, args]) => !have(cmd as string, args as string[]))
  .map(([cmd]) => cmd as string);
const skip =
  process.env.CI === undefined && !isRoot
    ? "needs root (network namespaces, podman as root)"
    : process.env.CI === undefined && missing.length > 0
      ? `needs ${missing.join(", ")} (apt-get install podman runc busybox-static util-linux)`
      : false;

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** One host's podman: its own storage, tmp dir, CNI config and plugin dirs. */
class PodmanHost {
  readonly dir: string;
  readonly conf: string;
  constructor(
    readonly host: Host,
    base: string,
  ) {
    this.dir = join(base, `podman-${host.name}`);
    this.conf = join(this.dir, "containers.conf");
  }

  /** `calicoctl cni install` for this host, then containers.conf pointing podman at it. */
  async setup(dbUrl: string): Promise<void> {
    for (const d of ["bin", "net.d", "root", "runroot", "tmp"])
      mkdirSync(join(this.dir, d), { recursive: true });
    await runOk(process.execPath, [
      CLI_MAIN,
      "cni",
      "install",
      "--datastore",
      dbUrl,
      "--bin-dir",
      join(this.dir, "bin"),
      "--conf-dir",
      join(this.dir, "net.d"),
      "--nodename",
      this.host.name,
      "--network",
      NETWORK,
      "--cni-version",
      "1.0.0",
      "--ipv6",
    ]);
    // runc, not crun (cgroups v1 hybrid); no rlimits podman may not raise here; the CNI backend
    // with only our plugin dir and conf dir; our network as the default, so podman's own
    // "podman" bridge network never exists (lab-recipes §6).
    writeFileSync(
      this.conf,
      [
        "[containers]",
        "default_ulimits = []",
        "[network]",
        'network_backend = "cni"',
        `cni_plugin_dirs = [${JSON.stringify(join(this.dir, "bin"))}]`,
        `network_config_dir = ${JSON.stringify(join(this.dir, "net.d"))}`,
        `default_network = ${JSON.stringify(NETWORK)}`,
        "[engine]",
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "none"',
        `tmp_dir = ${JSON.stringify(join(this.dir, "tmp"))}`,
        `image_copy_tmp_dir = ${JSON.stringify(join(this.dir, "tmp"))}`,
        "",
      ].join("\n"),
    );
  }

  /** Run podman inside the host's network namespace. */
  exec(args: string[]): Promise<Exec> {
    const argv = [
      `--net=/run/netns/${this.host.netns}`,
      "--",
      "podman",
      "--root",
      join(this.dir, "root"),
      "--runroot",
      join(this.dir, "runroot"),
      // vfs: a 2 MB image costs nothing to copy, and it works on any filesystem (overlay on
      // an overlay root, as in some CI containers, does not).
      "--storage-driver",
      "vfs",
      ...args,
    ];
    return new Promise((resolve, reject) => {
      const child = spawn("nsenter", argv, {
        env: { ...process.env, CONTAINERS_CONF: this.conf, TMPDIR: join(this.dir, "tmp") },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), PODMAN_TIMEOUT_MS);
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? 1, stdout, stderr });
      });
    });
  }

  async ok(args: string[]): Promise<string> {
    const r = await this.exec(args);
    if (r.code !== 0)
      throw new Error(
        `podman ${args.join(" ")} on ${this.host.name} failed (exit ${r.code}): ${r.stderr}${r.stdout}`,
      );
    return r.stdout;
  }

  /** Remove every container and image, then the directory. Never throws. */
  async destroy(): Promise<void> {
    if (!existsSync(this.conf)) return;
    await this.exec(["rm", "--all", "--force", "--time", "0"]).catch(() => undefined);
    await this.exec(["rmi", "--all", "--force"]).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

interface Container {
  name: string;
  id: string;
  on: PodmanHost;
  v4: string;
  v6: string;
  /** Podman's netns for it (/run/netns/netns-<uuid>). */
  netns: string;
}

const fab = new MultiHostFabric({ hosts: 2, tag: "ctscp" });
const hosts: PodmanHost[] = [];
const containers: Container[] = [];
// System paths podman writes whatever its configuration says; removed afterwards if ours.
const GLOBAL_CACHES = ["/var/lib/containers", "/var/lib/cni"];
const preexisting = new Set(GLOBAL_CACHES.filter((p) => existsSync(p)));

/** A busybox rootfs as a tarball (busybox-static: one static binary, no libraries needed). */
function makeRootfsTar(dir: string): string {
  const root = join(dir, "rootfs");
  for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp"]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync("/bin/busybox", join(root, "bin", "busybox"));
  for (const a of ["sh", "ip", "ping", "sleep", "cat", "ls", "hostname"])
    symlinkSync("busybox", join(root, "bin", a));
  writeFileSync(join(root, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
  const tar = join(dir, "rootfs.tar");
  const r = spawnSync("tar", ["-C", root, "-cf", tar, "."]);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr.toString()}`);
  return tar;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last = "";
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function calicoctl(args: string[], input?: string): Promise<string> {
  const file = join(fab.dir, `calicoctl-${Date.now()}.yaml`);
  if (input !== undefined) writeFileSync(file, input);
  try {
    return await runOk(process.execPath, [
      CLI_MAIN,
      ...args,
      ...(input !== undefined ? ["-f", file] : []),
      "--datastore",
      fab.dbUrl,
    ]);
  } finally {
    rmSync(file, { force: true });
  }
}

/** Wait until every agent has programmed the datastore's current revision. */
async function agentsCaughtUp(): Promise<void> {
  const rev = await fab.datastore.revision();
  for (const h of fab.hosts)
    await fab.waitForStatus(
      h,
      (s) => s.ready === true && Number(s.appliedRevision) >= rev,
      `applied revision ${rev}`,
    );
}

/** One ping from a container; true when answered. */
async function ping(from: Container, addr: string): Promise<boolean> {
  const r = await from.on.exec([
    "exec",
    from.name,
    "ping",
    addr.includes(":") ? "-6" : "-4",
    "-c",
    "1",
    "-W",
    "1",
    addr,
  ]);
  return r.code === 0;
}

interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
  type?: string;
}
async function routesOf(h: Host, family: 4 | 6, ...filter: string[]): Promise<KernelRoute[]> {
  const out = await runOk("ip", [`-${family}`, "-j", "route", "show", ...filter], { netns: h.netns });
  return out.trim() === "" ? [] : (JSON.parse(out) as KernelRoute[]);
}
const full = (d: string): string => (d.includes("/") ? d : `${d}/${d.includes(":") ? 128 : 32}`);

async function run(on: PodmanHost, name: string): Promise<Container> {
  const id = (
    await on.ok(["run", "-d", "--name", name, "--network", NETWORK, IMAGE, "/bin/sleep", "600"])
  ).trim();
  const inspect = JSON.parse(await on.ok(["inspect", name])) as {
    NetworkSettings: {
      SandboxKey: string;
      Networks: Record<string, { IPAddress: string; GlobalIPv6Address: string }>;
    };
  }[];
  const net = inspect[0]!.NetworkSettings.Networks[NETWORK];
  assert.ok(net !== undefined, `${name} is on ${NETWORK}: ${JSON.stringify(inspect[0]!.NetworkSettings)}`);
  const c: Container = {
    name,
    id,
    on,
    v4: net.IPAddress,
    v6: net.GlobalIPv6Address,
    netns: inspect[0]!.NetworkSettings.SandboxKey,
  };
  containers.push(c);
  return c;
}

describe("podman on two calico-ts hosts", { skip }, () => {
  let c1: Container;
  let c2: Container;

  before(async () => {
    await fab.start();
    const apply = (r: Record<string, unknown>) => fab.store.apply(r);
    await apply({
      apiVersion: "projectcalico.org/v3",
      kind: "IPPool",
      metadata: { name: "pool4" },
      spec: { cidr: "198.19.0.0/16", blockSize: 26 },
    });
    await apply({
      apiVersion: "projectcalico.org/v3",
      kind: "IPPool",
      metadata: { name: "pool6" },
      spec: { cidr: "fd00:19::/48", blockSize: 122 },
    });
    await apply({
      apiVersion: "projectcalico.org/v3",
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: { nodeToNodeMeshEnabled: true, nodeMeshMaxRestartTime: "0s" },
    });
    for (const h of fab.hosts) fab.startAgent(h);
    const tar = makeRootfsTar(fab.dir);
    for (const h of fab.hosts) {
      const p = new PodmanHost(h, fab.dir);
      hosts.push(p);
      await p.setup(fab.dbUrl);
      await p.ok(["import", "--quiet", tar, IMAGE]);
    }
    const established = (s: Record<string, unknown>): boolean => {
      const bgp = s.bgp as { enabled: boolean; peers: { state: string }[] } | undefined;
      return (
        bgp?.enabled === true && bgp.peers.length === 2 && bgp.peers.every((p) => p.state === "Established")
      );
    };
    for (const h of fab.hosts) await fab.waitForStatus(h, established, "BGP sessions Established", 40_000);
  });

  after(async () => {
    for (const p of hosts) await p.destroy();
    await fab.stop();
    for (const p of GLOBAL_CACHES) {
      if (!preexisting.has(p)) rmSync(p, { recursive: true, force: true });
    }
  });

  test("podman sees our network and runtime: CNI backend, runc, the calico plugin", async () => {
    const p = hosts[0]!;
    const info = (
      await p.ok(["info", "--format", "{{.Host.NetworkBackend}} {{.Host.OCIRuntime.Name}}"])
    ).trim();
    assert.equal(info, "cni runc");
    const nets = (await p.ok(["network", "ls", "--format", "{{.Name}} {{.Driver}}"])).trim().split("\n");
    assert.deepEqual(nets, [`${NETWORK} calico`], "only our network exists");
  });

  test("a container per host gets its addresses from our IPAM, on its own node", async () => {
    c1 = await run(hosts[0]!, `${fab.nets.prefix}c1`);
    c2 = await run(hosts[1]!, `${fab.nets.prefix}c2`);
    const ipam = new IPAM(fab.datastore);
    for (const [c, node] of [
      [c1, "h1"],
      [c2, "h2"],
    ] as const) {
      assert.ok(cidrContains(parseCIDR("198.19.0.0/16")!, parseCIDROrIP(c.v4)!), `${c.name} v4 ${c.v4}`);
      assert.ok(cidrContains(parseCIDR("fd00:19::/48")!, parseCIDROrIP(c.v6)!), `${c.name} v6 ${c.v6}`);
      for (const a of [c.v4, c.v6]) {
        const alloc = await ipam.getAllocation(a);
        assert.ok(alloc !== undefined, `${a} is allocated`);
        assert.equal(alloc.handleID, `${NETWORK}.${c.id}`);
        assert.equal(alloc.attrs?.node, node);
        assert.equal(alloc.affinity, `host:${node}`, `${a} is in a block affine to ${node}`);
      }
      const weps = (await fab.store.list("WorkloadEndpoint")).items.filter(
        (w) => w.spec.containerID === c.id,
      );
      assert.equal(weps.length, 1, `one WorkloadEndpoint for ${c.name}`);
      assert.equal(weps[0]!.spec.node, node);
      assert.deepEqual(weps[0]!.spec.ipNetworks, [`${c.v4}/32`, `${c.v6}/128`]);
      // Inside the container: the addresses and the default route via 169.254.1.1.
      const addr = await c.on.ok(["exec", c.name, "ip", "addr", "show", "eth0"]);
      assert.match(addr, new RegExp(`inet ${c.v4.replace(/\./g, "\\.")}/32`));
      assert.match(addr, new RegExp(`inet6 ${c.v6}/128`));
      const route = await c.on.ok(["exec", c.name, "ip", "route"]);
      assert.match(route, /default via 169\.254\.1\.1 dev eth0/);
      // The host end is in the host's namespace, not in the root namespace.
      const host = fab.host(node);
      const links = JSON.parse(
        await runOk("ip", ["-j", "link", "show", "dev", String(weps[0]!.spec.interfaceName)], {
          netns: host.netns,
        }),
      ) as { ifname: string }[];
      assert.equal(links.length, 1);
      assert.equal(
        spawnSync("ip", ["link", "show", "dev", String(weps[0]!.spec.interfaceName)]).status,
        1,
        "not in the root namespace",
      );
    }
  });

  test("they reach each other across hosts over BGP-learned block routes", async () => {
    const [h1, h2] = [fab.host("h1"), fab.host("h2")];
    for (const [c, via, other, gw4, gw6] of [
      [c1, h2, h1, h1.v4, h1.v6],
      [c2, h1, h2, h2.v4, h2.v6],
    ] as const) {
      // The other host learned the container's block over BGP (proto 84) with the owner as next hop.
      for (const [addr, gw, fam] of [
        [c.v4, gw4, 4],
        [c.v6, gw6, 6],
      ] as const) {
        await until(`${via.name}: a BGP route to ${addr} via ${gw}`, async () => {
          const rs = await routesOf(via, fam, "proto", "84");
          return rs.some(
            (r) => r.gateway === gw && cidrContains(parseCIDR(full(r.dst))!, parseCIDROrIP(addr)!),
          )
            ? true
            : undefined;
        });
      }
      // What the kernel actually picks: straight to the owner over the underlay, no tunnel.
      for (const [addr, gw] of [
        [c.v4, gw4],
        [c.v6, gw6],
      ] as const) {
        const got = JSON.parse(
          await runOk("ip", ["-j", "route", "get", addr], { netns: via.netns }),
        ) as KernelRoute[];
        assert.equal(got[0]?.gateway, gw, `${via.name}: route get ${addr}: ${JSON.stringify(got)}`);
        assert.equal(got[0]?.dev, "eth0");
      }
      // The owner routes to it over its cali interface.
      const own = await routesOf(other, 4);
      assert.ok(
        own.some((r) => full(r.dst) === `${c.v4}/32` && r.dev?.startsWith("cali")),
        `${other.name} /32 to ${c.v4}`,
      );
    }
    for (const [from, to] of [
      [c2, c1],
      [c1, c2],
    ] as const) {
      for (const addr of [to.v4, to.v6])
        await until(`${from.name} → ${addr}`, async () => ((await ping(from, addr)) ? true : undefined));
    }
  });

  test("a policy applied with calicoctl blocks them, then allows them", async () => {
    const policy = (ingress: unknown[]): string =>
      JSON.stringify({
        apiVersion: "projectcalico.org/v3",
        kind: "GlobalNetworkPolicy",
        metadata: { name: "cts-podman" },
        spec: {
          selector: "projectcalico.org/orchestrator == 'cni'",
          types: ["Ingress"],
          ingress,
        },
      });
    // A policy that applies and has no rule for the traffic: the tier denies it.
    await calicoctl(["apply"], policy([{ action: "Allow", protocol: "TCP", destination: { ports: [9] } }]));
    await agentsCaughtUp();
    for (const [from, to] of [
      [c2, c1],
      [c1, c2],
    ] as const) {
      for (const addr of [to.v4, to.v6])
        assert.equal(await ping(from, addr), false, `${from.name} → ${addr} blocked`);
    }
    await calicoctl(
      ["apply"],
      policy([{ action: "Allow", source: { selector: "projectcalico.org/orchestrator == 'cni'" } }]),
    );
    await agentsCaughtUp();
    for (const [from, to] of [
      [c2, c1],
      [c1, c2],
    ] as const) {
      for (const addr of [to.v4, to.v6])
        await until(
          `${from.name} → ${addr} allowed again`,
          async () => ((await ping(from, addr)) ? true : undefined),
          10_000,
        );
    }
    await calicoctl(["delete", "globalnetworkpolicy", "cts-podman"]);
  });

  test("podman rm releases everything: no allocation, endpoint, interface, route or netns left", async () => {
    const ipam = new IPAM(fab.datastore);
    for (const c of [c1, c2]) {
      const wep = (await fab.store.list("WorkloadEndpoint")).items.find((w) => w.spec.containerID === c.id);
      assert.ok(wep !== undefined);
      const iface = String(wep.spec.interfaceName);
      await c.on.ok(["rm", "--force", "--time", "0", c.name]);
      for (const a of [c.v4, c.v6]) assert.equal(await ipam.getAllocation(a), undefined, `${a} released`);
      const weps = (await fab.store.list("WorkloadEndpoint")).items.filter(
        (w) => w.spec.containerID === c.id,
      );
      assert.deepEqual(weps, [], `no endpoint for ${c.name}`);
      const host = c.on.host;
      const links = JSON.parse(await runOk("ip", ["-j", "link", "show"], { netns: host.netns })) as {
        ifname: string;
      }[];
      assert.ok(!links.some((l) => l.ifname === iface), `${iface} gone`);
      assert.ok(!links.some((l) => l.ifname.startsWith("cali")), "no cali interface left");
      for (const [a, fam] of [
        [c.v4, 4],
        [c.v6, 6],
      ] as const) {
        const rs = await routesOf(host, fam);
        assert.ok(!rs.some((r) => full(r.dst) === full(a)), `no host route to ${a} on ${host.name}`);
      }
      assert.equal(existsSync(c.netns), false, `podman's netns ${c.netns} removed`);
      const cached = existsSync("/var/lib/cni/results") ? readdirSync("/var/lib/cni/results") : [];
      assert.ok(!cached.some((f) => f.includes(c.id)), "libcni's cached result removed");
    }
    const handles = (await fab.datastore.list(`${HANDLE_PREFIX}${NETWORK}.`)).items.map((kv) => kv.key);
    assert.deepEqual(handles, [], "no IPAM handle left");
    const left = (await hosts[0]!.ok(["ps", "--all", "--format", "{{.Names}}"])).trim();
    assert.equal(left, "");
  });
});
