/**
 * Set and map element updates over raw nfnetlink, bypassing the `nft` binary.
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
import { CalicoError } from "../../errors.js";
import { netnsPath } from "../netns.js";
import { parseElement } from "./elements.js";
import { TABLE_NAME, type MapVerdict, type SetKeyType } from "./model.js";

export const NFT_NETLINK_FAILED = "NFT_NETLINK_FAILED";

// linux/netlink.h, linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CREATE = 0x400;
const NLMSG_ERROR = 2;
const NFNL_MSG_BATCH_BEGIN = 16;
const NFNL_MSG_BATCH_END = 17;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NFPROTO_INET = 1;
const NLA_F_NESTED = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_FLAGS = 3;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;
const NFT_SET_ELEM_INTERVAL_END = 1;
const NF_DROP = 0;
const NF_ACCEPT = 1;
const NFT_JUMP = -3;
const NFT_GOTO = -4;
const IFNAMSIZ = 16;
/** Elements per message: the ELEMENTS attribute's length is a u16. */
const ELEMENTS_PER_MESSAGE = 256;
/** A batch is sent in one sendmsg; beyond this the caller uses `nft -f`. */
export const MAX_BATCH_BYTES = 128 * 1024;

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
export class UnsupportedElementError extends Error {
  override readonly name = "UnsupportedElementError";
}

// ---------------------------------------------------------------- attribute encoding

const pad4 = (n: number): number => (n + 3) & ~3;

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  if (len > 0xffff) throw new UnsupportedElementError("netlink attribute too long");
  const b = Buffer.alloc(pad4(len));
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}
const nested = (type: number, parts: Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(parts));
const strz = (s: string): Buffer => Buffer.from(`${s}\0`, "utf8");
const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
};

function addrBytes(family: 4 | 6, v: bigint): Buffer {
  const n = family === 4 ? 4 : 16;
  const b = Buffer.alloc(n);
  for (let i = n - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

interface RawElement {
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

function verdictAttr(v: MapVerdict): Buffer {
  const code = { accept: NF_ACCEPT, drop: NF_DROP, jump: NFT_JUMP, goto: NFT_GOTO }[v.type];
  const parts = [attr(NFTA_VERDICT_CODE, be32(code))];
  if ("chain" in v) parts.push(attr(NFTA_VERDICT_CHAIN, strz(v.chain)));
  return nested(NFTA_SET_ELEM_DATA, [nested(NFTA_DATA_VERDICT, parts)]);
}

function elementAttr(e: RawElement): Buffer {
  const parts = [nested(NFTA_SET_ELEM_KEY, [attr(NFTA_DATA_VALUE, e.key)])];
  if (e.end === true) parts.push(attr(NFTA_SET_ELEM_FLAGS, be32(NFT_SET_ELEM_INTERVAL_END)));
  if (e.verdict !== undefined) parts.push(verdictAttr(e.verdict));
  return nested(NFTA_LIST_ELEM, parts);
}

function message(
  type: number,
  flags: number,
  seq: number,
  family: number,
  resId: number,
  body: Buffer,
): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt32LE(20 + body.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags, 6);
  head.writeUInt32LE(seq, 8);
  head.writeUInt32LE(0, 12); // port id: the kernel
  head.writeUInt8(family, 16); // nfgenmsg
  head.writeUInt8(0, 17); // NFNETLINK_V0
  head.writeUInt16BE(resId, 18);
  return Buffer.concat([head, body]);
}

export interface EncodedBatch {
  bytes: Buffer;
  /** Sequence numbers of the element messages (each asks for an ACK). */
  seqs: number[];
}

/**
 * One nfnetlink batch for `ops` (pure: unit-tested against bytes nft produces). Throws
 * UnsupportedElementError for anything it cannot encode, and when `target` does not know a name.
 */
export function encodeElementBatch(
  ops: readonly ElementOp[],
  target: (name: string) => ElementTarget | undefined,
  firstSeq = 1,
): EncodedBatch {
  let seq = firstSeq;
  const msgs: Buffer[] = [
    message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq++, 0, NFNL_SUBSYS_NFTABLES, Buffer.alloc(0)),
  ];
  const seqs: number[] = [];
  for (const op of ops) {
    const name = "set" in op ? op.set : op.map;
    const t = target(name);
    if (t === undefined) throw new UnsupportedElementError(`unknown set or map "${name}"`);
    const isMapOp = op.kind === "add-map" || op.kind === "delete-map";
    if (t.map !== isMapOp) throw new UnsupportedElementError(`"${name}" is ${t.map ? "" : "not "}a map`);
    const add = op.kind === "add" || op.kind === "add-map";
    let raw: RawElement[];
    if (op.kind === "add-map") raw = op.elements.map(([k, v]) => ({ ...keyOf(t, k)[0]!, verdict: v }));
    else if (op.kind === "delete-map") raw = op.keys.flatMap((k) => keyOf(t, k));
    else raw = op.elements.flatMap((e) => keyOf(t, e));
    if (raw.length === 0) continue;
    // nft adds the null end element with every interval add (see the header comment).
    if (add && t.interval) raw.unshift({ key: Buffer.alloc(raw[0]!.key.length), end: true });
    for (let i = 0; i < raw.length; i += ELEMENTS_PER_MESSAGE) {
      const body = Buffer.concat([
        attr(NFTA_SET_ELEM_LIST_TABLE, strz(TABLE_NAME)),
        attr(NFTA_SET_ELEM_LIST_SET, strz(name)),
        nested(NFTA_SET_ELEM_LIST_ELEMENTS, raw.slice(i, i + ELEMENTS_PER_MESSAGE).map(elementAttr)),
      ]);
      const type = (NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
      const flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE : 0);
      seqs.push(seq);
      msgs.push(message(type, flags, seq++, NFPROTO_INET, 0, body));
    }
  }
  msgs.push(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq++, 0, NFNL_SUBSYS_NFTABLES, Buffer.alloc(0)));
  return { bytes: Buffer.concat(msgs), seqs };
}

