/**
 * BGP receive path at scale (issue 6): one BIRD 2 (the sender, a `static` protocol of
 * blackhole routes, no kernel protocol) announces BENCH_PREFIXES (default 1,000,000) prefixes
 * to our speaker (a child process in its own namespace, programKernel false) and, in the same
 * run, to another BIRD. Measured for each receiver: the time from its first session
 * Established to every prefix received (ours: the Loc-RIB size, polled inside the speaker
 * process every 2 ms; BIRD: `birdc show protocols all` imported counts, polled every 20 ms),
 * and memory per route (ours: gc'd heapUsed + arrayBuffers, and RSS, after − before; BIRD: `show memory`
 * routing tables). Target: ours/BIRD time ≤ 2.0, ours ≤ 200 bytes/route (heap).
 *
 * Address rule: only 198.18.0.0/15 holds enough IPv4 prefixes of ours, and all of lengths
 * /18–/32 in it are 262,136; the rest are IPv6 /80s in fd00:19::/48 (fd00:19:0:X:Y::/80).
 * Both receivers get the same mix over one IPv4 session each carrying both families (iBGP,
 * AS 64512; IPv6 next hops from the sender's interface address), so one Established starts the clock.
 * Sessions are enabled in turn on the sender (`birdc enable`), so the two never overlap; BENCH_ROUNDS
 * rounds (default 3) alternate which receiver goes first, the sender disabling the sessions (and
 * the receiver dropping every route) between measurements.
 *
 *   npx tsc -p . && node dist/bench/bgp-bird-1m.bench.js        (root, bird2)
 *   BENCH_PREFIXES=100000 BENCH_CPU_PROF=/tmp/prof node dist/bench/bgp-bird-1m.bench.js
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { BirdProcess } from "../test/helpers/bgp-bird.js";
import { BridgeLab } from "../test/helpers/bgp-lab.js";
import { sleep, SpeakerProcess } from "../test/helpers/speaker-process.js";
import { machineInfo, writeReport, type BenchReport } from "./report.js";

const TOTAL = Number(process.env.BENCH_PREFIXES ?? 1_000_000);
const V4_ALL = 262_136; // every prefix of length 18..32 inside 198.18.0.0/15
const V4 = Math.min(V4_ALL, Math.round((TOTAL * V4_ALL) / 1_000_000));
const V6 = TOTAL - V4;
/** Per receiver, from enabling the sender's sessions to all received. */
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 300_000);
const CPU_PROF = process.env.BENCH_CPU_PROF;
/** Rounds per receiver, alternating which goes first; the ratio is the median of per-round ratios. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** The first `n` IPv4 prefixes of lengths 32 down to 18 in 198.18.0.0/15 (longest first). */
function* v4Prefixes(n: number): Generator<string> {
  const base = (198 << 24) | (18 << 16);
  let left = n;
  for (let len = 32; len >= 18 && left > 0; len--) {
    const count = 2 ** (len - 15);
    const step = 2 ** (32 - len);
    for (let i = 0; i < count && left > 0; i++, left--) {
      const a = (base >>> 0) + i * step;
      yield `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${len}`;
    }
  }
}

function* v6Prefixes(n: number): Generator<string> {
  for (let k = 0; k < n; k++) yield `fd00:19:0:${(k >>> 16).toString(16)}:${(k & 0xffff).toString(16)}::/80`;
}

/** Write the sender's config in 1 MiB chunks (a million routes is ~40 MB of text). */
function writeSenderConfig(path: string, log: string): void {
  const fd = openSync(path, "w");
  let buf: string[] = [];
  let size = 0;
  const put = (s: string) => {
    buf.push(s);
    size += s.length;
    if (size > 1 << 20) {
      writeSync(fd, buf.join(""));
      buf = [];
      size = 0;
    }
  };
  put(`log "${log}" { warning, error, fatal };\nrouter id 198.18.0.1;\nprotocol device { scan time 10; }\n`);
  put("protocol static static4 { ipv4;\n");
  for (const p of v4Prefixes(V4)) put(`route ${p} blackhole;\n`);
  put("}\nprotocol static static6 { ipv6;\n");
  for (const p of v6Prefixes(V6)) put(`route ${p} blackhole;\n`);
  put("}\n");
  for (const [name, to] of [
    ["ours", 2],
    ["bird", 3],
  ] as const) {
    put(
      `protocol bgp to_${name} { disabled; local 198.18.0.1 as 64512; neighbor 198.18.0.${to} as 64512; direct;
  connect delay time 1; connect retry time 1; error wait time 1, 4;
  ipv4 { import none; export where proto = "static4"; next hop self; };
  ipv6 { import none; export where proto = "static6"; next hop self; }; }\n`,
    );
  }
  writeSync(fd, buf.join(""));
  closeSync(fd);
}

