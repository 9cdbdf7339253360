/**
 * IPAM crash repair: puts right what an allocator killed mid-operation leaves behind
 * (docs/ipam.md "What a restart finds"), while live allocators keep working.
 *
 * Every write is a compare-and-swap on a revision this pass read; a lost race is not retried
 * blindly but re-read and re-judged (at most `MAX_REPAIR_ATTEMPTS` times), or left to the next
 * pass. Some states are also what a *live* allocator passes through for a few milliseconds
 * (a handle incremented before its block write, a pending affinity before its block create, a
 * dying affinity before its block delete). Those are repaired only when a later pass, at least
 * `minAgeMs` after the first, finds them at the same revisions: a live allocator would have
 * moved on, so the writer is dead. States no live allocator passes through are repaired at once.
 */
import { formatCIDR } from "../api/net.js";
import type { CIDR } from "../api/net.js";
import { isAlreadyExists, isConflict, isNotFound, type Datastore, type KV } from "../datastore/types.js";
import type { IPAM } from "./allocator.js";
import {
  affinityKey,
  affinityNode,
  ALL_AFFINITIES_PREFIX,
  blockKey,
  blockPrefix,
  cidrFromKeyPart,
  handleCounts,
  HANDLE_PREFIX,
  handleKey,
  hostAffinity,
  inUseCount,
  parseAffinityKey,
  parseBlock,
  type AffinityDoc,
  type AffinityState,
  type Block,
  type HandleDoc,
} from "./block.js";

/** How often one repair re-reads and re-judges after losing a compare-and-swap. */
export const MAX_REPAIR_ATTEMPTS = 5;
/** How long a state a live allocator could be passing through must stay unchanged (default). */
export const DEFAULT_REPAIR_MIN_AGE_MS = 60_000;

export interface RepairResult {
  /** Handles rewritten (or created) from what the blocks hold. */
  handlesFixed: string[];
  /** Handles deleted: no block holds any of their addresses. */
  handlesDeleted: string[];
  /** Pending affinities whose block exists with that host's affinity: now confirmed. */
  affinitiesConfirmed: string[];
  /** Affinity keys deleted: pending or confirmed with no block of theirs, or dying with the block gone. */
  affinitiesDeleted: string[];
  /** pendingDeletion affinities whose block still holds addresses: back to confirmed. */
  affinitiesRestored: string[];
  /** Confirmed affinities recreated for host-affine blocks that had none (node exists). */
  affinitiesRecreated: string[];
  /** Empty blocks whose interrupted deletion was finished (CIDR). */
  blocksDeleted: string[];
  /** Suspect states seen but not yet old enough: a later pass decides. */
  deferred: string[];
}

export interface RepairOptions {
  /** See the module comment (default 60 s). */
  minAgeMs?: number;
  now?: () => number;
}

const emptyResult = (): RepairResult => ({
  handlesFixed: [],
  handlesDeleted: [],
  affinitiesConfirmed: [],
  affinitiesDeleted: [],
  affinitiesRestored: [],
  affinitiesRecreated: [],
  blocksDeleted: [],
  deferred: [],
});

/** True when a result changed nothing and defers nothing. */
export const repairIsEmpty = (r: RepairResult): boolean =>
  Object.values(r).every((v: string[]) => v.length === 0);

const affDoc = (state: AffinityState): string =>
  JSON.stringify({ state, deleted: false } satisfies AffinityDoc);

/** A CAS write: false when the key changed or went away since it was read. */
async function cas(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (err) {
    if (isConflict(err) || isNotFound(err) || isAlreadyExists(err)) return false;
    throw err;
  }
}

/**
 * Delete an empty host-affine block the allocator's way: affinity → pendingDeletion (CAS at
 * `affKv`'s revision), block delete at `blockKv`'s revision, affinity delete. If the block
 * changed meanwhile (someone allocated from it) the affinity goes back to confirmed; if it is
 * gone, the affinity goes too. True when this call deleted the block.
 */
export async function deleteEmptyAffineBlock(ds: Datastore, blockKv: KV, affKv: KV): Promise<boolean> {
  let rev: number;
  try {
    rev = (await ds.update(affKv.key, affDoc("pendingDeletion"), affKv.modRevision)).modRevision;
  } catch (err) {
    if (isConflict(err) || isNotFound(err)) return false;
    throw err;
  }
  if (await cas(() => ds.delete(blockKv.key, blockKv.modRevision))) {
    await cas(() => ds.delete(affKv.key, rev));
    return true;
  }
  const now = await ds.get(blockKv.key);
  if (now === undefined) await cas(() => ds.delete(affKv.key, rev));
  else await cas(() => ds.update(affKv.key, affDoc("confirmed"), rev));
  return false;
}

