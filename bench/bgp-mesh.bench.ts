/**
 * BGP convergence in a 20-speaker full iBGP mesh (issue 6): 20 of our speakers, each a child
 * process in its own namespace on one bridge (test/helpers/bgp-lab.ts; 190 sessions, AS 64512,
 * kernel programming on), then K route changes — originate a /26 of 198.19.0.0/16 on a
 * random speaker, later withdraw it — and per change the time from the command to the route
 * being present (or gone) in EVERY other namespace's kernel table, watched with
 * `ip -n NS monitor route` (timestamps taken in this process). p50/p99; target p99 ≤ 100 ms.
 *
 * A warm-up originate/withdraw comes first (the first change runs the receive path for the first
 * time in 19 processes at once) and is reported on its own row.
 *
 * Baseline, same run, same namespaces and the same change sequence: 20 BIRD 2 instances in a
 * full mesh (kernel protocol exporting BGP routes; each change is `birdc enable`/`disable` of
 * a static protocol holding the /26 on the chosen node). And the floor: a direct
 * `ip route add`/`del` run in all 19 namespaces at once.
 *
 *   npx tsc -p . && node dist/bench/bgp-mesh.bench.js        (root, bird2)
 *   BENCH_MESH_SPEAKERS=10 BENCH_MESH_CHANGES=30 …
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { BirdProcess } from "../test/helpers/bgp-bird.js";
import { BridgeLab } from "../test/helpers/bgp-lab.js";
import { sleep, SpeakerProcess } from "../test/helpers/speaker-process.js";
import {
  machineInfo,
  percentile,
  seededRandom,
  writeReport,
  type BenchReport,
  type BenchRow,
} from "./report.js";

const N = Number(process.env.BENCH_MESH_SPEAKERS ?? 20);
const K = Number(process.env.BENCH_MESH_CHANGES ?? 60); // originate + withdraw pairs: K/2 prefixes
const CHANGE_TIMEOUT_MS = 10_000;
const SETUP_TIMEOUT_MS = 120_000;
const execFileP = promisify(execFile);

interface Change {
  node: number;
  prefix: string;
  add: boolean;
}

/** The same sequence for every contender: prefix j on a random node, added, later removed. */
function plan(): Change[] {
  const rnd = seededRandom(6);
  // First a warm-up pair on node 0 (the code paths' first run in 19 processes at once), reported
  // apart from the measured changes.
  const out: Change[] = [
    { node: 0, prefix: "198.19.9.0/26", add: true },
    { node: 0, prefix: "198.19.9.0/26", add: false },
  ];
  for (let j = 0; j < K / 2; j++) {
    const node = Math.floor(rnd() * N);
    const prefix = `198.19.${10 + (j >> 2)}.${(j & 3) * 64}/26`;
    out.push({ node, prefix, add: true }, { node, prefix, add: false });
  }
  return out;
}

/** `ip monitor route` in every namespace; resolves waits for a prefix seen added/deleted. */
class RouteWatch {
  readonly procs: ChildProcess[] = [];
  /** "ns|prefix|add" → time seen (performance.now()). */
  readonly seen = new Map<string, number>();

  constructor(readonly lab: BridgeLab) {
    for (const n of lab.nodes) {
      const p = spawn("ip", ["-n", n.ns, "-4", "monitor", "route"], { stdio: ["ignore", "pipe", "ignore"] });
      this.procs.push(p);
      createInterface({ input: p.stdout }).on("line", (l) => {
        const m = /^(Deleted )?(198\.19\.\d+\.\d+\/26) /.exec(l);
        if (m) this.seen.set(`${n.ns}|${m[2]}|${m[1] ? "del" : "add"}`, performance.now());
      });
    }
  }

  /** Milliseconds from `t0` until every namespace but `origin`'s saw the change. */
  async waitAll(c: Change, t0: number): Promise<number> {
    const keys = this.lab.nodes
      .filter((_, i) => i !== c.node)
      .map((n) => `${n.ns}|${c.prefix}|${c.add ? "add" : "del"}`);
    const end = Date.now() + CHANGE_TIMEOUT_MS;
    while (!keys.every((k) => this.seen.has(k))) {
      if (Date.now() > end)
        throw new Error(
          `${c.add ? "add" : "del"} ${c.prefix}: ${keys.filter((k) => !this.seen.has(k)).length} namespaces never saw it`,
        );
      await sleep(1);
    }
    const last = Math.max(...keys.map((k) => this.seen.get(k)!));
    for (const k of keys) this.seen.delete(k);
    return last - t0;
  }

