/**
 * The node agent's loop (reference/calico.md §1.4, docs/agent.md): syncer batches go into the
 * calculation; once the syncer is in sync, a short debounce coalesces bursts (coalescing is
 * the back-pressure: updates that arrive while an apply runs wait and merge), then one flush
 * goes to one `Dataplane.apply` — serialized, never overlapping.
 *
 * - Nothing is applied before the first InSync; that first apply is full (it reconciles what a
 *   previous run left).
 * - A periodic full apply (the refresh interval) repairs drift.
 * - A failed apply is retried, as a full apply, after a growing back-off; after
 *   `maxConsecutiveFailures` in a row the agent gives up and `onFatal` is called (main exits
 *   non-zero) rather than run with a dataplane it cannot program. Kernel state is left as it
 *   is: the last programmed policy stays enforced.
 */
import type { Calculator, KVUpdate } from "../calc/types.js";
import type { Dataplane, DataplaneConfig } from "../dataplane/types.js";
import { CalicoError } from "../errors.js";
import { nullLogger, type Logger } from "./log.js";
import type { AgentMetrics } from "./metrics.js";
import { SyncStatus } from "./syncer.js";

export interface AgentOptions {
  calc: Calculator;
  dataplane: Dataplane;
  log?: Logger;
  metrics?: AgentMetrics;
  /** Wait this long after an update before applying, so a burst becomes one apply (default 5 ms). */
  debounceMs?: number;
  /** Full apply every this often once in sync; 0 disables (default 90 s). */
  resyncIntervalMs?: number;
  /** Consecutive failed applies before giving up (default 5). */
  maxConsecutiveFailures?: number;
  /** Retry back-off after a failed apply: doubles from initialMs up to maxMs. */
  retryBackoff?: { initialMs: number; maxMs: number };
  /** Retry of routes waiting for their interface: doubles from initialMs up to maxMs. */
  waitingRetry?: { initialMs: number; maxMs: number };
  /** An apply running longer than this makes the agent not live (default 5 min). */
  applyTimeoutMs?: number;
  /** Called once when the agent gives up; the agent has already stopped applying. */
  onFatal?: (err: Error) => void;
  /** The datastore revision delivered so far (the syncer's); recorded with each apply. */
  deliveredRevision?: () => number;
  /**
   * Called after every apply, successful or not, with the health it leaves — and when readiness
   * changes between applies (back in sync with nothing new to apply), so a status written from
   * here is never left stale.
   */
  onApplied?: (health: AgentHealth) => void;
}

export interface AgentHealth {
  live: boolean;
  ready: boolean;
  inSync: boolean;
  lastApplyOk: boolean | undefined;
  consecutiveFailures: number;
  applies: number;
  /** The delivered datastore revision the last successful apply covered (0 before one). */
  appliedRevision: number;
}

export class Agent {
  private readonly calc: Calculator;
  private readonly dataplane: Dataplane;
  private readonly log: Logger;
  private readonly metrics: AgentMetrics | undefined;
  private readonly debounceMs: number;
  private resyncIntervalMs: number;
  private readonly maxFailures: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly waitingRetry: { initialMs: number; maxMs: number };
  private readonly applyTimeoutMs: number;
  private readonly onFatal: (err: Error) => void;
  private readonly deliveredRevision: () => number;
  private readonly onApplied: (health: AgentHealth) => void;
  private appliedRevision = 0;

  private status: SyncStatus = SyncStatus.WAIT_FOR_DATASTORE;
  private everInSync = false;
  /** Updates that arrived during an apply; fed to the calc when it ends. Last value per key. */
  private readonly pending = new Map<string, unknown>();
  /**
   * A batch (possibly empty: a re-list that found nothing changed but moved the delivered
   * revision) arrived during an apply: another apply must follow, to cover its revision.
   */
  private deliveredDuringApply = false;
  /** Readiness as last reported through onApplied (undefined before the first report). */
  private reportedReady: boolean | undefined;
  /** The calc holds updates not yet flushed. */
  private dirty = false;
  private needFull = true;
  private applying: Promise<void> | undefined;
  private applyStarted = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The timer only retries waiting routes: an apply that is due sooner replaces it. */
  private timerSoft = false;
  /** Consecutive applies that left routes waiting for their interfaces (for the backoff). */
  private waitingApplies = 0;
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private fatal: Error | undefined;
  private failures = 0;
  private lastApplyOk: boolean | undefined;
  private idleWaiters: (() => void)[] = [];
  /** Applies done (successful or not), for tests and logs. */
  applies = 0;

