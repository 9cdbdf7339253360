/**
 * Calico's node-to-node mesh with real calico-node agents and real packets: three host
 * namespaces on one bridge, each running calico-node inside it (BGP speaker included), one
 * sqlite datastore. Workload addresses come from IPAM (blocks affine to h1 and h3); the blocks
 * travel over BGP (proto 84 routes via the owning host), and a workload on h3 reaches one on h1
 * over them. A workload on h1 with an address borrowed from h3's block becomes reachable
 * through its advertised /32. Then the mesh is turned off and h2 made a route reflector by
 * BGPPeer selectors: the agents reconfigure in place and h3 learns h1's routes through h2 with
 * h1 as next hop. Stopping h1's agent (graceful restart off) withdraws its routes everywhere.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { runCli } from "../src/cli/cli.js";
import { runOk } from "../src/dataplane/netns.js";
import { IPAM } from "../src/ipam/index.js";
import { MultiHostFabric, type Host, type MultiHostWorkload } from "../src/lab/multi-host.js";

interface PeerRow {
  address: string;
  type: string;
  state: string;
}
interface Status {
  appliedRevision?: number;
  ready?: boolean;
  bgp?: { enabled: boolean; peers: PeerRow[]; originated: string[] };
}

const fab = new MultiHostFabric({ hosts: 3, tag: "ctsbm" });
let ipam: IPAM;
let w1: MultiHostWorkload;
let w3: MultiHostWorkload;
let block3 = "";

interface KernelRoute {
  dst: string;
  gateway?: string;
  protocol?: string | number;
}

async function routes(h: Host, family: 4 | 6): Promise<KernelRoute[]> {
  const out = await runOk("ip", [`-${family}`, "-j", "route", "show", "proto", "84"], { netns: h.netns });
  return out.trim() === "" ? [] : (JSON.parse(out) as KernelRoute[]);
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: Error | undefined;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err : new Error(JSON.stringify(err));
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const routeVia = async (h: Host, dst: string, gw: string): Promise<true | undefined> => {
  const family = dst.includes(":") ? 6 : 4;
  const rs = await routes(h, family);
  // `ip -j` writes host routes without their length.
  const full = (d: string) => (d.includes("/") ? d : `${d}/${d.includes(":") ? 128 : 32}`);
  return rs.some((r) => full(r.dst) === dst && r.gateway === gw) ? true : undefined;
};

const allEstablished = (s: Record<string, unknown>): boolean => {
  const bgp = (s as Status).bgp;
  // Two other hosts, each over IPv4 and IPv6.
  return bgp?.enabled === true && bgp.peers.length === 4 && bgp.peers.every((p) => p.state === "Established");
};

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(args, {
    io: { stdout: (s) => (out += s), stderr: (s) => (err += s), readStdin: () => Promise.resolve("") },
  });
  return { code, out, err };
}

before(async () => {
  await fab.start();
  ipam = new IPAM(fab.datastore);
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
    kind: "Profile",
    metadata: { name: "kns.x" },
    spec: { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] },
  });
  // Graceful restart off for the mesh: a stopped agent's routes go at once.
  await apply({
    apiVersion: "projectcalico.org/v3",
    kind: "BGPConfiguration",
    metadata: { name: "default" },
    spec: { nodeToNodeMeshEnabled: true, nodeMeshMaxRestartTime: "0s" },
  });
  for (const h of fab.hosts) fab.startAgent(h);
});

after(async () => {
  await fab.stop();
});

test("every host's mesh sessions (v4 and v6) reach Established; calicoctl node status shows them", async () => {
  for (const h of fab.hosts) await fab.waitForStatus(h, allEstablished, "4 Established BGP sessions", 40_000);
  const s = (await fab.waitForStatus(fab.hosts[0]!, allEstablished, "sessions")) as Status;
  assert.deepEqual(s.bgp!.peers.map((p) => `${p.address} ${p.type}`).sort(), [
    "198.18.0.2 node-to-node mesh",
    "198.18.0.3 node-to-node mesh",
    "fd00::2 node-to-node mesh",
    "fd00::3 node-to-node mesh",
  ]);
  const r = await cli(["node", "status", "--status-file", fab.hosts[1]!.statusFile]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^Calico process is running\.\n\nIPv4 BGP status\n/);
  assert.match(r.out, /\| 198\.18\.0\.1 +\| node-to-node mesh \| up +\| \d\d:\d\d:\d\d \| Established \|/);
  assert.match(r.out, /\| 198\.18\.0\.3 +\| node-to-node mesh \| up +\|/);
  assert.match(r.out, /IPv6 BGP status\n\+-+/);
  assert.match(r.out, /\| fd00::1 +\| node-to-node mesh \| up +\|/);
});

test("h1's and h3's affine blocks are in the other hosts' kernels (proto 84 via the owner); h3's workload reaches h1's", async () => {
  const a1 = await ipam.autoAssign({
    node: "h1",
    handleID: "w1",
    num4: 1,
    num6: 1,
    attrs: { node: "h1", namespace: "x", pod: "w1" },
  });
  const a3 = await ipam.autoAssign({
    node: "h3",
    handleID: "w3",
    num4: 1,
    num6: 1,
    attrs: { node: "h3", namespace: "x", pod: "w3" },
  });
  const [v4a, v6a, v4c, v6c] = [a1.ipv4[0]!, a1.ipv6[0]!, a3.ipv4[0]!, a3.ipv6[0]!];
  const net = (c: string) => {
    const [addr, len] = c.split("/") as [string, string];
    return { addr, len: Number(len) };
  };
  w1 = await fab.addWorkload(fab.host("h1"), {
    namespace: "x",
    name: "w1",
    labels: { app: "w1" },
    v4: v4a.address,
    v6: v6a.address,
  });
  w3 = await fab.addWorkload(fab.host("h3"), {
    namespace: "x",
    name: "w3",
    labels: { app: "w3" },
    v4: v4c.address,
    v6: v6c.address,
  });
  const h1 = fab.host("h1");
  const h3 = fab.host("h3");
  // The blocks as the speakers originate them (their status files).
  const s1 = (await fab.waitForStatus(
    h1,
    (s) => ((s as Status).bgp?.originated.length ?? 0) === 2,
    "h1 originating its 2 blocks",
  )) as Status;
  const s3 = (await fab.waitForStatus(
    h3,
    (s) => ((s as Status).bgp?.originated.length ?? 0) === 2,
    "h3 originating its 2 blocks",
  )) as Status;
  const [b1v4, b1v6] = [
    s1.bgp!.originated.find((p) => !p.includes(":"))!,
    s1.bgp!.originated.find((p) => p.includes(":"))!,
  ];
  block3 = s3.bgp!.originated.find((p) => !p.includes(":"))!;
  assert.equal(net(b1v4).len, 26);
  assert.equal(net(b1v6).len, 122);
  assert.equal(v4a.cidr.split("/")[1], "26");
  for (const h of [fab.host("h2"), h3]) {
    await until(`${h.name}: ${b1v4} via 198.18.0.1 proto 84`, () => routeVia(h, b1v4, "198.18.0.1"));
    await until(`${h.name}: ${b1v6} via fd00::1 proto 84`, () => routeVia(h, b1v6, "fd00::1"));
  }
  await until(`h1: ${block3} via 198.18.0.3`, () => routeVia(h1, block3, "198.18.0.3"));
  // h1 does not install its own block from BGP (the dataplane's blackhole, proto 83, is there).
  assert.ok(!(await routes(h1, 4)).some((r) => r.dst === b1v4));
  const blackhole = await runOk("ip", ["-4", "route", "show", b1v4], { netns: h1.netns });
  assert.match(blackhole, /blackhole .* proto 83/);

  // Real packets, both families, h3's workload → h1's.
  for (const [proto, addr] of [
    ["tcp", w1.v4],
    ["icmp", w1.v4],
    ["tcp", w1.v6!],
    ["icmp", w1.v6!],
  ] as const) {
    const r = await until(`${proto} ${addr} from w3`, async () => {
      const x = await w3.probe.probe({ proto, addr, port: 80, timeoutMs: 1000 });
      return x.ok ? x : undefined;
    });
    if (proto === "tcp") assert.equal(r.peer, w1.probe.name);
  }
});

test("a workload added later on h1 with an address borrowed from h3's block is reachable through its /32", async () => {
  const base = block3.split("/")[0]!;
  const borrowed = base.replace(/\d+$/, (d) => String(Number(d) + 40));
  await ipam.assignIP(borrowed, "w1b", { node: "h1", namespace: "x", pod: "w1b" }, "h1");
  const wb = await fab.addWorkload(fab.host("h1"), {
    namespace: "x",
    name: "w1b",
    labels: { app: "w1b" },
    v4: borrowed,
  });
  await fab.waitForStatus(
    fab.host("h1"),
    (x) => (x as Status).bgp?.originated.includes(`${borrowed}/32`) === true,
    `h1 originating ${borrowed}/32`,
    10_000,
  );
  for (const h of [fab.host("h2"), fab.host("h3")])
    await until(`${h.name}: ${borrowed}/32 via 198.18.0.1`, () =>
      routeVia(h, `${borrowed}/32`, "198.18.0.1"),
    );
  const r = await until(`tcp ${borrowed} from w3`, async () => {
    const x = await w3.probe.probe({ proto: "tcp", addr: borrowed, port: 8080, timeoutMs: 1000 });
    return x.ok ? x : undefined;
  });
  assert.equal(r.peer, wb.probe.name);
});

test("mesh off, h2 a route reflector: h1 and h3 peer only with h2, and h3 still routes h1's block via h1", async () => {
  const h2node = await fab.store.get("Node", "h2");
  h2node.metadata.labels = { ...h2node.metadata.labels, rr: "true" };
  const bgp = { ...(h2node.spec.bgp as Record<string, unknown>), routeReflectorClusterID: "224.0.0.1" };
  await fab.store.apply({ ...h2node, spec: { ...h2node.spec, bgp } });
  const peer = (name: string, spec: Record<string, unknown>) =>
    fab.store.apply({ apiVersion: "projectcalico.org/v3", kind: "BGPPeer", metadata: { name }, spec });
  // Graceful restart off on these peers too (the last test stops h1).
  await peer("to-rr", { nodeSelector: "all()", peerSelector: "rr == 'true'", maxRestartTime: "0s" });
  await peer("rr-to-clients", {
    nodeSelector: "rr == 'true'",
    peerSelector: "!has(rr)",
    maxRestartTime: "0s",
  });
  await fab.store.apply({
    apiVersion: "projectcalico.org/v3",
    kind: "BGPConfiguration",
    metadata: { name: "default" },
    spec: { nodeToNodeMeshEnabled: false },
  });
  const only = (want: string[]) => (x: Record<string, unknown>) => {
    const peers = (x as Status).bgp?.peers ?? [];
    return (
      peers
        .map((p) => `${p.address} ${p.type}`)
        .sort()
        .join(",") === want.join(",") && peers.every((p) => p.state === "Established")
    );
  };
  for (const [h, want] of [
    ["h1", ["198.18.0.2 node specific", "fd00::2 node specific"]],
    ["h3", ["198.18.0.2 node specific", "fd00::2 node specific"]],
    [
      "h2",
      [
        "198.18.0.1 node specific",
        "198.18.0.3 node specific",
        "fd00::1 node specific",
        "fd00::3 node specific",
      ],
    ],
  ] as const)
    await fab.waitForStatus(fab.host(h), only([...want]), `${h}: sessions ${want.join(", ")}`, 30_000);
  // h2 originates nothing: what h3 receives from it (h1's block and borrowed /32) is reflected.
  await fab.waitForStatus(
    fab.host("h3"),
    (x) =>
      (
        (x as Status).bgp?.peers.find((p) => p.address === "198.18.0.2") as
          { routesReceived?: number } | undefined
      )?.routesReceived === 2,
    "h3 receiving h1's two IPv4 prefixes from h2",
  );
  // Reflected by h2 with h1's next hop kept (RFC 4456), and traffic goes h3 → h1 directly.
  const b1 = w1.v4.replace(/\.\d+$/, "");
  await until(`h3: h1's block via 198.18.0.1 (reflected)`, async () => {
    const rs = await routes(fab.host("h3"), 4);
    return rs.some((r) => r.dst.startsWith(b1) && r.gateway === "198.18.0.1") ? true : undefined;
  });
  await until(`h1: h3's block via 198.18.0.3 (reflected)`, () =>
    routeVia(fab.host("h1"), block3, "198.18.0.3"),
  );
  const r = await until(`tcp ${w1.v4} from w3 via the reflected route`, async () => {
    const x = await w3.probe.probe({ proto: "tcp", addr: w1.v4, port: 80, timeoutMs: 1000 });
    return x.ok ? x : undefined;
  });
  assert.equal(r.peer, w1.probe.name);
});

test("graceful restart: h3's agent restarted (SIGTERM, GR offered) — h2 keeps h3's routes meanwhile, traffic to h3's workload continues", async () => {
  // h3 alone offers GR 120 s to the reflector (a node-specific peer sorting before "to-rr").
  const t0 = Date.now();
  await fab.store.apply({
    apiVersion: "projectcalico.org/v3",
    kind: "BGPPeer",
    metadata: { name: "h3-to-rr" },
    spec: { node: "h3", peerSelector: "rr == 'true'", maxRestartTime: "120s" },
  });
  const h3 = fab.host("h3");
  const establishedWith = (addr: string) => (x: Record<string, unknown>) =>
    (x as Status).bgp?.peers.find((p) => p.address === addr)?.state === "Established";
  // The changed peer is re-added on h3 (a new session, since after t0) with h1's routes reflected.
  await fab.waitForStatus(
    h3,
    (x) => {
      const p = (x as Status).bgp?.peers.find((q) => q.address === "198.18.0.2") as
        (PeerRow & { since: string; routesReceived: number }) | undefined;
      return p?.state === "Established" && Date.parse(p.since) > t0 && p.routesReceived === 2;
    },
    "h3's session to h2 re-added (with GR) and up with 2 routes",
  );
  await until(`h1: ${block3} via 198.18.0.3`, () => routeVia(fab.host("h1"), block3, "198.18.0.3"));
  await fab.stopAgent(h3);
  assert.equal(h3.agent?.exitCode, 0, h3.agentLog.slice(-3000));
  assert.match(h3.agentLog, /peers keep our routes \(graceful restart\)/);
  await fab.waitForStatus(
    fab.host("h2"),
    (x) => !establishedWith("198.18.0.3")(x),
    "h2 noticing h3's session gone",
  );
  // Stale but kept (and still reflected): h1 and h2 route h3's block, and packets get there.
  for (const h of [fab.host("h2"), fab.host("h1")])
    assert.ok(await routeVia(h, block3, "198.18.0.3"), `${h.name} keeps h3's block during the restart`);
  const during = await w1.probe.probe({ proto: "tcp", addr: w3.v4, port: 80, timeoutMs: 2000 });
  assert.ok(during.ok, `w1 → w3 while h3's agent is down: ${during.error ?? ""}`);
  assert.equal(during.peer, w3.probe.name);
  // h3 kept its learned routes too (we did not clear them on the way out).
  assert.ok(
    (await routes(h3, 4)).some((r) => r.gateway === "198.18.0.1"),
    "h3's kernel keeps h1's routes while its agent is down",
  );
  fab.startAgent(h3);
  await fab.waitForStatus(h3, establishedWith("198.18.0.2"), "h3's session to h2 back", 30_000);
  await fab.waitForStatus(fab.host("h2"), establishedWith("198.18.0.3"), "h2's session to h3 back", 30_000);
  await until(`h1: ${block3} via 198.18.0.3 after the restart`, () =>
    routeVia(fab.host("h1"), block3, "198.18.0.3"),
  );
});

test("stopping h1's agent (no graceful restart) removes its routes from the other hosts (reflected ones too); h3's stay", async () => {
  const h1 = fab.host("h1");
  await fab.stopAgent(h1);
  assert.equal(h1.agent?.exitCode, 0, h1.agentLog.slice(-3000));
  for (const h of [fab.host("h2"), fab.host("h3")]) {
    await until(`${h.name}: no route via 198.18.0.1 left`, async () => {
      const all = [...(await routes(h, 4)), ...(await routes(h, 6))];
      return all.some((r) => r.gateway === "198.18.0.1" || r.gateway === "fd00::1") ? undefined : true;
    });
  }
  assert.ok(await routeVia(fab.host("h2"), block3, "198.18.0.3"), "h3's block still routed on h2");
  // h2's status names why the session to h1 went down.
  const s = (await fab.waitForStatus(
    fab.host("h2"),
    (x) => (x as Status).bgp?.peers.find((p) => p.address === "198.18.0.1")?.state !== "Established",
    "h2's session to h1 down",
  )) as Status;
  const row = s.bgp!.peers.find((p) => p.address === "198.18.0.1") as PeerRow & {
    info?: string;
    lastDown?: string;
  };
  assert.match(row.lastDown ?? "", /Cease/);
  const r = await cli(["node", "status", "--status-file", h1.statusFile]);
  assert.equal(r.code, 1);
  assert.match(r.out, /Calico process is not running\./);
});

test("calico-node with --netns runs its speaker in a child process inside the namespace: mesh up, routes in, node status", async () => {
  const two = new MultiHostFabric({ hosts: 2, tag: "ctsbn" });
  try {
    await two.start();
    await two.store.apply({
      apiVersion: "projectcalico.org/v3",
      kind: "IPPool",
      metadata: { name: "pool4" },
      spec: { cidr: "198.19.0.0/16", blockSize: 26 },
    });
    for (const h of two.hosts) two.startAgent(h, [], {}, { viaNetnsFlag: true });
    const upWith = (n: number) => (x: Record<string, unknown>) => {
      const peers = (x as Status).bgp?.peers ?? [];
      return peers.length === n && peers.every((p) => p.state === "Established");
    };
    for (const h of two.hosts)
      await two.waitForStatus(h, upWith(2), "2 Established sessions (v4, v6)", 40_000);
    const a = await new IPAM(two.datastore).autoAssign({
      node: "h1",
      handleID: "x",
      num4: 1,
      attrs: { node: "h1" },
    });
    assert.equal(a.ipv4.length, 1);
    const s1 = (await two.waitForStatus(
      two.host("h1"),
      (x) => ((x as Status).bgp?.originated.length ?? 0) === 1,
      "h1 originating its block",
    )) as Status;
    await until(`h2: ${s1.bgp!.originated[0]} via 198.18.0.1`, () =>
      routeVia(two.host("h2"), s1.bgp!.originated[0]!, "198.18.0.1"),
    );
    // The agents themselves run in this namespace; their speakers' sockets are in the hosts'.
    const listening = await runOk("ss", ["-Htln", "sport", "= :179"], { netns: two.host("h1").netns });
    assert.match(listening, /:179/);
    const r = await cli(["node", "status", "--status-file", two.host("h2").statusFile]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /\| 198\.18\.0\.1 +\| node-to-node mesh \| up +\|/);
  } finally {
    await two.stop();
  }
});
