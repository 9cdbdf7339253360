/**
 * `FakeNft` (knftables' `Fake`): our table in memory, changed by the same transactions
 * `NftCli` renders, with nft 1.0.6's semantics as measured on the kernel:
 *
 * - a transaction is atomic: on any error nothing changes (except the handle counter, below);
 * - errors (each with the script line, like nft): a rule/flush/delete naming a missing chain,
 *   jump/goto (in rules and map elements) to a missing or base chain, deleting missing objects,
 *   deleting a chain/set/map still referenced, elements for a missing set, elements that do not
 *   fit the key type, overlapping intervals, redefining a base chain or a set's type;
 * - handles are per table and monotonic (chains, sets, maps, rules and the anonymous sets of
 *   rule literals all take one); a new table starts at 1;
 * - nft checks some errors itself (syntax, element types, overlaps, missing sets) and then sends
 *   nothing; the kernel finds the others while the batch runs, and the handles the batch
 *   allocated — including those of ops *after* the failing one — stay used. We model both, so
 *   listings stay identical to the kernel's after a failed apply. That is `nft -f`'s numbering:
 *   `NftCli` sends over nfnetlink first, where the kernel sees (and takes handles for) every
 *   batch, also those nft would have refused itself, before `nft -f` retries a refused one. No
 *   code relies on rule handles, so the fake does not model that second count.
 *
 * Not modelled: jump loops (ELOOP), hook/type compatibility (e.g. masquerade outside nat).
 */
import { CalicoError } from "../../errors.js";
import { anonymousSetCount, renderOp, renderTransaction } from "./render.js";
import { formatElement, intervalsOverlap, parseElement, type ElementValue } from "./elements.js";
import type {
  BaseChainSpec,
  MapSpec,
  MapVerdict,
  Nft,
  Rule,
  SetSpec,
  TableListing,
  Transaction,
  TxOp,
} from "./model.js";

export const NFT_APPLY_FAILED = "NFT_APPLY_FAILED";

/** The error of a failed apply (from `NftCli` or `FakeNft`): nft's message and the script. */
export class NftApplyError extends CalicoError {
  readonly script: string;
  /** 1-based line of the script nft blamed, when known. */
  readonly line: number | undefined;
  constructor(message: string, script: string, line?: number, options?: { cause?: unknown }) {
    super(NFT_APPLY_FAILED, message, options);
    this.script = script;
    this.line = line;
  }
}

export const isApplyFailed = (err: unknown): err is NftApplyError => err instanceof NftApplyError;

export interface FakeRule {
  handle: number;
  rule: Rule;
}

export interface FakeChain {
  name: string;
  base?: BaseChainSpec;
  rules: FakeRule[];
}

export interface FakeSet {
  spec: SetSpec;
  /** canonical text → value, in insertion order */
  elements: Map<string, ElementValue>;
}

export interface FakeMap {
  spec: MapSpec;
  elements: Map<string, MapVerdict>;
}

/** The structured table the tracer evaluates. */
export interface Ruleset {
  chains: Map<string, FakeChain>;
  sets: Map<string, FakeSet>;
  maps: Map<string, FakeMap>;
}

interface TableState extends Ruleset {
  lastHandle: number;
}

/** Where nft finds an error: in userspace (nothing sent) or in the kernel (handles burnt). */
type Stage = "nft" | "kernel";

class OpError extends Error {
  constructor(
    readonly stage: Stage,
    message: string,
  ) {
    super(message);
  }
}

const ENOENT = "No such file or directory";
const EBUSY = "Device or resource busy";
const kernel = (msg: string): OpError => new OpError("kernel", `Could not process rule: ${msg}`);
const userspace = (msg: string): OpError => new OpError("nft", msg);

function cloneState(t: TableState): TableState {
  return {
    lastHandle: t.lastHandle,
    chains: new Map(
      [...t.chains].map(([k, c]) => [
        k,
        { ...c, rules: c.rules.map((r) => ({ handle: r.handle, rule: r.rule })) },
      ]),
    ),
    sets: new Map([...t.sets].map(([k, s]) => [k, { spec: s.spec, elements: new Map(s.elements) }])),
    maps: new Map([...t.maps].map(([k, m]) => [k, { spec: m.spec, elements: new Map(m.elements) }])),
  };
}