interface Snapshot {
  affinities: { kv: KV; node: string; cidr: CIDR; state: AffinityState }[];
  handles: Map<string, KV>;
  blocks: Map<string, { kv: KV; block: Block }>;
  nodes: Set<string>;
}

/** Affinities first, then handles, then blocks: see the pendingDeletion case below. */
async function snapshot(ipam: IPAM): Promise<Snapshot> {
  const ds = ipam.datastore;
  const affinities: Snapshot["affinities"] = [];
  for (const kv of (await ds.list(ALL_AFFINITIES_PREFIX)).items) {
    const k = parseAffinityKey(kv.key);
    const cidr = k && cidrFromKeyPart(kv.key.slice(kv.key.lastIndexOf("/") + 1), k.family);
    if (k === undefined || cidr === undefined) continue;
    affinities.push({ kv, node: k.node, cidr, state: (JSON.parse(kv.value) as AffinityDoc).state });
  }
  const handles = new Map<string, KV>();
  for (const kv of (await ds.list(HANDLE_PREFIX)).items) handles.set(kv.key.slice(HANDLE_PREFIX.length), kv);
  const blocks = new Map<string, { kv: KV; block: Block }>();
  for (const family of [4, 6] as const) {
    for (const kv of (await ds.list(blockPrefix(family))).items)
      blocks.set(kv.key, { kv, block: parseBlock(kv.value) });
  }
  const nodes = new Set((await ipam.resources.list("Node")).items.map((r) => r.metadata.name));
  return { affinities, handles, blocks, nodes };
}

/**
 * A stateful repairer: keep one per long-lived process and call `runOnce` periodically (the
 * apiserver's IPAM controller does). It remembers, per suspect state, the revisions and time
 * it was first seen; entries not seen again are dropped, so memory stays bounded.
 */
export class IPAMRepairer {
  private readonly minAgeMs: number;
  private readonly now: () => number;
  private seen = new Map<string, { fingerprint: string; since: number }>();

  constructor(
    readonly ipam: IPAM,
    opts: RepairOptions = {},
  ) {
    this.minAgeMs = opts.minAgeMs ?? DEFAULT_REPAIR_MIN_AGE_MS;
    this.now = opts.now ?? Date.now;
  }

