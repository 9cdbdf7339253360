/**
 * Routes we own (reference/calico.md §1.7): `/32` / `/128` per local workload to its
 * interface (scope link) and a `blackhole` per local IPAM block, all written with OUR route
 * protocol so a restarted agent finds exactly its own routes with `ip route show proto N` and
 * never touches another's (Felix uses 80, BIRD `bird` = 12, the kernel 2, boot 3).
 *
 * Reconcile: on a full apply read back v4 and v6 routes of our protocol in table main;
 * otherwise diff against what the last successful apply wrote (our belief), and do no I/O at
 * all when nothing changed. Two ways to the kernel, same plan:
 * - rtnetlink (`rtnetlink.ts`, libc via koffi): a RTM_GETROUTE dump per family filtered to our
 *   protocol, the delta as RTM_NEWROUTE (CREATE|REPLACE) / RTM_DELROUTE requests, many per
 *   sendmsg. No process is spawned (a spawn from the agent costs tens of ms).
 * - `ip` when koffi cannot load (or `via: "ip"`, `CALICO_RTNETLINK=0`): `ip -j route show
 *   proto N` and ONE `ip -force -batch -` of `route replace` / `route del` (lab-recipes §7).
 * Workloads come and go while we apply: a route whose interface does not exist (yet, or any
 * more) is not an error but WAITING — left out of the belief so every later apply tries it
 * again, and listed in `waiting` so the caller can schedule that apply (Felix waits for the
 * interface the same way) —, and a delete the kernel answers "no such route" (ESRCH: the
 * interface went and took its routes) is done. Any other failure does not stop the other
 * routes; the apply then throws ROUTE_APPLY_FAILED naming each failed route and why, and the
 * next apply reads the kernel back.
 */
import type { IPFamily } from "../api/net.js";
import { formatCIDR, parseCIDROrIP } from "../api/net.js";
import type { DesiredRoute } from "../calc/types.js";
import { CalicoError } from "../errors.js";
import { run, runOk } from "./netns.js";
import { loadLibc } from "./nft/netlink-elements.js";
import {
  NLM_F_CREATE,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  RTM_DELROUTE,
  RTM_GETROUTE,
  RTM_NEWROUTE,
  RtNetlink,
  type Libc,
  errnoText,
  parseAttrs,
  request,
  rtattr,
  u32,
} from "./rtnetlink.js";

/** Our route protocol: unassigned in /etc/iproute2/rt_protos (Felix 80, BIRD 12, zebra 11, ...). */
export const DEFAULT_ROUTE_PROTOCOL = 83;

/** One route as we program it; `key` identifies it for the diff (`<dst>` per table). */
export interface KernelRoute {
  dst: string;
  type: "unicast" | "blackhole";
  dev?: string;
}

const sameRoute = (a: KernelRoute, b: KernelRoute): boolean => a.type === b.type && a.dev === b.dev;

/** Canonical prefix text (`198.19.0.5/32`), so a read-back compares with the desired one. */
function canonicalDst(dst: string, family: IPFamily): string | undefined {
  const text = dst === "default" ? (family === 4 ? "0.0.0.0/0" : "::/0") : dst;
  const c = parseCIDROrIP(text);
  return c === undefined ? undefined : formatCIDR(c);
}

/** The kernel routes the desired routes need (remote routes belong to BGP). */
export function desiredKernelRoutes(routes: Iterable<DesiredRoute>, ipv6: boolean): Map<string, KernelRoute> {
  const out = new Map<string, KernelRoute>();
  for (const r of routes) {
    if (r.dst.family === 6 && !ipv6) continue;
    const dst = formatCIDR(r.dst);
    if (r.type === "local-workload" && r.interfaceName !== undefined)
      out.set(dst, { dst, type: "unicast", dev: r.interfaceName });
    else if (r.type === "local-block") {
      // A workload's own /32 beats the block's blackhole (longest match), so both can exist.
      if (!out.has(dst)) out.set(dst, { dst, type: "blackhole" });
    }
  }
  return out;
}

interface IpRouteJson {
  dst?: string;
  type?: string;
  dev?: string;
}

