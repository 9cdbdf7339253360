/**
 * What the node agent sees of the dataplane (Felix's `InternalDataplane` seen from the calc
 * side): one serialized `apply` that brings the kernel to the desired state.
 */
import type { DesiredState, StateChanges } from "../calc/types.js";

export interface FailsafePort {
  protocol: "tcp" | "udp";
  port: number;
  /** Optional peer CIDR the port is open to (FelixConfiguration `net`). */
  net?: string;
}

/** The FelixConfiguration fields the dataplane uses, resolved (node.<name> over default over built-in). */
export interface DataplaneConfig {
  /** `interfacePrefix` split on commas; the first names new interfaces (default ["cali"]). */
  interfacePrefixes: string[];
  failsafeInboundHostPorts: FailsafePort[];
  failsafeOutboundHostPorts: FailsafePort[];
  /** `defaultEndpointToHostAction`: what happens to workload → host traffic after egress policy. */
  defaultEndpointToHostAction: "Drop" | "Accept" | "Return";
  /** `logPrefix` for Log rules (default `calico-packet`). */
  logPrefix: string;
  /** Route protocol number on every route we write (ours: see dataplane docs). */
  routeProtocol: number;
  /** Program IPv6 as well as IPv4. */
  ipv6: boolean;
  /** `nftablesFilterDenyAction`: Drop or Reject. */
  denyAction: "Drop" | "Reject";
}

export interface ApplyResult {
  /** Whether this apply read back and rewrote everything (first apply, resync, after a failure). */
  full: boolean;
  /** Operations in the nft transaction (0 when nothing changed) and the script's size. */
  nftOps: number;
  nftScriptBytes: number;
  routesChanged: number;
  linksChanged: number;
  /**
   * Routes not written because their interface does not exist (yet, or any more): a workload
   * between its endpoint and its veth. The caller applies again soon; they are not failures.
   */
  routesWaiting?: number;
  /** Workload addresses that went and whose conntrack flows were deleted. */
  conntrackFlushed?: number;
  /** What went wrong without failing the apply (e.g. a conntrack clean-up), for the log. */
  warnings?: string[];
  durationMs: number;
}

export interface Dataplane {
  /**
   * Bring the kernel to `state`. `changes` says what moved since the previous apply; it is
   * ignored on a full apply. Serialized: callers must not overlap calls. Throws when the
   * kernel refused the update; the next call is then a full apply.
   */
  apply(state: DesiredState, changes: StateChanges, opts?: { full?: boolean }): Promise<ApplyResult>;
  /** Forget what we believe the kernel holds: the next apply reads back and repairs everything. */
  invalidate(): void;
  /** Apply a new configuration (takes effect on the next apply, which is full). */
  setConfig(config: DataplaneConfig): void;
}