const RECEIVER = `router id 198.18.0.3;
protocol device { scan time 10; }
protocol bgp upstream { local 198.18.0.3 as 64512; neighbor 198.18.0.1 as 64512; direct;
  connect retry time 1; error wait time 1, 4;
  ipv4 { import all; export none; }; ipv6 { import all; export none; }; }
`;

/** BIRD's "Routing tables" memory, bytes (`show memory`). */
function birdTableBytes(b: BirdProcess): number {
  const m = /Routing tables:\s+([\d.]+)\s+(B|kB|MB|GB)/.exec(b.birdc("show", "memory"));
  if (!m) return NaN;
  const mult = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] as "B"];
  return Number(m[1]) * mult;
}

function birdImported(b: BirdProcess): number {
  let sum = 0;
  for (const m of b.birdc("show", "protocols", "all").matchAll(/Routes:\s+(\d+) imported/g))
    sum += Number(m[1]);
  return sum;
}

/** Time from the first of the receiver BIRD's sessions Established to all imported. */
async function measureBird(sender: BirdProcess, rx: BirdProcess): Promise<{ ms: number; bytes: number }> {
  const before = birdTableBytes(rx);
  sender.birdc("enable", "to_bird");
  const end = Date.now() + TIMEOUT_MS;
  let up: number | undefined;
  let count = 0;
  while (Date.now() < end) {
    const now = Date.now();
    if (up === undefined && rx.protocolInfo("upstream").includes("Established")) up = now;
    count = birdImported(rx);
    if (up !== undefined && count >= TOTAL) {
      const ms = Date.now() - up;
      return { ms, bytes: (birdTableBytes(rx) - before) / TOTAL };
    }
    await sleep(20);
  }
  throw new Error(`BIRD receiver: ${count} of ${TOTAL} routes after ${TIMEOUT_MS} ms`);
}

