/**
 * IPAM garbage collection for deleted nodes (reference/calico.md §4.3, the kube-controllers
 * node controller): when a Node is gone, release every allocation made for it (attribute
 * `node`) and every affinity it held. Leaked pod allocations (handle with no workload) need the
 * workload view and are not collected here yet.
 */
import { formatIP } from "../api/net.js";
import {
  addressOf,
  ALL_AFFINITIES_PREFIX,
  affinityNode,
  blockPrefix,
  cidrFromKeyPart,
  parseAffinityKey,
  parseBlock,
} from "./block.js";
import type { IPAM } from "./allocator.js";

export interface NodeGCResult {
  /** Nodes that no longer exist but still held addresses or affinities. */
  nodes: string[];
  releasedAddresses: string[];
  affinitiesReleased: number;
}

export async function gcDeletedNodes(ipam: IPAM): Promise<NodeGCResult> {
  const ds = ipam.datastore;
  const live = new Set((await ipam.resources.list("Node")).items.map((r) => r.metadata.name));
  const gone = new Set<string>();
  const addrs: string[] = [];
  for (const family of [4, 6] as const) {
    for (const kv of (await ds.list(blockPrefix(family))).items) {
      const b = parseBlock(kv.value);
      const owner = affinityNode(b.affinity);
      if (owner !== undefined && !live.has(owner)) gone.add(owner);
      b.allocations.forEach((a, o) => {
        const n = a === null ? undefined : b.attributes[a]?.secondary?.node;
        if (n !== undefined && !live.has(n)) {
          gone.add(n);
          addrs.push(formatIP(b.cidr.family, addressOf(b, o)));
        }
      });
    }
  }
  const released = addrs.length > 0 ? (await ipam.releaseIPs(addrs)).released : [];
  let affinitiesReleased = 0;
  for (const kv of (await ds.list(ALL_AFFINITIES_PREFIX)).items) {
    const k = parseAffinityKey(kv.key);
    if (k === undefined || live.has(k.node)) continue;
    const c = cidrFromKeyPart(kv.key.slice(kv.key.lastIndexOf("/") + 1), k.family);
    if (c === undefined) continue;
    gone.add(k.node);
    await ipam.releaseAffinity(c, k.node);
    affinitiesReleased++;
  }
  // Blocks still naming a deleted node with no affinity record (a crash mid-way).
  for (const family of [4, 6] as const) {
    for (const kv of (await ds.list(blockPrefix(family))).items) {
      const b = parseBlock(kv.value);
      const owner = affinityNode(b.affinity);
      if (owner !== undefined && !live.has(owner)) await ipam.releaseAffinity(b.cidr, owner);
    }
  }
  return { nodes: [...gone].sort(), releasedAddresses: released, affinitiesReleased };
}
