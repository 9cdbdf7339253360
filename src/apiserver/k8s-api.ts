/**
 * The Kubernetes-convention resource API of calico-apiserver: enough of Kubernetes' discovery,
 * REST, watch, Table and Status conventions that `kubectl` works against us as it does against
 * a cluster (docs/apiserver-k8s.md). Every write goes through ResourceStore, so it gets the
 * same validation as calicoctl; watches are served from `watchSource` (the server's cache).
 *
 * The server mounts the handler after authentication: it answers the paths it owns
 * (`/api…`, `/apis…`, `/version`, `/openapi…`) and returns false for every other path.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import type { AuthInfo } from "./auth.js";
import type { ResourceStore } from "../datastore/resources.js";
import { isResourceConflict } from "../datastore/resources.js";
import type { Datastore } from "../datastore/types.js";
import { resourcePrefix } from "../datastore/keys.js";
import { KINDS } from "../api/registry.js";
import { API_GROUP, API_VERSION, type AnyResource } from "../api/resource.js";
import { jsonPatch, mergePatch } from "../api/patch.js";
import {
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersions,
  isOpenApiV3GroupPath,
  openApiV3Group,
  openApiV3Root,
  versionInfo,
} from "./k8s/discovery.js";
import { openApiV2 } from "./k8s/openapi-v2.js";
import { GROUP_VERSION_PATH, parseResourcePath, type ResourcePath } from "./k8s/path.js";
import { mediaType, parseBody, readBody } from "./k8s/body.js";
import { objectFilter } from "./k8s/selectors.js";
import {
  statusError,
  StatusReason,
  toStatus,
  writeStatus,
  type StatusError,
  type Subject,
} from "./k8s/status.js";
import { parseIncludeObject, representationOf, toTable } from "./k8s/table.js";
import { MAX_BUFFERED, serveWatch } from "./k8s/watch.js";
import { dryRunCreate, dryRunDelete, dryRunReplace } from "./k8s/dry-run.js";

export interface K8sApiDeps {
  store: ResourceStore;
  watchSource: Pick<Datastore, "watch" | "revision">;
  /** Bytes queued for a watch client before it is cut off (default 8 MiB). */
  maxWatchBuffer?: number;
}

export type K8sApiHandler = (req: IncomingMessage, res: ServerResponse, auth: AuthInfo) => Promise<boolean>;

const MAX_PATCH_RETRIES = 20;

/** Does this path belong to the Kubernetes-convention API? */
export function isK8sApiPath(path: string): boolean {
  return (
    path === "/version" ||
    path === "/api" ||
    path.startsWith("/api/") ||
    path === "/apis" ||
    path.startsWith("/apis/") ||
    path === "/openapi" ||
    path.startsWith("/openapi/")
  );
}

function writeJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const WRITE_VERB: Record<string, string> = {
  POST: "create",
  PUT: "update",
  PATCH: "patch",
  DELETE: "delete",
};

