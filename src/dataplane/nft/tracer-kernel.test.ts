/**
 * The tracer against the kernel: one ruleset applied to `FakeNft` and, through `NftCli`, to a
 * namespace that real packets reach over a veth; the tracer's verdict must be what the packets
 * met. TCP: "connection refused" (RST from the stack) means the input hook accepted, a timeout
 * means it dropped. Needs root, ip, nft, nc, ping; outside CI it skips without them.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { run, runOk } from "../netns.js";
import { FakeNft } from "./fake-nft.js";
import { NftCli } from "./nft-cli.js";
import { explain, tracePacket, type Packet } from "./tracer.js";
import type { Transaction } from "./model.js";

const skip =
  process.env.CI === undefined && process.getuid?.() !== 0
    ? "needs root to create network namespaces (runs in CI)"
    : false;

const A = "198.19.0.1"; // client, in the allowed set
const A2 = "198.19.0.3"; // client, not in the set
const B = "198.19.0.2"; // host with the ruleset

const ruleset: Transaction = {
  ops: [
    { op: "ensure-table" },
    {
      op: "add-chain",
      chain: "cali-INPUT",
      base: { type: "filter", hook: "input", priority: 0, policy: "drop" },
    },
    { op: "add-chain", chain: "cali-from-dev" },
    { op: "add-set", set: { name: "cali40s-src", keyType: "ipv4_addr", interval: true } },
    { op: "add-elements", set: "cali40s-src", elements: ["198.19.0.0/31"] },
    {
      op: "add-set",
      set: { name: "cali40n-np", keyType: "ipv4_addr . inet_proto . inet_service", interval: false },
    },
    { op: "add-elements", set: "cali40n-np", elements: [`${B} . 6 . 9090`] },
    { op: "add-map", map: { name: "cali-from", keyType: "ifname" } },
    {
      op: "add-map-elements",
      map: "cali-from",
      elements: [["ctsb0", { type: "goto", chain: "cali-from-dev" }]],
    },
    {
      op: "add-rule",
      chain: "cali-INPUT",
      rule: {
        matches: [{ type: "ct-state", op: "==", states: ["established", "related"] }],
        statements: [],
        verdict: { type: "accept" },
      },
    },
    {
      op: "add-rule",
      chain: "cali-INPUT",
      rule: { matches: [], statements: [], verdict: { type: "vmap", key: "iifname", map: "cali-from" } },
    },
    {
      op: "add-rule",
      chain: "cali-from-dev",
      rule: {
        matches: [{ type: "icmp", family: 4, op: "==", icmpType: 8 }],
        statements: [{ type: "set-mark", clear: 0, set: 0x100 }],
        comment: "mark pings",
      },
    },
    {
      op: "add-rule",
      chain: "cali-from-dev",
      rule: {
        matches: [
          { type: "mark", op: "==", mask: 0x100, value: 0x100 },
          { type: "addr-set", family: 4, dir: "saddr", op: "==", set: "cali40s-src" },
        ],
        statements: [],
        verdict: { type: "accept" },
        comment: "marked ping",
      },
    },
    {
      op: "add-rule",
      chain: "cali-from-dev",
      rule: {
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
        statements: [],
        verdict: { type: "accept" },
        comment: "web",
      },
    },
    {
      op: "add-rule",
      chain: "cali-from-dev",
      rule: {
        matches: [{ type: "addr-port-set", family: 4, dir: "daddr", op: "==", set: "cali40n-np" }],
        statements: [],
        verdict: { type: "accept" },
        comment: "named port",
      },
    },
  ],
};

describe("tracer verdicts match real packets", { skip }, () => {
  const nsA = `ctsnft-${process.pid}-ta`;
  const nsB = `ctsnft-${process.pid}-tb`;
  const fake = new FakeNft();

  before(async () => {
    await runOk("ip", ["netns", "add", nsA]);
    await runOk("ip", ["netns", "add", nsB]);
    await runOk("ip", [
      "link",
      "add",
      "ctsa0",
      "netns",
      nsA,
      "type",
      "veth",
      "peer",
      "name",
      "ctsb0",
      "netns",
      nsB,
    ]);
    await runOk("ip", ["-n", nsA, "addr", "add", `${A}/24`, "dev", "ctsa0"]);
    await runOk("ip", ["-n", nsA, "addr", "add", `${A2}/24`, "dev", "ctsa0"]);
    await runOk("ip", ["-n", nsB, "addr", "add", `${B}/24`, "dev", "ctsb0"]);
    for (const [ns, dev] of [
      [nsA, "ctsa0"],
      [nsB, "ctsb0"],
    ] as const) {
      await runOk("ip", ["-n", ns, "link", "set", dev, "up"]);
      await runOk("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
    await new NftCli({ netns: nsB }).apply(ruleset);
    fake.applySync(ruleset);
  });
  after(async () => {
    await run("ip", ["netns", "delete", nsA]);
    await run("ip", ["netns", "delete", nsB]);
  });

  const tcp = (saddr: string, dport: number): Packet => ({
    family: 4,
    iifname: "ctsb0",
    saddr,
    daddr: B,
    protocol: 6,
    sport: 40000,
    dport,
    ctState: "new",
    daddrIsLocal: true,
  });

  /** accept when the stack answered (refused), drop on timeout. */
  async function kernelTcp(saddr: string, dport: number): Promise<"accept" | "drop"> {
    const r = await run("nc", ["-z", "-v", "-w", "1", "-s", saddr, B, String(dport)], {
      netns: nsA,
      timeoutMs: 5000,
    });
    const out = r.stderr + r.stdout;
    if (/refused|succeeded/.test(out)) return "accept";
    return "drop";
  }

  async function kernelPing(saddr: string): Promise<"accept" | "drop"> {
    const r = await run("ping", ["-c", "1", "-W", "1", "-I", saddr, B], { netns: nsA, timeoutMs: 5000 });
    return r.code === 0 ? "accept" : "drop";
  }

  const cases: [string, string, number][] = [
    ["allowed source, web port", A, 80],
    ["allowed source, port range", A, 8080],
    ["allowed source, other port", A, 81],
    ["other source, web port", A2, 80],
    ["named port from anywhere", A2, 9090],
  ];
  for (const [name, saddr, dport] of cases) {
    it(`tcp: ${name}`, async () => {
      const traced = tracePacket(fake.ruleset(), tcp(saddr, dport), "input");
      assert.equal(await kernelTcp(saddr, dport), traced.verdict, explain(traced));
    });
  }
  for (const saddr of [A, A2]) {
    it(`ping from ${saddr} (mark set, then tested)`, async () => {
      const traced = tracePacket(
        fake.ruleset(),
        {
          family: 4,
          iifname: "ctsb0",
          saddr,
          daddr: B,
          protocol: 1,
          icmpType: 8,
          icmpCode: 0,
          ctState: "new",
          daddrIsLocal: true,
        },
        "input",
      );
      assert.equal(await kernelPing(saddr), traced.verdict, explain(traced));
    });
  }
});
