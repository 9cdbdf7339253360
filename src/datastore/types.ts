/**
 * The datastore contract (DESIGN.md §2): an etcd-like key/value store of JSON documents with
 * one global, monotonic revision. Every driver (memory, sqlite, etcd, http) is a thin
 * translation of these semantics, checked by the one conformance suite in
 * `conformance.ts`.
 *
 * - Every successful write (create, update, delete) bumps the store's revision by exactly 1;
 *   a KV's `modRevision` is the revision of the write that produced it.
 * - `create` succeeds only if the key is absent; `update`/`delete` with `expectedRevision`
 *   succeed only if the key's current `modRevision` equals it (compare-and-swap).
 * - `watch(prefix, afterRevision)` delivers, in revision order and without gaps, every event
 *   with revision > afterRevision for keys under prefix. If afterRevision is below the
 *   compaction point, the watch fails with a `DATASTORE_REVISION_COMPACTED` error and the
 *   caller re-lists.
 */
import { CalicoError, hasCode } from "../errors.js";

export interface KV {
  key: string;
  /** The stored JSON text. */
  value: string;
  /** Revision at which the key was (last) created. */
  createRevision: number;
  /** Revision of the last write to the key. */
  modRevision: number;
}

export interface ListResult {
  items: KV[];
  /** The store revision the listing reflects; watch from here to see every later change. */
  revision: number;
}

export type WatchEvent =
  { type: "put"; kv: KV; prev?: KV } | { type: "delete"; key: string; revision: number; prev?: KV };

export interface WatchHandlers {
  /** Events in revision order. Several events of one transaction may arrive in one call. */
  onEvents(events: WatchEvent[]): void;
  /** The watch has ended with an error (e.g. compaction); no more events will arrive. */
  onError(err: Error): void;
}

export interface Watch {
  /** Stop the watch; no handler is called after this returns. */
  close(): void;
}

export interface Datastore {
  /** The URL-like name of this store, e.g. `sqlite:/var/lib/calico/calico.db`. */
  readonly url: string;
  get(key: string): Promise<KV | undefined>;
  /** Every key starting with `prefix`, sorted by key. */
  list(prefix: string): Promise<ListResult>;
  /** Fails with DATASTORE_ALREADY_EXISTS if the key exists. */
  create(key: string, value: string): Promise<KV>;
  /**
   * Replace the value. With `expectedRevision`, fails with DATASTORE_CONFLICT unless the key's
   * modRevision equals it; fails with DATASTORE_NOT_FOUND if the key is absent.
   */
  update(key: string, value: string, expectedRevision?: number): Promise<KV>;
  /** Delete and return the previous KV. Same CAS and not-found rules as `update`. */
  delete(key: string, expectedRevision?: number): Promise<KV>;
  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch;
  /** Current store revision (the revision of the last write, 0 for an empty new store). */
  revision(): Promise<number>;
  /** Discard history at or below `revision`; later watches from below it fail as compacted. */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

export const DatastoreErrorCode = {
  NOT_FOUND: "DATASTORE_NOT_FOUND",
  ALREADY_EXISTS: "DATASTORE_ALREADY_EXISTS",
  CONFLICT: "DATASTORE_CONFLICT",
  REVISION_COMPACTED: "DATASTORE_REVISION_COMPACTED",
  CLOSED: "DATASTORE_CLOSED",
  UNAVAILABLE: "DATASTORE_UNAVAILABLE",
  BAD_URL: "DATASTORE_BAD_URL",
  /** A malformed argument: an empty or not well-formed key, a negative revision. */
  INVALID_ARGUMENT: "DATASTORE_INVALID_ARGUMENT",
} as const;
export type DatastoreErrorCode = (typeof DatastoreErrorCode)[keyof typeof DatastoreErrorCode];

export class DatastoreError extends CalicoError {
  declare readonly code: DatastoreErrorCode;
  /** The key the operation was about, when there is one. */
  readonly key: string | undefined;

  constructor(code: DatastoreErrorCode, message: string, options?: { key?: string; cause?: unknown }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.key = options?.key;
  }
}

export const isNotFound = (err: unknown): boolean => hasCode(err, DatastoreErrorCode.NOT_FOUND);
export const isAlreadyExists = (err: unknown): boolean => hasCode(err, DatastoreErrorCode.ALREADY_EXISTS);
export const isConflict = (err: unknown): boolean => hasCode(err, DatastoreErrorCode.CONFLICT);
export const isCompacted = (err: unknown): boolean => hasCode(err, DatastoreErrorCode.REVISION_COMPACTED);
export const isClosed = (err: unknown): boolean => hasCode(err, DatastoreErrorCode.CLOSED);
export const isUnavailable = (err: unknown): boolean => hasCode(err, DatastoreErrorCode.UNAVAILABLE);
export const isBadUrl = (err: unknown): boolean => hasCode(err, DatastoreErrorCode.BAD_URL);
