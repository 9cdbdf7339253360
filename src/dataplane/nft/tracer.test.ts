import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseCIDR } from "../../api/net.js";
import { FakeNft } from "./fake-nft.js";
import { explain, tracePacket, type Packet } from "./tracer.js";
import type { BaseChainSpec, Rule, TxOp } from "./model.js";

const cidr = (s: string): NonNullable<ReturnType<typeof parseCIDR>> => parseCIDR(s)!;
const fwd = (priority = 0, policy: "accept" | "drop" = "accept"): BaseChainSpec => ({
  type: "filter",
  hook: "forward",
  priority,
  policy,
});
const rule = (r: Partial<Rule>): Rule => ({ matches: [], statements: [], ...r });

function build(ops: TxOp[]): FakeNft {
  const f = new FakeNft();
  f.applySync({ ops: [{ op: "ensure-table" }, ...ops] });
  return f;
}

const tcp = (saddr: string, daddr: string, dport: number, extra: Partial<Packet> = {}): Packet => ({
  family: 4,
  saddr,
  daddr,
  protocol: 6,
  sport: 40000,
  dport,
  ctState: "new",
  iifname: "cali1",
  oifname: "cali2",
  ...extra,
});

describe("tracePacket", () => {
  const policyTable = build([
    { op: "add-chain", chain: "cali-FORWARD", base: fwd(0, "drop") },
    { op: "add-chain", chain: "cali-to-wl2" },
    { op: "add-set", set: { name: "cali40s-src", keyType: "ipv4_addr", interval: true } },
    { op: "add-elements", set: "cali40s-src", elements: ["198.19.1.0/24", "198.19.2.1-198.19.2.9"] },
    { op: "add-map", map: { name: "cali-to", keyType: "ifname" } },
    { op: "add-map-elements", map: "cali-to", elements: [["cali2", { type: "jump", chain: "cali-to-wl2" }]] },
    {
      op: "add-rule",
      chain: "cali-FORWARD",
      rule: rule({
        matches: [{ type: "ct-state", op: "==", states: ["established", "related"] }],
        verdict: { type: "accept" },
        comment: "ct",
      }),
    },
    {
      op: "add-rule",
      chain: "cali-FORWARD",
      rule: rule({ verdict: { type: "vmap", key: "oifname", map: "cali-to" }, comment: "dispatch" }),
    },
    {
      op: "add-rule",
      chain: "cali-to-wl2",
      rule: rule({
        matches: [
          { type: "addr-set", family: 4, dir: "saddr", op: "==", set: "cali40s-src" },
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
        verdict: { type: "accept" },
        comment: "allow web",
      }),
    },
  ]);

  it("dispatches by vmap and matches interval sets and port ranges", () => {
    const rs = policyTable.ruleset();
    const ok = tracePacket(rs, tcp("198.19.1.7", "198.19.0.2", 8080), "forward");
    assert.equal(ok.verdict, "accept", explain(ok));
    assert.deepEqual(
      ok.matched.map((s) => s.comment),
      ["dispatch", "allow web"],
    );
    assert.equal(tracePacket(rs, tcp("198.19.2.5", "198.19.0.2", 80), "forward").verdict, "accept");
    // Outside the range, wrong port: falls back to the base chain's policy drop.
    const no = tracePacket(rs, tcp("198.19.2.10", "198.19.0.2", 80), "forward");
    assert.equal(no.verdict, "drop", explain(no));
    assert.equal(no.matched.at(-1)?.action, "policy drop");
    assert.equal(tracePacket(rs, tcp("198.19.1.7", "198.19.0.2", 22), "forward").verdict, "drop");
    // An interface without a map element: no verdict from the vmap.
    assert.equal(
      tracePacket(rs, tcp("198.19.1.7", "198.19.0.2", 80, { oifname: "eth0" }), "forward").verdict,
      "drop",
    );
    // Established traffic is accepted before dispatch.
    assert.equal(
      tracePacket(rs, tcp("198.19.9.9", "198.19.0.2", 22, { ctState: "established" }), "forward").verdict,
      "accept",
    );
    // Another hook has no chains: accept.
    assert.equal(tracePacket(rs, tcp("198.19.9.9", "198.19.0.2", 22), "input").verdict, "accept");
  });

  it("runs every base chain of the hook in priority order; accept does not skip the next", () => {
    const f = build([
      { op: "add-chain", chain: "late", base: fwd(10) },
      { op: "add-chain", chain: "early", base: fwd(-10) },
      {
        op: "add-rule",
        chain: "early",
        rule: rule({
          statements: [{ type: "set-mark", clear: 0, set: 0x10 }],
          verdict: { type: "accept" },
          comment: "mark",
        }),
      },
      {
        op: "add-rule",
        chain: "late",
        rule: rule({
          matches: [{ type: "mark", op: "==", mask: 0x10, value: 0x10 }],
          verdict: { type: "drop" },
          comment: "marked",
        }),
      },
    ]);
    const r = tracePacket(f.ruleset(), tcp("198.19.0.1", "198.19.0.2", 80), "forward");
    assert.equal(r.verdict, "drop", explain(r));
    assert.deepEqual(
      r.matched.map((s) => s.chain),
      ["early", "late"],
    );
    assert.equal(r.mark, 0x10);
  });

  it("jump returns, goto does not", () => {
    const f = build([
      { op: "add-chain", chain: "base", base: fwd() },
      { op: "add-chain", chain: "sub" },
      {
        op: "add-rule",
        chain: "sub",
        rule: rule({
          matches: [{ type: "l4proto", op: "==", protocols: [17] }],
          verdict: { type: "return" },
        }),
      },
      { op: "add-rule", chain: "sub", rule: rule({ verdict: { type: "accept" }, comment: "sub accept" }) },
      {
        op: "add-rule",
        chain: "base",
        rule: rule({ matches: [{ type: "nfproto", family: 4 }], verdict: { type: "jump", chain: "sub" } }),
      },
      { op: "add-rule", chain: "base", rule: rule({ verdict: { type: "drop" }, comment: "after jump" }) },
    ]);
    const udp = tracePacket(f.ruleset(), { ...tcp("198.19.0.1", "198.19.0.2", 53), protocol: 17 }, "forward");
    assert.equal(udp.verdict, "drop", explain(udp));
    assert.equal(udp.matched.at(-1)?.comment, "after jump");
    assert.equal(tracePacket(f.ruleset(), tcp("198.19.0.1", "198.19.0.2", 53), "forward").verdict, "accept");

    const g = build([
      { op: "add-chain", chain: "base", base: fwd() },
      { op: "add-chain", chain: "sub" },
      { op: "add-rule", chain: "base", rule: rule({ verdict: { type: "goto", chain: "sub" } }) },
      { op: "add-rule", chain: "base", rule: rule({ verdict: { type: "drop" } }) },
    ]);
    // goto: the end of `sub` returns past `base`, to its policy (accept).
    const r = tracePacket(g.ruleset(), tcp("198.19.0.1", "198.19.0.2", 53), "forward");
    assert.equal(r.verdict, "accept", explain(r));
    assert.equal(r.matched.at(-1)?.action, "policy accept");
  });

  it("matches concatenated sets, icmp pairs, families and fib", () => {
    const f = build([
      { op: "add-chain", chain: "in", base: { type: "filter", hook: "input", priority: 0, policy: "drop" } },
      {
        op: "add-set",
        set: { name: "cali40n-np", keyType: "ipv4_addr . inet_proto . inet_service", interval: false },
      },
      { op: "add-elements", set: "cali40n-np", elements: ["198.19.0.5 . 6 . 8080"] },
      {
        op: "add-rule",
        chain: "in",
        rule: rule({
          matches: [{ type: "addr-port-set", family: 4, dir: "daddr", op: "==", set: "cali40n-np" }],
          verdict: { type: "accept" },
          comment: "named port",
        }),
      },
      {
        op: "add-rule",
        chain: "in",
        rule: rule({
          matches: [{ type: "icmp", family: 4, op: "==", icmpType: 8, code: 0 }],
          verdict: { type: "accept" },
          comment: "ping",
        }),
      },
      {
        op: "add-rule",
        chain: "in",
        rule: rule({
          matches: [{ type: "addr", family: 4, dir: "saddr", op: "!=", cidrs: [cidr("198.19.0.0/16")] }],
          verdict: { type: "reject" },
          comment: "not ours",
        }),
      },
      {
        op: "add-rule",
        chain: "in",
        rule: rule({
          matches: [{ type: "fib-daddr-local", op: "==" }],
          statements: [{ type: "log", prefix: "local " }],
          verdict: { type: "accept" },
          comment: "local",
        }),
      },
    ]);
    const rs = f.ruleset();
    assert.equal(tracePacket(rs, tcp("198.19.1.1", "198.19.0.5", 8080), "input").verdict, "accept");
    assert.equal(tracePacket(rs, tcp("198.19.1.1", "198.19.0.5", 8081), "input").verdict, "drop");
    assert.equal(
      tracePacket(rs, { ...tcp("198.19.1.1", "198.19.0.5", 8080), protocol: 17 }, "input").verdict,
      "drop",
    );
    const ping = {
      family: 4,
      saddr: "198.19.1.1",
      daddr: "198.19.0.9",
      protocol: 1,
      icmpType: 8,
      icmpCode: 0,
      ctState: "new",
    } as const;
    assert.equal(tracePacket(rs, ping, "input").matched[0]?.comment, "ping");
    assert.equal(tracePacket(rs, { ...ping, icmpCode: 1 }, "input").verdict, "drop");
    assert.equal(tracePacket(rs, tcp("203.0.113.1", "198.19.0.9", 1), "input").verdict, "reject");
    // An IPv6 packet never matches an `ip saddr != ...` rule (nft's implicit nfproto dependency).
    const v6 = {
      family: 6,
      saddr: "fd00:19::1",
      daddr: "fd00:19::2",
      protocol: 6,
      dport: 1,
      ctState: "new",
    } as const;
    assert.equal(tracePacket(rs, v6, "input").verdict, "drop");
    const local = tracePacket(rs, { ...v6, daddrIsLocal: true }, "input");
    assert.equal(local.verdict, "accept", explain(local));
    assert.deepEqual(local.logs, ["local "]);
  });

  it("icmp != applies to the (type, code) pair and needs the icmp protocol", () => {
    const f = build([
      { op: "add-chain", chain: "b", base: fwd() },
      {
        op: "add-rule",
        chain: "b",
        rule: rule({
          matches: [{ type: "icmp", family: 6, op: "!=", icmpType: 128, code: 0 }],
          verdict: { type: "drop" },
        }),
      },
    ]);
    const base = {
      family: 6,
      saddr: "fd00:19::1",
      daddr: "fd00:19::2",
      protocol: 58,
      ctState: "new",
    } as const;
    assert.equal(
      tracePacket(f.ruleset(), { ...base, icmpType: 128, icmpCode: 0 }, "forward").verdict,
      "accept",
    );
    assert.equal(
      tracePacket(f.ruleset(), { ...base, icmpType: 128, icmpCode: 1 }, "forward").verdict,
      "drop",
    );
    assert.equal(tracePacket(f.ruleset(), { ...base, protocol: 6, dport: 1 }, "forward").verdict, "accept");
  });
});
