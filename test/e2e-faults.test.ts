/**
 * End-to-end: faults on a dual-stack 3-host lab with a real etcd (issue 8, "End-to-end suite",
 * Faults); traffic is probed and routes are checked over IPv4 and IPv6.
 * The lab's demo: frontend on h1, backend and client on h2, db on h3; `backend` accepts TCP 80
 * only from `frontend`, `db` only from `backend`, everything else is allowed — so every host
 * pair carries allowed traffic and denied pairs cross hosts too. The mesh's graceful-restart
 * time (BGPConfiguration nodeMeshMaxRestartTime) is set to RESTART_S for the whole file.
 *
 * 1. calico-node on h2 is SIGKILLed and started again as the lab started it. Throughout — agent
 *    down and agent restarting — every allowed pair answers and every denied pair stays
 *    denied (probes every 200 ms), every host keeps its routes to every other host's block
 *    (h1 and h3 keep h2's: graceful restart; h2 keeps theirs), h2's nft table and policy
 *    chains never disappear, and a frontend→backend TCP connection opened before the kill
 *    keeps passing data. The new agent converges (ready, current revision, sessions
 *    Established) and its first full apply rewrites (almost) nothing.
 * 2. etcd is stopped for 60 s: enforcement, routes and nft tables are unchanged throughout,
 *    no agent exits; once etcd is back a policy written then is applied by every agent and
 *    enforced.
 * 3. Host h3 dies (its processes SIGKILLed, its namespace deleted): h1 and h2 keep its routes
 *    until its restart time is up and remove them then (not before, and within a margin),
 *    while traffic between h1 and h2 and their session are untouched.
 *
 * Samplers run side by side during each fault; each is a bounded loop recording problems with
 * the time they were seen, asserted empty afterwards (with the number of samples taken, so a
 * sampler that never ran cannot pass). One lab for the file, removed in after() whatever happened.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test, type TestContext } from "node:test";
import { familyBits, formatIP, parseIP } from "../src/api/net.js";
import { run } from "../src/dataplane/netns.js";
import { readAgentStatus } from "../src/lab/agent-status.js";
import { DEMO_NAMESPACE, demoExpect } from "../src/lab/lab-demo.js";
import { labDatastore } from "../src/lab/lab-datastore.js";
import {
  labKillAgent,
  labKillHost,
  labRestartAgent,
  labStartDatastore,
  labStopDatastore,
} from "../src/lab/lab-faults.js";
import { ETCD_BIN, labDown, labUp, waitConverged } from "../src/lab/lab.js";
import { ProbeClient } from "../src/lab/lab-probe.js";
import { isOurs } from "../src/lab/lab-procs.js";
import {
  labLocation,
  requireLabState,
  type LabHost,
  type LabLocation,
  type LabState,
} from "../src/lab/lab-state.js";

const isRoot = process.getuid?.() === 0;
const skip =
  process.env.CI !== undefined
    ? false
    : !isRoot
      ? "needs root (network namespaces, nftables)"
      : !existsSync(ETCD_BIN)
        ? `needs etcd (${ETCD_BIN})`
        : false;

/**
 * The mesh's graceful-restart time for this file, seconds: long enough for a SIGKILLed agent to
 * restart and re-establish its sessions on a loaded 2-core machine (kill to Established took
 * 7-10 s here), short enough to watch a dead host's routes expire.
 */
const RESTART_S = 20;
const BGP_ROUTE_PROTO = "84";

/** Made in before(), so a skipped run leaves nothing behind. */
let root: string | undefined;
let loc: LabLocation;
let state: LabState;
/** Probe clients by workload name (each workload's probe agent). */
const clients = new Map<string, ProbeClient>();
/** Extra allowed pairs (policy changes made by the tests) on top of the demo policy. */
const extraAllowed = new Set<string>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const expectAllowed = (from: string, to: string): boolean =>
  extraAllowed.has(`${from} ${to}`) || demoExpect(from, to) === true;

const host = (name: string): LabHost => state.hosts.find((h) => h.name === name)!;
const wl = (name: string) => state.workloads.find((w) => w.name === name)!;

/** The IPAM block (the lab pools' blockSize: /26, /122) holding a workload's address. */
function blockOf(ip: string): string {
  const a = parseIP(ip)!;
  const prefix = a.family === 4 ? 26 : 122;
  const host = (1n << BigInt(familyBits(a.family) - prefix)) - 1n;
  return `${formatIP(a.family, a.value & ~host)}/${prefix}`;
}

