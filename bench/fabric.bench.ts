/**
 * The lab's data path against its limits (issue 8, "Show"), in one run:
 *
 *  (a) fabric: a lab (`labUp`, 3 hosts, no demo, no apiserver: real calico-node with its nft
 *      table, BGP-learned routes, workloads attached by the real CNI plugin); single-stream TCP
 *      with iperf3 from a workload on h2 to a workload on h1 (`nsenter --net=`);
 *  (b) limit: the same hops built bare in fresh namespaces — workload → host → bridge → host →
 *      workload, the same veths, host MAC ee:ee:…, proxy ARP, /32 routes and MTU, but static
 *      routes and no nftables anywhere;
 *  (c) VXLAN: in the limit topology a second workload pair whose hosts route each other's
 *      workload over a vxlan device (VNI 4096, port 4789, MTU 1450 on the vxlan device and the
 *      workloads' veths, as Calico's VXLAN mode does): the same hops plus encapsulation.
 *  The three paths are measured round by round in rotating order, so drift on this shared
 *  machine hits them alike; a ratio is the median of the per-round ratios. Target:
 *  fabric / limit ≥ 95 %. The lab runs with BIG TCP (192 KiB GSO/GRO packets, `lab up`'s
 *  default where the kernel can), so the limit's links get the same; the VXLAN pair, an
 *  overlay, cannot use it and keeps 64 KiB. BENCH_FABRIC_BIG_TCP=0: 64 KiB everywhere.
 *  iperf3's client runs on CPU 0 and its server on CPU 1 for every path (see AFFINITY).
 *  (d) reachability: a CNI ADD (the installed plugin, as the lab runs it: answered by the host's
 *      calico-node) on one host, timed from the
 *      moment the ADD starts until the new workload answers a TCP probe from a workload on every
 *      other host (polled every 10-20 ms; the answer must carry the new workload's name, so the
 *      listener runs in its namespace before the ADD, as an application would wait for its
 *      network); hosts in turn, each workload deleted (CNI DEL) before the next.
 *
 * Everything made (the lab, the limit namespaces, every process) is removed on the way out,
 * also on failure or SIGINT/SIGTERM. Addresses: DESIGN.md §6 only.
 *
 *   npm run build && node dist/bench/fabric.bench.js          (root, iperf3)
 *   BENCH_FABRIC_ROUNDS=8 BENCH_FABRIC_SECONDS=5 BENCH_FABRIC_ADDS=30 …
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readLinkPacketSizes, setBigTcp } from "../src/dataplane/big-tcp.js";
import { run, runOk, type RunResult } from "../src/dataplane/netns.js";
import { invokeCni, labAddWorkload, labDown, labUp } from "../src/lab/lab.js";
import { ProbeClient } from "../src/lab/lab-probe.js";
import { labLocation, type LabLocation, type LabState, type LabWorkload } from "../src/lab/lab-state.js";
import { NetnsSet, runPrefix } from "../src/lab/netns-set.js";
import { WORKLOAD_GATEWAY_V4, WORKLOAD_HOST_MAC } from "../src/lab/workload.js";
import { machineInfo, percentile, writeReport, type BenchReport, type BenchRow } from "./report.js";

const HOSTS = 3;
const ROUNDS = Number(process.env.BENCH_FABRIC_ROUNDS ?? 8);
const SECONDS = Number(process.env.BENCH_FABRIC_SECONDS ?? 5);
const OMIT = 1;
const ADDS = Number(process.env.BENCH_FABRIC_ADDS ?? 30);
/**
 * Client on CPU 0, server on CPU 1 (iperf3 -A), for every path alike. Left to the scheduler,
 * a run now and then lands both on one CPU, and with 192 KiB packets that run is 1.7–3.5×
 * faster (shared cache) whatever the path: 18 vs 31–64 Gbit/s, a bimodal figure no median of
 * six tames. Apart is what an unpinned run gets most of the time (18.8 vs 17.9 Gbit/s).
 */
