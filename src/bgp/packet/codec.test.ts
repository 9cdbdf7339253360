// Unit tests: real BIRD messages (reference/lab-recipes.md §4), each message type, End-of-RIB,
// the RFC 6793 AS4 merge/split, describeNotification and the streaming reader.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCIDR, type CIDR } from "../../api/net.js";
import { AS_PATH_4, BASE4, NLRI_10_1, attr, hex, msg, toHexString, update } from "./fixtures.js";
import {
  AS_TRANS,
  BgpError,
  type BgpMessage,
  type CodecContext,
  type DecodedMessage,
  type OpenMessage,
  type UpdateMessage,
  decodeMessage,
  describeNotification,
  encodeMessage,
  endOfRib,
  endOfRibFamily,
  isEndOfRib,
  MessageReader,
  MessageType,
  openPeerAS,
} from "./index.js";
import { mergeAs4Path } from "./attributes/as-path.js";

const AS4: CodecContext = { as4: true };
const AS2: CodecContext = { as4: false };
const cidr = (s: string): CIDR => parseCIDR(s)!;

const BIRD_OPEN =
  "ffffffffffffffffffffffffffffffff00350104fc0000f0c612000118021601040001000102004002007841040000fc0046004700";
const BIRD_UPDATE =
  "ffffffffffffffffffffffffffffffff003502000000144001010040020602010000fc00400304c61200011ac61301001ac6130140";
const BIRD_EOR = "ffffffffffffffffffffffffffffffff00170200000000";

function decodeUpdateMsg(
  bytes: Uint8Array,
  ctx: CodecContext = AS4,
): DecodedMessage & { message: UpdateMessage } {
  const d = decodeMessage(bytes, ctx);
  assert.equal(d.message.type, MessageType.UPDATE);
  return d as DecodedMessage & { message: UpdateMessage };
}

void test("BIRD's OPEN: AS 64512, hold 240, id 198.18.0.1, MP IPv4, route refresh, GR, AS4, two unknown", () => {
  const m = decodeMessage(hex(BIRD_OPEN), AS4).message as OpenMessage;
  assert.equal(m.version, 4);
  assert.equal(m.myAS, 64512);
  assert.equal(m.holdTime, 240);
  assert.equal(m.bgpId, 0xc6120001);
  assert.equal(openPeerAS(m), 64512);
  assert.deepEqual(
    m.capabilities.map((c) => c.type),
    ["multiprotocol", "route-refresh", "graceful-restart", "as4", "unknown", "unknown"],
  );
  assert.deepEqual(m.capabilities[0], { code: 1, type: "multiprotocol", afi: 1, safi: 1 });
  assert.deepEqual(m.capabilities[2], {
    code: 64,
    type: "graceful-restart",
    restarting: false,
    restartTime: 120,
    families: [],
  });
  // Capabilities 70 (enhanced route refresh) and 71 (long-lived GR) are kept as bytes.
  assert.deepEqual(
    m.capabilities.slice(4).map((c) => c.code),
    [70, 71],
  );
  // Re-encoded, it decodes to the same OPEN (we put one capability per parameter, BIRD packs them).
  assert.deepEqual(decodeMessage(encodeMessage(m, AS4), AS4).message, m);
});

void test("BIRD's UPDATE: 198.19.1.0/26 and 198.19.1.64/26 via 198.18.0.1, AS_PATH [64512], byte-exact re-encode", () => {
  const d = decodeUpdateMsg(hex(BIRD_UPDATE));
  assert.equal(d.update?.treatAsWithdraw, undefined);
  assert.deepEqual(d.message, {
    type: MessageType.UPDATE,
    withdrawn: [],
    attributes: { origin: 0, asPath: [{ type: "sequence", asns: [64512] }], nextHop: cidr("198.18.0.1/32") },
    nlri: [cidr("198.19.1.0/26"), cidr("198.19.1.64/26")],
  });
  assert.equal(toHexString(encodeMessage(d.message, AS4)), BIRD_UPDATE);
});

void test("BIRD's End-of-RIB is the empty UPDATE, IPv4 unicast", () => {
  const d = decodeUpdateMsg(hex(BIRD_EOR));
  assert.ok(isEndOfRib(d.message));
  assert.deepEqual(endOfRibFamily(d.message), { afi: 1, safi: 1 });
  assert.equal(toHexString(encodeMessage(endOfRib(1, 1), AS4)), BIRD_EOR);
});

