/**
 * Small connectivity checks over a OneHostFabric: "can SRC reach ADDR with PROBE?" with real
 * packets, and a list of expectations checked together so a failure shows every cell.
 */
import assert from "node:assert/strict";
import type { ProbeAgent } from "../../src/lab/probe.js";
import type { OneHostFabric } from "./one-host-fabric.js";

export type ProbeKind = `tcp${number}` | `udp${number}` | "icmp";

/** `ext`, `host`, or a workload as `namespace.name`. */
export function probeFrom(fabric: OneHostFabric, src: string): ProbeAgent {
  if (src === "ext") return fabric.extProbe!;
  if (src === "host") return fabric.hostProbe!;
  const w = fabric.workloads.get(src);
  if (w === undefined) throw new Error(`no workload "${src}" in the fabric`);
  return w.probe;
}

/** True when the packet reached the destination: an answer, or a refusal (nothing listens
 * there); policy here drops, never rejects. */
export async function reaches(
  fabric: OneHostFabric,
  src: string,
  addr: string,
  probe: ProbeKind,
  timeoutMs = 600,
): Promise<boolean> {
  const r = await probeFrom(fabric, src).probe({
    proto: probe.startsWith("tcp") ? "tcp" : probe.startsWith("udp") ? "udp" : "icmp",
    addr,
    port: probe === "icmp" ? 0 : Number(probe.replace(/^\D+/, "")),
    timeoutMs,
  });
  return r.ok || r.error === "refused";
}

export interface Expectation {
  from: string;
  /** A name for the destination in messages. */
  to: string;
  addr: string;
  probe: ProbeKind;
  allowed: boolean;
}

/** Measure every expectation (in parallel) and return the cells that differ. */
export async function mismatches(fabric: OneHostFabric, exps: Expectation[]): Promise<string[]> {
  const got = await Promise.all(exps.map((e) => reaches(fabric, e.from, e.addr, e.probe)));
  return exps.flatMap((e, i) =>
    got[i] === e.allowed
      ? []
      : [
          `${e.from} → ${e.to} ${e.probe}: expected ${e.allowed ? "allowed" : "denied"}, was ${got[i] ? "allowed" : "denied"}`,
        ],
  );
}

export async function assertReach(fabric: OneHostFabric, exps: Expectation[], what: string): Promise<void> {
  const bad = await mismatches(fabric, exps);
  assert.deepEqual(bad, [], `${what}:\n${bad.join("\n")}`);
}

/** Poll `check` until it returns true or `timeoutMs` passes; resolves with the time it took. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 200,
): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The JSON log lines of the agent whose message is `msg`, in order. */
export function logLines(log: string, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of log.split("\n")) {
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
