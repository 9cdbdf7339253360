import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseCIDR } from "../../api/net.js";
import { hasCode } from "../../errors.js";
import { anonymousSetCount, NFT_RENDER_INVALID, renderRule, renderTransaction } from "./render.js";
import type { Rule, TxOp } from "./model.js";

const cidr = (s: string): NonNullable<ReturnType<typeof parseCIDR>> => parseCIDR(s)!;
const r = (x: Partial<Rule>): Rule => ({ matches: [], statements: [], ...x });

describe("renderRule", () => {
  const cases: [string, Rule, string][] = [
    [
      "ifname wildcard",
      r({ matches: [{ type: "ifname", dir: "iif", op: "==", names: ["cali*"] }] }),
      'iifname "cali*"',
    ],
    [
      "ifname set, negated",
      r({ matches: [{ type: "ifname", dir: "oif", op: "!=", names: ["cali*", "eth0"] }] }),
      'oifname != { "cali*", "eth0" }',
    ],
    ["nfproto", r({ matches: [{ type: "nfproto", family: 4 }] }), "meta nfproto ipv4"],
    [
      "l4proto set",
      r({ matches: [{ type: "l4proto", op: "==", protocols: [6, 17] }] }),
      "meta l4proto { 6, 17 }",
    ],
    [
      "literal CIDRs, merged and masked",
      r({
        matches: [
          {
            type: "addr",
            family: 4,
            dir: "saddr",
            op: "==",
            cidrs: [cidr("198.19.0.0/26"), cidr("198.19.0.5/32"), cidr("198.19.9.9/24")],
          },
        ],
      }),
      "ip saddr { 198.19.9.0/24, 198.19.0.0/26 }",
    ],
    [
      "single host address",
      r({ matches: [{ type: "addr", family: 6, dir: "daddr", op: "!=", cidrs: [cidr("fd00:19::5/128")] }] }),
      "ip6 daddr != fd00:19::5",
    ],
    [
      "named set negated",
      r({ matches: [{ type: "addr-set", family: 6, dir: "daddr", op: "!=", set: "cali60s-x" }] }),
      "ip6 daddr != @cali60s-x",
    ],
    [
      "ports after l4proto",
      r({
        matches: [
          { type: "l4proto", op: "==", protocols: [6] },
          {
            type: "port",
            dir: "dport",
            op: "==",
            ranges: [
              { first: 80, last: 80 },
              { first: 8000, last: 8080 },
            ],
          },
        ],
      }),
      "meta l4proto 6 th dport { 80, 8000-8080 }",
    ],
    [
      "concatenation",
      r({ matches: [{ type: "addr-port-set", family: 4, dir: "daddr", op: "==", set: "cali40n-a" }] }),
      "ip daddr . meta l4proto . th dport @cali40n-a",
    ],
    [
      "icmp type and code",
      r({ matches: [{ type: "icmp", family: 4, op: "==", icmpType: 8, code: 0 }] }),
      "icmp type 8 icmp code 0",
    ],
    [
      "icmpv6 pair negated",
      r({ matches: [{ type: "icmp", family: 6, op: "!=", icmpType: 128, code: 0 }] }),
      "icmpv6 type . icmpv6 code != { 128 . 0 }",
    ],
    [
      "icmpv6 type",
      r({ matches: [{ type: "icmp", family: 6, op: "==", icmpType: 128 }] }),
      "icmpv6 type 128",
    ],
    [
      "ct state",
      r({ matches: [{ type: "ct-state", op: "==", states: ["established", "related"] }] }),
      "ct state established,related",
    ],
    [
      "mark test",
      r({ matches: [{ type: "mark", op: "==", mask: 0x10000, value: 0x10000 }] }),
      "meta mark & 0x00010000 == 0x00010000",
    ],
    ["fib local", r({ matches: [{ type: "fib-daddr-local", op: "==" }] }), "fib daddr type local"],
    [
      "set mark",
      r({ statements: [{ type: "set-mark", clear: 0x10000, set: 0x20000 }] }),
      "meta mark set meta mark & 0xfffeffff | 0x00020000",
    ],
    [
      "log, counter, notrack",
      r({
        statements: [
          { type: "log", prefix: "cali-drop: ", level: "info" },
          { type: "counter" },
          { type: "notrack" },
        ],
      }),
      'log prefix "cali-drop: " level info counter notrack',
    ],
    [
      "jump with comment",
      r({ verdict: { type: "jump", chain: "cali-pol-a" }, comment: "h:abc" }),
      'jump cali-pol-a comment "h:abc"',
    ],
    ["goto", r({ verdict: { type: "goto", chain: "cali-pol-a" } }), "goto cali-pol-a"],
    ["return", r({ verdict: { type: "return" } }), "return"],
    ["continue", r({ verdict: { type: "continue" } }), "continue"],
    ["reject", r({ verdict: { type: "reject" } }), "reject"],
    ["masquerade", r({ verdict: { type: "masquerade", fully_random: true } }), "masquerade fully-random"],
    [
      "vmap",
      r({ verdict: { type: "vmap", key: "iifname", map: "cali-from-wl" } }),
      "iifname vmap @cali-from-wl",
    ],
  ];
  for (const [name, rule, text] of cases) {
    it(name, () => assert.equal(renderRule(rule), text));
  }

  const bad: [string, Rule][] = [
    [
      "a port without l4proto",
      r({ matches: [{ type: "port", dir: "dport", op: "==", ranges: [{ first: 80, last: 80 }] }] }),
    ],
    [
      "a port after a non-port protocol",
      r({
        matches: [
          { type: "l4proto", op: "==", protocols: [1] },
          { type: "port", dir: "dport", op: "==", ranges: [{ first: 80, last: 80 }] },
        ],
      }),
    ],
    [
      "a port after a negated protocol",
      r({
        matches: [
          { type: "l4proto", op: "!=", protocols: [6] },
          { type: "port", dir: "dport", op: "==", ranges: [{ first: 80, last: 80 }] },
        ],
      }),
    ],
    ["a comment over 128 bytes", r({ comment: "x".repeat(129) })],
    ["a quote in a comment", r({ comment: 'a"b' })],
    ["a quote in a log prefix", r({ statements: [{ type: "log", prefix: 'a"' }] })],
    ["a keyword chain name", r({ verdict: { type: "jump", chain: "fwd" } })],
    [
      "an interface name too long",
      r({ matches: [{ type: "ifname", dir: "iif", op: "==", names: ["cali0123456789ab"] }] }),
    ],
    [
      "a wrong-family CIDR",
      r({ matches: [{ type: "addr", family: 4, dir: "saddr", op: "==", cidrs: [cidr("fd00:19::/64")] }] }),
    ],
  ];
  for (const [name, rule] of bad) {
    it(`refuses ${name}`, () =>
      assert.throws(
        () => renderRule(rule),
        (e) => hasCode(e, NFT_RENDER_INVALID),
      ));
  }

  it("counts the anonymous sets a rule creates (each takes a handle)", () => {
    assert.equal(anonymousSetCount(cases[1]![1]), 1);
    assert.equal(anonymousSetCount(cases[0]![1]), 0);
    assert.equal(anonymousSetCount(cases[7]![1]), 1);
    assert.equal(anonymousSetCount(cases[10]![1]), 1);
  });
});

