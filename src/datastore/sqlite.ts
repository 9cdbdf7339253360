/**
 * The embedded driver: the whole datastore in one SQLite file (WAL mode) shared by every
 * process on the host — node agent, CNI plugin, calicoctl. docs/datastore.md has the design.
 *
 * - Every write is one `BEGIN IMMEDIATE` transaction: read the store revision, check the
 *   compare-and-swap condition, write the kv row, append the event row with revision + 1,
 *   store the new revision. IMMEDIATE takes the write lock before the first read, so two
 *   processes can never both read revision N and both write N + 1: no lost update.
 * - The events table holds one row per revision (until compaction), so a watch from any
 *   revision is a range scan, and a gap in it can only mean compaction.
 * - Watches in this process are pumped right after each local commit; commits by other
 *   processes are noticed through `PRAGMA data_version` (it changes only when another
 *   connection commits). While a watch is open, an inotify watch on the file's directory
 *   (a commit writes the `-wal` file) starts a short burst of polls every few milliseconds;
 *   between bursts a slow poll is the safety net. Without inotify, the fast poll runs all the
 *   time (an idle agent then polls 200 times a second).
 */
import Database from "better-sqlite3";
import { existsSync, mkdirSync, watch as watchFs, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { casError } from "./cas.js";
import type { Datastore, KV, ListResult, Watch, WatchEvent, WatchHandlers } from "./types.js";
import { DatastoreError, DatastoreErrorCode } from "./types.js";
import { checkKey, checkRevision, checkValue, prefixUpperBound } from "./key-range.js";
import { deliverWatchError, watchStartError } from "./watch-support.js";

/** Bump when the schema changes; `migrate()` upgrades older files in place. */
export const SQLITE_SCHEMA_VERSION = 1;

export interface SqliteDatastoreOptions {
  /**
   * How long SQLite itself waits for another process's write lock, per attempt (ms, default
   * 50). The wait blocks the event loop (better-sqlite3 is synchronous), so it is kept short
   * and the retries between attempts wait asynchronously.
   */
  busyTimeoutMs?: number;
  /** Attempts before a write fails as UNAVAILABLE (default 200: about 15 s in all). */
  busyRetries?: number;
  /**
   * Keep at least this many revisions of history; every 1,000 revisions the process whose
   * write crosses the mark compacts below it (default 10,000; 0 never compacts on its own).
   */
  retainRevisions?: number;
  /** How often open watches look for commits by other processes during a burst (ms, default 5). */
  pollIntervalMs?: number;
  /**
   * Between bursts, with the file watch working (ms, default 1000): the safety net for a
   * commit whose file event was missed (inotify does not miss local commits; each wake-up of
   * an idle agent takes CPU from the packets it forwards). A burst lasts `BURST_MS` after each file event.
   */
  idlePollMs?: number;
  /** Watch the directory for commits (inotify; default true). false: poll fast all the time. */
  fileWatch?: boolean;
  /**
   * `normal` (default): a commit survives a process crash; the last commits may roll back on
   * power loss, the file stays consistent. `full`: fsync on every commit.
   */
  synchronous?: "normal" | "full";
}

/**
 * Fast polls after a file event. A commit appends to the `-wal` file (the event) and then
 * publishes itself in the shared-memory index (no event), so the first poll can be too early.
 */
const BURST_MS = 50;

/** Events handed to one `onEvents` call at most; a long replay is split over several turns. */
const MAX_BATCH = 1000;
const AUTO_COMPACT_EVERY = 1000;

interface KVRow {
  key: string;
  value: string;
  create_rev: number;
  mod_rev: number;
}

interface EventRow {
  rev: number;
  key: string;
  type: "put" | "delete";
  value: string | null;
  create_rev: number | null;
  prev_value: string | null;
  prev_create_rev: number | null;
  prev_mod_rev: number | null;
}

interface MetaRow {
  schema_version: number;
  revision: number;
  compacted: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  compacted INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  rev INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('put', 'delete')),
  value TEXT,
  create_rev INTEGER,
  prev_value TEXT,
  prev_create_rev INTEGER,
  prev_mod_rev INTEGER
);
`;

const KV_COLS = "key, value, create_rev, mod_rev";
const EVENT_COLS = "rev, key, type, value, create_rev, prev_value, prev_create_rev, prev_mod_rev";

const toKV = (r: KVRow): KV => ({
  key: r.key,
  value: r.value,
  createRevision: r.create_rev,
  modRevision: r.mod_rev,
});

function toEvent(r: EventRow): WatchEvent {
  const prev: KV | undefined =
    r.prev_value !== null
      ? { key: r.key, value: r.prev_value, createRevision: r.prev_create_rev!, modRevision: r.prev_mod_rev! }
      : undefined;
  if (r.type === "put") {
    const kv: KV = { key: r.key, value: r.value!, createRevision: r.create_rev!, modRevision: r.rev };
    return prev !== undefined ? { type: "put", kv, prev } : { type: "put", kv };
  }
  return prev !== undefined
    ? { type: "delete", key: r.key, revision: r.rev, prev }
    : { type: "delete", key: r.key, revision: r.rev };
}

const sqliteCode = (err: unknown): string | undefined => {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
};

const isBusy = (err: unknown): boolean => {
  const code = sqliteCode(err);
  return code !== undefined && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A write's outcome inside the transaction: the result, or the contract error to throw. */
type Outcome<T> = { ok: T } | { err: DatastoreError };

export class SqliteDatastore implements Datastore {
  readonly url: string;
  readonly path: string;
  private readonly db: Database.Database;
  private readonly busyRetries: number;
  private readonly retainRevisions: number;
  /** The revision the last write transaction of this connection committed. */
  private lastWriteRev = 0;
  private readonly pollIntervalMs: number;
  private readonly idlePollMs: number;
  private readonly fileWatch: boolean;
  private closed = false;

  private readonly watches = new Set<SqliteWatch>();
  private pumpScheduled = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private pollTimerFast = false;
  private watcher: FSWatcher | undefined;
  private burstUntil = 0;
  private lastDataVersion = -1;

  private readonly stmt: ReturnType<SqliteDatastore["prepare"]>;
  private readonly txCreate: Database.Transaction<(key: string, value: string) => Outcome<KV>>;
  private readonly txUpdate: Database.Transaction<
    (key: string, value: string, expected: number | undefined) => Outcome<KV>
  >;
  private readonly txDelete: Database.Transaction<(key: string, expected: number | undefined) => Outcome<KV>>;
  private readonly txCompact: Database.Transaction<(rev: number, keepAfter: number) => Outcome<void>>;
  private readonly txList: Database.Transaction<(prefix: string) => ListResult>;
  private readonly txPump: Database.Transaction<(ws: SqliteWatch[]) => PumpResult[]>;

  /** Open (creating if needed) the store at `path`. Throws DATASTORE_UNAVAILABLE naming the path. */
  constructor(path: string, opts: SqliteDatastoreOptions = {}) {
    this.path = resolve(path);
    this.url = `sqlite://${this.path}`;
    this.busyRetries = opts.busyRetries ?? 200;
    this.retainRevisions = opts.retainRevisions ?? 10_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 5;
    this.idlePollMs = Math.max(this.pollIntervalMs, opts.idlePollMs ?? 1000);
    this.fileWatch = opts.fileWatch ?? true;
    const busyTimeoutMs = opts.busyTimeoutMs ?? 50;
    try {
      makeParents(dirname(this.path));
    } catch (err) {
      throw this.unavailable(`cannot create its directory "${dirname(this.path)}"`, err);
    }
    let db: Database.Database;
    try {
      db = new Database(this.path, { timeout: busyTimeoutMs });
    } catch (err) {
      throw this.unavailable("cannot open the file", err);
    }
    this.db = db;
    try {
      this.init(opts.synchronous ?? "normal");
      this.stmt = this.prepare();
    } catch (err) {
      db.close();
      if (err instanceof DatastoreError) throw err;
      throw this.unavailable(
        sqliteCode(err) === "SQLITE_NOTADB" ? "the file is not a SQLite database" : "cannot initialise it",
        err,
      );
    }

    const s = this.stmt;
    const meta = () => s.meta.get() as MetaRow;
    const append = (rev: number, e: Omit<EventRow, "rev">) =>
      s.insertEvent.run(
        rev,
        e.key,
        e.type,
        e.value,
        e.create_rev,
        e.prev_value,
        e.prev_create_rev,
        e.prev_mod_rev,
      );

    this.txCreate = db.transaction((key: string, value: string): Outcome<KV> => {
      const rev = meta().revision + 1;
      if (s.getKV.get(key) !== undefined) {
        return {
          err: new DatastoreError(
            DatastoreErrorCode.ALREADY_EXISTS,
            `Cannot create "${key}": it already exists`,
            { key },
          ),
        };
      }
      s.insertKV.run(key, value, rev, rev);
      append(rev, {
        key,
        type: "put",
        value,
        create_rev: rev,
        prev_value: null,
        prev_create_rev: null,
        prev_mod_rev: null,
      });
      s.setRevision.run(rev);
      this.lastWriteRev = rev;
      return { ok: { key, value, createRevision: rev, modRevision: rev } };
    });
    const current = (key: string, op: string, expected: number | undefined): KVRow | DatastoreError => {
      const prev = s.getKV.get(key) as KVRow | undefined;
      return casError(key, op, prev?.mod_rev, expected) ?? prev!; // undefined prev always errs
    };
    this.txUpdate = db.transaction(
      (key: string, value: string, expected: number | undefined): Outcome<KV> => {
        const prev = current(key, "update", expected);
        if (prev instanceof DatastoreError) return { err: prev };
        const rev = meta().revision + 1;
        s.updateKV.run(value, rev, key);
        append(rev, {
          key,
          type: "put",
          value,
          create_rev: prev.create_rev,
          prev_value: prev.value,
          prev_create_rev: prev.create_rev,
          prev_mod_rev: prev.mod_rev,
        });
        s.setRevision.run(rev);
        this.lastWriteRev = rev;
        return { ok: { key, value, createRevision: prev.create_rev, modRevision: rev } };
      },
    );
    this.txDelete = db.transaction((key: string, expected: number | undefined): Outcome<KV> => {
      const prev = current(key, "delete", expected);
      if (prev instanceof DatastoreError) return { err: prev };
      const rev = meta().revision + 1;
      s.deleteKV.run(key);
      append(rev, {
        key,
        type: "delete",
        value: null,
        create_rev: null,
        prev_value: prev.value,
        prev_create_rev: prev.create_rev,
        prev_mod_rev: prev.mod_rev,
      });
      s.setRevision.run(rev);
      this.lastWriteRev = rev;
      return { ok: toKV(prev) };
    });
    this.txCompact = db.transaction((rev: number, keepAfter: number): Outcome<void> => {
      const m = meta();
      if (rev > m.revision) {
        return {
          err: new DatastoreError(
            DatastoreErrorCode.INVALID_ARGUMENT,
            `Cannot compact at revision ${rev}: the store is at revision ${m.revision}`,
          ),
        };
      }
      if (rev <= m.compacted) return { ok: undefined };
      s.deleteEvents.run(Math.min(rev, keepAfter));
      s.setCompacted.run(rev);
      return { ok: undefined };
    });
    this.txList = db.transaction((prefix: string): ListResult => {
      const upper = prefixUpperBound(prefix);
      const rows = (upper === undefined ? s.listFrom.all(prefix) : s.listRange.all(prefix, upper)) as KVRow[];
      return { items: rows.map(toKV), revision: meta().revision };
    });
    this.txPump = db.transaction((ws: SqliteWatch[]): PumpResult[] => {
      const head = meta().revision;
      return ws.map((w): PumpResult => {
        if (w.cursor >= head) return { w, events: [], cursor: w.cursor, more: false };
        // One event row per revision: a missing next row can only mean compaction.
        if (s.eventExists.get(w.cursor + 1) === undefined) {
          return { w, events: [], cursor: w.cursor, more: false, compacted: meta().compacted };
        }
        const rows = (
          w.upper === undefined
            ? s.eventsFrom.all(w.cursor, head, w.prefix, MAX_BATCH)
            : s.eventsRange.all(w.cursor, head, w.prefix, w.upper, MAX_BATCH)
        ) as EventRow[];
        const more = rows.length === MAX_BATCH;
        return { w, events: rows.map(toEvent), cursor: more ? rows[rows.length - 1]!.rev : head, more };
      });
    });
  }

  private unavailable(why: string, cause: unknown): DatastoreError {
    const detail = cause instanceof Error ? `: ${cause.message}` : "";
    return new DatastoreError(
      DatastoreErrorCode.UNAVAILABLE,
      `Cannot use the sqlite datastore "${this.path}": ${why}${detail}`,
      { cause },
    );
  }

  private init(synchronous: "normal" | "full"): void {
    const db = this.db;
    // Switching to WAL needs a moment of exclusive access; another process may hold it. A
    // file already in WAL mode (the usual case) needs no lock at all.
    const mode = retrySync(() => String(db.pragma("journal_mode", { simple: true })), this.busyRetries);
    if (mode.toLowerCase() !== "wal") {
      retrySync(() => db.pragma("journal_mode = WAL"), this.busyRetries);
    }
    db.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
    // An up-to-date file needs only a read: opening must not wait for another process's
    // write lock (a CNI plugin that only reads would otherwise queue behind the agent).
    if (this.schemaVersion() === SQLITE_SCHEMA_VERSION) return;
    retrySync(
      () =>
        db
          .transaction(() => {
            db.exec(SCHEMA);
            const v = this.schemaVersion();
            if (v === undefined) {
              db.prepare(
                "INSERT INTO meta (id, schema_version, revision, compacted) VALUES (1, ?, 0, 0)",
              ).run(SQLITE_SCHEMA_VERSION);
            } else if (v > SQLITE_SCHEMA_VERSION) {
              throw new DatastoreError(
                DatastoreErrorCode.UNAVAILABLE,
                `Cannot use the sqlite datastore "${this.path}": it has schema version ${v}, this calico-ts understands up to ${SQLITE_SCHEMA_VERSION}; upgrade calico-ts`,
              );
            } else if (v < SQLITE_SCHEMA_VERSION) {
              migrate(db, v);
            }
          })
          .immediate(),
      this.busyRetries,
    );
  }

  /** The file's schema version, or undefined for a new (empty) file. */
  private schemaVersion(): number | undefined {
    const hasMeta = retrySync(
      () => this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get(),
      this.busyRetries,
    );
    if (hasMeta === undefined) return undefined;
    const v = retrySync(
      () =>
        this.db.prepare("SELECT schema_version FROM meta WHERE id = 1").pluck().get() as number | undefined,
      this.busyRetries,
    );
    return v;
  }

  private prepare() {
    const db = this.db;
    return {
      meta: db.prepare("SELECT schema_version, revision, compacted FROM meta WHERE id = 1"),
      setRevision: db.prepare("UPDATE meta SET revision = ? WHERE id = 1"),
      setCompacted: db.prepare("UPDATE meta SET compacted = ? WHERE id = 1"),
      getKV: db.prepare(`SELECT ${KV_COLS} FROM kv WHERE key = ?`),
      insertKV: db.prepare(`INSERT INTO kv (${KV_COLS}) VALUES (?, ?, ?, ?)`),
      updateKV: db.prepare("UPDATE kv SET value = ?, mod_rev = ? WHERE key = ?"),
      deleteKV: db.prepare("DELETE FROM kv WHERE key = ?"),
      listFrom: db.prepare(`SELECT ${KV_COLS} FROM kv WHERE key >= ? ORDER BY key`),
      listRange: db.prepare(`SELECT ${KV_COLS} FROM kv WHERE key >= ? AND key < ? ORDER BY key`),
      insertEvent: db.prepare(`INSERT INTO events (${EVENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      eventExists: db.prepare("SELECT 1 FROM events WHERE rev = ?"),
      eventsFrom: db.prepare(
        `SELECT ${EVENT_COLS} FROM events WHERE rev > ? AND rev <= ? AND key >= ? ORDER BY rev LIMIT ?`,
      ),
      eventsRange: db.prepare(
        `SELECT ${EVENT_COLS} FROM events WHERE rev > ? AND rev <= ? AND key >= ? AND key < ? ORDER BY rev LIMIT ?`,
      ),
      deleteEvents: db.prepare("DELETE FROM events WHERE rev <= ?"),
      dataVersion: db.prepare("PRAGMA data_version").pluck(),
    };
  }

  get(key: string): Promise<KV | undefined> {
    return this.read(() => {
      checkKey(key);
      const row = this.stmt.getKV.get(key) as KVRow | undefined;
      return row === undefined ? undefined : toKV(row);
    });
  }

  list(prefix: string): Promise<ListResult> {
    return this.read(() => this.txList(prefix));
  }

  create(key: string, value: string): Promise<KV> {
    return this.write(
      () => {
        checkKey(key);
        checkValue(key, value);
      },
      () => this.txCreate.immediate(key, value),
    );
  }

  update(key: string, value: string, expectedRevision?: number): Promise<KV> {
    return this.write(
      () => {
        checkKey(key);
        checkValue(key, value);
        if (expectedRevision !== undefined) checkRevision("expected revision", expectedRevision);
      },
      () => this.txUpdate.immediate(key, value, expectedRevision),
    );
  }

  delete(key: string, expectedRevision?: number): Promise<KV> {
    return this.write(
      () => {
        checkKey(key);
        if (expectedRevision !== undefined) checkRevision("expected revision", expectedRevision);
      },
      () => this.txDelete.immediate(key, expectedRevision),
    );
  }

  revision(): Promise<number> {
    return this.read(() => (this.stmt.meta.get() as MetaRow).revision);
  }

  compact(revision: number): Promise<void> {
    return this.write(
      () => checkRevision("compaction revision", revision),
      () => {
        // Keep the rows this instance's own open watches still have to deliver; watches in
        // other processes that fall behind the compaction end with REVISION_COMPACTED.
        let keepAfter = revision;
        for (const w of this.watches) keepAfter = Math.min(keepAfter, w.cursor);
        return this.txCompact.immediate(revision, keepAfter);
      },
    );
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    const w = new SqliteWatch(prefix, afterRevision, handlers, (x) => this.removeWatch(x));
    const startError = watchStartError(this.closed, this.url, prefix, afterRevision);
    if (startError !== undefined) {
      w.fail(startError);
      return w;
    }
    let compacted: number;
    try {
      compacted = retrySync(() => (this.stmt.meta.get() as MetaRow).compacted, this.busyRetries);
    } catch (err) {
      w.fail(err instanceof DatastoreError ? err : this.unavailable("cannot read it", err));
      return w;
    }
    if (afterRevision < compacted) {
      w.fail(compactedError(prefix, afterRevision, compacted));
      return w;
    }
    this.watches.add(w);
    if (this.pollTimer === undefined) {
      this.lastDataVersion = this.stmt.dataVersion.get() as number;
      this.startFileWatch();
      this.schedulePoll();
    }
    this.kick();
    return w;
  }

  /** Commits by other processes write the `-wal` file next to ours: each one starts a burst. */
  private startFileWatch(): void {
    if (!this.fileWatch || this.watcher !== undefined) return;
    const base = basename(this.path);
    try {
      this.watcher = watchFs(dirname(this.path), { persistent: false }, (_ev, name) => {
        if (name === null || name.startsWith(base)) this.onFileEvent();
      });
      // An error (the directory removed, inotify limits) falls back to fast polling.
      this.watcher.on("error", () => this.stopFileWatch());
    } catch {
      this.watcher = undefined; // no inotify here: poll fast
    }
  }

  private stopFileWatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private onFileEvent(): void {
    if (this.closed || this.watches.size === 0) return;
    this.burstUntil = Date.now() + BURST_MS;
    this.poll();
    if (!this.pollTimerFast) this.schedulePoll();
  }

  /** The next poll: fast during a burst or without a file watch, slow otherwise. */
  private schedulePoll(): void {
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    const fast = this.watcher === undefined || Date.now() < this.burstUntil;
    this.pollTimerFast = fast;
    this.pollTimer = setTimeout(
      () => {
        this.pollTimer = undefined;
        if (this.closed || this.watches.size === 0) return;
        this.poll();
        this.schedulePoll();
      },
      fast ? this.pollIntervalMs : this.idlePollMs,
    );
    this.pollTimer.unref();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.stopPolling();
    const err = new DatastoreError(DatastoreErrorCode.CLOSED, `Datastore ${this.url} was closed`);
    for (const w of [...this.watches]) w.fail(err, true);
    this.watches.clear();
    this.db.close();
    return Promise.resolve();
  }

  private removeWatch(w: SqliteWatch): void {
    this.watches.delete(w);
    if (this.watches.size === 0) this.stopPolling();
  }

  private stopPolling(): void {
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.stopFileWatch();
  }

  private closedError(): DatastoreError {
    return new DatastoreError(DatastoreErrorCode.CLOSED, `Datastore ${this.url} is closed`);
  }

  private async read<T>(fn: () => T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw this.closedError();
      try {
        return fn();
      } catch (err) {
        if (err instanceof DatastoreError) throw err;
        if (!isBusy(err) || attempt >= this.busyRetries) throw this.unavailable("cannot read it", err);
      }
      await sleep(backoff(attempt));
    }
  }

  private async write<T>(check: () => void, tx: () => Outcome<T>): Promise<T> {
    check();
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw this.closedError();
      let out: Outcome<T>;
      try {
        out = tx();
      } catch (err) {
        if (!isBusy(err) || attempt >= this.busyRetries) {
          throw this.unavailable(
            isBusy(err) ? "another process holds the write lock for too long" : "cannot write it",
            err,
          );
        }
        await sleep(backoff(attempt));
        continue;
      }
      if ("err" in out) throw out.err;
      this.kick();
      this.autoCompact();
      return out.ok;
    }
  }

  /** Bound the event log: compact below `retainRevisions` each time a write crosses a 1,000 mark. */
  private autoCompact(): void {
    const rev = this.lastWriteRev;
    if (this.retainRevisions <= 0 || rev % AUTO_COMPACT_EVERY !== 0 || rev <= this.retainRevisions) return;
    this.lastWriteRev = 0; // once per mark
    // Best effort: a failure here (e.g. the store closing) is retried at the next mark.
    this.compact(rev - this.retainRevisions).catch(() => {});
  }

  /** Pump this process's watches soon (never inside the caller's turn). */
  private kick(): void {
    if (this.pumpScheduled || this.watches.size === 0 || this.closed) return;
    this.pumpScheduled = true;
    queueMicrotask(() => this.pump());
  }

  private poll(): void {
    if (this.closed || this.pumpScheduled) return;
    let v: number;
    try {
      v = this.stmt.dataVersion.get() as number;
    } catch {
      return; // a transient error; the next tick tries again
    }
    if (v !== this.lastDataVersion) {
      this.lastDataVersion = v;
      this.kick();
    }
  }

  private pump(): void {
    this.pumpScheduled = false;
    if (this.closed || this.watches.size === 0) return;
    let results: PumpResult[];
    try {
      results = this.txPump([...this.watches]);
    } catch (err) {
      if (isBusy(err)) {
        // Rare in WAL mode (readers do not wait for writers); try again shortly.
        this.pumpScheduled = true;
        setTimeout(() => this.pump(), this.pollIntervalMs).unref();
        return;
      }
      const e = this.unavailable("cannot read its event log", err);
      for (const w of [...this.watches]) w.fail(e, true);
      return;
    }
    let more = false;
    for (const r of results) {
      if (r.compacted !== undefined) {
        r.w.fail(compactedError(r.w.prefix, r.w.cursor, r.compacted), true);
        continue;
      }
      r.w.cursor = r.cursor;
      if (r.more) more = true;
      if (r.events.length > 0) r.w.deliver(r.events);
    }
    if (more && !this.pumpScheduled) {
      // A long replay: hand over the rest on a later turn so other work can run.
      this.pumpScheduled = true;
      setImmediate(() => this.pump());
    }
  }
}

interface PumpResult {
  w: SqliteWatch;
  events: WatchEvent[];
  cursor: number;
  more: boolean;
  compacted?: number;
}

class SqliteWatch implements Watch {
  /** Every event with revision <= cursor has been delivered (or skipped as not matching). */
  cursor: number;
  readonly upper: string | undefined;
  private closed = false;

  constructor(
    readonly prefix: string,
    afterRevision: number,
    private readonly handlers: WatchHandlers,
    private readonly onClose: (w: SqliteWatch) => void,
  ) {
    this.cursor = afterRevision;
    this.upper = prefixUpperBound(prefix);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
  }

  deliver(events: WatchEvent[]): void {
    if (this.closed) return;
    try {
      this.handlers.onEvents(events);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)), true);
    }
  }

  /** End the watch with an error, delivered asynchronously unless `now`. */
  fail(err: Error, now = false): void {
    if (this.closed) return;
    this.close();
    deliverWatchError(this.handlers, err, now);
  }
}

function compactedError(prefix: string, afterRevision: number, compacted: number): DatastoreError {
  return new DatastoreError(
    DatastoreErrorCode.REVISION_COMPACTED,
    `Cannot watch "${prefix}" from revision ${afterRevision}: history up to revision ${compacted} was compacted; re-list and watch from the listed revision`,
  );
}

/** Short randomised waits: contending processes should not retry in lock step. */
const backoff = (attempt: number): number => Math.min(50, 1 + attempt * 2) * (0.5 + Math.random());

/** Synchronous retry for open-time steps (SQLite's busy handler already waits each time). */
function retrySync<T>(fn: () => T, retries: number): T {
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || attempt >= retries) throw err;
    }
  }
}

/**
 * `mkdir -p`, one level at a time: Node 20's `mkdirSync(p, { recursive: true })` never returns
 * for some paths it cannot create (e.g. under /proc), and a daemon must fail, not hang.
 */
function makeParents(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    missing.push(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (err) {
      // Another process may have created it in the meantime.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

/** Upgrade a file written by an older calico-ts, inside the open transaction. */
function migrate(db: Database.Database, from: number): void {
  // Schema 1 is the first; later versions add steps here (`if (from < 2) { ... }`).
  db.prepare("UPDATE meta SET schema_version = ? WHERE id = 1").run(Math.max(from, SQLITE_SCHEMA_VERSION));
}
