/**
 * The etcd v3 driver: the datastore contract (types.ts) on etcd, the engine Calico itself uses
 * for real clusters. docs/datastore.md ("The etcd driver") has the design; in short:
 *
 * - Revisions are etcd's: a KV's `modRevision`/`createRevision` are etcd's mod/create
 *   revisions, the store revision is the response header's revision. etcd's revision is
 *   cluster-wide (every write by anyone bumps it) and starts at 1 for an empty cluster.
 * - `create` is `txn(create_revision(key) == 0 → put)`; `update`/`delete` are
 *   `txn(create_revision(key) > 0 [∧ mod_revision(key) == expected] → put/delete)`, whose
 *   else-branch reads the key, so "not found" and "conflict" are told apart without a race.
 * - `list` pages through the prefix at one pinned revision, so the listing is a consistent
 *   snapshot at the revision it reports.
 * - Each `watch` is its own gRPC watch stream (start_revision = cursor + 1, prev_kv, fragment).
 *   The cursor moves only when a whole watch response has been handed to the handler; when
 *   the stream breaks (etcd restarted, connection lost) it is re-created from cursor + 1 and
 *   events at or below the cursor are dropped: no gap, no duplicate. A compacted start
 *   revision ends the watch with REVISION_COMPACTED.
 *
 * No gRPC error escapes as an exception or an unhandled rejection: every call is awaited and
 * mapped to a DatastoreError, every stream has error listeners.
 */
import { readFileSync } from "node:fs";
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  type IDuplexStream,
  type IEvent,
  type IKeyValue,
  type IOptions,
  type IWatchRequest,
  type IWatchResponse,
} from "etcd3";
import type { Datastore, KV, ListResult, Watch, WatchEvent, WatchHandlers } from "./types.js";
import { DatastoreError, DatastoreErrorCode } from "./types.js";
import { checkKey, checkRevision, checkValue } from "./key-range.js";
import { deliverWatchError, watchStartError } from "./watch-support.js";

/** Events handed to one `onEvents` call at most. */
const MAX_BATCH = 1000;
/** Keys fetched per range request when listing (one pinned revision across pages). */
const LIST_PAGE = 1000;

export interface EtcdTlsOptions {
  /** PEM of the CA that signed etcd's server certificate (default: the system roots). */
  ca?: Buffer;
  /** PEM client certificate and key, for etcd's --client-cert-auth. */
  cert?: Buffer;
  key?: Buffer;
}

export interface EtcdDatastoreOptions {
  /** `host:port` of each etcd member. */
  endpoints: string[];
  /** Use TLS (https) to every endpoint. */
  tls?: EtcdTlsOptions;
  /** etcd user/password auth. */
  auth?: { username: string; password: string };
  /** Deadline of each unary call (ms, default 10,000). */
  callTimeoutMs?: number;
  /** Watch reconnection back-off: first and largest delay (ms, default 50 and 2,000). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /**
   * A watch that cannot re-establish its stream for this long ends with UNAVAILABLE (ms,
   * default 30,000); the caller resumes from its last revision or re-lists.
   */
  watchGiveUpMs?: number;
  /** The URL to report as `url` (defaults to one built from the endpoints, without password). */
  url?: string;
}

const utf8 = (b: Buffer | undefined | null): string =>
  b === undefined || b === null ? "" : b.toString("utf8");
const bytes = (s: string): Buffer => Buffer.from(s, "utf8");

type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/** A policy that just runs the call: retries are decided here, not in etcd3. */
const passThrough = {
  execute: <T>(fn: (ctx: unknown) => T | Promise<T>): Promise<T> =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 0 })),
} as unknown as Policy;

/** gRPC's words for a call that never reached the server: safe to send again, even a write. */
const isNeverSent = (err: unknown) =>
  /No connection established|Failed to connect|ECONNREFUSED|is marked down/i.test(msgOf(err));

/**
 * Per-endpoint failover: an endpoint whose connection failed is skipped for `DOWN_MS` (etcd3's
 * pool then picks another one), unless every endpoint is down, when all are tried again. Unlike
 * etcd3's default circuit breaker, a single endpoint is never locked out, so a restarted etcd
 * is used again at once.
 */
