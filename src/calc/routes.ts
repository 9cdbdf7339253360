/**
 * Routes (Felix's L3RouteResolver, reference/calico.md §1.4, DESIGN.md §3): a host route per
 * local workload address to its interface, a blackhole per IPAM block affine to this host,
 * and each other host's blocks (and addresses borrowed from any block) via that host's
 * address. Several sources may want one destination: a local workload beats a local block
 * beats a remote one; ties go to the first source ID.
 */
import { formatCIDR, parseIP, type CIDR } from "../api/net.js";
import { parseBlock, type Block } from "../ipam/block.js";
import { isObj, obj, specOf, str } from "./decode.js";
import type { DesiredRoute, RouteType } from "./types.js";

const PRIORITY: Readonly<Record<RouteType, number>> = {
  "local-workload": 0,
  "local-block": 1,
  "remote-block": 2,
};

/** Reads an IPAM block value (parsed JSON or its text); undefined when absent or unreadable. */
export function decodeBlock(value: unknown): Block | undefined {
  try {
    if (typeof value === "string") return parseBlock(value);
    if (!isObj(value) || value.deleted === true) return undefined;
    return parseBlock(JSON.stringify(value));
  } catch {
    return undefined;
  }
}

export interface NodeAddrs {
  v4?: string;
  v6?: string;
}

/** A Node's BGP addresses without their prefix length. */
export function decodeNodeAddrs(value: unknown): NodeAddrs | undefined {
  const spec = specOf(value);
  if (spec === undefined) return undefined;
  const bgp = obj(spec.bgp);
  const out: NodeAddrs = {};
  const strip = (s: string | undefined): string | undefined => {
    const ip = s === undefined ? undefined : parseIP(s.split("/")[0]!.trim());
    return ip === undefined ? undefined : s!.split("/")[0]!.trim();
  };
  const v4 = strip(str(bgp.ipv4Address));
  const v6 = strip(str(bgp.ipv6Address));
  if (v4 !== undefined) out.v4 = v4;
  if (v6 !== undefined) out.v6 = v6;
  return out;
}

const blockNode = (b: Block): string | undefined =>
  b.affinity?.startsWith("host:") === true ? b.affinity.slice("host:".length) : undefined;

/** Routes one block asks for: the block itself, plus /32s for addresses borrowed by other hosts. */
export function blockRoutes(
  b: Block,
  hostname: string,
  nodes: ReadonlyMap<string, NodeAddrs>,
): DesiredRoute[] {
  const owner = blockNode(b);
  const out: DesiredRoute[] = [];
  const remote = (dst: CIDR, node: string): DesiredRoute => {
    const r: DesiredRoute = { dst, type: "remote-block", node };
    const addrs = nodes.get(node);
    const gw = dst.family === 4 ? addrs?.v4 : addrs?.v6;
    if (gw !== undefined) r.gateway = gw;
    return r;
  };
  if (owner === hostname) out.push({ dst: b.cidr, type: "local-block" });
  else if (owner !== undefined) out.push(remote(b.cidr, owner));
  b.allocations.forEach((a, ordinal) => {
    if (a === null || a === undefined) return;
    const node = b.attributes[a]?.secondary?.node;
    if (node === undefined || node === owner || node === hostname) return;
    const hostBits = b.cidr.family === 4 ? 32 : 128;
    out.push(remote({ family: b.cidr.family, addr: b.cidr.addr + BigInt(ordinal), prefix: hostBits }, node));
  });
  return out;
}

/** Routes by destination, from many sources, the best one winning. */
export class RouteTable {
  /** dst key → source ID → route. */
  readonly #wanted = new Map<string, Map<string, DesiredRoute>>();
  /** source ID → dst keys it wants. */
  readonly #bySource = new Map<string, string[]>();
  readonly #dirty = new Set<string>();

  /** Replaces everything `source` wants. */
  setSource(source: string, routes: readonly DesiredRoute[]): void {
    for (const k of this.#bySource.get(source) ?? []) {
      const m = this.#wanted.get(k);
      m?.delete(source);
      if (m?.size === 0) this.#wanted.delete(k);
      this.#dirty.add(k);
    }
    const keys: string[] = [];
    for (const r of routes) {
      const k = formatCIDR(r.dst);
      keys.push(k);
      let m = this.#wanted.get(k);
      if (m === undefined) {
        m = new Map();
        this.#wanted.set(k, m);
      }
      m.set(source, r);
      this.#dirty.add(k);
    }
    if (keys.length > 0) this.#bySource.set(source, keys);
    else this.#bySource.delete(source);
  }

  /** Destinations whose winner may have changed since the last call, with the winner now. */
  takeDirty(): Map<string, DesiredRoute | undefined> {
    const out = new Map<string, DesiredRoute | undefined>();
    for (const k of this.#dirty) out.set(k, this.#best(k));
    this.#dirty.clear();
    return out;
  }

  #best(k: string): DesiredRoute | undefined {
    const m = this.#wanted.get(k);
    if (m === undefined) return undefined;
    let best: [string, DesiredRoute] | undefined;
    for (const e of m) {
      if (
        best === undefined ||
        PRIORITY[e[1].type] < PRIORITY[best[1].type] ||
        (PRIORITY[e[1].type] === PRIORITY[best[1].type] && e[0] < best[0])
      ) {
        best = e;
      }
    }
    return best?.[1];
  }
}
