/**
 * The BGP RIB (pure, no I/O). See docs/bgp-rib.md.
 */
export * from "./types.js";
export { LOCAL_PEER_ID, type PeerDownOptions, type PeerUpOptions, Rib } from "./rib.js";
export {
  asPathLength,
  BGP_PREFERENCE,
  decide,
  DEFAULT_DECISION,
  type DecisionOptions,
  effectiveLocalPref,
  LOCAL_PREFERENCE,
  neighbourAS,
} from "./decision.js";
export { type Advertisement, exportRoute, mayAdvertise, prependAS } from "./export.js";
export { importAttributes, nextHopIsOurs } from "./import-checks.js";
export { advertisementKey, announcement, packUpdates, withdrawal } from "./update-packer.js";
export { type PrefixKey, prefixKey } from "./prefix-key.js";
