/**
 * Rule expressions over nfnetlink: a model `Rule` (matches, statements, verdict) compiled to the
 * nf_tables expression list nft 1.0.6 itself generates for the rule text `render.ts` writes
 * (checked with `nft --debug=netlink` and strace of its sendmsg), plus the anonymous sets
 * (`{ a, b }`) the rule needs. The same bytes mean `nft list` prints our rules back exactly as
 * it prints rules it wrote itself, and handles are numbered the same (anonymous sets take one).
 *
 * What nft adds or rewrites that the model leaves implicit:
 * - `meta nfproto ipv4|ipv6` before an `ip`/`ip6`/`icmp` payload in our inet table and
 *   `meta l4proto 1|58` before an icmp payload, unless an earlier `==` match already set them;
 * - byte-aligned prefixes load fewer bytes (`/24` → a 3-byte load, no mask); others are
 *   load + bitwise mask + cmp; a range is `cmp gte` + `cmp lte` (`==`) or a range expression (`!=`);
 * - two adjacent `==` payload compares (th sport + th dport, icmp type + code) are one load when
 *   together at most 4 bytes;
 * - anonymous interval sets are sorted, adjacent/overlapping intervals merged, and start with the
 *   null end element; `ct state` and marks are host-order; `meta mark set m & a | b` is
 *   `bitwise (mask a & ~b, xor b)`.
 * Anything else throws UnsupportedNetlinkError: the caller then uses `nft -f`.
 */
import { familyBits, type IPFamily } from "../../api/net.js";
import { mergeCIDRs, MAX_COMMENT_BYTES, PORT_PROTOCOLS, checkName } from "./render.js";
import type { Match, Rule, Statement, Verdict, VmapDispatch } from "./model.js";
import { NFTA_DATA_VALUE, verdictData, type RawElement } from "./netlink-elements.js";
import { UnsupportedNetlinkError, attr, le32, nested, strz, u32attr, type Attr } from "./netlink.js";

// ---- nf_tables.h
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const META = { DREG: 1, KEY: 2, SREG: 3 };
const META_KEY = { mark: 3, iifname: 6, oifname: 7, nfproto: 15, l4proto: 16 } as const;
const CMP = { SREG: 1, OP: 2, DATA: 3 };
const CMP_OP = { eq: 0, neq: 1, lt: 2, lte: 3, gt: 4, gte: 5 } as const;
const PAYLOAD = { DREG: 1, BASE: 2, OFFSET: 3, LEN: 4 };
const BASE_NETWORK = 1;
const BASE_TRANSPORT = 2;
const BITWISE = { SREG: 1, DREG: 2, LEN: 3, MASK: 4, XOR: 5, OP: 6 };
const NFT_BITWISE_BOOL = 0;
const LOOKUP = { SET: 1, SREG: 2, DREG: 3, SET_ID: 4, FLAGS: 5 };
const NFT_LOOKUP_F_INV = 1;
const RANGE = { SREG: 1, OP: 2, FROM: 3, TO: 4 };
const CT = { DREG: 1, KEY: 2 };
const FIB = { DREG: 1, RESULT: 2, FLAGS: 3 };
const NFT_FIB_RESULT_ADDRTYPE = 3;
const NFTA_FIB_F_DADDR = 2;
const RTN_LOCAL = 2;
const IMMEDIATE = { DREG: 1, DATA: 2 };
const LOG = { PREFIX: 2, LEVEL: 5 };
const REJECT = { TYPE: 1, ICMP_CODE: 2 };
const NFT_REJECT_ICMPX_UNREACH = 2;
const NFT_REJECT_ICMPX_PORT_UNREACH = 1;
const NF_NAT_RANGE_PROTO_RANDOM_FULLY = 0x10;
const REG_VERDICT = 0;
const REG_1 = 1;
const CT_STATE_BITS = { invalid: 1, established: 2, related: 4, new: 8, untracked: 64 } as const;
const LOG_LEVELS = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit"];
const IFNAMSIZ = 16;