void test("IPv6 End-of-RIB is an MP_UNREACH_NLRI with no routes, and round-trips", () => {
  const eor = endOfRib(2, 1);
  const bytes = encodeMessage(eor, AS4);
  assert.equal(toHexString(bytes), "ffffffffffffffffffffffffffffffff001d0200000006800f03000201");
  const back = decodeUpdateMsg(bytes).message;
  assert.deepEqual(endOfRibFamily(back), { afi: 2, safi: 1 });
  // An End-of-RIB for a family we do not speak is still recognised.
  assert.deepEqual(endOfRibFamily(decodeUpdateMsg(encodeMessage(endOfRib(25, 70), AS4)).message), {
    afi: 25,
    safi: 70,
  });
  // An UPDATE that withdraws something is not one.
  assert.ok(!isEndOfRib({ ...eor, withdrawn: [cidr("10.0.0.0/8")] }));
  assert.ok(!isEndOfRib({ ...endOfRib(1, 1), attributes: { origin: 0 } }));
});

void test("KEEPALIVE is exactly the 19-octet header", () => {
  const k = encodeMessage({ type: MessageType.KEEPALIVE }, AS4);
  assert.equal(toHexString(k), "ffffffffffffffffffffffffffffffff001304");
  assert.deepEqual(decodeMessage(k, AS4).message, { type: MessageType.KEEPALIVE });
});

void test("NOTIFICATION and ROUTE-REFRESH encode and decode", () => {
  const n: BgpMessage = { type: MessageType.NOTIFICATION, code: 6, subcode: 2, data: hex("0462796521") };
  assert.equal(toHexString(encodeMessage(n, AS4)), "ffffffffffffffffffffffffffffffff001a0306020462796521");
  assert.deepEqual(decodeMessage(encodeMessage(n, AS4), AS4).message, n);
  const rr: BgpMessage = { type: MessageType.ROUTE_REFRESH, afi: 2, safi: 1, subtype: 0 };
  assert.equal(toHexString(encodeMessage(rr, AS4)), "ffffffffffffffffffffffffffffffff00170500020001");
  assert.deepEqual(decodeMessage(encodeMessage(rr, AS4), AS4).message, rr);
});

void test("describeNotification has words for every code/subcode and the RFC 9003 shutdown message", () => {
  assert.equal(describeNotification({ code: 4, subcode: 0 }), "Hold timer expired");
  assert.equal(
    describeNotification({ code: 6, subcode: 2, data: hex("0462796521") }),
    'Cease / administrative shutdown: "bye!"',
  );
  assert.equal(describeNotification({ code: 2, subcode: 2 }), "OPEN message error / bad peer AS");
  assert.equal(
    describeNotification({ code: 1, subcode: 2, data: hex("1001") }),
    "Message header error / bad message length (4097)",
  );
  assert.equal(
    describeNotification({ code: 3, subcode: 3, data: hex("03") }),
    "UPDATE message error / missing well-known attribute (attribute type 3)",
  );
  assert.equal(describeNotification({ code: 2, subcode: 0 }), "OPEN message error / unspecific");
  assert.equal(describeNotification({ code: 99, subcode: 1 }), "Unknown error code 99 / subcode 1");
  const subcodes: Record<number, number[]> = {
    1: [1, 2, 3],
    2: [1, 2, 3, 4, 5, 6, 7, 11],
    3: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    5: [1, 2, 3],
    6: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    7: [1],
  };
  for (const [code, subs] of Object.entries(subcodes)) {
    for (const s of subs) {
      const text = describeNotification({ code: Number(code), subcode: s });
      assert.ok(!/subcode \d/.test(text) && !/Unknown/.test(text), `${code}/${s}: ${text}`);
    }
  }
});

void test("BgpError carries the NOTIFICATION and a readable message", () => {
  try {
    decodeMessage(hex("fe" + BIRD_EOR.slice(2)), AS4);
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof BgpError);
    assert.equal(e.code, "BGP_MESSAGE_HEADER_ERROR");
    assert.deepEqual(e.toNotification(), {
      type: MessageType.NOTIFICATION,
      code: 1,
      subcode: 1,
      data: new Uint8Array(0),
    });
    assert.match(e.message, /marker octet 0 is 0xfe/);
  }
});

