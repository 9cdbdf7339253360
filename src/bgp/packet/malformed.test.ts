// The malformed-message table: each row a message on the wire and what it must get — the
// NOTIFICATION (code, subcode[, data]) for session-reset errors, or the RFC 7606 outcome
// (treat-as-withdraw with its subcode, attribute discard, or accepted).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCIDR } from "../../api/net.js";
import {
  AS_PATH_2,
  AS_PATH_4,
  BASE4,
  MARKER,
  NEXT_HOP_10_0_0_1,
  NLRI_10_1,
  ORIGIN_IGP,
  attr,
  hex,
  msg,
  openBody,
  toHexString,
  update,
} from "./fixtures.js";
import {
  BgpError,
  type CodecContext,
  type DecodedMessage,
  type UpdateMessage,
  decodeMessage,
} from "./index.js";

type Expect =
  | { notify: [code: number, subcode: number, data?: string] }
  | { withdraw: number }
  | { discard: number[] }
  | { ok: (u: UpdateMessage) => void };

interface Row {
  name: string;
  bytes: Uint8Array;
  ctx?: CodecContext;
  expect: Expect;
}

const v6nh = "20010db8000000000000000000000001";
const mpReach = (afi: string, nh: string, nlri: string, flags = 0x80): string =>
  attr(flags, 14, afi + "01" + (nh.length / 2).toString(16).padStart(2, "0") + nh + "00" + nlri);
const V6_ROUTE = "40fd00001000000000"; // fd00:10::/64: length 64, then 8 octets

