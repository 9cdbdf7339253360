/**
 * Calico's block allocator over any Datastore (reference/calico.md §4.2, §4.3; DESIGN.md §5).
 *
 * Safety rests on one rule: every write is a compare-and-swap (create-if-absent, or
 * update/delete at the revision read), retried a bounded number of times. Two allocators can
 * only both hand out an ordinal if both wrote the same block revision, which the datastore
 * forbids. No locks, so a crashed process leaves nothing that blocks the others.
 *
 * Write order (what a crash can leave behind, for `ipam check`):
 * - claim: affinity `pending` → block create (the arbiter between nodes) → affinity `confirmed`;
 * - assign: handle += n → block update (on block failure the handle is decremented again);
 * - release: block update → handle -= n (deleted at 0);
 * - emptied affine block: affinity `pendingDeletion` → block delete (CAS) → affinity delete.
 */
import { createHash } from "node:crypto";
import type { AnyResource } from "../api/resource.js";
import {
  familyBits,
  formatCIDR,
  formatIP,
  parseCIDR,
  parseIP,
  cidrContains,
  type CIDR,
  type IPFamily,
} from "../api/net.js";
import { DEFAULT_ALLOWED_USES, DEFAULT_BLOCK_SIZE, type IPPoolAllowedUse } from "../api/kinds/ip-pool.js";
import { isResourceNotFound, ResourceStore } from "../datastore/resources.js";
import { isAlreadyExists, isConflict, isNotFound, type Datastore, type KV } from "../datastore/types.js";
import { parseSelector } from "../selector/selector.js";
import {
  affinityKey,
  affinityNode,
  affinityPrefix,
  allocate,
  allocateOrdinal,
  blockContaining,
  blockKey,
  blockPrefix,
  cidrFromKeyPart,
  freeCount,
  fullyReserved,
  handleKey,
  hostAffinity,
  inUseCount,
  newBlock,
  nthBlock,
  ordinalOf,
  parseBlock,
  release,
  releaseByHandle as releaseHandleInBlock,
  serializeBlock,
  addressOf,
  type AffinityDoc,
  type Block,
  type HandleDoc,
  type ReleaseResult,
} from "./block.js";
import { IPAMError, IPAMErrorCode } from "./errors.js";

/** libcalico's `datastoreRetries`. */
export const MAX_RETRIES = 100;
/** libcalico's cap on blocks per host when IPAMConfiguration.maxBlocksPerHost is 0 (§2.20). */
export const DEFAULT_MAX_BLOCKS_PER_HOST = 20;
/** How far the free-block walk goes past existing blocks before giving up on a pool. */
const MAX_WALK = 100_000;

export interface AutoAssignRequest {
  node: string;
  handleID: string;
  attrs?: Record<string, string>;
  num4?: number;
  num6?: number;
  /** Pool names (or CIDRs) to use instead of all enabled pools. */
  pools4?: string[];
  pools6?: string[];
  intendedUse?: IPPoolAllowedUse;
}

export interface AssignedIP {
  /** The bare address, e.g. `198.19.201.7`. */
  address: string;
  /** Block-masked as Calico returns it, e.g. `198.19.201.7/26`. */
  cidr: string;
  pool: string;
}

export interface AutoAssignResult {
  ipv4: AssignedIP[];
  ipv6: AssignedIP[];
}

export interface ReleaseRequest {
  address: string;
  /** The allocation's sequence number as read (see `getAllocation`); omit to release regardless. */
  sequenceNumber?: number;
}

export interface ReleaseIPsResult {
  released: string[];
  /** Already free, or in no block (not an error). */
  notAllocated: string[];
  /** Re-allocated since the caller read its sequence number: left alone. */
  skipped: string[];
}

export interface AllocationInfo {
  address: string;
  block: string;
  affinity: string | null;
  handleID: string | null;
  attrs: Record<string, string> | null;
  sequenceNumber: number;
}

export interface IPAMStats {
  /** CAS writes that lost a race and were retried. */
  conflicts: number;
  blocksClaimed: number;
}

interface PoolInfo {
  name: string;
  cidr: CIDR;
  blockPrefix: number;
  disabled: boolean;
  allowedUses: readonly IPPoolAllowedUse[];
  nodeSelector: string;
}

interface IPAMSettings {
  strictAffinity: boolean;
  autoAllocateBlocks: boolean;
  maxBlocksPerHost: number;
}