// ---------------------------------------------------------------- the socket (koffi)

interface Libc {
  socket: (domain: number, type: number, proto: number) => number;
  setsockopt: (fd: number, level: number, opt: number, val: Buffer, len: number) => number;
  send: (fd: number, buf: Buffer, len: number, flags: number) => number;
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number;
  open: (path: string, flags: number) => number;
  close: (fd: number) => number;
  setns: (fd: number, nstype: number) => number;
  errno: () => number;
}

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_NETFILTER = 12;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const MSG_DONTWAIT = 0x40;
const O_RDONLY = 0;
const O_CLOEXEC = 0x80000;
const CLONE_NEWNET = 0x40000000;
const EAGAIN = 11;

let libcPromise: Promise<Libc | undefined> | undefined;

/** libc through koffi, or undefined when koffi (an optional native package) cannot load. */
export function loadLibc(): Promise<Libc | undefined> {
  libcPromise ??= (async () => {
    try {
      const koffi = (await import("koffi")).default;
      const lib = koffi.load("libc.so.6");
      const f = <T>(decl: string): T => lib.func(decl) as unknown as T;
      return {
        socket: f("int socket(int, int, int)"),
        setsockopt: f("int setsockopt(int, int, int, void *, uint32_t)"),
        send: f("long send(int, void *, size_t, int)"),
        recv: f("long recv(int, void *, size_t, int)"),
        open: f("int open(const char *, int)"),
        close: f("int close(int)"),
        setns: f("int setns(int, int)"),
        errno: () => koffi.errno(),
      };
    } catch {
      return undefined;
    }
  })();
  return libcPromise;
}

function fail(what: string, errno: number): CalicoError {
  return new CalicoError(NFT_NETLINK_FAILED, `nfnetlink ${what} failed: errno ${errno}`);
}

/** A NETLINK_NETFILTER socket created inside `netns` (or this thread's namespace). */
function openSocket(c: Libc, netns: string | undefined): number {
  if (netns === undefined) {
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) throw fail("socket", c.errno());
    return fd;
  }
  const self = c.open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) throw fail("open /proc/thread-self/ns/net", c.errno());
  const target = c.open(netnsPath(netns), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    const e = c.errno();
    c.close(self);
    throw fail(`open ${netnsPath(netns)}`, e);
  }
  try {
    if (c.setns(target, CLONE_NEWNET) !== 0) throw fail("setns", c.errno());
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    const e = c.errno();
    // Back to our own namespace before anything else runs on this thread.
    if (c.setns(self, CLONE_NEWNET) !== 0) throw fail("setns back", c.errno());
    if (fd < 0) throw fail("socket", e);
    return fd;
  } finally {
    c.close(target);
    c.close(self);
  }
}

/**
 * Send one batch and check that every element message was acknowledged. The kernel processes a
 * nfnetlink batch inside sendmsg, so every reply is queued when send returns. Any error aborts the
 * whole batch in the kernel (nothing applied); the error names the errno of the first failure.
 */
export function sendBatch(c: Libc, netns: string | undefined, batch: EncodedBatch): void {
  const fd = openSocket(c, netns);
  try {
    const one = be32(1).reverse(); // int 1, host (little-endian) order
    c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4); // ACKs without a copy of the request
    const sent = c.send(fd, batch.bytes, batch.bytes.length, 0);
    if (sent !== batch.bytes.length) throw fail("send", c.errno());
    const acked = new Set<number>();
    let firstError = 0;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = c.recv(fd, buf, buf.length, MSG_DONTWAIT);
      if (n < 0) {
        const e = c.errno();
        if (e === EAGAIN) break;
        throw fail("recv", e);
      }
      if (n === 0) break;
      for (let off = 0; off + 16 <= n;) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        // nlmsgerr: int error, then the request's header (its seq at +8); CAP_ACK: header only.
        if (type === NLMSG_ERROR && len >= 16 + 4 + 16) {
          const err = buf.readInt32LE(off + 16);
          const seq = buf.readUInt32LE(off + 16 + 4 + 8); // the echoed request header's seq
          if (err === 0) acked.add(seq);
          else if (firstError === 0) firstError = -err;
        }
        if (len < 16) break;
        off += pad4(len);
      }
    }
    if (firstError !== 0) throw fail("element batch", firstError);
    if (batch.seqs.some((s) => !acked.has(s))) throw fail("element batch (missing acknowledgement)", 0);
  } finally {
    c.close(fd);
  }
}
