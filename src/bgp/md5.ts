/**
 * Socket options Node has no API for, set through libc with koffi (reference/lab-recipes.md §4):
 * - TCP MD5 signatures (RFC 2385) — `TCP_MD5SIG` keyed per peer address; on a listening socket
 *   the key is inherited by the connections it accepts;
 * - GTSM (RFC 5082) — send with TTL/hop limit 255 and accept only >= 254 (`IP_MINTTL`,
 *   `IPV6_MINHOPCOUNT`), i.e. a directly connected peer.
 *
 * Outgoing connections that need either must have the options set *before* the SYN, so
 * `connectSocket` creates the socket itself (socket/setsockopt/bind/connect, non-blocking),
 * waits for the handshake, then hands the fd to `new net.Socket({ fd })`.
 */
import { createRequire } from "node:module";
import net from "node:net";
import type * as Koffi from "koffi";
import { parseIP } from "../api/net.js";

// Linux constants (include/uapi/linux/{in,in6,tcp,socket}.h).
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const IPPROTO_IP = 0;
const IPPROTO_TCP = 6;
const IPPROTO_IPV6 = 41;
const IP_TTL = 2;
const IP_MINTTL = 21;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MINHOPCOUNT = 73;
const TCP_MD5SIG = 14;
const TCP_MD5SIG_MAXKEYLEN = 80;
const EINPROGRESS = 115;

/** RFC 5082 §3: the TTL we send and the lowest we accept from a directly connected peer. */
export const GTSM_TTL = 255;
export const GTSM_MIN_TTL = 254;

