/**
 * fast-check generators for valid messages of every type, shared by the round-trip property
 * tests and the fuzz seeds. "Valid" means: what our encoder accepts and RFC 6793 can carry
 * faithfully — on a 2-octet session, confederation segments only lead the path and hold
 * 2-octet ASNs (AS4_PATH never carries them, RFC 6793 §4.2.2).
 */
import fc from "fast-check";
import type { CIDR } from "../../api/net.js";
import { hostMask } from "../../api/net.js";
import type {
  AsPathSegment,
  BgpMessage,
  Capability,
  CodecContext,
  OpenMessage,
  PathAttributes,
  UpdateMessage,
} from "./types.js";

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (maxLength: number) => fc.uint8Array({ maxLength });

export const prefix4: fc.Arbitrary<CIDR> = fc
  .tuple(fc.integer({ min: 0, max: 32 }), fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }))
  .map(([p, a]) => ({ family: 4, addr: a & ~hostMask(4, p), prefix: p }));
export const prefix6: fc.Arbitrary<CIDR> = fc
  .tuple(fc.integer({ min: 0, max: 128 }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }))
  .map(([p, a]) => ({ family: 6, addr: a & ~hostMask(6, p), prefix: p }));
const host4 = fc
  .bigInt({ min: 0n, max: (1n << 32n) - 1n })
  .map((a): CIDR => ({ family: 4, addr: a, prefix: 32 }));
const host6 = fc
  .bigInt({ min: 0n, max: (1n << 128n) - 1n })
  .map((a): CIDR => ({ family: 6, addr: a, prefix: 128 }));
/** A NEXT_HOP the decoder accepts: not 0.0.0.0, not multicast or class E. */
const nextHop4 = fc
  .integer({ min: 1, max: 0xdfffffff })
  .map((a): CIDR => ({ family: 4, addr: BigInt(a), prefix: 32 }));

const segment = (asn: fc.Arbitrary<number>, types: AsPathSegment["type"][]): fc.Arbitrary<AsPathSegment> =>
  fc.record(
    { type: fc.constantFrom(...types), asns: fc.array(asn, { minLength: 1, maxLength: 8 }) },
    { noNullPrototype: true },
  );

function asPath(ctx: CodecContext): fc.Arbitrary<AsPathSegment[]> {
  const body = fc.array(segment(u32, ["sequence", "set"]), { maxLength: 4 });
  const confed = fc.array(segment(ctx.as4 ? u32 : u16, ["confed-sequence", "confed-set"]), { maxLength: 2 });
  if (!ctx.as4) return fc.tuple(confed, body).map(([c, b]) => [...c, ...b]);
  return fc.array(segment(u32, ["sequence", "set", "confed-sequence", "confed-set"]), { maxLength: 5 });
}

const KNOWN_ATTRS = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 17, 18, 32]);
const unknownAttrs = fc
  .uniqueArray(
    fc.integer({ min: 0, max: 255 }).filter((c) => !KNOWN_ATTRS.has(c)),
    { maxLength: 3 },
  )
  .chain((codes) =>
    fc.tuple(
      ...codes.sort((a, b) => a - b).map((code) => bytes(300).map((data) => ({ flags: 0xe0, code, data }))),
    ),
  );

const mpReach = fc.oneof(
  fc.record(
    {
      afi: fc.constant(1),
      safi: fc.constant(1),
      nextHops: host4.map((h) => [h]),
      nlri: fc.array(prefix4, { maxLength: 10 }),
    },
    { noNullPrototype: true },
  ),
  fc.record(
    {
      afi: fc.constant(2),
      safi: fc.constant(1),
      nextHops: fc.array(host6, { minLength: 1, maxLength: 2 }),
      nlri: fc.array(prefix6, { maxLength: 10 }),
    },
    { noNullPrototype: true },
  ),
);
const mpUnreach = fc.oneof(
  fc.record(
    { afi: fc.constant(1), safi: fc.constant(1), withdrawn: fc.array(prefix4, { maxLength: 10 }) },
    { noNullPrototype: true },
  ),
  fc.record(
    { afi: fc.constant(2), safi: fc.constant(1), withdrawn: fc.array(prefix6, { maxLength: 10 }) },
    { noNullPrototype: true },
  ),
  // Another family's End-of-RIB.
  fc.record(
    { afi: u16.filter((a) => a > 2), safi: u8, withdrawn: fc.constant<CIDR[]>([]) },
    { noNullPrototype: true },
  ),
);