// ---- anonymous sets

/** An anonymous set a rule needs: created (NEWSET + NEWSETELEM) before the rule, looked up by id. */
export interface AnonSet {
  /** NFT_SET_* flags (ANONYMOUS|CONSTANT, |INTERVAL). */
  flags: number;
  keyType: number;
  keyLen: number;
  /** NFTA_SET_USERDATA: what nft needs to print the set back (byte order, typeof). */
  udata: Buffer;
  elements: RawElement[];
  /** Filled in by the transaction encoder. */
  id?: number;
}

export const NFT_SET_ANONYMOUS = 0x1;
export const NFT_SET_CONSTANT = 0x2;
export const NFT_SET_INTERVAL = 0x4;

/** nftnl set userdata TLVs (type u8, len u8, value). */
export const udataTlv = (type: number, value: Buffer): Buffer =>
  Buffer.concat([Buffer.from([type, value.length]), value]);
const UD_KEYBYTEORDER = 0;
const UD_MERGE = 2;
const UD_TYPEOF = 3;
const BYTEORDER_HOST = 1;
const BYTEORDER_BIG = 2;

/** `typeof` userdata of an anonymous set's key, as nft 1.0.6 writes it. */
function typeofUdata(expr: "meta" | "payload", fields: [number, number][]): Buffer {
  const inner = Buffer.concat(fields.map(([t, v]) => udataTlv(t, le32(v))));
  return udataTlv(UD_TYPEOF, Buffer.concat([udataTlv(0, le32(expr === "meta" ? 9 : 7)), udataTlv(1, inner)]));
}

function setUdata(byteorder: number, interval: boolean, typeOf: Buffer | undefined): Buffer {
  const parts = [udataTlv(UD_KEYBYTEORDER, le32(byteorder))];
  if (interval) parts.push(udataTlv(UD_MERGE, le32(1)));
  if (typeOf !== undefined) parts.push(typeOf);
  return Buffer.concat(parts);
}

/** Half-open byte-string intervals [lo, hi) → sorted, merged, with nft's leading null end element. */
function intervalElements(ranges: { lo: bigint; hi: bigint }[], len: number): RawElement[] {
  const max = 1n << BigInt(len * 8);
  const sorted = [...ranges].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const merged: { lo: bigint; hi: bigint }[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r.lo <= last.hi) last.hi = r.hi > last.hi ? r.hi : last.hi;
    else merged.push({ ...r });
  }
  if (merged[0]!.lo === 0n || merged[merged.length - 1]!.hi >= max)
    throw new UnsupportedNetlinkError("an anonymous interval set touching either end of its key space");
  const out: RawElement[] = [{ key: Buffer.alloc(len), end: true }];
  for (const r of merged) out.push({ key: bytesOf(r.lo, len) }, { key: bytesOf(r.hi, len), end: true });
  return out;
}

function bytesOf(v: bigint, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = len - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}
const valueOf = (b: Buffer): bigint => b.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);

// ---- expressions

const expr = (name: string, data: Attr[] | undefined): Attr =>
  nested(NFTA_LIST_ELEM, [
    attr(NFTA_EXPR_NAME, strz(name)),
    ...(data === undefined ? [] : [nested(NFTA_EXPR_DATA, data)]),
  ]);
const u32 = u32attr;
const dataValue = (type: number, v: Buffer): Attr => nested(type, [attr(NFTA_DATA_VALUE, v)]);

const metaLoad = (key: number, dreg = REG_1): Attr =>
  expr("meta", [u32(META.KEY, key), u32(META.DREG, dreg)]);
const cmp = (op: keyof typeof CMP_OP, v: Buffer): Attr =>
  expr("cmp", [u32(CMP.SREG, REG_1), u32(CMP.OP, CMP_OP[op]), dataValue(CMP.DATA, v)]);