  constructor(opts: AgentOptions) {
    this.calc = opts.calc;
    this.dataplane = opts.dataplane;
    this.log = (opts.log ?? nullLogger()).child({ component: "agent" });
    this.metrics = opts.metrics;
    this.debounceMs = opts.debounceMs ?? 5;
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 90_000;
    this.maxFailures = opts.maxConsecutiveFailures ?? 5;
    this.backoff = opts.retryBackoff ?? { initialMs: 100, maxMs: 10_000 };
    this.waitingRetry = opts.waitingRetry ?? { initialMs: 250, maxMs: 10_000 };
    this.applyTimeoutMs = opts.applyTimeoutMs ?? 300_000;
    this.onFatal = opts.onFatal ?? (() => {});
    this.deliveredRevision = opts.deliveredRevision ?? (() => 0);
    this.onApplied = opts.onApplied ?? (() => {});
  }

  /** Syncer callback: a batch of datastore updates. */
  onUpdates(updates: readonly KVUpdate[]): void {
    if (this.stopped) return;
    if (this.applying !== undefined) {
      // The dataplane is reading the calc's state right now: hold the updates (one per key).
      for (const u of updates) this.pending.set(u.key, u.value);
      this.deliveredDuringApply = true;
      return;
    }
    // Even an empty batch makes the next apply due: it tells that the delivered revision
    // moved, and appliedRevision must follow it.
    if (updates.length > 0) this.calc.onUpdates(updates);
    this.dirty = true;
    this.schedule(this.debounceMs);
  }

  /** Syncer callback: a sync status change. */
  onStatus(status: SyncStatus): void {
    if (this.stopped) return;
    this.status = status;
    this.metrics?.setStatus(status);
    if (status === SyncStatus.IN_SYNC && !this.everInSync) {
      this.everInSync = true;
      this.log.info("In sync with the datastore; programming the dataplane");
      this.needFull = true;
      this.metrics?.resyncs.inc();
      this.restartResyncTimer();
      this.schedule(0);
    }
    this.reportIfReadinessChanged();
  }

  /** Between applies, a readiness change (out of / back in sync) is reported too. */
  private reportIfReadinessChanged(): void {
    if (this.applying !== undefined || this.reportedReady === undefined) return;
    const h = this.health();
    if (h.ready !== this.reportedReady) this.report(h);
  }

  private report(h: AgentHealth): void {
    this.reportedReady = h.ready;
    this.onApplied(h);
  }

  /** New dataplane configuration: handed over now, takes effect in a full apply. */
  setDataplaneConfig(config: DataplaneConfig): void {
    this.dataplane.setConfig(config);
    this.needFull = true;
    this.schedule(this.debounceMs);
  }

  setResyncInterval(ms: number): void {
    this.resyncIntervalMs = ms;
    if (this.everInSync) this.restartResyncTimer();
  }

  /** Request a full apply soon (drift repair, tests). */
  requestResync(): void {
    this.needFull = true;
    this.metrics?.resyncs.inc();
    this.schedule(0);
  }

  health(): AgentHealth {
    const hung = this.applying !== undefined && Date.now() - this.applyStarted > this.applyTimeoutMs;
    const inSync = this.status === SyncStatus.IN_SYNC;
    return {
      live: !this.stopped && this.fatal === undefined && !hung,
      ready: !this.stopped && inSync && this.lastApplyOk === true,
      inSync,
      lastApplyOk: this.lastApplyOk,
      consecutiveFailures: this.failures,
      applies: this.applies,
      appliedRevision: this.appliedRevision,
    };
  }