/** Parse `ip -j route show proto N` output of one family. */
export function parseRoutes(json: string, family: IPFamily): Map<string, KernelRoute> {
  const out = new Map<string, KernelRoute>();
  const trimmed = json.trim();
  if (trimmed === "") return out;
  for (const r of JSON.parse(trimmed) as IpRouteJson[]) {
    if (r.dst === undefined) continue;
    const dst = canonicalDst(r.dst, family);
    if (dst === undefined) continue;
    const route: KernelRoute = { dst, type: r.type === "blackhole" ? "blackhole" : "unicast" };
    if (r.dev !== undefined && route.type === "unicast") route.dev = r.dev;
    out.set(dst, route);
  }
  return out;
}

/** One change of the delta: replace (create or overwrite) or delete a route. */
export interface RouteChange {
  op: "replace" | "del";
  route: KernelRoute;
}

/** The changes turning `cur` into `want`: replace what differs, delete the rest. */
export function routeChanges(cur: Map<string, KernelRoute>, want: Map<string, KernelRoute>): RouteChange[] {
  const out: RouteChange[] = [];
  for (const [dst, r] of want) {
    const c = cur.get(dst);
    if (c === undefined || !sameRoute(c, r)) out.push({ op: "replace", route: r });
  }
  for (const [dst, c] of cur) if (!want.has(dst)) out.push({ op: "del", route: c });
  return out;
}

/** `198.19.0.5/32 dev cali1`, `blackhole 198.19.0.0/26`: a change in `ip route` terms. */
const describeRoute = (r: KernelRoute): string =>
  r.type === "blackhole" ? `blackhole ${r.dst}` : `${r.dst}${r.dev === undefined ? "" : ` dev ${r.dev}`}`;

/** A change as one `ip -batch` line (no `-6`: the family follows from the prefix). */
function routeLine({ op, route: r }: RouteChange, proto: number): string {
  if (op === "replace")
    return r.type === "blackhole"
      ? `route replace blackhole ${r.dst} proto ${proto}`
      : `route replace ${r.dst} dev ${r.dev!} proto ${proto} scope link`;
  return r.type === "blackhole"
    ? `route del blackhole ${r.dst} proto ${proto}`
    : `route del ${r.dst}${r.dev === undefined ? "" : ` dev ${r.dev}`} proto ${proto}`;
}

/** The `ip -batch` lines for `routeChanges(cur, want)`. */
export function routeBatch(
  cur: Map<string, KernelRoute>,
  want: Map<string, KernelRoute>,
  proto: number,
): string[] {
  return routeChanges(cur, want).map((ch) => routeLine(ch, proto));
}

/**
 * The failed lines of an `ip -force -batch -` run: `ip` prints a line's reason(s), then
 * `Command failed -:N`; returns line number (1-based) → reason.
 */
export function batchFailures(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  let reason: string[] = [];
  for (const line of stderr.split("\n")) {
    const m = /^Command failed -:(\d+)\s*$/.exec(line.trim());
    if (m === null) {
      if (line.trim() !== "") reason.push(line.trim());
      continue;
    }
    out.set(Number(m[1]), reason.join(" "));
    reason = [];
  }
  return out;
}

// ---------------------------------------------------------------- rtnetlink encoding
// linux/rtnetlink.h
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RTN_UNSPEC = 0;
const RTN_UNICAST = 1;
const RTN_BLACKHOLE = 6;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTM_F_CLONED = 0x200;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_TABLE = 15;
const NLMSG_HDRLEN = 16;
const RTMSG_LEN = 12;

function rtmsg(family: number, dstLen: number, proto: number, scope: number, type: number): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt8(dstLen, 1);
  b.writeUInt8(RT_TABLE_MAIN, 4);
  b.writeUInt8(proto, 5);
  b.writeUInt8(scope, 6);
  b.writeUInt8(type, 7);
  return b;
}