const payload = (base: number, offset: number, len: number, dreg = REG_1): Attr =>
  expr("payload", [
    u32(PAYLOAD.DREG, dreg),
    u32(PAYLOAD.BASE, base),
    u32(PAYLOAD.OFFSET, offset),
    u32(PAYLOAD.LEN, len),
  ]);
/** `withOp`: nft writes NFTA_BITWISE_OP (boolean) for meta mark, not for prefixes or ct state. */
const bitwise = (mask: Buffer, xor: Buffer, withOp = false): Attr =>
  expr("bitwise", [
    u32(BITWISE.SREG, REG_1),
    u32(BITWISE.DREG, REG_1),
    ...(withOp ? [u32(BITWISE.OP, NFT_BITWISE_BOOL)] : []),
    u32(BITWISE.LEN, mask.length),
    dataValue(BITWISE.MASK, mask),
    dataValue(BITWISE.XOR, xor),
  ]);

/** A lookup: into a named set (id when created in this batch) or an anonymous one (`set`). */
export interface LookupRef {
  name: string;
  anon?: AnonSet;
}

/** Everything the transaction encoder needs from one rule. */
export interface EncodedRule {
  anonSets: AnonSet[];
  /** Builds NFTA_RULE_EXPRESSIONS once anonymous-set ids are known; `setId` maps named sets. */
  expressions: (setId: (name: string) => number | undefined) => Attr;
  userdata?: Buffer;
}

/** One step of the compiled rule; payload compares are kept apart so adjacent ones can merge. */
type Item =
  | { kind: "raw"; build: (setId: (name: string) => number | undefined) => Attr[] }
  | { kind: "pcmp"; base: number; offset: number; value: Buffer };

const raw = (...bufs: Attr[]): Item => ({ kind: "raw", build: () => bufs });

function lookupItem(pre: Attr[], set: LookupRef, inv: boolean, sreg = REG_1, dreg?: number): Item {
  return {
    kind: "raw",
    build: (setId) => {
      const id = set.anon !== undefined ? set.anon.id : setId(set.name);
      const parts = [u32(LOOKUP.SREG, sreg)];
      if (dreg !== undefined) parts.push(u32(LOOKUP.DREG, dreg));
      parts.push(attr(LOOKUP.SET, strz(set.name)));
      if (id !== undefined) parts.push(u32(LOOKUP.SET_ID, id));
      if (inv) parts.push(u32(LOOKUP.FLAGS, NFT_LOOKUP_F_INV));
      return [...pre, expr("lookup", parts)];
    },
  };
}

const ANON = "__set%d";

interface Ctx {
  network?: IPFamily;
  transport?: number;
  anonSets: AnonSet[];
  items: Item[];
}

function unsupported(what: string): never {
  throw new UnsupportedNetlinkError(`not encoded over netlink: ${what}`);
}

function needNetwork(ctx: Ctx, family: IPFamily): void {
  if (ctx.network === family) return;
  if (ctx.network !== undefined) unsupported(`an IPv${family} match after meta nfproto ipv${ctx.network}`);
  ctx.items.push(raw(metaLoad(META_KEY.nfproto), cmp("eq", Buffer.from([family === 4 ? 2 : 10]))));
  ctx.network = family;
}

function needTransport(ctx: Ctx, proto: number): void {
  if (ctx.transport === proto) return;
  if (ctx.transport !== undefined)
    unsupported(`a protocol ${proto} match after meta l4proto ${ctx.transport}`);
  ctx.items.push(raw(metaLoad(META_KEY.l4proto), cmp("eq", Buffer.from([proto]))));
  ctx.transport = proto;
}

function anon(ctx: Ctx, s: Omit<AnonSet, "flags"> & { interval: boolean }): LookupRef {
  const set: AnonSet = {
    flags: NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | (s.interval ? NFT_SET_INTERVAL : 0),
    keyType: s.keyType,
    keyLen: s.keyLen,
    udata: s.udata,
    elements: s.elements,
  };
  ctx.anonSets.push(set);
  return { name: ANON, anon: set };
}

