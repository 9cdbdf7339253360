/**
 * The netlink transaction path against `nft -f`, in the kernel: the same transactions applied
 * over nfnetlink in one namespace and through `nft -f` in another must leave IDENTICAL tables —
 * `nft list table inet calico` text (handles stripped) and the `-j` listing our parser reads
 * (handles included: the batches allocate handles in the same order as nft's). Covers the
 * dataplane fixture's whole table, a transaction with every match/statement/verdict kind,
 * incremental operations, delete-table + recreate, and failing transactions (the error names the
 * failing operation; nothing changes). Needs root (network namespaces); never skipped.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { run, runOk } from "../netns.js";
import { asState, testConfig, testState } from "../fixtures.js";
import { DesiredTable } from "../rules/ruleset.js";
import { createAll } from "../table-diff.js";
import { isApplyFailed } from "./fake-nft.js";
import { NftCli } from "./nft-cli.js";
import { NftNetlinkError, loadLibc, sendBatch } from "./netlink.js";
import { encodeTransaction } from "./netlink-tx.js";
import { everyKindTransaction } from "./netlink-tx.fixture.js";
import type { TableListing, Transaction, TxOp } from "./model.js";

const nsNetlink = `ctsnl-${process.pid}-a`;
const nsScript = `ctsnl-${process.pid}-b`;

/** Listing as plain sorted JSON so Maps/Sets compare by content. */
function plain(l: TableListing | undefined): unknown {
  if (l === undefined) return undefined;
  return {
    chains: [...l.chains].sort(([a], [b]) => a.localeCompare(b)),
    sets: [...l.sets]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, s]) => [k, s.spec, [...s.elements].sort()]),
    maps: [...l.maps]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, m]) => [k, m.spec, [...m.elements].sort(([a], [b]) => a.localeCompare(b))]),
  };
}