function addrBytes(family: IPFamily, v: bigint): Buffer {
  const b = Buffer.alloc(family === 4 ? 4 : 16);
  for (let i = b.length - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

/**
 * The RTM_NEWROUTE / RTM_DELROUTE request for one change. A replace of a workload route needs
 * its interface's index. A delete matches any type and scope (type 0, scope NOWHERE) but only
 * OUR protocol in table main: the kernel never deletes another protocol's route for it.
 */
export function encodeRoute(change: RouteChange, proto: number, seq: number, ifindex?: number): Buffer {
  const r = change.route;
  const c = parseCIDROrIP(r.dst);
  if (c === undefined)
    throw new CalicoError("ROUTE_APPLY_FAILED", `Cannot encode route "${r.dst}": not a CIDR`);
  const family = c.family === 4 ? AF_INET : AF_INET6;
  const dst = rtattr(RTA_DST, addrBytes(c.family, c.addr));
  if (change.op === "del")
    return request(
      RTM_DELROUTE,
      NLM_F_REQUEST,
      seq,
      Buffer.concat([rtmsg(family, c.prefix, proto, RT_SCOPE_NOWHERE, RTN_UNSPEC), dst]),
    );
  const body =
    r.type === "blackhole"
      ? [rtmsg(family, c.prefix, proto, RT_SCOPE_UNIVERSE, RTN_BLACKHOLE), dst]
      : [rtmsg(family, c.prefix, proto, RT_SCOPE_LINK, RTN_UNICAST), dst, rtattr(RTA_OIF, u32(ifindex ?? 0))];
  return request(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE, seq, Buffer.concat(body));
}

/** A route of a RTM_GETROUTE dump if it is ours (protocol, table main, not a cache clone). */
export function parseRouteMessage(
  msg: Buffer,
  proto: number,
  ifname: (index: number) => string | undefined,
): KernelRoute | undefined {
  const family = msg.readUInt8(NLMSG_HDRLEN);
  const dstLen = msg.readUInt8(NLMSG_HDRLEN + 1);
  const type = msg.readUInt8(NLMSG_HDRLEN + 7);
  if (msg.readUInt8(NLMSG_HDRLEN + 5) !== proto) return undefined;
  if ((msg.readUInt32LE(NLMSG_HDRLEN + 8) & RTM_F_CLONED) !== 0) return undefined;
  const attrs = parseAttrs(msg, NLMSG_HDRLEN + RTMSG_LEN);
  const table = attrs.get(RTA_TABLE)?.readUInt32LE(0) ?? msg.readUInt8(NLMSG_HDRLEN + 4);
  if (table !== RT_TABLE_MAIN) return undefined;
  const f: IPFamily = family === AF_INET ? 4 : 6;
  const raw = attrs.get(RTA_DST) ?? Buffer.alloc(f === 4 ? 4 : 16);
  let v = 0n;
  for (const byte of raw) v = (v << 8n) | BigInt(byte);
  const dst = formatCIDR({ family: f, addr: v, prefix: dstLen });
  if (type === RTN_BLACKHOLE) return { dst, type: "blackhole" };
  const route: KernelRoute = { dst, type: "unicast" };
  const oif = attrs.get(RTA_OIF);
  const dev = type === RTN_UNICAST && oif !== undefined ? ifname(oif.readUInt32LE(0)) : undefined;
  if (dev !== undefined) route.dev = dev;
  return route;
}

export interface RouteApplier {
  /**
   * Bring our routes to `want`; returns how many routes changed. `full`: read the kernel back
   * rather than trust the previous apply.
   */
  apply(want: Map<string, KernelRoute>, ipv6: boolean, full?: boolean): Promise<number>;
  /** Routes the last apply could not write because their interface did not exist. */
  readonly waiting?: readonly KernelRoute[];
}

/** What one way to the kernel did: the routes it started from, wrote, and left waiting. */
interface Outcome {
  cur: Map<string, KernelRoute>;
  changed: number;
  waiting: KernelRoute[];
}

const ESRCH = 3;
const ENODEV = 19;

export interface RouteManagerOptions {
  /** Network namespace (name or path); undefined: this process's. */
  netns?: string | undefined;
  /** `netlink` (default when koffi loads; `CALICO_RTNETLINK=0` turns it off) or `ip`. */
  via?: "netlink" | "ip";
}

/** Programs our routes (see the header comment); one instance per route protocol. */
export class RouteManager implements RouteApplier {
  /** What the last successful apply left in the kernel; undefined ⇒ read back. */
  private belief: Map<string, KernelRoute> | undefined;
  private waitingRoutes: KernelRoute[] = [];
  private readonly netns: string | undefined;
  private readonly via: "netlink" | "ip" | undefined;

  constructor(
    private readonly proto: number,
    opts: RouteManagerOptions = {},
  ) {
    this.netns = opts.netns;
    this.via = opts.via ?? (process.env.CALICO_RTNETLINK === "0" ? "ip" : undefined);
  }

  get waiting(): readonly KernelRoute[] {
    return this.waitingRoutes;
  }

  private get where(): string {
    return this.netns === undefined ? "" : ` in netns ${this.netns}`;
  }

  /** rtnetlink's libc, or undefined when the `ip` path is used. */
  private async libc() {
    if (this.via === "ip") return undefined;
    const c = await loadLibc();
    if (c === undefined && this.via === "netlink")
      throw new CalicoError("ROUTE_APPLY_FAILED", "rtnetlink needs koffi, which failed to load");
    return c;
  }

  /** Our routes in the kernel (table main, v4 and, with `ipv6`, v6). */
  async read(ipv6: boolean): Promise<Map<string, KernelRoute>> {
    const c = await this.libc();
    if (c === undefined) return this.readIp(ipv6);
    const nl = RtNetlink.open(c, this.netns);
    try {
      return this.readNetlink(nl, nl.links(), ipv6);
    } finally {
      nl.close();
    }
  }

  private readNetlink(nl: RtNetlink, links: Map<string, number>, ipv6: boolean): Map<string, KernelRoute> {
    const names = new Map<number, string>();
    for (const [name, index] of links) names.set(index, name);
    const out = new Map<string, KernelRoute>();
    for (const family of ipv6 ? [AF_INET, AF_INET6] : [AF_INET]) {
      // Strict checking: the kernel filters the dump to our protocol in table main.
      for (const m of nl.dump(RTM_GETROUTE, rtmsg(family, 0, this.proto, 0, RTN_UNSPEC))) {
        const r = parseRouteMessage(m, this.proto, (i) => names.get(i));
        if (r !== undefined) out.set(r.dst, r);
      }
    }
    return out;
  }

  private async readIp(ipv6: boolean): Promise<Map<string, KernelRoute>> {
    const out = new Map<string, KernelRoute>();
    for (const f of ipv6 ? ([4, 6] as const) : ([4] as const)) {
      const json = await runOk("ip", [`-${f}`, "-j", "route", "show", "proto", String(this.proto)], {
        netns: this.netns,
      });
      // Blackholes live in the same table; `show` lists them with type "blackhole".
      for (const [k, v] of parseRoutes(json, f)) out.set(k, v);
    }
    return out;
  }

  async apply(want: Map<string, KernelRoute>, ipv6: boolean, full = true): Promise<number> {
    // Fast path: nothing changed since the last successful apply ⇒ no I/O at all.
    if (!full && this.belief !== undefined && routeChanges(this.belief, want).length === 0) return 0;
    const belief = full ? undefined : this.belief;
    this.belief = undefined; // until this apply succeeds
    const c = await this.libc();
    const { cur, changed, waiting } =
      c === undefined ? await this.applyIp(want, ipv6, belief) : this.applyNetlink(c, want, ipv6, belief);
    // A waiting route keeps what the kernel had for its prefix, so the next diff writes it
    // again (or deletes the old one when it is no longer wanted).
    const next = new Map(want);
    for (const r of waiting) {
      const old = cur.get(r.dst);
      if (old === undefined) next.delete(r.dst);
      else next.set(r.dst, old);
    }
    this.belief = next;
    this.waitingRoutes = waiting;
    return changed;
  }

  private fail(failed: string[], changes: number): never {
    const shown =
      failed.slice(0, 10).join("; ") + (failed.length > 10 ? `; and ${failed.length - 10} more` : "");
    throw new CalicoError(
      "ROUTE_APPLY_FAILED",
      `${failed.length} of ${changes} route changes${this.where} failed (the others were applied): ${shown}`,
    );
  }

  private applyNetlink(
    c: Libc,
    want: Map<string, KernelRoute>,
    ipv6: boolean,
    belief: Map<string, KernelRoute> | undefined,
  ): Outcome {
    const nl = RtNetlink.open(c, this.netns);
    try {
      let links: Map<string, number>;
      let cur: Map<string, KernelRoute>;
      if (belief === undefined) {
        links = nl.links();
        cur = this.readNetlink(nl, links, ipv6);
      } else {
        // Incremental: only the interfaces of the routes being written.
        cur = belief;
        const devs = new Set<string>();
        for (const ch of routeChanges(cur, want))
          if (ch.op === "replace" && ch.route.dev !== undefined) devs.add(ch.route.dev);
        links = nl.links(devs);
      }
      const changes = routeChanges(cur, want);
      const failed: string[] = [];
      const waiting: KernelRoute[] = [];
      const requests: Buffer[] = [];
      const bySeq = new Map<number, RouteChange>();
      for (const ch of changes) {
        let ifindex: number | undefined;
        if (ch.op === "replace" && ch.route.type === "unicast") {
          ifindex = links.get(ch.route.dev!);
          if (ifindex === undefined) {
            waiting.push(ch.route);
            continue;
          }
        }
        const seq = nl.nextSeq();
        bySeq.set(seq, ch);
        requests.push(encodeRoute(ch, this.proto, seq, ifindex));
      }
      let refused = 0;
      for (const e of nl.send(requests)) {
        const ch = bySeq.get(e.seq);
        refused++;
        if (ch?.op === "del" && e.errno === ESRCH) continue; // already gone with its interface
        if (ch?.op === "replace" && e.errno === ENODEV) {
          waiting.push(ch.route); // the interface went between the lookup and the write
          continue;
        }
        const what = ch === undefined ? `request ${e.seq}` : `${ch.op} ${describeRoute(ch.route)}`;
        failed.push(`${what}: ${errnoText(e.errno)}${e.message === undefined ? "" : ` (${e.message})`}`);
      }
      if (failed.length > 0) this.fail(failed, changes.length);
      return { cur, changed: requests.length - refused, waiting };
    } finally {
      nl.close();
    }
  }

  private async applyIp(
    want: Map<string, KernelRoute>,
    ipv6: boolean,
    belief: Map<string, KernelRoute> | undefined,
  ): Promise<Outcome> {
    const cur = belief ?? (await this.readIp(ipv6));
    const all = routeChanges(cur, want);
    const waiting: KernelRoute[] = [];
    let changes = all;
    if (all.some((ch) => ch.op === "replace" && ch.route.type === "unicast")) {
      const json = await runOk("ip", ["-j", "link", "show"], { netns: this.netns });
      const names = new Set((JSON.parse(json) as { ifname: string }[]).map((l) => l.ifname));
      changes = all.filter((ch) => {
        if (ch.op !== "replace" || ch.route.type !== "unicast" || names.has(ch.route.dev!)) return true;
        waiting.push(ch.route);
        return false;
      });
    }
    if (changes.length === 0) return { cur, changed: 0, waiting };
    const lines = changes.map((ch) => routeLine(ch, this.proto));
    // -force: a failing line does not stop the rest; `ip` names the failing line on stderr.
    const r = await run("ip", ["-force", "-batch", "-"], {
      netns: this.netns,
      input: lines.join("\n") + "\n",
    });
    let refused = 0;
    if (r.code !== 0) {
      const failed: string[] = [];
      const byLine = batchFailures(r.stderr);
      for (const [n, reason] of byLine) {
        const ch = changes[n - 1];
        refused++;
        // Gone already: with its interface (`ip` cannot name the device), or by hand.
        if (ch?.op === "del" && /No such process|Cannot find device/i.test(reason)) continue;
        if (ch?.op === "replace" && /Cannot find device|No such device/i.test(reason)) {
          waiting.push(ch.route);
          continue;
        }
        failed.push(`${ch === undefined ? `line ${n}` : `${ch.op} ${describeRoute(ch.route)}`}: ${reason}`);
      }
      if (byLine.size === 0) failed.push(r.stderr.trim().replace(/\n/g, " ") || `ip exited ${r.code}`);
      if (failed.length > 0) this.fail(failed, changes.length);
    }
    return { cur, changed: changes.length - refused, waiting };
  }
}