const opName = (op: "==" | "!="): "eq" | "neq" => (op === "==" ? "eq" : "neq");

function ifnameBytes(name: string): { bytes: Buffer; wildcard: boolean } {
  const wildcard = name.endsWith("*");
  const bare = Buffer.from(wildcard ? name.slice(0, -1) : name, "utf8");
  if (bare.length === 0 || bare.length >= IFNAMSIZ || bare.includes(0x2a))
    unsupported(`interface name "${name}"`);
  return { bytes: bare, wildcard };
}

function ifnameMatch(ctx: Ctx, m: Extract<Match, { type: "ifname" }>): void {
  const key = m.dir === "iif" ? META_KEY.iifname : META_KEY.oifname;
  const names = [...new Set(m.names)];
  if (names.length === 0) unsupported("an empty ifname match");
  if (names.length === 1) {
    const { bytes, wildcard } = ifnameBytes(names[0]!);
    const v = wildcard ? bytes : Buffer.concat([bytes, Buffer.alloc(IFNAMSIZ - bytes.length)]);
    ctx.items.push(raw(metaLoad(key), cmp(opName(m.op), v)));
    return;
  }
  const parsed = names.map(ifnameBytes);
  const interval = parsed.some((p) => p.wildcard);
  const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(IFNAMSIZ - b.length)]);
  let elements: RawElement[];
  if (interval) {
    elements = intervalElements(
      parsed.map((p) => {
        const lo = valueOf(pad(p.bytes));
        // "b*": every name starting with b, [b00…, c00…); "a": [a00…, a00…01)
        const hi = p.wildcard ? lo + (1n << BigInt((IFNAMSIZ - p.bytes.length) * 8)) : lo + 1n;
        return { lo, hi };
      }),
      IFNAMSIZ,
    );
  } else {
    elements = parsed.map((p) => ({ key: pad(p.bytes) })); // in the given order, as nft sends them
  }
  const set = anon(ctx, {
    keyType: 0x29,
    keyLen: IFNAMSIZ,
    interval,
    udata: setUdata(BYTEORDER_HOST, interval, typeofUdata("meta", [[0, key]])),
    elements,
  });
  ctx.items.push(lookupItem([metaLoad(key)], set, m.op === "!="));
}

