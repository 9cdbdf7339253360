/**
 * `NftCli`: the `Nft` interface over the `nft` binary. Apply pipes the rendered script to
 * `nft -f -` (one atomic transaction); list reads `nft -j -n list table inet calico` and
 * normalises nft's JSON to the canonical element text of model.ts, so it compares equal to
 * `FakeNft.list()` for the same state.
 */
import { run } from "../netns.js";
import { CalicoError } from "../../errors.js";
import { NftApplyError } from "./fake-nft.js";
import { renderTransaction, type RenderOptions } from "./render.js";
import { canonicalElement } from "./elements.js";
import type { ElementTarget } from "./netlink-elements.js";
import { NftNetlinkError, UnsupportedNetlinkError, loadLibc, sendBatch } from "./netlink.js";
import { encodeTransaction } from "./netlink-tx.js";
import {
  TABLE_FAMILY,
  TABLE_NAME,
  type BaseChainSpec,
  type ChainType,
  type Hook,
  type MapSpec,
  type MapVerdict,
  type Nft,
  type SetKeyType,
  type SetSpec,
  type TableListing,
  type Transaction,
} from "./model.js";

export const NFT_LIST_FAILED = "NFT_LIST_FAILED";

/** Transactions with more ops than this are encoded into native memory (freed when sent). */
const NATIVE_BATCH_OPS = 1000;
const TRIM_DELAY_MS = 2000;

export interface NftCliOptions {
  /** Network namespace (name or path); undefined: the caller's. */
  netns?: string;
  /**
   * Send transactions over raw nfnetlink (netlink-tx.ts: one batch, atomic, as nft sends it)
   * instead of `nft -f` (default true; `CALICO_NFT_NETLINK=0` turns it off). Falls back to
   * `nft -f` for anything the encoder cannot express and after any netlink error (the kernel
   * aborted the batch: nothing applied), so a wrong transaction still fails with nft's message.
   */
  netlink?: boolean;
  /** Old name of `netlink` (it once covered element-only transactions only). */
  netlinkElements?: boolean;
}

/** Counters of how transactions were applied (diagnostics, bench). */
export interface NftCliStats {
  netlink: number;
  script: number;
  /** Transactions the kernel refused over netlink, then sent to `nft -f`. */
  netlinkFallbacks: number;
  /** Transactions the encoder could not express (sent to `nft -f`). */
  unsupported: number;
}

type Json = unknown;
const str = (x: Json): string =>
  typeof x === "string" || typeof x === "number" ? String(x) : JSON.stringify(x);
const obj = (x: Json): Record<string, Json> =>
  typeof x === "object" && x !== null && !Array.isArray(x) ? (x as Record<string, Json>) : {};

/** nft's JSON element → canonical text (see elements.ts). */
export function elementFromJson(x: Json): string {
  if (typeof x === "string" || typeof x === "number") return String(x);
  const o = obj(x);
  if ("elem" in o) return elementFromJson(obj(o.elem).val); // {"elem": {"val": ..., "comment": ...}}
  if ("prefix" in o) {
    const p = obj(o.prefix);
    return `${str(p.addr)}/${str(p.len)}`;
  }
  if ("range" in o && Array.isArray(o.range))
    return `${elementFromJson(o.range[0])}-${elementFromJson(o.range[1])}`;
  if ("concat" in o && Array.isArray(o.concat)) return o.concat.map(elementFromJson).join(" . ");
  throw new CalicoError(NFT_LIST_FAILED, `Cannot read nft set element ${JSON.stringify(x)}`);
}

function verdictFromJson(x: Json): MapVerdict {
  const o = obj(x);
  if ("accept" in o) return { type: "accept" };
  if ("drop" in o) return { type: "drop" };
  if ("jump" in o) return { type: "jump", chain: str(obj(o.jump).target) };
  if ("goto" in o) return { type: "goto", chain: str(obj(o.goto).target) };
  throw new CalicoError(NFT_LIST_FAILED, `Cannot read nft map verdict ${JSON.stringify(x)}`);
}

