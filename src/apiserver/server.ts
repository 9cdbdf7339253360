/**
 * `ApiServer`: the datastore over HTTP(S) with watch fan-out (DESIGN.md §1, Calico Typha's
 * role). One watch cache (watch-cache.ts) fed by one datastore watch serves every watcher;
 * the raw key API (raw-api.ts) serves reads and CAS writes; the Kubernetes-style resource API
 * (k8s-api.ts, mounted when present) serves `/api`, `/apis`, `/openapi`, `/version`.
 * Bearer-token auth (auth.ts), optional TLS, `/livez`, `/readyz`, Prometheus `/metrics`.
 * See docs/apiserver.md for the protocol, limits and invariants.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Datastore } from "../datastore/types.js";
import { isUnavailable } from "../datastore/types.js";
import { ResourceStore } from "../datastore/resources.js";
import { ANONYMOUS, isReadMethod, type AuthInfo, type TokenAuthenticator } from "./auth.js";
import { ApiError, ApiErrorCode, errorResponse } from "./errors.js";
import { ApiServerMetrics } from "./metrics.js";
import { handleRawApi, rawRoute, type RawApiContext } from "./raw-api.js";
import { WatchCache, type WatchCacheOptions } from "./watch-cache.js";
import { WatchStream, type WatchStreamLimits } from "./watch-stream.js";
import { createK8sApiHandler } from "./k8s-api.js";

export type K8sApiHandler = (req: IncomingMessage, res: ServerResponse, auth: AuthInfo) => Promise<boolean>;

export interface ApiServerOptions {
  store: Datastore;
  /** Listen address (default 127.0.0.1, port 0 = any free port). */
  host?: string;
  port?: number;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Bearer-token auth; without it every request is allowed (anonymous). */
  tokens?: TokenAuthenticator;
  /** The key root served (default `/calico/`). */
  root?: string;
  /** Largest request body accepted (default 4 MiB). */
  maxBodyBytes?: number;
  heartbeatMs?: number;
  watchLimits?: Partial<WatchStreamLimits>;
  cache?: Omit<WatchCacheOptions, "root" | "onDatastoreError">;
  /** How long a watch waits for the cache to get in sync before 503 (default 10 s). */
  readyTimeoutMs?: number;
  /** The Kubernetes-style API; default: `createK8sApiHandler` (k8s-api.ts); null: none. */
  k8sApi?: K8sApiHandler | null;
  log?: (line: string) => void;
}

const K8S_PREFIXES = ["/api", "/apis", "/openapi", "/version"];
const isK8sPath = (p: string): boolean => K8S_PREFIXES.some((x) => p === x || p.startsWith(`${x}/`));

export class ApiServer {
  readonly cache: WatchCache;
  readonly metrics = new ApiServerMetrics();
  private readonly server: Server;
  private readonly streams = new Set<WatchStream>();
  private readonly sockets = new Set<Socket>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeartbeat = 0;
  private k8s: K8sApiHandler | null | undefined;
  private readonly limits: WatchStreamLimits;
  private readonly maxBodyBytes: number;
  private readonly heartbeatMs: number;
  private readonly root: string;
  private readonly rawCtx: RawApiContext;
  private stopping = false;

