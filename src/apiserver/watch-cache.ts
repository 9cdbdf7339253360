/**
 * The one in-memory cache every watcher of the API server is served from (Calico Typha's role,
 * reference/calico.md §1.8): ONE datastore watch on the key root (`/calico/`) feeds
 *
 * - the current state (key → KV) and the cache revision, and
 * - a bounded ring of recent events (count and bytes), so a watcher resuming from a recent
 *   revision gets exactly the missed deltas, and one from an older revision fails
 *   `DATASTORE_REVISION_COMPACTED` and re-lists.
 *
 * Invariants (docs/apiserver.md):
 * 1. Events reach subscribers in revision order, each once, none missing: a subscriber is
 *    registered and handed its replay in one synchronous step, so nothing falls between.
 * 2. The datastore watch may fail: it is resumed from the cache revision (exact deltas). Only
 *    if that history is gone (compacted) does the cache re-list and emit the difference between
 *    its state and the listing as events (puts at their modRevision, deletes at the listing's
 *    revision); the ring is then reset, so resumes from before the re-list fail compacted.
 * 3. `watch()`/`revision()` have Datastore semantics (types.ts), so the cache can stand in for a
 *    datastore as a watch source.
 */
import type { Datastore, KV, Watch, WatchEvent, WatchHandlers } from "../datastore/types.js";
import { DatastoreError, DatastoreErrorCode, isClosed, isCompacted } from "../datastore/types.js";
import { checkRevision, compareKeys } from "../datastore/key-range.js";

export const eventRevision = (e: WatchEvent): number => (e.type === "put" ? e.kv.modRevision : e.revision);
export const eventKey = (e: WatchEvent): string => (e.type === "put" ? e.kv.key : e.key);
const eventBytes = (e: WatchEvent): number =>
  64 +
  eventKey(e).length * 2 +
  (e.type === "put" ? e.kv.value.length * 2 : 0) +
  (e.prev?.value.length ?? 0) * 2;

export interface WatchCacheOptions {
  /** The key root the cache mirrors (default `/calico/`). */
  root?: string;
  /** Ring size: events kept for resuming watchers (default 10,000). */
  historyEvents?: number;
  /** Ring size in (approximate) bytes (default 64 MiB). */
  historyBytes?: number;
  /** Backoff bounds after a datastore failure (default 50 ms … 2 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Called for every datastore failure the cache recovers from (metrics, logs). */
  onDatastoreError?: (err: unknown) => void;
}

/** A subscriber: called synchronously with events in revision order (after its replay). */
export interface CacheListener {
  onEvents(events: readonly WatchEvent[]): void;
  /** The cache is closing: no more events. */
  onClose(err: Error): void;
}

export interface Subscription {
  /** Events the subscriber must process first: snapshot puts or the replayed deltas. */
  readonly backlog: readonly WatchEvent[];
  /** The revision the backlog brings the subscriber to (its "in sync" point). */
  readonly revision: number;
  cancel(): void;
}

interface Sub {
  prefix: string;
  cursor: number;
  listener: CacheListener;
}

