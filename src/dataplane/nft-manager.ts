/**
 * Keeps table `inet calico` at the desired state (STYLE.md "Dataplane as reconcile"): the
 * desired table is updated incrementally from each flush's changes without I/O; one apply
 * writes ONE transaction.
 * - fast path: diff the touched names against what we believe the kernel holds;
 * - full path (first apply, after any failure, on resync): list the table, diff everything,
 *   repair only what differs (a chain, a set element, a map element), sweep what is not ours
 *   any more;
 * - after repeated failures, or when a set/map/base-chain spec differs: replace the whole table
 *   atomically (ensure-table, delete-table, recreate) in one transaction.
 */
import type { DesiredState, StateChanges } from "../calc/types.js";
import type { BaseChainSpec, MapSpec, MapVerdict, Nft, SetSpec, Transaction, TxOp } from "./nft/model.js";
import { NftCli } from "./nft/nft-cli.js";
import { renderTransaction } from "./nft/render.js";
import { DesiredTable, type Touched } from "./rules/ruleset.js";
import { createAll, planTable, type TableView } from "./table-diff.js";
import type { DataplaneConfig } from "./types.js";

/** After this many consecutive failed applies, the next one replaces the whole table. */
export const REPLACE_AFTER_FAILURES = 2;

export interface NftApplyStats {
  full: boolean;
  replaced: boolean;
  ops: number;
  scriptBytes: number;
  /** Time spent computing the desired table and the diff, and writing it (diagnostics). */
  planMs: number;
  writeMs: number;
}

interface BelievedChain {
  base?: BaseChainSpec;
  rules: readonly { comment?: string }[];
}

/**
 * Our belief of the kernel's table after the last successful apply. Chains and sets are the
 * desired table's own objects, shared, not copied: the desired table never changes one in
 * place (an update replaces the chain or set object), so the one we recorded stays as it was
 * applied. Map element lists are changed in place by the desired table: those are copied.
 */
class Belief implements TableView {
  chains = new Map<string, BelievedChain>();
  sets = new Map<string, { spec: SetSpec; elements: ReadonlySet<string> }>();
  maps = new Map<string, { spec: MapSpec; elements: Map<string, MapVerdict> }>();

  /** Copy `want` for the given names (all when undefined). */
  record(want: DesiredTable, scope?: Touched): void {
    const chains = scope?.chains ?? new Set([...this.chains.keys(), ...want.chains.keys()]);
    const sets = scope?.sets ?? new Set([...this.sets.keys(), ...want.sets.keys()]);
    const maps = scope?.maps ?? new Set([...this.maps.keys(), ...want.maps.keys()]);
    for (const n of chains) {
      const c = want.chains.get(n);
      if (c === undefined) this.chains.delete(n);
      else this.chains.set(n, c);
    }
    for (const n of sets) {
      const s = want.sets.get(n);
      if (s === undefined) this.sets.delete(n);
      else this.sets.set(n, s);
    }
    for (const n of maps) {
      const m = want.maps.get(n);
      if (m === undefined) this.maps.delete(n);
      else this.maps.set(n, { spec: m.spec, elements: new Map(m.elements) });
    }
  }
}

const SET_LEVEL_OPS = new Set(["add-set", "delete-set", "flush-set", "delete-table"]);

/**
 * Split a fast-path transaction into [element updates of sets that exist before and after it]
 * and [the rest], so the first goes over nfnetlink and only the second pays nft's cache fill
 * (docs/dataplane.md "Performance"). Elements go first, as Felix updates IP sets before the
 * rules: for the ~0.1 s between the two, rules see the new members with the old rule text.
 * If the second fails, the next apply is full and repairs both. Map elements stay with the
 * rules (they reference chains created or deleted in the same transaction).
 */
