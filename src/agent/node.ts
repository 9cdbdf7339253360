/**
 * One run of calico-node, wired from its parts (docs/agent.md "Start-up order"):
 * datastore → FelixConfiguration → Node registration (autodetected addresses) → sysctls →
 * health/metrics servers → calc + dataplane + loop → syncer, with the BGP runner fed by the
 * same syncer (in process, or with `--netns` a child process inside the namespace: docs/agent.md
 * "BGP"). The concrete calculation, dataplane and speaker are injected (main.ts passes
 * CalcGraph, LinuxDataplane and BgpSpeaker; tests pass fakes).
 *
 * `stopped` resolves with why the run ended: "stopped" (SIGTERM), "restart" (a config change
 * Calico restarts Felix for — main starts a fresh run, which reconciles the kernel state this
 * one leaves without flushing it), or an Error (the loop gave up: exit non-zero).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { Calculator } from "../calc/types.js";
import type { Dataplane, DataplaneConfig } from "../dataplane/types.js";
import { ResourceStore } from "../datastore/resources.js";
import { isUnavailable, type Datastore } from "../datastore/types.js";
import { Agent, type AgentHealth } from "./agent.js";
import { BgpRunner, type BgpRunStatus, type SpeakerLike } from "./bgp-runner.js";
import type { SecretLookup } from "./bgp-config.js";
import type { SpeakerConfig } from "../bgp/speaker.js";
import { ipCommands, resolveNodeAddress, type AutodetectIO } from "./autodetect.js";
import {
  FELIX_CONFIG_PREFIX,
  FelixConfigTracker,
  type AgentConfig,
  type ConfigDiff,
} from "./felix-config.js";
import { healthHandler, listen, metricsHandler, type HttpEndpoint } from "./http.js";
import type { Logger } from "./log.js";
import { AgentMetrics } from "./metrics.js";
import {
  registerNode,
  requiredSysctls,
  setSysctls,
  storedNodeAddresses,
  sysctlWriter,
  type SysctlWriter,
} from "./startup.js";
import { SyncStatus, Syncer } from "./syncer.js";

export interface NodeOptions {
  nodename: string;
  netns?: string | undefined;
  /** `IP` / `IP6`: autodetect (default for IPv4), none (default for IPv6), or an address. */
  ip?: string | undefined;
  ip6?: string | undefined;
  ipMethod?: string | undefined;
  ip6Method?: string | undefined;
  /** Overrides (highest precedence): enable and bind health / metrics on this port. */
  healthPort?: number | undefined;
  metricsPort?: number | undefined;
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** Consecutive failed applies before exiting (default 5). */
  maxApplyFailures?: number;
  /** Write the agent's health as JSON here after every apply (the lab and tests read it). */
  statusFile?: string | undefined;
  /** Why BGP does not run, when that is decided outside the datastore (`--no-bgp`). */
  bgpDisabledReason?: string | undefined;
  /** Run BGP in a child process instead (`--netns`: bgp-main.ts inside the namespace): its
   * command line and the status file it writes. */
  bgpChild?: { argv: string[]; statusFile: string } | undefined;
}

export interface NodeDeps {
  datastore: Datastore;
  createCalc(opts: { hostname: string; logPrefix: string; log: Logger }): Calculator;
  createDataplane(opts: {
    netns: string | undefined;
    config: DataplaneConfig;
    resyncIntervalMs: number;
  }): Dataplane;
  autodetect?: AutodetectIO;
  sysctl?: SysctlWriter;
  /** The BGP speaker (main.ts: BgpSpeaker in this process's namespace); none ⇒ no BGP. */
  createSpeaker?(cfg: SpeakerConfig): SpeakerLike;
  /** Resolves BGPPeer / mesh `secretKeyRef` passwords. */
  bgpSecret?: SecretLookup;
}

export type RunEnd = "stopped" | "restart" | Error;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retry `f` while the datastore is unavailable (start-up waits for it, as calico-node does). */
async function whileUnavailable<T>(
  what: string,
  log: Logger,
  f: () => Promise<T>,
  isStopped: () => boolean,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if (!isUnavailable(err) || isStopped()) throw err;
      const delay = Math.min(5_000, 100 * 2 ** Math.min(attempt, 6));
      log.warn(`Datastore unavailable during ${what}; retrying`, { error: err, retryInMs: delay });
      await sleep(delay);
    }
  }
}

/** How often the status file is refreshed for BGP session changes (only written on a change). */
const BGP_STATUS_INTERVAL_MS = 500;

