/**
 * The IPAM block (reference/calico.md §4.1, §2.21): the compare-and-swap unit of address
 * allocation. Pure maths and (de)serialisation in Calico's etcd key layout; no I/O.
 *
 * A block is a CIDR carved from a pool; ordinal i is the address `base + i`. Every ordinal is
 * either allocated (`allocations[i]` is an index into `attributes`) or in the `unallocated`
 * FIFO queue — never both, never neither. Calico does not reserve network/broadcast
 * addresses inside a block (a /26 hands out .0 and .63 too); only IPReservations are skipped.
 */
import {
  cidrContains,
  familyBits,
  formatCIDR,
  formatIP,
  hostMask,
  parseCIDR,
  type CIDR,
  type IPFamily,
} from "../api/net.js";

export interface AllocationAttribute {
  handleID: string | null;
  secondary: Record<string, string> | null;
}

export interface Block {
  /** Masked block CIDR. */
  cidr: CIDR;
  /** `host:<node>` (or `virtual:<name>`), or null for a block no host owns. */
  affinity: string | null;
  allocations: (number | null)[];
  /** Free ordinals; allocation pops from the head, release appends to the tail. */
  unallocated: number[];
  attributes: AllocationAttribute[];
  /** Bumped on every write; an allocation records the value it was made at. */
  sequenceNumber: number;
  sequenceNumberForAllocation: Record<string, number>;
}

export const IPAM_PREFIX = "/calico/ipam/v2/";

export const familyDir = (family: IPFamily): string => (family === 4 ? "ipv4" : "ipv6");

/** `198.19.0.0/26` → `198-19-0-0-26`; `fd00:19::/122` → `fd00-19---122` (Calico's key form). */
export const cidrKeyPart = (c: CIDR): string => formatCIDR(c).replace(/[.:/]/g, "-");

export const blockPrefix = (family: IPFamily): string =>
  `${IPAM_PREFIX}assignment/${familyDir(family)}/block/`;
export const blockKey = (c: CIDR): string => `${blockPrefix(c.family)}${cidrKeyPart(c)}`;
export const affinityPrefix = (node: string, family: IPFamily): string =>
  `${IPAM_PREFIX}host/${node}/${familyDir(family)}/block/`;
export const affinityKey = (node: string, c: CIDR): string =>
  `${affinityPrefix(node, c.family)}${cidrKeyPart(c)}`;
export const ALL_AFFINITIES_PREFIX = `${IPAM_PREFIX}host/`;
export const HANDLE_PREFIX = `${IPAM_PREFIX}handle/`;
export const handleKey = (id: string): string => `${HANDLE_PREFIX}${id}`;

export const hostAffinity = (node: string): string => `host:${node}`;
/** The node of a `host:<node>` affinity, else undefined. */
export const affinityNode = (affinity: string | null): string | undefined =>
  affinity !== null && affinity.startsWith("host:") ? affinity.slice(5) : undefined;

export type AffinityState = "pending" | "confirmed" | "pendingDeletion";
export interface AffinityDoc {
  state: AffinityState;
  deleted: boolean;
}

/** A handle: which blocks hold how many of its addresses (release without scanning). */
export interface HandleDoc {
  block: Record<string, number>;
  deleted: boolean;
}

/** Parse `/calico/ipam/v2/host/<node>/ipv4/block/<cidr>` into node and block CIDR text. */
export function parseAffinityKey(key: string): { node: string; family: IPFamily } | undefined {
  const m = /^\/calico\/ipam\/v2\/host\/([^/]+)\/ipv([46])\/block\/[^/]+$/.exec(key);
  if (m === null) return undefined;
  return { node: m[1]!, family: m[2] === "4" ? 4 : 6 };
}

export function blockSize(c: CIDR): number {
  return Number(1n << BigInt(familyBits(c.family) - c.prefix));
}

export function newBlock(cidr: CIDR, affinity: string | null, sequenceNumber: number): Block {
  const size = blockSize(cidr);
  return {
    cidr: { family: cidr.family, addr: cidr.addr & ~hostMask(cidr.family, cidr.prefix), prefix: cidr.prefix },
    affinity,
    allocations: new Array<number | null>(size).fill(null),
    unallocated: Array.from({ length: size }, (_, i) => i),
    attributes: [],
    sequenceNumber,
    sequenceNumberForAllocation: {},
  };
}

export function cloneBlock(b: Block): Block {
  return {
    cidr: { ...b.cidr },
    affinity: b.affinity,
    allocations: [...b.allocations],
    unallocated: [...b.unallocated],
    attributes: b.attributes.map((a) => ({
      handleID: a.handleID,
      secondary: a.secondary === null ? null : { ...a.secondary },
    })),
    sequenceNumber: b.sequenceNumber,
    sequenceNumberForAllocation: { ...b.sequenceNumberForAllocation },
  };
}

export const addressOf = (b: Block, ordinal: number): bigint => b.cidr.addr + BigInt(ordinal);

/** The ordinal of `addr` in the block, or undefined if the block does not contain it. */
export function ordinalOf(b: Block, addr: bigint): number | undefined {
  const off = addr - b.cidr.addr;
  if (off < 0n || off >= BigInt(blockSize(b.cidr))) return undefined;
  return Number(off);
}