const specStr = (r: AnyResource, f: string): string | undefined => {
  const v = r.spec[f];
  return typeof v === "string" ? v : undefined;
};

/** Seed of the free-block walk: the same node starts at the same place (reference §4.2 step 3). */
function walkStart(node: string, blockPrefix: number, count: bigint): bigint {
  const h = createHash("sha256").update(`${node}/${blockPrefix}`).digest();
  return h.readBigUInt64BE(0) % count;
}

export class IPAM {
  readonly resources: ResourceStore;
  readonly stats: IPAMStats = { conflicts: 0, blocksClaimed: 0 };
  private readonly maxRetries: number;
  /** Per node and family, the affine block that last had room: only a hint (every write is CAS). */
  private readonly hints = new Map<string, string>();

  constructor(
    readonly datastore: Datastore,
    opts: { maxRetries?: number } = {},
  ) {
    this.resources = new ResourceStore(datastore);
    this.maxRetries = opts.maxRetries ?? MAX_RETRIES;
  }

  // ---- reading the configuration -------------------------------------------------------

  async pools(): Promise<PoolInfo[]> {
    const { items } = await this.resources.list("IPPool");
    const out: PoolInfo[] = [];
    for (const r of items) {
      const cidr = parseCIDR(specStr(r, "cidr") ?? "");
      if (cidr === undefined) continue;
      const bs = r.spec.blockSize;
      out.push({
        name: r.metadata.name,
        cidr,
        blockPrefix: typeof bs === "number" ? bs : DEFAULT_BLOCK_SIZE[cidr.family],
        disabled: r.spec.disabled === true,
        allowedUses: Array.isArray(r.spec.allowedUses)
          ? (r.spec.allowedUses as IPPoolAllowedUse[])
          : DEFAULT_ALLOWED_USES,
        nodeSelector: specStr(r, "nodeSelector") ?? "all()",
      });
    }
    return out;
  }

  async reservations(): Promise<CIDR[]> {
    const { items } = await this.resources.list("IPReservation");
    const out: CIDR[] = [];
    for (const r of items) {
      const list = r.spec.reservedCIDRs;
      if (!Array.isArray(list)) continue;
      for (const t of list) {
        if (typeof t !== "string") continue;
        const c =
          parseCIDR(t) ??
          (parseIP(t) !== undefined ? parseCIDR(`${t}/${t.includes(":") ? 128 : 32}`) : undefined);
        if (c !== undefined) out.push(c);
      }
    }
    return out;
  }

  async settings(): Promise<IPAMSettings> {
    let spec: Record<string, unknown> = {};
    try {
      spec = (await this.resources.get("IPAMConfiguration", "default")).spec;
    } catch (err) {
      if (!isResourceNotFound(err)) throw err;
    }
    const max = typeof spec.maxBlocksPerHost === "number" ? spec.maxBlocksPerHost : 0;
    return {
      strictAffinity: spec.strictAffinity === true,
      autoAllocateBlocks: spec.autoAllocateBlocks !== false,
      maxBlocksPerHost: max > 0 ? max : DEFAULT_MAX_BLOCKS_PER_HOST,
    };
  }

  private async nodeLabels(node: string): Promise<Record<string, string>> {
    try {
      return (await this.resources.get("Node", node)).metadata.labels ?? {};
    } catch (err) {
      if (isResourceNotFound(err)) return {};
      throw err;
    }
  }

  // ---- auto-assign ----------------------------------------------------------------------