const DOWN_MS = 1_000;
class Endpoints {
  private readonly downUntil = new Map<string, number>();
  constructor(private readonly hosts: readonly string[]) {}

  policy(host: string): Policy {
    return {
      execute: <T>(fn: (ctx: unknown) => T | Promise<T>): Promise<T> => {
        const now = Date.now();
        if (
          (this.downUntil.get(host) ?? 0) > now &&
          this.hosts.some((h) => (this.downUntil.get(h) ?? 0) <= now)
        ) {
          return Promise.reject(new Error(`etcd endpoint ${host} is marked down`));
        }
        return Promise.resolve()
          .then(() => fn({ signal: new AbortController().signal, attempt: 0 }))
          .then(
            (v) => {
              this.downUntil.delete(host);
              return v;
            },
            (err: unknown) => {
              if (isNeverSent(err) || /UNAVAILABLE/.test(msgOf(err)))
                this.downUntil.set(host, Date.now() + DOWN_MS);
              throw err;
            },
          );
      },
    } as unknown as Policy;
  }
}

/** The end of etcd's key range for all keys starting with `prefix` (etcd's prefix-end rule). */
export function etcdPrefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key from `prefix` on
}

const toKV = (kv: IKeyValue): KV => ({
  key: utf8(kv.key),
  value: utf8(kv.value),
  createRevision: Number(kv.create_revision),
  modRevision: Number(kv.mod_revision),
});

function toEvent(e: IEvent): WatchEvent {
  const prev =
    e.prev_kv !== null && e.prev_kv !== undefined && e.prev_kv.key?.length ? toKV(e.prev_kv) : undefined;
  if (e.type === "Put") {
    const kv = toKV(e.kv);
    return prev !== undefined ? { type: "put", kv, prev } : { type: "put", kv };
  }
  const key = utf8(e.kv.key);
  const revision = Number(e.kv.mod_revision);
  return prev !== undefined ? { type: "delete", key, revision, prev } : { type: "delete", key, revision };
}

const revOf = (e: WatchEvent): number => (e.type === "put" ? e.kv.modRevision : e.revision);

const msgOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

// etcd reports these two as gRPC OUT_OF_RANGE with fixed texts (etcd api/v3rpc/rpctypes); the
// etcd3 library has no classes for them, so the translation matches the text here, once.
const isCompactedMsg = (err: unknown) => /required revision has been compacted/.test(msgOf(err));
const isFutureRevMsg = (err: unknown) => /required revision is a future revision/.test(msgOf(err));
/** Failures no retry will cure: wrong credentials, missing permission, a refused certificate. */
const isPermanent = (err: unknown) =>
  err instanceof EtcdAuthenticationFailedError ||
  err instanceof EtcdPermissionDeniedError ||
  /authentication failed|permission denied|user name is empty|SSL routines|certificate/i.test(msgOf(err));

function compactedError(prefix: string, afterRevision: number, compacted: number): DatastoreError {
  return new DatastoreError(
    DatastoreErrorCode.REVISION_COMPACTED,
    `Cannot watch "${prefix}" from revision ${afterRevision}: history up to revision ${compacted} was compacted; re-list and watch from the listed revision`,
  );
}

export class EtcdDatastore implements Datastore {
  readonly url: string;
  readonly endpoints: readonly string[];
  private readonly client: Etcd3;
  private readonly callTimeoutMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly watchGiveUpMs: number;
  private readonly username: string | undefined;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;
  /** The highest revision this client compacted at (etcd itself may keep that one revision). */
  private compactedFloor = 0;
  /** The key `headRevision` reads the revision with (or the Status call). */
  private revisionProbe: "\0" | "/calico/" | "status" = "\0";