export const isReserved = (family: IPFamily, addr: bigint, reserved: readonly CIDR[]): boolean =>
  reserved.some((r) => cidrContains(r, { family, addr, prefix: familyBits(family) }));

export const inUseCount = (b: Block): number => b.allocations.filter((a) => a !== null).length;

/** Free ordinals that may be handed out (not covered by a reservation). */
export function freeCount(b: Block, reserved: readonly CIDR[] = []): number {
  const rel = reserved.filter((r) => r.family === b.cidr.family);
  if (rel.length === 0) return b.unallocated.length;
  return b.unallocated.filter((o) => !isReserved(b.cidr.family, addressOf(b, o), rel)).length;
}

/** True when every address of the block is covered by reservations (the walk skips it). */
export function fullyReserved(cidr: CIDR, reserved: readonly CIDR[]): boolean {
  return reserved.some((r) => cidrContains(r, cidr));
}

function attributeIndex(b: Block, handleID: string | null, secondary: Record<string, string> | null): number {
  const want = JSON.stringify(secondary);
  const i = b.attributes.findIndex((a) => a.handleID === handleID && JSON.stringify(a.secondary) === want);
  if (i >= 0) return i;
  b.attributes.push({ handleID, secondary });
  return b.attributes.length - 1;
}

/**
 * Allocate up to `num` ordinals from the head of the queue, skipping (and keeping in place)
 * reserved addresses. Mutates `b`; returns the ordinals taken (fewer than `num` when full).
 */
export function allocate(
  b: Block,
  num: number,
  handleID: string | null,
  secondary: Record<string, string> | null,
  reserved: readonly CIDR[] = [],
): number[] {
  const rel = reserved.filter((r) => r.family === b.cidr.family);
  const taken: number[] = [];
  const kept: number[] = [];
  let i = 0;
  for (; i < b.unallocated.length && taken.length < num; i++) {
    const o = b.unallocated[i]!;
    if (rel.length > 0 && isReserved(b.cidr.family, addressOf(b, o), rel)) kept.push(o);
    else taken.push(o);
  }
  if (taken.length === 0) return taken;
  b.unallocated = [...kept, ...b.unallocated.slice(i)];
  b.sequenceNumber++;
  const idx = attributeIndex(b, handleID, secondary);
  for (const o of taken) {
    b.allocations[o] = idx;
    b.sequenceNumberForAllocation[String(o)] = b.sequenceNumber;
  }
  return taken;
}

/** Allocate one specific ordinal; false if it is already allocated. Mutates `b`. */
export function allocateOrdinal(
  b: Block,
  ordinal: number,
  handleID: string | null,
  secondary: Record<string, string> | null,
): boolean {
  if (ordinal < 0 || ordinal >= b.allocations.length || b.allocations[ordinal] !== null) return false;
  const pos = b.unallocated.indexOf(ordinal);
  if (pos < 0) return false;
  b.unallocated.splice(pos, 1);
  b.sequenceNumber++;
  b.allocations[ordinal] = attributeIndex(b, handleID, secondary);
  b.sequenceNumberForAllocation[String(ordinal)] = b.sequenceNumber;
  return true;
}

export interface ReleaseResult {
  /** Ordinals freed, with the handle each was held by. */
  released: { ordinal: number; handleID: string | null }[];
  /** Ordinals that were already free (not an error). */
  alreadyFree: number[];
  /** Ordinals whose sequence number no longer matches: re-allocated since the caller looked. */
  badSequence: number[];
}

/** Drop attributes no allocation refers to and renumber (keeps blocks from growing). */
function compactAttributes(b: Block): void {
  const used = new Map<number, number>();
  const attrs: AllocationAttribute[] = [];
  b.allocations = b.allocations.map((a) => {
    if (a === null) return null;
    let n = used.get(a);
    if (n === undefined) {
      n = attrs.length;
      used.set(a, n);
      attrs.push(b.attributes[a] ?? { handleID: null, secondary: null });
    }
    return n;
  });
  b.attributes = attrs;
}

/**
 * Release ordinals; with `sequenceNumbers`, an ordinal whose recorded number differs is left
 * alone (reference §4.3 ErrorBadSequenceNumber). Freed ordinals go to the tail of the queue.
 */
export function release(
  b: Block,
  ordinals: readonly number[],
  sequenceNumbers?: ReadonlyMap<number, number>,
): ReleaseResult {
  const res: ReleaseResult = { released: [], alreadyFree: [], badSequence: [] };
  for (const o of new Set(ordinals)) {
    const idx = b.allocations[o];
    if (idx === undefined || idx === null) {
      res.alreadyFree.push(o);
      continue;
    }
    const want = sequenceNumbers?.get(o);
    if (want !== undefined && b.sequenceNumberForAllocation[String(o)] !== want) {
      res.badSequence.push(o);
      continue;
    }
    res.released.push({ ordinal: o, handleID: b.attributes[idx]?.handleID ?? null });
    b.allocations[o] = null;
    delete b.sequenceNumberForAllocation[String(o)];
    b.unallocated.push(o);
  }
  if (res.released.length > 0) {
    b.sequenceNumber++;
    compactAttributes(b);
  }
  return res;
}

