/**
 * Real kernel: a fresh netns, real `nft`, `ip` and `sysctl`. Apply, break things by hand
 * (a chain, a set element, a map element, a route), apply full, check they are repaired; a
 * route with another proto is never touched. Routes and sysctls go in parallel with nft only
 * once our table is in the kernel: on a node without it, a failed nft apply routes nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { emptyChanges } from "../calc/types.js";
import { W1, W2, asState, testConfig, testState } from "./fixtures.js";
import { LinuxDataplane } from "./linux-dataplane.js";
import { MAP, endpointChain, ipSetName } from "./names.js";
import type { TableListing, Transaction } from "./nft/model.js";
import type { ApplyResult } from "./types.js";
import { NftCli } from "./nft/nft-cli.js";
import { run, runOk } from "./netns.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (netns, nft); runs in CI" : false;
const NS = `ctsdp-${process.pid}-k`;
const PROTO = testConfig().routeProtocol;

describe("LinuxDataplane on a real kernel", { skip }, () => {
  before(async () => {
    await runOk("ip", ["netns", "add", NS]);
    await runOk("ip", ["-n", NS, "link", "set", "lo", "up"]);
    // Two workload-side interfaces (veth pairs: no dummy in this kernel) and a host eth0.
    for (const [a, b] of [
      [W1.iface, "w1peer"],
      [W2.iface, "w2peer"],
      ["eth0", "eth0peer"],
    ] as const) {
      await runOk("ip", ["-n", NS, "link", "add", a, "type", "veth", "peer", "name", b]);
      await runOk("ip", ["-n", NS, "link", "set", a, "up"]);
      await runOk("ip", ["-n", NS, "link", "set", b, "up"]);
    }
    await runOk("ip", ["-n", NS, "addr", "add", "198.18.0.1/24", "dev", "eth0"]);
  });
  after(async () => {
    await run("ip", ["netns", "del", NS]);
  });

  it("applies, then repairs a deleted chain, set element, map element and route", async () => {
    const nft = new NftCli({ netns: NS });
    const dp = new LinuxDataplane({ nft, netns: NS, config: testConfig(), resyncIntervalMs: 0 });
    const s = testState();
    const r1 = await dp.apply(asState(s), emptyChanges());
    assert.equal(r1.full, true);
    assert.equal(withNft(r1), false, "no table yet: routes after nft");
    assert.ok(r1.routesChanged >= 3, `routes written: ${r1.routesChanged}`);
    assert.equal(r1.linksChanged, 2);
    const sys = await runOk("sysctl", ["-n", `net.ipv4.conf.${W1.iface}.proxy_arp`, "net.ipv4.ip_forward"], {
      netns: NS,
    });
    assert.deepEqual(sys.trim().split("\n"), ["1", "1"]);
    const want = await nft.list();
    assert.ok(want);

    // Someone else's route, same destination space, another proto: never touched.
    await runOk("ip", ["-n", NS, "route", "add", "198.19.77.0/24", "via", "198.18.0.2", "proto", "static"]);
    // Break things by hand.
    const tw = endpointChain("tw", W2.iface);
    const script = [
      `delete element inet calico ${MAP.toWlDispatch} { "${W2.iface}" }`,
      `flush chain inet calico ${tw}`,
      `delete chain inet calico ${tw}`,
      `delete element inet calico ${ipSetName(4, "s:frontend")} { ${W1.v4} }`,
    ].join("\n");
    await runOk("nft", ["-f", "-"], { netns: NS, input: script + "\n" });
    await runOk("ip", ["-n", NS, "route", "del", `${W1.v4}/32`]);
    await runOk("ip", ["-n", NS, "route", "del", "blackhole", "198.19.0.0/26"]);

    dp.invalidate();
    const r2 = await dp.apply(asState(s), emptyChanges());
    assert.equal(r2.full, true);
    assert.equal(withNft(r2), true, "table present: routes in parallel with nft");
    assert.equal(r2.routesChanged, 2);
    assert.ok(r2.nftOps > 0 && r2.nftOps < 30, `nft ops ${r2.nftOps}`);
    const got = await nft.list();
    assert.ok(got);
    assert.ok(got.chains.has(tw));
    assert.equal(got.maps.get(MAP.toWlDispatch)?.elements.has(W2.iface), true);
    assert.equal(got.sets.get(ipSetName(4, "s:frontend"))?.elements.has(W1.v4), true);
    const comments = (l: NonNullable<typeof got>) =>
      [...l.chains].map(([n, c]) => [n, c.rules.map((r) => r.comment)]).sort();
    assert.deepEqual(comments(got), comments(want));

    const routes = await runOk("ip", ["-n", NS, "-4", "route", "show", "proto", String(PROTO)]);
    assert.match(routes, new RegExp(`${W1.v4.replace(/\./g, "\\.")} dev ${W1.iface} scope link`));
    assert.match(routes, /blackhole 198\.19\.0\.0\/26/);
    const v6 = await runOk("ip", ["-n", NS, "-6", "route", "show", "proto", String(PROTO)]);
    assert.match(v6, /fd00:19::1 dev cali1111111111a/);
    assert.match(await runOk("ip", ["-n", NS, "route", "show", "198.19.77.0/24"]), /proto static/);

    // A workload leaves: its route goes, nothing else.
    s.routes.delete(`${W1.v4}/32`);
    const r3 = await dp.apply(asState(s), emptyChanges());
    assert.equal(r3.routesChanged, 1);
    assert.doesNotMatch(
      await runOk("ip", ["-n", NS, "-4", "route", "show", "proto", String(PROTO)]),
      /198\.19\.0\.1 /,
    );
  });
});

/** An NftCli that fails (listing and applying) while `failing` is set, touching nothing. */
class FlakyNft extends NftCli {
  failing = true;
  override async apply(tx: Transaction): Promise<void> {
    if (this.failing) throw new Error("nft apply failed (test)");
    await super.apply(tx);
  }
  override async list(): Promise<TableListing | undefined> {
    if (this.failing) throw new Error("nft apply failed (test: list)");
    return super.list();
  }
}

