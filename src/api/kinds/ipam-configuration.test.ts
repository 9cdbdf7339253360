import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IPAM_CONFIGURATION_KIND } from "./ipam-configuration.js";
import { issuesFor, resource } from "./infra-testing.js";

const K = IPAM_CONFIGURATION_KIND;

describe("IPAMConfiguration", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "ipamconfigurations");
    assert.deepEqual([...K.shortNames], ["ipamconfiguration", "ipamconfig", "ipamconfigs"]);
  });

  const valid: [string, Record<string, unknown>][] = [
    ["the defaults", { strictAffinity: false, autoAllocateBlocks: true }],
    ["an empty spec", {}],
    ["strict affinity with a block cap", { strictAffinity: true, maxBlocksPerHost: 4 }],
    ["strict affinity without new blocks", { strictAffinity: true, autoAllocateBlocks: false }],
    ["a zero block cap without strict affinity", { strictAffinity: false, maxBlocksPerHost: 0 }],
    [
      "KubeVirt persistence and a cooldown",
      { kubeVirtVMAddressPersistence: "Disabled", ipCooldownSeconds: 1200 },
    ],
  ];
  for (const [name, spec] of valid) {
    it(`accepts ${name}`, () => assert.deepEqual(issuesFor(K, spec, "default"), []));
  }

  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "a block cap without strict affinity",
      { maxBlocksPerHost: 20 },
      "spec.maxBlocksPerHost",
      /strictAffinity/,
    ],
    [
      "no new blocks without strict affinity",
      { strictAffinity: false, autoAllocateBlocks: false },
      "spec.autoAllocateBlocks",
      /strictAffinity/,
    ],
    [
      "a negative block cap",
      { strictAffinity: true, maxBlocksPerHost: -1 },
      "spec.maxBlocksPerHost",
      /integer/,
    ],
    ["strictAffinity as a string", { strictAffinity: "true" }, "spec.strictAffinity", /true or false/],
    ["a cooldown above 1200 s", { ipCooldownSeconds: 1201 }, "spec.ipCooldownSeconds", /0 to 1200/],
    [
      "an unknown persistence mode",
      { kubeVirtVMAddressPersistence: "On" },
      "spec.kubeVirtVMAddressPersistence",
      /Enabled, Disabled/,
    ],
    ["the v1 field name", { strict_affinity: true }, "spec.strict_affinity", /unknown field/],
  ];
  for (const [name, spec, path, message] of invalid) {
    it(`rejects ${name} at ${path}`, () => {
      const issues = issuesFor(K, spec, "default");
      assert.ok(
        issues.some((i) => i.path === path && message.test(i.message)),
        JSON.stringify(issues),
      );
    });
  }

  it("must be named default", () => assert.notEqual(K.nameProblem?.("ipam"), undefined));

  it("stores strictAffinity and autoAllocateBlocks always", () => {
    assert.deepEqual(K.withDefaults(resource(K, {}, "default")).spec, {
      strictAffinity: false,
      autoAllocateBlocks: true,
    });
    assert.deepEqual(
      K.withDefaults(resource(K, { strictAffinity: true, autoAllocateBlocks: false }, "default")).spec,
      {
        strictAffinity: true,
        autoAllocateBlocks: false,
      },
    );
  });
});
