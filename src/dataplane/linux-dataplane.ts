/**
 * The Linux dataplane: one serialized `apply` that brings nftables (table `inet calico`),
 * our routes (proto `routeProtocol`) and workload interface sysctls to the desired state.
 *
 * Routes and sysctls do not depend on nft, and Felix programs them in parallel with its
 * iptables/nftables apply. We do the same once our table is in the kernel (known from an
 * earlier apply, or probed with one NFT_MSG_GETTABLE): its dispatch chains drop traffic of any
 * `cali*` interface they do not know, so a workload routed before its rules land is dropped,
 * not let through. When the table is absent (a node's very first start) nothing would police
 * that window, so nft goes first and routes + sysctls follow. Any failure throws (after every
 * part has run) and makes the next apply full (read back everything and repair). After a
 * successful apply, the flows of workload addresses that went are deleted (conntrack.ts).
 */
import type { DesiredState, StateChanges } from "../calc/types.js";
import { ConntrackCleaner, localWorkloadAddrs, type ConntrackApplier } from "./conntrack.js";
import { SysctlLinkManager, type LinkApplier } from "./links.js";
import { TABLE_NAME, type Nft } from "./nft/model.js";
import { NftCli } from "./nft/nft-cli.js";
import { loadLibc } from "./nft/netlink-elements.js";
import { NftManager } from "./nft-manager.js";
import { RouteManager, desiredKernelRoutes, type RouteApplier } from "./routes.js";
import { RtNetlink, rtattr } from "./rtnetlink.js";
import type { ApplyResult, Dataplane, DataplaneConfig } from "./types.js";

export interface LinuxDataplaneOptions {
  nft: Nft;
  /** Network namespace for routes and sysctls (nft's namespace is the Nft's business). */
  netns?: string;
  config: DataplaneConfig;
  /** Full resync at least this often (Felix `nftablesRefreshInterval`, default 180 s); 0 = never. */
  resyncIntervalMs?: number;
  /** Replace the route/link programming (tests without a kernel). */
  routes?: RouteApplier;
  links?: LinkApplier;
  /** Replace the conntrack clean-up (default: `conntrack -D` with a real kernel, none with a fake Nft). */
  conntrack?: ConntrackApplier;
  now?: () => number;
}

export class LinuxDataplane implements Dataplane {
  private readonly nftm: NftManager;
  private config: DataplaneConfig;
  private routes: RouteApplier;
  private readonly links: LinkApplier;
  private readonly conntrack: ConntrackApplier | undefined;
  private readonly customRoutes: boolean;
  private needFull = true;
  private lastFull = 0;
  private readonly resyncMs: number;
  private readonly now: () => number;
  private readonly netns: string | undefined;
  /** Our table is in the kernel (an nft apply succeeded): routes may go in parallel with nft. */
  private policing: boolean;
  private readonly realNft: boolean;
  /** Routes in the state at the last successful apply. */
  private lastRouteCount = -1;

  constructor(opts: LinuxDataplaneOptions) {
    this.config = opts.config;
    this.netns = opts.netns;
    this.nftm = new NftManager(opts.nft, opts.config);
    // Without a kernel table (a fake Nft) there is nothing to wait for or to probe.
    this.realNft = opts.nft instanceof NftCli;
    this.policing = !this.realNft;
    this.customRoutes = opts.routes !== undefined;
    this.routes = opts.routes ?? new RouteManager(opts.config.routeProtocol, { netns: opts.netns });
    this.links = opts.links ?? new SysctlLinkManager({ netns: opts.netns });
    this.conntrack =
      opts.conntrack ?? (this.realNft ? new ConntrackCleaner({ netns: opts.netns }) : undefined);
    this.resyncMs = opts.resyncIntervalMs ?? 180_000;
    this.now = opts.now ?? Date.now;
  }

  /** The nft manager (its desired table, for diagnostics and tests). */
  get nftManager(): NftManager {
    return this.nftm;
  }

  invalidate(): void {
    this.needFull = true;
    this.nftm.invalidate();
  }

  setConfig(config: DataplaneConfig): void {
    if (!this.customRoutes && config.routeProtocol !== this.config.routeProtocol)
      this.routes = new RouteManager(config.routeProtocol, { netns: this.netns });
    this.config = config;
    this.nftm.setConfig(config);
    this.needFull = true;
  }