function l4protoMatch(ctx: Ctx, m: Extract<Match, { type: "l4proto" }>): void {
  const protos = [...new Set(m.protocols)];
  if (protos.length === 0 || protos.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    unsupported(`protocols ${m.protocols.join(",")}`);
  if (protos.length === 1) {
    ctx.items.push(raw(metaLoad(META_KEY.l4proto), cmp(opName(m.op), Buffer.from([protos[0]!]))));
    if (m.op === "==" && ctx.transport === undefined) ctx.transport = protos[0]!;
    return;
  }
  const set = anon(ctx, {
    keyType: 12,
    keyLen: 1,
    interval: false,
    udata: setUdata(BYTEORDER_HOST, false, typeofUdata("meta", [[0, META_KEY.l4proto]])),
    elements: protos.map((p) => ({ key: Buffer.from([p]) })),
  });
  ctx.items.push(lookupItem([metaLoad(META_KEY.l4proto)], set, m.op === "!="));
}

/** Network-header offset of an address field. */
const addrOffset = (family: IPFamily, dir: "saddr" | "daddr"): number =>
  family === 4 ? (dir === "saddr" ? 12 : 16) : dir === "saddr" ? 8 : 24;
/** nft's payload protocol ids and field numbers, for the `typeof` userdata. */
const PROTO_ID = { ip: 0x0c, ip6: 0x0d, th: 0x0b, icmp: 0x04, icmp6: 0x0e };

function addrMatch(ctx: Ctx, m: Extract<Match, { type: "addr" }>): void {
  if (m.cidrs.length === 0 || m.cidrs.some((c) => c.family !== m.family)) unsupported("address list");
  needNetwork(ctx, m.family);
  const bytes = familyBits(m.family) / 8;
  const off = addrOffset(m.family, m.dir);
  const cidrs = mergeCIDRs(m.cidrs);
  if (cidrs.length === 1) {
    const c = cidrs[0]!;
    const value = bytesOf(c.addr, bytes);
    if (c.prefix === bytes * 8) {
      if (m.op === "==") ctx.items.push({ kind: "pcmp", base: BASE_NETWORK, offset: off, value });
      else ctx.items.push(raw(payload(BASE_NETWORK, off, bytes), cmp("neq", value)));
    } else if (c.prefix % 8 === 0 && c.prefix > 0) {
      const v = value.subarray(0, c.prefix / 8);
      if (m.op === "==") ctx.items.push({ kind: "pcmp", base: BASE_NETWORK, offset: off, value: v });
      else ctx.items.push(raw(payload(BASE_NETWORK, off, v.length), cmp("neq", v)));
    } else {
      const mask = bytesOf(((1n << BigInt(c.prefix)) - 1n) << BigInt(bytes * 8 - c.prefix), bytes);
      ctx.items.push(
        raw(payload(BASE_NETWORK, off, bytes), bitwise(mask, Buffer.alloc(bytes)), cmp(opName(m.op), value)),
      );
    }
    return;
  }
  const fieldNo = m.family === 4 ? (m.dir === "saddr" ? 11 : 12) : m.dir === "saddr" ? 8 : 9;
  const set = anon(ctx, {
    keyType: m.family === 4 ? 7 : 8,
    keyLen: bytes,
    interval: true,
    udata: setUdata(
      BYTEORDER_BIG,
      true,
      typeofUdata("payload", [
        [0, m.family === 4 ? PROTO_ID.ip : PROTO_ID.ip6],
        [1, fieldNo],
      ]),
    ),
    elements: intervalElements(
      cidrs.map((c) => {
        const size = 1n << BigInt(bytes * 8 - c.prefix);
        return { lo: c.addr, hi: c.addr + size };
      }),
      bytes,
    ),
  });
  ctx.items.push(lookupItem([payload(BASE_NETWORK, off, bytes)], set, m.op === "!="));
}

function portMatch(ctx: Ctx, m: Extract<Match, { type: "port" }>): void {
  const off = m.dir === "sport" ? 0 : 2;
  const p16 = (n: number): Buffer => {
    if (!Number.isInteger(n) || n < 0 || n > 65535) unsupported(`port ${n}`);
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n, 0);
    return b;
  };
  const seen = new Map<string, { first: number; last: number }>();
  for (const r of m.ranges) {
    if (r.first > r.last) unsupported(`port range ${r.first}-${r.last}`);
    seen.set(`${r.first}-${r.last}`, r);
  }
  const ranges = [...seen.values()];
  if (ranges.length === 0) unsupported("an empty port match");
  if (ranges.length === 1) {
    const r = ranges[0]!;
    if (r.first === r.last) {
      if (m.op === "==")
        ctx.items.push({ kind: "pcmp", base: BASE_TRANSPORT, offset: off, value: p16(r.first) });
      else ctx.items.push(raw(payload(BASE_TRANSPORT, off, 2), cmp("neq", p16(r.first))));
    } else if (m.op === "==") {
      ctx.items.push(raw(payload(BASE_TRANSPORT, off, 2), cmp("gte", p16(r.first)), cmp("lte", p16(r.last))));
    } else {
      ctx.items.push(
        raw(
          payload(BASE_TRANSPORT, off, 2),
          expr("range", [
            u32(RANGE.SREG, REG_1),
            u32(RANGE.OP, CMP_OP.neq),
            dataValue(RANGE.FROM, p16(r.first)),
            dataValue(RANGE.TO, p16(r.last)),
          ]),
        ),
      );
    }
    return;
  }
  const set = anon(ctx, {
    keyType: 13,
    keyLen: 2,
    interval: true,
    udata: setUdata(
      BYTEORDER_BIG,
      true,
      typeofUdata("payload", [
        [0, PROTO_ID.th],
        [1, m.dir === "sport" ? 1 : 2],
      ]),
    ),
    elements: intervalElements(
      ranges.map((r) => ({ lo: BigInt(r.first), hi: BigInt(r.last) + 1n })),
      2,
    ),
  });
  ctx.items.push(lookupItem([payload(BASE_TRANSPORT, off, 2)], set, m.op === "!="));
}