function keyTypeFromJson(t: Json): string {
  return Array.isArray(t) ? t.map(str).join(" . ") : str(t);
}

/** Parse `nft -j -n list table inet calico` output into a listing. */
export function parseListing(json: string): TableListing {
  const doc = obj(JSON.parse(json) as Json);
  const items = Array.isArray(doc.nftables) ? doc.nftables : [];
  const listing: TableListing = { chains: new Map(), sets: new Map(), maps: new Map() };
  const rules: Record<string, Json>[] = [];
  for (const item of items) {
    const o = obj(item);
    if ("chain" in o) {
      const c = obj(o.chain);
      const base: BaseChainSpec | undefined =
        c.hook === undefined
          ? undefined
          : {
              type: str(c.type) as ChainType,
              hook: str(c.hook) as Hook,
              priority: Number(c.prio),
              policy: c.policy === "drop" ? "drop" : "accept",
            };
      listing.chains.set(str(c.name), { ...(base === undefined ? {} : { base }), rules: [] });
    } else if ("set" in o) {
      const s = obj(o.set);
      const keyType = keyTypeFromJson(s.type) as SetKeyType;
      const interval = Array.isArray(s.flags) && s.flags.includes("interval");
      const spec: SetSpec = {
        name: str(s.name),
        keyType,
        interval,
        ...(s.comment === undefined ? {} : { comment: str(s.comment) }),
      };
      const elements = new Set<string>();
      for (const e of Array.isArray(s.elem) ? s.elem : []) {
        const text = elementFromJson(e);
        elements.add(keyType === "ifname" ? text : canonicalElement(keyType, text, interval));
      }
      listing.sets.set(spec.name, { spec, elements });
    } else if ("map" in o) {
      const m = obj(o.map);
      const spec: MapSpec = {
        name: str(m.name),
        keyType: "ifname",
        ...(m.comment === undefined ? {} : { comment: str(m.comment) }),
      };
      const elements = new Map<string, MapVerdict>();
      for (const e of Array.isArray(m.elem) ? m.elem : []) {
        if (Array.isArray(e)) elements.set(elementFromJson(e[0]), verdictFromJson(e[1]));
      }
      listing.maps.set(spec.name, { spec, elements });
    } else if ("rule" in o) {
      rules.push(obj(o.rule));
    }
  }
  for (const r of rules) {
    const chain = listing.chains.get(str(r.chain));
    chain?.rules.push({
      handle: Number(r.handle),
      ...(r.comment === undefined ? {} : { comment: str(r.comment) }),
    });
  }
  return listing;
}

export class NftCli implements Nft {
  private readonly netns: string | undefined;
  private readonly useNetlink: boolean;
  /** Key types of our sets and maps as we last saw or wrote them (for the netlink encoder). */
  private readonly targets = new Map<string, ElementTarget>();
  readonly stats: NftCliStats = { netlink: 0, script: 0, netlinkFallbacks: 0, unsupported: 0 };
  /** Bytes of the last transaction written (nft script, or netlink batch). */
  lastScriptBytes = 0;
  /** Why the last transaction did not go over netlink (diagnostics, tests), if it did not. */
  lastFallbackReason: string | undefined;

  /**
   * Whether a caller should split element updates into their own transaction to keep them off
   * nft's expensive element cache fill. False when whole transactions go over netlink: then a
   * mixed transaction is one cheap atomic batch, and splitting would only give up atomicity.
   */
  get elementsViaNetlink(): boolean {
    return false;
  }

  /** Whether transactions go over nfnetlink (with `nft -f` as the fallback). */
  get viaNetlink(): boolean {
    return this.useNetlink;
  }

  constructor(opts: NftCliOptions = {}) {
    this.netns = opts.netns;
    this.useNetlink =
      (opts.netlink ?? opts.netlinkElements ?? true) && process.env.CALICO_NFT_NETLINK !== "0";
  }