  constructor(opts: EtcdDatastoreOptions) {
    if (opts.endpoints.length === 0) {
      throw new DatastoreError(DatastoreErrorCode.BAD_URL, "An etcd datastore needs at least one endpoint");
    }
    this.endpoints = [...opts.endpoints];
    this.callTimeoutMs = opts.callTimeoutMs ?? 10_000;
    this.reconnectMinMs = opts.reconnectMinMs ?? 50;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? 2_000;
    this.watchGiveUpMs = opts.watchGiveUpMs ?? 30_000;
    this.username = opts.auth?.username;
    const scheme = opts.tls !== undefined ? "https" : "http";
    this.url =
      opts.url ??
      `${opts.tls !== undefined ? "etcds" : "etcd"}://${this.username !== undefined ? `${encodeURIComponent(this.username)}@` : ""}${this.endpoints.join(",")}`;
    const timeout = this.callTimeoutMs;
    const endpoints = new Endpoints(this.endpoints.map((h) => `${scheme}://${h}`));
    const options: IOptions = {
      hosts: this.endpoints.map((h) => `${scheme}://${h}`),
      // Large values (256 KiB and more) and long watch batches: well above gRPC's 4 MiB default.
      grpcOptions: { "grpc.max_receive_message_length": 256 * 1024 * 1024 },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      faultHandling: { host: (h) => endpoints.policy(h), global: passThrough },
    };
    if (opts.tls !== undefined) {
      options.credentials = {
        rootCertificate: opts.tls.ca ?? (undefined as unknown as Buffer),
        ...(opts.tls.key !== undefined ? { privateKey: opts.tls.key } : {}),
        ...(opts.tls.cert !== undefined ? { certChain: opts.tls.cert } : {}),
      };
    }
    if (opts.auth !== undefined) {
      options.auth = {
        username: opts.auth.username,
        password: opts.auth.password,
        callOptions: () => ({ deadline: Date.now() + timeout }),
      };
    }
    this.client = new Etcd3(options);
  }

  get(key: string): Promise<KV | undefined> {
    return this.op("get", key, async () => {
      checkKey(key);
      const res = await this.read(() => this.client.kv.range({ key: bytes(key) }));
      const kv = res.kvs[0];
      return kv === undefined ? undefined : toKV(kv);
    });
  }

  list(prefix: string): Promise<ListResult> {
    return this.op("list", prefix, async () => {
      const start = prefix === "" ? Buffer.from([0]) : bytes(prefix);
      const end = prefix === "" ? Buffer.from([0]) : etcdPrefixEnd(start);
      const items: KV[] = [];
      let revision = 0;
      let from = start;
      for (let page = 0; page < 1_000_000; page++) {
        const res = await this.read(() =>
          this.client.kv.range({
            key: from,
            range_end: end,
            limit: LIST_PAGE,
            ...(revision > 0 ? { revision } : {}),
          }),
        );
        if (revision === 0) revision = Number(res.header.revision);
        for (const kv of res.kvs) items.push(toKV(kv));
        const last = res.kvs[res.kvs.length - 1];
        if (!res.more || last === undefined) break;
        from = Buffer.concat([last.key, Buffer.from([0])]);
      }
      return { items, revision };
    });
  }

  create(key: string, value: string): Promise<KV> {
    return this.op("create", key, async () => {
      checkKey(key);
      checkValue(key, value);
      const k = bytes(key);
      const res = await this.send(() =>
        this.client.kv.txn({
          compare: [{ key: k, target: "Create", result: "Equal", create_revision: 0 }],
          success: [{ request_put: { key: k, value: bytes(value) } }],
          failure: [],
        }),
      );
      if (!res.succeeded) {
        throw new DatastoreError(
          DatastoreErrorCode.ALREADY_EXISTS,
          `Cannot create "${key}": it already exists`,
          {
            key,
          },
        );
      }
      const rev = Number(res.header.revision);
      return { key, value, createRevision: rev, modRevision: rev };
    });
  }

