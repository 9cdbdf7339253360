/**
 * Kernel object names (reference/calico.md §1.5): every chain, set and map we create lives in
 * table `inet calico` and carries a prefix a restarted agent recognises as ours. Names are
 * deterministic functions of the object's ID so a read-back maps straight onto the desired
 * state; IDs too long or with characters nft identifiers do not take are cut and suffixed
 * with a hash of the whole ID, so two IDs never share a name.
 */
import { createHash } from "node:crypto";
import type { IPFamily } from "../api/net.js";

/** nft chain names may be 256 bytes; we keep them short enough to read in a listing. */
export const MAX_CHAIN_NAME = 64;
/** ipset's limit, which Felix keeps for nft sets too. */
export const MAX_SET_NAME = 31;

/** Characters render.ts accepts in a name (`/` works in nft 1.0.6 but render refuses it). */
const SAFE = /^[A-Za-z0-9_.-]*$/;

/** A short, stable, identifier-safe hash (base32-ish lower-case hex). */
export function shortHash(text: string, len = 10): string {
  return createHash("sha256").update(text).digest("hex").slice(0, len);
}

/**
 * `prefix + id`, or when that is too long or `id` has characters nft will not take,
 * `prefix + <safe part of id> + "_" + hash(id)` cut to `max`.
 */
export function limitedName(prefix: string, id: string, max: number, hashLen = 10): string {
  // Calico IDs (`np/<ns>/<name>`, `kns.shop`) never contain `_` (not allowed in Kubernetes
  // names), so `/` → `_` is one-to-one for them; anything else gets the hash.
  const readable = id.replace(/\//g, "_");
  const full = prefix + readable;
  if (full.length <= max && !id.includes("_") && SAFE.test(readable)) return full;
  const safe = id.replace(/[^A-Za-z0-9.-]/g, "_");
  const room = max - prefix.length - 1 - hashLen;
  return `${prefix}${safe.slice(0, Math.max(0, room))}_${shortHash(id, hashLen)}`;
}

// ---- base chains (one per hook we use; `<layer>-<HOOK>` as Felix's nft mode names them) ----

export const BASE = {
  filterInput: "filter-INPUT",
  filterForward: "filter-FORWARD",
  filterOutput: "filter-OUTPUT",
  rawPrerouting: "raw-PREROUTING",
  rawOutput: "raw-OUTPUT",
  manglePrerouting: "mangle-PREROUTING",
  natPostrouting: "nat-POSTROUTING",
} as const;

// ---- fixed chains and maps ----

export const CHAIN = {
  fromWlDispatch: "filter-cali-from-wl-dispatch",
  toWlDispatch: "filter-cali-to-wl-dispatch",
  wlToHost: "filter-cali-wl-to-host",
  failsafeIn: "filter-cali-failsafe-in",
  failsafeOut: "filter-cali-failsafe-out",
  fromHostEndpoint: "filter-cali-from-host-endpoint",
  toHostEndpoint: "filter-cali-to-host-endpoint",
  fromHepForward: "filter-cali-from-hep-forward",
  toHepForward: "filter-cali-to-hep-forward",
  rawFromHostEndpoint: "raw-cali-from-host-endpoint",
  rawToHostEndpoint: "raw-cali-to-host-endpoint",
  mangleFromHostEndpoint: "mangle-cali-from-host-endpoint",
  natOutgoing: "nat-cali-nat-outgoing",
} as const;

/** Verdict maps share their dispatch chain's name (maps and chains are separate namespaces in nft). */
export const MAP = {
  fromWlDispatch: "filter-cali-from-wl-dispatch",
  toWlDispatch: "filter-cali-to-wl-dispatch",
  /** Workload interfaces → accept: the forward fast path for established flows to them. */
  toWlEstablished: "filter-cali-to-wl-established",
} as const;

// ---- per-endpoint chains ----

export type EndpointChainKind =
  | "tw" // to workload (ingress policy)
  | "fw" // from workload (egress policy)
  | "th" // to host endpoint (outbound)
  | "fh" // from host endpoint (inbound)
  | "thfw" // to host endpoint, forwarded (applyOnForward)
  | "fhfw" // from host endpoint, forwarded
  | "raw-th" // untracked (doNotTrack), raw output
  | "raw-fh" // untracked, raw prerouting
  | "mangle-fh"; // preDNAT, mangle prerouting

/** `filter-cali-tw-cali1234abcd567`; a HEP's `*` becomes `_<hash>`. */
export function endpointChain(kind: EndpointChainKind, iface: string): string {
  const [layer, short] = kind.startsWith("raw-")
    ? ["raw", kind.slice(4)]
    : kind.startsWith("mangle-")
      ? ["mangle", kind.slice(7)]
      : ["filter", kind];
  return limitedName(`${layer}-cali-${short}-`, iface, MAX_CHAIN_NAME);
}

/** Policy chains: `filter-cali-pi-gnp_allow-dns`, `filter-cali-po-np_shop_db`. */
export function policyChain(dir: "in" | "out", policyId: string): string {
  return limitedName(dir === "in" ? "filter-cali-pi-" : "filter-cali-po-", policyId, MAX_CHAIN_NAME);
}

/** Profile chains: `filter-cali-pri-kns.shop`, `filter-cali-pro-kns.shop`. */
export function profileChain(dir: "in" | "out", profileId: string): string {
  return limitedName(dir === "in" ? "filter-cali-pri-" : "filter-cali-pro-", profileId, MAX_CHAIN_NAME);
}

// ---- IP sets ----

/** Well-known set IDs (Felix's): every pool, and the pools with natOutgoing. */
export const ALL_POOLS_SET_ID = "all-ipam-pools";
export const MASQ_POOLS_SET_ID = "masq-ipam-pools";

/**
 * `cali4` / `cali6` + version token `0` + the set ID with `:` → `-` (§1.5):
 * `s:abc` → `cali40s-abc`, `n:abc` → `cali40n-abc`, `all-ipam-pools` → `cali40all-ipam-pools`.
 */
export function ipSetName(family: IPFamily, id: string): string {
  return limitedName(`cali${family}0`, id.replace(/:/g, "-"), MAX_SET_NAME);
}

// ---- recognising our objects after a restart ----

const OUR_CHAIN = /^(filter|raw|mangle|nat)-(cali-|INPUT$|FORWARD$|OUTPUT$|PREROUTING$|POSTROUTING$)/;

/** Every chain in our table is ours; these are the names we would write ourselves. */
export const isOurChainName = (name: string): boolean => OUR_CHAIN.test(name);
export const isOurSetName = (name: string): boolean => /^cali[46]0/.test(name);
export const isOurMapName = (name: string): boolean => name.startsWith("filter-cali-");