export function splitElements(ops: readonly TxOp[]): Transaction[] {
  const setLevel = new Set<string>();
  for (const o of ops) {
    if (o.op === "delete-table") return [{ ops: [...ops] }];
    if (SET_LEVEL_OPS.has(o.op)) setLevel.add(o.op === "add-set" ? o.set.name : (o as { set: string }).set);
  }
  const pre: TxOp[] = [];
  const rest: TxOp[] = [];
  for (const o of ops) {
    if ((o.op === "add-elements" || o.op === "delete-elements") && !setLevel.has(o.set)) pre.push(o);
    else rest.push(o);
  }
  const restHasWork = rest.some((o) => o.op !== "ensure-table");
  if (pre.length === 0 || !restHasWork) return [{ ops: [...ops] }];
  return [{ ops: [{ op: "ensure-table" }, ...pre] }, { ops: rest }];
}

export class NftManager {
  private table: DesiredTable | undefined;
  private belief: Belief | undefined;
  private failures = 0;

  constructor(
    private readonly nft: Nft,
    private cfg: DataplaneConfig,
  ) {}

  /** The desired table (for tests and diagnostics). */
  get desired(): DesiredTable | undefined {
    return this.table;
  }

  setConfig(cfg: DataplaneConfig): void {
    this.cfg = cfg;
    this.table = undefined;
    this.invalidate();
  }

  /** Element-only transactions are cheap (NftCli over nfnetlink): worth splitting out. */
  private cheapElements(): boolean {
    return this.nft instanceof NftCli && this.nft.elementsViaNetlink;
  }

  /** The next apply reads back and repairs everything. */
  invalidate(): void {
    this.belief = undefined;
  }

  async apply(
    state: DesiredState,
    changes: StateChanges,
    /** `tableAbsent`: the caller knows our table is not in the kernel (a full apply skips the listing). */
    opts: { full?: boolean; tableAbsent?: boolean } = {},
  ): Promise<NftApplyStats> {
    const t0 = performance.now();
    let touched: Touched | undefined;
    if (this.table === undefined) {
      this.table = DesiredTable.fromState(state, this.cfg);
    } else {
      touched = this.table.update(state, changes);
    }
    const want = this.table;
    const full = opts.full === true || this.belief === undefined || touched === undefined;
    let ops: TxOp[];
    let replaced = false;
    if (!full) {
      ops = planTable(this.belief!, want, touched).ops;
    } else {
      const listing = opts.tableAbsent === true ? undefined : await this.nft.list();
      if (listing === undefined) {
        ops = createAll(want);
      } else {
        const plan = planTable(listing, want);
        if (plan.needsReplace || this.failures >= REPLACE_AFTER_FAILURES) {
          ops = [{ op: "ensure-table" }, { op: "delete-table" }, { op: "ensure-table" }, ...createAll(want)];
          replaced = true;
        } else ops = plan.ops;
      }
    }
    if (ops.length > 0 && ops[0]?.op !== "ensure-table") ops.unshift({ op: "ensure-table" });
    const txs = !full && this.cheapElements() ? splitElements(ops) : [{ ops }];
    let scriptBytes = 0;
    let t1 = performance.now();
    if (ops.length > 0) {
      try {
        // A big (cold start) script is rendered once, by the Nft, not again here for the stats.
        scriptBytes = ops.length > 1000 ? 0 : Buffer.byteLength(renderTransaction({ ops }));
        t1 = performance.now();
        for (const tx of txs) await this.nft.apply(tx);
      } catch (e) {
        this.failures++;
        this.belief = undefined;
        throw e;
      }
    }
    this.failures = 0;
    if (full) {
      this.belief = new Belief();
      this.belief.record(want);
    } else this.belief!.record(want, touched);
    if (ops.length > 1000 && this.nft instanceof NftCli) scriptBytes = this.nft.lastScriptBytes;
    const t2 = performance.now();
    return { full, replaced, ops: ops.length, scriptBytes, planMs: t1 - t0, writeMs: t2 - t1 };
  }
}
