/**
 * The HTTP driver: the datastore contract over calico-apiserver's raw key API and watch stream
 * (docs/apiserver.md), so agents, CNI plugins and calicoctl reach a cluster's datastore with
 * `--datastore https://host:port` and a token.
 *
 * URL forms: `http(s)://[token@]host:port[/][?token=T&ca=/path/ca.pem]`; the token falls back to
 * `$CALICO_DATASTORE_TOKEN`, the CA file to `$CALICO_DATASTORE_CA`.
 *
 * Errors come back as the server's `{code, message}`: datastore codes are rebuilt as the same
 * `DatastoreError`; refused credentials, an unreachable server and 5xx become UNAVAILABLE.
 * Reads (get, list, revision) are retried briefly on connection failures; writes never are (a
 * create whose reply was lost may have happened).
 *
 * Watches reconnect when the connection drops (API server restart, cut off as a slow watcher)
 * and resume from the last revision they saw (events or heartbeats); if the server no longer
 * has that history they end with REVISION_COMPACTED and the caller re-lists.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { readFileSync } from "node:fs";
import type { Datastore, KV, ListResult, Watch, WatchEvent, WatchHandlers } from "./types.js";
import { DatastoreError, DatastoreErrorCode } from "./types.js";
import { checkKey, checkRevision, checkValue } from "./key-range.js";
import { deliverWatchError, watchStartError } from "./watch-support.js";

export const DATASTORE_TOKEN_ENV = "CALICO_DATASTORE_TOKEN";
export const DATASTORE_CA_ENV = "CALICO_DATASTORE_CA";
const API = "/calico-ts/v1/";
const DATASTORE_CODES = new Set<string>(Object.values(DatastoreErrorCode));

export interface HttpDatastoreOptions {
  token?: string;
  /** PEM CA bundle(s) to trust for https. */
  ca?: string | Buffer;
  /** Per-request timeout (default 30 s). */
  requestTimeoutMs?: number;
  /** A watch gives up (UNAVAILABLE) after failing to reconnect for this long (default 5 min). */
  watchReconnectTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class HttpDatastore implements Datastore {
  /** The base URL without credentials. */
  readonly url: string;
  private readonly base: URL;
  private readonly https: boolean;
  private readonly agent: HttpAgent;
  private readonly watches = new Set<HttpWatch>();
  private closed = false;

  constructor(
    url: string,
    private readonly opts: HttpDatastoreOptions = {},
  ) {
    const u = new URL(url);
    this.https = u.protocol === "https:";
    this.base = new URL(`${u.protocol}//${u.host}`);
    this.url = this.base.origin;
    const agentOpts = { keepAlive: true, maxSockets: 32, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) };
    this.agent = this.https ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
  }

  get(key: string): Promise<KV | undefined> {
    return this.op(async () => {
      checkKey(key);
      try {
        return (await this.call<{ kv: KV }>("GET", "kv", { key }, undefined, true)).kv;
      } catch (err) {
        if ((err as { code?: string }).code === DatastoreErrorCode.NOT_FOUND) return undefined;
        throw err;
      }
    });
  }

  list(prefix: string): Promise<ListResult> {
    return this.op(() => this.call<ListResult>("GET", "kv", { prefix }, undefined, true));
  }

  create(key: string, value: string): Promise<KV> {
    return this.op(async () => {
      checkKey(key);
      checkValue(key, value);
      return (await this.call<{ kv: KV }>("POST", "kv", {}, { key, value })).kv;
    });
  }

  update(key: string, value: string, expectedRevision?: number): Promise<KV> {
    return this.op(async () => {
      checkKey(key);
      checkValue(key, value);
      if (expectedRevision !== undefined) checkRevision("expected revision", expectedRevision);
      const body = expectedRevision === undefined ? { key, value } : { key, value, expectedRevision };
      return (await this.call<{ kv: KV }>("PUT", "kv", {}, body)).kv;
    });
  }

  delete(key: string, expectedRevision?: number): Promise<KV> {
    return this.op(async () => {
      checkKey(key);
      if (expectedRevision !== undefined) checkRevision("expected revision", expectedRevision);
      const q: Record<string, string> = { key };
      if (expectedRevision !== undefined) q.expectedRevision = String(expectedRevision);
      return (await this.call<{ kv: KV }>("DELETE", "kv", q)).kv;
    });
  }

  revision(): Promise<number> {
    return this.op(
      async () => (await this.call<{ revision: number }>("GET", "revision", {}, undefined, true)).revision,
    );
  }

  compact(revision: number): Promise<void> {
    return this.op(async () => {
      checkRevision("compaction revision", revision);
      await this.call("POST", "compact", {}, { revision });
    });
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    const w = new HttpWatch(this, prefix, afterRevision, handlers, () => this.watches.delete(w));
    const startError = watchStartError(this.closed, this.url, prefix, afterRevision);
    if (startError !== undefined) {
      w.fail(startError);
      return w;
    }
    this.watches.add(w);
    w.connect();
    return w;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const err = new DatastoreError(DatastoreErrorCode.CLOSED, `Datastore ${this.url} was closed`);
    for (const w of [...this.watches]) w.fail(err, true);
    this.agent.destroy();
    return Promise.resolve();
  }

  private async op<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new DatastoreError(DatastoreErrorCode.CLOSED, `Datastore ${this.url} is closed`);
    return fn();
  }

  /** Build request options for `path` (under the raw API) with the query `q`. */
  requestOptions(path: string, q: Record<string, string>, method: string, agent: HttpAgent | false) {
    const u = new URL(API + path, this.base);
    for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.opts.token !== undefined && this.opts.token !== "")
      headers.authorization = `Bearer ${this.opts.token}`;
    return {
      url: u,
      options: {
        method,
        headers,
        agent,
        ...(this.https && this.opts.ca !== undefined ? { ca: this.opts.ca } : {}),
      },
    };
  }

  request(url: URL, options: object, cb: (res: IncomingMessage) => void) {
    return this.https ? httpsRequest(url, options, cb) : httpRequest(url, options, cb);
  }

  get watchReconnectTimeoutMs(): number {
    return this.opts.watchReconnectTimeoutMs ?? 300_000;
  }

  private async call<T>(
    method: string,
    path: string,
    q: Record<string, string>,
    body?: unknown,
    idempotent = false,
  ): Promise<T> {
    const attempts = idempotent ? 4 : 1;
    for (let i = 1; ; i++) {
      try {
        return await this.once<T>(method, path, q, body);
      } catch (err) {
        if (!(err instanceof ConnectionError) || i >= attempts || this.closed)
          throw toDatastoreError(err, this.url);
        await sleep(50 * 2 ** i);
      }
    }
  }

  private once<T>(method: string, path: string, q: Record<string, string>, body?: unknown): Promise<T> {
    const { url, options } = this.requestOptions(path, q, method, this.agent);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload !== undefined) {
      options.headers["content-type"] = "application/json";
      options.headers["content-length"] = String(payload.length);
    }
    return new Promise<T>((resolve, reject) => {
      const req = this.request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (e) => reject(new ConnectionError(e)));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text === "" ? {} : JSON.parse(text);
          } catch {
            reject(responseError(res.statusCode ?? 0, undefined, this.url));
            return;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(parsed as T);
          else reject(responseError(status, parsed, this.url));
        });
      });
      req.setTimeout(this.opts.requestTimeoutMs ?? 30_000, () => req.destroy(new Error("request timed out")));
      req.on("error", (e) => reject(new ConnectionError(e)));
      req.end(payload);
    });
  }
}

