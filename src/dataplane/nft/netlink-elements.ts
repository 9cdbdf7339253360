/**
 * Set and map elements over raw nfnetlink, bypassing the `nft` binary: the element part of the
 * transaction encoder (netlink-tx.ts), which sends whole transactions.
 *
 * Why: nft 1.0.6 fills its cache with the elements of EVERY set in the table before it applies an
 * `add element`/`delete element` (one GETSETELEM dump per set: ~2,000 dumps, 2.7 MiB, 0.3–0.7 s
 * on the 2,072-set bench table), however small the change (docs/dataplane.md "Performance").
 * The kernel needs none of that: one nfnetlink batch (BATCH_BEGIN, NEWSETELEM/DELSETELEM…,
 * BATCH_END) is one atomic transaction, exactly as `nft -f` sends it.
 *
 * Encoding follows what nft 1.0.6 itself sends (checked with `nft -d netlink`):
 * - interval sets (rbtree): an element [lo, hi] is a start key `lo` and an end key `hi + 1`
 *   flagged NFT_SET_ELEM_INTERVAL_END; adds also carry the null end element `0 [end]` nft adds.
 *   An interval reaching the top of the address space has no end key; we refuse it (the caller
 *   falls back to `nft -f`);
 * - concatenations: each field padded to a 4-byte register (addr . proto(1→4) . port(2→4));
 * - `ifname` keys: 16 bytes (IFNAMSIZ), NUL padded; map data: a verdict (code, chain).
 *
 * The socket is opened inside the target namespace (setns on this thread, socket(), setns back):
 * a netlink socket belongs to the namespace it was created in.
 */
import { parseElement } from "./elements.js";
import { TABLE_NAME, type MapVerdict, type SetKeyType } from "./model.js";
import { UnsupportedNetlinkError, attr, nested, strz, u32attr, type Attr } from "./netlink.js";

/** `loadLibc` is imported from here by the route and link managers. */
export { NFT_NETLINK_FAILED, loadLibc } from "./netlink.js";

// linux/netfilter/nf_tables.h
export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_DELSETELEM = 14;
export const NFTA_SET_ELEM_LIST_TABLE = 1;
export const NFTA_SET_ELEM_LIST_SET = 2;
export const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
export const NFTA_SET_ELEM_LIST_SET_ID = 4;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_FLAGS = 3;
export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;
export const NFTA_VERDICT_CODE = 1;
export const NFTA_VERDICT_CHAIN = 2;
const NFT_SET_ELEM_INTERVAL_END = 1;
const NF_DROP = 0;
const NF_ACCEPT = 1;
const NFT_JUMP = -3;
const NFT_GOTO = -4;
const IFNAMSIZ = 16;
/** Elements per message: the ELEMENTS attribute's length is a u16. */
export const ELEMENTS_PER_MESSAGE = 256;

/** What the encoder must know about a set or map (learned from listings and our own applies). */
export interface ElementTarget {
  keyType: SetKeyType | "ifname";
  interval: boolean;
  /** A verdict map (`ifname : verdict`). */
  map: boolean;
}

export type ElementOp =
  | { kind: "add" | "delete"; set: string; elements: readonly string[] }
  | { kind: "add-map"; map: string; elements: readonly (readonly [string, MapVerdict])[] }
  | { kind: "delete-map"; map: string; keys: readonly string[] };

/** An element the encoder does not handle (the caller falls back to `nft -f`). */
export class UnsupportedElementError extends UnsupportedNetlinkError {
  override readonly name = "UnsupportedElementError";
}