const FAMILIES = [4, 6] as const;
type Family = (typeof FAMILIES)[number];
const addrOf = (w: { ipv4: string[]; ipv6: string[] }, f: Family): string => (f === 4 ? w.ipv4 : w.ipv6)[0]!;
const hostAddr = (h: LabHost, f: Family): string => (f === 4 ? h.v4 : h.v6!);

function ds(req: Parameters<typeof labDatastore>[2]) {
  return labDatastore(state.datastore.url, state.fabricNetns, req);
}

/** Wait until every agent (all hosts alive) is ready, applied `revision`, all sessions up. */
async function converged(revision?: number, timeoutMs = 60_000): Promise<void> {
  state = requireLabState(loc);
  const rev = revision ?? (await ds({ op: "revision" })).revision;
  const waiting = await waitConverged(state, rev, timeoutMs);
  assert.deepEqual(waiting, [], `the lab converges within ${timeoutMs / 1000} s`);
}

interface PeerRow {
  address: string;
  state: string;
  since: string;
}

/** `h`'s view of its session with `peer` (its status file). */
function session(h: string, peer: string): PeerRow | undefined {
  const st = readAgentStatus(host(h).statusFile) as { bgp?: { peers?: PeerRow[] } } | undefined;
  return st?.bgp?.peers?.find((p) => p.address === peer);
}

/** Until every host in `of` reports its session with `peer` as not Established (bounded). */
async function waitSessionsDown(peer: string, of: readonly string[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = of.filter((h) => session(h, peer)?.state === "Established");
    if (up.length === 0) return;
    assert.ok(Date.now() < deadline, `${up.join(", ")} still report the session with ${peer} Established`);
    await sleep(100);
  }
}

/** Agent log from byte `from`: its JSON lines with message `msg`. */
function logLines(h: LabHost, from: number, msg: string): Record<string, unknown>[] {
  const text = readFileSync(h.log).subarray(from).toString("utf8");
  const out: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{") || !line.includes(msg)) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.msg === msg || o.message === msg) out.push(o);
    } catch {
      // a partial line
    }
  }
  return out;
}

const logSize = (h: LabHost): number => statSync(h.log).size;

// ---- checks, each returning the problems it saw ----

interface Pair {
  from: string;
  to: string;
}

const pairsAmong = (names: readonly string[]): Pair[] =>
  names.flatMap((from) => names.filter((to) => to !== from).map((to) => ({ from, to })));

/** The pairs among `names` the policy allows (`allowed`) or denies. */
const pairsThat = (allowed: boolean, names: readonly string[]): Pair[] =>
  pairsAmong(names).filter((p) => expectAllowed(p.from, p.to) === allowed);

/** One TCP 80 probe per pair and family, all at once; an allowed pair must be answered by its target. */
async function trafficProblems(pairs: readonly Pair[]): Promise<string[]> {
  const out = await Promise.all(
    pairs
      .flatMap(({ from, to }) => FAMILIES.map((f) => ({ from, to, f })))
      .map(async ({ from, to, f }) => {
        const allowed = expectAllowed(from, to);
        const r = await clients.get(from)!.probe({
          proto: "tcp",
          addr: addrOf(wl(to), f),
          port: 80,
          // Allowed: long enough for a loaded machine (a lost SYN would be re-sent after 1 s);
          // denied: a drop shows as a timeout, so keep it short.
          timeoutMs: allowed ? 2500 : 700,
        });
        if (allowed && !r.ok) return `${from} → ${to} (IPv${f}) is allowed but failed (${r.error})`;
        if (allowed && r.peer !== to) return `${from} → ${to} (IPv${f}) was answered by ${r.peer}`;
        if (!allowed && r.ok) return `${from} → ${to} (IPv${f}) is denied but got through (${r.peer})`;
        return undefined;
      }),
  );
  return out.filter((p): p is string => p !== undefined);
}

interface Route {
  dst: string;
  gateway?: string;
  protocol?: string;
}

/** `h`'s BGP routes, IPv4 and IPv6. */
async function routesOf(h: LabHost): Promise<Route[] | string> {
  const out: Route[] = [];
  for (const f of FAMILIES) {
    const r = await run("ip", ["-j", `-${f}`, "route", "show", "proto", BGP_ROUTE_PROTO], { netns: h.netns });
    if (r.code !== 0) return `ip -${f} route on ${h.name} failed: ${r.stderr.trim()}`;
    out.push(...(JSON.parse(r.stdout) as Route[]));
  }
  return out;
}

