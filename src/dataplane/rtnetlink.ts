/**
 * A NETLINK_ROUTE socket inside a network namespace, through libc (koffi), for the route and
 * link managers: dumps (RTM_GETLINK, RTM_GETROUTE) and batches of requests (RTM_NEWROUTE,
 * RTM_DELROUTE) sent many to one sendmsg.
 *
 * Why not `ip`: a spawn from the agent costs tens of ms, and `ip -batch` of 2,000 routes plus
 * the `ip -j route show` read-back took 0.5–0.8 s in the agent's cold start. rtnetlink handles
 * every message of a sendmsg synchronously, in order, and a failing message does not stop the
 * ones after it (netlink_rcv_skb), so one send carries many routes and each failure comes back
 * as its own NLMSG_ERROR naming the request's sequence number. We ask for no ACK on success
 * (no NLM_F_ACK): errors are always reported, and 2,000 ACKs would only fill the receive buffer.
 */
import { getSystemErrorMap } from "node:util";
import { CalicoError } from "../errors.js";
import { inNetns } from "./netns.js";
import type { loadLibc } from "./nft/netlink-elements.js";

export type Libc = NonNullable<Awaited<ReturnType<typeof loadLibc>>>;

// linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, asm/socket.h
export const NLM_F_REQUEST = 0x1;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_CREATE = 0x400;
const NLM_F_DUMP = 0x300;
const NLM_F_ACK_TLVS = 0x200;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSGERR_ATTR_MSG = 1;
export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
const IFLA_IFNAME = 3;
/** The largest GSO packet a link builds / GRO packet it takes: IPv6 (and IPv4 up to 64 KiB)… */
const IFLA_GSO_MAX_SIZE = 41;
const IFLA_GRO_MAX_SIZE = 58;
/** … and IPv4 (Linux ≥ 6.3). Above 64 KiB both are BIG TCP. */
const IFLA_GSO_IPV4_MAX_SIZE = 63;
const IFLA_GRO_IPV4_MAX_SIZE = 64;
const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const NETLINK_GET_STRICT_CHK = 12;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const HDR = 16;
/** Bytes per sendmsg (well under the default 208 KiB send buffer). */
const SEND_CHUNK_BYTES = 32 * 1024;
/** A dump or a reply not complete after this long is an error, not a hung agent. */
const RECV_TIMEOUT_S = 5;

export const RTNETLINK_FAILED = "RTNETLINK_FAILED";

export const pad4 = (n: number): number => (n + 3) & ~3;

/** One netlink attribute (type, payload), padded. */
export function rtattr(type: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(pad4(4 + payload.length));
  b.writeUInt16LE(4 + payload.length, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}

export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};

/** The attributes of a message body from `offset` on: type → payload (first one wins). */
export function parseAttrs(msg: Buffer, offset: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let off = offset; off + 4 <= msg.length;) {
    const len = msg.readUInt16LE(off);
    if (len < 4 || off + len > msg.length) break;
    const type = msg.readUInt16LE(off + 2) & 0x3fff; // without NLA_F_NESTED / NET_BYTEORDER
    if (!out.has(type)) out.set(type, msg.subarray(off + 4, off + len));
    off += pad4(len);
  }
  return out;
}

/** `ENODEV (No such device)` for a positive errno. */
export function errnoText(errno: number): string {
  const e = getSystemErrorMap().get(-errno);
  return e === undefined ? `errno ${errno}` : `${e[0]} (${e[1]})`;
}

/** A request that the kernel refused: its sequence number, errno and extended-ACK message. */
export interface RequestError {
  seq: number;
  errno: number;
  message?: string;
}