export class WatchCache {
  readonly root: string;
  private readonly state = new Map<string, KV>();
  private rev = 0;
  /** Every event with revision > historyStart is in `history`. */
  private historyStart = 0;
  private history: WatchEvent[] = [];
  private historyHead = 0;
  private historyBytes = 0;
  private readonly subs = new Set<Sub>();
  private dsWatch: Watch | undefined;
  private closed = false;
  private synced = false;
  /** True once a datastore listing has been applied: before that the state is not a mirror. */
  private listedOnce = false;
  private started = false;
  private readyWaiters: (() => void)[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private readonly opts: Required<Omit<WatchCacheOptions, "onDatastoreError">> & {
    onDatastoreError: ((err: unknown) => void) | undefined;
  };

  constructor(
    private readonly store: Datastore,
    opts: WatchCacheOptions = {},
  ) {
    this.opts = {
      root: opts.root ?? "/calico/",
      historyEvents: opts.historyEvents ?? 10_000,
      historyBytes: opts.historyBytes ?? 64 * 1024 * 1024,
      retryMinMs: opts.retryMinMs ?? 50,
      retryMaxMs: opts.retryMaxMs ?? 2_000,
      onDatastoreError: opts.onDatastoreError,
    };
    this.root = this.opts.root;
    this.retryMs = this.opts.retryMinMs;
  }

  /** Start mirroring; resolves once the first listing is in (the cache is in sync). */
  start(): Promise<void> {
    if (!this.started) {
      this.started = true;
      void this.connect(true);
    }
    return this.ready();
  }

  /** True once the cache mirrors the datastore and its watch is running. */
  get inSync(): boolean {
    return this.synced && !this.closed;
  }

  /** Resolves when in sync (immediately if it is). */
  ready(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  get currentRevision(): number {
    return this.rev;
  }

  /** The oldest revision a watcher may resume from. */
  get oldestRevision(): number {
    return this.historyStart;
  }

  get size(): number {
    return this.state.size;
  }

  get watcherCount(): number {
    return this.subs.size;
  }

  /** Datastore semantics: the cache's revision. */
  revision(): Promise<number> {
    if (this.closed) return Promise.reject(this.closedError());
    return Promise.resolve(this.rev);
  }

  /** Current KVs under `prefix`, sorted by key, at the cache revision. */
  snapshot(prefix: string): { items: KV[]; revision: number } {
    const items: KV[] = [];
    for (const kv of this.state.values()) if (kv.key.startsWith(prefix)) items.push(kv);
    items.sort((a, b) => compareKeys(a.key, b.key));
    return { items, revision: this.rev };
  }

  /**
   * Register a subscriber. With `afterRevision` it is handed the deltas after it (throws
   * REVISION_COMPACTED when they are no longer in the ring); without, a snapshot of the state.
   * Live events with revision > the subscription's revision follow through the listener.
   */
  subscribe(prefix: string, afterRevision: number | undefined, listener: CacheListener): Subscription {
    if (this.closed) throw this.closedError();
    if (!this.listedOnce) {
      // An empty, unlisted state would hand out a snapshot missing everything, or accept a
      // resume whose deletes it cannot know about.
      throw new DatastoreError(
        DatastoreErrorCode.UNAVAILABLE,
        `Cannot watch "${prefix}": the API server's cache has not loaded the datastore yet; retry shortly`,
      );
    }
    let backlog: WatchEvent[];
    let cursor: number;
    if (afterRevision === undefined) {
      const snap = this.snapshot(prefix);
      backlog = snap.items.map((kv) => ({ type: "put", kv }));
      cursor = snap.revision;
    } else {
      checkRevision("watch revision", afterRevision);
      if (afterRevision < this.historyStart) {
        throw new DatastoreError(
          DatastoreErrorCode.REVISION_COMPACTED,
          `Cannot watch "${prefix}" from revision ${afterRevision}: the API server's history starts after revision ${this.historyStart}; re-list and watch from the listed revision`,
        );
      }
      backlog = [];
      for (let i = this.historyHead; i < this.history.length; i++) {
        const e = this.history[i]!;
        if (eventRevision(e) > afterRevision && eventKey(e).startsWith(prefix)) backlog.push(e);
      }
      cursor = Math.max(afterRevision, this.rev);
    }
    const sub: Sub = { prefix, cursor, listener };
    this.subs.add(sub);
    return { backlog, revision: cursor, cancel: () => this.subs.delete(sub) };
  }

  /** Datastore-semantics watch served from the cache. */
  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    let closed = false;
    let sub: Subscription | undefined;
    const w: Watch = {
      close: () => {
        closed = true;
        sub?.cancel();
      },
    };
    const fail = (err: Error) => {
      if (closed) return;
      w.close();
      try {
        handlers.onError(err);
      } catch {
        // nowhere further to report to
      }
    };
    const deliver = (events: readonly WatchEvent[]) => {
      for (let i = 0; i < events.length && !closed; i += 1000) {
        try {
          handlers.onEvents(events.slice(i, i + 1000));
        } catch (err) {
          fail(err instanceof Error ? err : new Error(String(err)));
        }
      }
    };
    const begin = () => {
      if (closed) return;
      // Live events may arrive before the backlog microtask runs: hold them until then.
      let pending: WatchEvent[] | undefined = [];
      try {
        sub = this.subscribe(prefix, afterRevision, {
          onEvents: (events) => {
            if (pending !== undefined) pending.push(...events);
            else if (!closed) deliver(events);
          },
          onClose: (err) => queueMicrotask(() => fail(err)),
        });
      } catch (err) {
        queueMicrotask(() => fail(err as Error));
        return;
      }
      const backlog = sub.backlog;
      queueMicrotask(() => {
        const all = [...backlog, ...(pending ?? [])];
        pending = undefined;
        if (all.length > 0) deliver(all);
      });
    };
    // Until the first listing is in, wait for it rather than serve from an empty state.
    if (this.listedOnce || this.closed) begin();
    else void this.ready().then(begin);
    return w;
  }

  /** A compaction went through the API server: resumes from at or below it now fail. */
  noteCompacted(revision: number): void {
    if (revision <= this.historyStart) return;
    this.historyStart = Math.min(revision, this.rev);
    while (
      this.historyHead < this.history.length &&
      eventRevision(this.history[this.historyHead]!) <= revision
    ) {
      this.historyBytes -= eventBytes(this.history[this.historyHead]!);
      this.historyHead++;
    }
    this.compactRing();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dsWatch?.close();
    this.dsWatch = undefined;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    const err = this.closedError();
    for (const s of [...this.subs]) s.listener.onClose(err);
    this.subs.clear();
    for (const r of this.readyWaiters.splice(0)) r();
  }

  private closedError(): DatastoreError {
    return new DatastoreError(DatastoreErrorCode.CLOSED, "The API server's watch cache is closed");
  }

  /** List (first time or after compaction) or resume the datastore watch from the cache revision. */
  private async connect(relist: boolean): Promise<void> {
    if (this.closed) return;
    try {
      if (relist) {
        const listing = await this.store.list(this.root);
        if (this.closed) return;
        this.applyListing(listing.items, listing.revision);
      }
      this.dsWatch = this.store.watch(this.root, this.rev, {
        onEvents: (events) => {
          this.retryMs = this.opts.retryMinMs;
          this.ingest(events);
        },
        onError: (err) => this.onWatchError(err),
      });
      this.markSynced();
    } catch (err) {
      this.onWatchError(err);
    }
  }

  private onWatchError(err: unknown): void {
    this.dsWatch?.close();
    this.dsWatch = undefined;
    if (this.closed) return;
    if (isClosed(err)) {
      this.close();
      return;
    }
    this.opts.onDatastoreError?.(err);
    // Never resume a watch without having listed: the state would miss every delete before it.
    const relist = isCompacted(err) || !this.listedOnce;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.opts.retryMaxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect(relist);
    }, delay);
    this.retryTimer.unref();
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const r of this.readyWaiters.splice(0)) r();
  }

  /** Replace the state by a listing; tell subscribers the difference (invariant 2). */
  private applyListing(items: readonly KV[], revision: number): void {
    const diff: WatchEvent[] = [];
    const seen = new Set<string>();
    for (const kv of items) {
      seen.add(kv.key);
      const old = this.state.get(kv.key);
      if (old === undefined) diff.push({ type: "put", kv });
      else if (old.modRevision !== kv.modRevision) diff.push({ type: "put", kv, prev: old });
      this.state.set(kv.key, kv);
    }
    for (const [key, old] of this.state) {
      if (!seen.has(key)) {
        diff.push({ type: "delete", key, revision, prev: old });
        this.state.delete(key);
      }
    }
    diff.sort((a, b) => eventRevision(a) - eventRevision(b));
    this.listedOnce = true;
    this.rev = Math.max(this.rev, revision);
    this.history = [];
    this.historyHead = 0;
    this.historyBytes = 0;
    this.historyStart = this.rev;
    if (diff.length > 0) this.fanOut(diff);
  }

  private ingest(events: readonly WatchEvent[]): void {
    const fresh: WatchEvent[] = [];
    // One revision may carry several events (a multi-key transaction, a prefix delete), and
    // they arrive in one batch: compare with the revision before the batch, not the running one.
    const base = this.rev;
    for (const e of events) {
      const r = eventRevision(e);
      if (r <= base) continue; // already applied (a resumed watch never repeats, but be safe)
      if (e.type === "put") this.state.set(e.kv.key, e.kv);
      else this.state.delete(e.key);
      this.rev = r;
      this.history.push(e);
      this.historyBytes += eventBytes(e);
      fresh.push(e);
    }
    this.trimRing();
    if (fresh.length > 0) this.fanOut(fresh);
  }

  private fanOut(events: readonly WatchEvent[]): void {
    for (const s of this.subs) {
      let mine: WatchEvent[] | undefined;
      for (const e of events) {
        const r = eventRevision(e);
        if (r > s.cursor && eventKey(e).startsWith(s.prefix)) (mine ??= []).push(e);
      }
      const last = eventRevision(events[events.length - 1]!);
      if (last > s.cursor) s.cursor = last;
      if (mine !== undefined) s.listener.onEvents(mine);
    }
  }

  private trimRing(): void {
    const { historyEvents, historyBytes } = this.opts;
    while (
      this.history.length - this.historyHead > historyEvents ||
      (this.historyBytes > historyBytes && this.history.length - this.historyHead > 1)
    ) {
      const e = this.history[this.historyHead++]!;
      this.historyBytes -= eventBytes(e);
      this.historyStart = eventRevision(e);
    }
    this.compactRing();
  }

  private compactRing(): void {
    if (this.historyHead > 1024 && this.historyHead * 2 > this.history.length) {
      this.history = this.history.slice(this.historyHead);
      this.historyHead = 0;
    }
  }
}
