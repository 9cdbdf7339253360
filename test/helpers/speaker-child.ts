/**
 * One BgpSpeaker in a child process, for tests and benches that need a speaker inside a network
 * namespace (Node cannot switch namespaces, so the parent starts this file under
 * `nsenter --net=/run/netns/<ns>`; see speaker-process.ts). Configured by SPK_CONFIG (JSON:
 * the speaker config and its peers), driven by JSON lines on stdin, answering on stdout.
 */
import { createInterface } from "node:readline";
import { formatIP, parseCIDR } from "../../src/api/net.js";
import { formatId } from "../../src/bgp/session.js";
import { BgpSpeaker, type PeerConfig, type SpeakerConfig } from "../../src/bgp/speaker.js";

export interface ChildConfig {
  speaker: SpeakerConfig;
  peers: PeerConfig[];
  /** Prefixes originated before start(), so the first table sent (then End-of-RIB) has them. */
  originate?: string[];
}

/** The Loc-RIB best path of one prefix, as the `route` command reports it. */
export interface BestPath {
  peer: string;
  nextHop: string;
  stale: boolean;
  originatorId?: string;
  clusterList?: string[];
}

export interface ChildCmd {
  id: number;
  cmd: "originate" | "withdraw" | "status" | "stop" | "count" | "mem" | "waitCount" | "route";
  prefix?: string;
  /** waitCount: reply once the Loc-RIB holds this many prefixes (or `timeoutMs` passes). */
  count?: number;
  timeoutMs?: number;
}

const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const gc = (globalThis as { gc?: () => void }).gc;

function mem(): { heapUsed: number; arrayBuffers: number; rss: number } {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  // arrayBuffers: typed-array memory lives outside the V8 heap (the RIB's prefix tables).
  return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

/** Light enough to call while a million routes arrive: no per-route work. */
function counts(speaker: BgpSpeaker, cfg: ChildConfig) {
  const up = cfg.peers.map(
    (p) => speaker.rib.peers().some((x) => x.id === p.address) && speaker.rib.isUp(p.address),
  );
  return { locRib: speaker.rib.locRibSize, up, at: Date.now() };
}

/** Poll the Loc-RIB size every few milliseconds; resolve with when each peer came up and when
 * the count was reached (clock of this process). */
async function waitCount(speaker: BgpSpeaker, cfg: ChildConfig, n: number, timeoutMs: number) {
  const start = Date.now();
  let firstUp: number | undefined;
  for (;;) {
    const c = counts(speaker, cfg);
    if (firstUp === undefined && c.up.some((u) => u)) firstUp = c.at;
    if (c.locRib >= n) return { firstUp, reached: c.at, locRib: c.locRib };
    if (c.at - start > timeoutMs) return { firstUp, reached: undefined, locRib: c.locRib };
    await new Promise((r) => setTimeout(r, 2));
  }
}

function bestPath(speaker: BgpSpeaker, prefix: string): BestPath | undefined {
  const c = parseCIDR(prefix);
  if (!c) throw new Error(`not a prefix: ${prefix}`);
  const best = speaker.rib.decision(c)?.best;
  if (!best) return undefined;
  const a = best.attributes;
  return {
    peer: best.peer.id,
    nextHop: formatIP(best.nextHop.family, best.nextHop.addr),
    stale: best.stale,
    ...(a.originatorId !== undefined ? { originatorId: formatId(a.originatorId) } : {}),
    ...(a.clusterList !== undefined ? { clusterList: a.clusterList.map(formatId) } : {}),
  };
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.SPK_CONFIG ?? "") as ChildConfig;
  const speaker = new BgpSpeaker(cfg.speaker);
  for (const p of cfg.peers) speaker.addPeer(p);
  for (const p of cfg.originate ?? []) speaker.originate(p);
  await speaker.start();
  out({ ev: "ready", pid: process.pid });
  for await (const line of createInterface({ input: process.stdin })) {
    const c = JSON.parse(line) as ChildCmd;
    try {
      let extra: object = {};
      if (c.cmd === "originate") speaker.originate(c.prefix!);
      else if (c.cmd === "withdraw") speaker.withdraw(c.prefix!);
      else if (c.cmd === "stop") await speaker.stop();
      else if (c.cmd === "count") extra = { counts: counts(speaker, cfg) };
      else if (c.cmd === "mem") extra = { mem: mem() };
      else if (c.cmd === "waitCount")
        extra = { wait: await waitCount(speaker, cfg, c.count ?? 0, c.timeoutMs ?? 60000) };
      else if (c.cmd === "route") extra = { best: bestPath(speaker, c.prefix!) ?? null };
      if (c.cmd === "originate" || c.cmd === "withdraw" || c.cmd === "stop") await speaker.settled();
      const status =
        c.cmd === "count" || c.cmd === "mem" || c.cmd === "waitCount" ? undefined : speaker.status();
      out({ id: c.id, ok: true, status, errors: speaker.errors, ...extra });
    } catch (err) {
      out({ id: c.id, ok: false, error: (err as Error).message });
    }
    if (c.cmd === "stop") break;
  }
  process.exit(0);
}

await main();