/** One request to send: a full netlink message whose header carries `seq`. */
export function request(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const h = Buffer.alloc(HDR);
  h.writeUInt32LE(HDR + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  return Buffer.concat([h, body]);
}

/** A NETLINK_ROUTE socket created in `netns` (the namespace it belongs to for its whole life). */
export class RtNetlink {
  private seq = 1;
  private readonly buf = Buffer.alloc(256 * 1024);

  private constructor(
    private readonly c: Libc,
    private readonly fd: number,
    private readonly where: string,
  ) {}

  /** `protocol`: NETLINK_ROUTE, or NETLINK_NETFILTER (12) for a single `get`. */
  static open(c: Libc, netns: string | undefined, protocol = NETLINK_ROUTE): RtNetlink {
    const where = netns === undefined ? "" : ` in netns ${netns}`;
    const fd = inNetns(c, netns, () => c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
    if (fd < 0)
      throw new CalicoError(
        RTNETLINK_FAILED,
        `Cannot open an rtnetlink socket${where}: ${errnoText(c.errno())}`,
      );
    const one = u32(1);
    c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4); // errors without a copy of the request
    c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4); // ... but with the kernel's reason
    c.setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, one, 4); // dumps filtered in the kernel
    // Room for an error per request of a chunk (root only; without it the default buffer).
    c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, u32(4 << 20), 4);
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(RECV_TIMEOUT_S), 0);
    c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
    return new RtNetlink(c, fd, where);
  }

  close(): void {
    this.c.close(this.fd);
  }

  nextSeq(): number {
    return this.seq++;
  }

  private fail(what: string, errno: number): CalicoError {
    return new CalicoError(RTNETLINK_FAILED, `rtnetlink ${what}${this.where} failed: ${errnoText(errno)}`);
  }

  private sendAll(bytes: Buffer, what: string): void {
    const n = this.c.send(this.fd, bytes, bytes.length, 0);
    if (n !== bytes.length) throw this.fail(`send (${what})`, this.c.errno());
  }

  /** One request's reply: the message, or the errno the kernel answered with. */
  get(type: number, body: Buffer): Buffer | number {
    const seq = this.nextSeq();
    this.sendAll(request(type, NLM_F_REQUEST, seq, body), `get ${type}`);
    for (;;) {
      const n = this.c.recv(this.fd, this.buf, this.buf.length, 0);
      if (n < 0) throw this.fail(`get ${type}`, this.c.errno());
      for (let off = 0; off + HDR <= n;) {
        const len = this.buf.readUInt32LE(off);
        if (len < HDR || off + len > n) break;
        if (this.buf.readUInt32LE(off + 8) === seq)
          return this.buf.readUInt16LE(off + 4) === NLMSG_ERROR
            ? -this.buf.readInt32LE(off + HDR)
            : Buffer.from(this.buf.subarray(off, off + len));
        off += pad4(len);
      }
    }
  }

  /** Every message of a dump (each a slice from its netlink header on) until NLMSG_DONE. */
  dump(type: number, body: Buffer): Buffer[] {
    const seq = this.nextSeq();
    this.sendAll(request(type, NLM_F_REQUEST | NLM_F_DUMP, seq, body), `dump ${type}`);
    const out: Buffer[] = [];
    for (;;) {
      const n = this.c.recv(this.fd, this.buf, this.buf.length, 0);
      if (n < 0) throw this.fail(`dump ${type}`, this.c.errno());
      if (n === 0) throw this.fail(`dump ${type} (socket closed)`, 0);
      for (let off = 0; off + HDR <= n;) {
        const len = this.buf.readUInt32LE(off);
        if (len < HDR || off + len > n) break;
        const mtype = this.buf.readUInt16LE(off + 4);
        if (this.buf.readUInt32LE(off + 8) === seq) {
          if (mtype === NLMSG_DONE) return out;
          if (mtype === NLMSG_ERROR) {
            const err = -this.buf.readInt32LE(off + HDR);
            if (err !== 0) throw this.fail(`dump ${type}`, err);
          } else out.push(Buffer.from(this.buf.subarray(off, off + len)));
        }
        off += pad4(len);
      }
    }
  }

  /**
   * Send requests (each built with `request()`, none asking for an ACK) in chunks of up to 32 KiB
   * per sendmsg, and return the errors the kernel reported, one per failed request.
   */
  send(requests: readonly Buffer[]): RequestError[] {
    const errors: RequestError[] = [];
    for (let i = 0; i < requests.length;) {
      let bytes = 0;
      let j = i;
      while (j < requests.length && (j === i || bytes + requests[j]!.length <= SEND_CHUNK_BYTES))
        bytes += requests[j++]!.length;
      this.sendAll(Buffer.concat(requests.slice(i, j), bytes), `${j - i} requests`);
      this.drainErrors(errors);
      i = j;
    }
    return errors;
  }

  /** The kernel handled the chunk inside sendmsg: its error replies are queued by now. */
  private drainErrors(into: RequestError[]): void {
    for (;;) {
      const n = this.c.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT);
      if (n < 0) {
        const e = this.c.errno();
        if (e === EAGAIN) return;
        throw this.fail("reading replies", e); // ENOBUFS: replies lost, the outcome unknown
      }
      if (n === 0) return;
      for (let off = 0; off + HDR <= n;) {
        const len = this.buf.readUInt32LE(off);
        if (len < HDR || off + len > n) break;
        // nlmsgerr: int error, then the request's header (CAP_ACK: header only), then TLVs.
        if (this.buf.readUInt16LE(off + 4) === NLMSG_ERROR && len >= HDR + 4 + HDR) {
          const errno = -this.buf.readInt32LE(off + HDR);
          if (errno !== 0) {
            const e: RequestError = { seq: this.buf.readUInt32LE(off + HDR + 4 + 8), errno };
            if ((this.buf.readUInt16LE(off + 6) & NLM_F_ACK_TLVS) !== 0) {
              const msg = parseAttrs(this.buf.subarray(off, off + len), HDR + 4 + HDR).get(NLMSGERR_ATTR_MSG);
              if (msg !== undefined) e.message = msg.toString("utf8").replace(/\0.*$/s, "");
            }
            into.push(e);
          }
        }
        off += pad4(len);
      }
    }
  }

  /**
   * Interface name → ifindex: of `names` only (missing ones absent) when given and few — one
   * RTM_GETLINK per name, all in one sendmsg, ~1 ms — else of every link (one dump, 15–35 ms
   * for 2,000 links: each carries its full IPv4/IPv6 configuration).
   */
  links(names?: ReadonlySet<string>): Map<string, number> {
    const out = new Map<string, number>();
    if (names !== undefined && names.size <= LOOKUP_MAX) {
      const pending = new Set<number>();
      const reqs: Buffer[] = [];
      for (const name of names) {
        const seq = this.nextSeq();
        pending.add(seq);
        reqs.push(
          request(
            RTM_GETLINK,
            NLM_F_REQUEST,
            seq,
            Buffer.concat([Buffer.alloc(16), rtattr(IFLA_IFNAME, Buffer.from(`${name}\0`))]),
          ),
        );
      }
      if (reqs.length > 0) this.sendAll(Buffer.concat(reqs), `${reqs.length} link lookups`);
      while (pending.size > 0) {
        const n = this.c.recv(this.fd, this.buf, this.buf.length, 0);
        if (n < 0) throw this.fail("link lookup", this.c.errno());
        for (let off = 0; off + HDR <= n;) {
          const len = this.buf.readUInt32LE(off);
          if (len < HDR || off + len > n) break;
          const m = this.buf.subarray(off, off + len);
          if (pending.delete(m.readUInt32LE(8)) && m.readUInt16LE(4) !== NLMSG_ERROR) {
            const name = parseAttrs(m, HDR + 16).get(IFLA_IFNAME);
            if (name !== undefined)
              out.set(name.toString("utf8").replace(/\0.*$/s, ""), m.readInt32LE(HDR + 4));
          } // an NLMSG_ERROR (ENODEV): no such interface
          off += pad4(len);
        }
      }
      return out;
    }
    for (const m of this.dump(RTM_GETLINK, Buffer.alloc(16))) {
      const name = parseAttrs(m, HDR + 16).get(IFLA_IFNAME);
      if (name === undefined) continue;
      out.set(name.toString("utf8").replace(/\0.*$/s, ""), m.readInt32LE(HDR + 4));
    }
    return out;
  }
}