/** Replace the status file atomically (write a temporary file, then rename). */
function writeStatusFile(
  path: string,
  nodename: string,
  health: AgentHealth,
  bgp: BgpRunStatus | undefined,
  log: Logger,
): void {
  try {
    const tmp = `${path}.${process.pid}.tmp`;
    const body = { node: nodename, time: new Date().toISOString(), pid: process.pid, ...health, bgp };
    writeFileSync(tmp, `${JSON.stringify(body)}\n`);
    renameSync(tmp, path);
  } catch (err) {
    log.warn("Cannot write the status file", { path, error: err });
  }
}

export class CalicoNodeRun {
  private agent: Agent | undefined;
  private syncer: Syncer | undefined;
  private health: HttpEndpoint | undefined;
  private metricsServer: HttpEndpoint | undefined;
  readonly metrics = new AgentMetrics({ defaultMetrics: true });
  private tracker: FelixConfigTracker | undefined;
  private bgpRunner: BgpRunner | undefined;
  private bgpProcess: ChildProcess | undefined;
  private bgpTimer: NodeJS.Timeout | undefined;
  private lastHealth: AgentHealth | undefined;
  private lastBgpText = "";
  private halted = false;
  private end!: (why: RunEnd) => void;
  readonly stopped: Promise<RunEnd> = new Promise((r) => (this.end = r));

  constructor(
    private readonly opts: NodeOptions,
    private readonly deps: NodeDeps,
  ) {}

  get healthPort(): number | undefined {
    return this.health?.port;
  }
  get metricsPort(): number | undefined {
    return this.metricsServer?.port;
  }
  get loop(): Agent | undefined {
    return this.agent;
  }
  get bgp(): BgpRunner | undefined {
    return this.bgpRunner;
  }

  private effective(c: AgentConfig): AgentConfig {
    return {
      ...c,
      ...(this.opts.healthPort !== undefined
        ? { healthEnabled: true, healthPort: this.opts.healthPort }
        : {}),
      ...(this.opts.metricsPort !== undefined
        ? { prometheusMetricsEnabled: true, prometheusMetricsPort: this.opts.metricsPort }
        : {}),
    };
  }

  async start(): Promise<void> {
    const { opts, deps } = this;
    const log = opts.log;
    const stopped = () => this.halted;
    const store = new ResourceStore(deps.datastore);

    // 1. FelixConfiguration, read directly so the servers and log level are right from the start.
    const spec = async (name: string) => {
      const kv = await deps.datastore.get(`${FELIX_CONFIG_PREFIX}${name}`);
      if (kv === undefined) return undefined;
      try {
        return (JSON.parse(kv.value) as { spec?: Record<string, unknown> }).spec ?? {};
      } catch {
        return undefined;
      }
    };
    const initial = await whileUnavailable(
      "reading FelixConfiguration",
      log,
      async () => ({
        defaultSpec: await spec("default"),
        nodeSpec: await spec(`node.${opts.nodename}`),
      }),
      stopped,
    );
    this.tracker = new FelixConfigTracker({
      nodename: opts.nodename,
      env: opts.env,
      log,
      initial,
      onChange: (c, diff, prev) => void this.onConfigChange(this.effective(c), diff, this.effective(prev)),
    });
    const config = this.effective(this.tracker.config);
    log.setLevel(config.logSeverityScreen);
    log.info("Effective configuration", { config, sources: this.tracker.sources });

    // 2. The Node resource, with autodetected addresses (falling back to what is stored).
    const io = deps.autodetect ?? ipCommands(opts.netns);
    const v4 = await resolveNodeAddress(opts.ip, opts.ipMethod, 4, io);
    const v6 =
      opts.ip6 === undefined || opts.ip6 === ""
        ? undefined
        : await resolveNodeAddress(opts.ip6, opts.ip6Method, 6, io);
    const stored = await whileUnavailable(
      "reading the Node",
      log,
      () => storedNodeAddresses(store, opts.nodename),
      stopped,
    );
    const ipv4 = v4?.cidr ?? stored.ipv4;
    const ipv6 = v6?.cidr ?? stored.ipv6;
    if (ipv4 === undefined && ipv6 === undefined && (opts.ip ?? "").toLowerCase() !== "none") {
      log.warn("No node address found (autodetection found nothing and none is stored); BGP will not run", {
        ipMethod: opts.ipMethod ?? "first-found",
      });
    }
    log.info("Node addresses", {
      ipv4,
      ipv6,
      ipv4Interface: v4?.interfaceName,
      ipv6Interface: v6?.interfaceName,
    });
    await whileUnavailable(
      "registering the Node",
      log,
      () => registerNode(store, opts.nodename, { ipv4, ipv6 }, log),
      stopped,
    );

    // 3. Host sysctls: the only kernel state touched before the first InSync.
    await setSysctls(requiredSysctls(config.dataplane.ipv6), deps.sysctl ?? sysctlWriter(opts.netns), log);

    // 4. Health and metrics.
    await this.bindServers(config, { health: true, metrics: true });

    // 5. Calculation, dataplane, loop, syncer.
    const calc = deps.createCalc({ hostname: opts.nodename, logPrefix: config.dataplane.logPrefix, log });
    const dataplane = deps.createDataplane({
      netns: opts.netns,
      config: config.dataplane,
      resyncIntervalMs: config.tablesRefreshIntervalMs,
    });
    this.agent = new Agent({
      calc,
      dataplane,
      log,
      metrics: this.metrics,
      resyncIntervalMs: resyncInterval(config),
      ...(opts.maxApplyFailures !== undefined ? { maxConsecutiveFailures: opts.maxApplyFailures } : {}),
      onFatal: (err) => void this.halt(err),
      deliveredRevision: () => this.syncer?.deliveredRevision ?? 0,
      onApplied: (health) => {
        this.lastHealth = health;
        this.writeStatus();
      },
    });
    const agent = this.agent;
    const bgp = this.startBgp();
    this.syncer = new Syncer(
      deps.datastore,
      {
        onUpdates: (updates) => {
          this.tracker?.onUpdates(updates);
          agent.onUpdates(updates);
          bgp?.onUpdates(updates);
        },
        onStatus: (s) => {
          agent.onStatus(s);
          if (s === SyncStatus.IN_SYNC) bgp?.onInSync();
        },
      },
      { log },
    );
    this.syncer.start();
    log.info("calico-node started", { node: opts.nodename, netns: opts.netns });
  }

