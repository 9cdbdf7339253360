#!/usr/bin/env node
/**
 * The `calico-apiserver` executable:
 *
 *   calico-apiserver --datastore sqlite:…|etcd://…|memory: --listen ADDR:PORT
 *                    [--tls-cert FILE --tls-key FILE] [--token-file FILE]
 *                    [--ipam-gc-interval DURATION]
 *
 * Prints one line `calico-apiserver listening on <url>` once it accepts connections; SIGTERM or
 * SIGINT stop it gracefully (watch streams end, in-flight requests finish, then exit 0).
 * It also runs the IPAM controller (garbage collection and crash repair, `ipam-gc.ts`).
 */
import { readFileSync } from "node:fs";
import { Command, Option, InvalidArgumentError } from "commander";
import { parseDuration } from "../api/duration.js";
import { openDatastore, datastoreUrlForms } from "../datastore/open.js";
import { TokenAuthenticator } from "./auth.js";
import { IPAMController } from "./ipam-gc.js";
import { ApiServer } from "./server.js";

function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) {
    throw new InvalidArgumentError(
      `expected ADDR:PORT (e.g. 127.0.0.1:5473, [::1]:5473, :5473), got "${value}"`,
    );
  }
  const host = m[1] ?? m[2] ?? "";
  return { host: host === "" ? "0.0.0.0" : host, port };
}

interface Opts {
  datastore?: string;
  listen: { host: string; port: number };
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
  heartbeatMs: number;
  ipamGcInterval?: number;
}

const program = new Command()
  .name("calico-apiserver")
  .description("Serve a calico-ts datastore over HTTP(S): raw key API, watch fan-out, resource API")
  .option(
    "--datastore <url>",
    `the backing datastore (${datastoreUrlForms().join(", ")}); default $CALICO_DATASTORE`,
  )
  .addOption(
    new Option("--listen <addr:port>", "address to listen on")
      .argParser(parseListen)
      .default({ host: "127.0.0.1", port: 5473 }, "127.0.0.1:5473"),
  )
  .option("--tls-cert <file>", "PEM certificate: serve HTTPS (needs --tls-key)")
  .option("--tls-key <file>", "PEM private key for --tls-cert")
  .option(
    "--token-file <file>",
    'bearer tokens, Kubernetes static-token format: token,user,uid[,"group1,group2"]',
  )
  .option(
    "--heartbeat-ms <ms>",
    "watch stream heartbeat interval",
    (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 100) throw new InvalidArgumentError("expected an integer ≥ 100");
      return n;
    },
    10_000,
  )
  .option(
    "--ipam-gc-interval <duration>",
    "IPAM garbage collection and crash repair every DURATION (e.g. 5m); 0 disables; default half the leak grace period (KubeControllersConfiguration, 15m)",
    (v) => {
      const ms = parseDuration(v);
      if (ms === undefined || ms < 0)
        throw new InvalidArgumentError('expected a duration such as "5m" or "0"');
      return ms;
    },
  )
  .showHelpAfterError();

async function main(): Promise<number> {
  program.parse(process.argv);
  const o = program.opts<Opts>();
  const err = (s: string) => process.stderr.write(`calico-apiserver: ${s}\n`);
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    err("--tls-cert and --tls-key go together");
    return 2;
  }
  let tls: { cert: Buffer; key: Buffer } | undefined;
  let tokens: TokenAuthenticator | undefined;
  try {
    if (o.tlsCert !== undefined && o.tlsKey !== undefined) {
      tls = { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey) };
    }
    if (o.tokenFile !== undefined) tokens = TokenAuthenticator.fromFile(o.tokenFile);
  } catch (e) {
    err((e as Error).message);
    return 2;
  }
  if (tokens === undefined) {
    err("WARNING: no --token-file: every request is allowed without authentication");
  } else if (tokens.size === 0) {
    err(`WARNING: the token file ${o.tokenFile} holds no tokens: every authenticated request is refused`);
  }
  if (tls === undefined && tokens !== undefined)
    err("WARNING: tokens are sent in clear text without --tls-cert");

  const store = await openDatastore(o.datastore);
  const server = new ApiServer({
    store,
    host: o.listen.host,
    port: o.listen.port,
    heartbeatMs: o.heartbeatMs,
    ...(tls !== undefined ? { tls } : {}),
    ...(tokens !== undefined ? { tokens } : {}),
    log: (line) => err(line),
  });
  await server.start();
  let ipamGC: IPAMController | undefined;
  if (o.ipamGcInterval !== 0) {
    ipamGC = new IPAMController(store, {
      ...(o.ipamGcInterval !== undefined ? { intervalMs: o.ipamGcInterval } : {}),
      log: (line) => err(line),
    });
    await ipamGC.start();
  }
  process.stdout.write(`calico-apiserver listening on ${server.url} (datastore ${store.url})\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      err(`${sig}: shutting down`);
      void (ipamGC?.stop() ?? Promise.resolve())
        .then(() => server.stop())
        .then(() => store.close())
        .then(
          () => resolve(0),
          (e: unknown) => {
            err(`shutdown failed: ${(e as Error).message}`);
            resolve(1);
          },
        );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
    // If a stray handle keeps the loop alive after a shutdown, do not hang (the timer is unref'd).
    setTimeout(() => process.exit(code), 3_000).unref();
  },
  (e: unknown) => {
    process.stderr.write(`calico-apiserver: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
