/**
 * The issue's key test: several separate allocator processes allocating and releasing at
 * random at the same time against one sqlite file (and one real etcd). No address is ever
 * held by two of them at once, every release takes effect, and the final state passes the
 * IPAM check and is exactly what the workers say they still hold.
 */
import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDatastore } from "../src/datastore/sqlite.js";
import { openEtcdDatastore } from "../src/datastore/etcd.js";
import type { Datastore } from "../src/datastore/types.js";
import { EtcdServer, etcdSkipReason } from "../src/datastore/testing/etcd-server.js";
import { API_VERSION } from "../src/api/resource.js";
import { formatIP } from "../src/api/net.js";
import { IPAM } from "../src/ipam/allocator.js";
import { addressOf, blockPrefix, parseBlock } from "../src/ipam/block.js";
import { checkIPAM, IPAMIssueKind } from "../src/ipam/check.js";
import { repairIPAM, repairIsEmpty } from "../src/ipam/repair.js";
import {
  killAllWorkers,
  runWorkers,
  runWorkersKilling,
  type DoneMessage,
  type IPAMWorkerJob,
} from "../src/ipam/testing/procs.js";

const dir = mkdtempSync(join(tmpdir(), `calico-ts-ipam-mp-${process.pid}-`));
const cleanups: (() => Promise<void>)[] = [];
afterEach(() => killAllWorkers());
after(async () => {
  killAllWorkers();
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const WORKERS = 4;

/** Pools small enough that blocks fill, are borrowed from, empty and move between nodes. */
async function seed(ds: Datastore): Promise<void> {
  const r = new IPAM(ds).resources;
  await r.create({
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: "p4" },
    spec: { cidr: "198.19.90.0/26", blockSize: 29 },
  });
  await r.create({
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: "p6" },
    spec: { cidr: "fd00:19:0:9::/122", blockSize: 125 },
  });
  await r.create({
    apiVersion: API_VERSION,
    kind: "IPReservation",
    metadata: { name: "r" },
    spec: { reservedCIDRs: ["198.19.90.0/31"] },
  });
  for (let i = 0; i < WORKERS; i++) {
    await r.create({ apiVersion: API_VERSION, kind: "Node", metadata: { name: `node-${i}` }, spec: {} });
  }
}

async function verify(ds: Datastore, reports: DoneMessage[]): Promise<void> {
  const byAddr = new Map<string, { handle: string; start: bigint; end: bigint | null }[]>();
  const stillHeld = new Map<string, string>();
  for (const rep of reports) {
    for (const [ip, handle, start, end] of rep.holdings) {
      const list = byAddr.get(ip) ?? [];
      list.push({ handle, start: BigInt(start), end: end === null ? null : BigInt(end) });
      byAddr.set(ip, list);
      if (end === null) stillHeld.set(ip, handle);
      assert.ok(ip !== "198.19.90.0" && ip !== "198.19.90.1", `reserved address ${ip} was handed out`);
    }
  }
  // The interval a worker reports (allocation returned → release started) lies inside the
  // time it really held the address, so two overlapping intervals would be a double hold.
  let reuse = 0;
  for (const [ip, list] of byAddr) {
    list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const cur = list[i]!;
      assert.ok(
        prev.end !== null && prev.end < cur.start,
        `${ip} held by ${prev.handle} and ${cur.handle} at the same time`,
      );
      reuse++;
    }
  }
  assert.ok(reuse > 0, "no address was ever reused: the run did not exercise release");
  const report = await checkIPAM(ds);
  assert.deepEqual(report.issues, []);
  const inStore = new Map<string, string>();
  for (const fam of [4, 6] as const) {
    for (const kv of (await ds.list(blockPrefix(fam))).items) {
      const b = parseBlock(kv.value);
      b.allocations.forEach((x, o) => {
        if (x !== null)
          inStore.set(formatIP(b.cidr.family, addressOf(b, o)), b.attributes[x]?.handleID ?? "");
      });
    }
  }
  assert.deepEqual(
    new Map([...inStore].sort()),
    new Map([...stillHeld].sort()),
    "every release took effect, every hold is recorded",
  );
}

const jobs = (url: string, ops: number): IPAMWorkerJob[] =>
  Array.from({ length: WORKERS }, (_, i) => ({
    url,
    node: `node-${i}`,
    seed: 1000 + i,
    ops,
    deadlineMs: 40_000,
    maxHeld: 12,
    v6Share: 0.3,
  }));

