/**
 * A Datastore wrapper for tests that can be taken "down": while down, every call fails with
 * DATASTORE_UNAVAILABLE and every open watch ends with that error — what the agent sees when
 * etcd or the API server goes away.
 */
import {
  DatastoreError,
  DatastoreErrorCode,
  type Datastore,
  type KV,
  type ListResult,
  type Watch,
  type WatchHandlers,
} from "../../datastore/types.js";

export class FlakyDatastore implements Datastore {
  private isDown = false;
  private readonly watches = new Set<{ inner: Watch; handlers: WatchHandlers; closed: boolean }>();
  listCalls = 0;
  watchCalls = 0;

  constructor(readonly inner: Datastore) {}

  get url(): string {
    return this.inner.url;
  }

  private unavailable(what: string): DatastoreError {
    return new DatastoreError(DatastoreErrorCode.UNAVAILABLE, `Cannot ${what}: datastore is down (test)`);
  }

  private guard<T>(what: string, f: () => Promise<T>): Promise<T> {
    return this.isDown ? Promise.reject(this.unavailable(what)) : f();
  }

  /** Fail every open watch with `err` (default: unavailable) without going down. */
  breakWatches(err: Error = this.unavailable("watch")): void {
    for (const w of [...this.watches]) {
      w.closed = true;
      w.inner.close();
      this.watches.delete(w);
      queueMicrotask(() => w.handlers.onError(err));
    }
  }

  down(): void {
    this.isDown = true;
    this.breakWatches();
  }

  up(): void {
    this.isDown = false;
  }

  get(key: string): Promise<KV | undefined> {
    return this.guard("get", () => this.inner.get(key));
  }
  list(prefix: string): Promise<ListResult> {
    this.listCalls++;
    return this.guard("list", () => this.inner.list(prefix));
  }
  create(key: string, value: string): Promise<KV> {
    return this.guard("create", () => this.inner.create(key, value));
  }
  update(key: string, value: string, expectedRevision?: number): Promise<KV> {
    return this.guard("update", () => this.inner.update(key, value, expectedRevision));
  }
  delete(key: string, expectedRevision?: number): Promise<KV> {
    return this.guard("delete", () => this.inner.delete(key, expectedRevision));
  }
  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    this.watchCalls++;
    if (this.isDown) {
      const err = this.unavailable("watch");
      queueMicrotask(() => handlers.onError(err));
      return { close: () => {} };
    }
    const entry = { inner: undefined as unknown as Watch, handlers, closed: false };
    entry.inner = this.inner.watch(prefix, afterRevision, {
      onEvents: (es) => {
        if (!entry.closed) handlers.onEvents(es);
      },
      onError: (err) => {
        if (entry.closed) return;
        this.watches.delete(entry);
        handlers.onError(err);
      },
    });
    this.watches.add(entry);
    return {
      close: () => {
        entry.closed = true;
        this.watches.delete(entry);
        entry.inner.close();
      },
    };
  }
  revision(): Promise<number> {
    return this.guard("revision", () => this.inner.revision());
  }
  compact(revision: number): Promise<void> {
    return this.inner.compact(revision);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
