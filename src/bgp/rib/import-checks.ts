/**
 * Import processing that needs the session (RFC 4271 §5.1.5, §6.3, §9.1.1; RFC 4456 §8):
 * run on every announced route before it enters the Adj-RIB-In.
 */
import type { CIDR } from "../../api/net.js";
import type { PathAttributes } from "../packet/index.js";
import { type Peer, RejectReason } from "./types.js";

export type ImportResult = { attributes: PathAttributes } | { reject: RejectReason };

/** Check and normalise one UPDATE's attributes (without MP_* and NEXT_HOP) from `peer`. */
export function importAttributes(peer: Peer, a: PathAttributes): ImportResult {
  const path = a.asPath ?? [];
  // RFC 4271 §9.1.2 loop detection: a route carrying our own AS is excluded.
  if (path.some((s) => s.asns.includes(peer.localAS))) return { reject: RejectReason.AS_PATH_LOOP };
  if (peer.type === "ebgp") {
    // RFC 4271 §6.3: the leftmost AS must be the eBGP peer's (error handling: RFC 7606 §7.2
    // treat-as-withdraw, which is what a rejection here amounts to).
    const first = path[0];
    if (first === undefined || first.type !== "sequence" || first.asns[0] !== peer.asn)
      return { reject: RejectReason.FIRST_AS };
  }
  // RFC 4456 §8: our own ORIGINATOR_ID or CLUSTER_ID means the route looped back to us.
  if (a.originatorId !== undefined && a.originatorId === peer.localBgpId)
    return { reject: RejectReason.ORIGINATOR_ID };
  const clusterId = peer.clusterId ?? peer.localBgpId;
  if (a.clusterList?.includes(clusterId) === true) return { reject: RejectReason.CLUSTER_LIST };
  if (
    peer.type === "ebgp" &&
    (a.localPref !== undefined || a.originatorId !== undefined || a.clusterList !== undefined)
  ) {
    // RFC 4271 §5.1.5: LOCAL_PREF from an external peer MUST be ignored. ORIGINATOR_ID and
    // CLUSTER_LIST are non-transitive and meaningful only inside one AS (RFC 4456 §8).
    const copy: PathAttributes = { ...a };
    delete copy.localPref;
    delete copy.originatorId;
    delete copy.clusterList;
    return { attributes: copy };
  }
  return { attributes: a };
}

/** RFC 4271 §6.3: a NEXT_HOP that is an address of the receiving speaker is rejected. */
export function nextHopIsOurs(peer: Peer, nextHop: CIDR): boolean {
  return (peer.localAddresses ?? []).some((l) => l.family === nextHop.family && l.addr === nextHop.addr);
}
