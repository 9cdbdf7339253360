import { describe, test, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_VERSION } from "../../api/resource.js";
import { MemoryDatastore } from "../../datastore/memory.js";
import type { Datastore } from "../../datastore/types.js";
import { IPAM } from "../../ipam/index.js";
import { runCli } from "../cli.js";
import { ExitCode } from "../exit-codes.js";
import { withPercent } from "./ipam.js";
import type { IPAMReport } from "./ipam-report.js";

const dir = mkdtempSync(join(tmpdir(), "calico-ts-ipam-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let store: MemoryDatastore;
let ipam: IPAM;

/** Run calicoctl in-process on the shared memory store (runCli's close made a no-op). */
async function ctl(...args: string[]) {
  let stdout = "";
  let stderr = "";
  const shared = new Proxy(store, {
    get(target, prop) {
      if (prop === "close") return () => Promise.resolve();
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Datastore;
  const code = await runCli(args, {
    io: { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), readStdin: () => Promise.resolve("") },
    env: {},
    openDatastore: () => Promise.resolve(shared),
  });
  return { code, stdout, stderr };
}

const create = (kind: string, name: string, spec: Record<string, unknown>, namespace?: string) =>
  ipam.resources.create({
    apiVersion: API_VERSION,
    kind,
    metadata: namespace === undefined ? { name } : { name, namespace },
    spec,
  });

const pod = (node: string, ns: string, p: string) => ({ node, namespace: ns, pod: p, timestamp: "t" });

/**
 * node-1 exists; node "gone" does not.
 * 198.19.0.5  pod ns1/p1 on node-1, no WorkloadEndpoint     → leak candidate
 * 198.19.0.6  pod ns1/p2 on node-1, held by a WorkloadEndpoint → in use
 * 198.19.0.70 tunnel address of node "gone"                  → leaked (block affine to a missing node)
 * fd00:19::1  pod ns1/p2 (same WEP)                           → in use
 */
async function scenario(): Promise<void> {
  await create("IPPool", "pool-v4", { cidr: "198.19.0.0/24" });
  await create("IPPool", "pool-v6", { cidr: "fd00:19::/48" });
  await create("Node", "node-1", {});
  await ipam.assignIP("198.19.0.5", "k8s-pod-network.c1", pod("node-1", "ns1", "p1"), "node-1");
  await ipam.assignIP("198.19.0.6", "k8s-pod-network.c2", pod("node-1", "ns1", "p2"), "node-1");
  await ipam.assignIP("fd00:19::1", "k8s-pod-network.c2", pod("node-1", "ns1", "p2"), "node-1");
  await ipam.assignIP(
    "198.19.0.70",
    "ipip-tunnel-addr-gone",
    { node: "gone", type: "ipipTunnelAddress" },
    "gone",
  );
  await create(
    "WorkloadEndpoint",
    "node--1-k8s-p2-eth0",
    {
      orchestrator: "k8s",
      node: "node-1",
      pod: "p2",
      endpoint: "eth0",
      interfaceName: "cali0ef24ba",
      ipNetworks: ["198.19.0.6/32", "fd00:19::1/128"],
    },
    "ns1",
  );
}

beforeEach(() => {
  store = new MemoryDatastore();
  ipam = new IPAM(store);
});

const allocated = async (a: string) => (await ipam.getAllocation(a)) !== undefined;
const path = (name: string) => join(dir, name);

describe("withPercent (Go's %.0f, exact)", () => {
  const cases: [bigint, bigint, string][] = [
    [5n, 64n, "5 (8%)"],
    [1n, 8n, "1 (12%)"], // 12.5 → 12, half to even
    [3n, 8n, "3 (38%)"], // 37.5 → 38
    [0n, 256n, "0 (0%)"],
    [1n << 80n, 1n << 80n, "1208925819614629174706176 (100%)"],
  ];
  for (const [n, total, want] of cases)
    test(`${n}/${total}`, () => assert.equal(withPercent(n, total), want));
});

describe("calicoctl ipam show", () => {
  test("pool table with totals, percentages and exact IPv6 sizes", async () => {
    await scenario();
    const r = await ctl("ipam", "show");
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.match(r.stdout, /^\+-+\+-+\+/);
    assert.match(r.stdout, /\| GROUPING \| +CIDR +\| +IPS TOTAL +\| IPS IN USE \| +IPS FREE +\|/);
    assert.match(r.stdout, /\| IP Pool {2}\| 198\.19\.0\.0\/24 +\| +256 \| 3 \(1%\) +\| 253 \(99%\) +\|/);
    assert.match(
      r.stdout,
      /\| IP Pool {2}\| fd00:19::\/48 +\| 1208925819614629174706176 \| 1 \(0%\) +\| 1208925819614629174706175 \(100%\) \|/,
    );
    assert.doesNotMatch(r.stdout, /Block/);
    const lines = r.stdout.trimEnd().split("\n");
    assert.ok(
      lines.every((l) => l.length === lines[0]!.length),
      "every line of the box has one width",
    );
  });

  test("--show-blocks adds a row per block under its pool", async () => {
    await scenario();
    const r = await ctl("ipam", "show", "--show-blocks");
    assert.equal(r.code, ExitCode.OK, r.stderr);
    const rows = r.stdout.split("\n").filter((l) => l.startsWith("| ") && !l.includes("GROUPING"));
    assert.deepEqual(
      rows.map((l) =>
        l
          .split("|")
          .map((c) => c.trim())
          .slice(1, 6),
      ),
      [
        ["IP Pool", "198.19.0.0/24", "256", "3 (1%)", "253 (99%)"],
        ["Block", "198.19.0.0/26", "64", "2 (3%)", "62 (97%)"],
        ["Block", "198.19.0.64/26", "64", "1 (2%)", "63 (98%)"],
        [
          "IP Pool",
          "fd00:19::/48",
          "1208925819614629174706176",
          "1 (0%)",
          "1208925819614629174706175 (100%)",
        ],
        ["Block", "fd00:19::/122", "64", "1 (2%)", "63 (98%)"],
      ],
    );
  });

  test("--ip: in use, with handle and attributes", async () => {
    await scenario();
    const r = await ctl("ipam", "show", "--ip=198.19.0.5");
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.match(r.stdout, /^IP 198\.19\.0\.5 is in use\nHandle ID: k8s-pod-network\.c1\n/);
    assert.match(r.stdout, /\n {2}namespace: ns1\n {2}node: node-1\n {2}pod: p1\n/);
  });

  test("--ip: not assigned, and not in any pool", async () => {
    await scenario();
    const free = await ctl("ipam", "show", "--ip", "198.19.0.9");
    assert.equal(free.code, ExitCode.OK);
    assert.equal(free.stdout, "198.19.0.9 is not assigned\n");
    const outside = await ctl("ipam", "show", "--ip", "198.19.200.1");
    assert.equal(outside.stdout, "198.19.200.1 is not assigned\n198.19.200.1 is not in any IP pool\n");
    const bad = await ctl("ipam", "show", "--ip", "198.19.0.999");
    assert.equal(bad.code, ExitCode.USAGE);
    assert.match(bad.stderr, /--ip: "198\.19\.0\.999" is not an IP address/);
  });

  test("--show-borrowed lists addresses taken from another node's block", async () => {
    await scenario();
    await create("Node", "node-2", {});
    await ipam.assignIP("198.19.0.7", "k8s-pod-network.c3", pod("node-2", "ns2", "p3"), "node-2");
    const r = await ctl("ipam", "show", "--show-borrowed");
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.match(r.stdout, /\| +IP +\| BORROWING-NODE \| +BLOCK +\| BLOCK OWNER \| TYPE \| ALLOCATED-TO \|/);
    const rows = r.stdout.split("\n").filter((l) => l.startsWith("| 198"));
    assert.deepEqual(
      rows.map((l) =>
        l
          .split("|")
          .map((c) => c.trim())
          .slice(1, 7),
      ),
      [["198.19.0.7", "node-2", "198.19.0.0/26", "node-1", "pod", "ns2/p3"]],
    );
  });

  test("--show-configuration", async () => {
    const r = await ctl("ipam", "show", "--show-configuration");
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.equal(
      r.stdout,
      [
        "+--------------------+-------+",
        "|      PROPERTY      | VALUE |",
        "+--------------------+-------+",
        "| StrictAffinity     | false |",
        "| AutoAllocateBlocks | true  |",
        "| MaxBlocksPerHost   |     0 |",
        "+--------------------+-------+",
        "",
      ].join("\n"),
    );
  });
});

describe("calicoctl ipam check", () => {
  test("clean IPAM exits 0", async () => {
    await create("IPPool", "pool-v4", { cidr: "198.19.0.0/24" });
    await create("Node", "node-1", {});
    await ipam.assignIP(
      "198.19.0.1",
      "ipip-tunnel-addr-node-1",
      { node: "node-1", type: "ipipTunnelAddress" },
      "node-1",
    );
    const r = await ctl("ipam", "check");
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.match(r.stdout, /Found 1 IP pool, 1 IPAM block, 1 allocation, 1 handle, 1 block affinity\./);
    assert.match(r.stdout, /Check complete; found 0 problems\./);
  });

  test("finds the leak candidate, the leaked tunnel address and the missing node; exits 1", async () => {
    await scenario();
    const r = await ctl("ipam", "check");
    assert.equal(r.code, ExitCode.FAILED);
    assert.match(r.stdout, /Found 2 IP pools, 3 IPAM blocks, 4 allocations, 3 handles, 3 block affinities\./);
    assert.match(r.stdout, /Allocations per node:\n {2}node-1 {2}3\n {2}gone {4}1\n/);
    assert.match(
      r.stdout,
      /\[missing-node\] block 198\.19\.0\.64\/26 is affine to node "gone", which does not exist/,
    );
    assert.match(r.stdout, /IPs allocated but not in use: 2 \(1 leaked, 1 leak candidate\)/);
    assert.match(
      r.stdout,
      /198\.19\.0\.5 +leak-candidate +handle=k8s-pod-network\.c1: no WorkloadEndpoint holds it \(pod ns1\/p1\)/,
    );
    assert.match(
      r.stdout,
      /198\.19\.0\.70 +leaked +handle=ipip-tunnel-addr-gone: node "gone" does not exist/,
    );
    assert.match(r.stdout, /IPs in use but not allocated: 0/);
    assert.match(r.stdout, /Check complete; found 3 problems\./);
    assert.match(r.stderr, /IPAM check found 3 problems/);
  });

  test("reports a WorkloadEndpoint address nobody allocated", async () => {
    await scenario();
    await ipam.releaseIPs(["198.19.0.6"]);
    const r = await ctl("ipam", "check", "--show-all-ips");
    assert.equal(r.code, ExitCode.FAILED);
    assert.match(
      r.stdout,
      /IPs in use but not allocated: 1\n {2}198\.19\.0\.6 {2}held by WorkloadEndpoint ns1\/node--1-k8s-p2-eth0/,
    );
    assert.match(r.stdout, /All allocated IPs \(3\):/);
  });

  test("-o writes a versioned report with handles, sequence numbers and revisions", async () => {
    await scenario();
    const r = await ctl("ipam", "check", "-o", path("r.json"));
    assert.equal(r.code, ExitCode.FAILED);
    assert.match(r.stdout, /Report written to .*r\.json\./);
    const report = JSON.parse(readFileSync(path("r.json"), "utf8")) as IPAMReport;
    assert.equal(report.formatVersion, 1);
    assert.equal(typeof report.datastoreRevision, "number");
    const ci = await ipam.resources.get("ClusterInformation", "default");
    assert.equal(report.clusterInformationResourceVersion, ci.metadata.resourceVersion);
    assert.equal(report.datastoreLocked, false);
    const five = report.leaked.find((l) => l.address === "198.19.0.5");
    assert.equal(five?.handleID, "k8s-pod-network.c1");
    assert.equal(five?.state, "leak-candidate");
    assert.equal(five?.sequenceNumber, (await ipam.getAllocation("198.19.0.5"))?.sequenceNumber);
    assert.deepEqual(report.leaked.map((l) => l.address).sort(), ["198.19.0.5", "198.19.0.70"]);
  });
});

describe("calicoctl ipam release", () => {
  test("--ip releases one address, then says it is not assigned", async () => {
    await scenario();
    const r = await ctl("ipam", "release", "--ip=198.19.0.5");
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.equal(r.stdout, "Successfully released IP address 198.19.0.5\n");
    assert.equal(await allocated("198.19.0.5"), false);
    const again = await ctl("ipam", "release", "--ip=198.19.0.5");
    assert.equal(again.code, ExitCode.FAILED);
    assert.match(again.stderr, /IP address 198\.19\.0\.5 is not assigned/);
  });

  test("needs exactly one of --ip and --from-report", async () => {
    assert.equal((await ctl("ipam", "release")).code, ExitCode.USAGE);
    const both = await ctl("ipam", "release", "--ip=198.19.0.5", "--from-report", path("x.json"));
    assert.equal(both.code, ExitCode.USAGE);
  });

  test("refuses a report unless the datastore is locked; --force overrides", async () => {
    await scenario();
    await ctl("ipam", "check", "-o", path("unlocked.json"));
    const refused = await ctl("ipam", "release", "--from-report", path("unlocked.json"));
    assert.equal(refused.code, ExitCode.FAILED);
    assert.match(refused.stderr, /the datastore is not locked.*datastore migrate lock/s);
    assert.equal(await allocated("198.19.0.5"), true);

    const forced = await ctl("ipam", "release", "--from-report", path("unlocked.json"), "--force");
    assert.equal(forced.code, ExitCode.OK, forced.stderr);
    assert.match(forced.stderr, /Warning: the datastore is not locked/);
    assert.match(forced.stdout, /Released 2 of 2 leaked IP addresses \(0 skipped, 0 already free\)\./);
    assert.equal(await allocated("198.19.0.5"), false);
    assert.equal(await allocated("198.19.0.70"), false);
    assert.equal(await allocated("198.19.0.6"), true);
  });

  test("the locked workflow: lock, check -o, release, unlock", async () => {
    await scenario();
    assert.equal((await ctl("datastore", "migrate", "lock")).stdout, "Datastore locked.\n");
    assert.equal((await ipam.resources.get("ClusterInformation", "default")).spec.datastoreReady, false);
    await ctl("ipam", "check", "-o", path("locked.json"));
    const r = await ctl("ipam", "release", "--from-report", path("locked.json"));
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.match(r.stdout, /Released 198\.19\.0\.5 \(handle k8s-pod-network\.c1\)/);
    assert.match(r.stdout, /Released 198\.19\.0\.70 \(handle ipip-tunnel-addr-gone\)/);
    assert.equal(await allocated("198.19.0.6"), true);
    assert.equal(await allocated("fd00:19::1"), true);
    assert.equal((await ctl("datastore", "migrate", "unlock")).stdout, "Datastore unlocked.\n");
    assert.equal((await ipam.resources.get("ClusterInformation", "default")).spec.datastoreReady, true);
  });

  test("refuses a report taken before the current lock (ClusterInformation changed); --force overrides", async () => {
    await scenario();
    await ctl("datastore", "migrate", "lock");
    await ctl("ipam", "check", "-o", path("old.json"));
    await ctl("datastore", "migrate", "unlock");
    await ctl("datastore", "migrate", "lock");
    const r = await ctl("ipam", "release", "--from-report", path("old.json"));
    assert.equal(r.code, ExitCode.FAILED);
    assert.match(
      r.stderr,
      /old\.json" was taken at ClusterInformation resourceVersion \d+, the current one is \d+/,
    );
    assert.equal(await allocated("198.19.0.5"), true);
    const forced = await ctl("ipam", "release", "--from-report", path("old.json"), "--force");
    assert.equal(forced.code, ExitCode.OK, forced.stderr);
    assert.equal(await allocated("198.19.0.5"), false);
  });

  test("an address re-allocated since the report is skipped", async () => {
    await scenario();
    await ctl("datastore", "migrate", "lock");
    await ctl("ipam", "check", "-o", path("seq.json"));
    await ipam.releaseIPs(["198.19.0.5"]);
    await ipam.assignIP("198.19.0.5", "k8s-pod-network.new", pod("node-1", "ns1", "new"), "node-1");
    const r = await ctl("ipam", "release", "--from-report", path("seq.json"));
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.match(
      r.stdout,
      /Skipped 198\.19\.0\.5: re-allocated since the report \(sequence number changed\)/,
    );
    assert.match(r.stdout, /Released 1 of 2 leaked IP addresses \(1 skipped, 0 already free\)\./);
    assert.equal((await ipam.getAllocation("198.19.0.5"))?.handleID, "k8s-pod-network.new");
  });

  test("with two reports, only addresses leaked (as the same allocation) in both are released", async () => {
    await scenario();
    await create("IPPool", "pool-b", { cidr: "198.19.1.0/24" });
    await ipam.assignIP("198.19.1.9", "k8s-pod-network.c9", pod("node-1", "ns1", "p9"), "node-1");
    await ctl("datastore", "migrate", "lock");
    await ctl("ipam", "check", "-o", path("a.json"));
    // Between the reports: node "gone" comes back (its tunnel address is in use again) and
    // 198.19.1.9 is freed and handed to another pod that also has no endpoint yet.
    await create("Node", "gone", {});
    await ipam.releaseIPs(["198.19.1.9"]);
    await ipam.assignIP("198.19.1.9", "k8s-pod-network.c10", pod("node-1", "ns1", "p10"), "node-1");
    await ctl("ipam", "check", "-o", path("b.json"));
    const r = await ctl("ipam", "release", "--from-report", path("a.json"), "--from-report", path("b.json"));
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.match(r.stdout, /Skipped 198\.19\.1\.9: re-allocated between the reports/);
    assert.match(r.stdout, /Left alone 1 address not leaked in every report\./);
    assert.match(r.stdout, /Released 1 of 1 leaked IP address /);
    assert.equal(await allocated("198.19.0.5"), false);
    assert.equal(await allocated("198.19.0.70"), true);
    assert.equal(await allocated("198.19.1.9"), true);
  });

  test("a malformed report is refused with the file and the field named; nothing released", async () => {
    await scenario();
    await ctl("datastore", "migrate", "lock");
    await ctl("ipam", "check", "-o", path("good.json"));
    writeFileSync(path("notjson.json"), "{ leaked: ");
    const good = JSON.parse(readFileSync(path("good.json"), "utf8")) as { leaked: Record<string, unknown>[] };
    good.leaked[1]!.sequenceNumber = "seven";
    writeFileSync(path("badseq.json"), JSON.stringify(good));
    writeFileSync(path("v9.json"), JSON.stringify({ ...good, formatVersion: 9 }));

    const cases: [string, RegExp][] = [
      ["notjson.json", /notjson\.json.*\n.*not JSON/],
      [
        "badseq.json",
        /badseq\.json.*\n {2}leaked\[1\]\.sequenceNumber = "seven": must be a non-negative integer/,
      ],
      ["v9.json", /v9\.json.*\n {2}formatVersion = 9: must be 1/],
    ];
    for (const [name, want] of cases) {
      // The good report comes first: a bad one later still stops everything.
      const r = await ctl("ipam", "release", "--from-report", path("good.json"), "--from-report", path(name));
      assert.equal(r.code, ExitCode.INVALID_INPUT, `${name}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(await allocated("198.19.0.5"), true);
      assert.equal(await allocated("198.19.0.70"), true);
    }
    const missing = await ctl("ipam", "release", "--from-report", path("nope.json"));
    assert.equal(missing.code, ExitCode.USAGE);
    assert.match(missing.stderr, /Cannot read report ".*nope\.json"/);
  });
});

describe("calicoctl ipam configure", () => {
  test("creates IPAMConfiguration default, then updates it keeping other fields", async () => {
    const r = await ctl("ipam", "configure", "--strictaffinity=true");
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.equal(r.stdout, "Successfully set StrictAffinity to: true\n");
    let spec = (await ipam.resources.get("IPAMConfiguration", "default")).spec;
    assert.deepEqual(spec, { strictAffinity: true, autoAllocateBlocks: true });

    await ipam.resources.update("IPAMConfiguration", "default", undefined, (c) => ({
      ...c,
      spec: { ...c.spec, ipCooldownSeconds: 30 },
    }));
    const m = await ctl("ipam", "configure", "--max-blocks-per-host", "4");
    assert.equal(m.code, ExitCode.OK, m.stderr);
    spec = (await ipam.resources.get("IPAMConfiguration", "default")).spec;
    assert.deepEqual(spec, {
      strictAffinity: true,
      autoAllocateBlocks: true,
      ipCooldownSeconds: 30,
      maxBlocksPerHost: 4,
    });
    assert.equal((await ipam.settings()).maxBlocksPerHost, 4);

    const show = await ctl("ipam", "show", "--show-configuration");
    assert.match(
      show.stdout,
      /\| StrictAffinity +\| true +\|\n\| AutoAllocateBlocks \| true +\|\n\| MaxBlocksPerHost +\| +4 \|/,
    );
  });

  test("bad values are usage errors and change nothing", async () => {
    for (const args of [
      ["--strictaffinity=maybe"],
      ["--max-blocks-per-host=-1"],
      ["--max-blocks-per-host=two"],
      ["--strictaffinity=true", "--max-blocks-per-host=99999999999"],
      [],
    ]) {
      const r = await ctl("ipam", "configure", ...args);
      assert.equal(r.code, ExitCode.USAGE, `${args.join(" ")}: ${r.stderr}`);
    }
    await assert.rejects(ipam.resources.get("IPAMConfiguration", "default"));
  });

  test("a cap without strict affinity is rejected by validation", async () => {
    const r = await ctl("ipam", "configure", "--strictaffinity=false", "--max-blocks-per-host=4");
    assert.equal(r.code, ExitCode.INVALID_INPUT);
    assert.match(r.stderr, /maxBlocksPerHost.*strictAffinity: true/);
  });
});
