/**
 * The CNI protocol loop both executables share (CNI spec 1.1.0, "Execution protocol"): read the
 * environment and the configuration on stdin, check the version allows the command (CHECK from
 * 0.4.0, STATUS and GC from 1.1.0), run it, and print the result for ADD, nothing for the
 * others, or the spec's error JSON with a non-zero exit. Handlers are loaded lazily so VERSION
 * and configuration errors never pay for the datastore and IPAM modules.
 */
import type { Datastore } from "../datastore/types.js";
import { decodeConfig, parseNetConf, type NetConf } from "./config.js";
import { readCniEnv, type CniEnv } from "./env.js";
import { CniLog } from "./log.js";
import { atLeast, renderResult } from "./result.js";
import {
  CURRENT_VERSION,
  CniCode,
  CniError,
  isCniError,
  SUPPORTED_VERSIONS,
  type CniResult,
} from "./types.js";

export interface PluginContext {
  env: CniEnv;
  conf: NetConf;
  log: CniLog;
  /** The process environment (for CALICO_DATASTORE, and handed to delegated plugins). */
  processEnv: NodeJS.ProcessEnv;
  /**
   * The host's network namespace (name or path) the host end of a veth lives in; undefined:
   * the caller's own, as for a plugin process a runtime started.
   */
  hostNetns?: string;
  /** Datastores kept open by the caller (the CNI daemon); undefined: open and close one per run. */
  sharedDatastore?: SharedDatastore;
}

/** Opens (or returns the already open) datastore for a URL; the caller owns and closes it. */
export type SharedDatastore = (url: string | undefined, env: NodeJS.ProcessEnv) => Promise<Datastore>;

export interface PluginHandlers {
  add(ctx: PluginContext): Promise<CniResult>;
  del(ctx: PluginContext): Promise<void>;
  check(ctx: PluginContext): Promise<void>;
  status(ctx: PluginContext): Promise<void>;
  gc(ctx: PluginContext): Promise<void>;
}

export interface PluginIO {
  env: NodeJS.ProcessEnv;
  stdin: () => Promise<string>;
  stdout: (text: string) => void;
  hostNetns?: string;
  sharedDatastore?: SharedDatastore;
}

/** The minimum spec version of each command (older versions do not have it). */
const MIN_VERSION = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" } as const;

function versionAnswer(stdin: string): Record<string, unknown> {
  let asked: unknown;
  try {
    asked = stdin.trim() === "" ? undefined : (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
  } catch {
    asked = undefined;
  }
  const v =
    typeof asked === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(asked)
      ? asked
      : CURRENT_VERSION;
  return { cniVersion: v, supportedVersions: [...SUPPORTED_VERSIONS] };
}

/** Run one invocation; returns the exit code. */
export async function runPlugin(
  plugin: string,
  load: () => Promise<PluginHandlers>,
  io: PluginIO,
): Promise<number> {
  let cniVersion = CURRENT_VERSION;
  let log = new CniLog(plugin);
  try {
    const env = readCniEnv(io.env);
    const stdin = await io.stdin();
    if (env.command === "VERSION") {
      io.stdout(`${JSON.stringify(versionAnswer(stdin))}\n`);
      return 0;
    }
    const raw = decodeConfig(stdin);
    if (
      typeof raw.cniVersion === "string" &&
      (SUPPORTED_VERSIONS as readonly string[]).includes(raw.cniVersion)
    ) {
      cniVersion = raw.cniVersion;
    }
    const conf = parseNetConf(raw);
    log = log.withContext(
      conf.logLevel,
      conf.logFilePath,
      env.containerID === "" ? "" : `[${env.containerID}]`,
    );
    const min = env.command in MIN_VERSION ? MIN_VERSION[env.command as keyof typeof MIN_VERSION] : undefined;
    if (min !== undefined && !atLeast(conf.cniVersion, min)) {
      throw new CniError(
        CniCode.INCOMPATIBLE_VERSION,
        `${env.command} needs CNI version ${min} or later; the configuration says ${conf.cniVersion}`,
      );
    }
    const handlers = await load();
    const ctx: PluginContext = {
      env,
      conf,
      log,
      processEnv: io.env,
      ...(io.hostNetns !== undefined ? { hostNetns: io.hostNetns } : {}),
      ...(io.sharedDatastore !== undefined ? { sharedDatastore: io.sharedDatastore } : {}),
    };
    log.debug(`${env.command} ifname=${env.ifname} netns=${env.netns} args=${JSON.stringify(env.args)}`);
    switch (env.command) {
      case "ADD": {
        const result = await handlers.add(ctx);
        io.stdout(`${JSON.stringify(renderResult(result, conf.cniVersion))}\n`);
        break;
      }
      case "DEL":
        await handlers.del(ctx);
        break;
      case "CHECK":
        await handlers.check(ctx);
        break;
      case "STATUS":
        await handlers.status(ctx);
        break;
      case "GC":
        await handlers.gc(ctx);
        break;
    }
    return 0;
  } catch (e) {
    const err = isCniError(e) ? e : new CniError(CniCode.INTERNAL, (e as Error).message ?? String(e));
    log.error(`${err.message}${err.details !== undefined ? ` (${err.details})` : ""}`);
    io.stdout(
      `${JSON.stringify({ cniVersion, code: err.cniCode, msg: err.message, ...(err.details !== undefined ? { details: err.details } : {}) })}\n`,
    );
    return 1;
  }
}

/**
 * Stdin (fd 0) as one string, read synchronously: creating `process.stdin` costs a plugin run
 * ~7–9 ms (profiled). A non-blocking pipe's EAGAIN waits and reads on; when fd 0 cannot be read
 * at all (closed, a directory), the stream is the fallback.
 */
export async function readStdin(): Promise<string> {
  const { readSync } = await import("node:fs");
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        continue;
      }
      if (code === "EOF") break;
      if (chunks.length === 0) return readAll(process.stdin);
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** A stream as one string. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString("utf8");
}
