/** Every v3 kind, found by any name calicoctl accepts (kind, plural, short names; any case). */
import type { KindDef } from "./kinds/kind.js";
import { POLICY_KINDS } from "./kinds/policy.js";
import { INFRA_KINDS } from "./kinds/infra.js";

export const KINDS: readonly KindDef[] = [...POLICY_KINDS, ...INFRA_KINDS];

const byName = new Map<string, KindDef>();
for (const k of KINDS) {
  for (const n of [k.kind, k.plural, ...k.shortNames]) byName.set(n.toLowerCase(), k);
}

export function findKind(name: string): KindDef | undefined {
  return byName.get(name.toLowerCase());
}

export function kindNames(): string[] {
  return KINDS.map((k) => k.kind);
}
