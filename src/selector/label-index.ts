/**
 * An incremental index of which selectors match which labelled items: the core of Felix's
 * ActiveRulesCalculator and IP-set calculation (reference/calico.md §1.4), for endpoints and
 * network sets against policy and rule selectors.
 *
 * Items carry their own labels plus the labels of their parents (Calico profiles'
 * `labelsToApply`): an item's own label wins over any parent's, and an earlier parent wins over
 * a later one. A parent may be referenced before it is defined (it then contributes nothing).
 *
 * Callbacks fire exactly on transitions: `onMatchStarted(sel, item)` when the pair starts
 * matching, `onMatchStopped(sel, item)` when it stops (including because either side was
 * deleted). They run synchronously inside the call that caused them; they must not modify the
 * index (that throws) and should not throw.
 *
 * Pruning (docs/selector.md has the details):
 *  - a selector with the same canonical form as another shares its evaluation ("expression");
 *  - each expression is filed under its anchors (necessary `key == value` / `key in {…}` /
 *    `has(key)` conditions, see anchors.ts) or, if it has none, in the unanchored set;
 *  - items are filed under each of their effective `key = value` labels;
 *  - a label change on an item re-evaluates only expressions that reference a changed key and
 *    either already match the item or are anchored on one of its new labels (choosing the
 *    smaller of two candidate supersets), and a new selector evaluates only the items its
 *    anchors admit.
 */
import { anchorsOf, type Anchor } from "./anchors.js";
import type { Labels, Predicate } from "./compile.js";
import { parseSelector, type Selector } from "./selector.js";

export interface LabelIndexCallbacks<SelectorId, ItemId> {
  onMatchStarted?: (selectorId: SelectorId, itemId: ItemId) => void;
  onMatchStopped?: (selectorId: SelectorId, itemId: ItemId) => void;
}

/** Counters for tests and metrics: how much work the pruning saved. */
export interface LabelIndexStats {
  /** Selector evaluations performed since construction. */
  evaluations: number;
  selectors: number;
  expressions: number;
  unanchoredExpressions: number;
  items: number;
  parents: number;
}

type LabelMap = Record<string, string>;

/** One distinct selector expression, shared by every selector ID with that canonical form. */
interface Expr<S, I> {
  readonly canonical: string;
  readonly evaluate: Predicate;
  readonly keys: ReadonlySet<string>;
  readonly anchors: readonly Anchor[] | undefined;
  readonly ids: Set<S>;
  /** IDs of the items the expression matches (item data is one map lookup away). */
  readonly matchIds: Set<I>;
  /** Dedupes candidates within one operation without allocating a Set. */
  stamp: number;
}

interface ItemData<S, I> {
  readonly id: I;
  own: LabelMap;
  parentIds: readonly string[];
  /** Own labels merged with parents' (see `newLabelMap`). */
  labels: LabelMap;
  readonly exprs: Set<Expr<S, I>>;
  stamp: number;
}

interface ParentData<S, I> {
  /** undefined while referenced by items but not (or no longer) defined. */
  labels: LabelMap | undefined;
  readonly children: Set<ItemData<S, I>>;
}

const EMPTY: ReadonlySet<never> = new Set<never>();

/**
 * A label map: a plain object, so that V8 keeps maps with the same keys in one shared shape
 * (~130 bytes for 11 labels; a null-prototype object is a hash table of ~490 — 10,000
 * endpoints hold two maps each in the IP set index). Only a `__proto__` key, which a plain
 * object cannot hold as data, needs a null prototype. Reads of keys taken from another map go
 * through `ownLabel`, since a plain object inherits `constructor` and friends.
 */
function newLabelMap(hasProtoKey: boolean): LabelMap {
  return (hasProtoKey ? Object.create(null) : {}) as LabelMap;
}

const hasOwn = (l: LabelMap, k: string): boolean => Object.prototype.hasOwnProperty.call(l, k);
const ownLabel = (l: LabelMap, k: string): string | undefined => (hasOwn(l, k) ? l[k] : undefined);

/**
 * The index's own map of `labels`: a copy, except that a frozen plain object (which cannot change
 * under us) is used as it is — the calculation freezes its records' labels, so 10,000 endpoints'
 * labels are not held twice.
 */
