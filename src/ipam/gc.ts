/**
 * IPAM garbage collection (reference/calico.md §4.3, the kube-controllers node controller):
 * `gcDeletedNodes` releases what a deleted Node held; `IPAMGarbageCollector` adds leaked
 * workload addresses (after a grace period) and empty blocks, pass by pass.
 */
import { parseDuration } from "../api/duration.js";
import { formatCIDR, formatIP } from "../api/net.js";
import { isResourceNotFound } from "../datastore/resources.js";
import {
  addressOf,
  affinityKey,
  ALL_AFFINITIES_PREFIX,
  affinityNode,
  blockPrefix,
  cidrFromKeyPart,
  inUseCount,
  parseAffinityKey,
  parseBlock,
  type AffinityDoc,
} from "./block.js";
import type { IPAM } from "./allocator.js";
import { deleteEmptyAffineBlock } from "./repair.js";
import { AllocationState, classifyAllocations, type AllocationUse } from "./usage.js";

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

// ---- leaked workload addresses and empty blocks (the kube-controllers node controller) ----

/** kube-controllers' default `leakGracePeriod` (reference §4.3). */
export const DEFAULT_LEAK_GRACE_PERIOD_MS = 15 * 60_000;

/**
 * The leak grace period: KubeControllersConfiguration `default`
 * spec.controllers.node.leakGracePeriod when set and valid, else 15 minutes. 0 disables the
 * collection of pod addresses (deleted nodes are still collected).
 */
export async function leakGracePeriodMs(ipam: IPAM): Promise<number> {
  let spec: Record<string, unknown>;
  try {
    spec = (await ipam.resources.get("KubeControllersConfiguration", "default")).spec;
  } catch (err) {
    if (isResourceNotFound(err)) return DEFAULT_LEAK_GRACE_PERIOD_MS;
    throw err;
  }
  const node = (spec.controllers as { node?: { leakGracePeriod?: unknown } } | undefined)?.node;
  const text = node?.leakGracePeriod;
  const ms = typeof text === "string" ? parseDuration(text) : undefined;
  return ms !== undefined && ms >= 0 ? ms : DEFAULT_LEAK_GRACE_PERIOD_MS;
}

export interface LeakGCOptions {
  /** Overrides the configured grace period (see `leakGracePeriodMs`). */
  leakGracePeriodMs?: number;
  now?: () => number;
}

export interface GCPassResult {
  leakGracePeriodMs: number;
  deletedNodes: NodeGCResult;
  /** Addresses no workload holds whose grace period is still running. */
  candidates: string[];
  /** Addresses released as confirmed leaks (grace period over, re-validated just before). */
  leaksReleased: string[];
  /**
   * Confirmed leaks left alone: in use again, re-allocated since, or another address of the
   * same handle is still in use or still within its grace period.
   */
  leaksKept: string[];
  /** Empty host-affine blocks given up (CIDR), after two empty sightings a grace period apart. */
  emptyBlocksReleased: string[];
}

interface Sighting {
  since: number;
  sequenceNumber: number;
}

/**
 * Calico's IPAM garbage collection (reference §4.3): keep one per long-lived process and call
 * `runOnce` periodically (every grace period / 2). Rules:
 * - a Node that is gone: its addresses and affinities are released at once (`gcDeletedNodes`);
 * - an allocation no workload holds (`classifyAllocations`' leak-candidate) is remembered with
 *   the time first seen and its sequence number; it is a confirmed leak once the grace period
 *   has passed with the same allocation (same sequence number) still unused;
 * - a handle's addresses are released only when all of them are confirmed leaks, after a fresh
 *   classification just before the release, and with the sequence numbers observed, so an
 *   address re-allocated in between is left alone;
 * - an empty block affine to a live node is given up after two empty sightings (same sequence
 *   number) at least a grace period apart, unless it is the node's last block of its family.
 * What it remembers is only what the last pass saw, so it never grows without bound.
 */
export class IPAMGarbageCollector {
  private readonly now: () => number;
  private candidates = new Map<string, Sighting>();
  private emptyBlocks = new Map<string, Sighting>();

