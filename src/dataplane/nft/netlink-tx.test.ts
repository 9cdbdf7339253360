/**
 * The transaction encoder, pure: messages nft 1.0.6 sent for the rendered script of
 * `everyKindTransaction()` (captured with `strace -e trace=sendmsg -e write=3 nft -f`, sequence
 * numbers zeroed) must appear byte for byte in our batch; the framing (BEGIN/END, sequence numbers,
 * one ACK at the end, set ids), the op named for a sequence number, and the refusals that send a
 * transaction to `nft -f` instead.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseCIDR } from "../../api/net.js";
import { encodeTransaction } from "./netlink-tx.js";
import { everyKindTransaction } from "./netlink-tx.fixture.js";
import { UnsupportedNetlinkError } from "./netlink.js";
import type { Rule, Transaction } from "./model.js";

/** What nft sent (see the header): base chains, named sets and a map, anonymous sets, rules. */
const NFT_SENT: string[] = [
  [
    "60000000090a01040000000000000000010000000b00010063616c69636f00000c0002006e6c3430732d610008000300",
    "000000040800040000000007080005000000000408000a000000000112000d00000402000000070673656c2061000000",
  ].join(""),
  [
    "64000000090a01040000000000000000010000000b00010063616c69636f00000c0002006e6c36306e2d610008000300",
    "00000000080004000000830d080005000000001808000a000000000418000d00000400000000030800040d0000000100",
    "07026e00",
  ].join(""),
  [
    "84000000090a01040000000000000000010000000b00010063616c69636f00000f0002006e6c2d66726f6d2d776c0000",
    "08000300000000080800040000000029080005000000001008000600ffffff00080007000000000008000a0000000007",
    "21000d000004010000000104000000000604000000000709646973706174636800000000",
  ].join(""),
  [
    "54000000030a01040000000000000000010000000b00010063616c69636f00000b0003006e6c2d66776400000b000700",
    "66696c746572000008000500000000001400048008000100000000020800020000000000",
  ].join(""),
  [
    "54000000030a01040000000000000000010000000b00010063616c69636f00000b0003006e6c2d72617700000b000700",
    "66696c7465720000080005000000000114000480080001000000000008000200fffffed4",
  ].join(""),
  [
    "d0000000060a010c0000000000000000010000000b00010063616c69636f00000a0002006e6c2d633100000090000480",
    "24000180090001006d6574610000000014000280080002000000000608000100000000013800018008000100636d7000",
    "2c00028008000100000000010800020000000000180003801400010063616c6931323334000000000000000030000180",
    "0e000100696d6d6564696174650000001c0002800800010000000000100002800c000280080001000000000111000700",
    "000b6578616374206e616d6500000000",
  ].join(""),
  [
    "78000000090a01040000000000000000010000000b00010063616c69636f00000c0002005f5f73657425640008000300",
    "000000070800040000000029080005000000001008000a00000000090c000980080001000000000520000d0000040100",
    "0000020401000000030e0004090000000106000406000000",
  ].join(""),
  [
    "74000000090a01040000000000000000010000000b00010063616c69636f00000c0002005f5f73657425640008000300",
    "000000030800040000000029080005000000001008000a000000000a0c00098008000100000000021a000d0000040100",
    "0000030e00040900000001060004070000000000",
  ].join(""),
  [
    "78000000090a01040000000000000000010000000b00010063616c69636f00000c0002005f5f73657425640008000300",
    "000000070800040000000029080005000000001008000a000000000b0c000980080001000000000320000d0000040100",
    "0000020401000000030e0004090000000106000407000000",
  ].join(""),
  [
    "20010000060a010c0000000000000000010000000b00010063616c69636f00000a0002006e6c2d6331000000e4000480",
    "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d7000",
    "20000280080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f616400",
    "2400028008000100000000010800020000000002080003000000000008000400000000042c00018008000100636d7000",
    "20000280080001000000000108000200000000000c0003800800010000350050300001800e000100696d6d6564696174",
    "650000001c0002800800010000000000100002800c00028008000100000000010d00070000076d657267656400000000",
  ].join(""),
  [
    "bc010000060a010c0000000000000000010000000b00010063616c69636f00000a0002006e6c2d633100000090010480",
    "24000180090001006d6574610000000014000280080002000000000f08000100000000012c00018008000100636d7000",
    "20000280080001000000000108000200000000000c000380050001000200000024000180090001006d65746100000000",
    "14000280080002000000001008000100000000012c00018008000100636d700020000280080001000000000108000200",
    "000000000c0003800500010006000000340001800c0001007061796c6f61640024000280080001000000000108000200",
    "000000010800030000000010080004000000000424000180090001006d65746100000000140002800800020000000010",
    "0800010000000009340001800c0001007061796c6f61640024000280080001000000000a080002000000000208000300",
    "000000020800040000000002300001800b0001006c6f6f6b757000002000028008000200000000010c0001006e6c3430",
    "6e2d61000800040000000003300001800e000100696d6d6564696174650000001c000280080001000000000010000280",
    "0c0002800800010000000001",
  ].join(""),
  [
    "98000000090a01040000000000000000010000000b00010063616c69636f00000c0002005f5f73657425640008000300",
    "0000000308000400000003a0080005000000000808000a00000000120c000980080001000000000140000d0000040000",
    "0000033400040d000000012c0014000407000000010c0004040000000104010000000114000407000000010c00040400",
    "0000010402000000",
  ].join(""),
  [
    "98000000090a01040000000000000000010000000b00010063616c69636f00000c0002005f5f73657425640008000300",
    "000000030800040000000761080005000000000808000a00000000130c000980080001000000000140000d0000040000",
    "0000033400040d000000012c0014000407000000010c00040e0000000104010000000114000407000000010c00040e00",
    "0000010402000000",
  ].join(""),
  [
    "50020000060a010c0000000000000000010000000b00010063616c69636f00000a0002006e6c2d633100000024020480",
    "140001800c000100636f756e74657200040002802c000180080001006c6f6700200002801200020063616c69636f2d70",
    "61636b6574000000080005000000000624000180090001006d6574610000000014000280080002000000000308000100",
    "000000014c0001800c00010062697477697365003c000280080001000000000108000200000000010800060000000000",
    "08000300000000040c00048008000100fffffcff0c000580080001000000010024000180090001006d65746100000000",
    "140002800800020000000003080003000000000124000180090001006d65746100000000140002800800020000000003",
    "08000100000000014c0001800c00010062697477697365003c0002800800010000000001080002000000000108000600",
    "0000000008000300000000040c00048008000100fffffeff0c000580080001000000010024000180090001006d657461",
    "00000000140002800800020000000003080003000000000124000180090001006d657461000000001400028008000200",
    "0000000308000100000000014c0001800c00010062697477697365003c00028008000100000000010800020000000001",
    "080006000000000008000300000000040c00048008000100fffffdff0c00058008000100000000002400018009000100",
    "6d657461000000001400028008000200000000030800030000000001240001800b00010072656a656374000014000280",
    "08000100000000020500020001000000",
  ].join(""),
  [
    "a0000000060a010c0000000000000000010000000b00010063616c69636f00000b0002006e6c2d667764000064000480",
    "24000180090001006d6574610000000014000280080002000000000608000100000000013c0001800b0001006c6f6f6b",
    "757000002c000280080002000000000108000300000000000f0001006e6c2d66726f6d2d776c00000800040000000007",
    "0e000700000866726f6d20776c000000",
  ].join(""),
  [
    "44000000060a010c0000000000000000010000000b00010063616c69636f00000b0002006e6c2d6e6174000018000480",
    "14000180090001006d6173710000000004000280",
  ].join(""),
  [
    "58000000060a010c0000000000000000010000000b00010063616c69636f00000b0002006e6c2d6e6174000020000480",
    "1c000180090001006d617371000000000c00028008000100000000100b00070000056d6173710000",
  ].join(""),
];

