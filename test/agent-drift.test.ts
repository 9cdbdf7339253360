/**
 * Drift repair on the real kernel (issue 5): with FelixConfiguration refresh intervals of 2 s,
 * state changed by hand under a running calico-node — a policy chain flushed, a rule deleted
 * from an endpoint chain, an IP set element deleted, a workload route deleted, proxy ARP turned
 * off — comes back within the interval and traffic is right again. Another program's route
 * (other protocol numbers) and nftables tables are never touched.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { decodeResources } from "../src/api/codec.js";
import { run, runOk } from "../src/dataplane/netns.js";
import { EXT_V4, OneHostFabric } from "./helpers/one-host-fabric.js";
import { B_FROM_A, docs, KNS_X_ALLOW } from "./helpers/scenarios.js";
import { waitForAgent } from "./helpers/agent-status.js";
import { assertReach, eventually, reaches, type Expectation } from "./helpers/reach.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (network namespaces, nftables)" : false;

const A = "198.19.3.1";
const B = "198.19.3.2";
const C = "198.19.3.3";
/** Refresh interval set in FelixConfiguration; repair must come within it plus one apply. */
const REFRESH_MS = 2000;
const REPAIR_BOUND_MS = REFRESH_MS + 3000;

const FELIX_2S = `
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {nftablesRefreshInterval: 2s, routeRefreshInterval: 2s}
`;

const SETUP = docs(FELIX_2S, KNS_X_ALLOW, B_FROM_A);

const RIGHT: Expectation[] = [
  { from: "x.a", to: "b", addr: B, probe: "tcp80", allowed: true },
  { from: "x.c", to: "b", addr: B, probe: "tcp80", allowed: false },
  { from: "x.a", to: "b", addr: B, probe: "tcp81", allowed: false },
];

interface NftJsonTable {
  nftables: {
    set?: { name: string; elem?: unknown[] };
    chain?: { name: string };
    rule?: { chain: string; handle: number; expr: unknown[] };
  }[];
}