class ConnectionError extends Error {
  constructor(readonly inner: Error) {
    super(inner.message, { cause: inner });
  }
}

function toDatastoreError(err: unknown, url: string): Error {
  if (err instanceof ConnectionError) {
    return new DatastoreError(
      DatastoreErrorCode.UNAVAILABLE,
      `Datastore ${url} is unreachable: ${err.inner.message}`,
      { cause: err.inner },
    );
  }
  return err as Error;
}

/** The DatastoreError for a non-2xx answer. */
export function responseError(status: number, body: unknown, url: string): DatastoreError {
  const b = (typeof body === "object" && body !== null ? body : {}) as {
    code?: unknown;
    message?: unknown;
    key?: unknown;
  };
  const message = typeof b.message === "string" ? b.message : `HTTP ${status}`;
  if (typeof b.code === "string" && DATASTORE_CODES.has(b.code)) {
    return new DatastoreError(
      b.code as DatastoreErrorCode,
      message,
      typeof b.key === "string" ? { key: b.key } : {},
    );
  }
  if (status === 401 || status === 403) {
    return new DatastoreError(
      DatastoreErrorCode.UNAVAILABLE,
      `Datastore ${url} refused the request: ${status} ${status === 401 ? "Unauthorized (missing or unknown token)" : "Forbidden (the token may only read)"}`,
    );
  }
  if (status >= 400 && status < 500) {
    return new DatastoreError(
      DatastoreErrorCode.INVALID_ARGUMENT,
      `Datastore ${url} rejected the request: ${message}`,
    );
  }
  return new DatastoreError(DatastoreErrorCode.UNAVAILABLE, `Datastore ${url} failed: ${message}`);
}

