/**
 * The in-memory driver: the reference semantics of the datastore contract (types.ts), used by
 * unit tests everywhere. Everything lives in one process; `memory://<name>` stores are shared
 * by every handle opened with that name in the process, `memory:` stores are private.
 *
 * History: every write appends one event (its revision is the index + first revision), so a
 * watch from any revision above the compaction point replays exactly the missed events.
 * Watch handlers are always called asynchronously (a microtask after the write), never from
 * inside the write call, so a handler that writes to the store cannot re-enter it.
 */
import { casError } from "./cas.js";
import type { Datastore, KV, ListResult, Watch, WatchEvent, WatchHandlers } from "./types.js";
import { DatastoreError, DatastoreErrorCode } from "./types.js";
import { checkKey, checkRevision, checkValue, compareKeys } from "./key-range.js";
import { deliverWatchError, watchStartError } from "./watch-support.js";

/** Events handed to one `onEvents` call at most; a long replay is split over several turns. */
const MAX_BATCH = 1000;

interface MemoryCore {
  readonly data: Map<string, KV>;
  revision: number;
  /** History at or below this revision is gone for new watches. */
  compacted: number;
  /** history[i] has revision firstRev + i. */
  history: WatchEvent[];
  firstRev: number;
  readonly watches: Set<MemoryWatch>;
}

const newCore = (): MemoryCore => ({
  data: new Map(),
  revision: 0,
  compacted: 0,
  history: [],
  firstRev: 1,
  watches: new Set(),
});

const namedCores = new Map<string, MemoryCore>();

export const eventRevision = (e: WatchEvent): number => (e.type === "put" ? e.kv.modRevision : e.revision);
export const eventKey = (e: WatchEvent): string => (e.type === "put" ? e.kv.key : e.key);

export interface MemoryDatastoreOptions {
  /** Share the store with every handle of this name in the process (`memory://<name>`). */
  name?: string;
}

export class MemoryDatastore implements Datastore {
  readonly url: string;
  private readonly core: MemoryCore;
  private readonly own = new Set<MemoryWatch>();
  private closed = false;

  constructor(opts: MemoryDatastoreOptions = {}) {
    if (opts.name !== undefined && opts.name !== "") {
      let core = namedCores.get(opts.name);
      if (core === undefined) {
        core = newCore();
        namedCores.set(opts.name, core);
      }
      this.core = core;
      this.url = `memory://${opts.name}`;
    } else {
      this.core = newCore();
      this.url = "memory:";
    }
  }

  /** Forget a named store (its data is dropped once no handle refers to it). For tests. */
  static forget(name: string): void {
    namedCores.delete(name);
  }

  get(key: string): Promise<KV | undefined> {
    return this.run(() => {
      checkKey(key);
      return this.core.data.get(key);
    });
  }

  list(prefix: string): Promise<ListResult> {
    return this.run(() => {
      const items: KV[] = [];
      for (const kv of this.core.data.values()) if (kv.key.startsWith(prefix)) items.push(kv);
      items.sort((a, b) => compareKeys(a.key, b.key));
      return { items, revision: this.core.revision };
    });
  }

  create(key: string, value: string): Promise<KV> {
    return this.run(() => {
      checkKey(key);
      checkValue(key, value);
      if (this.core.data.has(key)) {
        throw new DatastoreError(
          DatastoreErrorCode.ALREADY_EXISTS,
          `Cannot create "${key}": it already exists`,
          { key },
        );
      }
      const rev = this.core.revision + 1;
      const kv = freezeKV({ key, value, createRevision: rev, modRevision: rev });
      this.commit(Object.freeze({ type: "put", kv }));
      return kv;
    });
  }

  update(key: string, value: string, expectedRevision?: number): Promise<KV> {
    return this.run(() => {
      checkKey(key);
      checkValue(key, value);
      const prev = this.current(key, "update", expectedRevision);
      const rev = this.core.revision + 1;
      const kv = freezeKV({ key, value, createRevision: prev.createRevision, modRevision: rev });
      this.commit(Object.freeze({ type: "put", kv, prev }));
      return kv;
    });
  }

  delete(key: string, expectedRevision?: number): Promise<KV> {
    return this.run(() => {
      checkKey(key);
      const prev = this.current(key, "delete", expectedRevision);
      this.commit(Object.freeze({ type: "delete", key, revision: this.core.revision + 1, prev }));
      return prev;
    });
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    const w = new MemoryWatch(this.core, prefix, afterRevision, handlers, (x) => this.own.delete(x));
    const startError = watchStartError(this.closed, this.url, prefix, afterRevision);
    if (startError !== undefined) {
      w.fail(startError);
      return w;
    }
    if (afterRevision < this.core.compacted) {
      w.fail(compactedError(prefix, afterRevision, this.core.compacted));
      return w;
    }
    this.core.watches.add(w);
    this.own.add(w);
    w.schedule();
    return w;
  }

