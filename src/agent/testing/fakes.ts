/** A fake Calculator and Dataplane for the agent's loop tests. */
import {
  emptyChanges,
  type Calculator,
  type DesiredState,
  type KVUpdate,
  type StateChanges,
} from "../../calc/types.js";
import type { ApplyResult, Dataplane, DataplaneConfig } from "../../dataplane/types.js";

/** Keeps the last value per key; "endpoints" are keys containing `/workloadendpoints/`. */
export class FakeCalculator implements Calculator {
  readonly values = new Map<string, unknown>();
  private changed = new Set<string>();
  updateCalls = 0;

  onUpdates(updates: readonly KVUpdate[]): void {
    this.updateCalls++;
    for (const u of updates) {
      if (u.value === null) this.values.delete(u.key);
      else this.values.set(u.key, u.value);
      this.changed.add(u.key);
    }
  }

  get state(): DesiredState {
    const endpoints = new Map();
    for (const k of this.values.keys()) if (k.includes("/workloadendpoints/")) endpoints.set(k, {});
    return {
      ipSets: new Map(),
      policies: new Map(),
      profiles: new Map(),
      endpoints,
      routes: new Map(),
      pools: new Map(),
    };
  }

  flush(): StateChanges {
    const c = emptyChanges();
    for (const k of this.changed) c.endpoints.add(k);
    this.changed = new Set();
    return c;
  }
}

export interface ApplyCall {
  full: boolean;
  changed: string[];
  /** Keys in the calc at apply time. */
  keys: string[];
}

export class FakeDataplane implements Dataplane {
  readonly calls: ApplyCall[] = [];
  configs: DataplaneConfig[] = [];
  invalidations = 0;
  /** Applies in flight right now (must never exceed 1). */
  inFlight = 0;
  maxInFlight = 0;
  /** How long each apply takes. */
  delayMs = 0;
  /** Fail the next N applies. */
  failNext = 0;
  /** routesWaiting of the next applies' results, one per apply (then 0). */
  waitingNext: number[] = [];

  constructor(private readonly calc: FakeCalculator) {}

  async apply(_state: DesiredState, changes: StateChanges, opts?: { full?: boolean }): Promise<ApplyResult> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const keys = [...this.calc.values.keys()].sort();
      await new Promise((r) => setTimeout(r, this.delayMs));
      this.calls.push({ full: opts?.full === true, changed: [...changes.endpoints].sort(), keys });
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error("nft: transaction refused (fake)");
      }
      return {
        full: opts?.full === true,
        nftOps: 0,
        nftScriptBytes: 0,
        routesChanged: 0,
        linksChanged: 0,
        routesWaiting: this.waitingNext.shift() ?? 0,
        durationMs: this.delayMs,
      };
    } finally {
      this.inFlight--;
    }
  }

  invalidate(): void {
    this.invalidations++;
  }

  setConfig(config: DataplaneConfig): void {
    this.configs.push(config);
  }
}
