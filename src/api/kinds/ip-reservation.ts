/**
 * IPReservation (cluster): addresses Calico IPAM must never hand out (reference/calico.md §2.2).
 * Existing allocations are not affected.
 */
import type { Resource } from "../resource.js";
import { checkKnownFields, type Issues } from "../check.js";
import type { KindDef } from "./kind.js";
import { checkNetList, cloneResource, specOf } from "./infra-spec.js";

export interface IPReservationSpec {
  /** CIDRs or single addresses, IPv4 and IPv6 mixed. */
  reservedCIDRs?: string[];
}

export type IPReservation = Resource<"IPReservation", IPReservationSpec>;

export function validateIPReservationSpec(spec: Record<string, unknown>, path: string, issues: Issues): void {
  checkKnownFields(spec, ["reservedCIDRs"], path, issues);
  // Calico's `cidr` validator: host bits may be set; a bare address is one address.
  checkNetList(spec, "reservedCIDRs", path, issues);
}

export const IP_RESERVATION_KIND: KindDef = {
  kind: "IPReservation",
  plural: "ipreservations",
  namespaced: false,
  shortNames: ["ipreservation", "reservation", "reservations"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateIPReservationSpec(spec, "spec", issues);
  },
  withDefaults: cloneResource,
};
