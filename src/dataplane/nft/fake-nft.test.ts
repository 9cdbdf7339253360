import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FakeNft, isApplyFailed, type NftApplyError } from "./fake-nft.js";
import type { Transaction, TxOp } from "./model.js";

const base = { type: "filter", hook: "forward", priority: 0, policy: "accept" } as const;

function fresh(ops: TxOp[] = []): FakeNft {
  const f = new FakeNft();
  f.applySync({
    ops: [
      { op: "ensure-table" },
      { op: "add-chain", chain: "cali-fw", base },
      { op: "add-chain", chain: "cali-a" },
      { op: "add-set", set: { name: "cali40s-a", keyType: "ipv4_addr", interval: true } },
      { op: "add-map", map: { name: "cali-wl", keyType: "ifname" } },
      ...ops,
    ],
  });
  return f;
}

function refuses(f: FakeNft, tx: Transaction, line?: number): NftApplyError {
  const before = JSON.stringify([...(f.ruleset()?.chains.keys() ?? [])]);
  let err: unknown;
  try {
    f.applySync(tx);
  } catch (e) {
    err = e;
  }
  assert.ok(isApplyFailed(err), `expected NFT_APPLY_FAILED, got ${String(err)}`);
  if (line !== undefined) assert.equal(err.line, line);
  assert.equal(JSON.stringify([...(f.ruleset()?.chains.keys() ?? [])]), before);
  return err;
}