describe("renderTransaction", () => {
  it("renders every op as one line of an nft -f script", () => {
    const ops: TxOp[] = [
      { op: "ensure-table" },
      { op: "delete-table" },
      { op: "ensure-table" },
      {
        op: "add-chain",
        chain: "cali-PRE",
        base: { type: "filter", hook: "prerouting", priority: -300, policy: "accept" },
      },
      { op: "add-chain", chain: "cali-pol-a" },
      { op: "flush-chain", chain: "cali-pol-a" },
      { op: "add-rule", chain: "cali-pol-a", rule: r({ verdict: { type: "accept" } }) },
      { op: "delete-rule", chain: "cali-pol-a", handle: 7 },
      { op: "delete-chain", chain: "cali-pol-a" },
      { op: "add-set", set: { name: "cali40s-a", keyType: "ipv4_addr", interval: true, comment: "sel" } },
      {
        op: "add-elements",
        set: "cali40s-a",
        elements: ["198.19.0.0/26", "198.19.1.7/24", "198.19.2.1-198.19.2.3", "198.19.3.4"],
      },
      {
        op: "add-set",
        set: { name: "cali40n-a", keyType: "ipv4_addr . inet_proto . inet_service", interval: false },
      },
      { op: "add-elements", set: "cali40n-a", elements: ["198.19.0.5 . 6 . 8080"] },
      { op: "add-set", set: { name: "cali-ifs", keyType: "ifname", interval: false } },
      { op: "add-elements", set: "cali-ifs", elements: ["cali1234"] },
      { op: "add-elements", set: "cali-ifs", elements: [] },
      { op: "delete-elements", set: "cali40s-a", elements: ["198.19.3.4"] },
      { op: "flush-set", set: "cali40s-a" },
      { op: "delete-set", set: "cali40s-a" },
      { op: "add-map", map: { name: "cali-to-wl", keyType: "ifname", comment: "dispatch" } },
      {
        op: "add-map-elements",
        map: "cali-to-wl",
        elements: [
          ["cali1", { type: "jump", chain: "cali-pol-a" }],
          ["cali2", { type: "drop" }],
        ],
      },
      { op: "delete-map-elements", map: "cali-to-wl", keys: ["cali2"] },
      { op: "flush-map", map: "cali-to-wl" },
      { op: "delete-map", map: "cali-to-wl" },
    ];
    assert.equal(
      renderTransaction({ ops }),
      [
        "add table inet calico",
        "delete table inet calico",
        "add table inet calico",
        "add chain inet calico cali-PRE { type filter hook prerouting priority -300; policy accept; }",
        "add chain inet calico cali-pol-a",
        "flush chain inet calico cali-pol-a",
        "add rule inet calico cali-pol-a accept",
        "delete rule inet calico cali-pol-a handle 7",
        "delete chain inet calico cali-pol-a",
        'add set inet calico cali40s-a { type ipv4_addr; flags interval; comment "sel"; }',
        "add element inet calico cali40s-a { 198.19.0.0/26, 198.19.1.0/24, 198.19.2.1-198.19.2.3, 198.19.3.4 }",
        "add set inet calico cali40n-a { type ipv4_addr . inet_proto . inet_service; }",
        "add element inet calico cali40n-a { 198.19.0.5 . 6 . 8080 }",
        "add set inet calico cali-ifs { type ifname; }",
        'add element inet calico cali-ifs { "cali1234" }',
        "delete element inet calico cali40s-a { 198.19.3.4 }",
        "flush set inet calico cali40s-a",
        "delete set inet calico cali40s-a",
        'add map inet calico cali-to-wl { type ifname : verdict; comment "dispatch"; }',
        'add element inet calico cali-to-wl { "cali1" : jump cali-pol-a, "cali2" : drop }',
        'delete element inet calico cali-to-wl { "cali2" }',
        "flush map inet calico cali-to-wl",
        "delete map inet calico cali-to-wl",
        "",
      ].join("\n"),
    );
  });

  it("quotes ifname elements of sets it knows only from keyTypes", () => {
    const text = renderTransaction(
      { ops: [{ op: "add-elements", set: "s", elements: ["cali1"] }] },
      { keyTypes: new Map([["s", "ifname"]]) },
    );
    assert.equal(text, 'add element inet calico s { "cali1" }\n');
  });
});