  async autoAssign(req: AutoAssignRequest): Promise<AutoAssignResult> {
    const num4 = req.num4 ?? 0;
    const num6 = req.num6 ?? 0;
    if (!Number.isInteger(num4) || !Number.isInteger(num6) || num4 < 0 || num6 < 0) {
      throw new IPAMError(
        IPAMErrorCode.INVALID_ARGUMENT,
        `Cannot auto-assign: bad counts num4=${num4} num6=${num6}`,
      );
    }
    if (req.node === "" || req.handleID === "") {
      throw new IPAMError(
        IPAMErrorCode.INVALID_ARGUMENT,
        "Cannot auto-assign: node and handleID are required",
      );
    }
    const [pools, reserved, settings] = await Promise.all([
      this.pools(),
      this.reservations(),
      this.settings(),
    ]);
    // The Node's labels matter only to pools with a real nodeSelector.
    const labels = pools.some((p) => p.nodeSelector.trim() !== "all()")
      ? await this.nodeLabels(req.node)
      : {};
    const attrs = req.attrs ?? null;
    const use = req.intendedUse ?? "Workload";
    const result: AutoAssignResult = { ipv4: [], ipv6: [] };
    if (num4 > 0) {
      const cands = this.candidatePools(4, pools, req.pools4, use, labels, req.node);
      result.ipv4 = await this.assignFamily(
        4,
        num4,
        cands,
        reserved,
        settings,
        req.node,
        req.handleID,
        attrs,
      );
    }
    if (num6 > 0) {
      try {
        const cands = this.candidatePools(6, pools, req.pools6, use, labels, req.node);
        result.ipv6 = await this.assignFamily(
          6,
          num6,
          cands,
          reserved,
          settings,
          req.node,
          req.handleID,
          attrs,
        );
      } catch (err) {
        // Nothing half-written: give back the IPv4 addresses of this request.
        await this.releaseIPs(result.ipv4.map((a) => a.address));
        throw err;
      }
    }
    return result;
  }

  private candidatePools(
    family: IPFamily,
    pools: PoolInfo[],
    named: string[] | undefined,
    use: IPPoolAllowedUse,
    labels: Record<string, string>,
    node: string,
  ): PoolInfo[] {
    const v = `IPv${family}`;
    if (named !== undefined && named.length > 0) {
      return named.map((n) => {
        const p = pools.find((q) => q.name === n || formatCIDR(q.cidr) === n);
        if (p === undefined || p.cidr.family !== family) {
          throw new IPAMError(
            IPAMErrorCode.POOL_NOT_FOUND,
            `Cannot allocate an ${v} address from pool "${n}": no such ${v} IPPool`,
          );
        }
        if (p.disabled) {
          throw new IPAMError(
            IPAMErrorCode.POOL_DISABLED,
            `Cannot allocate an ${v} address from pool "${p.name}": the pool is disabled`,
          );
        }
        if (!p.allowedUses.includes(use)) {
          throw new IPAMError(
            IPAMErrorCode.POOL_NOT_FOUND,
            `Cannot allocate an ${v} address from pool "${p.name}": its allowedUses (${p.allowedUses.join(", ")}) exclude ${use}`,
          );
        }
        return p;
      });
    }
    const out = pools.filter(
      (p) =>
        p.cidr.family === family &&
        !p.disabled &&
        p.allowedUses.includes(use) &&
        parseSelector(p.nodeSelector).evaluate(labels),
    );
    if (out.length === 0) {
      throw new IPAMError(
        IPAMErrorCode.POOL_NOT_FOUND,
        `Cannot allocate an ${v} address for node "${node}": no enabled ${v} IPPool allows ${use} use on this node`,
      );
    }
    return out;
  }