/** Blocks (both families) of workloads on other live hosts that `h` must route via their host. */
function wantedRoutes(h: LabHost, live: readonly string[]): { block: string; via: string }[] {
  const want = new Map<string, string>();
  for (const w of state.workloads)
    if (w.host !== h.name && live.includes(w.host))
      for (const f of FAMILIES) want.set(blockOf(addrOf(w, f)), hostAddr(host(w.host), f));
  return [...want].map(([block, via]) => ({ block, via }));
}

/** Every live host has a BGP route to every other live host's blocks, via that host. */
async function routeProblems(live: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  await Promise.all(
    live.map(async (name) => {
      const h = host(name);
      const routes = await routesOf(h);
      if (typeof routes === "string") return void out.push(routes);
      for (const want of wantedRoutes(h, live))
        if (!routes.some((r) => r.dst === want.block && r.gateway === want.via))
          out.push(`${h.name} has no route to ${want.block} via ${want.via}`);
    }),
  );
  return out;
}

/** The policy chains of the demo policies in `h`'s table (read before a fault). */
async function policyChains(h: LabHost): Promise<string[]> {
  const r = await run("nft", ["list", "table", "inet", "calico"], { netns: h.netns });
  assert.equal(r.code, 0, `nft table inet calico on ${h.name}: ${r.stderr}`);
  return [
    ...r.stdout.matchAll(/chain (filter-cali-p[io]-\S*(backend-from-frontend|db-from-backend)\S*) /g),
  ].map((m) => m[1]!);
}

/** `h`'s table and the given chains are there. */
async function nftProblems(h: LabHost, chains: readonly string[]): Promise<string[]> {
  const r = await run("nft", ["list", "table", "inet", "calico"], { netns: h.netns });
  if (r.code !== 0) return [`${h.name}: table inet calico missing (${r.stderr.trim().split("\n")[0]})`];
  return chains.filter((c) => !r.stdout.includes(`chain ${c} `)).map((c) => `${h.name}: chain ${c} missing`);
}

function agentProblems(hosts: readonly string[]): string[] {
  return hosts
    .map((n) => host(n))
    .filter((h) => h.pid === undefined || !isOurs({ pid: h.pid, role: "", marker: state.stateDir }))
    .map((h) => `calico-node on ${h.name} (pid ${h.pid}) is not running`);
}

// ---- samplers: bounded loops collecting problems while a fault lasts ----

interface Sampler {
  stop(): Promise<{ samples: number; problems: string[] }>;
}

/** Samplers not stopped yet: afterEach stops them when a test failed half-way. */
const running = new Set<Sampler>();

/** Run `check` every `everyMs` (after each completes) until stopped, at most `maxMs`. */
function sample(what: string, everyMs: number, check: () => Promise<string[]>, maxMs = 150_000): Sampler {
  const t0 = Date.now();
  const problems: string[] = [];
  let samples = 0;
  let active = true;
  const loop = (async () => {
    while (active && Date.now() - t0 < maxMs) {
      const p = await check().catch((e: unknown) => [`${what} check failed: ${String(e)}`]);
      samples++;
      const at = ((Date.now() - t0) / 1000).toFixed(1);
      for (const x of p) problems.push(`[${what} +${at} s] ${x}`);
      await sleep(everyMs);
    }
  })();
  const sampler: Sampler = {
    async stop() {
      active = false;
      running.delete(sampler);
      await loop;
      return { samples, problems };
    },
  };
  running.add(sampler);
  return sampler;
}

/** Stop the samplers and assert none saw a problem and each took at least `minSamples`. */
async function assertSamplers(
  t: TestContext,
  samplers: Record<string, Sampler>,
  minSamples: Record<string, number>,
): Promise<void> {
  const problems: string[] = [];
  const counts: Record<string, number> = {};
  let total = 0;
  for (const [name, s] of Object.entries(samplers)) {
    const r = await s.stop();
    counts[name] = r.samples;
    total += r.problems.length;
    // The first few of each sampler are enough to see what happened.
    problems.push(...r.problems.slice(0, 8));
    if (r.problems.length > 8) problems.push(`[${name}] … ${r.problems.length - 8} more`);
    const min = minSamples[name] ?? 1;
    if (r.samples < min) problems.push(`sampler ${name} took ${r.samples} samples, fewer than ${min}`);
  }
  t.diagnostic(`samples: ${JSON.stringify(counts)}`);
  assert.deepEqual(problems, [], `${total} problems during the fault`);
}

