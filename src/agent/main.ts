#!/usr/bin/env node
/**
 * `calico-node`: the node agent (Felix's role). Flags override the environment, as in
 * calico-node: NODENAME, IP, IP6, IP_AUTODETECTION_METHOD, IP6_AUTODETECTION_METHOD,
 * CALICO_DATASTORE, CALICO_NETWORKING_BACKEND (none: no BGP); FELIX_* for FelixConfiguration
 * parameters. SIGTERM/SIGINT stop the loops and close the datastore, leaving kernel state in
 * place: a restarted agent reconciles it (and BGP peers offered graceful restart keep our routes).
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { Command, InvalidArgumentError } from "commander";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { CNI_DAEMON_DIR, CniDaemon, daemonSocketPath, netnsInode } from "../cni/daemon.js";
import { commandIn } from "../dataplane/netns.js";
import { BgpSpeaker } from "../bgp/speaker.js";
import { CalcGraph } from "../calc/calc-graph.js";
import { openDatastore, describeDatastoreSetting } from "../datastore/open.js";
import { LinuxDataplane } from "../dataplane/linux-dataplane.js";
import { NftCli } from "../dataplane/nft/nft-cli.js";
import { createLogger, parseLogLevel } from "./log.js";
import { CalicoNodeRun, type RunEnd } from "./node.js";

const port = (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError(`"${v}" is not a port number 0-65535`);
  return n;
};

/** NODENAME, else /var/lib/calico/nodename (as calico-node), else the host name. */
function defaultNodename(env: NodeJS.ProcessEnv): string {
  if (env.NODENAME !== undefined && env.NODENAME !== "") return env.NODENAME;
  try {
    const n = readFileSync("/var/lib/calico/nodename", "utf8").trim();
    if (n !== "") return n;
  } catch {
    // no file: fall through
  }
  return hostname().split(".")[0]!.toLowerCase();
}

/**
 * How far V8 lets the old generation grow past its live size before the next major GC. Left
 * to itself V8 picks up to 4× when collection is fast, so the garbage of a few hundred
 * incremental applies piles up on top of a ~200 MiB live state (VmHWM +30 MiB over 240 changes
 * in bench/agent.bench.ts). 40 % bounds that for a few more, mostly concurrent, GC cycles (15 % cost change p99 in extra GCs; docs/agent.md).
 * CALICO_NODE_HEAP_GROWING_PERCENT overrides it; 0 leaves V8's choice.
 */