describe("IPAM with separate allocator processes", () => {
  test("sqlite: one file, four processes, no address held twice", { timeout: 120_000 }, async () => {
    // Whether four processes collide in one round depends on the scheduler (a loaded CI
    // machine can run them nearly one after another): up to three rounds, each verified, until
    // one has raced, so the test never passes without proving anything.
    let conflicts = 0;
    for (let round = 1; round <= 3 && conflicts === 0; round++) {
      const path = join(dir, `sqlite-${round}`, "calico-ts.db");
      const ds = new SqliteDatastore(path);
      cleanups.push(() => ds.close());
      await seed(ds);
      const reports = await runWorkers(jobs(`sqlite://${path}`, 300), 90_000);
      const total = reports.reduce((n, r) => n + r.allocations, 0);
      assert.ok(total > 100, `round ${round}: only ${total} allocations`);
      await verify(ds, reports);
      conflicts = reports.reduce((n, r) => n + r.conflicts, 0);
    }
    assert.ok(conflicts > 0, "the workers never raced in three rounds");
  });

  test(
    "sqlite: allocators killed mid-operation leave nothing that blocks the others",
    { timeout: 120_000 },
    async () => {
      const path = join(dir, "crash", "calico-ts.db");
      const ds = new SqliteDatastore(path);
      cleanups.push(() => ds.close());
      await seed(ds);
      const js = jobs(`sqlite://${path}`, 100_000).map((j) => ({ ...j, deadlineMs: 5_000 }));
      const reports = await runWorkersKilling(
        js,
        90_000,
        new Map([
          [0, 700],
          [1, 1500],
        ]),
      );
      assert.equal(reports[0], null);
      assert.equal(reports[1], null);
      const survivors = reports.filter((r): r is DoneMessage => r !== null);
      assert.equal(survivors.length, 2);
      assert.ok(
        survivors.every((r) => r.allocations > 20),
        "survivors kept allocating after the crashes",
      );
      // Survivors never overlapped each other, and what they still hold is in the store as theirs.
      const byAddr = new Map<string, { start: bigint; end: bigint | null; handle: string }[]>();
      for (const r of survivors) {
        for (const [ip, handle, start, end] of r.holdings) {
          const l = byAddr.get(ip) ?? [];
          l.push({ handle, start: BigInt(start), end: end === null ? null : BigInt(end) });
          byAddr.set(ip, l);
        }
      }
      for (const [ip, l] of byAddr) {
        l.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
        for (let i = 1; i < l.length; i++) {
          assert.ok(l[i - 1]!.end !== null && l[i - 1]!.end! < l[i]!.start, `${ip} held twice`);
        }
      }
      const ipam = new IPAM(ds);
      for (const r of survivors) {
        for (const [ip, handle, , end] of r.holdings) {
          if (end === null) assert.equal((await ipam.getAllocation(ip))?.handleID, handle, `${ip} lost`);
        }
      }
      // A crash may leave a handle count off by the interrupted request; nothing else.
      const allowed = new Set<string>([IPAMIssueKind.HANDLE_MISMATCH, IPAMIssueKind.MISSING_HANDLE]);
      const report = await checkIPAM(ds);
      assert.deepEqual(
        report.issues.filter((i) => !allowed.has(i.kind)),
        [],
      );
      for (const i of report.issues)
        assert.match(i.message, /node-[01]\./, "only the killed workers' handles");
      // Repair puts right whatever the kills left (handles, pending or dying affinities).
      const repaired = await repairIPAM(ipam, { minAgeMs: 50 });
      assert.deepEqual(repaired.deferred, []);
      assert.deepEqual((await checkIPAM(ds)).issues, []);
      assert.ok(repairIsEmpty(await repairIPAM(ipam, { minAgeMs: 50 })), "a second repair changes nothing");
      for (const r of survivors) {
        for (const [ip, handle, , end] of r.holdings) {
          if (end === null)
            assert.equal((await ipam.getAllocation(ip))?.handleID, handle, `${ip} lost in repair`);
        }
      }
      // And a fresh allocator still gets addresses.
      await ipam.releaseByHandle("none");
      const fresh = await ipam.autoAssign({ node: "node-2", handleID: "after-crash", num6: 1 });
      assert.equal(fresh.ipv6.length, 1);
    },
  );

  const skip = etcdSkipReason();
  test("etcd: one cluster, four processes, no address held twice", { skip, timeout: 150_000 }, async () => {
    const etcd = await EtcdServer.start();
    cleanups.push(() => etcd.remove());
    const ds = openEtcdDatastore(etcd.url());
    cleanups.push(() => ds.close());
    await seed(ds);
    const reports = await runWorkers(jobs(etcd.url(), 200), 120_000);
    assert.ok(reports.reduce((n, r) => n + r.allocations, 0) > 50);
    await verify(ds, reports);
  });
});