type StreamLine =
  | WatchEvent
  | { type: "in-sync"; revision: number }
  | { type: "heartbeat"; revision: number }
  | { type: "error"; code?: string; message?: string };

/** One watch: a long-lived GET of the NDJSON stream, reconnected from its cursor on failure. */
class HttpWatch implements Watch {
  private cursor: number;
  private closed = false;
  private req: ReturnType<HttpDatastore["request"]> | undefined;
  private retryMs = 50;
  /** Connection generation: callbacks of an abandoned connection are ignored. */
  private gen = 0;
  private failingSince: number | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ds: HttpDatastore,
    private readonly prefix: string,
    afterRevision: number,
    private readonly handlers: WatchHandlers,
    private readonly onClose: () => void,
  ) {
    this.cursor = afterRevision;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.req?.destroy();
    this.req = undefined;
    this.onClose();
  }

  fail(err: Error, now = false): void {
    if (this.closed) return;
    this.close();
    deliverWatchError(this.handlers, err, now);
  }

  connect(): void {
    if (this.closed) return;
    const gen = ++this.gen;
    const retry = (e: Error) => {
      if (gen === this.gen) this.retry(e);
    };
    const { url, options } = this.ds.requestOptions(
      "watch",
      { prefix: this.prefix, revision: String(this.cursor) },
      "GET",
      false,
    );
    const req = this.ds.request(url, options, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            body = undefined;
          }
          const err = responseError(status, body, this.ds.url);
          // Overloaded / restarting / not in sync yet: try again; anything else is final.
          if (status >= 500) retry(err);
          else this.fail(err, true);
        });
        res.on("error", (e) => retry(e));
        return;
      }
      this.failingSince = undefined;
      this.retryMs = 50;
      const hb = Number(res.headers["x-calico-heartbeat-ms"] ?? "10000");
      const idleMs = (Number.isFinite(hb) && hb > 0 ? hb : 10_000) * 3 + 1000;
      const armIdle = () => {
        if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
        this.idleTimer = setTimeout(() => req.destroy(new Error(`no data for ${idleMs} ms`)), idleMs);
        this.idleTimer.unref();
      };
      armIdle();
      let partial = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (this.closed || gen !== this.gen) return;
        armIdle();
        const text = partial + chunk;
        const lines = text.split("\n");
        partial = lines.pop()!;
        const events: WatchEvent[] = [];
        for (const line of lines) {
          if (line === "") continue;
          let m: StreamLine;
          try {
            m = JSON.parse(line) as StreamLine;
            // A misbehaving server or proxy must not crash the client: only objects are lines.
            if (typeof m !== "object" || m === null || typeof m.type !== "string")
              throw new Error("not a line");
          } catch {
            req.destroy(new Error("malformed watch stream line"));
            return;
          }
          switch (m.type) {
            case "put":
            case "delete":
              events.push(m);
              break;
            case "in-sync":
            case "heartbeat":
              break;
            case "error": {
              this.deliver(events);
              const code =
                typeof m.code === "string" && DATASTORE_CODES.has(m.code) ? m.code : "DATASTORE_UNAVAILABLE";
              this.fail(new DatastoreError(code as DatastoreErrorCode, m.message ?? "watch ended"), true);
              return;
            }
          }
          if (m.type === "in-sync" || m.type === "heartbeat") {
            this.deliver(events);
            events.length = 0;
            this.cursor = Math.max(this.cursor, m.revision);
          }
        }
        this.deliver(events);
      });
      res.on("end", () => retry(new Error("watch stream ended")));
      res.on("error", (e) => retry(e));
      res.on("close", () => retry(new Error("watch stream closed")));
    });
    req.on("error", (e) => retry(e));
    req.end();
    this.req = req;
  }

  /** Hand events to the handler (≤ 1,000 per call); a throwing handler ends the watch. */
  private deliver(events: WatchEvent[]): void {
    for (let i = 0; i < events.length && !this.closed; i += 1000) {
      const batch = events.slice(i, i + 1000);
      const last = batch[batch.length - 1]!;
      this.cursor = last.type === "put" ? last.kv.modRevision : last.revision;
      try {
        this.handlers.onEvents(batch);
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)), true);
      }
    }
  }

  private retry(err: Error): void {
    if (this.closed || this.retryTimer !== undefined) return;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.req?.destroy();
    this.req = undefined;
    const now = Date.now();
    this.failingSince ??= now;
    if (now - this.failingSince > this.ds.watchReconnectTimeoutMs) {
      this.fail(
        new DatastoreError(
          DatastoreErrorCode.UNAVAILABLE,
          `Watch of "${this.prefix}" on ${this.ds.url} could not reconnect for ${this.ds.watchReconnectTimeoutMs} ms: ${err.message}`,
          { cause: err },
        ),
        true,
      );
      return;
    }
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 2_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }
}