  async runOnce(): Promise<RepairResult> {
    const ds = this.ipam.datastore;
    const out = emptyResult();
    const now = this.now();
    const next = new Map<string, { fingerprint: string; since: number }>();
    /** True when `id` was seen with the same fingerprint at least minAgeMs ago. */
    const stale = (id: string, fingerprint: string): boolean => {
      const prev = this.seen.get(id);
      const since = prev !== undefined && prev.fingerprint === fingerprint ? prev.since : now;
      next.set(id, { fingerprint, since });
      const old = prev !== undefined && prev.fingerprint === fingerprint && now - since >= this.minAgeMs;
      if (!old) out.deferred.push(id);
      return old;
    };
    const snap = await snapshot(this.ipam);

    // Affinities.
    for (const a of snap.affinities) {
      const key = a.kv.key;
      const b = snap.blocks.get(blockKey(a.cidr));
      const ours = b !== undefined && b.block.affinity === hostAffinity(a.node);
      switch (a.state) {
        case "pending":
          if (ours) {
            // Killed between block create and confirm. A live claimer would confirm the same way.
            if (await cas(() => ds.update(key, affDoc("confirmed"), a.kv.modRevision)))
              out.affinitiesConfirmed.push(key);
          } else if (stale(`affinity ${key}`, String(a.kv.modRevision))) {
            // Killed before its block create (or after losing the block to another node).
            if (await cas(() => ds.delete(key, a.kv.modRevision))) out.affinitiesDeleted.push(key);
          }
          break;
        case "confirmed":
          // A confirmed affinity without its block (checkIPAM's dangling-affinity). releaseAffinity
          // passes through this for a moment (block made unaffine, then affinity deleted).
          if (!ours && stale(`affinity ${key}`, String(a.kv.modRevision))) {
            if (await cas(() => ds.delete(key, a.kv.modRevision))) out.affinitiesDeleted.push(key);
          }
          break;
        case "pendingDeletion":
          if (!ours) {
            // The block is gone: the deleter was killed before its last step. A live deleter
            // would delete the affinity at this same revision; one of us wins.
            if (await cas(() => ds.delete(key, a.kv.modRevision))) out.affinitiesDeleted.push(key);
          } else if (stale(`affinity ${key}`, `${a.kv.modRevision}/${b.kv.modRevision}`)) {
            // The affinity was read before the block, so a deleter that is still alive would
            // have changed one of the two revisions by now.
            if (inUseCount(b.block) > 0) {
              if (await cas(() => ds.update(key, affDoc("confirmed"), a.kv.modRevision)))
                out.affinitiesRestored.push(key);
            } else if (await deleteEmptyAffineBlock(ds, b.kv, a.kv)) {
              out.blocksDeleted.push(formatCIDR(a.cidr));
            }
          }
          break;
      }
    }

    // Host-affine blocks with no affinity record: give the node its affinity back. Blocks of
    // deleted nodes are left to gcDeletedNodes, which releases them.
    const affKeys = new Set(snap.affinities.map((a) => a.kv.key));
    for (const { block } of snap.blocks.values()) {
      const node = affinityNode(block.affinity);
      if (node === undefined || !snap.nodes.has(node)) continue;
      const aKey = affinityKey(node, block.cidr);
      if (affKeys.has(aKey)) continue;
      let created: KV;
      try {
        created = await ds.create(aKey, affDoc("confirmed"));
      } catch (err) {
        if (isAlreadyExists(err)) continue;
        throw err;
      }
      // If the block was deleted or given up meanwhile, take the affinity back out.
      const now = await ds.get(blockKey(block.cidr));
      if (now === undefined || parseBlock(now.value).affinity !== hostAffinity(node)) {
        await cas(() => ds.delete(aKey, created.modRevision));
      } else {
        out.affinitiesRecreated.push(aKey);
      }
    }

    // Handles: recompute from the blocks (the blocks are the truth).
    const fromBlocks = new Map<string, Record<string, number>>();
    for (const { block } of snap.blocks.values()) {
      for (const [h, n] of handleCounts(block)) {
        const m = fromBlocks.get(h) ?? {};
        m[formatCIDR(block.cidr)] = n;
        fromBlocks.set(h, m);
      }
    }
    for (const id of new Set([...snap.handles.keys(), ...fromBlocks.keys()])) {
      const kv = snap.handles.get(id);
      const want = sortedCounts(fromBlocks.get(id) ?? {});
      const have = kv === undefined ? undefined : sortedCounts((JSON.parse(kv.value) as HandleDoc).block);
      if (have !== undefined && JSON.stringify(have) === JSON.stringify(want)) continue;
      // An allocator increments a handle before its block write and decrements it after its
      // block write: the same handle revision and block counts a while later mean it died.
      if (!stale(`handle ${id}`, `${kv?.modRevision ?? 0}/${JSON.stringify(want)}`)) continue;
      const doc: HandleDoc = { block: want, deleted: false };
      if (Object.keys(want).length === 0) {
        if (kv !== undefined && (await cas(() => ds.delete(kv.key, kv.modRevision))))
          out.handlesDeleted.push(id);
      } else if (kv === undefined) {
        if (await cas(() => ds.create(handleKey(id), JSON.stringify(doc)))) out.handlesFixed.push(id);
      } else if (await cas(() => ds.update(kv.key, JSON.stringify(doc), kv.modRevision))) {
        out.handlesFixed.push(id);
      }
    }

    // Only what is still waiting is remembered: states gone or acted on are dropped (if a fix
    // lost a race, the next pass starts its clock again), so memory stays bounded.
    const waiting = new Set(out.deferred);
    this.seen = new Map([...next].filter(([id]) => waiting.has(id)));
    return out;
  }

  /** Suspect states remembered (for tests: bounded by what the last pass saw). */
  get remembered(): number {
    return this.seen.size;
  }
}

const sortedCounts = (m: Record<string, number>): Record<string, number> =>
  Object.fromEntries(
    Object.entries(m)
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );

/**
 * One-shot repair (for an operator, or a test after killing allocators): a pass, then, if it
 * deferred anything, a second pass `minAgeMs` later (default 1 s) that acts on whatever did
 * not change in between. Safe with allocators running; a slower allocator than `minAgeMs`
 * can only cost a handle count or affinity that the next repair puts right again, never an
 * address held twice (the blocks are never written except to delete an empty one by CAS).
 */
export async function repairIPAM(ipam: IPAM, opts: RepairOptions = {}): Promise<RepairResult> {
  const minAgeMs = opts.minAgeMs ?? 1000;
  const r = new IPAMRepairer(ipam, { ...opts, minAgeMs });
  const first = await r.runOnce();
  if (first.deferred.length === 0) return first;
  await new Promise((resolve) => setTimeout(resolve, minAgeMs));
  const second = await r.runOnce();
  const merged = emptyResult();
  for (const k of Object.keys(merged) as (keyof RepairResult)[]) {
    merged[k] = k === "deferred" ? second.deferred : [...first[k], ...second[k]];
  }
  return merged;
}