/** The batch's messages, sequence numbers zeroed and NLM_F_ACK cleared. */
function messages(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < bytes.length;) {
    const len = bytes.readUInt32LE(off);
    const m = Buffer.from(bytes.subarray(off, off + len));
    m.writeUInt32LE(0, 8);
    m.writeUInt16LE(m.readUInt16LE(6) & ~0x4, 6);
    out.push(m);
    off += (len + 3) & ~3;
  }
  return out;
}

const rule = (r: Partial<Rule>): Transaction => ({
  ops: [{ op: "add-rule", chain: "c", rule: { matches: [], statements: [], ...r } }],
});
const cidr = (s: string) => parseCIDR(s)!;

describe("encodeTransaction", () => {
  it("sends what nft 1.0.6 sends, byte for byte", () => {
    const ours = new Set(
      messages(encodeTransaction(everyKindTransaction(), new Map()).bytes).map((m) => m.toString("hex")),
    );
    for (const [i, hex] of NFT_SENT.entries())
      assert.ok(ours.has(hex), `nft message ${i} not in our batch:\n${hex}`);
  });

  it("writes the same bytes into caller-provided memory, releasing what it outgrows", () => {
    // Many interval elements: more bytes than the writer's first guess, so it grows.
    const elements = Array.from({ length: 3000 }, (_, i) => `fd00:19::${i.toString(16)}:0/112`);
    const tx: Transaction = {
      ops: [
        { op: "add-set", set: { name: "v6", keyType: "ipv6_addr", interval: true } },
        { op: "add-elements", set: "v6", elements },
        ...everyKindTransaction().ops,
      ],
    };
    const live = new Set<Buffer>();
    let allocs = 0;
    const memory = {
      alloc: (n: number) => {
        allocs++;
        const b = Buffer.alloc(n);
        live.add(b);
        return b;
      },
      release: (b: Buffer) => assert.ok(live.delete(b), "released twice or unknown"),
    };
    const got = encodeTransaction(tx, new Map(), 1, memory);
    assert.deepEqual(got.bytes, encodeTransaction(tx, new Map()).bytes);
    assert.ok(allocs > 1, `grew (${allocs} allocations)`);
    assert.equal(live.size, 1, "every outgrown buffer released; the result's own is the caller's");
  });

  it("frames one batch: BEGIN, consecutive sequence numbers, one ACK on the last message, END", () => {
    const b = encodeTransaction(everyKindTransaction(), new Map(), 100);
    const all: { type: number; flags: number; seq: number }[] = [];
    for (let off = 0; off < b.bytes.length;) {
      all.push({
        type: b.bytes.readUInt16LE(off + 4),
        flags: b.bytes.readUInt16LE(off + 6),
        seq: b.bytes.readUInt32LE(off + 8),
      });
      off += b.bytes.readUInt32LE(off);
    }
    assert.equal(all[0]!.type, 16);
    assert.equal(all[all.length - 1]!.type, 17);
    assert.deepEqual(
      all.map((m) => m.seq),
      all.map((_, i) => 100 + i),
    );
    const acked = all.filter((m) => (m.flags & 0x4) !== 0);
    assert.deepEqual(
      acked.map((m) => m.seq),
      [all[all.length - 2]!.seq],
    );
    assert.deepEqual(b.seqs, [all[all.length - 2]!.seq]);
    assert.equal(b.describe?.(100), "the transaction's commit");
    assert.equal(b.describe?.(101), "op 1 (add table)");
    assert.match(
      b.describe?.(all[all.length - 2]!.seq) ?? "",
      /^op \d+ \(add rule nl-nat \(comment "masq"\)\)$/,
    );
  });

  it("numbers sets from 1, anonymous ones included, and looks sets of this batch up by id", () => {
    const b = encodeTransaction(
      {
        ops: [
          { op: "add-set", set: { name: "s", keyType: "ipv4_addr", interval: true } },
          {
            op: "add-rule",
            chain: "c",
            rule: {
              matches: [
                { type: "l4proto", op: "==", protocols: [6, 17] },
                { type: "addr-set", family: 4, dir: "saddr", op: "==", set: "s" },
              ],
              statements: [],
            },
          },
        ],
      },
      new Map(),
    );
    const hex = b.bytes.toString("hex");
    // NFTA_SET_ID (type 10) of the named set = 1, of the anonymous one = 2.
    assert.ok(hex.includes("08000a0000000001") && hex.includes("08000a0000000002"));
    // lookup: SREG 1, SET "s", SET_ID 1
    assert.ok(hex.includes("0800020000000001" + "0600010073000000" + "0800040000000001"));
    assert.deepEqual(encodeTransaction({ ops: [{ op: "delete-table" }] }, new Map()).targets, new Map());
  });

  it("refuses what nft would encode differently or not at all (the caller uses nft -f)", () => {
    const refused: [string, Transaction][] = [
      [
        "elements of a set it does not know",
        { ops: [{ op: "add-elements", set: "x", elements: ["198.19.0.1"] }] },
      ],
      [
        "an anonymous interval set starting at 0",
        rule({
          matches: [
            {
              type: "addr",
              family: 4,
              dir: "daddr",
              op: "==",
              cidrs: [cidr("0.0.0.0/8"), cidr("10.0.0.0/8")],
            },
          ],
        }),
      ],
      [
        "a port set reaching 65535",
        rule({
          matches: [
            { type: "l4proto", op: "==", protocols: [6] },
            {
              type: "port",
              dir: "dport",
              op: "==",
              ranges: [
                { first: 80, last: 80 },
                { first: 1024, last: 65535 },
              ],
            },
          ],
        }),
      ],
      [
        "th dport then th sport (nft sorts and merges them)",
        rule({
          matches: [
            { type: "l4proto", op: "==", protocols: [6] },
            { type: "port", dir: "dport", op: "==", ranges: [{ first: 80, last: 80 }] },
            { type: "port", dir: "sport", op: "==", ranges: [{ first: 53, last: 53 }] },
          ],
        }),
      ],
      [
        "an ip match after meta nfproto ipv6",
        rule({
          matches: [
            { type: "nfproto", family: 6 },
            { type: "addr", family: 4, dir: "daddr", op: "==", cidrs: [cidr("10.0.0.1/32")] },
          ],
        }),
      ],
      ["an empty rule", rule({})],
      [
        "a port match without l4proto",
        rule({ matches: [{ type: "port", dir: "dport", op: "==", ranges: [{ first: 1, last: 1 }] }] }),
      ],
      [
        "a wildcard-only interface name",
        rule({ matches: [{ type: "ifname", dir: "iif", op: "==", names: ["*"] }] }),
      ],
    ];
    for (const [what, tx] of refused)
      assert.throws(() => encodeTransaction(tx, new Map()), UnsupportedNetlinkError, what);
  });
});
