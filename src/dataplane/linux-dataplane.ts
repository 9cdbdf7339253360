/**
 * The Linux dataplane: one serialized `apply` that brings nftables (table `inet calico`),
 * our routes (proto `routeProtocol`) and workload interface sysctls to the desired state.
 * nft goes first: a workload must be policed before it is routed. Any failure throws and
 * makes the next apply full (read back everything and repair).
 */
import type { DesiredState, StateChanges } from "../calc/types.js";
import { SysctlLinkManager, type LinkApplier } from "./links.js";
import type { Nft } from "./nft/model.js";
import { NftManager } from "./nft-manager.js";
import { IpRouteManager, desiredKernelRoutes, type RouteApplier } from "./routes.js";
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
  now?: () => number;
}

export class LinuxDataplane implements Dataplane {
  private readonly nftm: NftManager;
  private config: DataplaneConfig;
  private routes: RouteApplier;
  private readonly links: LinkApplier;
  private readonly customRoutes: boolean;
  private needFull = true;
  private lastFull = 0;
  private readonly resyncMs: number;
  private readonly now: () => number;
  private readonly netns: string | undefined;

  constructor(opts: LinuxDataplaneOptions) {
    this.config = opts.config;
    this.netns = opts.netns;
    this.nftm = new NftManager(opts.nft, opts.config);
    this.customRoutes = opts.routes !== undefined;
    this.routes = opts.routes ?? new IpRouteManager(opts.config.routeProtocol, opts.netns);
    this.links = opts.links ?? new SysctlLinkManager(opts.netns);
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
      this.routes = new IpRouteManager(config.routeProtocol, this.netns);
    this.config = config;
    this.nftm.setConfig(config);
    this.needFull = true;
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
    const nft = await this.nftm.apply(state, changes, { full });
    const tRoutes = performance.now();
    // Routes are read back on a full apply only; otherwise diffed against the last apply.
    const routesChanged = await this.routes.apply(
      desiredKernelRoutes(state.routes.values(), this.config.ipv6),
      this.config.ipv6,
      full || nft.full,
    );
    const tLinks = performance.now();
    const ifaces = new Set<string>();
    for (const ep of state.endpoints.values()) if (ep.kind === "workload") ifaces.add(ep.interfaceName);
    const linksChanged = await this.links.apply(ifaces, this.config.ipv6, full);
    this.needFull = false;
    if (full || nft.full) this.lastFull = start;
    // The phase times travel with the result into the agent's "Applied" log line.
    const res: ApplyResult & Record<string, number | boolean> = {
      full: full || nft.full,
      nftOps: nft.ops,
      nftScriptBytes: nft.scriptBytes,
      routesChanged,
      linksChanged,
      durationMs: this.now() - start,
      nftPlanMs: Math.round(nft.planMs),
      nftWriteMs: Math.round(nft.writeMs),
      routesMs: Math.round(tLinks - tRoutes),
      linksMs: Math.round(performance.now() - tLinks),
    };
    return res;
  }
}
