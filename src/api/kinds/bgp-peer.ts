/**
 * BGPPeer (cluster): a BGP session some or all Calico nodes open, to an external router or to
 * other Calico nodes (reference/calico.md §2.15). Rules from `validateBGPPeerSpec`.
 */
import type { AnyResource, Resource } from "../resource.js";
import {
  checkBool,
  checkEnum,
  checkKnownFields,
  checkNumber,
  isRecord,
  join,
  type Issues,
  checkIPValue,
} from "../check.js";
import { parseIP, type IPAddr } from "../net.js";
import { checkDuration } from "../duration.js";
import { checkSelector } from "../selector-field.js";
import type { KindDef } from "./kind.js";
import { checkASNumber, normaliseASField } from "./as-number.js";
import { checkNameField, checkNameList, checkPassword, cloneResource, specOf } from "./infra-spec.js";
import type { SecretKeyRef } from "./bgp-configuration.js";

export interface BGPPeerSpec {
  /** Only this node peers (exclusive with nodeSelector); neither ⇒ every node. */
  node?: string;
  nodeSelector?: string;
  /** `IP`, `IPv4:port` or `[IPv6]:port`; exclusive with peerSelector. */
  peerIP?: string;
  asNumber?: number | string;
  /** Peer with every Calico node matching (their AS comes from the Node). */
  peerSelector?: string;
  /** Deprecated: use nextHopMode: Keep. */
  keepOriginalNextHop?: boolean;
  nextHopMode?: "Auto" | "Self" | "Keep";
  password?: SecretKeyRef;
  sourceAddress?: "UseNodeIP" | "None";
  maxRestartTime?: string;
  numAllowedLocalASNumbers?: number;
  ttlSecurity?: number;
  keepaliveTime?: string;
  /** Gateway address: a static /32 route to the peer via it. */
  reachableBy?: string;
  /** BGPFilter names, applied in order. */
  filters?: string[];
  localWorkloadSelector?: string;
  reversePeering?: "Auto" | "Manual";
  localASNumber?: number | string;
}

export type BGPPeer = Resource<"BGPPeer", BGPPeerSpec>;

const FIELDS = [
  "node",
  "nodeSelector",
  "peerIP",
  "asNumber",
  "peerSelector",
  "keepOriginalNextHop",
  "nextHopMode",
  "password",
  "sourceAddress",
  "maxRestartTime",
  "numAllowedLocalASNumbers",
  "ttlSecurity",
  "keepaliveTime",
  "reachableBy",
  "filters",
  "localWorkloadSelector",
  "reversePeering",
  "localASNumber",
];

export interface PeerAddress {
  ip: IPAddr;
  /** Undefined when no port was given (BGP's 179, or the peer node's listenPort). */
  port?: number;
}

/** Parse `IP`, `IPv4:port` or `[IPv6]:port` as Calico's BGPPeer.peerIP accepts them. */
export function parsePeerIP(text: string): PeerAddress | undefined {
  let host = text;
  let portText: string | undefined;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text);
  const v4 = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(text);
  if (v6 !== null) [, host = "", portText] = v6;
  else if (v4 !== null) [, host = "", portText] = v4;
  const ip = parseIP(host);
  if (ip === undefined || (v6 !== null && ip.family !== 6)) return undefined;
  if (portText === undefined) return { ip };
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { ip, port };
}

const present = (v: unknown): boolean => v !== undefined && v !== null && v !== "";

