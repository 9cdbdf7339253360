import type { KindDef } from "./kind.js";

/** Policy-side kinds: filled in by the policy/rule schema work. */
export const POLICY_KINDS: readonly KindDef[] = [];
