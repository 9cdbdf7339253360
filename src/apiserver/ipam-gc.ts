/**
 * The IPAM controller calico-apiserver runs (`--ipam-gc-interval`): every interval, one
 * garbage-collection pass (deleted nodes, leaked workload addresses, empty blocks) and one
 * crash-repair pass, each logged in one line. Calico runs this in kube-controllers' node
 * controller every leakGracePeriod/2 (reference/calico.md §4.3). Passes never overlap; `stop`
 * cancels the next one and waits for the one running.
 */
import type { Datastore } from "../datastore/types.js";
import { IPAM } from "../ipam/allocator.js";
import {
  DEFAULT_LEAK_GRACE_PERIOD_MS,
  IPAMGarbageCollector,
  leakGracePeriodMs,
  type GCPassResult,
} from "../ipam/gc.js";
import { IPAMRepairer, type RepairResult } from "../ipam/repair.js";

/** Calico's controller period when the grace period is 0 (pod-address GC off). */
export const FALLBACK_GC_INTERVAL_MS = 5 * 60_000;

/** Calico's period: half the leak grace period (7.5 min with the 15 min default). */
export const defaultGCIntervalMs = (graceMs: number): number =>
  graceMs > 0 ? graceMs / 2 : FALLBACK_GC_INTERVAL_MS;

export interface IPAMControllerOptions {
  /** Time between passes; default `defaultGCIntervalMs` of the configured grace period. */
  intervalMs?: number;
  /** Overrides KubeControllersConfiguration's leakGracePeriod. */
  leakGracePeriodMs?: number;
  /** Repair's minimum age of a suspect state (default: the interval, so one pass apart). */
  repairMinAgeMs?: number;
  log: (line: string) => void;
}

const list = (xs: readonly string[], max = 10): string =>
  xs.length <= max ? xs.join(", ") : `${xs.slice(0, max).join(", ")}, … (${xs.length - max} more)`;

/** One log line for a pass: counts, and what was released or fixed. */
export function describePass(gc: GCPassResult, repair: RepairResult): string {
  const parts: string[] = [];
  const dn = gc.deletedNodes;
  if (dn.nodes.length > 0)
    parts.push(
      `deleted node(s) ${list(dn.nodes)}: released ${dn.releasedAddresses.length} address(es) [${list(dn.releasedAddresses)}] and ${dn.affinitiesReleased} affinit(ies)`,
    );
  if (gc.leaksReleased.length > 0)
    parts.push(`released ${gc.leaksReleased.length} leaked address(es) [${list(gc.leaksReleased)}]`);
  if (gc.emptyBlocksReleased.length > 0) parts.push(`gave up empty block(s) ${list(gc.emptyBlocksReleased)}`);
  const fixes: [string, string[]][] = [
    ["handles fixed", repair.handlesFixed],
    ["handles deleted", repair.handlesDeleted],
    ["affinities confirmed", repair.affinitiesConfirmed],
    ["affinities deleted", repair.affinitiesDeleted],
    ["affinities restored", repair.affinitiesRestored],
    ["affinities recreated", repair.affinitiesRecreated],
    ["interrupted block deletions finished", repair.blocksDeleted],
  ];
  for (const [what, xs] of fixes) if (xs.length > 0) parts.push(`repair: ${what}: ${list(xs)}`);
  parts.push(
    `${gc.candidates.length} leak candidate(s) within the ${gc.leakGracePeriodMs / 1000}s grace period, ${gc.leaksKept.length} kept, ${repair.deferred.length} repair(s) awaiting a second look`,
  );
  return parts.join("; ");
}

export class IPAMController {
  private readonly ipam: IPAM;
  private readonly gc: IPAMGarbageCollector;
  private repairer: IPAMRepairer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private passes = 0;
  intervalMs = 0;

  constructor(
    ds: Datastore,
    private readonly opts: IPAMControllerOptions,
  ) {
    this.ipam = new IPAM(ds);
    this.gc = new IPAMGarbageCollector(
      this.ipam,
      opts.leakGracePeriodMs !== undefined ? { leakGracePeriodMs: opts.leakGracePeriodMs } : {},
    );
  }

  /**
   * Resolve the interval and schedule the passes, the first one interval from now (a restart
   * loses nothing: every pass re-reads everything, and the collectors' clocks start afresh).
   */
  async start(): Promise<void> {
    let grace = this.opts.leakGracePeriodMs;
    if (this.opts.intervalMs === undefined && grace === undefined) {
      try {
        grace = await leakGracePeriodMs(this.ipam);
      } catch (err) {
        grace = DEFAULT_LEAK_GRACE_PERIOD_MS;
        this.opts.log(`ipam-gc: cannot read the leak grace period, assuming 15m: ${(err as Error).message}`);
      }
    }
    this.intervalMs = this.opts.intervalMs ?? defaultGCIntervalMs(grace ?? DEFAULT_LEAK_GRACE_PERIOD_MS);
    this.repairer = new IPAMRepairer(this.ipam, { minAgeMs: this.opts.repairMinAgeMs ?? this.intervalMs });
    this.opts.log(`ipam-gc: a garbage-collection and repair pass every ${this.intervalMs / 1000}s`);
    this.schedule(this.intervalMs);
  }

  /** Run one pass now (also what the timer does). Errors are logged, never thrown. */
  async runPass(): Promise<void> {
    const n = ++this.passes;
    try {
      const gc = await this.gc.runOnce();
      const repair = await this.repairer!.runOnce();
      this.opts.log(`ipam-gc: pass ${n}: ${describePass(gc, repair)}`);
    } catch (err) {
      this.opts.log(`ipam-gc: pass ${n} failed: ${(err as Error).message}`);
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runPass().finally(() => {
        this.running = undefined;
        this.schedule(this.intervalMs);
      });
    }, ms);
  }

  /** No further passes; resolves once a pass in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