  private async assignFamily(
    family: IPFamily,
    num: number,
    pools: PoolInfo[],
    reserved: CIDR[],
    settings: IPAMSettings,
    node: string,
    handleID: string,
    attrs: Record<string, string> | null,
  ): Promise<AssignedIP[]> {
    const got: AssignedIP[] = [];
    const poolOf = (c: CIDR): PoolInfo | undefined => pools.find((p) => cidrContains(p.cidr, c));
    try {
      // 1. The node's confirmed affine blocks in the candidate pools.
      const affine = await this.affineBlocks(node, family);
      // Try the block that last had room first (one read in the common case); if more are
      // needed, one listing tells which of the others have room (no read per full block).
      const hintKey = `${node}/${family}`;
      const hint = this.hints.get(hintKey);
      const ordered = [
        ...affine.filter((c) => blockKey(c) === hint),
        ...affine.filter((c) => blockKey(c) !== hint),
      ];
      let listed: Map<string, KV> | undefined;
      for (const c of ordered) {
        if (got.length >= num) break;
        const pool = poolOf(c);
        if (pool === undefined) continue;
        if (blockKey(c) !== hint && ordered.length > 1) {
          if (listed === undefined) {
            listed = new Map();
            for (const kv of (await this.datastore.list(blockPrefix(family))).items) listed.set(kv.key, kv);
          }
          const seen = listed.get(blockKey(c));
          if (seen !== undefined && freeCount(parseBlock(seen.value), reserved) === 0) continue;
        }
        const more = await this.assignFromBlock(
          c,
          pool,
          num - got.length,
          handleID,
          attrs,
          reserved,
          hostAffinity(node),
        );
        if (more.length > 0) this.hints.set(hintKey, blockKey(c));
        got.push(...more);
      }
      // 2. Claim new blocks.
      let owned = affine.length;
      if (settings.autoAllocateBlocks) {
        for (const pool of pools) {
          while (got.length < num && owned < settings.maxBlocksPerHost) {
            const c = await this.claimFreeBlock(pool, node, reserved);
            if (c === undefined) break;
            owned++;
            this.hints.set(`${node}/${family}`, blockKey(c));
            got.push(
              ...(await this.assignFromBlock(
                c,
                pool,
                num - got.length,
                handleID,
                attrs,
                reserved,
                hostAffinity(node),
              )),
            );
          }
        }
      }
      // 3. Borrow from any block with room (reference §4.2 step 4).
      if (got.length < num && !settings.strictAffinity) {
        for (const pool of pools) {
          const { items } = await this.datastore.list(blockPrefix(family));
          for (const kv of items) {
            if (got.length >= num) break;
            const b = parseBlock(kv.value);
            if (!cidrContains(pool.cidr, b.cidr) || b.unallocated.length === 0) continue;
            got.push(
              ...(await this.assignFromBlock(
                b.cidr,
                pool,
                num - got.length,
                handleID,
                attrs,
                reserved,
                undefined,
              )),
            );
          }
        }
      }
      if (got.length < num) {
        const names = pools.map((p) => `"${p.name}"`).join(", ");
        const why =
          settings.strictAffinity && owned >= settings.maxBlocksPerHost
            ? `node "${node}" holds its limit of ${settings.maxBlocksPerHost} blocks and strictAffinity forbids borrowing`
            : "no free addresses or blocks";
        throw new IPAMError(
          IPAMErrorCode.POOL_EXHAUSTED,
          `Cannot allocate ${num} IPv${family} address${num === 1 ? "" : "es"} from pool${pools.length === 1 ? "" : "s"} ${names}: ${why} (got ${got.length})`,
        );
      }
      return got;
    } catch (err) {
      if (got.length > 0) await this.releaseIPs(got.map((a) => a.address));
      throw err;
    }
  }

  /** The node's confirmed affine blocks of a family. */
  async affineBlocks(node: string, family: IPFamily): Promise<CIDR[]> {
    const { items } = await this.datastore.list(affinityPrefix(node, family));
    const out: CIDR[] = [];
    for (const kv of items) {
      const doc = JSON.parse(kv.value) as AffinityDoc;
      if (doc.state !== "confirmed") continue;
      const c = cidrFromKeyPart(kv.key.slice(kv.key.lastIndexOf("/") + 1), family);
      if (c !== undefined) out.push(c);
    }
    return out;
  }