  /** Resolves once no apply runs and none is due (tests). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    // A waiting-route retry is background work: nothing delivered is left to apply.
    return this.applying === undefined && (this.timer === undefined || this.timerSoft);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Stop the loop; waits for an apply in flight. Kernel state is left as it is. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearInterval(this.resyncTimer);
    await this.applying;
    this.notifyIdle();
  }

  private restartResyncTimer(): void {
    clearInterval(this.resyncTimer);
    this.resyncTimer = undefined;
    if (this.resyncIntervalMs <= 0 || this.stopped) return;
    this.resyncTimer = setInterval(() => {
      this.log.debug("Periodic resync");
      this.requestResync();
    }, this.resyncIntervalMs);
  }

  /** Arrange an apply after `delayMs` unless one is already due (an earlier timer wins). */
  private schedule(delayMs: number, soft = false): void {
    if (this.stopped || !this.everInSync || this.fatal !== undefined) return;
    if (this.applying !== undefined) return; // runs when the apply ends
    if (this.timer !== undefined) {
      if (!this.timerSoft || soft) return;
      clearTimeout(this.timer); // a real change does not wait for a waiting-route retry
    }
    this.timerSoft = soft;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.dirty || this.needFull) void this.runApply();
      else this.notifyIdle();
    }, delayMs);
  }

  private async runApply(): Promise<void> {
    // Take the full-apply request now: one made while this apply runs (a resync, a new
    // dataplane config) must get a full apply of its own, not be cleared by this one.
    const full = this.needFull;
    this.needFull = false;
    // Everything delivered so far has been fed to the calc (updates held during an apply are
    // fed before the next one starts), so this apply covers at least this revision.
    const revision = this.deliveredRevision();
    const changes = this.calc.flush();
    this.dirty = false;
    this.applyStarted = Date.now();
    let retryIn: number | undefined;
    let waitIn: number | undefined;
    const done = (async () => {
      try {
        const res = await this.dataplane.apply(this.calc.state, changes, { full });
        this.failures = 0;
        for (const w of res.warnings ?? []) this.log.warn(w);
        // Routes whose interface is not there: a workload between its endpoint and its veth
        // (CNI ADD) or after its veth (DEL). Not a failure; try again soon, backing off.
        const waiting = res.routesWaiting ?? 0;
        if (waiting > 0) {
          waitIn = Math.min(this.waitingRetry.maxMs, this.waitingRetry.initialMs * 2 ** this.waitingApplies);
          const fields = { routes: waiting, retryInMs: waitIn };
          if (this.waitingApplies === 0) this.log.info("Routes wait for their interfaces", fields);
          else this.log.debug("Routes wait for their interfaces", fields);
          this.waitingApplies++;
        } else this.waitingApplies = 0;
        this.lastApplyOk = true;
        this.appliedRevision = Math.max(this.appliedRevision, revision);
        this.metrics?.setState(this.calc.state);
        if (full) {
          // Memory after a full apply (MiB): what the cold start leaves (docs/agent.md "Performance").
          const m = process.memoryUsage();
          const mib = (n: number) => Math.round(n / 2 ** 20);
          this.log.info("Applied (full)", {
            ...res,
            rssMiB: mib(m.rss),
            heapUsedMiB: mib(m.heapUsed),
            heapTotalMiB: mib(m.heapTotal),
            externalMiB: mib(m.external),
          });
        } else this.log.debug("Applied", { ...res });
      } catch (err) {
        this.failures++;
        this.lastApplyOk = false;
        this.needFull = true;
        this.dataplane.invalidate();
        this.metrics?.applyErrors.inc();
        if (this.failures >= this.maxFailures) {
          this.giveUp(err);
        } else {
          retryIn = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (this.failures - 1));
          this.log.warn("Dataplane apply failed; retrying as a full apply", {
            error: err,
            consecutiveFailures: this.failures,
            retryInMs: retryIn,
          });
        }
      } finally {
        this.applies++;
        this.metrics?.applyDuration.observe({ full: String(full) }, (Date.now() - this.applyStarted) / 1000);
      }
    })();
    this.applying = done;
    await done;
    this.applying = undefined;
    if (this.deliveredDuringApply) {
      this.deliveredDuringApply = false;
      const updates = [...this.pending].map(([key, value]) => ({ key, value }));
      this.pending.clear();
      if (updates.length > 0) this.calc.onUpdates(updates);
      this.dirty = true;
    }
    this.report(this.health());
    this.timerSoft = false;
    if (retryIn !== undefined) this.schedule(retryIn);
    else if (this.dirty || this.needFull) this.schedule(this.debounceMs);
    else if (waitIn !== undefined) {
      this.dirty = true; // nothing new to flush: the apply retries the waiting routes
      this.schedule(waitIn, true);
    }
    this.notifyIdle();
  }

  private giveUp(err: unknown): void {
    const e = new CalicoError(
      "AGENT_DATAPLANE_FAILED",
      `Giving up after ${this.failures} consecutive failed dataplane applies: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
    this.fatal = e;
    this.log.error("Dataplane keeps failing; exiting rather than run open", { error: e });
    clearInterval(this.resyncTimer);
    this.onFatal(e);
  }
}