/** `nft list table` text; `-a` output with the handles cut, so hidden differences show up. */
async function listText(ns: string): Promise<string> {
  const r = await run("nft", ["-a", "list", "table", "inet", "calico"], { netns: ns });
  if (r.code !== 0) return `(no table: ${r.stderr.trim()})`;
  return r.stdout.replace(/ # handle \d+/g, "");
}

describe("netlink transactions vs nft -f (kernel)", () => {
  const viaNetlink = new NftCli({ netns: nsNetlink });
  const viaScript = new NftCli({ netns: nsScript, netlink: false });

  before(async () => {
    assert.equal(process.getuid?.(), 0, "this test needs root (network namespaces); it does not skip");
    assert.ok(await loadLibc(), "koffi (libc) must load for the netlink path");
    await runOk("ip", ["netns", "add", nsNetlink]);
    await runOk("ip", ["netns", "add", nsScript]);
  });
  after(async () => {
    await run("ip", ["netns", "delete", nsNetlink]);
    await run("ip", ["netns", "delete", nsScript]);
  });

  /** Apply both ways; the netlink side must not have fallen back. Then compare the tables. */
  async function both(tx: Transaction, label: string): Promise<void> {
    const before = viaNetlink.stats.netlink;
    await viaNetlink.apply(tx);
    assert.equal(
      viaNetlink.stats.netlink,
      before + 1,
      `${label}: went to nft -f instead of netlink: ${viaNetlink.lastFallbackReason}`,
    );
    await viaScript.apply(tx);
    await same(label);
  }

  async function same(label: string): Promise<void> {
    const [a, b] = [await listText(nsNetlink), await listText(nsScript)];
    assert.equal(a, b, `${label}: nft list differs (netlink vs nft -f)`);
    assert.deepEqual(
      plain(await viaNetlink.list()),
      plain(await viaScript.list()),
      `${label}: -j listing differs`,
    );
  }

  const handleOf = async (cli: NftCli, chain: string, comment: string): Promise<number> => {
    const h = (await cli.list())?.chains.get(chain)?.rules.find((r) => r.comment === comment)?.handle;
    assert.ok(h !== undefined, `rule "${comment}" in ${chain}`);
    return h;
  };

  it("the dataplane fixture's whole table", async () => {
    const table = DesiredTable.fromState(asState(testState()), testConfig());
    await both({ ops: [{ op: "ensure-table" }, ...createAll(table)] }, "fixture cold start");
    const text = await listText(nsNetlink);
    assert.match(text, /iifname vmap @filter-cali-from-wl-dispatch/);
    assert.match(text, /comment "cali:[0-9a-f]{16}"/);
  });

  it("every match, statement and verdict kind", async () => {
    await both(everyKindTransaction(), "every kind");
    const text = await listText(nsNetlink);
    // Spot checks that what nft prints back is what render.ts wrote.
    assert.match(text, /iifname \{ "a", "b\*" \} accept/);
    assert.match(text, /tcp sport 53 tcp dport 80 accept comment "merged"/);
    assert.match(text, /ip daddr \. meta l4proto \. tcp dport @nl40n-a accept/);
    assert.match(text, /icmp type \. icmp code != \{ echo-request \. net-unreachable \} accept/);
    assert.match(
      text,
      /log prefix "calico-packet" level info meta mark set meta mark & 0xfffdffff \| 0x00010000/,
    );
    assert.match(text, /masquerade fully-random comment "masq"/);
  });

  it("incremental operations", async () => {
    const steps: [string, TxOp[]][] = [
      [
        "flush chain + add rules",
        [
          { op: "ensure-table" },
          { op: "flush-chain", chain: "nl-c2" },
          ...[1, 2, 3, 4, 5].map((i): TxOp => ({
            op: "add-rule",
            chain: "nl-c2",
            rule: {
              matches: [
                { type: "l4proto", op: "==", protocols: [6] },
                { type: "port", dir: "dport", op: "==", ranges: [{ first: 8000 + i, last: 8000 + i }] },
              ],
              statements: [],
              verdict: { type: "accept" },
              comment: `r${i}`,
            },
          })),
        ],
      ],
      ["flush chain again", [{ op: "ensure-table" }, { op: "flush-chain", chain: "nl-c2" }]],
      [
        "set and map elements",
        [
          { op: "add-elements", set: "nl40s-a", elements: ["198.19.9.0/24", "198.19.8.8"] },
          { op: "delete-elements", set: "nl40s-a", elements: ["198.19.5.5", "198.19.7.1-198.19.7.9"] },
          { op: "add-elements", set: "nl60n-a", elements: ["fd00:19::3 . 17 . 53"] },
          { op: "delete-elements", set: "nl40n-a", elements: ["198.19.0.3 . 17 . 53"] },
          { op: "delete-map-elements", map: "nl-from-wl", keys: ["cali3"] },
          {
            op: "add-map-elements",
            map: "nl-from-wl",
            elements: [["cali9", { type: "goto", chain: "nl-c2" }]],
          },
          { op: "flush-set", set: "nl-ports" },
          { op: "flush-map", map: "nl-to-wl" },
        ],
      ],
      [
        "new set, chain and rules using them",
        [
          { op: "add-set", set: { name: "nl40s-b", keyType: "ipv4_addr", interval: true } },
          { op: "add-elements", set: "nl40s-b", elements: ["198.19.3.0/25"] },
          { op: "add-chain", chain: "nl-c3" },
          {
            op: "add-rule",
            chain: "nl-c3",
            rule: {
              matches: [{ type: "addr-set", family: 4, dir: "daddr", op: "==", set: "nl40s-b" }],
              statements: [{ type: "counter" }],
              verdict: { type: "return" },
              comment: "uses b",
            },
          },
          {
            op: "add-rule",
            chain: "nl-c2",
            rule: {
              matches: [],
              statements: [],
              verdict: { type: "jump", chain: "nl-c3" },
              comment: "to c3",
            },
          },
        ],
      ],
    ];
    for (const [label, ops] of steps) await both({ ops }, label);

    // Delete one rule by handle: the handles are the same on both sides.
    const h = await handleOf(viaNetlink, "nl-c2", "to c3");
    assert.equal(await handleOf(viaScript, "nl-c2", "to c3"), h);
    await both({ ops: [{ op: "delete-rule", chain: "nl-c2", handle: h }] }, "delete rule by handle");
    await both(
      {
        ops: [
          { op: "flush-chain", chain: "nl-c3" },
          { op: "delete-chain", chain: "nl-c3" },
          { op: "delete-set", set: "nl40s-b" },
          { op: "delete-set", set: "nl-ifaces" },
        ],
      },
      "delete chain and sets",
    );
    await both(
      { ops: [{ op: "ensure-table" }, { op: "delete-table" }, ...everyKindTransaction().ops] },
      "delete table + recreate",
    );
  });

  it("a failing transaction throws naming the failing op and changes nothing", async () => {
    const before = await listText(nsNetlink);
    const bad: Transaction = {
      ops: [
        { op: "add-chain", chain: "nl-c4" },
        { op: "add-elements", set: "nl40s-a", elements: ["198.19.200.1"] },
        {
          op: "add-rule",
          chain: "nl-c4",
          rule: {
            matches: [],
            statements: [],
            verdict: { type: "jump", chain: "nl-missing" },
            comment: "bad",
          },
        },
      ],
    };
    // Straight over netlink: the kernel refuses op 3, aborts the batch.
    const libc = (await loadLibc())!;
    const batch = encodeTransaction(
      bad,
      new Map([["nl40s-a", { keyType: "ipv4_addr", interval: true, map: false }]]),
    );
    assert.throws(
      () => sendBatch(libc, nsNetlink, batch),
      (e: unknown) =>
        e instanceof NftNetlinkError &&
        e.errno === 2 &&
        /op 3 \(add rule nl-c4 \(comment "bad"\)\): ENOENT/.test(e.message) &&
        /nothing applied/.test(e.message),
    );
    assert.equal(await listText(nsNetlink), before, "a refused batch changed the table");

    // Through NftCli: refused over netlink, then nft -f gives its own error; nothing changed.
    const fallbacks = viaNetlink.stats.netlinkFallbacks;
    await assert.rejects(
      viaNetlink.apply(bad),
      (e: unknown) => isApplyFailed(e) && /nl-missing|No such file/.test(e.message),
    );
    assert.equal(viaNetlink.stats.netlinkFallbacks, fallbacks + 1);
    assert.match(viaNetlink.lastFallbackReason ?? "", /op 3 .*ENOENT/);
    assert.equal(await listText(nsNetlink), before);
    await assert.rejects(viaScript.apply(bad), isApplyFailed);
    assert.equal(await listText(nsScript), before);
  });

  it("CALICO_NFT_NETLINK=0 keeps the nft -f path", () => {
    const saved = process.env.CALICO_NFT_NETLINK;
    process.env.CALICO_NFT_NETLINK = "0";
    try {
      assert.equal(new NftCli({ netns: nsNetlink }).viaNetlink, false);
    } finally {
      if (saved === undefined) delete process.env.CALICO_NFT_NETLINK;
      else process.env.CALICO_NFT_NETLINK = saved;
    }
    assert.equal(new NftCli({ netns: nsNetlink }).viaNetlink, true);
  });
});