function sameBase(a: BaseChainSpec | undefined, b: BaseChainSpec | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.type === b.type && a.hook === b.hook && a.priority === b.priority && a.policy === b.policy;
}

/** Chains a rule transfers control to (jump/goto), sets and maps it reads. */
function ruleRefs(rule: Rule): { chains: string[]; sets: string[]; maps: string[] } {
  const chains: string[] = [];
  const sets: string[] = [];
  const maps: string[] = [];
  for (const m of rule.matches) {
    if (m.type === "addr-set" || m.type === "addr-port-set") sets.push(m.set);
  }
  const v = rule.verdict;
  if (v?.type === "jump" || v?.type === "goto") chains.push(v.chain);
  if (v?.type === "vmap") maps.push(v.map);
  return { chains, sets, maps };
}

function chainReferenced(t: TableState, name: string): boolean {
  for (const c of t.chains.values()) {
    if (c.name === name) continue; // its own rules go with it
    if (c.rules.some((r) => ruleRefs(r.rule).chains.includes(name))) return true;
  }
  for (const m of t.maps.values()) {
    for (const v of m.elements.values())
      if ((v.type === "jump" || v.type === "goto") && v.chain === name) return true;
  }
  return false;
}

function setReferenced(t: TableState, name: string, kind: "sets" | "maps"): boolean {
  for (const c of t.chains.values())
    if (c.rules.some((r) => ruleRefs(r.rule)[kind].includes(name))) return true;
  return false;
}

export class FakeNft implements Nft {
  private table: TableState | undefined;
  /** Every transaction applied successfully, in order (for tests to inspect). */
  readonly applied: Transaction[] = [];

  /** The structured table for the tracer; undefined when there is no table. Do not mutate. */
  ruleset(): Ruleset | undefined {
    return this.table;
  }