/** The phase fields LinuxDataplane adds to its ApplyResult. */
const withNft = (r: ApplyResult): unknown => (r as ApplyResult & Record<string, unknown>).routesWithNft;

describe("LinuxDataplane: routes wait for a table that polices", { skip }, () => {
  const NS2 = `ctsdp-${process.pid}-o`;
  before(async () => {
    await runOk("ip", ["netns", "add", NS2]);
    await runOk("ip", ["-n", NS2, "-batch", "-"], {
      input: [W1.iface, W2.iface]
        .map((i, n) => `link add ${i} type veth peer name p${n}\nlink set ${i} up\nlink set p${n} up\n`)
        .join(""),
    });
  });
  after(async () => {
    await run("ip", ["netns", "del", NS2]);
  });

  it("no table and nft fails: nothing routed; table present and nft fails: routes still applied", async () => {
    const nft = new FlakyNft({ netns: NS2 });
    const dp = new LinuxDataplane({ nft, netns: NS2, config: testConfig(), resyncIntervalMs: 0 });
    const ours = () => runOk("ip", ["-n", NS2, "-4", "route", "show", "proto", String(PROTO)]);
    await assert.rejects(dp.apply(asState(testState()), emptyChanges()), /nft apply failed/);
    assert.equal(await ours(), "", "not policed, so not routed");

    nft.failing = false;
    const r = await dp.apply(asState(testState()), emptyChanges());
    assert.equal(withNft(r), false);
    await runOk("ip", ["-n", NS2, "-4", "route", "flush", "proto", String(PROTO)]);

    // A new dataplane (a restarted agent) finds the table and routes alongside nft, even when
    // that nft apply fails: unknown interfaces are dropped by the table already there.
    const nft2 = new FlakyNft({ netns: NS2 });
    const dp2 = new LinuxDataplane({ nft: nft2, netns: NS2, config: testConfig(), resyncIntervalMs: 0 });
    await assert.rejects(dp2.apply(asState(testState()), emptyChanges()), /nft apply failed/);
    assert.match(await ours(), new RegExp(`${W1.v4.replace(/\./g, "\\.")} dev ${W1.iface}`));
  });
});
