import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cidr, rule } from "../fixtures.js";
import {
  MAX_CHAIN_NAME,
  MAX_SET_NAME,
  endpointChain,
  ipSetName,
  isOurChainName,
  isOurSetName,
  policyChain,
} from "../names.js";
import { renderRule as nftText } from "../nft/render.js";
import { collapse, prefixElement } from "./ipsets.js";
import { renderRule, type PolicyRenderOptions } from "./policy.js";

const opts: PolicyRenderOptions = {
  ipv6: true,
  denyAction: "Drop",
  logPrefix: "calico-packet",
  ipSets: new Map([
    ["s:a", { id: "s:a", type: "net", description: "", members: new Set() }],
    ["n:p", { id: "n:p", type: "ip-port", description: "", members: new Set() }],
  ]),
};
const text = (r: ReturnType<typeof renderRule>): string[] => r.map((x) => nftText(x));

describe("names", () => {
  it("are deterministic, bounded, nft-safe and recognisable", () => {
    const long = `np/${"n".repeat(63)}/${"p".repeat(200)}`;
    for (const name of [
      policyChain("in", long),
      policyChain("out", "np/shop/db"),
      endpointChain("fh", "*"),
    ]) {
      assert.ok(name.length <= MAX_CHAIN_NAME, name);
      assert.match(name, /^[A-Za-z][A-Za-z0-9_.-]*$/);
      assert.ok(isOurChainName(name), name);
    }
    assert.equal(policyChain("in", "np/shop/db"), "filter-cali-pi-np_shop_db");
    assert.notEqual(policyChain("in", long), policyChain("in", long + "x"));
    assert.equal(ipSetName(4, "s:abc"), "cali40s-abc");
    const s = ipSetName(6, "s:qMt7iLlGDhvLnCjM0l9nzxbQMt7iLl");
    assert.ok(s.length <= MAX_SET_NAME && isOurSetName(s), s);
    assert.equal(isOurChainName("INPUT"), false);
  });
});

describe("policy rules", () => {
  it("expands families, named-port ORs and guards ports without a protocol", () => {
    assert.deepEqual(text(renderRule(rule("allow"), opts)), [
      "meta mark set meta mark & 0xffffffff | 0x00010000 return",
    ]);
    const np = text(
      renderRule(
        rule("allow", { protocol: 6, dstPorts: [{ first: 80, last: 80 }], dstNamedPortIPSets: ["n:p"] }),
        opts,
      ),
    );
    assert.equal(np.length, 4, np.join("\n")); // (port 80 | v4 set) + (port 80 | v6 set)
    const guarded = text(renderRule(rule("deny", { dstPorts: [{ first: 53, last: 53 }] }), opts));
    assert.ok(
      guarded.every((t) => t.includes("meta l4proto")),
      guarded.join("\n"),
    );
    const v4only = text(
      renderRule(
        rule("deny", { notSrcNets: [cidr("198.19.0.0/30")], srcNets: [cidr("198.19.0.0/16")] }),
        opts,
      ),
    );
    assert.equal(v4only.length, 1);
    assert.match(v4only[0]!, /ip saddr 198\.19\.0\.0\/16 ip saddr != 198\.19\.0\.0\/30 drop/);
    assert.deepEqual(text(renderRule(rule("allow", { protocol: 1, icmp: { type: 8 } }), opts)).length, 1);
    assert.match(text(renderRule(rule("log", { logPrefix: "x" }), opts))[0]!, /log prefix "x"/);
  });

  it("a rule naming a missing set throws (the chain then fails closed)", () => {
    assert.throws(() => renderRule(rule("allow", { srcIPSets: ["s:missing"] }), opts));
  });
});

describe("ip set elements", () => {
  it("collapse overlapping prefixes (interval sets refuse overlaps)", () => {
    const out = collapse(["198.19.0.0/24", "198.19.0.5/32", "198.19.1.1/32", "198.19.0.0/16"].map(cidr)).map(
      prefixElement,
    );
    assert.deepEqual(out, ["198.19.0.0/16"]);
    assert.deepEqual(collapse(["fd00:19::1/128", "fd00:19::2/128"].map(cidr)).map(prefixElement), [
      "fd00:19::1",
      "fd00:19::2",
    ]);
  });
});