export const HTTP_URL_FORMS = ["http(s)://[token@]host:port[?token=…&ca=<file>]"];

/** A datastore URL with its token replaced by `***`, for messages. */
export function redactHttpUrl(value: string): string {
  return value.replace(/\/\/[^@/?#]*@/, "//***@").replace(/([?&]token=)[^&#]*/, "$1***");
}

/**
 * Parse `http(s)://[token@]host:port[/][?token=&ca=]` (+ env) into a base URL and options;
 * `badUrl(shown, why)` builds the error for a malformed value (`shown` has the token redacted).
 */
/** The token part of `https://TOKEN@host`, percent-decoded; a bad escape throws `badEscape()`. */
function decodeToken(raw: string, badEscape: () => Error): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badEscape();
  }
}

export function parseHttpDatastoreUrl(
  value: string,
  opts: { env?: NodeJS.ProcessEnv; badUrl?: (shown: string, why: string) => Error } = {},
): { url: string; options: HttpDatastoreOptions } {
  const env = opts.env ?? process.env;
  const shown = redactHttpUrl(value);
  const bad =
    opts.badUrl ??
    ((s: string, why: string) =>
      new DatastoreError(
        DatastoreErrorCode.BAD_URL,
        `Invalid datastore setting ${JSON.stringify(s)}: ${why}`,
      ));
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw bad(shown, "expected http(s)://host:port");
  }
  const scheme = u.protocol.replace(/:$/, "").toLowerCase();
  if ((scheme !== "http" && scheme !== "https") || !/^[a-z]+:\/\//i.test(value)) {
    throw bad(shown, "expected http(s)://host:port");
  }
  if (u.hostname === "" || u.port === "" || (u.pathname !== "/" && u.pathname !== "")) {
    throw bad(shown, `expected ${scheme}://host:port (with a port, without a path)`);
  }
  for (const k of u.searchParams.keys()) {
    if (k !== "token" && k !== "ca") throw bad(shown, `unknown parameter "${k}" (known: token, ca)`);
  }
  if (u.password !== "") throw bad(shown, "give the token as token@host:port, not user:password@");
  const token =
    (u.username !== ""
      ? decodeToken(u.username, () => bad(shown, "the token before @ has a malformed %-escape"))
      : undefined) ??
    u.searchParams.get("token") ??
    env[DATASTORE_TOKEN_ENV];
  const caPath = u.searchParams.get("ca") ?? env[DATASTORE_CA_ENV];
  const options: HttpDatastoreOptions = {};
  if (token !== undefined && token !== "") options.token = token;
  if (caPath !== undefined && caPath !== "") {
    if (scheme !== "https") throw bad(shown, "a CA file needs https://");
    try {
      options.ca = readFileSync(caPath);
    } catch (err) {
      throw new DatastoreError(
        DatastoreErrorCode.UNAVAILABLE,
        `Cannot read the CA file ${JSON.stringify(caPath)} for datastore ${JSON.stringify(shown)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  return { url: `${scheme}://${u.host}`, options };
}

/** Open an HTTP datastore (lazily: nothing is contacted until the first call). */
export function openHttpDatastore(
  value: string,
  opts: { env?: NodeJS.ProcessEnv; badUrl?: (shown: string, why: string) => Error } = {},
): HttpDatastore {
  const { url, options } = parseHttpDatastoreUrl(value, opts);
  return new HttpDatastore(url, options);
}