export function createK8sApiHandler(deps: K8sApiDeps): K8sApiHandler {
  const { store, watchSource } = deps;

  return async (req, res, auth) => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      return false; // not a path at all: the server answers it
    }
    let path = url.pathname;
    if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
    if (!isK8sApiPath(path)) return false;
    let subject: Subject | undefined;
    try {
      if (!path.startsWith(`${GROUP_VERSION_PATH}/`)) {
        serveDiscovery(req, res, path);
        return true;
      }
      const rp = parseResourcePath(path);
      subject = {
        plural: rp.kind.plural,
        kind: rp.kind.kind,
        ...(rp.name !== undefined ? { name: rp.name } : {}),
      };
      const method = req.method ?? "GET";
      const verb = WRITE_VERB[method];
      if (verb !== undefined && auth.readOnly) {
        throw forbidden(auth, verb, rp);
      }
      await serveResource(req, res, url, method, rp, subject);
    } catch (err) {
      if (res.headersSent) {
        if (!res.writableEnded) res.end();
      } else {
        writeStatus(res, toStatus(err, subject));
      }
    }
    return true;
  };

  function serveDiscovery(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (path === "/openapi/v2" && (req.method === "GET" || req.method === "HEAD")) {
      const { contentType, body } = openApiV2(KINDS, req.headers.accept);
      res.writeHead(200, { "Content-Type": contentType, "Content-Length": body.length });
      res.end(body);
      return;
    }
    const doc = discoveryDocument(path, req.headers.host ?? "localhost");
    if (doc === undefined) {
      throw statusError(StatusReason.NotFound, `the server could not find the requested resource (${path})`);
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      throw statusError(StatusReason.MethodNotAllowed, `${req.method ?? ""} is not supported on ${path}`);
    }
    writeJson(res, 200, doc);
  }

  async function serveResource(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    method: string,
    rp: ResourcePath,
    subject: Subject,
  ): Promise<void> {
    const q = url.searchParams;
    const dry = parseDryRun(q.getAll("dryRun"));
    const isWatch = rp.legacyWatch || q.get("watch") === "true" || q.get("watch") === "1";
    if (isWatch) {
      if (method !== "GET") throw methodNotAllowed(method, "a watch");
      return watchResources(req, res, q, rp);
    }
    if (rp.name === undefined) {
      if (method === "GET" || method === "HEAD") return listResources(req, res, q, rp);
      if (method === "POST") return createResource(req, res, rp, subject, dry);
      throw methodNotAllowed(method, `the ${rp.kind.plural} collection`);
    }
    switch (method) {
      case "GET":
      case "HEAD":
        return getResource(req, res, q, rp);
      case "PUT":
        return replaceResource(req, res, rp, dry);
      case "PATCH":
        return patchResource(req, res, rp, dry);
      case "DELETE":
        return deleteResource(req, res, rp, dry);
      default:
        throw methodNotAllowed(method, `${rp.kind.plural}/${rp.name}`);
    }
  }

  function respondObjects(
    req: IncomingMessage,
    res: ServerResponse,
    q: URLSearchParams,
    rp: ResourcePath,
    body: { single: AnyResource } | { list: AnyResource[]; revision: number },
  ): void {
    if (representationOf(req.headers.accept) === "table") {
      const items = "single" in body ? [body.single] : body.list;
      const rv = "single" in body ? body.single.metadata.resourceVersion : String(body.revision);
      return writeJson(
        res,
        200,
        toTable(rp.kind, items, {
          ...(rv !== undefined ? { resourceVersion: rv } : {}),
          includeObject: parseIncludeObject(q.get("includeObject")),
        }),
      );
    }
    if ("single" in body) return writeJson(res, 200, body.single);
    writeJson(res, 200, {
      apiVersion: API_VERSION,
      kind: `${rp.kind.kind}List`,
      metadata: { resourceVersion: String(body.revision) },
      items: body.list,
    });
  }

  async function getResource(
    req: IncomingMessage,
    res: ServerResponse,
    q: URLSearchParams,
    rp: ResourcePath,
  ): Promise<void> {
    const obj = await store.get(rp.kind.kind, rp.name ?? "", rp.namespace);
    respondObjects(req, res, q, rp, { single: obj });
  }

  async function listResources(
    req: IncomingMessage,
    res: ServerResponse,
    q: URLSearchParams,
    rp: ResourcePath,
  ): Promise<void> {
    const filter = objectFilter(q.get("labelSelector"), q.get("fieldSelector"));
    const { items, revision } = await store.list(rp.kind.kind, rp.namespace);
    respondObjects(req, res, q, rp, { list: items.filter((r) => filter.matches(r)), revision });
  }

  async function watchResources(
    req: IncomingMessage,
    res: ServerResponse,
    q: URLSearchParams,
    rp: ResourcePath,
  ): Promise<void> {
    let fieldSelector = q.get("fieldSelector");
    if (rp.name !== undefined) {
      // Watching one object (legacy path form): a watch of its collection by name.
      const byName = `metadata.name=${rp.name}`;
      fieldSelector = fieldSelector === null || fieldSelector === "" ? byName : `${fieldSelector},${byName}`;
    }
    const filter = objectFilter(q.get("labelSelector"), fieldSelector);
    const rvText = q.get("resourceVersion") ?? "";
    const timeoutText = q.get("timeoutSeconds");
    let timeoutSeconds: number | undefined;
    if (timeoutText !== null && timeoutText !== "") {
      if (!/^\d+$/.test(timeoutText)) {
        throw statusError(
          StatusReason.BadRequest,
          `timeoutSeconds must be a whole number, got "${timeoutText}"`,
        );
      }
      timeoutSeconds = Number(timeoutText);
    }
    const base = {
      kind: rp.kind,
      prefix: resourcePrefix(rp.kind.plural, rp.kind.namespaced ? rp.namespace : undefined),
      filter,
      representation: representationOf(req.headers.accept),
      includeObject: parseIncludeObject(q.get("includeObject")),
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
      maxBuffered: deps.maxWatchBuffer ?? MAX_BUFFERED,
    };
    if (rvText === "" || rvText === "0") {
      const { items, revision } = await store.list(rp.kind.kind, rp.namespace);
      return serveWatch(res, watchSource, { ...base, afterRevision: revision, initial: items });
    }
    if (!/^\d+$/.test(rvText)) {
      throw statusError(
        StatusReason.BadRequest,
        `resourceVersion must be a revision number, got "${rvText}"`,
      );
    }
    return serveWatch(res, watchSource, { ...base, afterRevision: Number(rvText) });
  }

  /** The request body as a resource of the path's kind, in the path's namespace. */
  async function bodyResource(
    req: IncomingMessage,
    rp: ResourcePath,
  ): Promise<Record<string, unknown> & { metadata: Record<string, unknown> }> {
    const type = mediaType(req.headers["content-type"]);
    if (type !== "" && type !== "application/json" && type !== "application/yaml") {
      throw statusError(
        StatusReason.UnsupportedMediaType,
        `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got "${type}")`,
      );
    }
    const body = parseBody(await readBody(req), req.headers["content-type"]);
    if (!isObj(body)) throw statusError(StatusReason.BadRequest, "the request body must be a JSON object");
    checkIdentity(body, rp, "body");
    return body as Record<string, unknown> & { metadata: Record<string, unknown> };
  }

  /**
   * A written object must be of the path's kind and name and in its namespace: the path is
   * what authorization and the client saw, so the body may not redirect the write elsewhere.
   */
  function checkIdentity(obj: Record<string, unknown>, rp: ResourcePath, what: string): void {
    if (obj.kind !== undefined && obj.kind !== rp.kind.kind) {
      throw statusError(
        StatusReason.BadRequest,
        `the ${what} is of kind ${JSON.stringify(obj.kind)} but the URL names ${rp.kind.plural} (kind ${rp.kind.kind})`,
      );
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== API_VERSION) {
      throw statusError(
        StatusReason.BadRequest,
        `the ${what} has apiVersion ${JSON.stringify(obj.apiVersion)}; this endpoint serves ${API_VERSION}`,
      );
    }
    if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
    if (!isObj(obj.metadata))
      throw statusError(StatusReason.BadRequest, `the ${what}'s metadata must be an object`);
    const md = obj.metadata;
    obj.kind = rp.kind.kind;
    obj.apiVersion = API_VERSION;
    if (rp.name !== undefined) {
      if (md.name === undefined || md.name === "") md.name = rp.name;
      else if (md.name !== rp.name) {
        throw statusError(
          StatusReason.BadRequest,
          `the name of the object (${show(md.name)}) does not match the name on the URL (${rp.name})`,
        );
      }
    }
    if (rp.kind.namespaced && rp.namespace !== undefined) {
      if (md.namespace === undefined || md.namespace === "") md.namespace = rp.namespace;
      else if (md.namespace !== rp.namespace) {
        throw statusError(
          StatusReason.BadRequest,
          `the namespace of the provided object (${show(md.namespace)}) does not match the namespace sent on the request (${rp.namespace})`,
        );
      }
    }
  }

  async function createResource(
    req: IncomingMessage,
    res: ServerResponse,
    rp: ResourcePath,
    subject: Subject,
    dry: boolean,
  ): Promise<void> {
    const body = await bodyResource(req, rp);
    const md = body.metadata;
    if ((md.name === undefined || md.name === "") && typeof md.generateName === "string") {
      md.name = `${md.generateName}${randomSuffix()}`;
    }
    if (typeof md.name === "string") subject.name = md.name;
    delete md.resourceVersion; // Kubernetes ignores it on create
    const created = dry ? await dryRunCreate(store, body) : await store.create(body);
    writeJson(res, 201, created);
  }

  async function replaceResource(
    req: IncomingMessage,
    res: ServerResponse,
    rp: ResourcePath,
    dry: boolean,
  ): Promise<void> {
    const body = await bodyResource(req, rp);
    if (body.metadata.resourceVersion === "") delete body.metadata.resourceVersion;
    writeJson(res, 200, dry ? await dryRunReplace(store, body) : await store.replace(body));
  }

  async function patchResource(
    req: IncomingMessage,
    res: ServerResponse,
    rp: ResourcePath,
    dry: boolean,
  ): Promise<void> {
    const type = mediaType(req.headers["content-type"]);
    let apply: (current: unknown, patch: unknown) => unknown;
    if (type === "application/merge-patch+json") apply = mergePatch;
    else if (type === "application/strategic-merge-patch+json") {
      // Our kinds declare no strategic-merge keys, so a strategic patch is a merge patch once
      // the ordering/retain directives kubectl may add are dropped.
      apply = (current, patch) => mergePatch(current, stripDirectives(patch));
    } else if (type === "application/json-patch+json") apply = jsonPatch;
    else {
      throw statusError(
        StatusReason.UnsupportedMediaType,
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "${type}"${type === "application/apply-patch+yaml" ? "; server-side apply is not supported, use client-side kubectl apply" : ""})`,
      );
    }
    const patch = parseBody(await readBody(req), "application/json");
    if (patch === undefined) throw statusError(StatusReason.BadRequest, "the patch is empty");
    for (let attempt = 0; ; attempt++) {
      const current = await store.get(rp.kind.kind, rp.name ?? "", rp.namespace);
      const patched = apply(structuredClone(current), patch);
      if (!isObj(patched)) throw statusError(StatusReason.Invalid, "the patched object is not a JSON object");
      checkIdentity(patched, rp, "patched object");
      const md = patched.metadata as Record<string, unknown>;
      // The patch may pin a resourceVersion (a precondition); otherwise patch what we read.
      const pinned =
        md.resourceVersion !== undefined && md.resourceVersion !== current.metadata.resourceVersion;
      if (!pinned) md.resourceVersion = current.metadata.resourceVersion;
      try {
        writeJson(res, 200, dry ? await dryRunReplace(store, patched) : await store.replace(patched));
        return;
      } catch (err) {
        if (isResourceConflict(err) && !pinned && attempt < MAX_PATCH_RETRIES) continue;
        throw err;
      }
    }
  }

  async function deleteResource(
    req: IncomingMessage,
    res: ServerResponse,
    rp: ResourcePath,
    dryQuery: boolean,
  ): Promise<void> {
    let dry = dryQuery;
    const opts = parseBody(await readBody(req), req.headers["content-type"]);
    let resourceVersion: string | undefined;
    if (isObj(opts)) {
      if (Array.isArray(opts.dryRun)) dry ||= parseDryRun(opts.dryRun);
      const pre = opts.preconditions;
      if (isObj(pre)) {
        if (typeof pre.resourceVersion === "string" && pre.resourceVersion !== "") {
          resourceVersion = pre.resourceVersion;
        }
        if (typeof pre.uid === "string" && pre.uid !== "") {
          const current = await store.get(rp.kind.kind, rp.name ?? "", rp.namespace);
          if (current.metadata.uid !== pre.uid) {
            throw statusError(
              StatusReason.Conflict,
              `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid ?? ""}`,
              { name: rp.name ?? "", group: API_GROUP, kind: rp.kind.plural },
            );
          }
        }
      }
    }
    const ref = {
      kind: rp.kind.kind,
      name: rp.name ?? "",
      ...(rp.namespace !== undefined ? { namespace: rp.namespace } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    };
    const deleted = dry ? await dryRunDelete(store, ref) : await store.delete(ref);
    writeJson(res, 200, deleted);
  }
}

function discoveryDocument(path: string, host: string): unknown {
  if (path === "/version") return versionInfo();
  if (path === "/api") return apiVersions(host);
  if (path === "/apis") return apiGroupList();
  if (path === `/apis/${API_GROUP}`) return apiGroup();
  if (path === GROUP_VERSION_PATH) return apiResourceList(KINDS);
  if (path === "/openapi/v3") return openApiV3Root(KINDS);
  if (isOpenApiV3GroupPath(path)) return openApiV3Group(KINDS);
  return undefined;
}

/** `dryRun`: Kubernetes accepts only "All" (run every stage but storage). */
function parseDryRun(values: readonly unknown[]): boolean {
  const given = values.filter((v) => v !== "");
  if (given.length === 0) return false;
  if (given.every((v) => v === "All")) return true;
  throw statusError(StatusReason.BadRequest, `dryRun must be "All", got ${JSON.stringify(given)}`);
}

const show = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));

function methodNotAllowed(method: string, what: string): StatusError {
  return statusError(StatusReason.MethodNotAllowed, `the server does not allow ${method} on ${what}`);
}

function forbidden(auth: AuthInfo, verb: string, rp: ResourcePath): StatusError {
  const scope = rp.namespace !== undefined ? `in the namespace "${rp.namespace}"` : "at the cluster scope";
  return statusError(
    StatusReason.Forbidden,
    `${rp.kind.plural}.${API_GROUP}${rp.name !== undefined ? ` "${rp.name}"` : ""} is forbidden: User "${auth.user}" cannot ${verb} resource "${rp.kind.plural}" in API group "${API_GROUP}" ${scope}: the token is read-only`,
    { ...(rp.name !== undefined ? { name: rp.name } : {}), group: API_GROUP, kind: rp.kind.plural },
  );
}

/** Kubernetes' generateName suffix: 5 characters from a consonant-and-digit alphabet. */
function randomSuffix(): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join("");
}

/** Drop strategic-merge-patch directives (`$setElementOrder/…`, `$retainKeys`, `$deleteFromPrimitiveList/…`). */
function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith("$")) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}