export function validateBGPPeerSpec(spec: Record<string, unknown>, path: string, issues: Issues): void {
  checkKnownFields(spec, FIELDS, path, issues);
  checkNameField(spec, "node", path, issues);
  for (const f of ["nodeSelector", "peerSelector", "localWorkloadSelector"]) {
    if (spec[f] !== "") checkSelector(spec, f, path, issues, { global: "forbidden" });
  }
  let peer: PeerAddress | undefined;
  const peerIP = spec.peerIP;
  if (present(peerIP)) {
    if (typeof peerIP !== "string" || (peer = parsePeerIP(peerIP)) === undefined) {
      issues.add(
        join(path, "peerIP"),
        'must be an IP address, "IPv4:port" or "[IPv6]:port" (port 1-65535), e.g. 198.18.0.1 or [fd00::1]:179',
        peerIP,
      );
    }
  }
  checkASNumber(spec, "asNumber", path, issues);
  checkASNumber(spec, "localASNumber", path, issues);
  const keep = checkBool(spec, "keepOriginalNextHop", path, issues);
  checkEnum(spec, "nextHopMode", path, ["Auto", "Self", "Keep"], issues);
  checkPassword(spec, "password", path, issues);
  checkEnum(spec, "sourceAddress", path, ["UseNodeIP", "None"], issues);
  checkDuration(spec, "maxRestartTime", path, issues);
  checkDuration(spec, "keepaliveTime", path, issues);
  checkNumber(spec, "numAllowedLocalASNumbers", path, issues, { integer: true, min: 0, max: 2147483647 });
  checkNumber(spec, "ttlSecurity", path, issues, { integer: true, min: 0, max: 255 });
  checkNameList(spec, "filters", path, issues);
  checkEnum(spec, "reversePeering", path, ["Auto", "Manual"], issues);

  // Exclusivity rules (validateBGPPeerSpec).
  const hasAS = present(spec.asNumber);
  if (present(spec.node) && present(spec.nodeSelector)) {
    issues.add(
      join(path, "node"),
      "must be empty when nodeSelector is set (use one or the other)",
      spec.node,
    );
  }
  if (present(peerIP) && present(spec.peerSelector)) {
    issues.add(join(path, "peerIP"), "must be empty when peerSelector is set (use one or the other)", peerIP);
  }
  if (hasAS && present(spec.peerSelector)) {
    issues.add(
      join(path, "asNumber"),
      "must be empty when peerSelector is set (the AS comes from each selected node)",
      spec.asNumber,
    );
  }
  if (present(spec.localWorkloadSelector)) {
    if (!hasAS) issues.add(join(path, "asNumber"), "is required when localWorkloadSelector is set");
    if (present(peerIP))
      issues.add(join(path, "peerIP"), "must be empty when localWorkloadSelector is set", peerIP);
    if (present(spec.peerSelector)) {
      issues.add(
        join(path, "peerSelector"),
        "must be empty when localWorkloadSelector is set",
        spec.peerSelector,
      );
    }
  } else if (present(peerIP) && !hasAS) {
    // Not in Calico's Go validator (BIRD then fails to configure the session); we say it here.
    issues.add(join(path, "asNumber"), "is required with peerIP (the remote AS of the peer)");
  }
  if (keep === true && present(spec.nextHopMode)) {
    issues.add(
      join(path, "keepOriginalNextHop"),
      "is deprecated and must not be true when nextHopMode is set (use nextHopMode: Keep)",
      true,
    );
  }
  const reachable = spec.reachableBy;
  if (present(reachable)) {
    const rp = join(path, "reachableBy");
    const gw = checkIPValue(reachable, rp, issues);
    if (!present(peerIP)) issues.add(rp, "must be empty when peerIP is empty", reachable);
    else if (gw !== undefined && peer !== undefined && gw.family !== peer.ip.family) {
      issues.add(rp, `must be an IPv${peer.ip.family} address like peerIP`, reachable);
    }
  }
}

export const BGP_PEER_KIND: KindDef = {
  kind: "BGPPeer",
  plural: "bgppeers",
  namespaced: false,
  shortNames: ["bgppeer", "bgpp", "bgpps", "bp", "bps"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateBGPPeerSpec(spec, "spec", issues);
  },
  withDefaults(resource: AnyResource): AnyResource {
    const out = cloneResource(resource);
    if (isRecord(out.spec)) {
      normaliseASField(out.spec, "asNumber");
      normaliseASField(out.spec, "localASNumber");
    }
    return out;
  },
};