/** Until every live host routes to every other's blocks (bounded: sessions just came up). */
async function waitRoutes(live: readonly string[], when: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  let problems = await routeProblems(live);
  while (problems.length > 0 && Date.now() - t0 < timeoutMs) {
    await sleep(200);
    problems = await routeProblems(live);
  }
  assert.deepEqual(problems, [], `routes ${when} (waited ${Date.now() - t0} ms)`);
}

async function assertTraffic(pairs: readonly Pair[], when: string, settleMs = 10_000): Promise<void> {
  // Before a fault, allowed pairs may need a moment (a fabric still converging): re-probe.
  const deadline = Date.now() + settleMs;
  let problems = await trafficProblems(pairs);
  while (problems.length > 0 && Date.now() < deadline) {
    await sleep(300);
    problems = await trafficProblems(pairs);
  }
  assert.deepEqual(problems, [], `connectivity ${when}`);
}

const ALL = ["frontend", "backend", "db", "client"];

describe("faults on a 3-host lab with etcd: agent kill, datastore outage, host death", { skip }, () => {
  before(async () => {
    root = mkdtempSync(join(tmpdir(), "cts-flt-"));
    loc = labLocation(`flt${process.pid.toString(36)}`.slice(0, 10), join(root, "lab"));
    const up = await labUp(loc, { nodes: 3, ipv6: true, datastore: "etcd", demo: true, apiserver: false });
    state = up.state;
    assert.deepEqual(up.notConverged, [], "lab converged");
    // A short graceful-restart time for the mesh. Changing it restarts every speaker (it is
    // what each offers in its OPEN): wait until all three did and their sessions are back.
    const from = new Map(state.hosts.map((h) => [h.name, logSize(h)]));
    const { revision } = await ds({
      op: "apply",
      resources: [
        {
          apiVersion: "projectcalico.org/v3",
          kind: "BGPConfiguration",
          metadata: { name: "default" },
          spec: {
            nodeToNodeMeshEnabled: true,
            asNumber: 64512,
            logSeverityScreen: "Info",
            nodeMeshMaxRestartTime: `${RESTART_S}s`,
          },
        },
      ],
    });
    const deadline = Date.now() + 30_000;
    while (
      state.hosts.some(
        (h) =>
          logLines(h, from.get(h.name)!, "BGP speaker settings changed: restarting the speaker").length === 0,
      )
    ) {
      assert.ok(Date.now() < deadline, "every speaker restarted with the new graceful-restart time");
      await sleep(100);
    }
    await converged(revision);
    for (const w of state.workloads) clients.set(w.name, await ProbeClient.connect(w.socket));
    await waitRoutes(["h1", "h2", "h3"], "before the faults");
    await assertTraffic(pairsAmong(ALL), "before the faults", 20_000);
  });

  afterEach(async () => {
    await Promise.all([...running].map((s) => s.stop()));
  });

  after(async () => {
    for (const c of clients.values()) c.close();
    if (root === undefined) return;
    await labDown(loc).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  test("calico-node SIGKILLed and restarted: traffic, routes and tables survive; no flush", async (t) => {
    const victim = host("h2");
    const chains = await policyChains(victim);
    assert.ok(chains.length >= 1, `the demo policy chains are on ${victim.name}: ${chains.join(", ")}`);
    const frontend = clients.get("frontend")!;
    const hold = 1;
    const opened = await frontend.probe({
      proto: "hold",
      op: "open",
      hold,
      addr: wl("backend").ipv4[0]!,
      port: 80,
      timeoutMs: 2000,
    });
    assert.equal(opened.ok, true, `frontend → backend held connection opened (${opened.error})`);
    const logFrom = logSize(victim);
    const oldPid = victim.pid;

    const samplers = {
      // Allowed pairs answer at once; denied ones cost a timeout each round.
      allowed: sample("allowed", 200, () => trafficProblems(pairsThat(true, ALL))),
      denied: sample("denied", 200, () => trafficProblems(pairsThat(false, ALL))),
      routes: sample("routes", 200, () => routeProblems(["h1", "h2", "h3"])),
      nft: sample("nft", 100, () => nftProblems(victim, chains)),
      held: sample("held", 200, async () => {
        const r = await frontend.probe({ proto: "hold", op: "check", hold, addr: "", timeoutMs: 2000 });
        return r.ok ? [] : [`held frontend → backend stalled (${r.error})`];
      }),
    };
    await labKillAgent(loc, victim.name);
    state = requireLabState(loc);
    assert.ok(!isOurs({ pid: oldPid!, role: "", marker: state.stateDir }), "the old calico-node is gone");
    // The peers saw the sessions drop (no NOTIFICATION): what keeps the traffic flowing from
    // now on is graceful restart — the routes they hold as stale.
    await waitSessionsDown(victim.v4, ["h1", "h3"]);
    // Outage: a few seconds with the agent down.
    await sleep(4000);
    const t0 = Date.now();
    await labRestartAgent(loc, victim.name);
    await converged();
    t.diagnostic(`${victim.name}'s calico-node converged ${Date.now() - t0} ms after its restart`);
    await sleep(1000);
    await assertSamplers(t, samplers, { allowed: 15, denied: 5, routes: 10, nft: 20, held: 10 });

    const fulls = logLines(host(victim.name), logFrom, "Applied (full)");
    assert.ok(fulls.length >= 1, "the new agent logged its first full apply");
    const first = fulls[0]!;
    t.diagnostic(`first full apply after the restart: ${JSON.stringify(first)}`);
    assert.ok(
      typeof first.nftOps === "number" && first.nftOps <= 2,
      `the first full apply after the restart rewrites (almost) nothing: nftOps=${String(first.nftOps)}`,
    );
    assert.equal(first.routesChanged, 0, "no route rewritten by the restarted agent");
    const after = await frontend.probe({ proto: "hold", op: "check", hold, addr: "", timeoutMs: 2000 });
    assert.equal(after.ok, true, "the held connection still passes data after the restart");
    await frontend.probe({ proto: "hold", op: "close", hold, addr: "" });
    assert.deepEqual(await routeProblems(["h1", "h2", "h3"]), [], "routes after the restart");
  });

  test("etcd stopped for 60 s: enforcement unchanged, agents live; a later policy converges", async (t) => {
    const pids = state.hosts.map((h) => h.pid);
    const chains = new Map(
      await Promise.all(state.hosts.map(async (h) => [h.name, await policyChains(h)] as const)),
    );
    await labStopDatastore(loc);
    const t0 = Date.now();
    // The outage is real: nothing listens on etcd's client port any more.
    const ss = await run("ss", ["-Htln", "sport", "=", ":2379"], { netns: state.fabricNetns });
    assert.equal(ss.stdout.trim(), "", `nothing listens on :2379 in the fabric namespace:\n${ss.stdout}`);
    const samplers = {
      // Allowed pairs answer at once; denied ones cost a timeout each round.
      allowed: sample("allowed", 200, () => trafficProblems(pairsThat(true, ALL))),
      denied: sample("denied", 200, () => trafficProblems(pairsThat(false, ALL))),
      routes: sample("routes", 500, () => routeProblems(["h1", "h2", "h3"])),
      nft: sample("nft", 1000, async () =>
        (await Promise.all(state.hosts.map((h) => nftProblems(h, chains.get(h.name)!)))).flat(),
      ),
      agents: sample("agents", 500, () => Promise.resolve(agentProblems(["h1", "h2", "h3"]))),
    };
    await sleep(60_000 - (Date.now() - t0));
    await assertSamplers(t, samplers, { allowed: 100, denied: 40, routes: 30, nft: 20, agents: 60 });
    state = requireLabState(loc);
    assert.deepEqual(
      state.hosts.map((h) => h.pid),
      pids,
      "the same calico-node processes throughout",
    );

    await labStartDatastore(loc);
    t.diagnostic(`etcd back after ${Date.now() - t0} ms`);
    // A policy change written once etcd is back: db now also accepts client.
    const { revision } = await ds({
      op: "apply",
      resources: [
        {
          apiVersion: "projectcalico.org/v3",
          kind: "NetworkPolicy",
          metadata: { name: "db-from-client", namespace: DEMO_NAMESPACE },
          spec: {
            selector: "app == 'db'",
            types: ["Ingress"],
            ingress: [
              {
                action: "Allow",
                protocol: "TCP",
                source: { selector: "app == 'client'" },
                destination: { ports: [80] },
              },
            ],
          },
        },
      ],
    });
    const t1 = Date.now();
    await converged(revision);
    t.diagnostic(`every agent applied revision ${revision} ${Date.now() - t1} ms after the write`);
    extraAllowed.add("client db");
    await assertTraffic(pairsAmong(ALL), "after the policy change", 0);
    assert.deepEqual(await routeProblems(["h1", "h2", "h3"]), [], "routes after the outage");
  });

  test("host h3 dies: its routes go after the restart time, not before; h1–h2 unaffected", async (t) => {
    const dead = host("h3");
    const live = ["h1", "h2"];
    const survivors = state.workloads.filter((w) => w.host !== dead.name).map((w) => w.name);
    const deadBlocks = [
      ...new Set(
        state.workloads
          .filter((w) => w.host === dead.name)
          .flatMap((w) => FAMILIES.map((f) => blockOf(addrOf(w, f)))),
      ),
    ];
    assert.ok(
      deadBlocks.some((b) => b.includes(":")),
      "h3 has IPv6 blocks too",
    );
    assert.ok(deadBlocks.length > 0 && survivors.length >= 2, "workloads on h3 and on the others");
    const before12 = session("h1", host("h2").v4);
    assert.equal(before12?.state, "Established", "h1–h2 session up before");
    const before12v6 = session("h1", host("h2").v6!);
    assert.equal(before12v6?.state, "Established", "h1–h2 IPv6 session up before");

    /** Which live hosts still route to which of h3's blocks. */
    const stillRouted = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const n of live) {
        const routes = await routesOf(host(n));
        if (typeof routes === "string") assert.fail(routes);
        for (const b of deadBlocks)
          if (routes.some((r) => r.dst === b && r.gateway === (b.includes(":") ? dead.v6 : dead.v4)))
            out.push(`${n} → ${b}`);
      }
      return out;
    };
    const all = live.flatMap((n) => deadBlocks.map((b) => `${n} → ${b}`));
    assert.deepEqual(await stillRouted(), all, "h1 and h2 route to h3's blocks before");

    const samplers = {
      // Allowed pairs answer at once; denied ones cost a timeout each round.
      allowed: sample("allowed", 200, () => trafficProblems(pairsThat(true, survivors))),
      denied: sample("denied", 200, () => trafficProblems(pairsThat(false, survivors))),
      routes: sample("routes", 500, () => routeProblems(live)),
    };
    const t0 = Date.now();
    await labKillHost(loc, dead.name);
    state = requireLabState(loc);
    // Shortly after (well inside the restart time): still routed, stale.
    await sleep(1500);
    const soon = Date.now() - t0;
    if (soon < (RESTART_S - 2) * 1000)
      assert.deepEqual(await stillRouted(), all, `h3's routes are kept ${soon} ms after it died`);
    else t.diagnostic(`the machine is slow: ${soon} ms passed, the "still routed" check is skipped`);
    // Then gone: when did each disappear?
    const goneAt = new Map<string, number>();
    const limit = (RESTART_S + 20) * 1000;
    while (goneAt.size < all.length && Date.now() - t0 < limit) {
      const left = await stillRouted();
      for (const r of all) if (!left.includes(r) && !goneAt.has(r)) goneAt.set(r, Date.now() - t0);
      await sleep(200);
    }
    t.diagnostic(`h3's routes gone after (ms): ${JSON.stringify(Object.fromEntries(goneAt))}`);
    assert.deepEqual(
      all.filter((r) => !goneAt.has(r)),
      [],
      `h3's routes are withdrawn within the restart time (${RESTART_S} s) + 20 s`,
    );
    // The stale timer starts when the session drops, which is after t0: nothing may go earlier
    // than RESTART_S after t0 (0.5 s for timer rounding).
    for (const [r, ms] of goneAt)
      assert.ok(
        ms >= RESTART_S * 1000 - 500,
        `${r} went after ${ms} ms, before the restart time ${RESTART_S} s`,
      );
    await sleep(1000);
    await assertSamplers(t, samplers, { allowed: 20, denied: 8, routes: 10 });
    const after12 = session("h1", host("h2").v4);
    assert.equal(after12?.state, "Established", "h1–h2 session still up");
    assert.equal(after12?.since, before12?.since, "h1–h2 session never flapped");
    const after12v6 = session("h1", host("h2").v6!);
    assert.equal(after12v6?.state, "Established", "h1–h2 IPv6 session still up");
    assert.equal(after12v6?.since, before12v6?.since, "h1–h2 IPv6 session never flapped");
    assert.deepEqual(agentProblems(live), [], "h1's and h2's agents still run");
  });
});
