/** Shared helpers for the API server tests: raw HTTP calls, NDJSON watch readers, throwaway certs. */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import type { Datastore, Watch, WatchEvent } from "../src/datastore/types.js";
import { isCompacted } from "../src/datastore/types.js";

export interface CallResult {
  status: number;
  headers: IncomingMessage["headers"];
  text: string;
  json: unknown;
}

export interface CallOptions {
  body?: unknown;
  /** Sent as is (not JSON-encoded). */
  rawBody?: string | Buffer;
  token?: string;
  headers?: Record<string, string>;
  ca?: Buffer;
  timeoutMs?: number;
}

/** One HTTP(S) request; resolves with status and body (never rejects on a status). */
export function call(
  base: string,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<CallResult> {
  const url = new URL(path, base);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let payload: Buffer | undefined;
  if (opts.rawBody !== undefined) payload = Buffer.from(opts.rawBody);
  else if (opts.body !== undefined) payload = Buffer.from(JSON.stringify(opts.body));
  if (payload !== undefined) {
    headers["content-type"] ??= "application/json";
    headers["content-length"] = String(payload.length);
  }
  const options = {
    method,
    headers,
    agent: false as const,
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
  };
  return new Promise((resolve, reject) => {
    const cb = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on("error", reject);
    };
    const req = url.protocol === "https:" ? httpsRequest(url, options, cb) : httpRequest(url, options, cb);
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

export type Line = {
  type: string;
  revision?: number;
  kv?: { key: string; value: string; modRevision: number };
  key?: string;
};

/** An open NDJSON watch stream that records every line. */
export class StreamReader {
  readonly lines: Line[] = [];
  status = 0;
  ended = false;
  error: Error | undefined;
  body = "";
  private req: ReturnType<typeof httpRequest> | undefined;
  private readonly opened: Promise<void>;

  constructor(base: string, path: string, opts: { token?: string; ca?: Buffer; paused?: boolean } = {}) {
    const url = new URL(path, base);
    const headers: Record<string, string> = {};
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const options = { headers, agent: false as const, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) };
    this.opened = new Promise((resolve) => {
      const cb = (res: IncomingMessage) => {
        this.status = res.statusCode ?? 0;
        resolve();
        if (opts.paused === true) {
          res.pause();
          return;
        }
        let partial = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          if (this.status !== 200) {
            this.body += c;
            return;
          }
          const parts = (partial + c).split("\n");
          partial = parts.pop()!;
          for (const p of parts) if (p !== "") this.lines.push(JSON.parse(p) as Line);
        });
        res.on("end", () => (this.ended = true));
        res.on("close", () => (this.ended = true));
        res.on("error", (e) => (this.error = e));
      };
      this.req = url.protocol === "https:" ? httpsRequest(url, options, cb) : httpRequest(url, options, cb);
      this.req.on("error", (e) => {
        this.error = e;
        this.ended = true;
        resolve();
      });
      this.req.end();
    });
  }

  open(): Promise<void> {
    return this.opened;
  }

  get socketBytesRead(): number {
    return this.req?.socket?.bytesRead ?? 0;
  }

  events(): Line[] {
    return this.lines.filter((l) => l.type === "put" || l.type === "delete");
  }

  async waitFor(pred: (r: StreamReader) => boolean, what: string, ms = 5_000): Promise<void> {
    await until(
      () => pred(this),
      () => `${what} (lines: ${JSON.stringify(this.lines.slice(-5))})`,
      ms,
    );
  }

  close(): void {
    this.req?.destroy();
  }
}

export async function until(cond: () => boolean, what: () => string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A throwaway self-signed certificate for 127.0.0.1 / localhost, made with openssl. */
export function makeCert(): {
  dir: string;
  cert: Buffer;
  key: Buffer;
  certPath: string;
  keyPath: string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), "calico-ts-apiserver-tls-"));
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  const cfg = join(dir, "openssl.cnf");
  writeFileSync(
    cfg,
    [
      "[req]",
      "distinguished_name = dn",
      "x509_extensions = ext",
      "prompt = no",
      "[dn]",
      "CN = calico-apiserver-test",
      "[ext]",
      "subjectAltName = IP:127.0.0.1, DNS:localhost",
      "basicConstraints = critical, CA:TRUE",
      "",
    ].join("\n"),
  );
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
    ].concat(["-keyout", keyPath, "-out", certPath, "-config", cfg]),
    { stdio: "ignore" },
  );
  return {
    dir,
    cert: readFileSync(certPath),
    key: readFileSync(keyPath),
    certPath,
    keyPath,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A syncer-style client: list, watch from the listed revision, re-list on REVISION_COMPACTED. */
export class ClientMirror {
  state = new Map<string, string>();
  revision = 0;
  relists = 0;
  readonly duplicates: number[] = [];
  private watch: Watch | undefined;
  private stopped = false;

  constructor(
    readonly ds: Datastore,
    private readonly prefix: string,
  ) {}

  async start(): Promise<void> {
    const l = await this.ds.list(this.prefix);
    this.state = new Map(l.items.map((kv) => [kv.key, kv.value]));
    this.revision = l.revision;
    this.watch = this.ds.watch(this.prefix, l.revision, {
      onEvents: (es) => this.apply(es),
      onError: (err) => {
        if (this.stopped) return;
        if (!isCompacted(err)) throw err;
        this.relists++;
        void this.start();
      },
    });
  }

  private apply(events: WatchEvent[]): void {
    for (const e of events) {
      const r = e.type === "put" ? e.kv.modRevision : e.revision;
      if (r <= this.revision) this.duplicates.push(r);
      this.revision = r;
      if (e.type === "put") this.state.set(e.kv.key, e.kv.value);
      else this.state.delete(e.key);
    }
  }

  stop(): void {
    this.stopped = true;
    this.watch?.close();
  }
}