/** nft's register for a concatenation field at byte offset `off`: 16-byte regs when aligned. */
const concatReg = (off: number): number => (off % 16 === 0 ? REG_1 + off / 16 : 8 + off / 4);

function addrPortSetMatch(ctx: Ctx, m: Extract<Match, { type: "addr-port-set" }>): void {
  needNetwork(ctx, m.family);
  const bytes = familyBits(m.family) / 8;
  ctx.items.push(
    lookupItem(
      [
        payload(BASE_NETWORK, addrOffset(m.family, m.dir), bytes, concatReg(0)),
        metaLoad(META_KEY.l4proto, concatReg(bytes)),
        payload(BASE_TRANSPORT, 2, 2, concatReg(bytes + 4)),
      ],
      { name: checkName("set", m.set) },
      m.op === "!=",
    ),
  );
}

function icmpMatch(ctx: Ctx, m: Extract<Match, { type: "icmp" }>): void {
  const byte = (n: number | undefined): void => {
    if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > 255)) unsupported(`icmp value ${n}`);
  };
  byte(m.icmpType);
  byte(m.code);
  needNetwork(ctx, m.family);
  needTransport(ctx, m.family === 4 ? 1 : 58);
  if (m.code === undefined) {
    if (m.op === "==")
      ctx.items.push({ kind: "pcmp", base: BASE_TRANSPORT, offset: 0, value: Buffer.from([m.icmpType]) });
    else ctx.items.push(raw(payload(BASE_TRANSPORT, 0, 1), cmp("neq", Buffer.from([m.icmpType]))));
    return;
  }
  if (m.op === "==") {
    ctx.items.push({
      kind: "pcmp",
      base: BASE_TRANSPORT,
      offset: 0,
      value: Buffer.from([m.icmpType, m.code]),
    });
    return;
  }
  const proto = m.family === 4 ? PROTO_ID.icmp : PROTO_ID.icmp6;
  const field = (n: number): Buffer =>
    Buffer.concat([udataTlv(0, le32(7)), udataTlv(1, typeofFields(proto, n))]);
  const set = anon(ctx, {
    keyType: m.family === 4 ? (14 << 6) | 32 : (29 << 6) | 33,
    keyLen: 8,
    interval: false,
    // typeof `icmp type . icmp code`: a concatenation (13) of two payload fields (type 1, code 2).
    udata: Buffer.concat([
      udataTlv(UD_KEYBYTEORDER, le32(0)),
      udataTlv(
        UD_TYPEOF,
        Buffer.concat([
          udataTlv(0, le32(13)),
          udataTlv(1, Buffer.concat([udataTlv(0, field(1)), udataTlv(1, field(2))])),
        ]),
      ),
    ]),
    elements: [{ key: Buffer.from([m.icmpType, 0, 0, 0, m.code, 0, 0, 0]) }],
  });
  ctx.items.push(
    lookupItem(
      [payload(BASE_TRANSPORT, 0, 1, concatReg(0)), payload(BASE_TRANSPORT, 1, 1, concatReg(4))],
      set,
      true,
    ),
  );
}

const typeofFields = (proto: number, field: number): Buffer =>
  Buffer.concat([udataTlv(0, le32(proto)), udataTlv(1, le32(field))]);

