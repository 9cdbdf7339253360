/**
 * The IPAM consistency checker: what `calicoctl ipam check` prints, and the final-state
 * oracle of the concurrency tests. Reads everything once; reports, never repairs.
 */
import { cidrsOverlap, formatCIDR, formatIP } from "../api/net.js";
import { ResourceStore } from "../datastore/resources.js";
import type { Datastore } from "../datastore/types.js";
import {
  addressOf,
  affinityKey,
  affinityNode,
  ALL_AFFINITIES_PREFIX,
  blockPrefix,
  blockProblems,
  handleCounts,
  HANDLE_PREFIX,
  parseAffinityKey,
  parseBlock,
  type AffinityDoc,
  type Block,
  type HandleDoc,
} from "./block.js";

export const IPAMIssueKind = {
  /** A block's own bookkeeping is broken (ordinal both free and allocated, ...). */
  BAD_BLOCK: "bad-block",
  /** Two blocks overlap, so an address could be handed out twice. */
  OVERLAPPING_BLOCKS: "overlapping-blocks",
  /** A handle's count for a block differs from what the block holds. */
  HANDLE_MISMATCH: "handle-mismatch",
  /** An allocation whose handle object does not exist (a leak GC would look at). */
  MISSING_HANDLE: "missing-handle",
  /** A host-affine block with no affinity record for that host. */
  MISSING_AFFINITY: "missing-affinity",
  /** A block affine to a node that does not exist. */
  MISSING_NODE: "missing-node",
  /** A confirmed affinity whose block does not exist. */
  DANGLING_AFFINITY: "dangling-affinity",
} as const;
export type IPAMIssueKind = (typeof IPAMIssueKind)[keyof typeof IPAMIssueKind];

export interface IPAMIssue {
  kind: IPAMIssueKind;
  message: string;
}

export interface IPAMCheckReport {
  blocks: number;
  allocations: number;
  handles: number;
  affinities: number;
  issues: IPAMIssue[];
}

export interface CheckOptions {
  /** Report blocks affine to nodes with no Node resource (default true). */
  checkNodes?: boolean;
}

export async function checkIPAM(ds: Datastore, opts: CheckOptions = {}): Promise<IPAMCheckReport> {
  const issues: IPAMIssue[] = [];
  const blocks: Block[] = [];
  for (const family of [4, 6] as const) {
    for (const kv of (await ds.list(blockPrefix(family))).items) blocks.push(parseBlock(kv.value));
  }
  const affinities = new Map<string, AffinityDoc>();
  for (const kv of (await ds.list(ALL_AFFINITIES_PREFIX)).items) {
    if (parseAffinityKey(kv.key) !== undefined) affinities.set(kv.key, JSON.parse(kv.value) as AffinityDoc);
  }
  const handles = new Map<string, HandleDoc>();
  for (const kv of (await ds.list(HANDLE_PREFIX)).items) {
    handles.set(kv.key.slice(HANDLE_PREFIX.length), JSON.parse(kv.value) as HandleDoc);
  }
  let nodes: Set<string> | undefined;
  if (opts.checkNodes !== false) {
    nodes = new Set((await new ResourceStore(ds).list("Node")).items.map((r) => r.metadata.name));
  }

  let allocations = 0;
  const fromBlocks = new Map<string, Map<string, number>>(); // handle → block cidr → count
  const blockKeysOfAffinities = new Set<string>();
  for (const b of blocks) {
    const name = formatCIDR(b.cidr);
    for (const p of blockProblems(b))
      issues.push({ kind: IPAMIssueKind.BAD_BLOCK, message: `block ${name}: ${p}` });
    for (const [h, n] of handleCounts(b)) {
      allocations += n;
      const m = fromBlocks.get(h) ?? new Map<string, number>();
      m.set(name, n);
      fromBlocks.set(h, m);
      if (!handles.has(h)) {
        const ips = b.allocations
          .map((a, o) =>
            a !== null && b.attributes[a]?.handleID === h
              ? formatIP(b.cidr.family, addressOf(b, o))
              : undefined,
          )
          .filter((x) => x !== undefined);
        issues.push({
          kind: IPAMIssueKind.MISSING_HANDLE,
          message: `block ${name}: ${ips.join(", ")} held by handle "${h}", which does not exist`,
        });
      }
    }
    const node = affinityNode(b.affinity);
    if (node !== undefined) {
      const aKey = affinityKey(node, b.cidr);
      blockKeysOfAffinities.add(aKey);
      if (!affinities.has(aKey)) {
        issues.push({
          kind: IPAMIssueKind.MISSING_AFFINITY,
          message: `block ${name} is affine to "${node}" but that host has no affinity record for it`,
        });
      }
      if (nodes !== undefined && !nodes.has(node)) {
        issues.push({
          kind: IPAMIssueKind.MISSING_NODE,
          message: `block ${name} is affine to node "${node}", which does not exist`,
        });
      }
    }
  }
  for (let i = 0; i < blocks.length; i++) {
    for (let j = i + 1; j < blocks.length; j++) {
      const a = blocks[i]!;
      const b = blocks[j]!;
      if (cidrsOverlap(a.cidr, b.cidr)) {
        issues.push({
          kind: IPAMIssueKind.OVERLAPPING_BLOCKS,
          message: `blocks ${formatCIDR(a.cidr)} and ${formatCIDR(b.cidr)} overlap`,
        });
      }
    }
  }
  for (const [h, doc] of handles) {
    const actual = fromBlocks.get(h) ?? new Map<string, number>();
    const cidrs = new Set([...Object.keys(doc.block), ...actual.keys()]);
    for (const c of cidrs) {
      const want = doc.block[c] ?? 0;
      const have = actual.get(c) ?? 0;
      if (want !== have) {
        issues.push({
          kind: IPAMIssueKind.HANDLE_MISMATCH,
          message: `handle "${h}" records ${want} address(es) in block ${c}, the block holds ${have}`,
        });
      }
    }
  }
  for (const [k, doc] of affinities) {
    if (doc.state === "confirmed" && !blockKeysOfAffinities.has(k)) {
      issues.push({
        kind: IPAMIssueKind.DANGLING_AFFINITY,
        message: `affinity ${k} is confirmed but its block does not exist or has another affinity`,
      });
    }
  }
  return { blocks: blocks.length, allocations, handles: handles.size, affinities: affinities.size, issues };
}
