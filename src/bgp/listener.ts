/**
 * One listening socket per speaker (port 179 by default) that hands each accepted connection to
 * the session configured for its source address. A connection from an address we have no
 * session for gets Cease / Connection Rejected (RFC 4486 §4) and is closed.
 *
 * TCP MD5 (RFC 2385): the key of each peer that has a password is set on the listening socket,
 * keyed by the peer's address; the kernel drops unsigned or wrongly signed SYNs from that peer
 * and the accepted connection inherits the key (reference/lab-recipes.md §4).
 */
import { EventEmitter } from "node:events";
import net from "node:net";
import { fdOf, setSendTtl, setTcpMd5Sig } from "./md5.js";
import { BGP_PORT, CeaseSubcode, ErrorCode, HEADER_LENGTH, MessageType } from "./packet/types.js";
import type { Session } from "./session.js";

export interface ListenerOptions {
  /** Default 179. 0 picks a free port (see `port` after `listen()`). */
  port?: number;
  /** Default "::" (all addresses, IPv4-mapped included). */
  host?: string;
}

export interface ListenerEvents {
  /** A connection we refused, with why. */
  rejected: [{ address: string; reason: string }];
  error: [Error];
}

const normalize = (addr: string | undefined): string =>
  (addr ?? "").replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");

/** NOTIFICATION Cease / Connection Rejected, encoded by hand: the listener needs no codec. */
function connectionRejected(): Uint8Array {
  const b = new Uint8Array(HEADER_LENGTH + 2).fill(0xff, 0, 16);
  b[17] = HEADER_LENGTH + 2;
  b[18] = MessageType.NOTIFICATION;
  b[19] = ErrorCode.CEASE;
  b[20] = CeaseSubcode.CONNECTION_REJECTED;
  return b;
}

export class BgpListener extends EventEmitter<ListenerEvents> {
  private readonly server: net.Server;
  private readonly sessions = new Map<string, Session>();
  private readonly opts: ListenerOptions;

  constructor(opts: ListenerOptions = {}) {
    super();
    this.opts = opts;
    this.server = net.createServer((s) => this.onConnection(s));
    this.server.on("error", (err) => this.emit("error", err));
  }

  /** The bound port (after `listen()`). */
  get port(): number {
    const a = this.server.address();
    return typeof a === "object" && a ? a.port : 0;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onErr = (err: Error) =>
        reject(new Error(`Cannot listen for BGP on port ${this.opts.port ?? BGP_PORT}: ${err.message}`));
      this.server.once("error", onErr);
      this.server.listen({ port: this.opts.port ?? BGP_PORT, host: this.opts.host ?? "::" }, () => {
        this.server.removeListener("error", onErr);
        try {
          for (const s of this.sessions.values()) {
            this.applyKey(s, s.opts.password ?? "");
            this.applyGtsm(s);
          }
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        resolve();
      });
    });
  }

  /** Route connections from `session.peerAddress` to `session`. */
  add(session: Session): void {
    this.sessions.set(session.peerAddress, session);
    if (session.opts.password) this.applyKey(session, session.opts.password);
    this.applyGtsm(session);
  }

  remove(session: Session): void {
    if (this.sessions.get(session.peerAddress) !== session) return;
    this.sessions.delete(session.peerAddress);
    if (session.opts.password) this.applyKey(session, "");
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** GTSM peers need our SYN-ACK at TTL 255 (RFC 5082 §3); other peers do not mind it. The
   * minimum TTL is per connection (set by the session on accept), not on this shared socket. */
  private applyGtsm(session: Session): void {
    const fd = fdOf(this.server);
    if (fd === undefined || !session.opts.ttlSecurity) return;
    setSendTtl(fd, net.isIPv6(this.opts.host ?? "::") ? 6 : 4);
  }

  private applyKey(session: Session, key: string): void {
    const fd = fdOf(this.server);
    if (fd === undefined) return; // set in listen()
    if (!key && !session.opts.password) return;
    let peer = session.peerAddress;
    // An IPv4 peer reaching a dual-stack "::" socket arrives as ::ffff:a.b.c.d.
    const host = this.opts.host ?? "::";
    if (net.isIPv4(peer) && net.isIPv6(host)) peer = `::ffff:${peer}`;
    setTcpMd5Sig(fd, peer, key);
  }

  private onConnection(socket: net.Socket): void {
    socket.on("error", () => undefined);
    const address = normalize(socket.remoteAddress);
    const session = this.sessions.get(address);
    if (!session) {
      socket.end(connectionRejected());
      setTimeout(() => socket.destroy(), 1000).unref();
      this.emit("rejected", { address, reason: `no BGP peer configured for ${address}` });
      return;
    }
    if (!session.acceptConnection(socket)) {
      this.emit("rejected", { address, reason: `session for ${address} is ${session.state}` });
    }
  }
}