function ctStateMatch(ctx: Ctx, m: Extract<Match, { type: "ct-state" }>): void {
  if (m.states.length === 0) unsupported("an empty ct state match");
  const bits = m.states.reduce((acc, s) => acc | CT_STATE_BITS[s], 0);
  const load = expr("ct", [u32(CT.KEY, 0), u32(CT.DREG, REG_1)]);
  if (m.op === "==") ctx.items.push(raw(load, bitwise(le32(bits), le32(0)), cmp("neq", le32(0))));
  else ctx.items.push(raw(load, cmp("neq", le32(bits))));
}

function checkU32(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) unsupported(`${what} ${n}`);
}

function compileMatch(ctx: Ctx, m: Match): void {
  switch (m.type) {
    case "ifname":
      return ifnameMatch(ctx, m);
    case "nfproto":
      ctx.items.push(raw(metaLoad(META_KEY.nfproto), cmp("eq", Buffer.from([m.family === 4 ? 2 : 10]))));
      if (ctx.network === undefined) ctx.network = m.family;
      return;
    case "l4proto":
      return l4protoMatch(ctx, m);
    case "addr":
      return addrMatch(ctx, m);
    case "addr-set":
      needNetwork(ctx, m.family);
      ctx.items.push(
        lookupItem(
          [payload(BASE_NETWORK, addrOffset(m.family, m.dir), familyBits(m.family) / 8)],
          { name: checkName("set", m.set) },
          m.op === "!=",
        ),
      );
      return;
    case "port":
      return portMatch(ctx, m);
    case "addr-port-set":
      return addrPortSetMatch(ctx, m);
    case "icmp":
      return icmpMatch(ctx, m);
    case "ct-state":
      return ctStateMatch(ctx, m);
    case "mark":
      checkU32("mark mask", m.mask);
      checkU32("mark value", m.value);
      ctx.items.push(
        raw(metaLoad(META_KEY.mark), bitwise(le32(m.mask), le32(0), true), cmp(opName(m.op), le32(m.value))),
      );
      return;
    case "fib-daddr-local":
      ctx.items.push(
        raw(
          expr("fib", [
            u32(FIB.FLAGS, NFTA_FIB_F_DADDR),
            u32(FIB.RESULT, NFT_FIB_RESULT_ADDRTYPE),
            u32(FIB.DREG, REG_1),
          ]),
          cmp(opName(m.op), le32(RTN_LOCAL)),
        ),
      );
      return;
  }
}

function compileStatement(ctx: Ctx, s: Statement): void {
  switch (s.type) {
    case "counter":
      ctx.items.push(raw(expr("counter", [])));
      return;
    case "log": {
      if (Buffer.byteLength(s.prefix) > 127 || s.prefix.includes("\0"))
        unsupported(`log prefix "${s.prefix}"`);
      const parts = [attr(LOG.PREFIX, strz(s.prefix))];
      if (s.level !== undefined) {
        const level = LOG_LEVELS.indexOf(s.level);
        if (level < 0) unsupported(`log level "${s.level}"`);
        parts.push(u32(LOG.LEVEL, level));
      }
      ctx.items.push(raw(expr("log", parts)));
      return;
    }
    case "set-mark": {
      checkU32("mark clear bits", s.clear);
      checkU32("mark set bits", s.set);
      const mask = (~s.clear & ~s.set) >>> 0;
      ctx.items.push(
        raw(
          metaLoad(META_KEY.mark),
          bitwise(le32(mask), le32(s.set), true),
          expr("meta", [u32(META.KEY, META_KEY.mark), u32(META.SREG, REG_1)]),
        ),
      );
      return;
    }
    case "notrack":
      ctx.items.push(raw(expr("notrack", undefined)));
      return;
  }
}

const immediate = (v: {
  type: "accept" | "drop" | "return" | "continue" | "jump" | "goto";
  chain?: string;
}): Attr => expr("immediate", [u32(IMMEDIATE.DREG, REG_VERDICT), verdictData(IMMEDIATE.DATA, v)]);

