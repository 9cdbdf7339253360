/**
 * What the rest of the system needs to know about one resource kind. Each kind module exports
 * its `KindDef`; `src/api/registry.ts` collects them.
 */
import type { AnyResource } from "../resource.js";
import type { Issues } from "../check.js";

export interface KindDef {
  /** CamelCase kind, e.g. `NetworkPolicy`. */
  kind: string;
  /** Lower-case plural used in datastore keys, e.g. `networkpolicies`. */
  plural: string;
  namespaced: boolean;
  /** Extra lower-case names calicoctl accepts besides kind and plural (short names). */
  shortNames: readonly string[];
  /**
   * Check `spec` (and kind-specific metadata rules) of a resource whose envelope
   * (apiVersion/kind/metadata.name) has already been checked. Record issues with paths
   * starting at `spec` / `metadata`. Must not throw on any input.
   */
  validate(resource: AnyResource, issues: Issues): void;
  /**
   * Return a copy with defaults filled in (what Calico stores on write, e.g. policy `types`
   * and `tier`, IPPool `blockSize`). Called only on valid resources.
   */
  withDefaults(resource: AnyResource): AnyResource;
  /** Extra check of the metadata.name beyond DNS-1123 subdomain (e.g. Tier names). */
  nameProblem?(name: string): string | undefined;
}
