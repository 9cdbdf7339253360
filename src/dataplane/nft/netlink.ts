/**
 * nfnetlink primitives shared by the element encoder (netlink-elements.ts) and the transaction
 * encoder (netlink-tx.ts): attribute and message framing, the libc functions (koffi), and
 * sending one batch on a NETLINK_NETFILTER socket opened inside the target namespace.
 *
 * A batch (BATCH_BEGIN … BATCH_END) is one nf_tables transaction: the kernel processes it inside
 * sendmsg, queues an NLMSG_ERROR for every failing message (and an ACK for every message that
 * asked for one), and on any failure aborts the whole batch, so nothing of it is applied.
 */
import { CalicoError } from "../../errors.js";
import { inNetns } from "../netns.js";
import { errnoText } from "../rtnetlink.js";

export const NFT_NETLINK_FAILED = "NFT_NETLINK_FAILED";

// linux/netlink.h, linux/netfilter/nfnetlink.h
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
const NLMSG_ERROR = 2;
export const NFNL_MSG_BATCH_BEGIN = 16;
export const NFNL_MSG_BATCH_END = 17;
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFPROTO_INET = 1;
const NLA_F_NESTED = 0x8000;

/** Something an encoder cannot express (the caller falls back to `nft -f`). */
export class UnsupportedNetlinkError extends Error {
  override readonly name: string = "UnsupportedNetlinkError";
}

// ---------------------------------------------------------------- attribute encoding
//
// Attributes and messages are built as small trees and written once into the batch's single
// buffer: a cold-start batch has ~2 million attributes, and one Buffer per attribute (copied
// again at every nesting level) spent most of the encoding time in allocation and GC.

export const pad4 = (n: number): number => (n + 3) & ~3;

/** A netlink attribute: bytes, a big-endian u32, or nested attributes. `len` is padded. */
export interface Attr {
  t: number;
  len: number;
  p?: Buffer;
  n?: number;
  kids?: readonly Attr[];
}

export function attr(type: number, payload: Buffer): Attr {
  const len = 4 + payload.length;
  if (len > 0xffff) throw new UnsupportedNetlinkError(`netlink attribute ${type} too long (${len} bytes)`);
  return { t: type, len: pad4(len), p: payload };
}
/** An attribute holding a big-endian u32 (the common case: no Buffer for it). */
export const u32attr = (type: number, n: number): Attr => ({ t: type, len: 8, n: n >>> 0 });
export function nested(type: number, kids: readonly Attr[]): Attr {
  let len = 4;
  for (const k of kids) len += k.len;
  if (len > 0xffff) throw new UnsupportedNetlinkError(`netlink attribute ${type} too long (${len} bytes)`);
  return { t: type | NLA_F_NESTED, len, kids };
}
export const strz = (s: string): Buffer => Buffer.from(`${s}\0`, "utf8");
export const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};
/** A u32 in host (little-endian) order, as nft writes host-order values (marks, ct state). */
export const le32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};

/** Unpadded length of an attribute (what its header says). */
const rawLen = (a: Attr): number => (a.kids !== undefined ? a.len : a.n !== undefined ? 8 : 4 + a.p!.length);

function writeAttr(buf: Buffer, off: number, a: Attr): number {
  buf.writeUInt16LE(rawLen(a), off);
  buf.writeUInt16LE(a.t, off + 2);
  if (a.kids !== undefined) {
    let o = off + 4;
    for (const k of a.kids) o = writeAttr(buf, o, k);
  } else if (a.n !== undefined) buf.writeUInt32BE(a.n, off + 4);
  else {
    a.p!.copy(buf, off + 4);
    buf.fill(0, off + 4 + a.p!.length, off + a.len);
  }
  return off + a.len;
}

/**
 * Where a batch writer's buffer comes from. The default is an ordinary Buffer; `NftCli` writes a
 * big batch into memory it frees as soon as the batch is sent (`Libc.nativeMemory`): a 21 MiB
 * cold-start batch in a Buffer stayed resident until a later major GC, which an idle agent may
 * not run for a long time.
 */
