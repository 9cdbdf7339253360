/**
 * Diff what the kernel holds (a listing, or what we believe it holds after our last apply)
 * against the desired table and produce the operations of one transaction. Chains compare by
 * their rule-comment sequence (each comment is a hash of the rule); a differing chain is
 * flushed and re-filled. Sets and maps compare element by element. A differing base-chain,
 * set or map *spec* cannot be fixed in place (rules reference it): the caller replaces the
 * whole table instead.
 */
import type { BaseChainSpec, MapSpec, MapVerdict, SetElement, SetSpec, TxOp } from "./nft/model.js";
import type { DesiredTable, Touched } from "./rules/ruleset.js";

/** The shape shared by `TableListing` and our belief about the kernel. */
export interface TableView {
  chains: ReadonlyMap<string, { base?: BaseChainSpec; rules: readonly { comment?: string }[] }>;
  sets: ReadonlyMap<string, { spec: SetSpec; elements: ReadonlySet<SetElement> }>;
  maps: ReadonlyMap<string, { spec: MapSpec; elements: ReadonlyMap<string, MapVerdict> }>;
}

export interface Plan {
  ops: TxOp[];
  /** A spec differs: only a whole-table replace repairs it. */
  needsReplace: boolean;
}

const sameBase = (a: BaseChainSpec | undefined, b: BaseChainSpec | undefined): boolean =>
  a === undefined || b === undefined
    ? a === b
    : a.type === b.type && a.hook === b.hook && a.priority === b.priority && a.policy === b.policy;

const sameVerdict = (a: MapVerdict, b: MapVerdict): boolean =>
  a.type === b.type && ("chain" in a ? a.chain : "") === ("chain" in b ? b.chain : "");

const sameComments = (a: readonly { comment?: string }[], b: readonly { comment?: string }[]): boolean =>
  a.length === b.length && a.every((r, i) => r.comment !== undefined && r.comment === b[i]?.comment);

/**
 * Operations that turn `cur` into `want` for the names in `scope` (all names when undefined).
 * Order matters inside one nft transaction: objects are declared before rules reference them,
 * and references are gone before their targets are deleted.
 */
export function planTable(cur: TableView, want: DesiredTable, scope?: Touched): Plan {
  const chainNames = scope?.chains ?? new Set([...cur.chains.keys(), ...want.chains.keys()]);
  const setNames = scope?.sets ?? new Set([...cur.sets.keys(), ...want.sets.keys()]);
  const mapNames = scope?.maps ?? new Set([...cur.maps.keys(), ...want.maps.keys()]);
  const declare: TxOp[] = [];
  const flush: TxOp[] = [];
  const elements: TxOp[] = [];
  const rules: TxOp[] = [];
  const mapElems: TxOp[] = [];
  const removeFlush: TxOp[] = [];
  const remove: TxOp[] = [];
  let needsReplace = false;

  for (const name of [...setNames].sort()) {
    const c = cur.sets.get(name);
    const w = want.sets.get(name);
    if (w === undefined) {
      if (c !== undefined) remove.push({ op: "delete-set", set: name });
      continue;
    }
    if (c === undefined) {
      declare.push({ op: "add-set", set: w.spec });
      if (w.elements.size > 0) elements.push({ op: "add-elements", set: name, elements: [...w.elements] });
      continue;
    }
    if (c.spec.keyType !== w.spec.keyType || c.spec.interval !== w.spec.interval) needsReplace = true;
    const del = [...c.elements].filter((e) => !w.elements.has(e));
    const add = [...w.elements].filter((e) => !c.elements.has(e));
    if (del.length > 0) elements.push({ op: "delete-elements", set: name, elements: del });
    if (add.length > 0) elements.push({ op: "add-elements", set: name, elements: add });
  }

  for (const name of [...mapNames].sort()) {
    const c = cur.maps.get(name);
    const w = want.maps.get(name);
    if (w === undefined) {
      if (c !== undefined) remove.push({ op: "delete-map", map: name });
      continue;
    }
    if (c === undefined) {
      declare.push({ op: "add-map", map: w.spec });
      if (w.elements.size > 0)
        mapElems.push({ op: "add-map-elements", map: name, elements: [...w.elements] });
      continue;
    }
    if (c.spec.keyType !== w.spec.keyType) needsReplace = true;
    const del: string[] = [];
    const add: [string, MapVerdict][] = [];
    for (const [k, v] of c.elements) {
      const wv = w.elements.get(k);
      if (wv === undefined || !sameVerdict(v, wv)) del.push(k);
    }
    for (const [k, v] of w.elements) {
      const cv = c.elements.get(k);
      if (cv === undefined || !sameVerdict(v, cv)) add.push([k, v]);
    }
    // Deletions first (an element whose verdict changed is deleted, then added back).
    if (del.length > 0) mapElems.unshift({ op: "delete-map-elements", map: name, keys: del });
    if (add.length > 0) mapElems.push({ op: "add-map-elements", map: name, elements: add });
  }

  for (const name of [...chainNames].sort()) {
    const c = cur.chains.get(name);
    const w = want.chains.get(name);
    if (w === undefined) {
      if (c !== undefined) {
        removeFlush.push({ op: "flush-chain", chain: name });
        remove.unshift({ op: "delete-chain", chain: name });
      }
      continue;
    }
    if (c === undefined) {
      declare.push(
        w.base === undefined
          ? { op: "add-chain", chain: name }
          : { op: "add-chain", chain: name, base: w.base },
      );
    } else {
      if (!sameBase(c.base, w.base)) needsReplace = true;
      if (sameComments(c.rules, w.rules)) continue;
      if (c.rules.length > 0) flush.push({ op: "flush-chain", chain: name });
    }
    for (const rule of w.rules) rules.push({ op: "add-rule", chain: name, rule });
  }

  // Map elements referencing deleted chains must go before the chains; ones referencing new
  // chains after them. Deleting (flushed) chains, then sets and maps, comes last.
  const mapDeletes = mapElems.filter((o) => o.op === "delete-map-elements");
  const mapAdds = mapElems.filter((o) => o.op !== "delete-map-elements");
  const ops = [
    ...declare,
    ...flush,
    ...mapDeletes,
    ...elements,
    ...rules,
    ...mapAdds,
    ...removeFlush,
    ...remove,
  ];
  return { ops, needsReplace };
}

/** Everything in `want` from scratch, as the tail of a create or replace transaction. */
export function createAll(want: DesiredTable): TxOp[] {
  const empty: TableView = { chains: new Map(), sets: new Map(), maps: new Map() };
  return planTable(empty, want).ops;
}