  /**
   * Take up to `num` addresses from one block. With `affinity`, only if the block still has
   * that affinity (a stale or released affinity is skipped, never recreated).
   */
  private async assignFromBlock(
    c: CIDR,
    pool: PoolInfo,
    num: number,
    handleID: string,
    attrs: Record<string, string> | null,
    reserved: CIDR[],
    affinity: string | undefined,
  ): Promise<AssignedIP[]> {
    const key = blockKey(c);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.datastore.get(key);
      if (kv === undefined) return [];
      const b = parseBlock(kv.value);
      if (affinity !== undefined && b.affinity !== affinity) return [];
      const ordinals = allocate(b, num, handleID, attrs, reserved);
      if (ordinals.length === 0) return [];
      await this.adjustHandle(handleID, b.cidr, ordinals.length);
      try {
        await this.datastore.update(key, serializeBlock(b), kv.modRevision);
      } catch (err) {
        await this.adjustHandle(handleID, b.cidr, -ordinals.length);
        if (isConflict(err) || isNotFound(err)) {
          this.stats.conflicts++;
          continue;
        }
        throw err;
      }
      const prefix = b.cidr.prefix;
      return ordinals.map((o) => {
        const address = formatIP(c.family, addressOf(b, o));
        return { address, cidr: `${address}/${prefix}`, pool: pool.name };
      });
    }
    throw this.retriesExhausted(`allocate from block ${formatCIDR(c)}`);
  }

  /** Walk the pool's blocks from the node's seeded start; claim the first free one. */
  private async claimFreeBlock(pool: PoolInfo, node: string, reserved: CIDR[]): Promise<CIDR | undefined> {
    const existing = new Set<string>();
    for (const kv of (await this.datastore.list(blockPrefix(pool.cidr.family))).items) {
      existing.add(kv.key);
    }
    const count = 1n << BigInt(pool.blockPrefix - pool.cidr.prefix);
    const start = walkStart(node, pool.blockPrefix, count);
    const limit = count < BigInt(existing.size + MAX_WALK) ? count : BigInt(existing.size + MAX_WALK);
    const rel = reserved.filter((r) => r.family === pool.cidr.family);
    for (let i = 0n; i < limit; i++) {
      const c = nthBlock(pool.cidr, pool.blockPrefix, (start + i) % count);
      if (existing.has(blockKey(c)) || fullyReserved(c, rel)) continue;
      if (await this.claimBlock(c, node)) return c;
    }
    return undefined;
  }

  /** pending affinity → block create → confirmed. False if another node (or a deleter) holds it. */
  private async claimBlock(c: CIDR, node: string): Promise<boolean> {
    const aKey = affinityKey(node, c);
    const pending = JSON.stringify({ state: "pending", deleted: false } satisfies AffinityDoc);
    let aff: KV;
    try {
      aff = await this.datastore.create(aKey, pending);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // Left by a crash mid-claim (pending/confirmed with no block), or being deleted: only
      // the first is ours to take over, and the block create below still arbitrates.
      const cur = await this.datastore.get(aKey);
      if (cur === undefined || (JSON.parse(cur.value) as AffinityDoc).state === "pendingDeletion")
        return false;
      try {
        aff = await this.datastore.update(aKey, pending, cur.modRevision);
      } catch (e) {
        if (isConflict(e) || isNotFound(e)) return false;
        throw e;
      }
    }
    try {
      await this.datastore.create(
        blockKey(c),
        serializeBlock(newBlock(c, hostAffinity(node), Date.now() * 1000)),
      );
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      this.stats.conflicts++;
      const winner = await this.datastore.get(blockKey(c));
      if (winner !== undefined && parseBlock(winner.value).affinity === hostAffinity(node)) {
        // Another allocator of this same node won (the affinity key is per node, so we share
        // it): make sure it ends confirmed, whichever of us wrote it last.
        await this.confirmAffinity(aKey);
      } else {
        // Another node won the block: drop our pending affinity (only if still ours).
        await this.datastore.delete(aKey, aff.modRevision).catch((e: unknown) => {
          if (!isConflict(e) && !isNotFound(e)) throw e;
        });
      }
      return false;
    }
    await this.confirmAffinity(aKey);
    this.stats.blocksClaimed++;
    return true;
  }

  /** pending → confirmed (CAS loop); leaves an absent or pendingDeletion affinity alone. */
  private async confirmAffinity(aKey: string): Promise<void> {
    const confirmed = JSON.stringify({ state: "confirmed", deleted: false } satisfies AffinityDoc);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const cur = await this.datastore.get(aKey);
      if (cur === undefined || (JSON.parse(cur.value) as AffinityDoc).state !== "pending") return;
      if (await this.casUpdate(aKey, confirmed, cur.modRevision)) return;
    }
    throw this.retriesExhausted(`confirm affinity ${aKey}`);
  }

  // ---- assign one address ---------------------------------------------------------------

  async assignIP(
    address: string,
    handleID: string,
    attrs: Record<string, string> | null,
    node: string,
  ): Promise<AssignedIP> {
    const ip = parseIP(address);
    if (ip === undefined)
      throw new IPAMError(IPAMErrorCode.INVALID_ARGUMENT, `Cannot assign "${address}": not an IP address`);
    const host: CIDR = { family: ip.family, addr: ip.value, prefix: familyBits(ip.family) };
    const pool = (await this.pools()).find((p) => cidrContains(p.cidr, host));
    if (pool === undefined) {
      throw new IPAMError(IPAMErrorCode.NOT_IN_POOL, `Cannot assign ${address}: it is not in any IPPool`);
    }
    if ((await this.reservations()).some((r) => cidrContains(r, host))) {
      throw new IPAMError(
        IPAMErrorCode.ADDRESS_RESERVED,
        `Cannot assign ${address}: it is covered by an IPReservation`,
      );
    }
    const c = blockContaining(ip.family, ip.value, pool.blockPrefix);
    const key = blockKey(c);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.datastore.get(key);
      if (kv === undefined) {
        // No block yet: claim it for the node (or, if that loses, read the winner's block).
        await this.claimBlock(c, node);
        const again = await this.datastore.get(key);
        if (again === undefined) {
          // Claim lost to a deleter or a crashed claimer: make an unaffine block instead.
          await this.datastore
            .create(key, serializeBlock(newBlock(c, null, Date.now() * 1000)))
            .catch((e: unknown) => {
              if (!isAlreadyExists(e)) throw e;
            });
        }
        continue;
      }
      const b = parseBlock(kv.value);
      const o = ordinalOf(b, ip.value)!;
      if (!allocateOrdinal(b, o, handleID, attrs)) {
        throw new IPAMError(
          IPAMErrorCode.ADDRESS_IN_USE,
          `Cannot assign ${address}: it is already allocated`,
        );
      }
      await this.adjustHandle(handleID, b.cidr, 1);
      try {
        await this.datastore.update(key, serializeBlock(b), kv.modRevision);
      } catch (err) {
        await this.adjustHandle(handleID, b.cidr, -1);
        if (isConflict(err) || isNotFound(err)) {
          this.stats.conflicts++;
          continue;
        }
        throw err;
      }
      return {
        address: formatIP(ip.family, ip.value),
        cidr: `${formatIP(ip.family, ip.value)}/${c.prefix}`,
        pool: pool.name,
      };
    }
    throw this.retriesExhausted(`assign ${address}`);
  }

  // ---- release ----------------------------------------------------------------------------

  /**
   * Release addresses. An address that is already free (or in no block) is not an error: it
   * is reported in `notAllocated`. With a `sequenceNumber` (from `getAllocation`), an address
   * re-allocated since is left alone and reported in `skipped` (Calico's ErrorBadSequenceNumber).
   */
  async releaseIPs(requests: readonly (string | ReleaseRequest)[]): Promise<ReleaseIPsResult> {
    const out: ReleaseIPsResult = { released: [], notAllocated: [], skipped: [] };
    const byBlock = new Map<string, { cidr: CIDR; ords: number[]; seqs: Map<number, number> }>();
    const pools = await this.pools();
    const blocksByFamily = new Map<IPFamily, Block[]>();
    for (const req of requests) {
      const a = typeof req === "string" ? req : req.address;
      const ip = parseIP(a);
      if (ip === undefined)
        throw new IPAMError(IPAMErrorCode.INVALID_ARGUMENT, `Cannot release "${a}": not an IP address`);
      const host: CIDR = { family: ip.family, addr: ip.value, prefix: familyBits(ip.family) };
      let c: CIDR | undefined;
      const pool = pools.find((p) => cidrContains(p.cidr, host));
      if (pool !== undefined) c = blockContaining(ip.family, ip.value, pool.blockPrefix);
      else {
        // The pool is gone: find the block by listing.
        let blocks = blocksByFamily.get(ip.family);
        if (blocks === undefined) {
          blocks = (await this.datastore.list(blockPrefix(ip.family))).items.map((kv) =>
            parseBlock(kv.value),
          );
          blocksByFamily.set(ip.family, blocks);
        }
        c = blocks.find((b) => cidrContains(b.cidr, host))?.cidr;
      }
      if (c === undefined) {
        out.notAllocated.push(a);
        continue;
      }
      const k = blockKey(c);
      const entry = byBlock.get(k) ?? { cidr: c, ords: [], seqs: new Map<number, number>() };
      const o = Number(ip.value - c.addr);
      entry.ords.push(o);
      if (typeof req !== "string" && req.sequenceNumber !== undefined) entry.seqs.set(o, req.sequenceNumber);
      byBlock.set(k, entry);
    }
    const fmt = (c: CIDR, o: number): string => formatIP(c.family, c.addr + BigInt(o));
    for (const { cidr, ords, seqs } of byBlock.values()) {
      const res = await this.releaseInBlock(cidr, (b) => release(b, ords, seqs));
      for (const r of res.released) out.released.push(fmt(cidr, r.ordinal));
      for (const o of res.alreadyFree) out.notAllocated.push(fmt(cidr, o));
      for (const o of res.badSequence) out.skipped.push(fmt(cidr, o));
    }
    return out;
  }

  /** Who holds `address`, or undefined if it is free or in no block. */
  async getAllocation(address: string): Promise<AllocationInfo | undefined> {
    const ip = parseIP(address);
    if (ip === undefined)
      throw new IPAMError(IPAMErrorCode.INVALID_ARGUMENT, `"${address}" is not an IP address`);
    const host: CIDR = { family: ip.family, addr: ip.value, prefix: familyBits(ip.family) };
    for (const kv of (await this.datastore.list(blockPrefix(ip.family))).items) {
      const b = parseBlock(kv.value);
      if (!cidrContains(b.cidr, host)) continue;
      const o = Number(ip.value - b.cidr.addr);
      const a = b.allocations[o];
      if (a === undefined || a === null) return undefined;
      const attr = b.attributes[a];
      return {
        address: formatIP(ip.family, ip.value),
        block: formatCIDR(b.cidr),
        affinity: b.affinity,
        handleID: attr?.handleID ?? null,
        attrs: attr?.secondary ?? null,
        sequenceNumber: b.sequenceNumberForAllocation[String(o)] ?? 0,
      };
    }
    return undefined;
  }

  /** Release every address of a handle; returns how many were freed (0 for an unknown handle). */
  async releaseByHandle(handleID: string): Promise<number> {
    const kv = await this.datastore.get(handleKey(handleID));
    if (kv === undefined) return 0;
    const doc = JSON.parse(kv.value) as HandleDoc;
    let n = 0;
    for (const cidrText of Object.keys(doc.block)) {
      const c = parseCIDR(cidrText);
      if (c === undefined) continue;
      const res = await this.releaseInBlock(c, (b) => releaseHandleInBlock(b, handleID), handleID);
      n += res.released.length;
    }
    return n;
  }

  /**
   * CAS-apply a release to one block, then decrement the handles. If the block is left empty
   * and affine to a host, the block and its affinity are deleted so it can move elsewhere.
   * `staleHandle`: when the block is gone, drop that handle's entry for it.
   */
  private async releaseInBlock(
    c: CIDR,
    op: (b: Block) => ReleaseResult,
    staleHandle?: string,
  ): Promise<ReleaseResult> {
    const key = blockKey(c);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.datastore.get(key);
      if (kv === undefined) {
        if (staleHandle !== undefined) await this.dropHandleEntry(staleHandle, c);
        return { released: [], alreadyFree: [], badSequence: [] };
      }
      const b = parseBlock(kv.value);
      const res = op(b);
      if (res.released.length === 0) {
        if (staleHandle !== undefined) await this.dropHandleEntry(staleHandle, c);
        return res;
      }
      const node = affinityNode(b.affinity);
      let ok: boolean;
      if (inUseCount(b) === 0 && node !== undefined) ok = await this.deleteEmptyBlock(kv, node, c);
      else if (inUseCount(b) === 0 && b.affinity === null) ok = await this.casDelete(key, kv.modRevision);
      else ok = await this.casUpdate(key, serializeBlock(b), kv.modRevision);
      if (!ok) continue;
      const perHandle = new Map<string, number>();
      for (const r of res.released) {
        if (r.handleID !== null) perHandle.set(r.handleID, (perHandle.get(r.handleID) ?? 0) + 1);
      }
      for (const [h, n] of perHandle) await this.adjustHandle(h, b.cidr, -n);
      return res;
    }
    throw this.retriesExhausted(`release from block ${formatCIDR(c)}`);
  }

  private casDelete(key: string, rev: number): Promise<boolean> {
    return this.casWrite(() => this.datastore.delete(key, rev));
  }

  private casUpdate(key: string, value: string, rev: number): Promise<boolean> {
    return this.casWrite(() => this.datastore.update(key, value, rev));
  }

  /** One CAS write: false (counted as a conflict) when another writer got there first. */
  private async casWrite(write: () => Promise<unknown>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) {
        this.stats.conflicts++;
        return false;
      }
      throw err;
    }
  }

  /** affinity → pendingDeletion, block delete at the revision read, affinity delete. */
  private async deleteEmptyBlock(blockKv: KV, node: string, c: CIDR): Promise<boolean> {
    const aKey = affinityKey(node, c);
    const aff = await this.datastore.get(aKey);
    const dying = JSON.stringify({ state: "pendingDeletion", deleted: false } satisfies AffinityDoc);
    let affRev: number | undefined;
    if (aff !== undefined) {
      try {
        affRev = (await this.datastore.update(aKey, dying, aff.modRevision)).modRevision;
      } catch (err) {
        if (isConflict(err) || isNotFound(err)) {
          this.stats.conflicts++;
          return false;
        }
        throw err;
      }
    }
    try {
      await this.datastore.delete(blockKv.key, blockKv.modRevision);
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) throw err;
      this.stats.conflicts++;
      // The block changed (someone allocated from it): give the affinity back.
      if (affRev !== undefined) {
        await this.datastore
          .update(aKey, JSON.stringify({ state: "confirmed", deleted: false } satisfies AffinityDoc), affRev)
          .catch((e: unknown) => {
            if (!isConflict(e) && !isNotFound(e)) throw e;
          });
      }
      return false;
    }
    if (affRev !== undefined) {
      await this.datastore.delete(aKey, affRev).catch((e: unknown) => {
        if (!isConflict(e) && !isNotFound(e)) throw e;
      });
    }
    return true;
  }

  /**
   * Give up `node`'s affinity for block `c` (GC of a deleted node): an empty block is deleted
   * with its affinity; a block still holding addresses becomes unaffine (others may borrow
   * from it, and it is deleted when it empties), then the affinity record goes.
   */
  async releaseAffinity(c: CIDR, node: string): Promise<void> {
    const key = blockKey(c);
    const aKey = affinityKey(node, c);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.datastore.get(key);
      if (kv !== undefined) {
        const b = parseBlock(kv.value);
        if (b.affinity === hostAffinity(node)) {
          if (inUseCount(b) === 0) {
            if (!(await this.deleteEmptyBlock(kv, node, c))) continue;
            return;
          }
          b.affinity = null;
          b.sequenceNumber++;
          if (!(await this.casUpdate(key, serializeBlock(b), kv.modRevision))) continue;
        }
      }
      const aff = await this.datastore.get(aKey);
      if (aff === undefined) return;
      try {
        await this.datastore.delete(aKey, aff.modRevision);
        return;
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
        this.stats.conflicts++;
      }
    }
    throw this.retriesExhausted(`release the affinity of block ${formatCIDR(c)} for node "${node}"`);
  }

  // ---- handles ----------------------------------------------------------------------------

  private async adjustHandle(handleID: string, c: CIDR, delta: number): Promise<void> {
    const key = handleKey(handleID);
    const cidr = formatCIDR(c);
    if (delta > 0) {
      // Most handles are new: try the create first and save a read.
      const doc: HandleDoc = { block: { [cidr]: delta }, deleted: false };
      try {
        await this.datastore.create(key, JSON.stringify(doc));
        return;
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    }
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.datastore.get(key);
      if (kv === undefined) {
        if (delta <= 0) return;
        const doc: HandleDoc = { block: { [cidr]: delta }, deleted: false };
        try {
          await this.datastore.create(key, JSON.stringify(doc));
          return;
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
          this.stats.conflicts++;
          continue;
        }
      }
      const doc = JSON.parse(kv.value) as HandleDoc;
      const n = (doc.block[cidr] ?? 0) + delta;
      if (n > 0) doc.block[cidr] = n;
      else delete doc.block[cidr];
      try {
        if (Object.keys(doc.block).length === 0) await this.datastore.delete(key, kv.modRevision);
        else await this.datastore.update(key, JSON.stringify(doc), kv.modRevision);
        return;
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
        this.stats.conflicts++;
      }
    }
    throw this.retriesExhausted(`update handle "${handleID}"`);
  }

  private async dropHandleEntry(handleID: string, c: CIDR): Promise<void> {
    const kv = await this.datastore.get(handleKey(handleID));
    if (kv === undefined) return;
    const n = (JSON.parse(kv.value) as HandleDoc).block[formatCIDR(c)];
    // Only when the block really holds none of the handle's addresses any more.
    const bkv = await this.datastore.get(blockKey(c));
    const held = bkv === undefined ? 0 : ordinalsHeld(parseBlock(bkv.value), handleID);
    if (n !== undefined && n > held) await this.adjustHandle(handleID, c, held - n);
  }

  private retriesExhausted(what: string): IPAMError {
    return new IPAMError(
      IPAMErrorCode.RETRIES_EXHAUSTED,
      `Cannot ${what}: still conflicting after ${this.maxRetries} compare-and-swap attempts`,
    );
  }
}

const ordinalsHeld = (b: Block, handleID: string): number =>
  b.allocations.filter((a) => a !== null && b.attributes[a]?.handleID === handleID).length;