async function measureOurs(sender: BirdProcess, us: SpeakerProcess) {
  const before = (await us.send({ cmd: "mem" })).mem!;
  const waiting = us.send({ cmd: "waitCount", count: TOTAL, timeoutMs: TIMEOUT_MS }, TIMEOUT_MS + 10_000);
  sender.birdc("enable", "to_ours");
  const w = (await waiting).wait!;
  if (w.reached === undefined || w.firstUp === undefined)
    throw new Error(`our speaker: ${w.locRib} of ${TOTAL} routes after ${TIMEOUT_MS} ms`);
  const after = (await us.send({ cmd: "mem" }, 60_000)).mem!;
  return {
    ms: w.reached - w.firstUp,
    // Typed arrays (the RIB's prefix tables) are outside the V8 heap: counted with it.
    heap: (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / TOTAL,
    rss: (after.rss - before.rss) / TOTAL,
  };
}

/** Disable the sender's sessions to one receiver and wait until it has dropped every route. */
async function reset(sender: BirdProcess, to: "ours" | "bird", count: () => Promise<number>): Promise<void> {
  sender.birdc("disable", `to_${to}`);
  const end = Date.now() + TIMEOUT_MS;
  while ((await count()) > 0) {
    if (Date.now() > end)
      throw new Error(`${to}: routes still there ${TIMEOUT_MS} ms after the sender stopped`);
    await sleep(200);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("needs root (network namespaces)");
  const lab = new BridgeLab(`b1m${process.pid % 10000}`, 3, { ipv6: true });
  const birds: BirdProcess[] = [];
  let us: SpeakerProcess | undefined;
  try {
    const t0 = Date.now();
    const sender = new BirdProcess(lab.node(0).ns, writeSenderConfig);
    birds.push(sender);
    const genMs = Date.now() - t0;
    const rx = new BirdProcess(lab.node(2).ns, RECEIVER);
    birds.push(rx);
    sender.start();
    rx.start();
    us = new SpeakerProcess({
      ns: lab.node(1).ns,
      routerId: "198.18.0.2",
      peers: [{ address: "198.18.0.1", asn: 64512, families: [4, 6] }],
      speaker: { programKernel: false, holdTime: 90 },
      nodeArgs: ["--expose-gc", ...(CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF}`] : [])],
    });
    await us.waitReady();
    // The sender has parsed its config when its static protocols hold every route.
    const loadEnd = Date.now() + TIMEOUT_MS;
    while (
      !/static6[\s\S]*Routes:\s+\d+ imported/.test(sender.birdc("show", "protocols", "all", "static6"))
    ) {
      if (Date.now() > loadEnd) throw new Error("sender BIRD did not load its static routes");
      await sleep(200);
    }
    const loadMs = Date.now() - t0;

    // Rounds alternate which receiver goes first, so load drift on this shared machine hits both.
    const birdRuns: { ms: number; bytes: number }[] = [];
    const ourRuns: { ms: number; heap: number; rss: number }[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? (["bird", "ours"] as const) : (["ours", "bird"] as const);
      for (const who of order) {
        if (who === "bird") {
          birdRuns.push(await measureBird(sender, rx));
          await reset(sender, "bird", () => Promise.resolve(birdImported(rx)));
        } else {
          ourRuns.push(await measureOurs(sender, us));
          await reset(
            sender,
            "ours",
            async () => (await us!.send({ cmd: "count" }, TIMEOUT_MS)).counts!.locRib,
          );
        }
      }
      ratios.push(ourRuns[r]!.ms / birdRuns[r]!.ms);
      console.log(`round ${r + 1}: ours ${ourRuns[r]!.ms} ms, BIRD ${birdRuns[r]!.ms} ms`);
    }
    // Memory from the first round (a fresh process; later rounds reuse freed heap).
    const bird = { ms: median(birdRuns.map((x) => x.ms)), bytes: birdRuns[0]!.bytes };
    const ours = { ms: median(ourRuns.map((x) => x.ms)), heap: ourRuns[0]!.heap, rss: ourRuns[0]!.rss };
    const report: BenchReport = {
      bench: "bgp-bird-1m",
      startedAt: new Date(t0).toISOString(),
      machine: machineInfo(),
      params: {
        prefixes: TOTAL,
        ipv4: V4,
        ipv6: V6,
        timeoutMs: TIMEOUT_MS,
        rounds: ROUNDS,
        oursMs: ourRuns.map((x) => x.ms),
        birdMs: birdRuns.map((x) => x.ms),
      },
      rows: [
        {
          name: "Established → all received (median of rounds)",
          value: ours.ms,
          unit: "ms",
          baseline: bird.ms,
          ratio: median(ratios),
          note: `ratio: median of ${ROUNDS} per-round ratios (alternating order); ours vs BIRD 2 receiving the same ${V4.toLocaleString("en-US")} IPv4 (198.18.0.0/15, /18–/32) + ${V6.toLocaleString("en-US")} IPv6 (/80 in fd00:19::/48); target ≤ 2.0x`,
        },
        {
          name: "receive rate",
          value: TOTAL / (ours.ms / 1000),
          unit: "routes/s",
          baseline: TOTAL / (bird.ms / 1000),
          ratio: bird.ms / ours.ms,
        },
        {
          name: "memory per route (heap + array buffers, gc'd)",
          value: ours.heap,
          unit: "B/route",
          baseline: bird.bytes,
          ratio: ours.heap / bird.bytes,
          note: "baseline: BIRD `show memory` routing tables; target ≤ 200 B",
        },
        { name: "memory per route (RSS)", value: ours.rss, unit: "B/route" },
        { name: "sender config written", value: genMs, unit: "ms", note: "streamed, 1 MiB chunks" },
        {
          name: "sender BIRD loaded",
          value: loadMs,
          unit: "ms",
          note: "config written + parsed + static up",
        },
      ],
    };
    writeReport(report);
  } finally {
    if (CPU_PROF && us) {
      // A clean exit, so the child writes its profile.
      const exited = new Promise((r) => us!.proc.once("exit", r));
      await us.send({ cmd: "stop" }).catch(() => undefined);
      await Promise.race([exited, sleep(10_000)]);
    }
    await us?.kill();
    for (const b of birds) await b.cleanup();
    lab.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