function applyHeapPolicy(env: NodeJS.ProcessEnv): number {
  const raw = env.CALICO_NODE_HEAP_GROWING_PERCENT ?? "40";
  const pct = Number(raw);
  if (!/^\d+$/.test(raw) || pct > 1000)
    throw new Error(`CALICO_NODE_HEAP_GROWING_PERCENT "${raw}" is not a whole number 0-1000`);
  if (pct > 0) setFlagsFromString(`--heap-growing-percent=${pct}`);
  return pct;
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  applyHeapPolicy(env);
  const program = new Command("calico-node")
    .description("calico-ts node agent: watch the datastore, compute policy and routes, program the kernel")
    .option("--datastore <url>", "datastore URL (default: $CALICO_DATASTORE)")
    .option("--nodename <name>", "this node's name (default: $NODENAME, /var/lib/calico/nodename, host name)")
    .option("--netns <ns>", "run against this network namespace (name or path; tests and the lab)")
    .option(
      "--ip <setting>",
      "IPv4 address: autodetect, none or an address[/prefix] (default: $IP or autodetect)",
    )
    .option(
      "--ip6 <setting>",
      "IPv6 address: autodetect, none or an address[/prefix] (default: $IP6 or none)",
    )
    .option(
      "--ip-autodetection-method <m>",
      "first-found | interface=RE | skip-interface=RE | can-reach=ADDR | cidr=CIDR",
    )
    .option("--ip6-autodetection-method <m>", "as --ip-autodetection-method, for IPv6")
    .option(
      "--health-port <n>",
      "serve /liveness and /readiness on this port (overrides FelixConfiguration)",
      port,
    )
    .option(
      "--metrics-port <n>",
      "serve Prometheus /metrics on this port (overrides FelixConfiguration)",
      port,
    )
    .option("--status-file <path>", "write health and the applied datastore revision here after every apply")
    .option("--max-apply-failures <n>", "consecutive failed applies before exiting", (v) => Number(v), 5)
    .option("--no-bgp", "do not run the BGP speaker (as CALICO_NETWORKING_BACKEND=none)")
    .option(
      "--bgp-secrets-dir <dir>",
      "BGP passwords: secretKeyRef {name, key} is read from <dir>/<name>/<key>",
      "/etc/calico/bgp-secrets",
    )
    .option("--no-cni-daemon", "do not answer the CNI plugins (as CALICO_CNI_DAEMON=false; docs/cni.md)")
    .option("--cni-socket-dir <dir>", "where the CNI daemon's socket goes", CNI_DAEMON_DIR)
    .addHelpText("after", `\n${describeDatastoreSetting(env)}`)
    .parse(argv);
  const o = program.opts<{
    datastore?: string;
    nodename?: string;
    netns?: string;
    ip?: string;
    ip6?: string;
    ipAutodetectionMethod?: string;
    ip6AutodetectionMethod?: string;
    healthPort?: number;
    metricsPort?: number;
    maxApplyFailures: number;
    statusFile?: string;
    bgp: boolean;
    bgpSecretsDir: string;
    cniDaemon: boolean;
    cniSocketDir: string;
  }>();
  const nodename = o.nodename ?? defaultNodename(env);
  const backend = (env.CALICO_NETWORKING_BACKEND ?? "bird").toLowerCase();
  const bgpDisabledReason = !o.bgp
    ? "disabled with --no-bgp"
    : backend === "none"
      ? "CALICO_NETWORKING_BACKEND=none"
      : undefined;
  // Node cannot open sockets in another namespace: with --netns the speaker runs in a child
  // process started inside it (bgp-main.ts; docs/agent.md "BGP").
  const bgpChildStatus = `${o.statusFile ?? join(tmpdir(), `calico-node-${process.pid}`)}.bgp`;
  const bgpChild =
    o.netns === undefined || bgpDisabledReason !== undefined
      ? undefined
      : {
          statusFile: bgpChildStatus,
          argv: [
            ...commandIn(o.netns, process.execPath, [
              join(dirname(fileURLToPath(import.meta.url)), "bgp-main.js"),
              ...(o.datastore !== undefined ? ["--datastore", o.datastore] : []),
              "--nodename",
              nodename,
              "--status-file",
              bgpChildStatus,
              "--bgp-secrets-dir",
              o.bgpSecretsDir,
            ]),
          ],
        };

  const log = createLogger({ level: parseLogLevel(env.FELIX_LOGSEVERITYSCREEN ?? "") ?? "info" });
  const datastore = await openDatastore(o.datastore, { env });
  let current: CalicoNodeRun | undefined;
  let stopping = false;
  const onSignal = (sig: string) => {
    log.info("Signal received: stopping (kernel state is left in place)", { signal: sig });
    stopping = true;
    void current?.halt("stopped");
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  // The CNI daemon needs only the datastore, so containers can start while the agent syncs.
  let cni: CniDaemon | undefined;
  if (o.cniDaemon && !/^(false|0|no)$/i.test(env.CALICO_CNI_DAEMON ?? "")) {
    const d = new CniDaemon({
      ...(o.netns !== undefined ? { hostNetns: o.netns } : {}),
      socketPath: daemonSocketPath(netnsInode(o.netns), o.cniSocketDir),
      log,
    });
    try {
      await d.start();
      cni = d;
    } catch (e) {
      log.warn("CNI daemon not started: the plugins run on their own", { error: (e as Error).message });
    }
  }

  let end: RunEnd = "stopped";
  try {
    do {
      current = new CalicoNodeRun(
        {
          nodename,
          netns: o.netns,
          ip: o.ip ?? env.IP ?? "autodetect",
          ip6: o.ip6 ?? env.IP6,
          ipMethod: o.ipAutodetectionMethod ?? env.IP_AUTODETECTION_METHOD,
          ip6Method: o.ip6AutodetectionMethod ?? env.IP6_AUTODETECTION_METHOD,
          healthPort: o.healthPort,
          metricsPort: o.metricsPort,
          maxApplyFailures: o.maxApplyFailures,
          statusFile: o.statusFile,
          bgpDisabledReason,
          bgpChild,
          env,
          log,
        },
        {
          datastore,
          createCalc: ({ hostname: h, logPrefix, log: l }) =>
            new CalcGraph({ hostname: h, logPrefix, onProblem: (m) => l.warn(m, { component: "calc" }) }),
          createDataplane: ({ netns, config, resyncIntervalMs }) =>
            new LinuxDataplane({
              nft: new NftCli(netns !== undefined ? { netns } : {}),
              ...(netns !== undefined ? { netns } : {}),
              config,
              resyncIntervalMs,
            }),
          createSpeaker: (cfg) => new BgpSpeaker(cfg),
          bgpSecret: (name, key) => {
            try {
              return readFileSync(join(o.bgpSecretsDir, name, key), "utf8").trim();
            } catch {
              return undefined;
            }
          },
        },
      );
      const run = current;
      if (stopping) break;
      await run.start();
      if (stopping) await run.halt("stopped");
      end = await run.stopped;
    } while (end === "restart" && !stopping);
  } finally {
    await cni?.stop();
    await datastore.close();
  }
  if (end instanceof Error) {
    log.error("calico-node exiting", { error: end });
    return 1;
  }
  return 0;
}

main(process.argv, process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`calico-node: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