const rows: Row[] = [
  // ---- header, RFC 4271 §6.1 ----
  { name: "marker not all ones", bytes: hex("ff".repeat(15) + "fe" + "001304"), expect: { notify: [1, 1] } },
  { name: "length field 18", bytes: msg(4, "", 18), expect: { notify: [1, 2, "0012"] } },
  { name: "length field 4097", bytes: msg(2, "00000000", 4097), expect: { notify: [1, 2, "1001"] } },
  {
    name: "length disagrees with the octets given",
    bytes: msg(2, "0000000000", 23),
    expect: { notify: [1, 2, "0017"] },
  },
  { name: "message type 0", bytes: msg(0, ""), expect: { notify: [1, 3, "00"] } },
  { name: "message type 6", bytes: msg(6, ""), expect: { notify: [1, 3, "06"] } },
  { name: "KEEPALIVE of 20 octets", bytes: msg(4, "00"), expect: { notify: [1, 2, "0014"] } },
  { name: "OPEN shorter than 29", bytes: msg(1, "04fde8005a0a000001"), expect: { notify: [1, 2, "001c"] } },
  { name: "UPDATE shorter than 23", bytes: msg(2, "000000"), expect: { notify: [1, 2, "0016"] } },
  { name: "NOTIFICATION shorter than 21", bytes: msg(3, "06"), expect: { notify: [1, 2, "0014"] } },
  {
    name: "ROUTE-REFRESH of 24 octets (RFC 7313 §5: whole message as data)",
    bytes: msg(5, "0001000100"),
    expect: { notify: [7, 1, MARKER + "0018050001000100"] },
  },
  { name: "truncated: fewer than 19 octets", bytes: hex(MARKER + "00"), expect: { notify: [1, 2, "0011"] } },
  // ---- OPEN, RFC 4271 §6.2 ----
  { name: "OPEN version 3", bytes: msg(1, openBody({ version: 3 })), expect: { notify: [2, 1, "0004"] } },
  { name: "OPEN hold time 1", bytes: msg(1, openBody({ hold: 1 })), expect: { notify: [2, 6] } },
  { name: "OPEN hold time 2", bytes: msg(1, openBody({ hold: 2 })), expect: { notify: [2, 6] } },
  {
    name: "OPEN BGP identifier 0 (RFC 6286)",
    bytes: msg(1, openBody({ id: "00000000" })),
    expect: { notify: [2, 3] },
  },
  {
    name: "OPEN optional parameter type 1 (authentication)",
    bytes: msg(1, openBody({ params: "0102abcd" })),
    expect: { notify: [2, 4] },
  },
  {
    name: "OPEN optional parameters length disagrees with the message",
    bytes: msg(1, openBody({}).slice(0, -2) + "04" + "0202"),
    expect: { notify: [2, 0] },
  },
  {
    name: "OPEN capability overruns its parameter",
    bytes: msg(1, openBody({ params: "0203 4104 00" })),
    expect: { notify: [2, 0] },
  },
  {
    name: "OPEN multiprotocol capability of length 3",
    bytes: msg(1, openBody({ params: "0205 0103 000100" })),
    expect: { notify: [2, 0] },
  },
  {
    name: "OPEN graceful-restart capability of length 3",
    bytes: msg(1, openBody({ params: "0205 4003 007800" })),
    expect: { notify: [2, 0] },
  },
  // ---- UPDATE, session reset ----
  {
    name: "withdrawn routes length overruns",
    bytes: update("", "", "", { withdrawnLength: 5 }),
    expect: { notify: [3, 1] },
  },
  {
    name: "total path attribute length overruns",
    bytes: update("", BASE4, "", { attrsLength: 40 }),
    expect: { notify: [3, 1] },
  },
  { name: "NLRI prefix length 33", bytes: update("", BASE4, "210a0000000000"), expect: { notify: [3, 10] } },
  {
    name: "NLRI prefix runs past the message",
    bytes: update("", BASE4, "180a01"),
    expect: { notify: [3, 10] },
  },
  { name: "withdrawn prefix truncated", bytes: update("180a01", "", ""), expect: { notify: [3, 10] } },
  {
    name: "unrecognized well-known attribute (data: the attribute)",
    bytes: update("", BASE4 + attr(0x40, 99, "01"), NLRI_10_1),
    expect: { notify: [3, 2, "40630101"] },
  },
  {
    name: "MP_REACH_NLRI twice",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + mpReach("0002", v6nh, "") + mpReach("0002", v6nh, ""), ""),
    expect: { notify: [3, 1] },
  },
  {
    name: "MP_UNREACH_NLRI twice",
    bytes: update("", attr(0x80, 15, "000201") + attr(0x80, 15, "000201"), ""),
    expect: { notify: [3, 1] },
  },
  {
    name: "MP_REACH_NLRI IPv6 next hop length 24",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + mpReach("0002", v6nh + "0000000000000000", V6_ROUTE), ""),
    expect: { notify: [3, 9] },
  },
  {
    name: "MP_REACH_NLRI IPv4 next hop length 16",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + mpReach("0001", v6nh, NLRI_10_1), ""),
    expect: { notify: [3, 9] },
  },
  {
    name: "MP_REACH_NLRI next hop length past the attribute",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + attr(0x80, 14, "00020120" + "20010db8"), ""),
    expect: { notify: [3, 9] },
  },
  {
    name: "MP_REACH_NLRI NLRI prefix length 129",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + mpReach("0002", v6nh, "81" + "00".repeat(17)), ""),
    expect: { notify: [3, 9] },
  },
  {
    name: "MP_UNREACH_NLRI truncated prefix",
    bytes: update("", attr(0x80, 15, "000201" + "40fd00"), ""),
    expect: { notify: [3, 9] },
  },
  {
    name: "MP_REACH_NLRI flagged transitive",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + mpReach("0002", v6nh, V6_ROUTE, 0xc0), ""),
    expect: { notify: [3, 4] },
  },
  {
    name: "MP_REACH_NLRI running past the attribute list",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + attr(0x80, 14, "000201", 200), ""),
    expect: { notify: [3, 5] },
  },
  // ---- UPDATE, treat-as-withdraw (RFC 7606) ----
  {
    name: "ORIGIN value 3",
    bytes: update("", attr(0x40, 1, "03") + AS_PATH_4 + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { withdraw: 6 },
  },
  {
    name: "ORIGIN of length 2",
    bytes: update("", attr(0x40, 1, "0000") + AS_PATH_4 + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { withdraw: 5 },
  },
  {
    name: "ORIGIN flagged optional (flags error)",
    bytes: update("", attr(0xc0, 1, "00") + AS_PATH_4 + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { withdraw: 4 },
  },
  {
    name: "AS_PATH segment overruns the attribute",
    bytes: update("", ORIGIN_IGP + attr(0x40, 2, "0203 0000fde8") + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { withdraw: 11 },
  },
  {
    name: "AS_PATH segment type 5",
    bytes: update("", ORIGIN_IGP + attr(0x40, 2, "0501 0000fde8") + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { withdraw: 11 },
  },
  {
    name: "AS_PATH empty segment",
    bytes: update("", ORIGIN_IGP + attr(0x40, 2, "0200") + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { withdraw: 11 },
  },
  {
    name: "AS_PATH one stray octet",
    bytes: update("", ORIGIN_IGP + attr(0x40, 2, "0201 0000fde8 02") + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { withdraw: 11 },
  },
  {
    name: "a 4-octet AS_PATH on a 2-octet session reads as 2-octet ASNs",
    bytes: update("", ORIGIN_IGP + attr(0x40, 2, "0202 0000fde8") + NEXT_HOP_10_0_0_1, NLRI_10_1),
    ctx: { as4: false },
    expect: { ok: (u) => assert.deepEqual(u.attributes.asPath, [{ type: "sequence", asns: [0, 65000] }]) },
  },
  {
    name: "NEXT_HOP of length 5",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + attr(0x40, 3, "0a00000100"), NLRI_10_1),
    expect: { withdraw: 5 },
  },
  {
    name: "NEXT_HOP 0.0.0.0",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + attr(0x40, 3, "00000000"), NLRI_10_1),
    expect: { withdraw: 8 },
  },
  {
    name: "NEXT_HOP 224.0.0.1 (multicast)",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + attr(0x40, 3, "e0000001"), NLRI_10_1),
    expect: { withdraw: 8 },
  },
  {
    name: "NEXT_HOP missing with IPv4 NLRI",
    bytes: update("", ORIGIN_IGP + AS_PATH_4, NLRI_10_1),
    expect: { withdraw: 3 },
  },
  {
    name: "ORIGIN missing",
    bytes: update("", AS_PATH_4 + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { withdraw: 3 },
  },
  { name: "no attributes at all with NLRI", bytes: update("", "", NLRI_10_1), expect: { withdraw: 3 } },
  {
    name: "AS_PATH missing with MP_REACH_NLRI routes",
    bytes: update("", ORIGIN_IGP + mpReach("0002", v6nh, V6_ROUTE), ""),
    expect: { withdraw: 3 },
  },
  {
    name: "NEXT_HOP not needed with MP_REACH_NLRI only",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + mpReach("0002", v6nh, V6_ROUTE), ""),
    expect: { ok: (u) => assert.equal(u.attributes.mpReach?.nlri.length, 1) },
  },
  {
    name: "MED of length 3",
    bytes: update("", BASE4 + attr(0x80, 4, "000001"), NLRI_10_1),
    expect: { withdraw: 5 },
  },
  {
    name: "MED flagged transitive",
    bytes: update("", BASE4 + attr(0xc0, 4, "00000001"), NLRI_10_1),
    expect: { withdraw: 4 },
  },
  {
    name: "LOCAL_PREF of length 2",
    bytes: update("", BASE4 + attr(0x40, 5, "0064"), NLRI_10_1),
    expect: { withdraw: 5 },
  },
  {
    name: "COMMUNITIES of length 5",
    bytes: update("", BASE4 + attr(0xc0, 8, "0001000200"), NLRI_10_1),
    expect: { withdraw: 9 },
  },
  {
    name: "COMMUNITIES of length 0",
    bytes: update("", BASE4 + attr(0xc0, 8, ""), NLRI_10_1),
    expect: { withdraw: 9 },
  },
  {
    name: "LARGE_COMMUNITY of length 8",
    bytes: update("", BASE4 + attr(0xc0, 32, "0000000100000002"), NLRI_10_1),
    expect: { withdraw: 9 },
  },
  {
    name: "ORIGINATOR_ID of length 3",
    bytes: update("", BASE4 + attr(0x80, 9, "0a0000"), NLRI_10_1),
    expect: { withdraw: 5 },
  },
  {
    name: "CLUSTER_LIST of length 6",
    bytes: update("", BASE4 + attr(0x80, 10, "0a0000010a00"), NLRI_10_1),
    expect: { withdraw: 5 },
  },
  {
    name: "oversized attribute: runs past the attribute list",
    bytes: update("", BASE4 + attr(0xc0, 8, "00010002", 9), NLRI_10_1),
    expect: { withdraw: 5 },
  },
  {
    name: "two stray octets after the last attribute",
    bytes: update("", BASE4 + "c008", NLRI_10_1),
    expect: { withdraw: 1 },
  },
  {
    name: "Extended Length attribute header cut short",
    bytes: update("", BASE4 + "d00800", NLRI_10_1),
    expect: { withdraw: 1 },
  },
  // ---- UPDATE, attribute discard ----
  {
    name: "ATOMIC_AGGREGATE of length 1",
    bytes: update("", BASE4 + attr(0x40, 6, "00"), NLRI_10_1),
    expect: { discard: [6] },
  },
  {
    name: "AGGREGATOR of length 6 on a 4-octet session",
    bytes: update("", BASE4 + attr(0xc0, 7, "fde80a000001"), NLRI_10_1),
    expect: { discard: [7] },
  },
  {
    name: "AS4_PATH malformed (2-octet session)",
    bytes: update(
      "",
      ORIGIN_IGP + AS_PATH_2 + NEXT_HOP_10_0_0_1 + attr(0xc0, 17, "0205 0000fde8"),
      NLRI_10_1,
    ),
    ctx: { as4: false },
    expect: { discard: [17] },
  },
  {
    name: "AS4_PATH from a 4-octet speaker",
    bytes: update("", BASE4 + attr(0xc0, 17, "0201 0000fde8"), NLRI_10_1),
    expect: { discard: [17] },
  },
  {
    name: "AS4_AGGREGATOR of length 6",
    bytes: update("", ORIGIN_IGP + AS_PATH_2 + NEXT_HOP_10_0_0_1 + attr(0xc0, 18, "fde80a000001"), NLRI_10_1),
    ctx: { as4: false },
    expect: { discard: [18] },
  },
  {
    name: "duplicate ORIGIN: the first is kept",
    bytes: update("", BASE4 + attr(0x40, 1, "02"), NLRI_10_1),
    expect: { discard: [1] },
  },
  {
    name: "MP_REACH_NLRI for an AFI/SAFI we do not speak",
    bytes: update("", ORIGIN_IGP + AS_PATH_4 + attr(0x80, 14, "0019460400000000" + "00"), ""),
    expect: { discard: [14] },
  },
  // ---- accepted ----
  {
    name: "Extended Length on a short well-known attribute",
    bytes: update("", attr(0x50, 1, "01") + AS_PATH_4 + NEXT_HOP_10_0_0_1, NLRI_10_1),
    expect: { ok: (u) => assert.equal(u.attributes.origin, 1) },
  },
  {
    name: "Partial bit and low flag bits on a known attribute are ignored",
    bytes: update(
      "",
      attr(0x4f, 1, "02") + AS_PATH_4 + NEXT_HOP_10_0_0_1 + attr(0xe0, 8, "00010002"),
      NLRI_10_1,
    ),
    expect: {
      ok: (u) => {
        assert.equal(u.attributes.origin, 2);
        assert.deepEqual(u.attributes.communities, [0x00010002]);
      },
    },
  },
  {
    name: "treat-as-withdraw keeps the first error when there are several",
    bytes: update("", attr(0x40, 1, "07") + AS_PATH_4, NLRI_10_1),
    expect: { withdraw: 6 },
  },
  {
    name: "IPv6 next hop of 32 octets (global + link-local)",
    bytes: update(
      "",
      ORIGIN_IGP + AS_PATH_4 + mpReach("0002", v6nh + "fe800000000000000000000000000001", V6_ROUTE),
      "",
    ),
    expect: { ok: (u) => assert.equal(u.attributes.mpReach?.nextHops.length, 2) },
  },
  {
    name: "unknown optional non-transitive attribute is dropped silently",
    bytes: update("", BASE4 + attr(0x80, 200, "00"), NLRI_10_1),
    expect: { ok: (u) => assert.equal(u.attributes.unknown, undefined) },
  },
];

const resultOf = (r: Row): DecodedMessage | BgpError => {
  try {
    return decodeMessage(r.bytes, r.ctx ?? { as4: true });
  } catch (e) {
    if (e instanceof BgpError) return e;
    throw e;
  }
};

void test(`malformed-message table has ${rows.length} rows`, () => {
  assert.ok(rows.length >= 30);
  assert.equal(new Set(rows.map((r) => r.name)).size, rows.length, "row names are unique");
});

for (const row of rows) {
  void test(row.name, () => {
    const got = resultOf(row);
    const e = row.expect;
    if ("notify" in e) {
      assert.ok(
        got instanceof BgpError,
        `expected NOTIFICATION ${e.notify.join("/")}, got ${JSON.stringify(got, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`,
      );
      assert.deepEqual([got.notificationCode, got.subcode], e.notify.slice(0, 2), got.message);
      if (e.notify[2] !== undefined) assert.equal(toHexString(got.data), e.notify[2].replace(/\s+/g, ""));
      assert.ok(got.message.length > 10);
      return;
    }
    assert.ok(
      !(got instanceof BgpError),
      `unexpected NOTIFICATION: ${got instanceof BgpError ? got.message : ""}`,
    );
    const u = got.update;
    assert.ok(u !== undefined);
    if ("withdraw" in e) {
      assert.equal(u.treatAsWithdraw?.subcode, e.withdraw, JSON.stringify(u.treatAsWithdraw));
    } else if ("discard" in e) {
      assert.equal(u.treatAsWithdraw, undefined, JSON.stringify(u.treatAsWithdraw));
      assert.deepEqual(
        u.discarded?.map((d) => d.code),
        e.discard,
      );
    } else {
      assert.equal(u.treatAsWithdraw, undefined, JSON.stringify(u.treatAsWithdraw));
      e.ok(u.update);
    }
  });
}

void test("the fixtures build what they say", () => {
  assert.deepEqual(parseCIDR("10.1.0.0/16"), { family: 4, addr: 0x0a010000n, prefix: 16 });
  assert.equal(toHexString(update("", "", "")), MARKER + "00170200000000");
});
