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
import {
  UnsupportedNetlinkError,
  attr,
  nested,
  strz,
  u32attr,
  type Attr,
  type BatchWriter,
} from "./netlink.js";

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

/**
 * Fast paths for the element texts the dataplane writes (canonical addresses, prefixes and
 * `addr . proto . port`): parsed straight into key bytes, without the bigint values of
 * elements.ts — a cold start encodes ~74,000 elements, ~59,000 of them distinct. Anything else
 * (ranges, IPv4-in-IPv6 tails, malformed text) returns undefined and takes the general parser,
 * which also produces the error messages.
 */
function v4Into(text: string, from: number, to: number, out: Uint8Array, off: number): boolean {
  let part = 0;
  let digits = 0;
  let k = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return false; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return false;
    } else if (c === 46) {
      if (digits === 0 || k === 3) return false;
      out[off + k++] = part;
      part = 0;
      digits = 0;
    } else return false;
  }
  if (digits === 0 || k !== 3) return false;
  out[off + 3] = part;
  return true;
}

const hexValue = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
const groups = new Uint16Array(8);

function v6Into(text: string, from: number, to: number, out: Uint8Array, off: number): boolean {
  let n = 0;
  let gap = -1;
  let i = from;
  if (to - from >= 2 && text.charCodeAt(i) === 58) {
    if (text.charCodeAt(i + 1) !== 58) return false;
    gap = 0;
    i += 2;
  }
  while (i < to) {
    let v = 0;
    let d = 0;
    for (; i < to; i++) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      v = v * 16 + h;
      if (++d > 4) return false;
    }
    if (d === 0 || n === 8) return false;
    groups[n++] = v;
    if (i === to) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i < to && text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === to) return false;
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  const zeros = 8 - n;
  for (let j = 0, k = 0; j < 8; j++) {
    const v = gap >= 0 && j >= gap && j < gap + zeros ? 0 : groups[k++]!;
    out[off + 2 * j] = v >> 8;
    out[off + 2 * j + 1] = v & 0xff;
  }
  return true;
}

const addrInto = (family: 4 | 6, text: string, from: number, to: number, out: Uint8Array, off: number) =>
  family === 4 ? v4Into(text, from, to, out, off) : v6Into(text, from, to, out, off);

/** `n` parsed strictly as a decimal in [0, max], or -1. */
function decimal(text: string, from: number, to: number, max: number): number {
  if (from === to || to - from > 5 || (to - from > 1 && text.charCodeAt(from) === 48)) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v <= max ? v : -1;
}

/** A key as the fast path emits it: a view of a scratch buffer, valid until the next call. */
type EmitKey = (key: Uint8Array, end: boolean) => void;

const scratch = { lo: new Uint8Array(24), hi: new Uint8Array(24) };
const views = new Map<number, { lo: Uint8Array; hi: Uint8Array }>(
  [2, 4, 12, 16, 24].map((n) => [n, { lo: scratch.lo.subarray(0, n), hi: scratch.hi.subarray(0, n) }]),
);

/** The fast path: emits the key(s) of `text` and returns true, or emits nothing and returns false. */
function fastKeyInto(t: ElementTarget, text: string, emit: EmitKey): boolean {
  switch (t.keyType) {
    case "ipv4_addr":
    case "ipv6_addr": {
      const family = t.keyType === "ipv4_addr" ? 4 : 6;
      const bytes = family === 4 ? 4 : 16;
      const slash = text.indexOf("/");
      const end = slash < 0 ? text.length : slash;
      const { lo: key, hi } = views.get(bytes)!;
      if (!addrInto(family, text, 0, end, key, 0)) return false;
      const len = slash < 0 ? bytes * 8 : decimal(text, slash + 1, text.length, bytes * 8);
      if (len < 0) return false;
      if (!t.interval) {
        if (len !== bytes * 8) return false;
        emit(key, false);
        return true;
      }
      // [addr/len] is the start key (host bits cleared) and the end key start + 2^(bits-len).
      for (let bit = len; bit < bytes * 8; bit++) if (bit % 8 === 0) key[bit / 8] = 0;
      if (len % 8 !== 0) key[len >> 3]! &= 0xff << (8 - (len % 8));
      hi.set(key);
      let carry = len === 0 ? 0 : 1 << (8 - (((len - 1) % 8) + 1));
      for (let i = len === 0 ? -1 : (len - 1) >> 3; i >= 0 && carry > 0; i--) {
        const v = hi[i]! + carry;
        hi[i] = v & 0xff;
        carry = v >> 8;
      }
      // Reaching the top of the space (or /0) has no end key: the general path refuses it.
      if (carry > 0 || len === 0) return false;
      emit(key, false);
      emit(hi, true);
      return true;
    }
    case "ipv4_addr . inet_proto . inet_service":
    case "ipv6_addr . inet_proto . inet_service": {
      if (t.interval) return false;
      const bytes = t.keyType.startsWith("ipv4") ? 4 : 16;
      const a = text.indexOf(" . ");
      const b = a < 0 ? -1 : text.indexOf(" . ", a + 3);
      if (b < 0) return false;
      const key = views.get(bytes + 8)!.lo;
      key.fill(0);
      if (!addrInto(bytes === 4 ? 4 : 6, text, 0, a, key, 0)) return false;
      const proto = decimal(text, a + 3, b, 255);
      const port = decimal(text, b + 3, text.length, 65535);
      if (proto < 0 || port < 0) return false;
      key[bytes] = proto;
      key[bytes + 4] = port >> 8;
      key[bytes + 5] = port & 0xff;
      emit(key, false);
      return true;
    }
    case "ifname":
    case "inet_service":
      return false;
  }
}