function compileVerdict(ctx: Ctx, v: Verdict | VmapDispatch): void {
  switch (v.type) {
    case "accept":
    case "drop":
    case "return":
    case "continue":
      ctx.items.push(raw(immediate({ type: v.type })));
      return;
    case "jump":
    case "goto":
      ctx.items.push(raw(immediate({ type: v.type, chain: checkName("chain", v.chain) })));
      return;
    case "reject":
      ctx.items.push(
        raw(
          expr("reject", [
            u32(REJECT.TYPE, NFT_REJECT_ICMPX_UNREACH),
            attr(REJECT.ICMP_CODE, Buffer.from([NFT_REJECT_ICMPX_PORT_UNREACH])),
          ]),
        ),
      );
      return;
    case "masquerade":
      ctx.items.push(
        raw(expr("masq", v.fully_random === true ? [u32(1, NF_NAT_RANGE_PROTO_RANDOM_FULLY)] : [])),
      );
      return;
    case "vmap":
      ctx.items.push(
        lookupItem(
          [metaLoad(v.key === "iifname" ? META_KEY.iifname : META_KEY.oifname)],
          { name: checkName("map", v.map) },
          false,
          REG_1,
          REG_VERDICT,
        ),
      );
      return;
  }
}

/**
 * nft's payload merge: consecutive `==` payload compares that are adjacent in the packet and
 * together at most 4 bytes are one load and one compare (th sport + dport, icmp type + code).
 */
function mergePayloadCompares(items: Item[]): Item[] {
  const out: Item[] = [];
  for (const it of items) {
    const prev = out[out.length - 1];
    if (
      it.kind === "pcmp" &&
      prev?.kind === "pcmp" &&
      prev.base === it.base &&
      prev.offset + prev.value.length === it.offset &&
      prev.value.length + it.value.length <= 4
    ) {
      out[out.length - 1] = { ...prev, value: Buffer.concat([prev.value, it.value]) };
      continue;
    }
    if (
      it.kind === "pcmp" &&
      prev?.kind === "pcmp" &&
      it.base === prev.base &&
      it.offset + it.value.length === prev.offset
    )
      unsupported("adjacent payload matches in reverse order (nft sorts and merges them)");
    out.push(it);
  }
  return out;
}

/** Rule userdata: the comment TLV (NFTNL_UDATA_RULE_COMMENT), as `nft list` reads it back. */
function ruleUserdata(comment: string): Buffer {
  const b = Buffer.from(comment, "utf8");
  if (b.length > MAX_COMMENT_BYTES || b.includes(0)) unsupported(`comment "${comment}"`);
  return udataTlv(0, strz(comment));
}

/** Compile one rule (pure). */
export function encodeRule(rule: Rule): EncodedRule {
  const ctx: Ctx = { anonSets: [], items: [] };
  let protoOk = false;
  for (const m of rule.matches) {
    if (m.type === "l4proto")
      protoOk = m.op === "==" && m.protocols.length > 0 && m.protocols.every((p) => PORT_PROTOCOLS.has(p));
    if (m.type === "port" && !protoOk) unsupported(`th ${m.dir} without a port-protocol l4proto match`);
    compileMatch(ctx, m);
  }
  for (const s of rule.statements) compileStatement(ctx, s);
  if (rule.verdict !== undefined) compileVerdict(ctx, rule.verdict);
  if (ctx.items.length === 0) unsupported("an empty rule");
  const items = mergePayloadCompares(ctx.items);
  return {
    anonSets: ctx.anonSets,
    expressions: (setId) =>
      nested(
        4, // NFTA_RULE_EXPRESSIONS
        items.flatMap((it) =>
          it.kind === "raw"
            ? it.build(setId)
            : [payload(it.base, it.offset, it.value.length), cmp("eq", it.value)],
        ),
      ),
    ...(rule.comment === undefined ? {} : { userdata: ruleUserdata(rule.comment) }),
  };
}