  /** The BGP runner beside the dataplane (docs/agent.md "BGP"), or undefined when BGP is off. */
  private startBgp(): BgpRunner | undefined {
    const { opts, deps } = this;
    if (opts.bgpDisabledReason === undefined && opts.bgpChild !== undefined) {
      this.startBgpChild(opts.bgpChild);
      return undefined;
    }
    if (opts.bgpDisabledReason !== undefined || deps.createSpeaker === undefined) {
      opts.log.info("BGP is off", { reason: opts.bgpDisabledReason ?? "no speaker in this build" });
      return undefined;
    }
    this.bgpRunner = new BgpRunner({
      nodename: opts.nodename,
      log: opts.log,
      createSpeaker: deps.createSpeaker.bind(deps),
      ...(deps.bgpSecret !== undefined ? { secret: deps.bgpSecret } : {}),
    });
    if (opts.statusFile !== undefined) {
      this.bgpTimer = setInterval(() => {
        if (JSON.stringify(this.bgpRunner?.status()) !== this.lastBgpText) this.writeStatus();
      }, BGP_STATUS_INTERVAL_MS);
      this.bgpTimer.unref();
    }
    return this.bgpRunner;
  }

  /** `--netns`: the speaker runs in bgp-main.ts inside the namespace; its log goes to ours. */
  private startBgpChild(child: { argv: string[]; statusFile: string }): void {
    const log = this.opts.log;
    rmSync(child.statusFile, { force: true });
    const p = spawn(child.argv[0]!, child.argv.slice(1), { stdio: ["ignore", "inherit", "inherit"] });
    this.bgpProcess = p;
    p.on("error", (err) => log.error("Cannot start the BGP process", { error: err }));
    p.on("exit", (code, signal) => {
      if (!this.halted) log.error("The BGP process exited; BGP is off", { code, signal });
    });
    log.info("BGP runs in a child process inside the namespace", {
      pid: p.pid,
      statusFile: child.statusFile,
    });
    this.bgpTimer = setInterval(() => {
      if (JSON.stringify(this.bgpStatus()) !== this.lastBgpText) this.writeStatus();
    }, BGP_STATUS_INTERVAL_MS);
    this.bgpTimer.unref();
  }

  /** BGP's part of the status file: the runner's, or the child process's. */
  private bgpStatus(): BgpRunStatus | undefined {
    if (this.bgpRunner !== undefined) return this.bgpRunner.status();
    const child = this.opts.bgpChild;
    const p = this.bgpProcess;
    if (child === undefined || p === undefined) return undefined;
    if (p.exitCode !== null || p.signalCode !== null) {
      const how = p.exitCode ?? p.signalCode ?? "";
      return {
        enabled: false,
        reason: `the BGP process exited (${how})`,
        peers: [],
        originated: [],
        problems: [],
        errors: [],
      };
    }
    try {
      return (JSON.parse(readFileSync(child.statusFile, "utf8")) as { bgp: BgpRunStatus }).bgp;
    } catch {
      return {
        enabled: true,
        reason: "the BGP process is starting",
        peers: [],
        originated: [],
        problems: [],
        errors: [],
      };
    }
  }