void test("a 4-octet AS goes to a 2-octet peer as AS_TRANS plus AS4_PATH / AS4_AGGREGATOR, and comes back", () => {
  const u: UpdateMessage = {
    type: MessageType.UPDATE,
    withdrawn: [],
    nlri: [cidr("10.1.0.0/16")],
    attributes: {
      origin: 0,
      asPath: [{ type: "sequence", asns: [65000, 4200000000, 65001] }],
      nextHop: cidr("10.0.0.1/32"),
      aggregator: { asn: 4200000001, address: cidr("10.0.0.9/32") },
    },
  };
  const bytes = encodeMessage(u, AS2);
  const h = toHexString(bytes);
  assert.ok(h.includes("40020802 03 fde8 5ba0 fde9".replace(/ /g, "")), h); // AS_PATH with AS_TRANS (0x5ba0)
  assert.ok(h.includes("c0110e02 03 0000fde8 fa56ea00 0000fde9".replace(/ /g, "")), h); // AS4_PATH
  assert.ok(h.includes("c00706 5ba0 0a000009".replace(/ /g, "")), h); // AGGREGATOR with AS_TRANS
  assert.ok(h.includes("c01208 fa56ea01 0a000009".replace(/ /g, "")), h); // AS4_AGGREGATOR
  assert.deepEqual(decodeUpdateMsg(bytes, AS2).message, u);
  // A path that fits in 2 octets needs no AS4_PATH.
  const small = encodeMessage(
    {
      ...u,
      attributes: {
        ...u.attributes,
        asPath: [{ type: "sequence", asns: [1, 2] }],
        aggregator: { asn: 7, address: cidr("10.0.0.9/32") },
      },
    },
    AS2,
  );
  assert.ok(!toHexString(small).includes("c011"));
  assert.ok(!toHexString(small).includes("c012"));
  assert.equal(AS_TRANS, 0x5ba0);
});

void test("RFC 6793 §4.2.3 merge: leading AS_PATH ASNs are kept, a shorter AS_PATH wins, sets count as one", () => {
  const seq = (...asns: number[]) => ({ type: "sequence" as const, asns });
  // An old speaker prepended 100 after the 4-octet path was recorded.
  assert.deepEqual(mergeAs4Path([seq(100, AS_TRANS, 2)], [seq(4200000000, 2)]), [
    seq(100),
    seq(4200000000, 2),
  ]);
  // AS4_PATH longer than AS_PATH: ignored.
  assert.deepEqual(mergeAs4Path([seq(AS_TRANS)], [seq(1, 2)]), [seq(AS_TRANS)]);
  // A set counts as one; a leading confederation segment is kept.
  const confed = { type: "confed-sequence" as const, asns: [65010] };
  const set = { type: "set" as const, asns: [5, 6] };
  assert.deepEqual(mergeAs4Path([confed, seq(AS_TRANS), set], [seq(4200000000), set]), [
    confed,
    seq(4200000000),
    set,
  ]);
});

void test("an AGGREGATOR with a real AS makes a 2-octet speaker ignore AS4_PATH and AS4_AGGREGATOR", () => {
  const attrs =
    attr(0x40, 1, "00") +
    attr(0x40, 2, "0202 fde8 5ba0") +
    attr(0x40, 3, "0a000001") +
    attr(0xc0, 7, "0007 0a000009") +
    attr(0xc0, 17, "0202 0000fde8 fa56ea00") +
    attr(0xc0, 18, "fa56ea01 0a000009");
  const u = decodeUpdateMsg(update("", attrs, NLRI_10_1), AS2).message;
  assert.deepEqual(u.attributes.asPath, [{ type: "sequence", asns: [65000, AS_TRANS] }]);
  assert.equal(u.attributes.aggregator?.asn, 7);
});

void test("unknown optional transitive attributes pass on with Partial set; non-transitive ones are dropped", () => {
  const attrs = BASE4 + attr(0xc0, 99, "abcd") + attr(0x80, 98, "ef");
  const d = decodeUpdateMsg(update("", attrs, NLRI_10_1));
  assert.deepEqual(d.message.attributes.unknown, [{ flags: 0xe0, code: 99, data: hex("abcd") }]);
  assert.ok(toHexString(encodeMessage(d.message, AS4)).includes("e06302abcd"));
});

void test("an attribute over 255 octets goes out with Extended Length; short ones never do", () => {
  const communities = Array.from({ length: 70 }, (_, i) => i);
  const u: UpdateMessage = { type: 2, withdrawn: [], nlri: [], attributes: { communities, origin: 2 } };
  const h = toHexString(encodeMessage(u, AS4));
  assert.ok(h.includes("d0080118"), h); // flags 0xd0, type 8, length 280
  assert.ok(h.includes("40010102"), h);
  assert.deepEqual(decodeUpdateMsg(encodeMessage(u, AS4)).message, u);
});