  async apply(tx: Transaction, opts: RenderOptions = {}): Promise<void> {
    if (this.useNetlink && (await this.applyNetlink(tx))) {
      this.stats.netlink++;
      return;
    }
    await this.applyScript(tx, opts);
    this.stats.script++;
    this.learn(tx);
  }

  /** True when the transaction was applied over nfnetlink; false: use `nft -f`. */
  private async applyNetlink(tx: Transaction): Promise<boolean> {
    const libc = await loadLibc();
    if (libc === undefined) {
      this.lastFallbackReason = "koffi (libc) is not available";
      return false;
    }
    // A big batch (a cold start: ~21 MiB) lives outside the JS heap and is freed once sent.
    const memory = tx.ops.length > NATIVE_BATCH_OPS ? libc.nativeMemory() : undefined;
    try {
      const batch = encodeTransaction(tx, this.targets, 1, memory);
      sendBatch(libc, this.netns, batch);
      this.lastScriptBytes = batch.bytes.length;
      this.targets.clear();
      for (const [n, t] of batch.targets) this.targets.set(n, t);
      this.lastFallbackReason = undefined;
      return true;
    } catch (e) {
      if (e instanceof UnsupportedNetlinkError) this.stats.unsupported++;
      else if (e instanceof NftNetlinkError) this.stats.netlinkFallbacks++;
      else throw e;
      // Nothing was applied (the kernel aborts a failed batch); nft -f applies or explains.
      this.lastFallbackReason = e.message;
      return false;
    } finally {
      // `batch.bytes` is not referenced past this point.
      memory?.releaseAll();
      // A big batch ends the agent's one allocation burst (the cold start): give what glibc
      // keeps of it back to the system, later — malloc_trim takes ~0.5 s on the bench table,
      // which the cold start need not wait for.
      if (memory !== undefined) setTimeout(() => libc.mallocTrim?.(), TRIM_DELAY_MS).unref();
    }
  }

  /** Track set/map key types from what we applied. */
  private learn(tx: Transaction): void {
    for (const o of tx.ops) {
      if (o.op === "delete-table") this.targets.clear();
      else if (o.op === "add-set")
        this.targets.set(o.set.name, { keyType: o.set.keyType, interval: o.set.interval, map: false });
      else if (o.op === "add-map")
        this.targets.set(o.map.name, { keyType: "ifname", interval: false, map: true });
      else if (o.op === "delete-set") this.targets.delete(o.set);
      else if (o.op === "delete-map") this.targets.delete(o.map);
    }
  }

  private async applyScript(tx: Transaction, opts: RenderOptions): Promise<void> {
    const script = renderTransaction(tx, opts);
    this.lastScriptBytes = Buffer.byteLength(script);
    if (script === "") return;
    const r = await run("nft", ["-f", "-"], { netns: this.netns, input: script });
    if (r.code !== 0) {
      const msg = r.stderr.trim() || r.stdout.trim();
      const m = /^[^:\n]*:(\d+):/m.exec(msg);
      const line = m === null ? undefined : Number(m[1]);
      const where = this.netns === undefined ? "" : ` in netns ${this.netns}`;
      throw new NftApplyError(`nft -f failed${where} (exit ${r.code}): ${msg}`, script, line);
    }
  }

  async list(): Promise<TableListing | undefined> {
    const r = await run("nft", ["-j", "-n", "list", "table", TABLE_FAMILY, TABLE_NAME], {
      netns: this.netns,
    });
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) {
        this.targets.clear();
        return undefined;
      }
      throw new CalicoError(
        NFT_LIST_FAILED,
        `Cannot list table ${TABLE_FAMILY} ${TABLE_NAME}: ${r.stderr.trim()}`,
      );
    }
    const listing = parseListing(r.stdout);
    this.targets.clear();
    for (const [n, st] of listing.sets)
      this.targets.set(n, { keyType: st.spec.keyType, interval: st.spec.interval, map: false });
    for (const n of listing.maps.keys())
      this.targets.set(n, { keyType: "ifname", interval: false, map: true });
    return listing;
  }
}