interface Libc {
  socket: (domain: number, type: number, proto: number) => number;
  setsockopt: (fd: number, level: number, name: number, val: Buffer, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  connect: (fd: number, addr: Buffer, len: number) => number;
  getpeername: (fd: number, addr: Buffer, len: Buffer) => number;
  close: (fd: number) => number;
  strerror: (errnum: number) => string;
}

// Loaded on first use, so a speaker without MD5/GTSM peers never needs the native module.
let koffiModule: typeof Koffi | undefined;
function koffi(): typeof Koffi {
  if (koffiModule) return koffiModule;
  try {
    koffiModule = createRequire(import.meta.url)("koffi") as typeof Koffi;
  } catch (err) {
    throw new Error(`TCP-MD5/GTSM need the koffi module, which failed to load: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return koffiModule;
}

let libc: Libc | undefined;
function lib(): Libc {
  if (libc) return libc;
  const l = koffi().load("libc.so.6");
  libc = {
    socket: l.func("int socket(int, int, int)") as Libc["socket"],
    setsockopt: l.func("int setsockopt(int, int, int, const void *, uint32_t)") as Libc["setsockopt"],
    getsockopt: l.func("int getsockopt(int, int, int, void *, void *)") as Libc["getsockopt"],
    bind: l.func("int bind(int, const void *, uint32_t)") as Libc["bind"],
    connect: l.func("int connect(int, const void *, uint32_t)") as Libc["connect"],
    getpeername: l.func("int getpeername(int, void *, void *)") as Libc["getpeername"],
    close: l.func("int close(int)") as Libc["close"],
    strerror: l.func("const char *strerror(int)") as Libc["strerror"],
  };
  return libc;
}

function errnoText(what: string): Error {
  const e = koffi().errno();
  return new Error(`${what} failed: ${lib().strerror(e)} (errno ${e})`);
}

/** struct sockaddr_in / sockaddr_in6 for an address and port. */
export function sockaddr(address: string, port: number): { buf: Buffer; family: 4 | 6 } {
  const ip = parseIP(address);
  if (!ip) throw new Error(`Cannot build a socket address from "${address}": not an IP address`);
  if (ip.family === 4) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    b.writeUInt32BE(Number(ip.value), 4);
    return { buf: b, family: 4 };
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  for (let i = 0; i < 16; i++) b[8 + i] = Number((ip.value >> BigInt(8 * (15 - i))) & 0xffn);
  return { buf: b, family: 6 };
}

/** struct tcp_md5sig (linux/tcp.h): sockaddr_storage, flags, prefixlen, keylen, ifindex, key[80].
 * An empty key removes the peer's key. */
function md5sig(peer: string, key: string): Buffer {
  const k = Buffer.from(key, "utf8");
  if (k.length > TCP_MD5SIG_MAXKEYLEN) {
    throw new Error(
      `TCP MD5 key for ${peer} is ${k.length} bytes: the kernel allows at most ${TCP_MD5SIG_MAXKEYLEN}`,
    );
  }
  const b = Buffer.alloc(216);
  sockaddr(peer, 0).buf.copy(b, 0);
  b.writeUInt16LE(k.length, 130);
  k.copy(b, 136);
  return b;
}

/** Set (or with key "" remove) the RFC 2385 key for `peer` on socket `fd`. */
export function setTcpMd5Sig(fd: number, peer: string, key: string): void {
  const b = md5sig(peer, key);
  if (lib().setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, b, b.length) !== 0) {
    throw errnoText(`setsockopt(TCP_MD5SIG) for peer ${peer}`);
  }
}

function setInt(fd: number, level: number, name: number, value: number, what: string): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  if (lib().setsockopt(fd, level, name, b, 4) !== 0) throw errnoText(`setsockopt(${what}=${value})`);
}

/** RFC 5082: send with TTL 255 and drop segments that arrive with TTL < 254. */
export function setGtsm(fd: number, family: 4 | 6): void {
  setSendTtl(fd, family);
  if (family === 4) setInt(fd, IPPROTO_IP, IP_MINTTL, GTSM_MIN_TTL, "IP_MINTTL");
  else setInt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, GTSM_MIN_TTL, "IPV6_MINHOPCOUNT");
}

/**
 * Send with TTL / hop limit 255. Needed on a listening socket too: the SYN-ACK to a GTSM peer
 * is sent with the listener's TTL, and the peer drops it otherwise. On a dual-stack socket
 * (`family` 6) both are set, since IPv4-mapped peers are sent IPv4 packets.
 */
export function setSendTtl(fd: number, family: 4 | 6): void {
  setInt(fd, IPPROTO_IP, IP_TTL, GTSM_TTL, "IP_TTL");
  if (family === 6) setInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, GTSM_TTL, "IPV6_UNICAST_HOPS");
}

/** The kernel fd behind a Node socket or server (undefined before it has one). */
export function fdOf(s: net.Socket | net.Server): number | undefined {
  const h = (s as unknown as { _handle?: { fd?: number } })._handle;
  return typeof h?.fd === "number" && h.fd >= 0 ? h.fd : undefined;
}

export interface ConnectOptions {
  remote: string;
  port: number;
  local?: string;
  md5Key?: string;
  gtsm?: boolean;
}

export interface PendingConnect {
  /** Resolves with the connected socket; rejects with the connect error. */
  socket: Promise<net.Socket>;
  /** Give up (closes the fd if not yet handed to Node). */
  cancel(): void;
}

/** Connect out with MD5 and/or GTSM set before the SYN. */
export function connectSocket(opts: ConnectOptions): PendingConnect {
  const c = lib();
  const remote = sockaddr(opts.remote, opts.port);
  const fd = c.socket(
    remote.family === 4 ? AF_INET : AF_INET6,
    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) {
    const err = errnoText("socket()");
    return { socket: Promise.reject(err), cancel: () => undefined };
  }
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const closeFd = () => {
    if (!done) {
      done = true;
      if (timer) clearInterval(timer);
      c.close(fd);
    }
  };
  const socket = new Promise<net.Socket>((resolve, reject) => {
    try {
      if (opts.md5Key) setTcpMd5Sig(fd, opts.remote, opts.md5Key);
      if (opts.gtsm) setGtsm(fd, remote.family);
      if (opts.local) {
        const l = sockaddr(opts.local, 0);
        if (c.bind(fd, l.buf, l.buf.length) !== 0) throw errnoText(`bind(${opts.local})`);
      }
      if (c.connect(fd, remote.buf, remote.buf.length) !== 0 && koffi().errno() !== EINPROGRESS) {
        throw errnoText(`connect(${opts.remote}:${opts.port})`);
      }
    } catch (err) {
      closeFd();
      reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    // Non-blocking connect: poll SO_ERROR / getpeername until the handshake is done.
    const val = Buffer.alloc(4);
    const len = Buffer.alloc(4);
    const peer = Buffer.alloc(128);
    timer = setInterval(() => {
      if (done) return;
      len.writeUInt32LE(4, 0);
      if (c.getsockopt(fd, SOL_SOCKET, SO_ERROR, val, len) === 0 && val.readInt32LE(0) !== 0) {
        const e = val.readInt32LE(0);
        closeFd();
        reject(new Error(`connect to ${opts.remote}:${opts.port} failed: ${c.strerror(e)} (errno ${e})`));
        return;
      }
      len.writeUInt32LE(128, 0);
      if (c.getpeername(fd, peer, len) === 0) {
        done = true;
        clearInterval(timer);
        resolve(new net.Socket({ fd, readable: true, writable: true }));
      }
    }, 10);
  });
  socket.catch(() => undefined);
  return { socket, cancel: closeFd };
}
