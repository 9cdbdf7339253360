/**
 * What one peer is told about one best path (RFC 4271 §9.2, §5.1; RFC 4456 §6–8): the
 * advertisement rules (never back to the source, iBGP split horizon, reflection) and the
 * attribute rewrites for eBGP and iBGP sessions. Pure.
 */
import type { CIDR } from "../../api/net.js";
import type { AsPathSegment, PathAttributes } from "../packet/index.js";
import { effectiveLocalPref } from "./decision.js";
import type { Peer, Route } from "./types.js";

/** An Adj-RIB-Out entry: attributes (no MP_*, no NEXT_HOP) and the next hop to send. */
export interface Advertisement {
  attributes: PathAttributes;
  nextHop: CIDR;
}

/** RFC 4271 §9.2 and RFC 4456 §6: may `route` be advertised to `to` at all? */
export function mayAdvertise(route: Route, to: Peer): boolean {
  if (route.peer.id === to.id) return false;
  if (!(to.families ?? [4, 6]).includes(route.prefix.family)) return false;
  if (to.type !== "ibgp" || route.peer.type !== "ibgp") return true;
  // iBGP-learned to iBGP: split horizon, unless we reflect (RFC 4456 §6): a client's routes go
  // to every iBGP peer, a non-client's only to clients.
  return route.peer.rrClient || to.rrClient;
}

function selfAddress(to: Peer, family: 4 | 6): CIDR | undefined {
  return (to.localAddresses ?? []).find((a) => a.family === family);
}

/** RFC 4271 §5.1.2: prepend our AS to the leftmost AS_SEQUENCE (a new one if it is full or
 * the path starts with a set); confederation segments are dropped at the AS boundary. */
export function prependAS(path: readonly AsPathSegment[], asn: number): AsPathSegment[] {
  const rest = path.filter((s) => s.type === "sequence" || s.type === "set");
  const first = rest[0];
  if (first !== undefined && first.type === "sequence" && first.asns.length < 255) {
    return [{ type: "sequence", asns: [asn, ...first.asns] }, ...rest.slice(1)];
  }
  return [{ type: "sequence", asns: [asn] }, ...rest];
}

export interface ExportOptions {
  defaultLocalPref: number;
}

/** The advertisement of `route` to `to`, before the export policy; undefined if none. */
export function exportRoute(route: Route, to: Peer, o: ExportOptions): Advertisement | undefined {
  if (!mayAdvertise(route, to)) return undefined;
  const src = route.attributes;
  const local = route.peer.type === "local";
  const self = selfAddress(to, route.prefix.family);
  const out: PathAttributes = { ...src };
  let nextHop: CIDR | undefined = route.nextHop;
  if (to.type === "ebgp") {
    out.asPath = prependAS(src.asPath ?? [], to.localAS);
    // RFC 4271 §5.1.5: LOCAL_PREF is not sent to external peers. §5.1.4: a MED received from
    // a neighbouring AS is not propagated to other neighbouring ASes.
    delete out.localPref;
    if (!local) delete out.med;
    // RFC 4456 §8: ORIGINATOR_ID and CLUSTER_LIST are non-transitive, local to the AS.
    delete out.originatorId;
    delete out.clusterList;
    if (local || to.keepOriginalNextHop !== true) nextHop = self;
  } else {
    // RFC 4271 §5.1.5: LOCAL_PREF is always included towards internal peers.
    out.localPref = effectiveLocalPref(route, o.defaultLocalPref);
    if (local || to.nextHopSelf === true) nextHop = self;
    if (route.peer.type === "ibgp") {
      // Reflection (RFC 4456 §8): ORIGINATOR_ID set once, our CLUSTER_ID prepended.
      out.originatorId = src.originatorId ?? route.peer.bgpId;
      out.clusterList = [to.clusterId ?? to.localBgpId, ...(src.clusterList ?? [])];
    }
  }
  if (nextHop === undefined) return undefined;
  return { attributes: out, nextHop };
}