function copyLabels(labels: Labels): LabelMap {
  if (
    Object.isFrozen(labels) &&
    Object.getPrototypeOf(labels) === Object.prototype &&
    !hasOwn(labels, "__proto__")
  )
    return labels;
  const keys = Object.keys(labels);
  const out = newLabelMap(keys.includes("__proto__"));
  for (const k of keys) out[k] = labels[k]!;
  return out;
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

/** Adds to a two-level multimap `key → value → set`. */
function add2<T>(map: Map<string, Map<string, Set<T>>>, k: string, v: string, x: T): void {
  getOrCreate(
    getOrCreate(map, k, () => new Map<string, Set<T>>()),
    v,
    () => new Set<T>(),
  ).add(x);
}

function remove2<T>(map: Map<string, Map<string, Set<T>>>, k: string, v: string, x: T): void {
  const inner = map.get(k);
  const set = inner?.get(v);
  if (inner === undefined || set === undefined) return;
  set.delete(x);
  if (set.size === 0) {
    inner.delete(v);
    if (inner.size === 0) map.delete(k);
  }
}

function add1<T>(map: Map<string, Set<T>>, k: string, x: T): void {
  getOrCreate(map, k, () => new Set<T>()).add(x);
}

function remove1<T>(map: Map<string, Set<T>>, k: string, x: T): void {
  const set = map.get(k);
  if (set === undefined) return;
  set.delete(x);
  if (set.size === 0) map.delete(k);
}

export class LabelIndex<SelectorId, ItemId> {
  readonly #onStarted: ((s: SelectorId, i: ItemId) => void) | undefined;
  readonly #onStopped: ((s: SelectorId, i: ItemId) => void) | undefined;

  readonly #selectors = new Map<SelectorId, Expr<SelectorId, ItemId>>();
  readonly #exprs = new Map<string, Expr<SelectorId, ItemId>>();
  /** Expressions by anchor: exact values, presence-only keys, and none. */
  readonly #exprsByKV = new Map<string, Map<string, Set<Expr<SelectorId, ItemId>>>>();
  readonly #exprsByKey = new Map<string, Set<Expr<SelectorId, ItemId>>>();
  readonly #unanchored = new Set<Expr<SelectorId, ItemId>>();
  /** Expressions by every key they reference (anchored or not). */
  readonly #exprsByRefKey = new Map<string, Set<Expr<SelectorId, ItemId>>>();

  readonly #items = new Map<ItemId, ItemData<SelectorId, ItemId>>();
  /** Items by effective label: key → value → items. */
  readonly #itemsByKV = new Map<string, Map<string, Set<ItemData<SelectorId, ItemId>>>>();
  readonly #parents = new Map<string, ParentData<SelectorId, ItemId>>();

  #stamp = 0;
  #evaluations = 0;
  #busy = false;

  constructor(callbacks: LabelIndexCallbacks<SelectorId, ItemId> = {}) {
    this.#onStarted = callbacks.onMatchStarted;
    this.#onStopped = callbacks.onMatchStopped;
  }

  // ---- selectors -------------------------------------------------------------------------

  /**
   * Adds or replaces a selector. A string is parsed first (SelectorSyntaxError leaves the
   * index unchanged). Replacing with the same canonical form is a no-op.
   */
  updateSelector(id: SelectorId, selector: Selector | string): void {
    const sel = typeof selector === "string" ? parseSelector(selector) : selector;
    const canonical = sel.toString();
    const old = this.#selectors.get(id);
    if (old?.canonical === canonical) return;
    this.#guard(() => {
      const expr = this.#exprs.get(canonical) ?? this.#addExpr(canonical, sel);
      this.#selectors.set(id, expr);
      expr.ids.add(id);
      if (old !== undefined) {
        old.ids.delete(id);
        for (const iid of old.matchIds) if (!expr.matchIds.has(iid)) this.#onStopped?.(id, iid);
        for (const iid of expr.matchIds) if (!old.matchIds.has(iid)) this.#onStarted?.(id, iid);
        if (old.ids.size === 0) this.#removeExpr(old);
      } else {
        for (const iid of expr.matchIds) this.#onStarted?.(id, iid);
      }
    });
  }

  deleteSelector(id: SelectorId): void {
    const expr = this.#selectors.get(id);
    if (expr === undefined) return;
    this.#guard(() => {
      this.#selectors.delete(id);
      expr.ids.delete(id);
      for (const iid of expr.matchIds) this.#onStopped?.(id, iid);
      if (expr.ids.size === 0) this.#removeExpr(expr);
    });
  }

  #addExpr(canonical: string, sel: Selector): Expr<SelectorId, ItemId> {
    const expr: Expr<SelectorId, ItemId> = {
      canonical,
      evaluate: sel.evaluate,
      keys: new Set(sel.labelKeys),
      anchors: anchorsOf(sel.root),
      ids: new Set(),
      matchIds: new Set(),
      stamp: 0,
    };
    this.#exprs.set(canonical, expr);
    for (const k of expr.keys) add1(this.#exprsByRefKey, k, expr);
    if (expr.anchors === undefined) {
      this.#unanchored.add(expr);
    } else {
      for (const a of expr.anchors) {
        if (a.values === null) add1(this.#exprsByKey, a.key, expr);
        else for (const v of a.values) add2(this.#exprsByKV, a.key, v, expr);
      }
    }
    // Evaluate only the items the anchors admit.
    const consider = (item: ItemData<SelectorId, ItemId>): void => {
      this.#evaluations++;
      if (expr.evaluate(item.labels)) {
        expr.matchIds.add(item.id);
        item.exprs.add(expr);
      }
    };
    const anchors = this.#cheapestItemAnchors(sel, expr.anchors);
    if (anchors === undefined) {
      for (const item of this.#items.values()) consider(item);
    } else {
      const stamp = ++this.#stamp;
      for (const a of anchors) {
        const byValue = this.#itemsByKV.get(a.key);
        if (byValue === undefined) continue;
        const buckets = a.values === null ? byValue.values() : a.values.map((v) => byValue.get(v) ?? EMPTY);
        for (const bucket of buckets) {
          for (const item of bucket) {
            if (item.stamp === stamp) continue;
            item.stamp = stamp;
            consider(item);
          }
        }
      }
    }
    return expr;
  }

  /**
   * For a top-level `&&`, any operand's anchors are a valid filter for candidate items: pick
   * the one admitting the fewest items now (the static choice only knows value counts).
   */
  #cheapestItemAnchors(sel: Selector, anchors: readonly Anchor[] | undefined): readonly Anchor[] | undefined {
    const root = sel.root;
    if (root.kind !== "and") return anchors;
    let best = anchors;
    let bestCount = this.#itemsAdmitted(anchors);
    for (const op of root.operands) {
      const a = anchorsOf(op);
      if (a === undefined || a === anchors) continue;
      const count = this.#itemsAdmitted(a);
      if (count < bestCount) {
        best = a;
        bestCount = count;
      }
    }
    return best;
  }

  /** An upper bound on the items the anchors admit (the sum of their buckets). */
  #itemsAdmitted(anchors: readonly Anchor[] | undefined): number {
    if (anchors === undefined) return this.#items.size;
    let n = 0;
    for (const a of anchors) {
      const byValue = this.#itemsByKV.get(a.key);
      if (byValue === undefined) continue;
      if (a.values === null) for (const bucket of byValue.values()) n += bucket.size;
      else for (const v of a.values) n += byValue.get(v)?.size ?? 0;
    }
    return n;
  }

  #removeExpr(expr: Expr<SelectorId, ItemId>): void {
    this.#exprs.delete(expr.canonical);
    for (const k of expr.keys) remove1(this.#exprsByRefKey, k, expr);
    if (expr.anchors === undefined) {
      this.#unanchored.delete(expr);
    } else {
      for (const a of expr.anchors) {
        if (a.values === null) remove1(this.#exprsByKey, a.key, expr);
        else for (const v of a.values) remove2(this.#exprsByKV, a.key, v, expr);
      }
    }
    for (const iid of expr.matchIds) this.#items.get(iid)?.exprs.delete(expr);
  }

  // ---- items -----------------------------------------------------------------------------

  /**
   * Adds or updates an item: its own labels and, optionally, its parents (in priority order).
   * The labels object is copied.
   */
  updateItem(id: ItemId, labels: Labels, parentIds: readonly string[] = []): void {
    this.#guard(() => {
      const own = copyLabels(labels);
      const parents = [...parentIds];
      let item = this.#items.get(id);
      if (item === undefined) {
        item = { id, own, parentIds: parents, labels: own, exprs: new Set(), stamp: 0 };
        this.#items.set(id, item);
        this.#linkParents(item, parents);
        item.labels = this.#effectiveLabels(item);
        this.#relabel(item, undefined);
        return;
      }
      if (!sameList(item.parentIds, parents)) {
        this.#unlinkParents(item);
        item.parentIds = parents;
        this.#linkParents(item, parents);
      }
      item.own = own;
      const old = item.labels;
      item.labels = this.#effectiveLabels(item);
      this.#relabel(item, old);
    });
  }

  deleteItem(id: ItemId): void {
    const item = this.#items.get(id);
    if (item === undefined) return;
    this.#guard(() => {
      this.#items.delete(id);
      this.#unlinkParents(item);
      for (const k of Object.keys(item.labels)) remove2(this.#itemsByKV, k, item.labels[k]!, item);
      for (const expr of item.exprs) {
        expr.matchIds.delete(item.id);
        for (const sid of expr.ids) this.#onStopped?.(sid, item.id);
      }
      item.exprs.clear();
    });
  }

  // ---- parents ---------------------------------------------------------------------------

  /** Defines or updates a parent's labels; every item that lists it is re-labelled. */
  updateParent(parentId: string, labels: Labels): void {
    this.#guard(() => {
      const parent = getOrCreate(this.#parents, parentId, () => newParent<SelectorId, ItemId>());
      parent.labels = copyLabels(labels);
      this.#relabelChildren(parent);
    });
  }

  deleteParent(parentId: string): void {
    const parent = this.#parents.get(parentId);
    if (parent?.labels === undefined) return;
    this.#guard(() => {
      parent.labels = undefined;
      if (parent.children.size === 0) this.#parents.delete(parentId);
      else this.#relabelChildren(parent);
    });
  }

  #relabelChildren(parent: ParentData<SelectorId, ItemId>): void {
    for (const item of parent.children) {
      const old = item.labels;
      item.labels = this.#effectiveLabels(item);
      this.#relabel(item, old);
    }
  }

  #linkParents(item: ItemData<SelectorId, ItemId>, parentIds: readonly string[]): void {
    for (const pid of parentIds) {
      getOrCreate(this.#parents, pid, () => newParent<SelectorId, ItemId>()).children.add(item);
    }
  }

  #unlinkParents(item: ItemData<SelectorId, ItemId>): void {
    for (const pid of item.parentIds) {
      const parent = this.#parents.get(pid);
      if (parent === undefined) continue;
      parent.children.delete(item);
      if (parent.children.size === 0 && parent.labels === undefined) this.#parents.delete(pid);
    }
  }

  /** Own labels, then each parent's in order, first writer wins. */
  #effectiveLabels(item: ItemData<SelectorId, ItemId>): LabelMap {
    if (item.parentIds.length === 0) return item.own;
    const parents: LabelMap[] = [];
    let protoKey = hasOwn(item.own, "__proto__");
    for (const pid of item.parentIds) {
      const pl = this.#parents.get(pid)?.labels;
      if (pl === undefined) continue;
      parents.push(pl);
      protoKey ||= hasOwn(pl, "__proto__");
    }
    const out = newLabelMap(protoKey);
    for (const k of Object.keys(item.own)) out[k] = item.own[k]!;
    for (const pl of parents) for (const k of Object.keys(pl)) if (!hasOwn(out, k)) out[k] = pl[k]!;
    return out;
  }

  /**
   * Brings matches up to date after `item.labels` changed from `old` (undefined: new item).
   * Only expressions that could have changed are evaluated; see the class comment.
   */
  #relabel(item: ItemData<SelectorId, ItemId>, old: LabelMap | undefined): void {
    const labels = item.labels;
    const changed: string[] = [];
    if (old === undefined) {
      for (const k of Object.keys(labels)) {
        changed.push(k);
        add2(this.#itemsByKV, k, labels[k]!, item);
      }
    } else {
      for (const k of Object.keys(old)) {
        const was = old[k]!;
        const now = ownLabel(labels, k);
        if (now === was) continue;
        changed.push(k);
        remove2(this.#itemsByKV, k, was, item);
        if (now !== undefined) add2(this.#itemsByKV, k, now, item);
      }
      for (const k of Object.keys(labels)) {
        if (hasOwn(old, k)) continue;
        changed.push(k);
        add2(this.#itemsByKV, k, labels[k]!, item);
      }
      if (changed.length === 0) return;
    }

    const stamp = ++this.#stamp;
    const consider = (expr: Expr<SelectorId, ItemId>): void => {
      if (expr.stamp === stamp) return;
      expr.stamp = stamp;
      this.#evaluations++;
      const now = expr.evaluate(labels);
      if (now === item.exprs.has(expr)) return;
      if (now) {
        item.exprs.add(expr);
        expr.matchIds.add(item.id);
        for (const sid of expr.ids) this.#onStarted?.(sid, item.id);
      } else {
        item.exprs.delete(expr);
        expr.matchIds.delete(item.id);
        for (const sid of expr.ids) this.#onStopped?.(sid, item.id);
      }
    };

    if (old === undefined) {
      // New item: any expression anchored on one of its labels, and every unanchored one.
      this.#forAnchoredOn(labels, consider);
      for (const expr of this.#unanchored) consider(expr);
      return;
    }

    // Only expressions that read a changed key can change their verdict. Two supersets of
    // those that can: (A) the ones referencing a changed key, or (B) the ones anchored on a new
    // label, plus current matches, plus unanchored ones referencing a changed key. Walk the
    // smaller; in (B) skip any that reads no changed key.
    let costA = 0;
    for (const k of changed) costA += this.#exprsByRefKey.get(k)?.size ?? 0;
    let costB = item.exprs.size;
    for (const k of Object.keys(labels)) {
      costB += (this.#exprsByKV.get(k)?.get(labels[k]!)?.size ?? 0) + (this.#exprsByKey.get(k)?.size ?? 0);
    }
    if (costA <= costB) {
      for (const k of changed) {
        const set = this.#exprsByRefKey.get(k);
        if (set !== undefined) for (const expr of set) consider(expr);
      }
      return;
    }
    const readsChanged = (expr: Expr<SelectorId, ItemId>): boolean => {
      for (const k of changed) if (expr.keys.has(k)) return true;
      return false;
    };
    const filtered = (expr: Expr<SelectorId, ItemId>): void => {
      if (readsChanged(expr)) consider(expr);
    };
    // Deleting the current element while iterating a Set is safe; re-added ones are stamped.
    for (const expr of item.exprs) filtered(expr);
    this.#forAnchoredOn(labels, filtered);
    for (const k of changed) {
      const set = this.#exprsByRefKey.get(k);
      if (set === undefined) continue;
      if (set.size <= this.#unanchored.size) {
        for (const expr of set) if (expr.anchors === undefined) consider(expr);
      } else {
        for (const expr of this.#unanchored) if (expr.keys.has(k)) consider(expr);
      }
    }
  }

  /** Calls `fn` for every expression with an anchor the labels satisfy (maybe repeatedly). */
  #forAnchoredOn(labels: LabelMap, fn: (expr: Expr<SelectorId, ItemId>) => void): void {
    for (const k of Object.keys(labels)) {
      const exact = this.#exprsByKV.get(k)?.get(labels[k]!);
      if (exact !== undefined) for (const expr of exact) fn(expr);
      const presence = this.#exprsByKey.get(k);
      if (presence !== undefined) for (const expr of presence) fn(expr);
    }
  }

  // ---- queries ---------------------------------------------------------------------------

  /** Items the selector matches: a live view, do not hold it across updates. */
  itemsMatching(selectorId: SelectorId): ReadonlySet<ItemId> {
    return this.#selectors.get(selectorId)?.matchIds ?? EMPTY;
  }

  /** Selectors matching the item (a fresh set). */
  selectorsMatching(itemId: ItemId): Set<SelectorId> {
    const out = new Set<SelectorId>();
    const item = this.#items.get(itemId);
    if (item !== undefined) for (const expr of item.exprs) for (const sid of expr.ids) out.add(sid);
    return out;
  }

  matches(selectorId: SelectorId, itemId: ItemId): boolean {
    const expr = this.#selectors.get(selectorId);
    return expr !== undefined && expr.matchIds.has(itemId);
  }

  hasSelector(id: SelectorId): boolean {
    return this.#selectors.has(id);
  }

  hasItem(id: ItemId): boolean {
    return this.#items.has(id);
  }

  /** The item's effective labels (own merged with parents'), or undefined if unknown. */
  effectiveLabels(id: ItemId): Labels | undefined {
    return this.#items.get(id)?.labels;
  }

  stats(): LabelIndexStats {
    return {
      evaluations: this.#evaluations,
      selectors: this.#selectors.size,
      expressions: this.#exprs.size,
      unanchoredExpressions: this.#unanchored.size,
      items: this.#items.size,
      parents: [...this.#parents.values()].filter((p) => p.labels !== undefined).length,
    };
  }

  #guard(fn: () => void): void {
    if (this.#busy) throw new Error("LabelIndex: callbacks must not modify the index");
    this.#busy = true;
    try {
      fn();
    } finally {
      this.#busy = false;
    }
  }
}

function newParent<S, I>(): ParentData<S, I> {
  return { labels: undefined, children: new Set() };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
