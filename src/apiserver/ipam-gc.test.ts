import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { API_VERSION } from "../api/resource.js";
import { MemoryDatastore } from "../datastore/memory.js";
import { IPAM } from "../ipam/allocator.js";
import { checkIPAM } from "../ipam/check.js";
import { defaultGCIntervalMs, IPAMController } from "./ipam-gc.js";

const until = async (cond: () => boolean, ms = 5_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe("calico-apiserver IPAM controller", () => {
  test("the default interval is half the leak grace period (5 min when GC is off)", () => {
    assert.equal(defaultGCIntervalMs(15 * 60_000), 7.5 * 60_000);
    assert.equal(defaultGCIntervalMs(0), 5 * 60_000);
  });

  test("runs passes periodically, logs what they released, and stops cleanly", async () => {
    const ds = new MemoryDatastore();
    const ipam = new IPAM(ds);
    await ipam.resources.create({
      apiVersion: API_VERSION,
      kind: "IPPool",
      metadata: { name: "p" },
      spec: { cidr: "198.19.7.0/24", blockSize: 28 },
    });
    await ipam.resources.create({
      apiVersion: API_VERSION,
      kind: "Node",
      metadata: { name: "n1" },
      spec: {},
    });
    const got = await ipam.autoAssign({ node: "n1", handleID: "h", num4: 2, attrs: { node: "n1" } });
    await ipam.resources.delete({ kind: "Node", name: "n1" });
    // A crash left a handle with no addresses: repair deletes it a pass later.
    await ds.create(
      "/calico/ipam/v2/handle/stale",
      JSON.stringify({ block: { "198.19.7.64/28": 1 }, deleted: false }),
    );

    const lines: string[] = [];
    const c = new IPAMController(ds, { intervalMs: 20, repairMinAgeMs: 0, log: (l) => lines.push(l) });
    await c.start();
    assert.match(lines[0]!, /every 0.02s/);
    await until(() => lines.some((l) => /pass 2:/.test(l)));
    await c.stop();
    const released = lines.find((l) => /deleted node\(s\) n1: released 2 address/.test(l));
    assert.ok(released, lines.join("\n"));
    for (const a of got.ipv4) assert.ok(released.includes(a.address));
    assert.ok(
      lines.some((l) => /repair: handles deleted: stale/.test(l)),
      lines.join("\n"),
    );
    assert.deepEqual((await checkIPAM(ds)).issues, []);
    const n = lines.length;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(lines.length, n, "no pass after stop");
  });

  test("a failing pass is logged and the next one still runs", async () => {
    const ds = new MemoryDatastore();
    const lines: string[] = [];
    const c = new IPAMController(ds, { intervalMs: 10, log: (l) => lines.push(l) });
    await c.start();
    await until(() => lines.some((l) => /pass 1:/.test(l)));
    await ds.close();
    await until(() => lines.some((l) => /pass \d+ failed/.test(l)));
    await c.stop();
  });
});