describe("FakeNft", () => {
  it("numbers objects and rules per table, anonymous sets included", async () => {
    const f = fresh([
      {
        op: "add-rule",
        chain: "cali-a",
        rule: { matches: [], statements: [], verdict: { type: "accept" }, comment: "one" },
      },
      {
        op: "add-rule",
        chain: "cali-a",
        rule: {
          matches: [{ type: "l4proto", op: "==", protocols: [6, 17] }],
          statements: [],
          comment: "two",
        },
      },
    ]);
    const l = await f.list();
    assert.deepEqual(l?.chains.get("cali-a")?.rules, [
      { handle: 5, comment: "one" },
      { handle: 7, comment: "two" },
    ]);
  });

  it("refuses, changing nothing, what nft refuses", () => {
    const f = fresh([{ op: "add-elements", set: "cali40s-a", elements: ["198.19.0.0/24"] }]);
    const rule = { matches: [], statements: [] };
    refuses(
      f,
      {
        ops: [
          { op: "add-chain", chain: "cali-b" },
          { op: "add-rule", chain: "cali-nope", rule },
        ],
      },
      2,
    );
    refuses(f, {
      ops: [
        { op: "add-rule", chain: "cali-a", rule: { ...rule, verdict: { type: "jump", chain: "cali-nope" } } },
      ],
    });
    refuses(f, {
      ops: [
        { op: "add-rule", chain: "cali-a", rule: { ...rule, verdict: { type: "jump", chain: "cali-fw" } } },
      ],
    });
    refuses(f, { ops: [{ op: "delete-chain", chain: "cali-nope" }] });
    refuses(f, { ops: [{ op: "delete-rule", chain: "cali-a", handle: 99 }] });
    refuses(f, { ops: [{ op: "add-elements", set: "cali-nope", elements: ["198.19.0.1"] }] });
    refuses(f, { ops: [{ op: "add-elements", set: "cali40s-a", elements: ["fd00:19::1"] }] });
    refuses(f, { ops: [{ op: "add-elements", set: "cali40s-a", elements: ["198.19.0.7"] }] });
    refuses(f, {
      ops: [{ op: "add-elements", set: "cali40s-a", elements: ["198.19.1.0/24", "198.19.1.9"] }],
    });
    refuses(f, { ops: [{ op: "delete-elements", set: "cali40s-a", elements: ["198.19.0.0/25"] }] });
    refuses(f, {
      ops: [
        {
          op: "add-map-elements",
          map: "cali-wl",
          elements: [["cali1", { type: "jump", chain: "cali-nope" }]],
        },
      ],
    });
    refuses(f, { ops: [{ op: "add-chain", chain: "cali-fw", base: { ...base, priority: 10 } }] });
    refuses(f, {
      ops: [{ op: "add-set", set: { name: "cali40s-a", keyType: "ipv6_addr", interval: true } }],
    });
    refuses(f, {
      ops: [
        {
          op: "add-rule",
          chain: "cali-a",
          rule: {
            ...rule,
            matches: [{ type: "addr-set", family: 6, dir: "saddr", op: "==", set: "cali40s-a" }],
          },
        },
      ],
    });
    // Referenced chains cannot be deleted; the chain's own rules go with it.
    f.applySync({
      ops: [
        { op: "add-map-elements", map: "cali-wl", elements: [["cali1", { type: "jump", chain: "cali-a" }]] },
      ],
    });
    refuses(f, { ops: [{ op: "delete-chain", chain: "cali-a" }] });
    f.applySync({
      ops: [
        { op: "delete-map-elements", map: "cali-wl", keys: ["cali1"] },
        { op: "delete-chain", chain: "cali-a" },
      ],
    });
    assert.equal(f.ruleset()?.chains.has("cali-a"), false);
  });

  it("creates and deletes the table in one transaction; a missing table lists as undefined", async () => {
    const f = new FakeNft();
    assert.equal(await f.list(), undefined);
    await f.apply({ ops: [{ op: "ensure-table" }, { op: "delete-table" }] });
    assert.equal(await f.list(), undefined);
    await assert.rejects(f.apply({ ops: [{ op: "delete-table" }] }), isApplyFailed);
  });

  it("keeps handles a kernel-refused batch used, not those of a batch nft refused itself", async () => {
    const f = fresh();
    const rule = { matches: [], statements: [] };
    // Kernel: delete of a missing chain; the add-chain after it still took handle 5.
    refuses(f, {
      ops: [
        { op: "delete-chain", chain: "cali-nope" },
        { op: "add-chain", chain: "cali-b" },
      ],
    });
    // nft: overlapping elements — never sent.
    refuses(f, {
      ops: [
        { op: "add-chain", chain: "cali-c" },
        { op: "add-elements", set: "cali40s-a", elements: ["198.19.0.0/24", "198.19.0.1"] },
      ],
    });
    f.applySync({ ops: [{ op: "add-rule", chain: "cali-a", rule }] });
    assert.deepEqual((await f.list())?.chains.get("cali-a")?.rules, [{ handle: 6 }]);
  });

  it("keeps the handles of a kernel-refused batch that went on to delete the table", async () => {
    // Shrunk from equivalence seed 731019377 (nft 1.0.6): the aborted batch's set and map took
    // handles 5 and 6 of the table it also deleted; the table survives the abort, counter kept.
    const f = fresh();
    const rule = { matches: [], statements: [] };
    refuses(f, {
      ops: [
        { op: "delete-chain", chain: "cali-nope" },
        { op: "add-set", set: { name: "cali60s-y", keyType: "ipv6_addr", interval: true } },
        { op: "add-map", map: { name: "cali-m", keyType: "ifname" } },
        { op: "delete-table" },
      ],
    });
    f.applySync({ ops: [{ op: "add-rule", chain: "cali-a", rule }] });
    assert.deepEqual((await f.list())?.chains.get("cali-a")?.rules, [{ handle: 7 }]);
  });

  it("burns the anonymous-set handle of a rule refused for a missing chain, not a rule handle", async () => {
    // Measured on nft 1.0.6: the literal's NEWSET precedes the NEWRULE in the batch, so the
    // anonymous set takes handle 5 before the kernel finds no chain; the rule takes none.
    const f = fresh();
    refuses(f, {
      ops: [
        {
          op: "add-rule",
          chain: "cali-nope",
          rule: {
            matches: [{ type: "ifname", dir: "iif", op: "==", names: ["cali*", "eth0"] }],
            statements: [],
          },
        },
      ],
    });
    f.applySync({ ops: [{ op: "add-rule", chain: "cali-a", rule: { matches: [], statements: [] } }] });
    assert.deepEqual((await f.list())?.chains.get("cali-a")?.rules, [{ handle: 6 }]);
  });

  it("normalises element text to what nft lists", async () => {
    const f = fresh([
      {
        op: "add-elements",
        set: "cali40s-a",
        elements: ["198.19.3.7/24", "198.19.4.0-198.19.4.255", "198.19.5.5/32"],
      },
    ]);
    assert.deepEqual(
      [...((await f.list())?.sets.get("cali40s-a")?.elements ?? [])],
      ["198.19.3.0/24", "198.19.4.0/24", "198.19.5.5"],
    );
  });
});