  stop(): void {
    for (const p of this.procs) p.kill("SIGTERM");
  }
}

async function runChanges(
  watch: RouteWatch,
  changes: Change[],
  apply: (c: Change) => Promise<void>,
): Promise<number[]> {
  const out: number[] = [];
  for (const c of changes) {
    const t0 = performance.now();
    await apply(c);
    out.push(await watch.waitAll(c, t0));
    await sleep(30);
  }
  return out;
}

/** Ours: time from all speakers ready to all session ends Established, and ends that left
 * Established during it. */
let meshUpMs = NaN;
let flapped = NaN;

async function ours(lab: BridgeLab, watch: RouteWatch, changes: Change[]): Promise<number[]> {
  const speakers: SpeakerProcess[] = [];
  try {
    for (const n of lab.nodes)
      speakers.push(
        new SpeakerProcess({
          ns: n.ns,
          routerId: n.v4,
          // Both sides of every pair active (each connects to the other), so all 190
          // sessions go through connection collision (RFC 4271 §6.8).
          peers: lab.nodes.filter((m) => m !== n).map((m) => ({ address: m.v4, asn: 64512 })),
          speaker: { holdTime: 30 },
        }),
      );
    await Promise.all(speakers.map((s) => s.waitReady(SETUP_TIMEOUT_MS)));
    const up0 = Date.now();
    const end = up0 + SETUP_TIMEOUT_MS;
    for (;;) {
      const states = await Promise.all(speakers.map((s) => s.send({ cmd: "status" })));
      const est = states.reduce(
        (a, r) => a + (r.status?.peers.filter((p) => p.state === "Established").length ?? 0),
        0,
      );
      if (est === N * (N - 1)) {
        meshUpMs = Date.now() - up0;
        // A session end that left Established on the way up (e.g. a collision gone wrong).
        flapped = states.reduce((a, r) => a + (r.status?.peers.filter((p) => p.lastDown).length ?? 0), 0);
        break;
      }
      if (Date.now() > end) {
        const stuck = states.flatMap((r, i) =>
          (r.status?.peers ?? [])
            .filter((p) => p.state !== "Established")
            .map(
              (p) =>
                `${lab.node(i).v4}→${p.address} ${p.state} (${p.info ?? ""}; last down: ${p.lastDown ?? ""})`,
            ),
        );
        throw new Error(`mesh: ${est} of ${N * (N - 1)} session ends Established:\n${stuck.join("\n")}`);
      }
      await sleep(500);
    }
    // Replies come after the speaker's own kernel is settled; the clock stops in the others'.
    return await runChanges(watch, changes, async (c) => {
      await speakers[c.node]!.send({ cmd: c.add ? "originate" : "withdraw", prefix: c.prefix });
    });
  } finally {
    await Promise.all(speakers.map((s) => s.kill()));
  }
}

async function birdMesh(lab: BridgeLab, watch: RouteWatch, changes: Change[]): Promise<number[]> {
  const birds: BirdProcess[] = [];
  const statics = (i: number) =>
    changes
      .map((c, k) =>
        c.add && c.node === i
          ? `protocol static s${k} { disabled; ipv4; route ${c.prefix} blackhole; }\n`
          : "",
      )
      .join("");
  try {
    for (const [i, n] of lab.nodes.entries()) {
      const peers = lab.nodes
        .filter((m) => m !== n)
        .map(
          (m, j) =>
            `protocol bgp n${j} { local ${n.v4} as 64512; neighbor ${m.v4} as 64512; direct; hold time 30;
  connect retry time 1; connect delay time 1; error wait time 1, 4;
  ipv4 { import all; export where source = RTS_STATIC; }; }\n`,
        )
        .join("");
      const b = new BirdProcess(
        n.ns,
        `router id ${n.v4};\nprotocol device { scan time 10; }\n` +
          `protocol kernel k4 { scan time 10; ipv4 { import none; export where source = RTS_BGP; }; }\n` +
          statics(i) +
          peers,
      );
      birds.push(b);
      b.start();
    }
    const end = Date.now() + SETUP_TIMEOUT_MS;
    for (;;) {
      await sleep(500);
      const est = birds.reduce(
        (a, b) => a + (b.birdc("show", "protocols").match(/\bEstablished\b/g)?.length ?? 0),
        0,
      );
      if (est === N * (N - 1)) break;
      if (Date.now() > end) throw new Error(`BIRD mesh: ${est} of ${N * (N - 1)} session ends Established`);
    }
    return await runChanges(watch, changes, async (c) => {
      const k = changes.findIndex((x) => x.add && x.prefix === c.prefix);
      await execFileP("birdc", ["-s", birds[c.node]!.socket, c.add ? "enable" : "disable", `s${k}`]);
    });
  } finally {
    for (const b of birds) await b.cleanup();
  }
}

