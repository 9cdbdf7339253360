import type { KindDef } from "./kind.js";
import {
  GLOBAL_NETWORK_POLICY,
  NETWORK_POLICY,
  STAGED_GLOBAL_NETWORK_POLICY,
  STAGED_KUBERNETES_NETWORK_POLICY,
  STAGED_NETWORK_POLICY,
} from "./network-policy.js";
import { GLOBAL_NETWORK_SET, NETWORK_SET } from "./network-set.js";
import { PROFILE } from "./profile.js";
import { TIER } from "./tier.js";

/** Policy-side kinds: tiers, policies (enforced and staged), profiles and network sets. */
export const POLICY_KINDS: readonly KindDef[] = [
  TIER,
  NETWORK_POLICY,
  GLOBAL_NETWORK_POLICY,
  STAGED_NETWORK_POLICY,
  STAGED_GLOBAL_NETWORK_POLICY,
  STAGED_KUBERNETES_NETWORK_POLICY,
  PROFILE,
  NETWORK_SET,
  GLOBAL_NETWORK_SET,
];