  /** Whether table `inet calico` exists in our namespace (one NFT_MSG_GETTABLE); undefined if unknown. */
  private async tablePresent(): Promise<boolean | undefined> {
    const c = await loadLibc();
    if (c === undefined) return undefined;
    const nfgenmsg = Buffer.from([NFPROTO_INET, 0, 0, 0]);
    const nl = RtNetlink.open(c, this.netns, NETLINK_NETFILTER);
    try {
      const reply = nl.get(
        NFT_MSG_GETTABLE,
        Buffer.concat([nfgenmsg, rtattr(NFTA_TABLE_NAME, Buffer.from(`${TABLE_NAME}\0`))]),
      );
      return typeof reply !== "number";
    } finally {
      nl.close();
    }
  }

  async apply(
    state: DesiredState,
    changes: StateChanges,
    opts: { full?: boolean } = {},
  ): Promise<ApplyResult> {
    const start = this.now();
    const full =
      opts.full === true || this.needFull || (this.resyncMs > 0 && start - this.lastFull >= this.resyncMs);
    this.needFull = true; // until this apply succeeds
    const present = this.policing || !this.realNft ? true : await this.tablePresent().catch(() => undefined);
    const parallel = present === true;
    // No table: nothing to read back (`nft list` would only spawn nft to be told so).
    const nftRun = this.nftm.apply(state, changes, {
      full,
      ...(present === false ? { tableAbsent: true } : {}),
    });
    // Not policing yet: nothing is routed unless nft succeeded (its error is thrown here).
    if (!parallel) await nftRun;
    const ifaces = new Set<string>();
    for (const ep of state.endpoints.values()) if (ep.kind === "workload") ifaces.add(ep.interfaceName);
    // Routes, then sysctls, each timed alone (their rtnetlink and /proc work is synchronous, so
    // interleaving them would gain nothing and blur the two timings); together they overlap nft.
    const timed = async <T>(f: () => Promise<T>): Promise<PromiseSettledResult<T> & { ms: number }> => {
      const t = performance.now();
      const [r] = await Promise.allSettled([f()]);
      return { ...r, ms: performance.now() - t };
    };
    const kernel = (async () => {
      // Routes are read back on a full apply only; otherwise diffed against the last apply.
      // An incremental apply whose changes name no route (and whose route count is the last
      // apply's) cannot differ from it — every failure and config change makes the next apply
      // full —, so the 2,000-route rebuild and diff is skipped (~3–5 ms per change).
      const routesSame =
        !full &&
        changes.routes.size === 0 &&
        state.routes.size === this.lastRouteCount &&
        (this.routes.waiting?.length ?? 0) === 0;
      const routes = await timed(() =>
        routesSame
          ? Promise.resolve(0)
          : this.routes.apply(
              desiredKernelRoutes(state.routes.values(), this.config.ipv6),
              this.config.ipv6,
              full,
            ),
      );
      const links = await timed(() => this.links.apply(ifaces, this.config.ipv6, full));
      return { routes, links };
    })();
    const [nftR, kernelR] = await Promise.allSettled([nftRun, kernel]);
    if (nftR.status === "rejected") throw nftR.reason;
    this.policing = true;
    if (kernelR.status === "rejected") throw kernelR.reason;
    const { routes: routesR, links: linksR } = kernelR.value;
    if (routesR.status === "rejected") throw routesR.reason;
    if (linksR.status === "rejected") throw linksR.reason;
    const nft = nftR.value;
    // The removed workloads' rules are gone now: forget their flows too (never throws). Only
    // an endpoint change can change the addresses; a full apply (the first) records them.
    const ct =
      full || changes.endpoints.size > 0 ? await this.conntrack?.apply(localWorkloadAddrs(state)) : undefined;
    this.needFull = false;
    this.lastRouteCount = state.routes.size;
    if (full || nft.full) this.lastFull = start;
    // The phase times travel with the result into the agent's "Applied" log line.
    const res: ApplyResult & Record<string, number | boolean | string[]> = {
      full: full || nft.full,
      nftOps: nft.ops,
      nftScriptBytes: nft.scriptBytes,
      routesChanged: routesR.value,
      linksChanged: linksR.value,
      routesWaiting: this.routes.waiting?.length ?? 0,
      conntrackFlushed: ct?.removed.length ?? 0,
      ...(ct !== undefined && ct.errors.length > 0 ? { warnings: ct.errors } : {}),
      durationMs: this.now() - start,
      nftPlanMs: Math.round(nft.planMs),
      nftWriteMs: Math.round(nft.writeMs),
      routesMs: Math.round(routesR.ms),
      linksMs: Math.round(linksR.ms),
      routesWithNft: parallel,
    };
    return res;
  }
}

// linux/netlink.h, linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h
const NETLINK_NETFILTER = 12;
const NFT_MSG_GETTABLE = (10 << 8) | 1; // NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE
const NFPROTO_INET = 1;
const NFTA_TABLE_NAME = 1;