  update(key: string, value: string, expectedRevision?: number): Promise<KV> {
    return this.op("update", key, async () => {
      checkKey(key);
      checkValue(key, value);
      if (expectedRevision !== undefined) checkRevision("expected revision", expectedRevision);
      const k = bytes(key);
      const res = await this.send(() =>
        this.client.kv.txn({
          compare: this.guards(k, expectedRevision),
          success: [{ request_put: { key: k, value: bytes(value), prev_kv: true } }],
          failure: [{ request_range: { key: k } }],
        }),
      );
      if (!res.succeeded)
        throw this.refused("update", key, expectedRevision, res.responses[0]?.response_range?.kvs[0]);
      const prev = res.responses[0]?.response_put?.prev_kv;
      const rev = Number(res.header.revision);
      // prev_kv is always there: the guard said the key existed inside this transaction.
      const created = prev !== undefined && prev !== null ? Number(prev.create_revision) : rev;
      return { key, value, createRevision: created, modRevision: rev };
    });
  }

  delete(key: string, expectedRevision?: number): Promise<KV> {
    return this.op("delete", key, async () => {
      checkKey(key);
      if (expectedRevision !== undefined) checkRevision("expected revision", expectedRevision);
      const k = bytes(key);
      const res = await this.send(() =>
        this.client.kv.txn({
          compare: this.guards(k, expectedRevision),
          success: [{ request_delete_range: { key: k, prev_kv: true } }],
          failure: [{ request_range: { key: k } }],
        }),
      );
      if (!res.succeeded)
        throw this.refused("delete", key, expectedRevision, res.responses[0]?.response_range?.kvs[0]);
      const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
      if (prev === undefined) {
        throw new DatastoreError(DatastoreErrorCode.NOT_FOUND, `Cannot delete "${key}": it does not exist`, {
          key,
        });
      }
      return toKV(prev);
    });
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    const w = new EtcdWatch(this, this.client, prefix, afterRevision, handlers, (x) =>
      this.watches.delete(x),
    );
    const startError = watchStartError(this.closed, this.url, prefix, afterRevision);
    if (startError !== undefined) {
      w.fail(startError);
      return w;
    }
    if (afterRevision < this.compactedFloor) {
      w.fail(compactedError(prefix, afterRevision, this.compactedFloor));
      return w;
    }
    this.watches.add(w);
    w.start();
    return w;
  }

  revision(): Promise<number> {
    return this.op("read the revision of", "", () => this.headRevision());
  }