  revision(): Promise<number> {
    return this.run(() => this.core.revision);
  }

  compact(revision: number): Promise<void> {
    return this.run(() => {
      checkRevision("compaction revision", revision);
      if (revision > this.core.revision) {
        throw new DatastoreError(
          DatastoreErrorCode.INVALID_ARGUMENT,
          `Cannot compact at revision ${revision}: the store is at revision ${this.core.revision}`,
        );
      }
      if (revision <= this.core.compacted) return;
      this.core.compacted = revision;
      trimHistory(this.core);
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const err = new DatastoreError(DatastoreErrorCode.CLOSED, `Datastore ${this.url} was closed`);
    for (const w of [...this.own]) w.fail(err, true);
    return Promise.resolve();
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- turns throws into rejections
  private async run<T>(fn: () => T): Promise<T> {
    if (this.closed) throw new DatastoreError(DatastoreErrorCode.CLOSED, `Datastore ${this.url} is closed`);
    return fn();
  }

  private current(key: string, op: string, expectedRevision: number | undefined): KV {
    if (expectedRevision !== undefined) checkRevision("expected revision", expectedRevision);
    const prev = this.core.data.get(key);
    const err = casError(key, op, prev?.modRevision, expectedRevision);
    if (err !== undefined) throw err;
    return prev!; // casError returns an error whenever prev is undefined
  }

  private commit(event: WatchEvent): void {
    const core = this.core;
    core.revision += 1;
    if (event.type === "put") core.data.set(event.kv.key, event.kv);
    else core.data.delete(event.key);
    core.history.push(event);
    for (const w of core.watches) w.schedule();
  }
}

function freezeKV(kv: KV): KV {
  return Object.freeze(kv);
}

function compactedError(prefix: string, afterRevision: number, compacted: number): DatastoreError {
  return new DatastoreError(
    DatastoreErrorCode.REVISION_COMPACTED,
    `Cannot watch "${prefix}" from revision ${afterRevision}: history up to revision ${compacted} was compacted; re-list and watch from the listed revision`,
  );
}

/** Drop events no one can ask for any more: at or below the compaction point and every open watch's cursor. */
function trimHistory(core: MemoryCore): void {
  let keepAfter = core.compacted;
  for (const w of core.watches) keepAfter = Math.min(keepAfter, w.cursor);
  const drop = keepAfter - (core.firstRev - 1);
  if (drop <= 0) return;
  // Splice in one go; cheap relative to the writes that built the history.
  core.history = core.history.slice(drop);
  core.firstRev += drop;
}

class MemoryWatch implements Watch {
  /** Every event with revision <= cursor has been delivered (or skipped as not matching). */
  cursor: number;
  private closed = false;
  private scheduled = false;

  constructor(
    private readonly core: MemoryCore,
    private readonly prefix: string,
    afterRevision: number,
    private readonly handlers: WatchHandlers,
    private readonly onClose: (w: MemoryWatch) => void,
  ) {
    this.cursor = afterRevision;
  }

  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.core.watches.delete(this);
    this.onClose(this);
    if (this.core.compacted >= this.core.firstRev) trimHistory(this.core);
  }

  /** End the watch with an error, delivered asynchronously unless `now`. */
  fail(err: Error, now = false): void {
    if (this.closed) return;
    this.close();
    deliverWatchError(this.handlers, err, now);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.closed) return;
    const core = this.core;
    if (this.cursor >= core.revision) return;
    if (this.cursor < core.firstRev - 1) {
      this.fail(compactedError(this.prefix, this.cursor, core.compacted), true);
      return;
    }
    const events: WatchEvent[] = [];
    let i = this.cursor + 1 - core.firstRev;
    for (; i < core.history.length && events.length < MAX_BATCH; i++) {
      const e = core.history[i]!;
      if (eventKey(e).startsWith(this.prefix)) events.push(e);
    }
    this.cursor = core.firstRev + i - 1;
    if (this.cursor < core.revision) {
      // A long replay: hand over the rest on a later turn so other work can run.
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    if (core.compacted >= core.firstRev) trimHistory(core);
    if (events.length === 0) return;
    try {
      this.handlers.onEvents(events);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)), true);
    }
  }
}
