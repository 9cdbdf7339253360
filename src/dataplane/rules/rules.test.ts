import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { W1, W2, asState, cidr, rule, testConfig, testState } from "../fixtures.js";
import {
  BASE,
  CHAIN,
  MAX_CHAIN_NAME,
  MAX_SET_NAME,
  endpointChain,
  ipSetName,
  isOurChainName,
  isOurSetName,
  policyChain,
} from "../names.js";
import { renderRule as nftText } from "../nft/render.js";
import { collapse, ipSetFor, prefixElement } from "./ipsets.js";
import { ruleHash } from "./comment.js";
import { emptyChanges } from "../../calc/types.js";
import { DesiredTable } from "./ruleset.js";
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

describe("shared rules", () => {
  it("endpoint chains share one frozen object per repeated rule, each with its own hash", () => {
    const table = DesiredTable.fromState(asState(testState()), testConfig());
    const a = table.chains.get(endpointChain("tw", W1.iface))!;
    const b = table.chains.get(endpointChain("tw", W2.iface))!;
    // The conntrack rules open every normal endpoint chain: the same object in both.
    assert.equal(a.rules[0], b.rules[0]);
    assert.equal(a.rules[1], b.rules[1]);
    for (const c of table.chains.values())
      for (const r of c.rules) {
        assert.ok(Object.isFrozen(r), `${c.name}: rule not frozen`);
        assert.equal(r.comment, ruleHash(r), `${c.name}: comment is not the rule's hash`);
      }
    // A second table (shared rules now cached) has the same chains, rule for rule.
    const again = DesiredTable.fromState(asState(testState()), testConfig());
    for (const [name, c] of table.chains)
      assert.deepEqual(
        again.chains.get(name)!.rules.map((r) => nftText(r)),
        c.rules.map((r) => nftText(r)),
      );
  });
});

describe("natOutgoing chains", () => {
  it("exist only while some pool asks for natOutgoing, incrementally too", () => {
    const mutable = testState();
    const state = asState(mutable);
    const natPools = [...state.pools.values()].filter((p) => p.natOutgoing);
    assert.ok(natPools.length > 0, "the fixture has a natOutgoing pool");
    const table = DesiredTable.fromState(state, testConfig());
    assert.ok(table.chains.has(BASE.natPostrouting) && table.chains.has(CHAIN.natOutgoing));

    for (const p of natPools) mutable.pools.set(p.name, { ...p, natOutgoing: false });
    const changes = emptyChanges();
    for (const p of natPools) changes.pools.add(p.name);
    table.update(state, changes);
    assert.ok(!table.chains.has(BASE.natPostrouting) && !table.chains.has(CHAIN.natOutgoing));
    // The sets stay (the all-pools set is also the source of other rules).
    assert.ok([...table.sets.keys()].some((n) => n.includes("masq-ipam-pools")));
    assert.equal(DesiredTable.fromState(state, testConfig()).chains.has(BASE.natPostrouting), false);

    mutable.pools.set(natPools[0]!.name, natPools[0]!);
    table.update(state, changes);
    assert.ok(table.chains.has(BASE.natPostrouting) && table.chains.has(CHAIN.natOutgoing));
  });
});

describe("ip set elements from members", () => {
  it("one address in net and named-port members, host and non-host prefixes, junk ignored", () => {
    const members = new Set([
      "198.19.0.7/32",
      "198.19.0.0/30",
      "198.19.4.0/24",
      "fd00:19::7/128",
      "nonsense",
    ]);
    const net = { id: "s:x", type: "net" as const, description: "", members };
    assert.deepEqual([...ipSetFor(net, 4).elements], ["198.19.0.0/30", "198.19.0.7", "198.19.4.0/24"]);
    assert.deepEqual([...ipSetFor(net, 6).elements], ["fd00:19::7"]);
    const ports = new Set(["198.19.0.7,6,8080", "fd00:19::7,17,53", "198.19.0.7,x,1", "bad,6,1"]);
    const ipPort = { id: "n:x", type: "ip-port" as const, description: "", members: ports };
    assert.deepEqual([...ipSetFor(ipPort, 4).elements], ["198.19.0.7 . 6 . 8080"]);
    assert.deepEqual([...ipSetFor(ipPort, 6).elements], ["fd00:19::7 . 17 . 53"]);
  });
});
