/**
 * Element updates over raw nfnetlink: the encoder's refusals, and in a real namespace that
 * what the kernel lists after netlink batches equals FakeNft's listing for the same transactions,
 * that elements written by `nft -f` are deleted by netlink and the other way round, and that a
 * failing batch changes nothing and falls back to `nft -f` (whose error the caller sees).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { run, runOk } from "../netns.js";
import { FakeNft, isApplyFailed } from "./fake-nft.js";
import { NftCli } from "./nft-cli.js";
import fc from "fast-check";
import { formatIP } from "../../api/net.js";
import { elementKey, fastKey, generalKey, type ElementTarget } from "./netlink-elements.js";
import { UnsupportedNetlinkError } from "./netlink.js";
import { encodeTransaction } from "./netlink-tx.js";
import type { TableListing, Transaction } from "./model.js";

const targets: Record<string, ElementTarget> = {
  v4: { keyType: "ipv4_addr", interval: true, map: false },
  c4: { keyType: "ipv4_addr . inet_proto . inet_service", interval: false, map: false },
  m: { keyType: "ifname", interval: false, map: true },
};
const known = new Map(Object.entries(targets));
const elementsTx = (ops: Transaction["ops"]): Transaction => ({ ops });

describe("element operations in a netlink batch", () => {
  it("frames one batch: BEGIN, one message per op, END; the last asks for an ACK", () => {
    const b = encodeTransaction(
      elementsTx([
        { op: "add-elements", set: "v4", elements: ["198.19.0.1", "198.19.1.0/24"] },
        { op: "delete-elements", set: "c4", elements: ["198.19.0.1 . 6 . 80"] },
        { op: "add-map-elements", map: "m", elements: [["cali1", { type: "goto", chain: "c" }]] },
      ]),
      known,
      7,
    );
    const types: number[] = [];
    for (let off = 0; off < b.bytes.length;) {
      const len = b.bytes.readUInt32LE(off);
      types.push(b.bytes.readUInt16LE(off + 4));
      off += len;
    }
    assert.deepEqual(types, [16, 0x0a0c, 0x0a0e, 0x0a0c, 17]);
    assert.deepEqual(b.seqs, [10]);
  });

  it("refuses what it cannot encode, so the caller uses nft -f", () => {
    const cases: [string, Transaction][] = [
      ["unknown set", elementsTx([{ op: "add-elements", set: "nope", elements: ["1.2.3.4"] }])],
      ["a set op on a map", elementsTx([{ op: "add-elements", set: "m", elements: ["cali1"] }])],
      [
        "interval to the top of the space",
        elementsTx([{ op: "add-elements", set: "v4", elements: ["255.255.255.0/24"] }]),
      ],
      ["too long ifname", elementsTx([{ op: "delete-map-elements", map: "m", keys: ["x".repeat(16)] }])],
    ];
    for (const [name, tx] of cases)
      assert.throws(() => encodeTransaction(tx, known), UnsupportedNetlinkError, name);
  });
});

function skipReason(): string | false {
  if (process.env.CI !== undefined) return false;
  if (process.getuid?.() !== 0) return "needs root to create network namespaces (runs in CI)";
  return false;
}

const plain = (l: TableListing | undefined): unknown =>
  l === undefined
    ? undefined
    : {
        sets: [...l.sets].sort(([a], [b]) => a.localeCompare(b)).map(([k, s]) => [k, [...s.elements].sort()]),
        maps: [...l.maps]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, m]) => [k, [...m.elements].sort(([a], [b]) => a.localeCompare(b))]),
      };

async function outcome(nft: { apply(tx: Transaction): Promise<void> }, tx: Transaction): Promise<string> {
  try {
    await nft.apply(tx);
    return "ok";
  } catch (e) {
    if (isApplyFailed(e)) return "failed";
    throw e;
  }
}

describe("netlink element batches in a real namespace", { skip: skipReason() }, () => {
  const ns = `ctsnl-${process.pid}`;
  before(async () => {
    await runOk("ip", ["netns", "add", ns]);
  });
  after(async () => {
    await run("ip", ["netns", "delete", ns]);
  });

  it("lists like FakeNft, interoperates with nft -f, and falls back on failure", async () => {
    const cli = new NftCli({ netns: ns });
    const script = new NftCli({ netns: ns, netlink: false });
    const fake = new FakeNft();
    const setup: Transaction = {
      ops: [
        { op: "ensure-table" },
        { op: "add-set", set: { name: "cali40s-a", keyType: "ipv4_addr", interval: true } },
        { op: "add-set", set: { name: "cali60s-a", keyType: "ipv6_addr", interval: true } },
        {
          op: "add-set",
          set: { name: "cali40n-a", keyType: "ipv4_addr . inet_proto . inet_service", interval: false },
        },
        {
          op: "add-set",
          set: { name: "cali60n-a", keyType: "ipv6_addr . inet_proto . inet_service", interval: false },
        },
        { op: "add-map", map: { name: "filter-cali-to-wl-dispatch", keyType: "ifname" } },
        { op: "add-chain", chain: "filter-cali-tw-x" },
        { op: "add-elements", set: "cali40s-a", elements: ["198.19.0.1", "198.19.0.2", "198.19.8.0/22"] },
      ],
    };
    const steps: [Transaction, string][] = [
      [setup, "ok"],
      [
        {
          ops: [
            { op: "ensure-table" },
            { op: "add-elements", set: "cali40s-a", elements: ["198.19.0.3", "198.19.0.10-198.19.0.20"] },
            { op: "add-elements", set: "cali60s-a", elements: ["fd00:19:0:1::5", "fd00:19:0:2::/64"] },
            {
              op: "add-elements",
              set: "cali40n-a",
              elements: ["198.19.0.1 . 6 . 8080", "198.19.0.1 . 17 . 53"],
            },
            { op: "add-elements", set: "cali60n-a", elements: ["fd00:19:0:1::5 . 6 . 443"] },
            {
              op: "add-map-elements",
              map: "filter-cali-to-wl-dispatch",
              elements: [
                ["cali1", { type: "goto", chain: "filter-cali-tw-x" }],
                ["cali2", { type: "drop" }],
              ],
            },
          ],
        },
        "ok",
      ],
      // Elements nft -f wrote (setup), deleted over netlink; and adjacent intervals.
      [
        { ops: [{ op: "delete-elements", set: "cali40s-a", elements: ["198.19.0.2", "198.19.8.0/22"] }] },
        "ok",
      ],
      [
        {
          ops: [
            { op: "delete-elements", set: "cali40n-a", elements: ["198.19.0.1 . 17 . 53"] },
            { op: "delete-map-elements", map: "filter-cali-to-wl-dispatch", keys: ["cali2"] },
            {
              op: "add-map-elements",
              map: "filter-cali-to-wl-dispatch",
              elements: [["cali2", { type: "accept" }]],
            },
          ],
        },
        "ok",
      ],
      // Not there: the kernel aborts the batch, nft -f reports the failure, nothing changed.
      [
        {
          ops: [
            { op: "add-elements", set: "cali40s-a", elements: ["198.19.0.99"] },
            { op: "delete-elements", set: "cali40s-a", elements: ["198.19.7.7"] },
          ],
        },
        "failed",
      ],
    ];
    for (const [i, [tx, want]] of steps.entries()) {
      assert.equal(await outcome(cli, tx), want, `step ${i} (kernel)`);
      assert.equal(await outcome(fake, tx), want, `step ${i} (fake)`);
      assert.deepEqual(plain(await script.list()), plain(await fake.list()), `step ${i} listing`);
    }
    assert.equal(cli.stats.netlink, 4, "every transaction but the failing one went over netlink");
    assert.equal(cli.stats.netlinkFallbacks, 1);
    // Netlink-written elements, deleted by nft -f.
    const del: Transaction = {
      ops: [
        { op: "delete-elements", set: "cali40s-a", elements: ["198.19.0.3", "198.19.0.10-198.19.0.20"] },
        { op: "delete-elements", set: "cali60s-a", elements: ["fd00:19:0:2::/64"] },
        { op: "delete-map-elements", map: "filter-cali-to-wl-dispatch", keys: ["cali1"] },
      ],
    };
    assert.equal(await outcome(script, del), "ok");
    assert.equal(await outcome(fake, del), "ok");
    assert.deepEqual(plain(await script.list()), plain(await fake.list()));
  });
});

describe("element keys: the fast parser agrees with the general one", () => {
  const t = (keyType: ElementTarget["keyType"], interval: boolean): ElementTarget => ({
    keyType,
    interval,
    map: false,
  });
  const outcome = (f: () => unknown): unknown => {
    try {
      return f();
    } catch (e) {
      return e instanceof Error ? `throws ${e.name}` : "throws";
    }
  };
  const agree = (target: ElementTarget, text: string): void => {
    const fast = fastKey(target, text);
    const general = outcome(() => generalKey(target, text));
    if (fast !== undefined) assert.deepEqual(fast, general, `${target.keyType} ${target.interval} "${text}"`);
    assert.deepEqual(
      outcome(() => elementKey(target, text)),
      general,
      `"${text}"`,
    );
  };
  const targetsAll = [
    t("ipv4_addr", false),
    t("ipv4_addr", true),
    t("ipv6_addr", false),
    t("ipv6_addr", true),
    t("ipv4_addr . inet_proto . inet_service", false),
    t("ipv6_addr . inet_proto . inet_service", false),
  ];

  it("on edge cases", () => {
    const texts = [
      "198.19.0.5",
      "198.19.0.5/32",
      "198.19.3.7/24",
      "198.19.3.7/23",
      "0.0.0.0/0",
      "255.255.255.255",
      "255.255.255.255/32",
      "255.255.255.0/24",
      "255.255.255.254/31",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "1.2.3.256",
      "1.2.3.4/33",
      "1.2.3.4/",
      "1.2.3.4/08",
      " 1.2.3.4",
      "1.2.3.4-1.2.3.9",
      "::",
      "::/0",
      "::1",
      "fd00:19::5",
      "FD00:19::5",
      "fd00:19::",
      "fd00:19::/48",
      "fd00:19:0:0:0:0:0:5",
      "fd00:19:0:0:0:0:0:5:6",
      "fd00::19::5",
      "fd00:19:::5",
      "fd00:12345::5",
      ":fd00::5",
      "fd00::5:",
      "::ffff:198.19.0.5",
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120",
      "fd00:19::7/127",
      "fd00:19::7/125",
      "198.19.0.5 . 6 . 8080",
      "198.19.0.5 . 006 . 8080",
      "198.19.0.5 . 6 . 65536",
      "198.19.0.5 . 256 . 80",
      "fd00:19::5 . 17 . 53",
      "fd00:19::5 . 17 . 053",
      "198.19.0.5 . 6",
    ];
    for (const target of targetsAll) for (const text of texts) agree(target, text);
    // The forms the dataplane writes do take the fast path.
    for (const [target, text] of [
      [targetsAll[0]!, "198.19.0.5"],
      [targetsAll[1]!, "198.19.3.0/24"],
      [targetsAll[2]!, "fd00:19::5"],
      [targetsAll[3]!, "fd00:19::/48"],
      [targetsAll[4]!, "198.19.0.5 . 6 . 8080"],
      [targetsAll[5]!, "fd00:19::5 . 17 . 53"],
    ] as const)
      assert.notEqual(fastKey(target, text), undefined, text);
  });

  it("on random addresses and prefixes", () => {
    const v4 = fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }));
    const v6 = fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 }));
    const big = (b: Uint8Array): bigint => b.reduce((a, x) => (a << 8n) | BigInt(x), 0n);
    fc.assert(
      fc.property(
        v4,
        v6,
        fc.boolean(),
        fc.integer({ min: 0, max: 65535 }),
        ([a4, p4], [a6, p6], withLen, port) => {
          const s4 = formatIP(4, big(a4));
          const s6 = formatIP(6, big(a6));
          for (const target of targetsAll) {
            agree(target, withLen ? `${s4}/${p4}` : s4);
            agree(target, withLen ? `${s6}/${p6}` : s6);
            agree(target, `${s4} . 6 . ${port}`);
            agree(target, `${s6} . 17 . ${port}`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
