/**
 * The agent's syncer (reference/calico.md §1.4, the syncer contract): list-then-watch over the
 * datastore for every prefix the calculation needs, delivering batches of `KVUpdate` (value
 * JSON-parsed, or null when absent) and a sync status WaitForDatastore → ResyncInProgress →
 * InSync.
 *
 * Recovery: when a watch ends with an error we re-watch from the last revision we saw (nothing
 * is re-sent); when that revision has been compacted away ("too old") or the datastore was
 * unreachable, we re-list and emit only the differences against what we emitted before —
 * changed keys, and a delete for every key that vanished meanwhile — then go back in sync.
 *
 * Memory is bounded by the data set, not by history: per key we remember only its
 * modRevision (to diff a re-list), never values, and we buffer nothing — every batch goes
 * straight to the consumer.
 */
import type { KVUpdate } from "../calc/types.js";
import { RESOURCE_PREFIX } from "../datastore/keys.js";
import { isCompacted, type Datastore, type Watch, type WatchEvent } from "../datastore/types.js";
import { nullLogger, type Logger } from "./log.js";

export const IPAM_ASSIGNMENT_PREFIX = "/calico/ipam/v2/assignment/";
/** What the calculation needs: every v3 resource and the IPAM blocks. */
export const AGENT_SYNC_PREFIXES: readonly string[] = [RESOURCE_PREFIX, IPAM_ASSIGNMENT_PREFIX];

export const SyncStatus = {
  WAIT_FOR_DATASTORE: "WaitForDatastore",
  RESYNC_IN_PROGRESS: "ResyncInProgress",
  IN_SYNC: "InSync",
} as const;
export type SyncStatus = (typeof SyncStatus)[keyof typeof SyncStatus];

export interface SyncerCallbacks {
  /** One batch of updates; called synchronously from datastore callbacks, never concurrently. */
  onUpdates(updates: KVUpdate[]): void;
  /** Called on every status change (not repeated for the same status). */
  onStatus(status: SyncStatus): void;
}

export interface SyncerOptions {
  prefixes?: readonly string[];
  log?: Logger;
  /** Back-off between attempts while the datastore fails: doubles from `initialMs` to `maxMs`. */
  backoff?: { initialMs: number; maxMs: number };
}

const DEFAULT_BACKOFF = { initialMs: 100, maxMs: 5_000 };
/** Updates per batch when a listing is delivered. */
const LIST_BATCH = 500;

/** Parse a stored value; unparsable text becomes null (absent), with a warning. */
export function parseValue(key: string, text: string, log: Logger): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    log.warn("Ignoring unparsable datastore value (treated as absent)", { key, error: err });
    return null;
  }
}

/** One prefix's list-then-watch state. */
class PrefixSync {
  /** key → modRevision of what we last emitted as present. */
  readonly known = new Map<string, number>();
  /** The revision we have seen everything up to; 0 before the first listing. */
  revision = 0;
  listed = false;
  watching = false;
  watch: Watch | undefined;
  /** Bumped whenever the watch is replaced, so a stale callback is ignored. */
  generation = 0;
  failures = 0;
  timer: NodeJS.Timeout | undefined;
  /** Re-list (rather than re-watch) on the next attempt. */
  needList = true;

  constructor(readonly prefix: string) {}
}

export class Syncer {
  private readonly prefixes: PrefixSync[];
  private readonly log: Logger;
  private readonly backoff: { initialMs: number; maxMs: number };
  private status: SyncStatus | undefined;
  private stopped = false;
  private started = false;
  /** Counts re-lists after the first (for metrics). */
  resyncs = 0;

  constructor(
    private readonly datastore: Datastore,
    private readonly callbacks: SyncerCallbacks,
    opts: SyncerOptions = {},
  ) {
    this.prefixes = (opts.prefixes ?? AGENT_SYNC_PREFIXES).map((p) => new PrefixSync(p));
    this.log = (opts.log ?? nullLogger()).child({ component: "syncer" });
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
  }

  get currentStatus(): SyncStatus {
    return this.status ?? SyncStatus.WAIT_FOR_DATASTORE;
  }

  /**
   * The highest datastore revision delivered so far (over all prefixes). Within a prefix,
   * events arrive in order, so every write to a prefix up to this revision has been delivered
   * once a write to that prefix at this revision has.
   */
  get deliveredRevision(): number {
    let r = 0;
    for (const p of this.prefixes) r = Math.max(r, p.revision);
    return r;
  }