export interface BatchMemory {
  alloc(bytes: number): Buffer;
  /** The buffer is not used any more (every view of it is dead after this). */
  release(buf: Buffer): void;
}

const heapMemory: BatchMemory = { alloc: (n) => Buffer.allocUnsafe(n), release: () => {} };

/**
 * Writes a batch straight into one growing buffer: messages and (nested) attributes are opened,
 * filled and closed in place, their lengths patched when they close. A cold-start batch is
 * 21 MiB in 63,167 messages; building a Buffer or an attribute tree per message, then
 * concatenating them, cost most of the encoding time in allocation and GC and held the batch
 * twice at the end.
 */
export class BatchWriter {
  private buf: Buffer;
  private off = 0;

  constructor(
    initialBytes = 64 * 1024,
    private readonly memory: BatchMemory = heapMemory,
  ) {
    this.buf = memory.alloc(initialBytes);
  }

  get length(): number {
    return this.off;
  }

  private reserve(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const b = this.memory.alloc(size);
    this.buf.copy(b, 0, 0, this.off);
    this.memory.release(this.buf);
    this.buf = b;
  }

  /** nlmsghdr + nfgenmsg; returns the message's offset for `endMessage`. */
  beginMessage(type: number, flags: number, seq: number, family: number, resId: number): number {
    this.reserve(20);
    const b = this.buf;
    const o = this.off;
    b.writeUInt32LE(0, o); // length: patched by endMessage
    b.writeUInt16LE(type, o + 4);
    b.writeUInt16LE(flags, o + 6);
    b.writeUInt32LE(seq, o + 8);
    b.writeUInt32LE(0, o + 12); // port id: the kernel
    b.writeUInt8(family, o + 16); // nfgenmsg
    b.writeUInt8(0, o + 17); // NFNETLINK_V0
    b.writeUInt16BE(resId, o + 18);
    this.off = o + 20;
    return o;
  }

  endMessage(start: number): void {
    this.buf.writeUInt32LE(this.off - start, start);
  }

  /** OR `flags` into the nlmsg_flags of the message at `start`. */
  addFlags(start: number, flags: number): void {
    this.buf.writeUInt16LE(this.buf.readUInt16LE(start + 6) | flags, start + 6);
  }

  /** Open a nested attribute; returns its offset for `endNested`. */
  beginNested(type: number): number {
    this.reserve(4);
    const o = this.off;
    this.buf.writeUInt16LE(type | NLA_F_NESTED, o + 2);
    this.off = o + 4;
    return o;
  }

  endNested(start: number): void {
    const len = this.off - start;
    const type = this.buf.readUInt16LE(start + 2) & ~NLA_F_NESTED;
    if (len > 0xffff) throw new UnsupportedNetlinkError(`netlink attribute ${type} too long (${len} bytes)`);
    this.buf.writeUInt16LE(len, start);
  }

  /** An attribute holding a big-endian u32. */
  u32(type: number, n: number): void {
    this.reserve(8);
    const o = this.off;
    this.buf.writeUInt16LE(8, o);
    this.buf.writeUInt16LE(type, o + 2);
    this.buf.writeUInt32BE(n >>> 0, o + 4);
    this.off = o + 8;
  }

  /** An attribute holding `p`, zero-padded to 4 bytes. */
  bytes(type: number, p: Uint8Array): void {
    const len = 4 + p.length;
    if (len > 0xffff) throw new UnsupportedNetlinkError(`netlink attribute ${type} too long (${len} bytes)`);
    const padded = pad4(len);
    this.reserve(padded);
    const o = this.off;
    this.buf.writeUInt16LE(len, o);
    this.buf.writeUInt16LE(type, o + 2);
    // TypedArray#set: Buffer#copy's own overhead dominates for the short values written here.
    this.buf.set(p, o + 4);
    for (let i = o + len; i < o + padded; i++) this.buf[i] = 0;
    this.off = o + padded;
  }

