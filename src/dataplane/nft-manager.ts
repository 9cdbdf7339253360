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
}

interface BelievedChain {
  base?: BaseChainSpec;
  rules: { comment?: string }[];
}

/** Our belief of the kernel's table after the last successful apply (a deep copy). */
class Belief implements TableView {
  chains = new Map<string, BelievedChain>();
  sets = new Map<string, { spec: SetSpec; elements: Set<string> }>();
  maps = new Map<string, { spec: MapSpec; elements: Map<string, MapVerdict> }>();

  /** Copy `want` for the given names (all when undefined). */
  record(want: DesiredTable, scope?: Touched): void {
    const chains = scope?.chains ?? new Set([...this.chains.keys(), ...want.chains.keys()]);
    const sets = scope?.sets ?? new Set([...this.sets.keys(), ...want.sets.keys()]);
    const maps = scope?.maps ?? new Set([...this.maps.keys(), ...want.maps.keys()]);
    for (const n of chains) {
      const c = want.chains.get(n);
      if (c === undefined) this.chains.delete(n);
      else {
        const b: BelievedChain = {
          rules: c.rules.map((r) => (r.comment === undefined ? {} : { comment: r.comment })),
        };
        if (c.base !== undefined) b.base = c.base;
        this.chains.set(n, b);
      }
    }
    for (const n of sets) {
      const s = want.sets.get(n);
      if (s === undefined) this.sets.delete(n);
      else this.sets.set(n, { spec: s.spec, elements: new Set(s.elements) });
    }
    for (const n of maps) {
      const m = want.maps.get(n);
      if (m === undefined) this.maps.delete(n);
      else this.maps.set(n, { spec: m.spec, elements: new Map(m.elements) });
    }
  }
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

  /** The next apply reads back and repairs everything. */
  invalidate(): void {
    this.belief = undefined;
  }

  async apply(
    state: DesiredState,
    changes: StateChanges,
    opts: { full?: boolean } = {},
  ): Promise<NftApplyStats> {
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
      const listing = await this.nft.list();
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
    const tx: Transaction = { ops: ops.length === 0 ? [] : ops };
    let scriptBytes = 0;
    if (ops.length > 0) {
      try {
        scriptBytes = Buffer.byteLength(renderTransaction(tx));
        await this.nft.apply(tx);
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
    return { full, replaced, ops: ops.length, scriptBytes };
  }
}