  /** Number of keys currently known present (for metrics and tests). */
  get size(): number {
    let n = 0;
    for (const p of this.prefixes) n += p.known.size;
    return n;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.setStatus(SyncStatus.WAIT_FOR_DATASTORE);
    for (const p of this.prefixes) void this.attempt(p);
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.prefixes) {
      clearTimeout(p.timer);
      p.generation++;
      p.watch?.close();
      p.watch = undefined;
    }
  }

  private setStatus(s: SyncStatus): void {
    if (this.stopped || this.status === s) return;
    this.status = s;
    this.log.info("Sync status changed", { status: s });
    this.callbacks.onStatus(s);
  }

  private updateStatus(): void {
    if (this.prefixes.every((p) => p.listed && p.watching)) this.setStatus(SyncStatus.IN_SYNC);
    else if (this.prefixes.some((p) => p.listed)) this.setStatus(SyncStatus.RESYNC_IN_PROGRESS);
  }

  private async attempt(p: PrefixSync): Promise<void> {
    if (this.stopped) return;
    if (p.needList) {
      try {
        await this.relist(p);
      } catch (err) {
        this.fail(p, err, "list");
        return;
      }
    }
    this.startWatch(p);
  }

  private async relist(p: PrefixSync): Promise<void> {
    const { items, revision } = await this.datastore.list(p.prefix);
    if (this.stopped) return;
    const first = !p.listed;
    if (!first) this.resyncs++;
    // Emitted before our state moves: a consumer that throws gets the differences again on
    // the next attempt (a replay of what it already took, which consumers tolerate). In batches
    // of LIST_BATCH: parsed values of a 12,000-key listing held all at once, beside the raw
    // text and the calculation being built, made the agent's heap peak (and stay) larger.
    let batch: KVUpdate[] = [];
    let emitted = 0;
    const emit = (): void => {
      this.callbacks.onUpdates(batch);
      emitted += batch.length;
      batch = [];
    };
    const seen = new Set<string>();
    for (const kv of items) {
      seen.add(kv.key);
      if (p.known.get(kv.key) === kv.modRevision) continue; // unchanged since we emitted it
      batch.push({ key: kv.key, value: parseValue(kv.key, kv.value, this.log) });
      if (batch.length >= LIST_BATCH) emit();
    }
    for (const key of p.known.keys()) if (!seen.has(key)) batch.push({ key, value: null });
    // A re-list that finds nothing changed still reports a batch (empty) when it moves the
    // delivered revision, so a consumer that records the revision it covers (the agent's
    // appliedRevision) catches up with it.
    const advances = revision > p.revision && !first;
    if (batch.length > 0 || (emitted === 0 && advances)) emit();
    this.log.info(first ? "Listed" : "Re-listed", {
      prefix: p.prefix,
      revision,
      keys: items.length,
      updates: emitted,
    });
    for (const kv of items) p.known.set(kv.key, kv.modRevision);
    for (const key of [...p.known.keys()]) if (!seen.has(key)) p.known.delete(key);
    p.revision = revision;
    p.listed = true;
    p.needList = false;
    this.updateStatus();
  }

  private startWatch(p: PrefixSync): void {
    const gen = ++p.generation;
    try {
      p.watch = this.datastore.watch(p.prefix, p.revision, {
        onEvents: (events) => {
          if (gen !== p.generation || this.stopped) return;
          this.onEvents(p, events);
        },
        onError: (err) => {
          if (gen !== p.generation || this.stopped) return;
          p.generation++;
          p.watch = undefined;
          this.fail(p, err, "watch");
        },
      });
    } catch (err) {
      this.fail(p, err, "watch");
      return;
    }
    p.watching = true;
    // A healthy watch resets the back-off once it has delivered or survived a while; resetting
    // here is enough because a failing store fails the list or the watch start again.
    p.failures = 0;
    this.updateStatus();
  }

  /**
   * A watch batch. Our state (known keys, revision) moves only once the consumer has taken the
   * batch: if it throws, the watch ends with that error and resumes from before the batch, so
   * the batch is delivered again rather than skipped.
   */
  private onEvents(p: PrefixSync, events: WatchEvent[]): void {
    const updates: KVUpdate[] = [];
    for (const e of events) {
      if (e.type === "put") {
        updates.push({ key: e.kv.key, value: parseValue(e.kv.key, e.kv.value, this.log) });
      } else {
        updates.push({ key: e.key, value: null });
      }
    }
    if (updates.length > 0) this.callbacks.onUpdates(updates);
    for (const e of events) {
      if (e.type === "put") {
        p.known.set(e.kv.key, e.kv.modRevision);
        p.revision = Math.max(p.revision, e.kv.modRevision);
      } else {
        p.known.delete(e.key);
        p.revision = Math.max(p.revision, e.revision);
      }
    }
  }

  private fail(p: PrefixSync, err: unknown, what: "list" | "watch"): void {
    if (this.stopped) return;
    p.watching = false;
    p.watch?.close();
    p.watch = undefined;
    // Compacted: our revision is gone, only a re-list can tell us what we missed. Any other
    // error (store down, stream cut): try to resume from our revision; if the outage was
    // long enough for a compaction, that attempt fails "too old" and we re-list then.
    if (isCompacted(err) || !p.listed) p.needList = true;
    p.failures++;
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(p.failures - 1, 20));
    this.log.warn(`Datastore ${what} failed; retrying`, {
      prefix: p.prefix,
      error: err,
      relist: p.needList,
      retryInMs: delay,
    });
    if (this.status === SyncStatus.IN_SYNC) {
      this.setStatus(p.needList ? SyncStatus.RESYNC_IN_PROGRESS : SyncStatus.WAIT_FOR_DATASTORE);
    }
    if (!p.listed) this.setStatus(SyncStatus.WAIT_FOR_DATASTORE);
    clearTimeout(p.timer);
    p.timer = setTimeout(() => void this.attempt(p), delay);
  }
}