/** The floor: the route written directly into the 19 other namespaces at once. */
async function direct(lab: BridgeLab, watch: RouteWatch, changes: Change[]): Promise<number[]> {
  return runChanges(watch, changes, async (c) => {
    const via = lab.node(c.node).v4;
    await Promise.all(
      lab.nodes
        .filter((_, i) => i !== c.node)
        .map((n) =>
          execFileP("ip", [
            "-n",
            n.ns,
            "route",
            c.add ? "add" : "del",
            c.prefix,
            ...(c.add ? ["via", via] : []),
            "proto",
            "84",
            "metric",
            "32",
          ]),
        ),
    );
  });
}

function rows(name: string, ms: number[], base: number[], baseName: string): BenchRow[] {
  const s = [...ms].sort((a, b) => a - b);
  const b = [...base].sort((a, b) => a - b);
  return [50, 99].map((p) => ({
    name: `${name} p${p}`,
    value: percentile(s, p),
    unit: "ms",
    baseline: percentile(b, p),
    ratio: percentile(s, p) / percentile(b, p),
    note: `baseline: ${baseName}${p === 99 && name.startsWith("ours") ? "; target p99 ≤ 100 ms" : ""}`,
  }));
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("needs root (network namespaces)");
  const lab = new BridgeLab(`bm${process.pid % 10000}`, N);
  let watch: RouteWatch | undefined;
  try {
    watch = new RouteWatch(lab);
    await sleep(300);
    const changes = plan();
    const t0 = Date.now();
    const us = await ours(lab, watch, changes);
    const bird = await birdMesh(lab, watch, changes);
    const floor = await direct(lab, watch, changes);
    const split = (xs: number[], add: boolean) => xs.filter((_, i) => (i % 2 === 0) === add);
    const [usWarm, birdWarm] = [us.splice(0, 2), bird.splice(0, 2)];
    floor.splice(0, 2);
    const report: BenchReport = {
      bench: "bgp-mesh",
      startedAt: new Date(t0).toISOString(),
      machine: machineInfo(),
      params: {
        speakers: N,
        sessions: (N * (N - 1)) / 2,
        changes: K,
        samplesMs: { ours: us.map(Math.round), bird: bird.map(Math.round), direct: floor.map(Math.round) },
      },
      rows: [
        ...rows("ours: change → in all other kernels", us, bird, `BIRD 2 mesh of ${N}`),
        ...rows("ours: originate", split(us, true), split(bird, true), "BIRD 2, enable static"),
        ...rows("ours: withdraw", split(us, false), split(bird, false), "BIRD 2, disable static"),
        ...rows("ours vs the floor", us, floor, `ip route add/del in ${N - 1} namespaces at once`),
        {
          name: "ours: mesh up (all session ends Established, both sides active)",
          value: meshUpMs,
          unit: "ms",
          note: `${flapped} session ends left Established on the way up`,
        },
        {
          name: "ours: first change after the mesh is up (warm-up, not in the above)",
          value: usWarm[0]!,
          unit: "ms",
          baseline: birdWarm[0]!,
          ratio: usWarm[0]! / birdWarm[0]!,
          note: `withdraw after it: ${Math.round(usWarm[1]!)} ms (BIRD ${Math.round(birdWarm[1]!)} ms)`,
        },
      ],
    };
    writeReport(report);
  } finally {
    watch?.stop();
    lab.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
