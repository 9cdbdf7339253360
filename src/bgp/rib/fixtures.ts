/**
 * Test fixtures for the RIB: peers on 198.18.0.0/16 and fd00::/64, prefixes in 198.19.0.0/16
 * and fd00:19::/48 (documentation/benchmark ranges only).
 */
import { type CIDR, formatCIDR, parseCIDROrIP } from "../../api/net.js";
import {
  type AsPathSegment,
  type DecodedUpdate,
  MessageType,
  type PathAttributes,
  type UpdateMessage,
} from "../packet/index.js";
import type { Peer, Route } from "./types.js";

export const LOCAL_AS = 64512;

export function cidr(text: string): CIDR {
  const c = parseCIDROrIP(text);
  if (c === undefined) throw new Error(`bad CIDR ${text}`);
  return c;
}

/** 198.18.0.n as a BGP identifier. */
export const rid = (n: number): number => ((198 << 24) >>> 0) + (18 << 16) + n;

/** A peer at 198.18.0.n (and fd00::n); we are 198.18.0.1 / fd00::1, AS 64512. */
export function peer(n: number, o: Partial<Peer> = {}): Peer {
  return {
    id: `p${n}`,
    address: cidr(`198.18.0.${n}`),
    asn: o.type === "ebgp" ? 65000 + n : LOCAL_AS,
    bgpId: rid(n),
    type: "ibgp",
    rrClient: false,
    localAS: LOCAL_AS,
    localBgpId: rid(1),
    localAddresses: [cidr("198.18.0.1"), cidr("fd00::1")],
    ...o,
  };
}

export const LOCAL = { asn: LOCAL_AS, bgpId: rid(1), addresses: [cidr("198.18.0.1"), cidr("fd00::1")] };

export function route(p: Peer, attrs: PathAttributes, o: Partial<Route> = {}): Route {
  return {
    prefix: cidr("198.19.1.0/24"),
    peer: p,
    attributes: { origin: 0, asPath: [], ...attrs },
    nextHop: p.address,
    stale: false,
    receivedAt: 0,
    ...o,
  };
}

export const seq = (...asns: number[]): AsPathSegment[] => [{ type: "sequence", asns }];

/** An UPDATE announcing `prefixes` (IPv4 in the body, IPv6 in MP_REACH) with `attrs`. */
export function announce(prefixes: string[], nextHop: string, attrs: PathAttributes = {}): DecodedUpdate {
  const ps = prefixes.map(cidr);
  const v4 = ps.filter((p) => p.family === 4);
  const v6 = ps.filter((p) => p.family === 6);
  const attributes: PathAttributes = { origin: 0, asPath: [], ...attrs };
  const nh = cidr(nextHop);
  // The other family's next hop mirrors the host part: 198.18.0.n ↔ fd00::n.
  const n = Number(nh.addr & 0xffn);
  if (v4.length > 0) attributes.nextHop = nh.family === 4 ? nh : cidr(`198.18.0.${n}`);
  if (v6.length > 0)
    attributes.mpReach = { afi: 2, safi: 1, nextHops: [nh.family === 6 ? nh : cidr(`fd00::${n}`)], nlri: v6 };
  return { update: { type: MessageType.UPDATE, withdrawn: [], attributes, nlri: v4 } };
}

export function withdraw(prefixes: string[]): DecodedUpdate {
  const ps = prefixes.map(cidr);
  const v6 = ps.filter((p) => p.family === 6);
  const attributes: PathAttributes = {};
  if (v6.length > 0) attributes.mpUnreach = { afi: 2, safi: 1, withdrawn: v6 };
  return {
    update: { type: MessageType.UPDATE, withdrawn: ps.filter((p) => p.family === 4), attributes, nlri: [] },
  };
}

/** What a receiving peer would hold after the UPDATEs we sent: prefix text → attributes with
 * the next hop. Used to check that Adj-RIB-Out diffs replay to the Adj-RIB-Out. */
export class Mirror {
  readonly routes = new Map<string, { attributes: PathAttributes; nextHop: CIDR }>();
  apply(msgs: readonly UpdateMessage[]): void {
    for (const m of msgs) {
      const a = m.attributes;
      for (const p of m.withdrawn) this.routes.delete(formatCIDR(p));
      for (const p of a.mpUnreach?.withdrawn ?? []) this.routes.delete(formatCIDR(p));
      const base: PathAttributes = { ...a };
      delete base.mpReach;
      delete base.mpUnreach;
      delete base.nextHop;
      for (const p of m.nlri) this.routes.set(formatCIDR(p), { attributes: base, nextHop: a.nextHop! });
      for (const p of a.mpReach?.nlri ?? [])
        this.routes.set(formatCIDR(p), { attributes: base, nextHop: a.mpReach!.nextHops[0]! });
    }
  }
  clear(): void {
    this.routes.clear();
  }
}

/** The Adj-RIB-Out in the mirror's shape. */
export function outTable(
  entries: readonly { prefix: CIDR; attributes: PathAttributes; nextHop: CIDR }[],
): Map<string, { attributes: PathAttributes; nextHop: CIDR }> {
  return new Map(
    entries.map((e) => [formatCIDR(e.prefix), { attributes: e.attributes, nextHop: e.nextHop }]),
  );
}