/** The fast path's keys as raw elements, or undefined when it does not apply (tests). */
export function fastKey(t: ElementTarget, text: string): RawElement[] | undefined {
  const out: RawElement[] = [];
  const ok = fastKeyInto(t, text, (key, end) =>
    out.push(end ? { key: Buffer.from(key), end: true } : { key: Buffer.from(key) }),
  );
  return ok ? out : undefined;
}

function keyOf(t: ElementTarget, text: string): RawElement[] {
  return fastKey(t, text) ?? generalKey(t, text);
}

/** Emits the key(s) of one element text: the fast path, else the general parser (which throws). */
function emitKeys(t: ElementTarget, text: string, emit: EmitKey): void {
  if (fastKeyInto(t, text, emit)) return;
  for (const e of generalKey(t, text)) emit(e.key, e.end === true);
}

/** The raw key(s) of one element text: the fast path when it applies (exported for tests). */
export const elementKey = keyOf;

/** The general parser alone (elements.ts values), which the fast path must agree with. */
export function generalKey(t: ElementTarget, text: string): RawElement[] {
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

/** Key length of a set's elements (for the null end element of an interval add). */
const KEY_BYTES: Record<ElementTarget["keyType"], number> = {
  ipv4_addr: 4,
  ipv6_addr: 16,
  "ipv4_addr . inet_proto . inet_service": 12,
  "ipv6_addr . inet_proto . inet_service": 24,
  inet_service: 2,
  ifname: IFNAMSIZ,
};

/**
 * The NEWSETELEM/DELSETELEM messages of one element op, as nft 1.0.6 sends them (see the header
 * comment), written into `w` as each element is parsed — no intermediate key objects (a cold
 * start writes ~150,000 of them). `begin` writes a message header and returns its offset.
 */
export function writeElementOp(
  w: BatchWriter,
  begin: () => number,
  set: string,
  setId: number | undefined,
  t: ElementTarget,
  op: ElementOp,
): void {
  const isMapOp = op.kind === "add-map" || op.kind === "delete-map";
  if (t.map !== isMapOp) throw new UnsupportedElementError(`"${set}" is ${t.map ? "" : "not "}a map`);
  let msg = -1;
  let list = -1;
  let n = 0;
  const close = (): void => {
    if (msg < 0) return;
    w.endNested(list);
    w.endMessage(msg);
    msg = -1;
  };
  const element = (key: Uint8Array, end: boolean, verdict?: MapVerdict): void => {
    if (msg < 0 || n === ELEMENTS_PER_MESSAGE) {
      close();
      msg = begin();
      w.string(NFTA_SET_ELEM_LIST_TABLE, TABLE_NAME);
      w.string(NFTA_SET_ELEM_LIST_SET, set);
      if (setId !== undefined) w.u32(NFTA_SET_ELEM_LIST_SET_ID, setId);
      list = w.beginNested(NFTA_SET_ELEM_LIST_ELEMENTS);
      n = 0;
    }
    const el = w.beginNested(++n);
    if (end) w.u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
    const k = w.beginNested(NFTA_SET_ELEM_KEY);
    w.bytes(NFTA_DATA_VALUE, key);
    w.endNested(k);
    if (verdict !== undefined) w.attr(verdictData(NFTA_SET_ELEM_DATA, verdict));
    w.endNested(el);
  };
  if (op.kind === "add-map") {
    for (const [k, v] of op.elements) element(keyOf(t, k)[0]!.key, false, v);
  } else {
    const texts = op.kind === "delete-map" ? op.keys : op.elements;
    // nft adds the null end element with every interval add.
    if (op.kind === "add" && t.interval && texts.length > 0)
      element(new Uint8Array(KEY_BYTES[t.keyType]), true);
    for (const text of texts) emitKeys(t, text, element);
  }
  close();
}

/**
 * NEWSETELEM/DELSETELEM messages for `raw` (chunked), written into `w`: a set by name, or by id
 * when anonymous. `begin` writes each message's header (the caller numbers them) and returns
 * its offset. Elements are numbered 1, 2, … with flags before the key, as libnftnl writes them.
 */
export function writeElementMessages(
  w: BatchWriter,
  begin: () => number,
  set: string,
  raw: readonly RawElement[],
  setId?: number,
): void {
  for (let i = 0; i < raw.length; i += ELEMENTS_PER_MESSAGE) {
    const msg = begin();
    w.string(NFTA_SET_ELEM_LIST_TABLE, TABLE_NAME);
    w.string(NFTA_SET_ELEM_LIST_SET, set);
    if (setId !== undefined) w.u32(NFTA_SET_ELEM_LIST_SET_ID, setId);
    const list = w.beginNested(NFTA_SET_ELEM_LIST_ELEMENTS);
    const end = Math.min(raw.length, i + ELEMENTS_PER_MESSAGE);
    for (let j = i; j < end; j++) {
      const e = raw[j]!;
      const el = w.beginNested(j - i + 1);
      if (e.end === true) w.u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
      const key = w.beginNested(NFTA_SET_ELEM_KEY);
      w.bytes(NFTA_DATA_VALUE, e.key);
      w.endNested(key);
      if (e.verdict !== undefined) w.attr(verdictData(NFTA_SET_ELEM_DATA, e.verdict));
      w.endNested(el);
    }
    w.endNested(list);
    w.endMessage(msg);
  }
}