export function pathAttributes(ctx: CodecContext): fc.Arbitrary<PathAttributes> {
  return fc.record(
    {
      origin: fc.constantFrom(0 as const, 1 as const, 2 as const),
      asPath: asPath(ctx),
      nextHop: nextHop4,
      med: u32,
      localPref: u32,
      atomicAggregate: fc.constant(true),
      aggregator: fc.record({ asn: u32, address: host4 }, { noNullPrototype: true }),
      communities: fc.array(u32, { minLength: 1, maxLength: 10 }),
      largeCommunities: fc.array(fc.tuple(u32, u32, u32), { minLength: 1, maxLength: 5 }),
      originatorId: u32,
      clusterList: fc.array(u32, { minLength: 1, maxLength: 5 }),
      mpReach,
      mpUnreach,
      unknown: unknownAttrs.filter((u) => u.length > 0),
    },
    { requiredKeys: [], noNullPrototype: true },
  );
}

export function updateMessage(ctx: CodecContext): fc.Arbitrary<UpdateMessage> {
  return fc.record(
    {
      type: fc.constant(2 as const),
      withdrawn: fc.array(prefix4, { maxLength: 10 }),
      attributes: pathAttributes(ctx),
      nlri: fc.array(prefix4, { maxLength: 10 }),
    },
    { noNullPrototype: true },
  );
}

const capability: fc.Arbitrary<Capability> = fc.oneof(
  fc.record(
    {
      code: fc.constant(1 as const),
      type: fc.constant("multiprotocol" as const),
      afi: u16,
      safi: u8,
    },
    { noNullPrototype: true },
  ),
  fc.constant<Capability>({ code: 2, type: "route-refresh" }),
  fc.record(
    {
      code: fc.constant(64 as const),
      type: fc.constant("graceful-restart" as const),
      restarting: fc.boolean(),
      restartTime: fc.integer({ min: 0, max: 4095 }),
      families: fc.array(
        fc.record({ afi: u16, safi: u8, forwardingPreserved: fc.boolean() }, { noNullPrototype: true }),
        {
          maxLength: 4,
        },
      ),
    },
    { noNullPrototype: true },
  ),
  fc.record(
    { code: fc.constant(65 as const), type: fc.constant("as4" as const), asn: u32 },
    { noNullPrototype: true },
  ),
  fc.record(
    {
      code: u8.filter((c) => ![1, 2, 64, 65].includes(c)),
      type: fc.constant("unknown" as const),
      data: bytes(16),
    },
    { noNullPrototype: true },
  ),
);

export const openMessage: fc.Arbitrary<OpenMessage> = fc.record(
  {
    type: fc.constant(1 as const),
    version: fc.constant(4),
    myAS: u16,
    holdTime: fc.oneof(fc.constant(0), fc.integer({ min: 3, max: 0xffff })),
    bgpId: fc.integer({ min: 1, max: 0xffffffff }),
    capabilities: fc.array(capability, { maxLength: 8 }),
  },
  { noNullPrototype: true },
);

export function bgpMessage(ctx: CodecContext): fc.Arbitrary<BgpMessage> {
  return fc.oneof(
    openMessage,
    updateMessage(ctx),
    fc.record(
      { type: fc.constant(3 as const), code: u8, subcode: u8, data: bytes(64) },
      { noNullPrototype: true },
    ),
    fc.constant<BgpMessage>({ type: 4 }),
    fc.record({ type: fc.constant(5 as const), afi: u16, safi: u8, subtype: u8 }, { noNullPrototype: true }),
  );
}