const AFFINITY = cpus().length >= 2 ? ["-A", "0,1"] : [];
/** BENCH_FABRIC_BIG_TCP=0: 64 KiB packets everywhere (the lab's `--no-big-tcp`). */
const BIG_TCP = process.env.BENCH_FABRIC_BIG_TCP !== "0";
const PORT = 5201;
/** A probe's connect timeout, and the shortest spacing between two probes from one prober. */
const PROBE_TIMEOUT_MS = 20;
const PROBE_SPACING_MS = 10;
const REACH_DEADLINE_MS = 15_000;
const VXLAN_MTU = 1450;
const PROBE_MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "lab", "probe-agent-main.js");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
};

async function ipBatch(netns: string, lines: string[]): Promise<void> {
  await runOk("ip", ["-n", netns, "-batch", "-"], { input: `${lines.join("\n")}\n` });
}

// ---------------------------------------------------------------------------------------------
// iperf3

async function waitListening(netns: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ss = await run("ss", ["-Htln", `sport = :${port}`], { netns });
    if (ss.stdout.includes(`:${port}`)) return;
    await sleep(20);
  }
  throw new Error(`iperf3 server in ${netns} did not listen on ${port} within 2 s`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 2000);
    child.once("close", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill("SIGKILL");
  });
}

interface IperfRun {
  /** Received, the omitted first second excluded. */
  gbps: number;
  /**
   * CPU seconds (user + system of the client and the server process: on veths the whole
   * forwarding path runs in their softirq context) per GB sent, the omitted second included.
   * Unlike throughput it hardly moves when other work takes CPU time away, so it is the
   * steadier way to compare paths on a shared machine.
   */
  cpuPerGB: number;
}

const TIME = "/usr/bin/time";

/** `cpu <user> <system>` as GNU time writes it with -f. */
function cpuOf(stderr: string): number | undefined {
  const m = /cpu ([\d.]+) ([\d.]+)/.exec(stderr);
  return m === null ? undefined : Number(m[1]) + Number(m[2]);
}

