/**
 * Scale sanity: 100,000 IPv4 prefixes from one eBGP peer through Adj-RIB-In → Loc-RIB (and an
 * Adj-RIB-Out to one iBGP peer), in UPDATEs of 500 NLRI as a real peer would pack them.
 * Bounded in time and memory; the numbers are reported as test diagnostics (run node with
 * --expose-gc for a steadier heap figure).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { CIDR } from "../../api/net.js";
import { MessageType } from "../packet/index.js";
import { cidr, LOCAL, peer, seq } from "./fixtures.js";
import { Rib } from "./rib.js";

const N = 100_000;
const BATCH = 500;

test("scale: 100k prefixes from one peer into the Loc-RIB in seconds, bounded memory", (t) => {
  const base = cidr("198.19.0.0/16").addr;
  // 198.19.0.0/16 holds 65,536 /32s, 32,768 /31s and 16,384 /30s: distinct prefixes enough.
  const list: CIDR[] = [];
  for (let i = 0; i < N; i++) {
    if (i < 65_536) list.push({ family: 4, addr: base + BigInt(i), prefix: 32 });
    else if (i < 98_304) list.push({ family: 4, addr: base + BigInt(2 * (i - 65_536)), prefix: 31 });
    else list.push({ family: 4, addr: base + BigInt(4 * (i - 98_304)), prefix: 30 });
  }
  assert.equal(list.length, N);

  const rib = new Rib({ local: LOCAL });
  const e = peer(4, { type: "ebgp" });
  rib.peerUp(e);
  rib.peerUp(peer(2));
  globalThis.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const start = performance.now();
  let kernel = 0;
  let updates = 0;
  for (let i = 0; i < N; i += BATCH) {
    const c = rib.applyUpdate("p4", {
      update: {
        type: MessageType.UPDATE,
        withdrawn: [],
        attributes: { origin: 0, asPath: seq(65004, 65100), nextHop: cidr("198.18.0.4"), med: i % 3 },
        nlri: list.slice(i, i + BATCH),
      },
    });
    kernel += c.locRib.length;
    updates += c.updates.get("p2")?.length ?? 0;
  }
  const ms = performance.now() - start;
  globalThis.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  const perRoute = (heapAfter - heapBefore) / N;
  t.diagnostic(`${N} prefixes in ${ms.toFixed(0)} ms (${((N / ms) * 1000).toFixed(0)}/s)`);
  t.diagnostic(
    `heap +${((heapAfter - heapBefore) / 1e6).toFixed(1)} MB, ~${perRoute.toFixed(0)} bytes/route (Adj-RIB-In + Loc-RIB + one Adj-RIB-Out)`,
  );
  t.diagnostic(`${kernel} kernel changes, ${updates} UPDATEs to the iBGP peer`);
  assert.equal(rib.locRibSize, N);
  assert.equal(kernel, N);
  assert.equal(rib.adjRibOut("p2").length, N);
  assert.ok(ms < 15_000, `took ${ms} ms`);
  assert.ok(perRoute < 2_000, `${perRoute} bytes per route`);
});