  constructor(private readonly opts: ApiServerOptions) {
    this.root = opts.root ?? "/calico/";
    this.maxBodyBytes = opts.maxBodyBytes ?? 4 * 1024 * 1024;
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.limits = {
      maxQueuedEvents: opts.watchLimits?.maxQueuedEvents ?? 10_000,
      maxQueuedBytes: opts.watchLimits?.maxQueuedBytes ?? 16 * 1024 * 1024,
      stallMs: opts.watchLimits?.stallMs ?? 60_000,
    };
    this.k8s = opts.k8sApi;
    this.cache = new WatchCache(opts.store, {
      ...opts.cache,
      root: this.root,
      onDatastoreError: (err) => {
        this.metrics.datastoreErrors.inc({ op: "watch" });
        this.log(`watch cache: datastore watch failed, resuming: ${(err as Error).message}`);
      },
    });
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server =
      opts.tls !== undefined
        ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler)
        : createHttpServer(handler);
    // Headers must arrive promptly; bodies are bounded by maxBodyBytes; watch streams live long.
    this.server.headersTimeout = 30_000;
    this.server.requestTimeout = 0;
    this.server.keepAliveTimeout = 30_000;
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.server.on("clientError", (_err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
    this.rawCtx = {
      store: opts.store,
      root: this.root,
      readBody: (req) => this.readJson(req),
      sendJson: (res, status, body) => sendJson(res, status, body),
      startWatch: (req, res, prefix, after) => this.startWatch(req, res, prefix, after),
      noteCompacted: (r) => this.cache.noteCompacted(r),
    };
  }

  /** Start the cache and listen; resolves once listening (readiness follows the cache). */
  async start(): Promise<void> {
    if (this.k8s === undefined) {
      const store = new ResourceStore(this.opts.store);
      this.k8s = createK8sApiHandler({ store, watchSource: this.cache });
      // The default tier and ClusterInformation exist in every initialised store (resources.ts);
      // best effort: a datastore that is down now gets them on the first resource write.
      if (this.root === "/calico/") {
        store
          .ensureBuiltins()
          .catch((err: unknown) => this.log(`cannot create the built-in resources: ${String(err)}`));
      }
    }
    void this.cache.start().then(() => {
      this.metrics.cacheRevision.set(this.cache.currentRevision);
    });
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.heartbeatTimer = setInterval(() => this.tick(), Math.min(this.heartbeatMs, 1000));
    this.heartbeatTimer.unref();
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** The base URL clients use, e.g. `https://127.0.0.1:40123`. */
  get url(): string {
    const { address, port, family } = this.address;
    const host = family === "IPv6" ? `[${address}]` : address;
    return `${this.opts.tls !== undefined ? "https" : "http"}://${host}:${port}`;
  }

  get watcherCount(): number {
    return this.streams.size;
  }

  /**
   * Graceful stop: refuse new requests, end every watch stream (clients reconnect elsewhere or
   * later), let in-flight requests finish for up to `graceMs`, then close what is left.
   */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of [...this.streams]) s.end();
    // Closing the cache ends the Kubernetes-API watches too (they are served from it); without
    // this, `kubectl get -w` streams kept stop() waiting for the whole grace period.
    this.cache.close();
    // Connections go idle as their streams end (a tick or two from now): keep closing them.
    this.server.closeIdleConnections();
    const idleSweep = setInterval(() => this.server.closeIdleConnections(), 50);
    idleSweep.unref();
    const timer = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
    clearInterval(idleSweep);
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  private tick(): void {
    const now = Date.now();
    const rev = this.cache.currentRevision;
    this.metrics.cacheRevision.set(rev);
    const heartbeat = now - this.lastHeartbeat >= this.heartbeatMs;
    if (heartbeat) this.lastHeartbeat = now;
    for (const s of this.streams) s.tick(now, heartbeat ? rev : -1);
  }
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    let route = "unknown";
    res.on("close", () => {
      const secs = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.requestDuration.observe(
        { route, method: req.method ?? "?", code: String(res.headersSent ? res.statusCode : 499) },
        secs,
      );
    });
    try {
      let url: URL;
      try {
        url = new URL(req.url ?? "/", "http://localhost");
      } catch {
        throw new ApiError(400, ApiErrorCode.BAD_REQUEST, "Malformed request URL");
      }
      const path = url.pathname;
      if (path === "/livez" || path === "/healthz") {
        route = "livez";
        sendText(res, 200, "ok\n");
        return;
      }
      if (path === "/readyz") {
        route = "readyz";
        const ready = this.cache.inSync && !this.stopping;
        sendText(res, ready ? 200 : 503, ready ? "ok\n" : "not ready: the watch cache is not in sync\n");
        return;
      }
      if (path === "/metrics") {
        route = "metrics";
        const body = await this.metrics.registry.metrics();
        res.writeHead(200, { "content-type": this.metrics.registry.contentType });
        res.end(body);
        return;
      }
      const k8sPath = isK8sPath(path);
      const auth = this.authenticate(req, res, k8sPath);
      if (auth === undefined) {
        route = "unauthorized";
        return;
      }
      const raw = rawRoute(path);
      if (raw !== undefined) {
        route = raw;
        await handleRawApi(this.rawCtx, req, res, url);
        return;
      }
      if (k8sPath && this.k8s !== null && this.k8s !== undefined) {
        route = "k8s";
        if (await this.k8s(req, res, auth)) return;
      }
      route = "not-found";
      throw new ApiError(404, ApiErrorCode.NOT_FOUND, `No such API path ${JSON.stringify(path)}`);
    } catch (err) {
      const e = errorResponse(err);
      if (e.status >= 500) {
        if (e.status === 503 || isUnavailable(err)) this.metrics.datastoreErrors.inc({ op: route });
        else this.log(`${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(
        res,
        e.status,
        e.key !== undefined
          ? { code: e.code, message: e.message, key: e.key }
          : { code: e.code, message: e.message },
      );
    }
  }

  /** The caller's identity, or undefined after answering 401/403 (bodies reveal nothing). */
  private authenticate(req: IncomingMessage, res: ServerResponse, k8s: boolean): AuthInfo | undefined {
    const tokens = this.opts.tokens;
    if (tokens === undefined) return ANONYMOUS;
    const info = tokens.authenticate(req);
    if (info === undefined) {
      res.setHeader("www-authenticate", 'Bearer realm="calico-apiserver"');
      drain(req);
      sendDenied(res, 401, k8s);
      return undefined;
    }
    if (info.readOnly && !isReadMethod(req.method)) {
      drain(req);
      sendDenied(res, 403, k8s);
      return undefined;
    }
    return info;
  }

  private async startWatch(
    req: IncomingMessage,
    res: ServerResponse,
    prefix: string,
    after: number | undefined,
  ): Promise<void> {
    if (!this.cache.inSync) {
      const timeout = this.opts.readyTimeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.cache.ready(),
        new Promise((r) => {
          timer = setTimeout(r, timeout);
        }),
      ]);
      clearTimeout(timer);
      if (!this.cache.inSync) {
        throw new ApiError(
          503,
          ApiErrorCode.UNAVAILABLE,
          "The watch cache is not in sync with the datastore yet",
        );
      }
    }
    if (req.destroyed) return;
    if (this.stopping) throw new ApiError(503, ApiErrorCode.UNAVAILABLE, "The API server is shutting down");
    const stream = new WatchStream(res, this.limits, {
      delivered: (n) => this.metrics.eventsDelivered.inc(n),
      cutOff: (reason) => {
        this.metrics.watchersCutOff.inc();
        this.log(`watch ${prefix}: cut off: ${reason}`);
      },
      closed: (s) => {
        if (this.streams.delete(s)) this.metrics.watchers.dec();
      },
    });
    stream.start(this.cache, prefix, after, this.heartbeatMs); // throws COMPACTED before writing
    this.streams.add(stream);
    this.metrics.watchers.inc();
    req.socket.setNoDelay(true);
  }

  /** Read a JSON body of at most maxBodyBytes. */
  private readJson(req: IncomingMessage): Promise<unknown> {
    const limit = this.maxBodyBytes;
    const tooLarge = () =>
      new ApiError(
        413,
        ApiErrorCode.PAYLOAD_TOO_LARGE,
        `Request body larger than the limit of ${limit} bytes`,
      );
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) {
      req.resume();
      return Promise.reject(tooLarge());
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on("data", (c: Buffer) => {
        if (failed) return;
        size += c.length;
        if (size > limit) {
          failed = true;
          reject(tooLarge());
          return;
        }
        chunks.push(c);
      });
      req.on("end", () => {
        if (failed) return;
        const text = Buffer.concat(chunks).toString("utf8");
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(new ApiError(400, ApiErrorCode.BAD_REQUEST, `Invalid JSON body: ${(err as Error).message}`));
        }
      });
      req.on("error", (err) => {
        if (!failed) reject(err);
      });
      // The client went away mid-body: settle (the answer goes nowhere, but nothing waits forever).
      req.on("close", () => {
        if (!req.complete && !failed) {
          failed = true;
          reject(new ApiError(400, ApiErrorCode.BAD_REQUEST, "The request body was cut short"));
        }
      });
    });
  }
}

function drain(req: IncomingMessage): void {
  req.resume();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  };
  // A rejected body may still be arriving: do not keep the connection for another request.
  // Nor for an unauthenticated caller, who must not be able to hold sockets open (401).
  if (status === 413 || status === 401) headers.connection = "close";
  res.writeHead(status, headers);
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** 401/403 with a body that says nothing about the path or the token (Kubernetes Status for /api*). */
function sendDenied(res: ServerResponse, status: 401 | 403, k8s: boolean): void {
  const reason = status === 401 ? "Unauthorized" : "Forbidden";
  if (k8s) {
    sendJson(res, status, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: reason,
      reason,
      code: status,
    });
  } else {
    sendJson(res, status, {
      code: status === 401 ? ApiErrorCode.UNAUTHORIZED : ApiErrorCode.FORBIDDEN,
      message: reason,
    });
  }
}
