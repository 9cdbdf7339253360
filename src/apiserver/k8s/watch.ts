/**
 * Kubernetes watch encoding: a chunked JSON stream of `{"type":…,"object":…}` lines
 * (k8s.io/apimachinery/pkg/apis/meta/v1 WatchEvent), fed by a datastore-semantics watch.
 *
 * - Without a resourceVersion (or with "0") the client first gets ADDED for every current
 *   object, then the changes after that listing (Kubernetes' "any" semantics).
 * - With resourceVersion N it gets every change after revision N; history compacted away
 *   ends the stream with an ERROR event holding a 410 Expired Status, and the client re-lists.
 * - Each object carries `metadata.resourceVersion` = the revision of the event.
 * - Selectors are applied per event with Kubernetes' transitions: an object that stops
 *   matching is sent as DELETED, one that starts matching as ADDED.
 * - `timeoutSeconds` ends the stream cleanly; a client that stops reading is cut off once
 *   MAX_BUFFERED bytes wait for it (it re-watches from its last revision).
 */
import { isClosed } from "../../datastore/types.js";
import type { ServerResponse } from "node:http";
import type { Datastore, KV, WatchEvent } from "../../datastore/types.js";
import { parseResourceKey, resourceKey } from "../../datastore/keys.js";
import { API_VERSION, type AnyResource } from "../../api/resource.js";
import type { KindDef } from "../../api/kinds/kind.js";
import type { ObjectFilter } from "./selectors.js";
import { toStatus } from "./status.js";
import { toTable, type IncludeObject, type Representation } from "./table.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "ERROR";

/** A client this far behind is cut off rather than buffered for without bound. */
export const MAX_BUFFERED = 8 * 1024 * 1024;

/** A stored KV as the typed resource the API returns (as ResourceStore does). */
export function resourceFromKV(kind: KindDef, kv: KV, revision: number = kv.modRevision): AnyResource {
  const stored = JSON.parse(kv.value) as AnyResource;
  return {
    apiVersion: API_VERSION,
    kind: kind.kind,
    metadata: { ...stored.metadata, resourceVersion: String(revision) },
    spec: stored.spec,
    ...(stored.status !== undefined ? { status: stored.status } : {}),
  };
}

function deletedObject(kind: KindDef, e: Extract<WatchEvent, { type: "delete" }>): AnyResource {
  if (e.prev !== undefined) return resourceFromKV(kind, e.prev, e.revision);
  const parts = parseResourceKey(e.key);
  return {
    apiVersion: API_VERSION,
    kind: kind.kind,
    metadata: {
      name: parts?.name ?? e.key,
      ...(parts?.namespace !== undefined ? { namespace: parts.namespace } : {}),
      resourceVersion: String(e.revision),
    },
    spec: {},
  };
}

export interface WatchRequest {
  kind: KindDef;
  /** Datastore key prefix to watch (one kind, maybe one namespace). */
  prefix: string;
  /** Start after this revision; with `initial`, the revision of that listing. */
  afterRevision: number;
  /** Objects to send as ADDED first (the current listing), when no resourceVersion was given. */
  initial?: readonly AnyResource[];
  filter: ObjectFilter;
  representation: Representation;
  includeObject: IncludeObject;
  /** End the stream after this many seconds (Kubernetes `timeoutSeconds`). */
  timeoutSeconds?: number;
  /** Cut the client off when this many bytes wait for it (default MAX_BUFFERED). */
  maxBuffered: number;
}

/** Translate datastore events into watch events, tracking which objects the client holds. */
export class WatchTranslator {
  /** Keys the client currently sees as present (matching the filter). */
  private readonly present = new Set<string>();

  constructor(
    private readonly kind: KindDef,
    private readonly filter: ObjectFilter,
  ) {}

  seed(key: string): void {
    this.present.add(key);
  }

  translate(e: WatchEvent): { type: WatchEventType; object: AnyResource } | undefined {
    if (e.type === "delete") {
      const obj = deletedObject(this.kind, e);
      const wasVisible = this.present.delete(e.key) || this.filter.matches(obj);
      return wasVisible ? { type: "DELETED", object: obj } : undefined;
    }
    const obj = resourceFromKV(this.kind, e.kv);
    const key = e.kv.key;
    const before =
      this.present.has(key) ||
      (e.prev !== undefined && this.filter.matches(resourceFromKV(this.kind, e.prev))) ||
      (e.prev === undefined && e.kv.createRevision !== e.kv.modRevision && this.filter.empty);
    if (this.filter.matches(obj)) {
      this.present.add(key);
      return { type: before ? "MODIFIED" : "ADDED", object: obj };
    }
    this.present.delete(key);
    return before ? { type: "DELETED", object: obj } : undefined;
  }
}

/**
 * Serve one watch request to completion. Resolves when the stream has ended (timeout, error,
 * client gone). The response must not have been started.
 */
export function serveWatch(
  res: ServerResponse,
  source: Pick<Datastore, "watch">,
  w: WatchRequest,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const translator = new WatchTranslator(w.kind, w.filter);
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    /** Set once the datastore watch is open; `finish` may run before that. */
    const open: { watch?: { close(): void } } = {};

    const encode = (type: WatchEventType, object: unknown): string => {
      let out = object;
      if (w.representation === "table" && type !== "ERROR") {
        const r = object as AnyResource;
        out = toTable(w.kind, [r], {
          ...(r.metadata.resourceVersion !== undefined
            ? { resourceVersion: r.metadata.resourceVersion }
            : {}),
          includeObject: w.includeObject,
        });
      }
      return `${JSON.stringify({ type, object: out })}\n`;
    };

    /** End the stream; `cutOff` drops the connection instead of flushing what is queued. */
    const finish = (cutOff = false) => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      open.watch?.close();
      if (cutOff) res.destroy();
      else if (!res.writableEnded) res.end();
      resolve();
    };

    const send = (type: WatchEventType, object: unknown) => {
      if (done) return;
      res.write(encode(type, object));
      // A client that does not read: memory for it stays bounded, it re-watches later.
      if (res.writableLength > w.maxBuffered) finish(true);
    };

    res.writeHead(200, {
      "Content-Type": "application/json",
      "Cache-Control": "no-cache, private",
      "Transfer-Encoding": "chunked",
    });
    res.flushHeaders();
    // The response closes when the stream ends or the client goes away.
    res.on("close", () => finish());
    if (w.timeoutSeconds !== undefined && w.timeoutSeconds > 0) {
      timer = setTimeout(() => finish(), w.timeoutSeconds * 1000);
      timer.unref();
    }

    for (const obj of w.initial ?? []) {
      if (!w.filter.matches(obj)) continue;
      const ns = w.kind.namespaced ? (obj.metadata.namespace ?? "default") : undefined;
      translator.seed(resourceKey(w.kind.plural, obj.metadata.name, ns));
      send("ADDED", obj);
    }
    if (done) return;

    const watch = source.watch(w.prefix, w.afterRevision, {
      onEvents(events) {
        for (const e of events) {
          const out = translator.translate(e);
          if (out !== undefined) send(out.type, out.object);
          if (done) return;
        }
      },
      onError(err) {
        // The server is stopping (its cache closed): end the stream as a Kubernetes API server
        // does on shutdown, without an error, so clients simply re-watch.
        if (!isClosed(err)) send("ERROR", toStatus(err));
        finish();
      },
    });
    open.watch = watch;
    if (done) watch.close();
  });
}
