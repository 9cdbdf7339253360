import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IP_RESERVATION_KIND } from "./ip-reservation.js";
import { issuesFor } from "./infra-testing.js";

const K = IP_RESERVATION_KIND;

describe("IPReservation", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "ipreservations");
    assert.deepEqual([...K.shortNames], ["ipreservation", "reservation", "reservations"]);
  });

  it("accepts the example from Calico's IPReservation reference unchanged", () => {
    assert.deepEqual(
      issuesFor(K, { reservedCIDRs: ["198.19.2.3", "198.19.3.3/32", "cafe:f00d::/123"] }, "my-ipreservation"),
      [],
    );
  });

  it("accepts an empty reservation", () => assert.deepEqual(issuesFor(K, {}), []));

  const invalid: [string, Record<string, unknown>, string][] = [
    ["a malformed CIDR", { reservedCIDRs: ["198.19.0.0/40"] }, "spec.reservedCIDRs[0]"],
    ["a word", { reservedCIDRs: ["198.19.1.5", "gateway"] }, "spec.reservedCIDRs[1]"],
    ["a non-list", { reservedCIDRs: "198.19.1.5" }, "spec.reservedCIDRs"],
    ["a typo", { reservedCIDR: ["198.19.1.5"] }, "spec.reservedCIDR"],
  ];
  for (const [name, spec, path] of invalid) {
    it(`rejects ${name} at ${path}`, () =>
      assert.deepEqual(
        issuesFor(K, spec).map((i) => i.path),
        [path],
      ));
  }
});
