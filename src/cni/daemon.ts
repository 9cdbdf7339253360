/**
 * The CNI daemon: calico-node answers the plugins' invocations itself, so a container's ADD does
 * not pay for a Node start-up (~120 ms of CPU here before any work) and a datastore open per
 * container (docs/cni.md, "The CNI daemon"). The installed plugin executables are small shell
 * scripts (install.ts): when a daemon serves the network namespace they run in, they send it the
 * invocation over a unix socket and print what it answers; when none does (calico-node not
 * running, an older one, `nc` missing) they run the plugin in their own process, as before.
 * Both run the same code (skel.ts, calico.ts), so a result does not depend on who produced it.
 *
 * One daemon per host network namespace: the socket is named after the namespace's inode
 * (`/run/calico/cni/net-<inode>.sock`), which is what the shell script can read from
 * /proc/self/ns/net, so several lab hosts on one machine each reach their own agent. The
 * directory is root's alone (0700): the daemon creates interfaces and writes the datastore for
 * whoever connects.
 *
 * Wire format (version 1), all of it before the client shuts down its write side:
 *   "calico-ts-cni/1" NUL plugin NUL (NAME=VALUE NUL)* NUL config-bytes
 * The daemon writes "calico-ts-cni/1\n" as soon as it accepts, so a client that read nothing
 * knows its request was never taken (and may run the plugin itself), then "<exit code>\n" and
 * the plugin's stdout.
 */
