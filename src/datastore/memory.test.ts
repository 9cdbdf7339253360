import { test } from "node:test";
import assert from "node:assert/strict";
import { describeDatastoreConformance } from "./conformance.js";
import { MemoryDatastore } from "./memory.js";

describeDatastoreConformance("memory", () => {
  const store = new MemoryDatastore();
  return Promise.resolve({ store, cleanup: () => store.close() });
});

// Named stores are shared by every handle in the process: the conformance suite again, with
// each test's store being a second handle onto one named store.
let named = 0;
describeDatastoreConformance("memory (named, second handle)", () => {
  const name = `conformance-${process.pid}-${named++}`;
  const first = new MemoryDatastore({ name });
  const store = new MemoryDatastore({ name });
  return Promise.resolve({
    store,
    cleanup: async () => {
      await store.close();
      await first.close();
      MemoryDatastore.forget(name);
    },
  });
});

test("memory: named handles share data and watches; closing one leaves the other open", async () => {
  const a = new MemoryDatastore({ name: "shared-test" });
  const b = new MemoryDatastore({ name: "shared-test" });
  try {
    assert.equal(a.url, "memory://shared-test");
    const seen: string[] = [];
    b.watch("/", 0, {
      onEvents: (es) => seen.push(...es.map((e) => e.type)),
      onError: () => seen.push("error"),
    });
    await a.create("/x", "1");
    assert.equal((await b.get("/x"))?.value, "1");
    await a.close();
    await b.update("/x", "2");
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, ["put", "put"]);
  } finally {
    await b.close();
    MemoryDatastore.forget("shared-test");
  }
});

test("memory: history is trimmed after compaction once no watch needs it", async () => {
  const s = new MemoryDatastore();
  for (let i = 0; i < 100; i++) await s.create(`/k${i}`, "1");
  await s.compact(90);
  const core = (s as unknown as { core: { history: unknown[]; firstRev: number } }).core;
  assert.equal(core.firstRev, 91);
  assert.equal(core.history.length, 10);
  await s.close();
});

test("memory: a long replay is handed over in batches of at most 1,000 events", async () => {
  const s = new MemoryDatastore();
  for (let i = 0; i < 2500; i++) await s.create(`/k/${i}`, "1");
  const sizes: number[] = [];
  const w = s.watch("/k/", 0, { onEvents: (es) => sizes.push(es.length), onError: () => {} });
  const deadline = Date.now() + 5000;
  while (sizes.reduce((a, b) => a + b, 0) < 2500 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 2));
  w.close();
  await s.close();
  assert.deepEqual(sizes, [1000, 1000, 500]);
});