  /** An attribute holding `s` as a NUL-terminated UTF-8 string. */
  string(type: number, s: string): void {
    this.reserve(4 + s.length * 3 + 4);
    const o = this.off;
    const n = this.buf.write(s, o + 4, "utf8");
    this.buf[o + 4 + n] = 0;
    const len = 4 + n + 1;
    if (len > 0xffff) throw new UnsupportedNetlinkError(`netlink attribute ${type} too long (${len} bytes)`);
    const padded = pad4(len);
    this.buf.writeUInt16LE(len, o);
    this.buf.writeUInt16LE(type, o + 2);
    for (let i = o + len; i < o + padded; i++) this.buf[i] = 0;
    this.off = o + padded;
  }

  /** An attribute tree. */
  attr(a: Attr): void {
    this.reserve(a.len);
    this.off = writeAttr(this.buf, this.off, a);
  }

  /** Bytes already framed (attributes written by another writer). */
  raw(b: Buffer): void {
    this.reserve(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  /** What was written (a view of the writer's buffer, no copy). */
  result(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}

/** One nfnetlink message (nlmsghdr + nfgenmsg + attributes), written by `serialize`. */
export interface Msg {
  type: number;
  flags: number;
  seq: number;
  family: number;
  resId: number;
  body: readonly Attr[];
  len: number;
}

export function message(
  type: number,
  flags: number,
  seq: number,
  family: number,
  resId: number,
  body: readonly Attr[],
): Msg {
  let len = 20;
  for (const a of body) len += a.len;
  return { type, flags, seq, family, resId, body, len };
}

/** The messages of a batch as one buffer. */
export function serialize(msgs: readonly Msg[]): Buffer {
  let total = 0;
  for (const m of msgs) total += m.len;
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (const m of msgs) {
    buf.writeUInt32LE(m.len, off);
    buf.writeUInt16LE(m.type, off + 4);
    buf.writeUInt16LE(m.flags, off + 6);
    buf.writeUInt32LE(m.seq, off + 8);
    buf.writeUInt32LE(0, off + 12); // port id: the kernel
    buf.writeUInt8(m.family, off + 16); // nfgenmsg
    buf.writeUInt8(0, off + 17); // NFNETLINK_V0
    buf.writeUInt16BE(m.resId, off + 18);
    let o = off + 20;
    for (const a of m.body) o = writeAttr(buf, o, a);
    off = o;
  }
  return buf;
}

/** An nf_tables message of the inet family. */
export const nftMessage = (msgType: number, flags: number, seq: number, body: readonly Attr[]): Msg =>
  message((NFNL_SUBSYS_NFTABLES << 8) | msgType, flags, seq, NFPROTO_INET, 0, body);

export const batchBegin = (seq: number): Msg =>
  message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES, []);
export const batchEnd = (seq: number): Msg =>
  message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES, []);

export interface EncodedBatch {
  bytes: Buffer;
  /** Sequence numbers that must be acknowledged (their messages carry NLM_F_ACK). */
  seqs: number[];
  /** What each sequence number stands for, to name a failing operation ("add rule c1 #3"). */
  describe?: (seq: number) => string | undefined;
}

// ---------------------------------------------------------------- libc (koffi)

export interface Libc {
  socket: (domain: number, type: number, proto: number) => number;
  setsockopt: (fd: number, level: number, opt: number, val: Buffer, len: number) => number;
  send: (fd: number, buf: Buffer, len: number, flags: number) => number;
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number;
  open: (path: string, flags: number) => number;
  close: (fd: number) => number;
  setns: (fd: number, nstype: number) => number;
  errno: () => number;
  /** glibc's malloc_trim(0): give freed heap memory back to the system (undefined elsewhere). */
  mallocTrim?: () => void;
  /** Batch memory outside the JS heap, freed on release; `releaseAll` frees what is left. */
  nativeMemory: () => BatchMemory & { releaseAll(): void };
}

let libcPromise: Promise<Libc | undefined> | undefined;

function mallocTrim(lib: { func: (decl: string) => unknown }): Pick<Libc, "mallocTrim"> {
  try {
    const trim = lib.func("int malloc_trim(size_t)") as (pad: number) => number;
    return { mallocTrim: () => void trim(0) };
  } catch {
    return {}; // not glibc
  }
}

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
        ...mallocTrim(lib),
        nativeMemory: () => {
          const live = new Map<Buffer, unknown>();
          const release = (b: Buffer): void => {
            const p = live.get(b);
            if (p === undefined) return;
            live.delete(b);
            koffi.free(p);
          };
          return {
            alloc: (n: number) => {
              const p: unknown = koffi.alloc("uint8_t", n);
              const b = Buffer.from(koffi.view(p, n));
              live.set(b, p);
              return b;
            },
            release,
            releaseAll: () => {
              for (const b of [...live.keys()]) release(b);
            },
          };
        },
      };
    } catch {
      return undefined;
    }
  })();
  return libcPromise;
}