describe("calico-node repairs drift within the refresh interval", { skip }, () => {
  const fabric = new OneHostFabric();
  const nft = (args: string[]) => runOk("nft", args, { netns: fabric.host });
  const listJson = async (): Promise<NftJsonTable> =>
    JSON.parse(await nft(["-j", "list", "table", "inet", "calico"])) as NftJsonTable;
  const rulesOf = async (chain: string): Promise<number> =>
    (await listJson()).nftables.filter((o) => o.rule?.chain === chain).length;

  before(async () => {
    await fabric.start();
    for (const r of decodeResources(SETUP)) await fabric.store!.apply(r.resource);
    for (const [name, v4, i] of [
      ["a", A, 1],
      ["b", B, 2],
      ["c", C, 3],
    ] as const) {
      await fabric.addWorkload({ namespace: "x", name, labels: { app: name }, v4, v6: `fd00:19:0:3::${i}` });
    }
    // Another program's state in the same netns: routes with other protocol numbers, its own
    // nftables tables (one of them also named "calico", in another family).
    await runOk("ip", [
      "-n",
      fabric.host,
      "route",
      "add",
      "198.19.99.0/24",
      "via",
      EXT_V4,
      "proto",
      "static",
    ]);
    await runOk("ip", ["-n", fabric.host, "route", "add", "198.19.98.0/24", "dev", "eth0", "proto", "99"]);
    await runOk("nft", ["-f", "-"], {
      netns: fabric.host,
      input:
        "table inet other {\n chain c {\n type filter hook input priority 10; policy accept;\n counter\n }\n}\n" +
        "table ip calico {\n chain c {\n counter\n }\n}\n",
    });
    fabric.startAgent();
    await waitForAgent(fabric, await fabric.revision());
    await assertReach(fabric, RIGHT, "before any drift");
  });
  after(async () => {
    if (process.exitCode !== undefined && process.exitCode !== 0)
      process.stderr.write(fabric.agentLog.slice(-20_000));
    await fabric.stop();
  });

  const trafficRightAgain = (what: string) =>
    eventually(
      async () =>
        (await Promise.all(RIGHT.map((e) => reaches(fabric, e.from, e.addr, e.probe, 300)))).every(
          (got, i) => got === RIGHT[i]!.allowed,
        ),
      REPAIR_BOUND_MS,
      `${what}: traffic right again`,
    );

  test("a flushed policy chain is refilled", async (t) => {
    const chain = (await listJson()).nftables.find((o) => o.chain?.name.includes("b-from-a"))?.chain?.name;
    assert.ok(chain !== undefined, "the policy chain exists");
    const n = await rulesOf(chain);
    assert.ok(n > 0);
    await nft(["flush", "chain", "inet", "calico", chain]);
    assert.equal(
      await reaches(fabric, "x.a", B, "tcp80", 300),
      false,
      "the flush broke a→b (the test bites)",
    );
    const ms = await eventually(
      async () => (await rulesOf(chain)) === n,
      REPAIR_BOUND_MS,
      `${chain} refilled`,
    );
    t.diagnostic(`chain refilled after ${ms} ms`);
    await trafficRightAgain("flushed policy chain");
  });

  test("a rule deleted from an endpoint chain comes back", async (t) => {
    const table = await listJson();
    const jumpsPolicy = table.nftables.find(
      (o) =>
        o.rule !== undefined &&
        /cali-tw-/.test(o.rule.chain) &&
        JSON.stringify(o.rule.expr).includes("b-from-a"),
    )?.rule;
    assert.ok(jumpsPolicy !== undefined, "b's ingress chain jumps the policy");
    const n = await rulesOf(jumpsPolicy.chain);
    await nft(["delete", "rule", "inet", "calico", jumpsPolicy.chain, "handle", String(jumpsPolicy.handle)]);
    const ms = await eventually(
      async () => (await rulesOf(jumpsPolicy.chain)) === n,
      REPAIR_BOUND_MS,
      `${jumpsPolicy.chain} repaired`,
    );
    t.diagnostic(`endpoint chain repaired after ${ms} ms`);
    await trafficRightAgain("deleted endpoint rule");
  });

  test("a deleted IP set element comes back", async (t) => {
    const hasA = (s: { elem?: unknown[] } | undefined) => JSON.stringify(s?.elem ?? []).includes(`"${A}"`);
    const set = (await listJson()).nftables.find((o) => o.set !== undefined && hasA(o.set))?.set;
    assert.ok(set !== undefined, `a set holds a's address ${A}`);
    await nft(["delete", "element", "inet", "calico", set.name, `{ ${A} }`]);
    assert.equal(
      await reaches(fabric, "x.a", B, "tcp80", 300),
      false,
      "the delete broke a→b (the test bites)",
    );
    const ms = await eventually(
      async () => hasA((await listJson()).nftables.find((o) => o.set?.name === set.name)?.set),
      REPAIR_BOUND_MS,
      `element ${A} back in ${set.name}`,
    );
    t.diagnostic(`set element back after ${ms} ms`);
    await trafficRightAgain("deleted set element");
  });

  test("a deleted workload route comes back", async (t) => {
    const routeToB = async () =>
      (await runOk("ip", ["-n", fabric.host, "route", "show", `${B}/32`, "proto", "83"])).trim();
    assert.notEqual(await routeToB(), "");
    await runOk("ip", ["-n", fabric.host, "route", "del", `${B}/32`]);
    assert.equal(await routeToB(), "");
    const ms = await eventually(async () => (await routeToB()) !== "", REPAIR_BOUND_MS, "route to b back");
    t.diagnostic(`route back after ${ms} ms`);
    await trafficRightAgain("deleted route");
  });

  test("proxy ARP turned off on a workload interface is turned on again", async (t) => {
    const iface = fabric.workloads.get("x.a")!.iface;
    const key = `net.ipv4.conf.${iface}.proxy_arp`;
    const value = async () => (await runOk("sysctl", ["-n", key], { netns: fabric.host })).trim();
    assert.equal(await value(), "1");
    await runOk("sysctl", ["-q", "-w", `${key}=0`], { netns: fabric.host });
    const ms = await eventually(async () => (await value()) === "1", REPAIR_BOUND_MS, `${key} back to 1`);
    t.diagnostic(`proxy_arp back after ${ms} ms`);
    await trafficRightAgain("proxy_arp");
  });

  test("other programs' routes and tables are left alone across resyncs", async () => {
    await new Promise((r) => setTimeout(r, 2 * REFRESH_MS + 500));
    const routes = await runOk("ip", ["-n", fabric.host, "route", "show"]);
    assert.match(routes, /198\.19\.99\.0\/24 via 198\.18\.0\.2 dev eth0 proto static/);
    // (iproute2 may print proto 99 by a name from rt_protos, e.g. "openr")
    assert.match(
      await runOk("ip", ["-n", fabric.host, "route", "show", "proto", "99"]),
      /198\.19\.98\.0\/24 dev eth0/,
    );
    const tables = await nft(["list", "tables"]);
    assert.match(tables, /table inet other/);
    assert.match(tables, /table ip calico/);
    assert.match(await nft(["list", "table", "inet", "other"]), /counter/);
    const r = await run("nft", ["list", "chain", "ip", "calico", "c"], { netns: fabric.host });
    assert.equal(r.code, 0, r.stderr);
    await assertReach(fabric, RIGHT, "at the end");
  });
});