/** One single-stream TCP run, client → server. */
async function iperfOnce(serverNs: string, clientNs: string, ip: string): Promise<IperfRun> {
  // Its own process group, so a kill reaches iperf3 behind `time`.
  const server = spawn(
    "nsenter",
    [
      `--net=/run/netns/${serverNs}`,
      "--",
      TIME,
      "-f",
      "cpu %U %S",
      "iperf3",
      "-s",
      "-1",
      "-B",
      ip,
      "-p",
      String(PORT),
    ],
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  let serverErr = "";
  server.stderr.setEncoding("utf8").on("data", (d: string) => (serverErr += d));
  const serverDone = new Promise<void>((resolve) => server.once("close", () => resolve()));
  try {
    await waitListening(serverNs, PORT);
    const r = await run(
      TIME,
      [
        "-f",
        "cpu %U %S",
        "iperf3",
        "-c",
        ip,
        "-p",
        String(PORT),
        "-t",
        String(SECONDS),
        "-O",
        String(OMIT),
        ...AFFINITY,
        "-J",
      ],
      { netns: clientNs, timeoutMs: (SECONDS + OMIT + 20) * 1000 },
    );
    let j: {
      error?: string;
      intervals?: { sum: { bytes: number } }[];
      end?: { sum_received?: { bits_per_second: number } };
    } = {};
    try {
      j = JSON.parse(r.stdout) as typeof j;
    } catch {
      // reported below
    }
    const bps = j.end?.sum_received?.bits_per_second;
    if (bps === undefined)
      throw new Error(
        `iperf3 ${clientNs} → ${ip} failed: ${j.error ?? (r.stderr || r.stdout).slice(0, 500)}`,
      );
    await Promise.race([serverDone, sleep(3000)]);
    const cpu = (cpuOf(r.stderr) ?? NaN) + (cpuOf(serverErr) ?? NaN);
    const bytes = (j.intervals ?? []).reduce((n, i) => n + i.sum.bytes, 0);
    return { gbps: bps / 1e9, cpuPerGB: cpu / (bytes / 1e9) };
  } finally {
    if (server.exitCode === null && server.signalCode === null && server.pid !== undefined) {
      try {
        process.kill(-server.pid, "SIGKILL");
      } catch {
        // gone already
      }
      await Promise.race([serverDone, sleep(2000)]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (b) and (c): the bare routed topology, with a VXLAN pair beside the native one

interface Pair {
  server: string;
  client: string;
  ip: string;
}

/**
 *   wa (198.19.250.1) ─┐                                      ┌─ wb (198.19.250.2)   native /32 routes
 *   xa (198.19.251.1) ─┴ h1 198.18.10.1 ── br ── 198.18.10.2 h2 ┴─ xb (198.19.251.2)  over vxlan0
 *
 * `tag` names a separate copy (its own namespaces; the 198.18.10.0/24 and 198.19.25x addresses
 * live only inside them). With `conntrack`, both hosts get a two-rule stateful forward chain
 * (`ct state established,related accept; ct state invalid drop`): the cost of connection
 * tracking alone, which any stateful policy — ours included — pays on every packet.
 */
async function buildLimit(
  nets: NetnsSet,
  mtu: number,
  tag: string,
  conntrack: boolean,
  bigTcp: boolean,
): Promise<{ native: Pair; vxlan: Pair; vxlanBigTcp: string }> {
  const br = await nets.add(`${tag}br`);
  await run(
    "sysctl",
    ["-qw", "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0"],
    { netns: br },
  );
  await ipBatch(br, ["link add br0 type bridge", "addr add 198.18.10.254/24 dev br0", "link set br0 up"]);
  const hosts: string[] = [];
  for (const n of [1, 2]) {
    const h = await nets.add(`${tag}h${n}`);
    hosts.push(h);
    await nets.sysctl(h, { "net.ipv4.ip_forward": "1" });
    await ipBatch(h, [
      `link add eth0 type veth peer name p${n} netns ${br}`,
      `addr add 198.18.10.${n}/24 dev eth0`,
      "link set eth0 up",
      // Proxy ARP answers for 169.254.1.1 only when the host has a route covering it.
      "route add default via 198.18.10.254 dev eth0",
      `link add vxlan0 type vxlan id 4096 local 198.18.10.${n} dev eth0 dstport 4789 nolearning`,
      `link set vxlan0 mtu ${VXLAN_MTU} up`,
      `addr add 198.19.255.${n}/32 dev vxlan0`,
    ]);
    await ipBatch(br, [`link set p${n} master br0`, `link set p${n} up`]);
  }
  const mac = async (h: string) =>
    (
      JSON.parse(await runOk("ip", ["-j", "link", "show", "vxlan0"], { netns: h })) as { address: string }[]
    )[0]!.address;
  const macs = [await mac(hosts[0]!), await mac(hosts[1]!)];
  const wl: Record<string, string> = {};
  for (const [name, n, ip, wmtu] of [
    ["wa", 1, "198.19.250.1", mtu],
    ["wb", 2, "198.19.250.2", mtu],
    ["xa", 1, "198.19.251.1", VXLAN_MTU],
    ["xb", 2, "198.19.251.2", VXLAN_MTU],
  ] as const) {
    const h = hosts[n - 1]!;
    const w = await nets.add(`${tag}${name}`);
    wl[name] = w;
    const cali = `cali${tag}${name}00000`;
    await ipBatch(h, [
      `link add ${cali} address ${WORKLOAD_HOST_MAC} mtu ${wmtu} type veth peer name eth0 mtu ${wmtu} netns ${w}`,
      `link set ${cali} up`,
      `route add ${ip}/32 dev ${cali} scope link`,
    ]);
    await nets.sysctl(h, {
      [`net.ipv4.conf.${cali}.forwarding`]: "1",
      [`net.ipv4.conf.${cali}.proxy_arp`]: "1",
      [`net.ipv4.neigh.${cali}.proxy_delay`]: "0",
    });
    await ipBatch(w, [
      "link set eth0 up",
      `addr add ${ip}/32 dev eth0`,
      `route add ${WORKLOAD_GATEWAY_V4} dev eth0 scope link`,
      `route add default via ${WORKLOAD_GATEWAY_V4} dev eth0`,
    ]);
  }
  // Remote workloads: natively via the other host (what BGP installs), or over vxlan0 the way
  // Calico's VXLAN mode does it (static neighbour + FDB entry + onlink route).
  for (const n of [1, 2]) {
    const o = 3 - n;
    await ipBatch(hosts[n - 1]!, [
      `route add 198.19.250.${o}/32 via 198.18.10.${o} dev eth0`,
      `neigh add 198.19.255.${o} lladdr ${macs[o - 1]} dev vxlan0 nud permanent`,
      `route add 198.19.251.${o}/32 via 198.19.255.${o} dev vxlan0 onlink`,
    ]);
    await runOk("bridge", ["fdb", "append", macs[o - 1]!, "dev", "vxlan0", "dst", `198.18.10.${o}`], {
      netns: hosts[n - 1]!,
    });
  }
  // The same links as the lab's: BIG TCP wherever the lab has it (src/lab/lab.ts buildFabric).
  // The VXLAN pair is an overlay deployment: its veths and vxlan0 keep 64 KiB. An overlay
  // cannot use BIG TCP — with 192 KiB on its veths vxlan0 segments every packet in software
  // (7 Gbit/s here), with 192 KiB on vxlan0 too throughput fell to 0.5 Gbit/s.
  const vxlanBigTcp = bigTcp ? "veths and device left at 64 KiB (an overlay)" : "not asked";
  if (bigTcp) {
    const problems = [
      ...(await setBigTcp(br, ["br0", "p1", "p2"])),
      ...(
        await Promise.all(
          hosts.map((h, i) => setBigTcp(h, ["eth0", `cali${tag}${i === 0 ? "wa" : "wb"}00000`])),
        )
      ).flat(),
      ...(await Promise.all([wl.wa!, wl.wb!].map((w) => setBigTcp(w, ["eth0"])))).flat(),
    ];
    if (problems.length > 0) throw new Error(`limit: ${problems.join("; ")}`);
  }
  for (const h of hosts) {
    if (conntrack)
      await runOk("nft", ["-f", "-"], {
        netns: h,
        input: [
          "table inet ctonly {",
          "  chain forward {",
          "    type filter hook forward priority filter; policy accept;",
          "    ct state established,related accept",
          "    ct state invalid drop",
          "  }",
          "}",
          "",
        ].join("\n"),
      });
  }
  for (const h of [...hosts, br]) {
    const nft = (await run("nft", ["list", "ruleset"], { netns: h })).stdout.trim();
    const want = conntrack && h !== br;
    if ((nft !== "") !== want) throw new Error(`limit namespace ${h}: unexpected nftables ruleset: ${nft}`);
  }
  return {
    native: { server: wl.wa!, client: wl.wb!, ip: "198.19.250.1" },
    vxlan: { server: wl.xa!, client: wl.xb!, ip: "198.19.251.1" },
    vxlanBigTcp,
  };
}

// ---------------------------------------------------------------------------------------------
// (d): CNI ADD → reachable from every other host

/** The calico CNI plugin run in a lab host's namespace exactly as the lab runs it (src/lab/lab.ts). */
function cni(
  s: LabState,
  host: string,
  command: "ADD" | "DEL",
  w: { name: string; netns: string; containerID: string },
): Promise<RunResult> {
  const h = s.hosts.find((x) => x.name === host)!;
  return invokeCni(s, h, command, { ...w, namespace: "demo", labels: { app: "reach" } });
}

/** A probe agent answering TCP 80 with `name`, in `netns`, before any interface is there. */
async function startListener(netns: string, name: string, socket: string): Promise<ChildProcess> {
  const child = spawn(
    "nsenter",
    [
      `--net=/run/netns/${netns}`,
      "--",
      process.execPath,
      PROBE_MAIN,
      "--socket",
      socket,
      "--name",
      name,
      "--tcp",
      "80",
    ],
    { stdio: ["pipe", "pipe", "ignore"] },
  );
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  for (let i = 0; i < 400 && !out.includes("ready"); i++) {
    if (child.exitCode !== null) break;
    await sleep(25);
  }
  if (!out.includes("ready")) {
    await stop(child);
    throw new Error(`the listener in ${netns} did not start`);
  }
  return child;
}

/** Poll `addr` from `prober` until the answer names `name`; ms since `t0`, or undefined at the deadline. */
async function firstAnswer(
  prober: ProbeClient,
  addr: string,
  name: string,
  t0: number,
): Promise<number | undefined> {
  for (let i = 0; i < REACH_DEADLINE_MS / PROBE_SPACING_MS; i++) {
    const t = performance.now();
    if (t - t0 > REACH_DEADLINE_MS) break;
    const r = await prober.probe({ proto: "tcp", addr, port: 80, timeoutMs: PROBE_TIMEOUT_MS });
    if (r.ok && r.peer === name) return performance.now() - t0;
    const spent = performance.now() - t;
    if (spent < PROBE_SPACING_MS) await sleep(PROBE_SPACING_MS - spent);
  }
  return undefined;
}

interface ReachSample {
  host: string;
  add: number;
  /** ms from ADD start until the plugin's host route appeared (undefined: not seen). */
  route: number | undefined;
  reach: number | undefined;
  del: number;
}

/**
 * The new workload's address as soon as the plugin installs its host route (mid-ADD, before it
 * writes the endpoint), read from `ip monitor route` in the host namespace: probing can start
 * before the plugin has returned, so a fabric that is ready early is seen early.
 */
function watchNewRoute(hostNetns: string): { ip: Promise<string>; stop: () => Promise<void> } {
  const child = spawn("ip", ["-n", hostNetns, "monitor", "route"], { stdio: ["ignore", "pipe", "ignore"] });
  let buf = "";
  const ip = new Promise<string>((resolve) => {
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^(198\.19\.\d+\.\d+) dev cali\w+/.exec(line);
        if (m !== null) resolve(m[1]!);
      }
    });
  });
  return { ip, stop: () => stop(child) };
}

const ipOf = (stdout: string): string =>
  (JSON.parse(stdout) as { ips: { address: string }[] }).ips[0]!.address.split("/")[0]!;

async function reachability(
  s: LabState,
  probers: Map<string, ProbeClient>,
  dir: string,
  log: (l: string) => void,
): Promise<ReachSample[]> {
  const out: ReachSample[] = [];
  for (let i = 0; i < ADDS; i++) {
    const host = s.hosts[i % s.hosts.length]!;
    const name = `r${i}`;
    // The lab's prefix: `labDown` removes it too if this run dies half-way.
    const w = { name, netns: `${s.prefix}${name}`, containerID: `${s.prefix}reach-${i}` };
    await runOk("ip", ["netns", "add", w.netns]);
    let listener: ChildProcess | undefined;
    let monitor: { ip: Promise<string>; stop: () => Promise<void> } | undefined;
    try {
      await runOk("ip", ["-n", w.netns, "link", "set", "lo", "up"]);
      listener = await startListener(w.netns, name, join(dir, `${name}.sock`));
      monitor = watchNewRoute(host.netns);
      await sleep(100); // `ip monitor` has subscribed
      const t0 = performance.now();
      const addP = cni(s, host.name, "ADD", w).then((r) => ({ r, ms: performance.now() - t0 }));
      const fromAdd = addP.then(({ r }) => (r.code === 0 ? ipOf(r.stdout) : ""));
      let routeMs: number | undefined;
      void monitor.ip.then(() => (routeMs ??= performance.now() - t0));
      const early = await Promise.race([monitor.ip, fromAdd]);
      const others = [...probers].filter(([h]) => h !== host.name).map(([, p]) => p);
      const probing =
        early === "" ? undefined : Promise.all(others.map((p) => firstAnswer(p, early, name, t0)));
      const add = await addP;
      if (add.r.code !== 0) {
        await probing;
        throw new Error(`CNI ADD ${name} on ${host.name} failed: ${add.r.stdout} ${add.r.stderr}`);
      }
      const ip = ipOf(add.r.stdout);
      let times = (await probing) ?? [];
      // The route seen was not this workload's (never expected): probe the real address.
      if (ip !== early) times = await Promise.all(others.map((p) => firstAnswer(p, ip, name, t0)));
      const reach = times.some((t) => t === undefined) ? undefined : Math.max(...(times as number[]));
      const t1 = performance.now();
      const del = await cni(s, host.name, "DEL", w);
      const delMs = performance.now() - t1;
      if (del.code !== 0)
        throw new Error(`CNI DEL ${name} on ${host.name} failed: ${del.stdout} ${del.stderr}`);
      out.push({ host: host.name, add: add.ms, route: routeMs, reach, del: delMs });
      log(
        `  ADD ${name} on ${host.name} (${ip}${ip !== early ? `, route seen first: ${early}` : ""}): route ${routeMs?.toFixed(0) ?? "-"} ms, plugin ${add.ms.toFixed(0)} ms, answers from every other host ${reach === undefined ? "NEVER (15 s)" : `${reach.toFixed(0)} ms`}`,
      );
    } finally {
      await monitor?.stop();
      if (listener !== undefined) await stop(listener);
      await run("ip", ["netns", "del", w.netns]);
    }
    await sleep(300); // let the agents see the DEL before the next ADD reuses the address
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

const PATHS = ["fabric", "limit", "vxlan", "conntrack"] as const;
type PathName = (typeof PATHS)[number];

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error("fabric.bench: needs root (network namespaces, nftables) and iperf3; not run");
    process.exitCode = 1;
    return;
  }
  const log = (l: string) => console.log(l);
  const dir = mkdtempSync(join(tmpdir(), "cts-fabbench-"));
  const loc: LabLocation = labLocation(`fb${process.pid.toString(36)}`.slice(0, 12), join(dir, "lab"));
  const nets = new NetnsSet(runPrefix("ctsf"));
  const probers = new Map<string, ProbeClient>();
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      for (const p of probers.values()) p.close();
      await labDown(loc).catch((e: unknown) => console.error("lab down:", e));
      await nets.cleanup();
      rmSync(dir, { recursive: true, force: true });
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`fabric.bench: ${sig}, removing the lab and the limit namespaces`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const up = await labUp(loc, {
      nodes: HOSTS,
      ipv6: false,
      datastore: "sqlite",
      demo: false,
      apiserver: false,
      bigTcp: BIG_TCP,
    });
    if (up.notConverged.length > 0) throw new Error(`lab did not converge: ${up.notConverged.join("; ")}`);
    log(`lab ${loc.name} up in ${(up.ms / 1000).toFixed(1)} s`);
    // One workload per host: srv (h1) and cli (h2) carry the iperf3 traffic; all three probe (d).
    const wls: LabWorkload[] = [];
    for (const [i, name] of ["srv", "cli", "p3"].entries())
      wls.push(await labAddWorkload(loc, `h${i + 1}`, name, { app: name }));
    const [srv, cli] = wls as [LabWorkload, LabWorkload, LabWorkload];
    for (const w of wls) probers.set(w.host, await ProbeClient.connect(w.socket));
    const link = JSON.parse(await runOk("ip", ["-j", "link", "show", "eth0"], { netns: srv.netns })) as {
      mtu: number;
    }[];
    const mtu = link[0]!.mtu;
    const bigTcp = up.state.bigTcp === true;
    const limit = await buildLimit(nets, mtu, "", false, bigTcp);
    const ct = await buildLimit(nets, mtu, "c", true, bigTcp);
    // What the CNI plugin gave the fabric's workload veth (both ends), as the kernel reports it.
    const fabricSizes = (await readLinkPacketSizes(srv.netns, ["eth0"]))?.[0];
    log(
      `BIG TCP: ${bigTcp ? "on" : "off"} (fabric workload eth0 ${JSON.stringify(fabricSizes)}; VXLAN device: ${limit.vxlanBigTcp})`,
    );
    const fabric: Pair = { server: srv.netns, client: cli.netns, ip: srv.ipv4[0]! };
    const pairs: Record<PathName, Pair> = {
      fabric,
      limit: limit.native,
      vxlan: limit.vxlan,
      conntrack: ct.native,
    };
    // Every path must carry traffic before it is timed.
    for (const p of PATHS) {
      const ping = await run("ping", ["-c", "1", "-W", "2", pairs[p].ip], { netns: pairs[p].client });
      if (ping.code !== 0) throw new Error(`${p}: ${pairs[p].client} cannot reach ${pairs[p].ip}`);
    }

    log(`throughput: ${ROUNDS} rounds × ${PATHS.length} paths, iperf3 -t ${SECONDS} -O ${OMIT}, 1 stream`);
    const gbps: Record<PathName, number[]> = { fabric: [], limit: [], vxlan: [], conntrack: [] };
    const cpu: Record<PathName, number[]> = { fabric: [], limit: [], vxlan: [], conntrack: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = PATHS.map((_, i) => PATHS[(i + r) % PATHS.length]!);
      for (const p of order) {
        const res = await iperfOnce(pairs[p].server, pairs[p].client, pairs[p].ip);
        gbps[p].push(res.gbps);
        cpu[p].push(res.cpuPerGB);
      }
      log(
        `  round ${r + 1}: ${PATHS.map((p) => `${p} ${gbps[p][r]!.toFixed(2)} Gbit/s ${cpu[p][r]!.toFixed(3)} cpu-s/GB`).join(", ")} (load ${(await run("cat", ["/proc/loadavg"])).stdout.split(" ")[0]})`,
      );
    }
    const perRound = (p: PathName) => gbps[p].map((v, i) => v / gbps.limit[i]!);
    /** CPU cost relative to the limit, per round (1.05: 5 % more CPU per byte than the limit). */
    const costRatio = (p: PathName) => median(cpu[p].map((v, i) => v / cpu.limit[i]!));
    const fabricRatio = median(perRound("fabric"));
    const vxlanRatio = median(perRound("vxlan"));
    const ctRatio = median(perRound("conntrack"));

    log(`reachability: ${ADDS} CNI ADDs, hosts in turn, probed from every other host`);
    const reach = await reachability(up.state, probers, dir, log);
    const reached = reach.flatMap((x) => (x.reach === undefined ? [] : [x.reach])).sort((a, b) => a - b);
    const adds = reach.map((x) => x.add).sort((a, b) => a - b);
    const dels = reach.map((x) => x.del).sort((a, b) => a - b);
    const missed = reach.length - reached.length;
    const afterRoute = reach
      .flatMap((x) => (x.reach === undefined || x.route === undefined ? [] : [x.reach - x.route]))
      .sort((a, b) => a - b);
    const early = reach.filter((x) => x.reach !== undefined && x.reach < x.add).length;

    const runs = (xs: number[]) => `runs ${xs.map((x) => x.toFixed(2)).join(", ")}`;
    const rows: BenchRow[] = [
      {
        name: "limit: bare routed veths, same hops, no nft",
        value: median(gbps.limit),
        unit: "Gbit/s",
        note: runs(gbps.limit),
      },
      {
        name: "fabric: lab workload h2 → h1 (calico-node, nft, BGP)",
        value: median(gbps.fabric),
        unit: "Gbit/s",
        baseline: median(gbps.limit),
        ratio: fabricRatio,
        note: `${runs(gbps.fabric)}; ratio = median of per-round ratios; target ≥ 0.95`,
      },
      {
        name: "VXLAN overlay: same hops + vxlan, no nft",
        value: median(gbps.vxlan),
        unit: "Gbit/s",
        baseline: median(gbps.limit),
        ratio: vxlanRatio,
        note: `${runs(gbps.vxlan)}; MTU ${VXLAN_MTU}`,
      },
      {
        name: "diagnostic: limit + conntrack only (2-rule stateful chain)",
        value: median(gbps.conntrack),
        unit: "Gbit/s",
        baseline: median(gbps.limit),
        ratio: ctRatio,
        note: `${runs(gbps.conntrack)}; what connection tracking alone costs`,
      },
      {
        name: "CPU per GB: limit",
        value: median(cpu.limit),
        unit: "cpu-s/GB",
        note: `client + server user+sys; runs ${cpu.limit.map((x) => x.toFixed(3)).join(", ")}`,
      },
      ...(["fabric", "vxlan", "conntrack"] as const).map((p): BenchRow => ({
        name: `CPU per GB: ${p} (ratio: cost / limit's)`,
        value: median(cpu[p]),
        unit: "cpu-s/GB",
        baseline: median(cpu.limit),
        ratio: costRatio(p),
        note: `runs ${cpu[p].map((x) => x.toFixed(3)).join(", ")}; ratio = median of per-round ratios`,
      })),
      {
        name: "CNI ADD start → answers from every other host p50",
        value: percentile(reached, 50),
        unit: "ms",
        baseline: percentile(adds, 50),
        ratio: percentile(reached, 50) / percentile(adds, 50),
        note: `${reached.length} ADDs${missed > 0 ? `, ${missed} never answered in 15 s` : ""}; ${early} answered before the plugin returned; baseline: the plugin run`,
      },
      {
        name: "CNI ADD start → answers from every other host p99",
        value: percentile(reached, 99),
        unit: "ms",
        note: `max of ${reached.length}: ${reached.length > 0 ? reached[reached.length - 1]!.toFixed(0) : "-"} ms`,
      },
      {
        name: "plugin's host route → answers from every other host p50",
        value: percentile(afterRoute, 50),
        unit: "ms",
        note: `p99 ${percentile(afterRoute, 99).toFixed(0)} ms: the agents' share (endpoint written → programmed → reachable)`,
      },
      { name: "CNI ADD (plugin run) p50", value: percentile(adds, 50), unit: "ms" },
      { name: "CNI ADD (plugin run) p99", value: percentile(adds, 99), unit: "ms" },
      { name: "CNI DEL (plugin run) p50", value: percentile(dels, 50), unit: "ms" },
    ];
    const met = fabricRatio >= 0.95;
    console.log(
      `target fabric / limit ≥ 95 %: ${(fabricRatio * 100).toFixed(1)} % ${met ? "MET" : "NOT MET"}; VXLAN / limit ${(vxlanRatio * 100).toFixed(1)} %; CPU per byte vs the limit: fabric ${(costRatio("fabric") * 100).toFixed(1)} %, VXLAN ${(costRatio("vxlan") * 100).toFixed(1)} %, conntrack only ${(costRatio("conntrack") * 100).toFixed(1)} %`,
    );
    const report: BenchReport & { targets: unknown[] } = {
      // 64 KiB packets: a report of its own, beside the default's.
      bench: BIG_TCP ? "fabric" : "fabric-64k",
      startedAt: new Date().toISOString(),
      machine: machineInfo(),
      params: {
        hosts: HOSTS,
        rounds: ROUNDS,
        seconds: SECONDS,
        omit: OMIT,
        streams: 1,
        tool: "iperf3",
        family: 4,
        workloadMtu: mtu,
        bigTcp,
        iperfAffinity: AFFINITY.join(" ") || "none",
        fabricWorkloadLinkSizes: fabricSizes,
        vxlanDeviceBigTcp: limit.vxlanBigTcp,
        vxlanMtu: VXLAN_MTU,
        adds: ADDS,
        probeTimeoutMs: PROBE_TIMEOUT_MS,
        probeSpacingMs: PROBE_SPACING_MS,
        datastore: "sqlite",
        load: (await run("cat", ["/proc/loadavg"])).stdout.trim(),
      },
      rows,
      targets: [
        {
          measure: "single-stream TCP through the fabric / the bare routed path (interleaved rounds)",
          target: "≥ 95 %",
          value: fabricRatio * 100,
          unit: "%",
          met,
        },
        {
          measure:
            "the same as CPU efficiency: the limit's CPU per byte / the fabric's (steadier under load)",
          target: "≥ 95 %",
          value: (1 / costRatio("fabric")) * 100,
          unit: "%",
          met: 1 / costRatio("fabric") >= 0.95,
        },
      ],
    };
    writeReport(report);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