  /** SIGTERM the BGP child and wait for it (SIGKILL after 5 s). */
  private async stopBgpChild(): Promise<void> {
    const p = this.bgpProcess;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
    if (this.opts.bgpChild !== undefined) rmSync(this.opts.bgpChild.statusFile, { force: true });
  }

  /** Rewrite the status file after an apply, or when the BGP status changed. */
  private writeStatus(): void {
    const path = this.opts.statusFile;
    if (path === undefined || this.lastHealth === undefined || this.halted) return;
    const bgp = this.bgpStatus();
    this.lastBgpText = JSON.stringify(bgp);
    writeStatusFile(path, this.opts.nodename, this.lastHealth, bgp, this.opts.log);
  }

  private async bindServers(
    config: AgentConfig,
    which: { health: boolean; metrics: boolean },
  ): Promise<void> {
    const agent = () => this.agent;
    if (which.health) {
      await this.health?.close();
      this.health = undefined;
      if (config.healthEnabled) {
        this.health = await listen(
          config.healthHost,
          config.healthPort,
          healthHandler(
            () =>
              agent()?.health() ?? {
                live: true,
                ready: false,
                inSync: false,
                lastApplyOk: undefined,
                appliedRevision: 0,
                consecutiveFailures: 0,
                applies: 0,
              },
          ),
        );
        this.opts.log.info("Health endpoints listening", { host: config.healthHost, port: this.health.port });
      }
    }
    if (which.metrics) {
      await this.metricsServer?.close();
      this.metricsServer = undefined;
      if (config.prometheusMetricsEnabled) {
        this.metricsServer = await listen(
          config.prometheusMetricsHost,
          config.prometheusMetricsPort,
          metricsHandler(this.metrics.registry),
        );
        this.opts.log.info("Prometheus metrics listening", { port: this.metricsServer.port });
      }
    }
  }

  private async onConfigChange(config: AgentConfig, diff: ConfigDiff, prev: AgentConfig): Promise<void> {
    const log = this.opts.log;
    log.info("Configuration changed", {
      changed: Object.keys(diff).filter((k) => diff[k as keyof ConfigDiff]),
    });
    if (diff.log) log.setLevel(config.logSeverityScreen);
    // The calculation takes logPrefix at construction: Felix restarts for such changes; so do we
    // (in process: a fresh run re-lists and reconciles without flushing the kernel).
    if (config.dataplane.logPrefix !== prev.dataplane.logPrefix) {
      log.info("logPrefix changed: restarting", {
        from: prev.dataplane.logPrefix,
        to: config.dataplane.logPrefix,
      });
      await this.halt("restart");
      return;
    }
    if (diff.dataplane) this.agent?.setDataplaneConfig(config.dataplane);
    if (diff.timers) this.agent?.setResyncInterval(resyncInterval(config));
    if (diff.health || diff.metrics) {
      try {
        await this.bindServers(config, { health: diff.health, metrics: diff.metrics });
      } catch (err) {
        log.error("Cannot bind health/metrics with the new configuration", { error: err });
      }
    }
  }

  /** Stop everything this run started; kernel state stays as it is. The datastore stays open (the caller's). */
  async halt(why: RunEnd = "stopped"): Promise<void> {
    if (this.halted) return;
    this.halted = true;
    this.syncer?.stop();
    if (this.bgpTimer) clearInterval(this.bgpTimer);
    // Exiting (SIGTERM): a graceful-restart exit, peers keep our routes. An in-process restart
    // must free the BGP port for the next run's speaker: a normal stop.
    await this.bgpRunner?.stop({ graceful: why === "stopped" });
    await this.stopBgpChild();
    await this.agent?.stop();
    await this.health?.close();
    await this.metricsServer?.close();
    this.opts.log.info("calico-node run ended", { why: why instanceof Error ? why.message : why });
    this.end(why);
  }
}

/** The loop's periodic full apply: the shorter of the route and table refresh intervals (0 = off). */
export function resyncInterval(c: AgentConfig): number {
  const xs = [c.routeRefreshIntervalMs, c.tablesRefreshIntervalMs].filter((x) => x > 0);
  return xs.length === 0 ? 0 : Math.min(...xs);
}