  compact(revision: number): Promise<void> {
    return this.op("compact", "", async () => {
      checkRevision("compaction revision", revision);
      const head = await this.headRevision();
      if (revision > head) {
        throw new DatastoreError(
          DatastoreErrorCode.INVALID_ARGUMENT,
          `Cannot compact at revision ${revision}: the store is at revision ${head}`,
        );
      }
      if (revision === 0) return;
      // Our compact(r) forgets revisions <= r; etcd's compact(c) forgets those < c. So etcd
      // compacts at r + 1, except at the head, which etcd cannot pass: there it compacts at r
      // and this client refuses its own watches from below r (etcd would still replay r).
      const target = Math.min(revision + 1, head);
      this.compactedFloor = Math.max(this.compactedFloor, revision);
      // etcd cancels a watcher that is still replaying history from below the compaction
      // point. Give this client's own watches a moment to be registered and caught up first,
      // so, as with the other drivers, a watch of this client keeps its events.
      await this.settleOwnWatches(target);
      try {
        await this.send(() => this.client.kv.compact({ revision: target, physical: false }));
      } catch (err) {
        if (isCompactedMsg(err)) return; // already compacted at or above: nothing to do
        if (isFutureRevMsg(err)) {
          throw new DatastoreError(
            DatastoreErrorCode.INVALID_ARGUMENT,
            `Cannot compact at revision ${revision}: it is beyond the store's revision`,
            { cause: err },
          );
        }
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new DatastoreError(DatastoreErrorCode.CLOSED, `Datastore ${this.url} was closed`);
    for (const w of [...this.watches]) w.fail(err, true);
    this.client.close();
    await Promise.resolve();
  }

  /** Describe a failure of etcd itself (not a contract error) as UNAVAILABLE, naming the endpoints. */
  unavailable(what: string, err: unknown): DatastoreError {
    const where = `etcd at ${this.endpoints.join(",")}`;
    let why: string;
    if (err instanceof EtcdAuthenticationFailedError) {
      why = `authentication failed for user "${this.username ?? ""}" (wrong user name or password)`;
    } else if (err instanceof EtcdPermissionDeniedError || /permission denied/i.test(msgOf(err))) {
      why = `permission denied for user "${this.username ?? "(none)"}"`;
    } else if (err instanceof EtcdInvalidAuthTokenError) {
      why = "the auth token was refused";
    } else if (/SSL routines|certificate/i.test(msgOf(err))) {
      why = `TLS handshake failed (check the CA, client certificate and key): ${msgOf(err)}`;
    } else {
      why = msgOf(err);
      if (/user name is empty/i.test(why)) why += " (auth is enabled: give a user and password)";
    }
    return new DatastoreError(DatastoreErrorCode.UNAVAILABLE, `Cannot ${what}: ${where}: ${why}`, {
      cause: err,
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The store revision: the header of a read that matches nothing. */
  private async headRevision(): Promise<number> {
    // A user whose role is limited to a prefix may not read the key "\0": then probe
    // "/calico/" (Calico's users read that), then fall back to Status (any user may call it,
    // but it is answered by one member, not linearizable).
    for (;;) {
      const probe = this.revisionProbe;
      try {
        if (probe === "status") {
          return Number((await this.read(() => this.client.maintenance.status({}))).header.revision);
        }
        const res = await this.read(() =>
          this.client.kv.range({ key: bytes(probe), limit: 1, count_only: true, keys_only: true }),
        );
        return Number(res.header.revision);
      } catch (err) {
        if (!(err instanceof EtcdPermissionDeniedError || /permission denied/i.test(msgOf(err)))) throw err;
        if (probe === "status") throw err;
        this.revisionProbe = probe === "\0" ? "/calico/" : "status";
      }
    }
  }

  private guards(k: Buffer, expectedRevision: number | undefined) {
    const g: {
      key: Buffer;
      target: "Create" | "Mod";
      result: "Greater" | "Equal";
      create_revision?: number;
      mod_revision?: number;
    }[] = [{ key: k, target: "Create", result: "Greater", create_revision: 0 }];
    if (expectedRevision !== undefined)
      g.push({ key: k, target: "Mod", result: "Equal", mod_revision: expectedRevision });
    return g;
  }

  private refused(
    op: string,
    key: string,
    expected: number | undefined,
    current: IKeyValue | undefined,
  ): DatastoreError {
    if (current === undefined) {
      return new DatastoreError(DatastoreErrorCode.NOT_FOUND, `Cannot ${op} "${key}": it does not exist`, {
        key,
      });
    }
    return new DatastoreError(
      DatastoreErrorCode.CONFLICT,
      `Cannot ${op} "${key}": expected revision ${String(expected)} but it is at ${current.mod_revision}`,
      { key },
    );
  }

  /** Reads may be retried on any connection failure: another member may answer. */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    return this.retrying(fn, (err) => isNeverSent(err) || /UNAVAILABLE/.test(msgOf(err)));
  }

  /**
   * Writes are sent again only when the first attempt never left this process (no connection):
   * a write whose answer was lost may have happened, and a second create would then fail.
   */
  private async send<T>(fn: () => Promise<T>): Promise<T> {
    return this.retrying(fn, isNeverSent);
  }

  private async retrying<T>(fn: () => Promise<T>, again: (err: unknown) => boolean): Promise<T> {
    const attempts = 2 * this.endpoints.length;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!again(err) || attempt >= attempts || this.closed) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  /** Run an operation: CLOSED when closed, contract errors as they are, everything else UNAVAILABLE. */
  private async op<T>(what: string, key: string, fn: () => Promise<T>): Promise<T> {
    const desc = key === "" ? what : `${what} "${key}"`;
    if (this.closed)
      throw new DatastoreError(DatastoreErrorCode.CLOSED, `Cannot ${desc}: datastore ${this.url} is closed`);
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DatastoreError) throw err;
      if (this.closed) {
        throw new DatastoreError(
          DatastoreErrorCode.CLOSED,
          `Cannot ${desc}: datastore ${this.url} was closed`,
          {
            cause: err,
          },
        );
      }
      throw this.unavailable(desc === what ? `${what} the store` : desc, err);
    }
  }

  private async settleOwnWatches(revision: number): Promise<void> {
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline) {
      const waiting = [...this.watches].filter((w) => !w.safeFromCompaction(revision));
      if (waiting.length === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

class EtcdWatch implements Watch {
  /** Every event with revision <= cursor has been handed to the handler. */
  private cursor: number;
  private closed = false;
  private stream: WatchStream | undefined;
  /** Events of a fragmented response, until its last fragment. */
  private fragments: WatchEvent[] = [];
  private createdAt = 0;
  /** Registered on the server with start revision above the server's head: never replays. */
  private createdInSync = false;
  private attempts = 0;
  /** When the stream first failed since it last worked (0: it works). */
  private failingSince = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private generation = 0;

  constructor(
    private readonly store: EtcdDatastore,
    private readonly client: Etcd3,
    private readonly prefix: string,
    afterRevision: number,
    private readonly handlers: WatchHandlers,
    private readonly onClose: (w: EtcdWatch) => void,
  ) {
    this.cursor = afterRevision;
  }

  start(): void {
    void this.connect();
  }

  /** True when an etcd compaction at `revision` cannot cancel this watch any more. */
  safeFromCompaction(revision: number): boolean {
    if (this.closed || this.cursor >= revision) return true;
    if (this.createdAt === 0) return false;
    // etcd moves a replaying ("unsynced") watcher to the synced group within a sync round
    // (100 ms); one that started above the head was synced from the start.
    return this.createdInSync || Date.now() - this.createdAt > 300;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    clearTimeout(this.retryTimer);
    this.dropStream();
  }

  /** End the watch with an error, delivered a microtask later unless `now`. */
  fail(err: Error, now = false): void {
    if (this.closed) return;
    this.close();
    deliverWatchError(this.handlers, err, now);
  }

  private dropStream(): void {
    const s = this.stream;
    this.stream = undefined;
    this.generation++;
    if (s !== undefined) {
      try {
        s.cancel();
      } catch {
        // Already ended.
      }
    }
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const gen = ++this.generation;
    let stream: WatchStream;
    try {
      stream = await this.client.watchClient.watch();
    } catch (err) {
      this.broken(gen, err);
      return;
    }
    if (this.closed || gen !== this.generation) {
      try {
        stream.on("error", () => {});
        stream.cancel();
      } catch {
        // Already ended.
      }
      return;
    }
    this.stream = stream;
    this.createdAt = 0;
    this.createdInSync = false;
    this.fragments = [];
    stream.on("data", (res: IWatchResponse) => {
      if (gen === this.generation) this.onResponse(gen, res);
    });
    stream.on("error", (err: Error) => this.broken(gen, err));
    stream.on("end", () => this.broken(gen, new Error("watch stream ended")));
    const key = this.prefix === "" ? Buffer.from([0]) : bytes(this.prefix);
    const rangeEnd = this.prefix === "" ? Buffer.from([0]) : etcdPrefixEnd(key);
    try {
      stream.write({
        create_request: {
          key,
          range_end: rangeEnd,
          start_revision: this.cursor + 1,
          prev_kv: true,
          fragment: true,
        },
      });
    } catch (err) {
      this.broken(gen, err);
    }
  }

  /** The stream failed: reconnect from the cursor after a back-off (or give up if it is permanent). */
  private broken(gen: number, err: unknown): void {
    if (this.closed || gen !== this.generation) return;
    this.dropStream();
    if (this.store.isClosed) return;
    if (isPermanent(err)) {
      this.fail(this.store.unavailable(`watch "${this.prefix}"`, err), true);
      return;
    }
    if (this.failingSince === 0) this.failingSince = Date.now();
    else if (Date.now() - this.failingSince > this.store.watchGiveUpMs) {
      const secs = Math.round((Date.now() - this.failingSince) / 1000);
      this.fail(this.store.unavailable(`watch "${this.prefix}" (no stream for ${secs} s)`, err), true);
      return;
    }
    const delay = Math.min(
      this.store.reconnectMaxMs,
      this.store.reconnectMinMs * 2 ** Math.min(this.attempts, 10),
    );
    this.attempts++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      // etcd forgets its simple tokens when it restarts: the reconnect after a restart of an
      // etcd with auth meets "invalid auth token".
      if (err instanceof EtcdInvalidAuthTokenError || /invalid auth token/i.test(msgOf(err))) {
        // A unary call re-authenticates (etcd3 refreshes the token on this error); then retry.
        void this.store.revision().then(
          () => this.connect(),
          () => this.connect(),
        );
      } else {
        void this.connect();
      }
    }, delay);
    this.retryTimer.unref?.();
  }

  private onResponse(gen: number, res: IWatchResponse): void {
    if (this.closed) return;
    const compactRev = Number(res.compact_revision);
    if (res.canceled || compactRev > 0) {
      if (compactRev > 0 || isCompactedMsg(res.cancel_reason)) {
        // etcd reports the first revision it still has; our compaction point is the one below.
        this.fail(compactedError(this.prefix, this.cursor, compactRev - 1), true);
        return;
      }
      const reason = res.cancel_reason !== "" ? res.cancel_reason : "canceled by etcd";
      if (isPermanent(reason)) {
        this.fail(this.store.unavailable(`watch "${this.prefix}"`, new Error(reason)), true);
        return;
      }
      this.broken(gen, new Error(reason));
      return;
    }
    if (res.created) {
      this.createdAt = Date.now();
      this.createdInSync = Number(res.header.revision) < this.cursor + 1;
      this.attempts = 0;
      this.failingSince = 0;
    }
    if (res.events.length === 0) return;
    this.attempts = 0;
    for (const e of res.events) this.fragments.push(toEvent(e));
    if (res.fragment) return; // more of this response follows
    const events = this.fragments.filter((e) => revOf(e) > this.cursor);
    this.fragments = [];
    if (events.length === 0) return;
    for (let i = 0; i < events.length && !this.closed; i += MAX_BATCH) {
      const batch = events.slice(i, i + MAX_BATCH);
      this.cursor = revOf(batch[batch.length - 1]!);
      try {
        this.handlers.onEvents(batch);
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)), true);
        return;
      }
    }
  }
}

/** The parsed form of an `etcd://` / `etcds://` URL (see `parseEtcdUrl`). */
export interface EtcdUrl {
  endpoints: string[];
  tls: boolean;
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

export const ETCD_URL_FORMS = [
  "etcd://host:port[,host:port]",
  "etcd://user:password@host:port",
  "etcds://host:port[?ca=FILE&cert=FILE&key=FILE]",
];

/**
 * Parse `etcd://[user:pass@]h:p[,h:p]` (plain) or `etcds://…[?ca=&cert=&key=]` (TLS). Missing
 * credentials come from Calico's variables: ETCD_USERNAME / ETCD_PASSWORD, and for etcds://
 * ETCD_CA_CERT_FILE / ETCD_CERT_FILE / ETCD_KEY_FILE. Returns a reason string when malformed.
 */
export function parseEtcdUrl(url: string, env: NodeJS.ProcessEnv = process.env): EtcdUrl | string {
  const m = /^(etcds?):\/\/([^?]*)(?:\?(.*))?$/i.exec(url);
  if (m === null) return "expected etcd://host:port[,host:port] or etcds://host:port[,host:port]";
  const tls = m[1]!.toLowerCase() === "etcds";
  let rest = m[2]!.replace(/\/$/, "");
  const out: EtcdUrl = { endpoints: [], tls };
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const cred = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = cred.indexOf(":");
    try {
      out.username = decodeURIComponent(colon >= 0 ? cred.slice(0, colon) : cred);
      if (colon >= 0) out.password = decodeURIComponent(cred.slice(colon + 1));
    } catch {
      return "the user:password part is not valid percent-encoding";
    }
    if (out.username === "") return "the user name before @ is empty";
  }
  const hosts = rest.split(",").map((h) => h.trim());
  if (hosts.length === 0 || !hosts.every((h) => HOST_PORT.test(h))) {
    return "expected etcd://host:port[,host:port] (every endpoint needs a host and a port)";
  }
  out.endpoints = hosts;
  const params = new URLSearchParams(m[3] ?? "");
  for (const [k, v] of params) {
    if (k !== "ca" && k !== "cert" && k !== "key")
      return `unknown parameter "${k}" (accepted: ca, cert, key)`;
    if (!tls) return `the TLS parameter "${k}" needs etcds:// (TLS)`;
    if (v === "") return `the parameter "${k}" needs a file path`;
    out[k] = v;
  }
  const fromEnv = (name: string): string | undefined => {
    const v = env[name];
    return v !== undefined && v !== "" ? v : undefined;
  };
  if (out.username === undefined) {
    const u = fromEnv("ETCD_USERNAME");
    if (u !== undefined) out.username = u;
  }
  if (out.password === undefined && out.username !== undefined) {
    const p = fromEnv("ETCD_PASSWORD");
    if (p !== undefined) out.password = p;
  }
  if (tls) {
    const ca = out.ca ?? fromEnv("ETCD_CA_CERT_FILE");
    const cert = out.cert ?? fromEnv("ETCD_CERT_FILE");
    const key = out.key ?? fromEnv("ETCD_KEY_FILE");
    if (ca !== undefined) out.ca = ca;
    if (cert !== undefined) out.cert = cert;
    if (key !== undefined) out.key = key;
    if ((out.cert === undefined) !== (out.key === undefined)) {
      return "a client certificate needs both cert and key (or ETCD_CERT_FILE and ETCD_KEY_FILE)";
    }
  }
  return out;
}

/** Open an etcd datastore from its URL. Throws BAD_URL (malformed) or UNAVAILABLE (unreadable files). */
export function openEtcdDatastore(
  url: string,
  opts: { env?: NodeJS.ProcessEnv; badUrl?: (why: string) => Error } = {},
): EtcdDatastore {
  const parsed = parseEtcdUrl(url, opts.env);
  if (typeof parsed === "string") {
    throw (
      opts.badUrl?.(parsed) ??
      new DatastoreError(
        DatastoreErrorCode.BAD_URL,
        `Invalid datastore setting ${JSON.stringify(url)}: ${parsed}`,
      )
    );
  }
  const read = (what: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new DatastoreError(
        DatastoreErrorCode.UNAVAILABLE,
        `Cannot open etcd datastore at ${parsed.endpoints.join(",")}: cannot read the ${what} file "${path}": ${msgOf(err)}`,
        { cause: err },
      );
    }
  };
  const o: EtcdDatastoreOptions = { endpoints: parsed.endpoints };
  if (parsed.tls) {
    const tls: EtcdTlsOptions = {};
    const ca = read("CA certificate", parsed.ca);
    const cert = read("client certificate", parsed.cert);
    const key = read("client key", parsed.key);
    if (ca !== undefined) tls.ca = ca;
    if (cert !== undefined) tls.cert = cert;
    if (key !== undefined) tls.key = key;
    o.tls = tls;
  }
  if (parsed.username !== undefined) o.auth = { username: parsed.username, password: parsed.password ?? "" };
  // The reported URL keeps everything but the password.
  const q = new URLSearchParams();
  for (const k of ["ca", "cert", "key"] as const) if (parsed[k] !== undefined) q.set(k, parsed[k]);
  const qs = q.toString();
  o.url = `${parsed.tls ? "etcds" : "etcd"}://${parsed.username !== undefined ? `${encodeURIComponent(parsed.username)}@` : ""}${parsed.endpoints.join(",")}${qs !== "" ? `?${qs}` : ""}`;
  return new EtcdDatastore(o);
}
