#!/usr/bin/env node
/**
 * The BGP part of calico-node on its own, for `calico-node --netns NS`: Node cannot open
 * sockets in another network namespace, so calico-node starts this process inside NS (nsenter)
 * and it runs the speaker there — its own syncer and a `BgpRunner` — writing its status to a
 * file calico-node merges into its own. It exits when its parent does (graceful restart: no
 * Cease to peers offered GR) and on SIGTERM.
 *
 *   calico-node-bgp [--datastore URL] --nodename N --status-file F [--bgp-secrets-dir D]
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { BgpSpeaker } from "../bgp/speaker.js";
import { openDatastore } from "../datastore/open.js";
import { BgpRunner } from "./bgp-runner.js";
import { createLogger, parseLogLevel } from "./log.js";
import { SyncStatus, Syncer } from "./syncer.js";

/** How often the status file is refreshed (written only when it changed) and the parent checked. */
const TICK_MS = 500;

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const o = new Command("calico-node-bgp")
    .description("calico-node's BGP speaker, run inside the host's network namespace")
    .option("--datastore <url>", "datastore URL (default: $CALICO_DATASTORE)")
    .requiredOption("--nodename <name>", "this node's name")
    .requiredOption("--status-file <path>", "write the BGP status here")
    .option(
      "--bgp-secrets-dir <dir>",
      "secretKeyRef {name, key} is read from <dir>/<name>/<key>",
      "/etc/calico/bgp-secrets",
    )
    .parse(argv)
    .opts<{ datastore?: string; nodename: string; statusFile: string; bgpSecretsDir: string }>();
  const log = createLogger({ level: parseLogLevel(env.FELIX_LOGSEVERITYSCREEN ?? "") ?? "info" });
  const datastore = await openDatastore(o.datastore, { env });
  const runner = new BgpRunner({
    nodename: o.nodename,
    log,
    createSpeaker: (cfg) => new BgpSpeaker(cfg),
    secret: (name, key) => {
      try {
        return readFileSync(join(o.bgpSecretsDir, name, key), "utf8").trim();
      } catch {
        return undefined;
      }
    },
  });
  const syncer = new Syncer(
    datastore,
    {
      onUpdates: (u) => runner.onUpdates(u),
      onStatus: (s) => {
        if (s === SyncStatus.IN_SYNC) runner.onInSync();
      },
    },
    { log },
  );
  syncer.start();
  log.info("calico-node BGP process started", { node: o.nodename, pid: process.pid });

  let last = "";
  const parent = process.ppid;
  return new Promise<number>((resolve) => {
    let ending = false;
    const end = async (why: string) => {
      if (ending) return;
      ending = true;
      clearInterval(tick);
      log.info("calico-node BGP process stopping", { why });
      syncer.stop();
      await runner.stop({ graceful: true });
      await datastore.close();
      resolve(0);
    };
    const tick = setInterval(() => {
      if (process.ppid !== parent) void end("calico-node exited");
      const text = JSON.stringify(runner.status());
      if (text === last) return;
      last = text;
      try {
        const tmp = `${o.statusFile}.${process.pid}.tmp`;
        writeFileSync(tmp, `{"pid":${process.pid},"bgp":${text}}\n`);
        renameSync(tmp, o.statusFile);
      } catch (err) {
        log.warn("Cannot write the BGP status file", { path: o.statusFile, error: err });
      }
    }, TICK_MS);
    process.on("SIGTERM", () => void end("SIGTERM"));
    process.on("SIGINT", () => void end("SIGINT"));
  });
}

main(process.argv, process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`calico-node-bgp: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