import { chmodSync, mkdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { netnsPath } from "../dataplane/netns.js";
import type { Datastore } from "../datastore/types.js";
import { openPluginDatastore } from "./datastore.js";
import { runExecutable } from "./entry.js";
import type { PluginName } from "./entry.js";
import { CniCode } from "./types.js";

export const CNI_DAEMON_DIR = "/run/calico/cni";
export const WIRE_MAGIC = "calico-ts-cni/1";
/** A configuration larger than this is refused (the spec's configs are a few kB). */
export const MAX_REQUEST_BYTES = 1 << 20;
/** A client that has not finished sending by then is dropped. */
const REQUEST_TIMEOUT_MS = 30_000;

const PLUGINS: readonly PluginName[] = ["calico", "calico-ipam"];

/** The inode of a network namespace (name or path; undefined: this process's). */
export function netnsInode(netns?: string): number {
  return statSync(netns === undefined ? "/proc/self/ns/net" : netnsPath(netns)).ino;
}

/** Where the daemon serving the namespace with this inode listens. */
export function daemonSocketPath(inode: number, dir = CNI_DAEMON_DIR): string {
  return join(dir, `net-${inode}.sock`);
}

export interface CniRequest {
  plugin: PluginName;
  env: NodeJS.ProcessEnv;
  stdin: string;
}

export class CniWireError extends Error {}

/** Decode one request; throws CniWireError naming what is wrong. */
export function parseRequest(buf: Buffer): CniRequest {
  let at = 0;
  const field = (what: string): string => {
    const end = buf.indexOf(0, at);
    if (end < 0) throw new CniWireError(`request ends inside the ${what} (no NUL after byte ${at})`);
    const text = buf.toString("utf8", at, end);
    at = end + 1;
    return text;
  };
  if (!buf.subarray(0, WIRE_MAGIC.length + 1).equals(Buffer.from(`${WIRE_MAGIC}\0`))) {
    const head = buf.toString("utf8", 0, Math.min(buf.length, 40)).split("\0")[0]!;
    throw new CniWireError(
      buf.length === 0 ? "empty request" : `request starts with ${JSON.stringify(head)}, not "${WIRE_MAGIC}"`,
    );
  }
  at = WIRE_MAGIC.length + 1;
  const plugin = field("plugin name");
  if (!(PLUGINS as readonly string[]).includes(plugin)) {
    throw new CniWireError(
      `unknown plugin ${JSON.stringify(plugin.slice(0, 40))} (expected ${PLUGINS.join(" or ")})`,
    );
  }
  const env: NodeJS.ProcessEnv = {};
  for (let i = 0; ; i++) {
    const entry = field(`environment (entry ${i})`);
    if (entry === "") break;
    const eq = entry.indexOf("=");
    if (eq <= 0)
      throw new CniWireError(`environment entry ${i} ${JSON.stringify(entry.slice(0, 40))} has no NAME=`);
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { plugin: plugin as PluginName, env, stdin: buf.toString("utf8", at) };
}

/** Encode a request (what the shell scripts send; for tests and Node clients). */
export function encodeRequest(r: CniRequest): Buffer {
  const env = Object.entries(r.env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}\0`)
    .join("");
  return Buffer.from(`${WIRE_MAGIC}\0${r.plugin}\0${env}\0${r.stdin}`, "utf8");
}

export interface CniDaemonOptions {
  /** The host network namespace the veths' host ends go in (as calico-node's --netns). */
  hostNetns?: string;
  /** Default: daemonSocketPath(netnsInode(hostNetns)). */
  socketPath?: string;
  log: { info(msg: string, f?: object): void; warn(msg: string, f?: object): void };
}

export class CniDaemon {
  readonly socketPath: string;
  private server: Server | undefined;
  private readonly datastores = new Map<string, Promise<Datastore>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly sockets = new Set<Socket>();
  /** Requests answered, for tests and the log. */
  served = 0;

  constructor(private readonly o: CniDaemonOptions) {
    this.socketPath = o.socketPath ?? daemonSocketPath(netnsInode(o.hostNetns));
  }

  /** Listen. A socket left by a previous run is replaced. */
  async start(): Promise<void> {
    const dir = join(this.socketPath, "..");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    rmSync(this.socketPath, { force: true });
    const server = createServer({ allowHalfOpen: true }, (sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    chmodSync(this.socketPath, 0o600);
    server.on("error", (e) => this.o.log.warn("CNI daemon socket error", { error: e.message }));
    this.server = server;
    this.o.log.info("CNI daemon listening", { socket: this.socketPath });
  }

  /** Stop taking requests, finish the ones in progress, close the datastores, remove the socket. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Connections that never sent a whole request would keep close() waiting.
      for (const s of this.sockets) if (!s.readableEnded) s.destroy();
      await Promise.all([...this.inFlight]);
      await closed;
      rmSync(this.socketPath, { force: true });
    }
    for (const ds of this.datastores.values()) await ds.then((d) => d.close()).catch(() => undefined);
    this.datastores.clear();
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    sock.write(`${WIRE_MAGIC}\n`);
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => sock.destroy(), REQUEST_TIMEOUT_MS);
    sock.on("data", (b: Buffer) => {
      size += b.length;
      if (size > MAX_REQUEST_BYTES) {
        clearTimeout(timer);
        this.answer(sock, 1, wireError(`request larger than ${MAX_REQUEST_BYTES} bytes`));
        sock.removeAllListeners("data");
        return;
      }
      chunks.push(b);
    });
    sock.on("end", () => {
      clearTimeout(timer);
      if (size > MAX_REQUEST_BYTES) return;
      const work = this.serve(sock, Buffer.concat(chunks));
      this.inFlight.add(work);
      void work.finally(() => this.inFlight.delete(work));
    });
  }

  private async serve(sock: Socket, buf: Buffer): Promise<void> {
    let req: CniRequest;
    try {
      req = parseRequest(buf);
    } catch (e) {
      this.o.log.warn("CNI daemon: bad request", { error: (e as Error).message });
      this.answer(sock, 1, wireError((e as Error).message));
      return;
    }
    let out = "";
    let code: number;
    const t0 = performance.now();
    try {
      code = await runExecutable(req.plugin, {
        env: req.env,
        stdin: () => Promise.resolve(req.stdin),
        stdout: (s) => {
          out += s;
        },
        ...(this.o.hostNetns !== undefined ? { hostNetns: this.o.hostNetns } : {}),
        sharedDatastore: (url, env) => this.datastore(url, env),
      });
    } catch (e) {
      // runPlugin turns every failure into the spec's error JSON; this is a bug, not input.
      code = 1;
      out = wireError(`internal error: ${(e as Error).message}`, CniCode.INTERNAL);
    }
    this.served++;
    this.answer(sock, code, out);
    this.o.log.info("CNI request answered", {
      plugin: req.plugin,
      command: req.env.CNI_COMMAND,
      containerID: req.env.CNI_CONTAINERID,
      exit: code,
      ms: Math.round(performance.now() - t0),
    });
  }

  private answer(sock: Socket, code: number, stdout: string): void {
    if (!sock.destroyed) sock.end(`${code}\n${stdout}`);
  }

  /** One open datastore per URL, for the daemon's lifetime; a failed open is not kept. */
  private datastore(url: string | undefined, env: NodeJS.ProcessEnv): Promise<Datastore> {
    const key = url ?? env.CALICO_DATASTORE ?? "";
    let p = this.datastores.get(key);
    if (p === undefined) {
      p = openPluginDatastore(url, env);
      this.datastores.set(key, p);
      p.catch(() => this.datastores.delete(key));
    }
    return p;
  }
}

/** The spec's error JSON for a request the daemon could not read. */
function wireError(msg: string, code: number = CniCode.INVALID_NETWORK_CONFIG): string {
  return `${JSON.stringify({ cniVersion: "1.0.0", code, msg: `calico-node CNI daemon: ${msg}` })}\n`;
}