function addrBytes(family: 4 | 6, v: bigint): Buffer {
  const n = family === 4 ? 4 : 16;
  const b = Buffer.alloc(n);
  for (let i = n - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

export interface RawElement {
  key: Buffer;
  end?: boolean;
  verdict?: MapVerdict;
}

function keyOf(t: ElementTarget, text: string): RawElement[] {
  if (t.keyType === "ifname") {
    const name = Buffer.from(text, "utf8");
    if (name.length === 0 || name.length >= IFNAMSIZ) throw new UnsupportedElementError(`ifname "${text}"`);
    const key = Buffer.alloc(IFNAMSIZ);
    name.copy(key);
    return [{ key }];
  }
  const v = parseElement(t.keyType, text, t.interval);
  switch (v.kind) {
    case "addr": {
      if (!t.interval) return [{ key: addrBytes(v.family, v.lo) }];
      const max = (1n << BigInt(v.family === 4 ? 32 : 128)) - 1n;
      if (v.hi === max) throw new UnsupportedElementError(`interval "${text}" ends at the top of the space`);
      return [{ key: addrBytes(v.family, v.lo) }, { key: addrBytes(v.family, v.hi + 1n), end: true }];
    }
    case "concat": {
      if (t.interval) throw new UnsupportedElementError("concatenated interval sets");
      const proto = Buffer.alloc(4);
      proto[0] = v.proto;
      const port = Buffer.alloc(4);
      port.writeUInt16BE(v.port, 0);
      return [{ key: Buffer.concat([addrBytes(v.family, v.addr), proto, port]) }];
    }
    case "port": {
      if (t.interval) throw new UnsupportedElementError("port interval sets");
      const port = Buffer.alloc(2);
      port.writeUInt16BE(v.port, 0);
      return [{ key: port }];
    }
    case "ifname":
      throw new UnsupportedElementError(`element "${text}"`);
  }
}

/** Verdict codes (linux/netfilter.h, nf_tables.h). */
export const VERDICT_CODES = {
  accept: NF_ACCEPT,
  drop: NF_DROP,
  continue: -1,
  return: -5,
  jump: NFT_JUMP,
  goto: NFT_GOTO,
} as const;

/** `type { VERDICT { CODE, CHAIN? } }`: a set element's data, or an immediate's. */
export function verdictData(type: number, v: { type: keyof typeof VERDICT_CODES; chain?: string }): Attr {
  const parts = [u32attr(NFTA_VERDICT_CODE, VERDICT_CODES[v.type])];
  if (v.chain !== undefined) parts.push(attr(NFTA_VERDICT_CHAIN, strz(v.chain)));
  return nested(type, [nested(NFTA_DATA_VERDICT, parts)]);
}

/** One list element; numbered 1, 2, … and flags before the key, as libnftnl writes them. */
function elementAttr(e: RawElement, index: number): Attr {
  const parts: Attr[] = [];
  if (e.end === true) parts.push(u32attr(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END));
  parts.push(nested(NFTA_SET_ELEM_KEY, [attr(NFTA_DATA_VALUE, e.key)]));
  if (e.verdict !== undefined) parts.push(verdictData(NFTA_SET_ELEM_DATA, e.verdict));
  return nested(index + 1, parts);
}

/** The raw elements of one element op, as nft 1.0.6 sends them (see the header comment). */
export function rawElements(t: ElementTarget, op: ElementOp): RawElement[] {
  const name = "set" in op ? op.set : op.map;
  const isMapOp = op.kind === "add-map" || op.kind === "delete-map";
  if (t.map !== isMapOp) throw new UnsupportedElementError(`"${name}" is ${t.map ? "" : "not "}a map`);
  let raw: RawElement[];
  if (op.kind === "add-map") raw = op.elements.map(([k, v]) => ({ ...keyOf(t, k)[0]!, verdict: v }));
  else if (op.kind === "delete-map") raw = op.keys.flatMap((k) => keyOf(t, k));
  else raw = op.elements.flatMap((e) => keyOf(t, e));
  // nft adds the null end element with every interval add.
  const add = op.kind === "add" || op.kind === "add-map";
  if (raw.length > 0 && add && t.interval) raw.unshift({ key: Buffer.alloc(raw[0]!.key.length), end: true });
  return raw;
}

/** NEWSETELEM/DELSETELEM bodies for `raw` (chunked); a set by name, or by id when anonymous. */
export function elementBodies(set: string, raw: readonly RawElement[], setId?: number): Attr[][] {
  const out: Attr[][] = [];
  for (let i = 0; i < raw.length; i += ELEMENTS_PER_MESSAGE) {
    const parts = [attr(NFTA_SET_ELEM_LIST_TABLE, strz(TABLE_NAME)), attr(NFTA_SET_ELEM_LIST_SET, strz(set))];
    if (setId !== undefined) parts.push(u32attr(NFTA_SET_ELEM_LIST_SET_ID, setId));
    parts.push(
      nested(
        NFTA_SET_ELEM_LIST_ELEMENTS,
        raw.slice(i, i + ELEMENTS_PER_MESSAGE).map((e, j) => elementAttr(e, j)),
      ),
    );
    out.push(parts);
  }
  return out;
}