/** The ordinals held by `handleID`. */
export function ordinalsOfHandle(b: Block, handleID: string): number[] {
  const out: number[] = [];
  b.allocations.forEach((a, o) => {
    if (a !== null && b.attributes[a]?.handleID === handleID) out.push(o);
  });
  return out;
}

export function releaseByHandle(b: Block, handleID: string): ReleaseResult {
  return release(b, ordinalsOfHandle(b, handleID));
}

/** Per handle, how many ordinals it holds in this block. */
export function handleCounts(b: Block): Map<string, number> {
  const m = new Map<string, number>();
  for (const a of b.allocations) {
    if (a === null) continue;
    const h = b.attributes[a]?.handleID;
    if (h === null || h === undefined) continue;
    m.set(h, (m.get(h) ?? 0) + 1);
  }
  return m;
}

/** Internal consistency problems of one block (empty when it is sound). */
export function blockProblems(b: Block): string[] {
  const out: string[] = [];
  const size = blockSize(b.cidr);
  if (b.allocations.length !== size)
    out.push(`has ${b.allocations.length} allocation slots, expected ${size}`);
  const free = new Set<number>();
  for (const o of b.unallocated) {
    if (!Number.isInteger(o) || o < 0 || o >= size) out.push(`unallocated ordinal ${o} is out of range`);
    else if (free.has(o)) out.push(`ordinal ${o} is in the unallocated queue twice`);
    free.add(o);
  }
  for (let o = 0; o < size; o++) {
    const a = b.allocations[o] ?? null;
    const ip = formatIP(b.cidr.family, addressOf(b, o));
    if (a !== null && free.has(o)) out.push(`${ip} is both allocated and unallocated`);
    if (a === null && !free.has(o)) out.push(`${ip} is neither allocated nor unallocated`);
    if (a !== null && (a < 0 || a >= b.attributes.length)) out.push(`${ip} refers to missing attribute ${a}`);
  }
  return out;
}

/** Calico's etcd JSON for an AllocationBlock. */
interface BlockWire {
  cidr: string;
  affinity: string | null;
  allocations: (number | null)[];
  unallocated: number[];
  attributes: { handle_id: string | null; secondary: Record<string, string> | null }[];
  deleted: boolean;
  sequenceNumber: number;
  sequenceNumberForAllocation: Record<string, number>;
}

export function serializeBlock(b: Block): string {
  const wire: BlockWire = {
    cidr: formatCIDR(b.cidr),
    affinity: b.affinity,
    allocations: b.allocations,
    unallocated: b.unallocated,
    attributes: b.attributes.map((a) => ({ handle_id: a.handleID, secondary: a.secondary })),
    deleted: false,
    sequenceNumber: b.sequenceNumber,
    sequenceNumberForAllocation: b.sequenceNumberForAllocation,
  };
  return JSON.stringify(wire);
}

export function parseBlock(text: string): Block {
  const w = JSON.parse(text) as Partial<BlockWire>;
  const cidr = typeof w.cidr === "string" ? parseCIDR(w.cidr) : undefined;
  if (cidr === undefined || !Array.isArray(w.allocations) || !Array.isArray(w.unallocated)) {
    throw new Error(`malformed IPAM block: ${text.slice(0, 200)}`);
  }
  return {
    cidr,
    affinity: w.affinity ?? null,
    allocations: w.allocations,
    unallocated: w.unallocated,
    attributes: (w.attributes ?? []).map((a) => ({
      handleID: a.handle_id ?? null,
      secondary: a.secondary ?? null,
    })),
    sequenceNumber: w.sequenceNumber ?? 0,
    sequenceNumberForAllocation: w.sequenceNumberForAllocation ?? {},
  };
}

/** The block-sized subnet of `pool` with index `i` (i in [0, 2^(blockPrefix - pool.prefix))). */
export function nthBlock(pool: CIDR, blockPrefix: number, i: bigint): CIDR {
  const base = pool.addr & ~hostMask(pool.family, pool.prefix);
  return {
    family: pool.family,
    addr: base + (i << BigInt(familyBits(pool.family) - blockPrefix)),
    prefix: blockPrefix,
  };
}

/** The block-sized subnet of a pool containing `addr`. */
export function blockContaining(family: IPFamily, addr: bigint, blockPrefix: number): CIDR {
  return { family, addr: addr & ~hostMask(family, blockPrefix), prefix: blockPrefix };
}

/** `198-19-0-0-26` back to a CIDR (v6: the last `-` is the slash; `-`→`:` elsewhere). */
export function cidrFromKeyPart(part: string, family: IPFamily): CIDR | undefined {
  const i = part.lastIndexOf("-");
  if (i < 0) return undefined;
  const addr = part.slice(0, i).replace(/-/g, family === 4 ? "." : ":");
  const c = parseCIDR(`${addr}/${part.slice(i + 1)}`);
  return c !== undefined && cidrKeyPart(c) === part ? c : undefined;
}