/** A link's GSO/GRO maximum sizes (bytes), as `RTM_GETLINK` reports them. */
export interface LinkPacketSizes {
  gso: number;
  gro: number;
  /** Absent on kernels before 6.3. */
  gsoIPv4?: number;
  groIPv4?: number;
}

const ifinfoByName = (name: string, attrs: Buffer[] = []): Buffer =>
  Buffer.concat([Buffer.alloc(16), rtattr(IFLA_IFNAME, Buffer.from(`${name}\0`)), ...attrs]);

/**
 * BIG TCP (Linux ≥ 6.3 for IPv4): let each named link build and take GSO/GRO packets of up to
 * `size` bytes for IPv6 and IPv4, so TCP hands the stack fewer, larger packets and every
 * per-packet cost on the path (routing, conntrack, nftables) is paid less often. A link whose
 * driver cannot (`tso_max_size` below `size`) refuses; so does a kernel before 6.3. Returns
 * the refusals by name; the links not named there are set.
 */
export function setLinkPacketSizes(
  rt: RtNetlink,
  names: readonly string[],
  size: number,
): { name: string; reason: string }[] {
  const u = (t: number): Buffer => rtattr(t, u32(size));
  const bySeq = new Map<number, string>();
  const reqs = names.map((name) => {
    const seq = rt.nextSeq();
    bySeq.set(seq, name);
    const attrs = [IFLA_GSO_MAX_SIZE, IFLA_GRO_MAX_SIZE, IFLA_GSO_IPV4_MAX_SIZE, IFLA_GRO_IPV4_MAX_SIZE].map(
      u,
    );
    return request(RTM_NEWLINK, NLM_F_REQUEST, seq, ifinfoByName(name, attrs));
  });
  return rt.send(reqs).map((e) => ({
    name: bySeq.get(e.seq) ?? "?",
    reason: e.message === undefined ? errnoText(e.errno) : `${e.message} (${errnoText(e.errno)})`,
  }));
}

/** A link's GSO/GRO sizes; undefined when there is no such link. */
export function linkPacketSizes(rt: RtNetlink, name: string): LinkPacketSizes | undefined {
  const m = rt.get(RTM_GETLINK, ifinfoByName(name));
  if (typeof m === "number") return undefined;
  const a = parseAttrs(m, HDR + 16);
  const n = (t: number): number | undefined => a.get(t)?.readUInt32LE(0);
  const v4 = { gsoIPv4: n(IFLA_GSO_IPV4_MAX_SIZE), groIPv4: n(IFLA_GRO_IPV4_MAX_SIZE) };
  return {
    gso: n(IFLA_GSO_MAX_SIZE) ?? 0,
    gro: n(IFLA_GRO_MAX_SIZE) ?? 0,
    ...(v4.gsoIPv4 === undefined ? {} : { gsoIPv4: v4.gsoIPv4 }),
    ...(v4.groIPv4 === undefined ? {} : { groIPv4: v4.groIPv4 }),
  };
}

/** Up to this many names are looked up one by one rather than dumped. */
const LOOKUP_MAX = 64;
