/**
 * The raw key API under `/calico-ts/v1/` — the Datastore contract over HTTP, used by the HTTP
 * datastore driver (src/datastore/http.ts) and so by agents, CNI plugins and calicoctl:
 *
 *   GET    /calico-ts/v1/kv?key=K                    → 200 {kv} | 404 DATASTORE_NOT_FOUND
 *   GET    /calico-ts/v1/kv?prefix=P                 → 200 {items, revision}
 *   POST   /calico-ts/v1/kv        {key, value}      → 201 {kv}  (create; 409 ALREADY_EXISTS)
 *   PUT    /calico-ts/v1/kv        {key, value, expectedRevision?} → 200 {kv} (409 CONFLICT)
 *   DELETE /calico-ts/v1/kv?key=K[&expectedRevision=N] → 200 {kv: previous}
 *   GET    /calico-ts/v1/revision                    → 200 {revision}
 *   POST   /calico-ts/v1/compact   {revision}        → 200 {}
 *   GET    /calico-ts/v1/watch?prefix=P[&revision=N] → NDJSON stream (watch-stream.ts)
 *
 * Reads and writes go straight to the datastore (read-your-writes for CAS loops); watches are
 * served from the watch cache. Keys and prefixes must lie inside the key root (`/calico/`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Datastore } from "../datastore/types.js";
import { ApiError, ApiErrorCode, badRequest } from "./errors.js";

export const RAW_API_PREFIX = "/calico-ts/v1/";

export interface RawApiContext {
  store: Datastore;
  root: string;
  readBody(req: IncomingMessage): Promise<unknown>;
  sendJson(res: ServerResponse, status: number, body: unknown): void;
  /** Serve a watch stream; resolves once the stream is set up. */
  startWatch(
    req: IncomingMessage,
    res: ServerResponse,
    prefix: string,
    afterRevision: number | undefined,
  ): Promise<void>;
  noteCompacted(revision: number): void;
}

/** The route label for metrics ("kv", "watch", …) or undefined if not a raw-API path. */
export function rawRoute(pathname: string): string | undefined {
  if (!pathname.startsWith(RAW_API_PREFIX)) return undefined;
  const rest = pathname.slice(RAW_API_PREFIX.length);
  return ["kv", "revision", "compact", "watch"].includes(rest) ? rest : "raw-unknown";
}

function checkKeyInRoot(root: string, key: unknown, what = "key"): string {
  if (typeof key !== "string" || key === "") throw badRequest(`Invalid ${what}: must be a non-empty string`);
  if (!key.startsWith(root)) {
    throw badRequest(`Invalid ${what} ${JSON.stringify(key)}: keys must lie under ${JSON.stringify(root)}`);
  }
  return key;
}

/** A prefix inside the root, or a prefix of the root itself (meaning: everything under it). */
function checkPrefix(root: string, prefix: string | null): string {
  if (prefix === null) throw badRequest("Missing query parameter: prefix");
  if (prefix.startsWith(root)) return prefix;
  if (root.startsWith(prefix)) return root;
  throw badRequest(`Invalid prefix ${JSON.stringify(prefix)}: keys must lie under ${JSON.stringify(root)}`);
}

export function parseRevision(raw: unknown, what: string): number {
  const n = typeof raw === "string" && /^\d{1,16}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw badRequest(`Invalid ${what} ${JSON.stringify(raw)}: must be a non-negative integer`);
  }
  return n;
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest("Invalid request body: expected a JSON object");
  }
  return body as Record<string, unknown>;
}

function checkValue(v: unknown): string {
  if (typeof v !== "string") throw badRequest("Invalid value: must be a string (the stored JSON text)");
  return v;
}

const methodNotAllowed = (method: string | undefined, path: string): ApiError =>
  new ApiError(405, ApiErrorCode.METHOD_NOT_ALLOWED, `Method ${method ?? "?"} is not allowed on ${path}`);

/** Handle a raw-API request; the caller has authenticated and authorised it. */
export async function handleRawApi(
  ctx: RawApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const { store, root } = ctx;
  const path = url.pathname;
  const q = url.searchParams;
  switch (path.slice(RAW_API_PREFIX.length)) {
    case "kv":
      switch (req.method ?? "") {
        case "GET": {
          if (q.has("key")) {
            const kv = await store.get(checkKeyInRoot(root, q.get("key")));
            if (kv === undefined) {
              throw new ApiError(
                404,
                "DATASTORE_NOT_FOUND",
                `Key ${JSON.stringify(q.get("key"))} does not exist`,
              );
            }
            ctx.sendJson(res, 200, { kv });
          } else {
            const prefix = checkPrefix(root, q.get("prefix"));
            ctx.sendJson(res, 200, await store.list(prefix));
          }
          return;
        }
        case "POST": {
          const b = asObject(await ctx.readBody(req));
          const kv = await store.create(checkKeyInRoot(root, b.key), checkValue(b.value));
          ctx.sendJson(res, 201, { kv });
          return;
        }
        case "PUT": {
          const b = asObject(await ctx.readBody(req));
          const key = checkKeyInRoot(root, b.key);
          const value = checkValue(b.value);
          const kv =
            b.expectedRevision === undefined || b.expectedRevision === null
              ? await store.update(key, value)
              : await store.update(key, value, parseRevision(b.expectedRevision, "expectedRevision"));
          ctx.sendJson(res, 200, { kv });
          return;
        }
        case "DELETE": {
          const key = checkKeyInRoot(root, q.get("key"));
          const raw = q.get("expectedRevision");
          const kv =
            raw === null
              ? await store.delete(key)
              : await store.delete(key, parseRevision(raw, "expectedRevision"));
          ctx.sendJson(res, 200, { kv });
          return;
        }
        default:
          throw methodNotAllowed(req.method, path);
      }
    case "revision":
      if (req.method !== "GET") throw methodNotAllowed(req.method, path);
      ctx.sendJson(res, 200, { revision: await store.revision() });
      return;
    case "compact": {
      if (req.method !== "POST") throw methodNotAllowed(req.method, path);
      const b = asObject(await ctx.readBody(req));
      const revision = parseRevision(b.revision, "revision");
      await store.compact(revision);
      ctx.noteCompacted(revision);
      ctx.sendJson(res, 200, {});
      return;
    }
    case "watch": {
      if (req.method !== "GET") throw methodNotAllowed(req.method, path);
      const prefix = checkPrefix(root, q.get("prefix"));
      const raw = q.get("revision");
      const after = raw === null || raw === "" ? undefined : parseRevision(raw, "revision");
      await ctx.startWatch(req, res, prefix, after);
      return;
    }
    default:
      throw new ApiError(404, ApiErrorCode.NOT_FOUND, `No such API path ${JSON.stringify(path)}`);
  }
}