// ---------------------------------------------------------------- sending

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_NETFILTER = 12;
const SOL_SOCKET = 1;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
/** Receive buffer: errors and ACKs of a whole batch are queued before we read any. */
const RCVBUF_BYTES = 16 << 20;

let recvBuf: Buffer | undefined;

/** A failed batch: the kernel applied none of it. */
export class NftNetlinkError extends CalicoError {
  constructor(
    message: string,
    /** errno of the first failure (0: a transport problem, not the kernel refusing). */
    readonly errno: number,
    /** The operation that failed, when known. */
    readonly op?: string,
  ) {
    super(NFT_NETLINK_FAILED, message);
  }
}

const fail = (what: string, errno: number): NftNetlinkError =>
  new NftNetlinkError(`nfnetlink ${what} failed: ${errnoText(errno)}`, errno);

function openSocket(c: Libc, netns: string | undefined): number {
  const fd = inNetns(c, netns, () => c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (fd < 0) throw fail("socket", c.errno());
  return fd;
}

/**
 * Send one batch in one sendmsg and read every reply. Throws NftNetlinkError naming the first
 * failing operation (the kernel then aborted the whole batch: nothing applied), or when a message
 * that asked for an ACK got none.
 */
export function sendBatch(c: Libc, netns: string | undefined, batch: EncodedBatch): void {
  const fd = openSocket(c, netns);
  try {
    const u32 = (n: number): Buffer => le32(n);
    c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, u32(1), 4); // ACKs without a copy of the request
    // nft does the same: a cold-start batch is tens of MiB and must go in one piece.
    c.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, u32(Math.max(batch.bytes.length * 2, 1 << 20)), 4);
    c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, u32(RCVBUF_BYTES), 4);
    const sent = c.send(fd, batch.bytes, batch.bytes.length, 0);
    if (sent !== batch.bytes.length) throw fail(`send of ${batch.bytes.length} bytes`, c.errno());
    const acked = new Set<number>();
    let first: { seq: number; errno: number } | undefined;
    let errors = 0;
    // One receive buffer for the process: a fresh 256 KiB one per batch was external garbage
    // on every change. Replies are ACKs and errors (no request copy: NETLINK_CAP_ACK).
    const buf = (recvBuf ??= Buffer.allocUnsafe(64 * 1024));
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
        // nlmsgerr: int error, then the request's header (its seq at +8).
        if (type === NLMSG_ERROR && len >= 16 + 4 + 16) {
          const err = buf.readInt32LE(off + 16);
          const seq = buf.readUInt32LE(off + 16 + 4 + 8);
          if (err === 0) acked.add(seq);
          else {
            errors++;
            first ??= { seq, errno: -err };
          }
        }
        if (len < 16) break;
        off += pad4(len);
      }
    }
    if (first !== undefined) {
      const op = batch.describe?.(first.seq);
      const more = errors > 1 ? ` (and ${errors - 1} more failing messages)` : "";
      throw new NftNetlinkError(
        `nfnetlink batch refused by the kernel, nothing applied: ${op ?? `message ${first.seq}`}: ` +
          `${errnoText(first.errno)}${more}`,
        first.errno,
        op,
      );
    }
    const missing = batch.seqs.filter((s) => !acked.has(s));
    if (missing.length > 0)
      throw new NftNetlinkError(
        `nfnetlink batch: ${missing.length} message(s) not acknowledged (first ${batch.describe?.(missing[0]!) ?? missing[0]})`,
        0,
      );
  } finally {
    c.close(fd);
  }
}
