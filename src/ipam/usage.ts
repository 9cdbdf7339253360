/**
 * Who uses each allocation: the workload view behind leak detection (`calicoctl ipam check`,
 * reference/calico.md §8) and leak GC (§4.3, the kube-controllers rules).
 *
 * An allocation is judged by its attributes (Calico's `secondary` map):
 * - `node` names a Node that no longer exists → leaked (the node is gone; no grace period);
 * - a tunnel address (`type` ends in `TunnelAddress`) → in use while its node exists;
 * - a workload allocation (`pod`/`namespace`, or `workload`, or a handle of the CNI form
 *   `<network>.<containerID>`) → in use if some WorkloadEndpoint holds the address, else a
 *   leak candidate;
 * - anything else (no attributes) → assumed in use, as Calico does.
 * WorkloadEndpoints holding an address no block has allocated are reported separately.
 */
import { formatCIDR, formatIP, parseCIDROrIP } from "../api/net.js";
import { ResourceStore } from "../datastore/resources.js";
import type { Datastore } from "../datastore/types.js";
import { addressOf, affinityNode, blockPrefix, parseBlock } from "./block.js";

export const AllocationState = {
  IN_USE: "in-use",
  /** No workload holds it: a leak once the grace period has passed (GC decides when). */
  LEAK_CANDIDATE: "leak-candidate",
  /** Its node is gone: leaked now. */
  LEAKED: "leaked",
} as const;
export type AllocationState = (typeof AllocationState)[keyof typeof AllocationState];

export interface AllocationUse {
  address: string;
  block: string;
  /** The node the block is affine to, if any. */
  blockAffinity: string | null;
  handleID: string | null;
  attrs: Record<string, string>;
  sequenceNumber: number;
  state: AllocationState;
  /** Why, in words: "held by WorkloadEndpoint ns/name", "node \"n1\" does not exist", ... */
  reason: string;
  /** The WorkloadEndpoint (`namespace/name`) holding the address, when one does. */
  workloadEndpoint?: string;
}

export interface UnallocatedUse {
  address: string;
  workloadEndpoint: string;
}

export interface UsageReport {
  allocations: AllocationUse[];
  /** Addresses a WorkloadEndpoint holds that no block has allocated. */
  inUseNotAllocated: UnallocatedUse[];
  /** The datastore revision the Node and WorkloadEndpoint lists were read at. */
  revision: number;
}

const isTunnel = (attrs: Record<string, string>): boolean => (attrs.type ?? "").endsWith("TunnelAddress");
const isWorkload = (handle: string | null, attrs: Record<string, string>): boolean =>
  attrs.pod !== undefined ||
  attrs.workload !== undefined ||
  attrs.namespace !== undefined ||
  (handle !== null && /^[^.]+\.[0-9a-zA-Z_-]+$/.test(handle) && attrs.node !== undefined);

/** Canonical address text of a WorkloadEndpoint `ipNetworks` entry (`198.19.0.5/32` → `198.19.0.5`). */
function endpointAddress(net: string): string | undefined {
  const c = parseCIDROrIP(net);
  return c === undefined ? undefined : formatIP(c.family, c.addr);
}

/** Classify every allocation. Reads WEPs and Nodes before blocks, so an address allocated and
 * attached between the two reads is seen as allocated-and-unused at worst, never the reverse
 * for an old allocation; GC re-validates before it releases anything. */
export async function classifyAllocations(ds: Datastore): Promise<UsageReport> {
  const resources = new ResourceStore(ds);
  const nodesList = await resources.list("Node");
  const nodes = new Set(nodesList.items.map((r) => r.metadata.name));
  const weps = await resources.list("WorkloadEndpoint");
  const holders = new Map<string, string>(); // address → ns/name
  for (const w of weps.items) {
    const nets = (w.spec as { ipNetworks?: unknown }).ipNetworks;
    if (!Array.isArray(nets)) continue;
    for (const n of nets) {
      const a = typeof n === "string" ? endpointAddress(n) : undefined;
      if (a !== undefined) holders.set(a, `${w.metadata.namespace ?? ""}/${w.metadata.name}`);
    }
  }
  const allocations: AllocationUse[] = [];
  const allocated = new Set<string>();
  for (const family of [4, 6] as const) {
    for (const kv of (await ds.list(blockPrefix(family))).items) {
      const b = parseBlock(kv.value);
      const block = formatCIDR(b.cidr);
      b.allocations.forEach((ai, o) => {
        if (ai === null) return;
        const attr = b.attributes[ai];
        const address = formatIP(b.cidr.family, addressOf(b, o));
        allocated.add(address);
        const handleID = attr?.handleID ?? null;
        const attrs = { ...(attr?.secondary ?? {}) };
        const base = {
          address,
          block,
          blockAffinity: affinityNode(b.affinity) ?? null,
          handleID,
          attrs,
          sequenceNumber: b.sequenceNumberForAllocation[String(o)] ?? 0,
        };
        const wep = holders.get(address);
        const use = (state: AllocationState, reason: string): AllocationUse =>
          wep === undefined ? { ...base, state, reason } : { ...base, state, reason, workloadEndpoint: wep };
        if (wep !== undefined) {
          allocations.push(use(AllocationState.IN_USE, `held by WorkloadEndpoint ${wep}`));
        } else if (attrs.node !== undefined && !nodes.has(attrs.node)) {
          allocations.push(use(AllocationState.LEAKED, `node "${attrs.node}" does not exist`));
        } else if (isTunnel(attrs)) {
          allocations.push(use(AllocationState.IN_USE, `${attrs.type} of node "${attrs.node ?? "?"}"`));
        } else if (isWorkload(handleID, attrs)) {
          const who =
            attrs.pod !== undefined
              ? `pod ${attrs.namespace ?? ""}/${attrs.pod}`
              : attrs.workload !== undefined
                ? `workload ${attrs.workload}`
                : `handle "${handleID ?? ""}"`;
          allocations.push(use(AllocationState.LEAK_CANDIDATE, `no WorkloadEndpoint holds it (${who})`));
        } else {
          allocations.push(use(AllocationState.IN_USE, "no owner attributes: assumed in use"));
        }
      });
    }
  }
  const inUseNotAllocated: UnallocatedUse[] = [];
  for (const [address, wep] of holders) {
    if (!allocated.has(address)) inUseNotAllocated.push({ address, workloadEndpoint: wep });
  }
  return { allocations, inUseNotAllocated, revision: weps.revision };
}