void test("MP_REACH_NLRI for IPv6 with global and link-local next hops (RFC 2545)", () => {
  const u: UpdateMessage = {
    type: 2,
    withdrawn: [],
    nlri: [],
    attributes: {
      origin: 0,
      asPath: [],
      mpReach: {
        afi: 2,
        safi: 1,
        nextHops: [cidr("2001:db8::1/128"), cidr("fe80::1/128")],
        nlri: [cidr("fd00:10::/64")],
      },
      mpUnreach: { afi: 2, safi: 1, withdrawn: [cidr("fd00:20::/48"), cidr("::/0")] },
    },
  };
  const bytes = encodeMessage(u, AS4);
  const h = toHexString(bytes);
  // MP_REACH_NLRI first (RFC 7606 §5.1), next hop length 32.
  assert.ok(h.startsWith("ffffffffffffffffffffffffffffffff"));
  assert.equal(h.slice(46, 60), "800e2e00020120");
  const d = decodeUpdateMsg(bytes);
  assert.deepEqual(d.message, u);
  assert.equal(d.update?.treatAsWithdraw, undefined);
});

void test("NLRI trailing bits are ignored and masked off (RFC 4271 §4.3)", () => {
  const u = decodeUpdateMsg(update("", BASE4, "160a0107")).message; // a /22 whose last octet is 7
  assert.deepEqual(u.nlri, [cidr("10.1.4.0/22")]);
  const v = decodeUpdateMsg(update("", BASE4, "170a0107")).message; // /23 with the last bit set
  assert.deepEqual(v.nlri, [cidr("10.1.6.0/23")]);
});

void test("the reader splits a stream cut at every possible point and holds at most one message", () => {
  const stream = Buffer.concat([
    hex(BIRD_OPEN),
    encodeMessage({ type: 4 }, AS4),
    hex(BIRD_UPDATE),
    hex(BIRD_EOR),
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    for (const size of [1, 7, 1000]) {
      const r = new MessageReader(AS4);
      const got: DecodedMessage[] = [];
      const feed = (b: Uint8Array) => {
        for (let i = 0; i < b.length; i += size) {
          const res = r.push(b.subarray(i, i + size));
          assert.equal(res.error, undefined);
          got.push(...res.messages);
          assert.ok(r.buffered < 4096);
        }
      };
      feed(stream.subarray(0, cut));
      feed(stream.subarray(cut));
      assert.deepEqual(
        got.map((m) => m.message.type),
        [1, 4, 2, 2],
        `cut ${cut} size ${size}`,
      );
      assert.equal(r.buffered, 0);
    }
  }
});

void test("the reader fails on the first bad marker octet, before the header is complete", () => {
  const r = new MessageReader(AS4);
  assert.deepEqual(r.push(hex("ffffff")).messages, []);
  const res = r.push(hex("00"));
  assert.equal(res.error?.notificationCode, 1);
  assert.equal(res.error?.subcode, 1);
  // Once failed, it stays failed.
  assert.equal(r.push(hex(BIRD_EOR)).error, res.error);
});

void test("the reader rejects an oversized length as soon as the length field is in", () => {
  const r = new MessageReader(AS4);
  const res = r.push(hex("ff".repeat(16) + "1001"));
  assert.equal(res.error?.subcode, 2);
  assert.deepEqual(res.error?.data, hex("1001"));
  assert.equal(r.buffered, 0);
});

void test("messages before a bad one are delivered with the error", () => {
  const r = new MessageReader(AS4);
  const res = r.push(Buffer.concat([hex(BIRD_EOR), msg(9, "")]));
  assert.equal(res.messages.length, 1);
  assert.equal(res.error?.subcode, 3);
  assert.deepEqual(res.error?.data, hex("09"));
});

void test("the reader follows ctx.as4 as it changes", () => {
  const ctx: CodecContext = { as4: false };
  const r = new MessageReader(ctx);
  const two = update(
    "",
    attr(0x40, 1, "00") + attr(0x40, 2, "0201 fde8") + attr(0x40, 3, "0a000001"),
    NLRI_10_1,
  );
  assert.deepEqual((r.push(two).messages[0]?.message as UpdateMessage).attributes.asPath, [
    { type: "sequence", asns: [65000] },
  ]);
  ctx.as4 = true;
  const four = update("", attr(0x40, 1, "00") + AS_PATH_4 + attr(0x40, 3, "0a000001"), NLRI_10_1);
  assert.deepEqual((r.push(four).messages[0]?.message as UpdateMessage).attributes.asPath, [
    { type: "sequence", asns: [65000] },
  ]);
});