  apply(tx: Transaction): Promise<void> {
    try {
      this.applySync(tx);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Synchronous apply (the fake needs no I/O). */
  applySync(tx: Transaction): void {
    const script = renderTransaction(tx); // also validates names and rule syntax like nft would
    const lineOf: number[] = [];
    let line = 0;
    const known = new Map<string, SetSpec["keyType"]>();
    for (const op of tx.ops) {
      if (op.op === "add-set") known.set(op.set.name, op.set.keyType);
      lineOf.push(renderOp(op, (s) => known.get(s)) === undefined ? line : ++line);
    }
    let state: TableState | undefined = this.table === undefined ? undefined : cloneState(this.table);
    // The ops change this copy in place until one deletes the table (a table added after that
    // is a new object): its counter is what the kernel's table has used when the batch aborts.
    const ours = state;
    let first: { err: OpError; index: number } | undefined;
    let nftFailure: { err: OpError; index: number } | undefined;
    for (const [i, op] of tx.ops.entries()) {
      try {
        state = this.applyOp(state, op);
      } catch (e) {
        if (!(e instanceof OpError)) throw e;
        first ??= { err: e, index: i };
        if (e.stage === "nft") {
          nftFailure = { err: e, index: i };
          break;
        }
        // The kernel goes on through the batch (and allocates handles) before aborting.
      }
    }
    const failure = nftFailure ?? first;
    if (failure !== undefined) {
      if (nftFailure === undefined && ours !== undefined && this.table !== undefined) {
        // Handles the aborted batch allocated stay used (the table's counter is not rolled back),
        // also when the batch went on to delete the table.
        this.table.lastHandle = Math.max(this.table.lastHandle, ours.lastHandle);
      }
      const l = lineOf[failure.index] ?? 0;
      throw new NftApplyError(`nft -f failed: line ${l}: Error: ${failure.err.message}`, script, l);
    }
    this.table = state;
    this.applied.push(tx);
  }

  private applyOp(t: TableState | undefined, op: TxOp): TableState | undefined {
    if (op.op === "ensure-table")
      return t ?? { lastHandle: 0, chains: new Map(), sets: new Map(), maps: new Map() };
    if (t === undefined) throw kernel(ENOENT);
    switch (op.op) {
      case "delete-table":
        return undefined;
      case "add-chain": {
        const c = t.chains.get(op.chain);
        if (c !== undefined) {
          if (op.base !== undefined && !sameBase(c.base, op.base)) throw kernel("Operation not supported");
          return t;
        }
        t.chains.set(op.chain, {
          name: op.chain,
          ...(op.base === undefined ? {} : { base: op.base }),
          rules: [],
        });
        t.lastHandle++;
        return t;
      }
      case "flush-chain": {
        const c = t.chains.get(op.chain);
        if (c === undefined) throw kernel(ENOENT);
        c.rules = [];
        return t;
      }
      case "delete-chain": {
        if (!t.chains.has(op.chain)) throw kernel(ENOENT);
        if (chainReferenced(t, op.chain)) throw kernel(EBUSY);
        t.chains.delete(op.chain);
        return t;
      }
      case "add-rule": {
        const refs = ruleRefs(op.rule);
        for (const s of refs.sets) {
          const set = t.sets.get(s);
          if (set === undefined) throw userspace(ENOENT);
          checkSetUse(op.rule, s, set.spec);
        }
        for (const m of refs.maps) if (!t.maps.has(m)) throw userspace(ENOENT);
        // The anonymous sets of the rule's literals are NEWSET messages sent before the NEWRULE:
        // they take their handles even when the rule then fails on a missing chain.
        t.lastHandle += anonymousSetCount(op.rule);
        const c = t.chains.get(op.chain);
        if (c === undefined) throw kernel(ENOENT);
        const handle = ++t.lastHandle; // taken before the expressions are checked
        for (const target of refs.chains) {
          const tc = t.chains.get(target);
          if (tc === undefined) throw kernel(ENOENT);
          if (tc.base !== undefined) throw kernel("Operation not supported");
        }
        c.rules.push({ handle, rule: op.rule });
        return t;
      }
      case "delete-rule": {
        const c = t.chains.get(op.chain);
        if (c === undefined) throw kernel(ENOENT);
        const i = c.rules.findIndex((r) => r.handle === op.handle);
        if (i < 0) throw kernel(ENOENT);
        c.rules.splice(i, 1);
        return t;
      }
      case "add-set": {
        const s = t.sets.get(op.set.name);
        if (s !== undefined || t.maps.has(op.set.name)) {
          if (s === undefined || s.spec.keyType !== op.set.keyType || s.spec.interval !== op.set.interval) {
            throw kernel("File exists");
          }
          return t;
        }
        t.sets.set(op.set.name, { spec: op.set, elements: new Map() });
        t.lastHandle++;
        return t;
      }
      case "flush-set": {
        const s = t.sets.get(op.set);
        if (s === undefined) throw userspace(ENOENT); // nft looks the set up in its cache
        s.elements.clear();
        return t;
      }
      case "delete-set": {
        if (!t.sets.has(op.set)) throw kernel(ENOENT);
        if (setReferenced(t, op.set, "sets")) throw kernel(EBUSY);
        t.sets.delete(op.set);
        return t;
      }
      case "add-elements": {
        const s = t.sets.get(op.set);
        if (s === undefined) throw userspace(ENOENT);
        const added: [string, ElementValue][] = [];
        for (const text of op.elements) {
          let v: ElementValue;
          try {
            v = parseElement(s.spec.keyType, text, s.spec.interval);
          } catch (e) {
            throw userspace(`invalid element "${text}" for type ${s.spec.keyType}: ${(e as Error).message}`);
          }
          const key = formatElement(v);
          if (s.spec.interval) {
            if (added.some(([k, a]) => k !== key && intervalsOverlap(a, v)))
              throw userspace("conflicting intervals specified");
            for (const [k, old] of s.elements) {
              if (k !== key && intervalsOverlap(old, v))
                throw userspace("interval overlaps with an existing one");
            }
          }
          added.push([key, v]);
        }
        for (const [k, v] of added) if (!s.elements.has(k)) s.elements.set(k, v);
        return t;
      }
      case "delete-elements": {
        const s = t.sets.get(op.set);
        if (s === undefined) throw userspace(ENOENT);
        const keys = op.elements.map((text) => {
          try {
            return formatElement(parseElement(s.spec.keyType, text, s.spec.interval));
          } catch (e) {
            throw userspace(`invalid element "${text}" for type ${s.spec.keyType}: ${(e as Error).message}`);
          }
        });
        for (const k of keys) {
          if (!s.elements.has(k))
            throw s.spec.interval ? userspace("element does not exist") : kernel(ENOENT);
          s.elements.delete(k);
        }
        return t;
      }
      case "add-map": {
        const m = t.maps.get(op.map.name);
        if (m !== undefined || t.sets.has(op.map.name)) {
          if (m === undefined || m.spec.keyType !== op.map.keyType) throw kernel("File exists");
          return t;
        }
        t.maps.set(op.map.name, { spec: op.map, elements: new Map() });
        t.lastHandle++;
        return t;
      }
      case "flush-map": {
        const m = t.maps.get(op.map);
        if (m === undefined) throw userspace(ENOENT);
        m.elements.clear();
        return t;
      }
      case "delete-map": {
        if (!t.maps.has(op.map)) throw kernel(ENOENT);
        if (setReferenced(t, op.map, "maps")) throw kernel(EBUSY);
        t.maps.delete(op.map);
        return t;
      }
      case "add-map-elements": {
        const m = t.maps.get(op.map);
        if (m === undefined) throw userspace(ENOENT);
        for (const [key, v] of op.elements) {
          if (v.type === "jump" || v.type === "goto") {
            const tc = t.chains.get(v.chain);
            if (tc === undefined) throw kernel(ENOENT);
            if (tc.base !== undefined) throw kernel("Operation not supported");
          }
          // An existing key keeps its verdict (no NLM_F_EXCL: nft ignores EEXIST only when equal).
          const old = m.elements.get(key);
          if (old !== undefined && !sameVerdict(old, v)) throw kernel("File exists");
          m.elements.set(key, v);
        }
        return t;
      }
      case "delete-map-elements": {
        const m = t.maps.get(op.map);
        if (m === undefined) throw userspace(ENOENT);
        for (const k of op.keys) {
          if (!m.elements.delete(k)) throw kernel(ENOENT);
        }
        return t;
      }
    }
  }

  list(): Promise<TableListing | undefined> {
    return Promise.resolve(listingOf(this.table));
  }
}

function sameVerdict(a: MapVerdict, b: MapVerdict): boolean {
  if (a.type !== b.type) return false;
  return (a.type !== "jump" && a.type !== "goto") || a.chain === (b as { chain: string }).chain;
}

/** nft checks a named set's key type against the expression that looks it up. */
function checkSetUse(rule: Rule, name: string, spec: SetSpec): void {
  for (const m of rule.matches) {
    if ((m.type === "addr-set" || m.type === "addr-port-set") && m.set === name) {
      const want =
        m.type === "addr-set"
          ? m.family === 4
            ? "ipv4_addr"
            : "ipv6_addr"
          : `ipv${m.family}_addr . inet_proto . inet_service`;
      if (spec.keyType !== want)
        throw userspace(`datatype mismatch, expected ${want}, set has type ${spec.keyType}`);
    }
  }
}

/** The listing `NftCli.list` would return for this state. */
export function listingOf(t: Ruleset | undefined): TableListing | undefined {
  if (t === undefined) return undefined;
  const listing: TableListing = { chains: new Map(), sets: new Map(), maps: new Map() };
  for (const c of t.chains.values()) {
    listing.chains.set(c.name, {
      ...(c.base === undefined ? {} : { base: { ...c.base } }),
      rules: c.rules.map((r) => ({
        handle: r.handle,
        ...(r.rule.comment === undefined ? {} : { comment: r.rule.comment }),
      })),
    });
  }
  for (const [name, s] of t.sets) {
    listing.sets.set(name, { spec: { ...s.spec }, elements: new Set(s.elements.keys()) });
  }
  for (const [name, m] of t.maps) {
    listing.maps.set(name, { spec: { ...m.spec }, elements: new Map(m.elements) });
  }
  return listing;
}