  constructor(
    readonly ipam: IPAM,
    private readonly opts: LeakGCOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Entries remembered (for tests: bounded by what the last pass saw). */
  get remembered(): number {
    return this.candidates.size + this.emptyBlocks.size;
  }

  async runOnce(): Promise<GCPassResult> {
    const ds = this.ipam.datastore;
    const now = this.now();
    const grace = this.opts.leakGracePeriodMs ?? (await leakGracePeriodMs(this.ipam));
    const deletedNodes = await gcDeletedNodes(this.ipam);
    const res: GCPassResult = {
      leakGracePeriodMs: grace,
      deletedNodes,
      candidates: [],
      leaksReleased: [],
      leaksKept: [],
      emptyBlocksReleased: [],
    };

    const report = await classifyAllocations(ds);
    const next = new Map<string, Sighting>();
    const confirmed = new Map<string, AllocationUse>();
    for (const a of report.allocations) {
      if (a.state === AllocationState.IN_USE) continue;
      if (a.state === AllocationState.LEAKED) {
        // Its node went between gcDeletedNodes and this read: no grace period.
        confirmed.set(a.address, a);
        continue;
      }
      if (grace <= 0) continue;
      const prev = this.candidates.get(a.address);
      const since = prev !== undefined && prev.sequenceNumber === a.sequenceNumber ? prev.since : now;
      next.set(a.address, { since, sequenceNumber: a.sequenceNumber });
      if (now - since >= grace) confirmed.set(a.address, a);
      else res.candidates.push(a.address);
    }
    this.candidates = next;

    if (confirmed.size > 0) {
      const all = allLeaked(report.allocations, confirmed);
      // Re-validate immediately before releasing: a workload may have appeared meanwhile.
      const again = await classifyAllocations(ds);
      const fresh = new Map<string, AllocationUse>();
      for (const a of again.allocations) {
        const was = confirmed.get(a.address);
        if (
          was !== undefined &&
          a.state !== AllocationState.IN_USE &&
          a.sequenceNumber === was.sequenceNumber
        )
          fresh.set(a.address, a);
      }
      const toRelease = allLeaked(again.allocations, fresh);
      const ok = [...all].filter((a) => toRelease.has(a));
      res.leaksKept.push(...[...confirmed.keys()].filter((a) => !toRelease.has(a)));
      if (ok.length > 0) {
        const r = await this.ipam.releaseIPs(
          ok.map((address) => ({ address, sequenceNumber: fresh.get(address)!.sequenceNumber })),
        );
        res.leaksReleased.push(...r.released);
        res.leaksKept.push(...r.skipped);
        for (const a of r.released) this.candidates.delete(a);
      }
    }

    await this.collectEmptyBlocks(grace, now, res);
    return res;
  }

  private async collectEmptyBlocks(grace: number, now: number, res: GCPassResult): Promise<void> {
    const ds = this.ipam.datastore;
    const next = new Map<string, Sighting>();
    if (grace > 0) {
      const nodes = new Set((await this.ipam.resources.list("Node")).items.map((r) => r.metadata.name));
      for (const family of [4, 6] as const) {
        const blocks = (await ds.list(blockPrefix(family))).items.map((kv) => ({
          kv,
          b: parseBlock(kv.value),
        }));
        const owned = new Map<string, number>();
        for (const { b } of blocks) {
          const n = affinityNode(b.affinity);
          if (n !== undefined) owned.set(n, (owned.get(n) ?? 0) + 1);
        }
        for (const { kv, b } of blocks) {
          const node = affinityNode(b.affinity);
          if (node === undefined || !nodes.has(node) || inUseCount(b) > 0) continue;
          const prev = this.emptyBlocks.get(kv.key);
          const since = prev !== undefined && prev.sequenceNumber === b.sequenceNumber ? prev.since : now;
          if (now - since < grace || (owned.get(node) ?? 0) <= 1) {
            next.set(kv.key, { since, sequenceNumber: b.sequenceNumber });
            continue;
          }
          const aff = await ds.get(affinityKey(node, b.cidr));
          if (aff === undefined || (JSON.parse(aff.value) as AffinityDoc).state !== "confirmed") continue;
          // CAS on the block revision observed empty: if anyone allocated since, nothing happens.
          if (await deleteEmptyAffineBlock(ds, kv, aff)) {
            res.emptyBlocksReleased.push(formatCIDR(b.cidr));
            owned.set(node, (owned.get(node) ?? 0) - 1);
          }
        }
      }
    }
    this.emptyBlocks = next;
  }
}

/**
 * The addresses of `leaked` whose handle has no other allocation outside `leaked` (release
 * only when all of a handle's addresses are leaked). Addresses with no handle stand alone.
 */
function allLeaked(
  allocations: readonly AllocationUse[],
  leaked: ReadonlyMap<string, AllocationUse>,
): Set<string> {
  const blocked = new Set<string>();
  for (const a of allocations) {
    if (a.handleID !== null && !leaked.has(a.address)) blocked.add(a.handleID);
  }
  const out = new Set<string>();
  for (const [address, a] of leaked) {
    if (a.handleID === null || !blocked.has(a.handleID)) out.add(address);
  }
  return out;
}
