import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { SqliteDatastore } from "../src/datastore/sqlite.js";
import { HttpDatastore } from "../src/datastore/http.js";
import type { Datastore } from "../src/datastore/types.js";
import { isCompacted } from "../src/datastore/types.js";
import { ApiServer, type ApiServerOptions } from "../src/apiserver/server.js";
import { call, ClientMirror, StreamReader, until } from "./apiserver-fixture.js";
import { killAllWorkers, spawnWorker } from "../src/datastore/testing/procs.js";

const servers: ApiServer[] = [];
const readers: StreamReader[] = [];
const stores: Datastore[] = [];
const dirs: string[] = [];
after(async () => {
  await killAllWorkers();
  for (const r of readers) r.close();
  for (const s of servers) await s.stop(200);
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function serve(opts: Partial<ApiServerOptions> & { store: Datastore }): Promise<ApiServer> {
  const s = new ApiServer({ k8sApi: null, ...opts });
  servers.push(s);
  await s.start();
  return s;
}

function reader(base: string, path: string, opts: { paused?: boolean } = {}): StreamReader {
  const r = new StreamReader(base, path, opts);
  readers.push(r);
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const metric = async (server: ApiServer, name: string): Promise<number> => {
  const m = await server.metrics.registry.getSingleMetricAsString(name);
  const line = m.split("\n").find((l) => l.startsWith(name));
  return Number(line?.split(" ").pop() ?? "NaN");
};

describe("calico-apiserver watch stream", () => {
  test("without a revision: snapshot, then in-sync, then deltas; prefix scoped", async () => {
    const store = new MemoryDatastore();
    stores.push(store);
    await store.create("/calico/w/b", "2");
    await store.create("/calico/w/a", "1");
    await store.create("/calico/other/x", "1");
    const server = await serve({ store });
    const r = reader(server.url, "/calico-ts/v1/watch?prefix=/calico/w/");
    await r.waitFor((x) => x.lines.some((l) => l.type === "in-sync"), "in-sync");
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.lines.map((l) => `${l.type} ${l.kv?.key ?? ""} ${l.revision ?? ""}`.trim()),
      ["put /calico/w/a", "put /calico/w/b", "in-sync  3"],
    );
    await store.update("/calico/w/a", "3");
    await store.create("/calico/other/y", "1");
    await store.delete("/calico/w/b");
    await r.waitFor((x) => x.events().length === 4, "2 deltas");
    assert.deepEqual(
      r
        .events()
        .slice(2)
        .map((l) => `${l.type} ${l.kv?.key ?? l.key} ${l.kv?.modRevision ?? l.revision}`),
      ["put /calico/w/a 4", "delete /calico/w/b 6"],
    );
  });

  test("from a revision: only the missed deltas, in-sync, live; heartbeats carry the revision", async () => {
    const store = new MemoryDatastore();
    stores.push(store);
    const server = await serve({ store, heartbeatMs: 100 });
    for (let i = 0; i < 6; i++) await store.create(`/calico/r/${i}`, "1");
    await until(
      () => server.cache.currentRevision === 6,
      () => "cache at 6",
    );
    const r = reader(server.url, "/calico-ts/v1/watch?prefix=/calico/r/&revision=4");
    await r.waitFor((x) => x.lines.some((l) => l.type === "heartbeat"), "a heartbeat", 3000);
    assert.deepEqual(
      r.lines.slice(0, 3).map((l) => `${l.type} ${l.kv?.modRevision ?? l.revision}`),
      ["put 5", "put 6", "in-sync 6"],
    );
    await store.create("/calico/r/x", "1");
    await r.waitFor((x) => x.events().length === 3, "the live event");
    assert.equal(r.events()[2]!.kv?.modRevision, 7);
    assert.equal(r.lines.find((l) => l.type === "heartbeat")!.revision! >= 6, true);
  });

  test("a revision older than the ring: 410 REVISION_COMPACTED; the HTTP driver reports it", async () => {
    const store = new MemoryDatastore();
    stores.push(store);
    const server = await serve({ store, cache: { historyEvents: 3 } });
    for (let i = 0; i < 10; i++) await store.create(`/calico/o/${i}`, "1");
    await until(
      () => server.cache.currentRevision === 10,
      () => "cache at 10",
    );
    const r = await call(server.url, "GET", "/calico-ts/v1/watch?prefix=/calico/&revision=2");
    assert.equal(r.status, 410);
    assert.equal((r.json as { code: string }).code, "DATASTORE_REVISION_COMPACTED");
    const ds = new HttpDatastore(server.url);
    stores.push(ds);
    const err = await new Promise<Error>((resolve) =>
      ds.watch("/calico/", 2, { onEvents: () => {}, onError: resolve }),
    );
    assert.ok(isCompacted(err), String(err));
  });

  test("a watcher that stops reading is cut off; the others get everything; memory stays bounded", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const store = new MemoryDatastore();
    stores.push(store);
    const limit = 512 * 1024;
    const server = await serve({ store, watchLimits: { maxQueuedBytes: limit, maxQueuedEvents: 100_000 } });
    const fast = reader(server.url, "/calico-ts/v1/watch?prefix=/calico/slow/&revision=0");
    const slow = reader(server.url, "/calico-ts/v1/watch?prefix=/calico/slow/&revision=0", { paused: true });
    await fast.open();
    await slow.open();
    await until(
      () => server.watcherCount === 2,
      () => "2 watchers",
    );
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    const value = JSON.stringify({ pad: "z".repeat(16 * 1024) });
    const N = 400; // ~6.5 MB through each watcher, far past the slow one's 512 KiB bound
    let kv = await store.create("/calico/slow/k", value);
    for (let i = 1; i < N; i++) {
      kv = await store.update("/calico/slow/k", value, kv.modRevision);
      if (i % 50 === 0) await store.compact(kv.modRevision - 1); // the memory store keeps history otherwise
      // A healthy watcher drains between writes (a burst larger than the bound would cut it off too).
      await new Promise((r) => setImmediate(r));
    }
    await fast.waitFor((x) => x.events().length === N, `${N} events for the fast watcher`, 20_000);
    await until(
      () => server.watcherCount === 1,
      () => "the slow watcher to be cut off",
      10_000,
    );
    assert.equal(await metric(server, "calico_apiserver_watchers_cut_off_total"), 1);
    assert.equal(await metric(server, "calico_apiserver_watchers"), 1);
    assert.ok(slow.socketBytesRead < N * value.length, "the slow watcher did not get everything");
    gc();
    const grown = process.memoryUsage().heapUsed - heap0;
    // The watch cache's ring (64 MiB bound by default) holds the recent events; what must not
    // happen is the slow watcher's queue growing with the whole stream (~6.5 MB more).
    assert.ok(grown < 24 * 1024 * 1024, `heap grew by ${(grown / 1e6).toFixed(1)} MB`);
    // The fast watcher saw every revision exactly once.
    const revs = fast.events().map((l) => l.kv!.modRevision);
    assert.deepEqual(
      revs,
      Array.from({ length: N }, (_, i) => i + 1),
    );
  });

  test("an HTTP-driver watcher in a stopped process is cut off, then resumes with exactly the missed events", async () => {
    const store = new MemoryDatastore();
    stores.push(store);
    const server = await serve({ store, watchLimits: { maxQueuedBytes: 256 * 1024 } });
    const r0 = await store.revision();
    const N = 300;
    const watcher = spawnWorker({
      kind: "watch",
      url: server.url,
      prefix: "/calico/stop/",
      afterRevision: r0,
      report: true,
      expect: N,
      deadlineMs: 60_000,
    });
    await watcher.ready();
    await until(
      () => server.watcherCount === 1,
      () => "the worker's watch",
    );
    assert.ok(watcher.child.kill("SIGSTOP"));
    try {
      const value = JSON.stringify({ pad: "s".repeat(32 * 1024) }); // ~10 MB in all: more than socket buffers
      for (let i = 0; i < N; i++) {
        await store.create(`/calico/stop/${String(i).padStart(4, "0")}`, value);
        await new Promise((r) => setImmediate(r));
      }
      await until(
        () => server.watcherCount === 0,
        () => "the stopped watcher to be cut off",
        20_000,
      );
    } finally {
      watcher.child.kill("SIGCONT");
    }
    await watcher.done(30_000);
    const revs = watcher.messages.flatMap((m) => (m.type === "events" ? m.events.map((e) => e.rev) : []));
    assert.deepEqual(
      revs,
      Array.from({ length: N }, (_, i) => r0 + 1 + i),
    );
    assert.equal(await metric(server, "calico_apiserver_watchers_cut_off_total"), 1);
  });

  test("a quiet API server restart: clients resume from their revision without re-listing", async () => {
    const store = new MemoryDatastore();
    stores.push(store);
    for (let i = 0; i < 5; i++) await store.create(`/calico/q/${i}`, "1");
    let server = await serve({ store, heartbeatMs: 100 });
    const port = server.address.port;
    const client = new ClientMirror(new HttpDatastore(server.url), "/calico/q/");
    stores.push(client.ds);
    await client.start();
    await store.create("/calico/other/x", "1"); // not under the client's prefix: heartbeats carry it
    await sleep(400);
    await server.stop(200);
    server = await serve({ store, port, heartbeatMs: 100 });
    await store.update("/calico/q/1", "2");
    await until(
      () => client.state.get("/calico/q/1") === "2",
      () => "the update after the restart",
      10_000,
    );
    assert.equal(client.relists, 0);
    assert.deepEqual(client.duplicates, []);
    client.stop();
  });

  test("the API server restarted while clients watch: they reconnect and end with the store's state", async () => {
    const dir = mkdtempSync(join(tmpdir(), "calico-ts-apiserver-restart-"));
    dirs.push(dir);
    const path = join(dir, "db.sqlite");
    const writer = new SqliteDatastore(path);
    stores.push(writer);
    let backing = new SqliteDatastore(path, { pollIntervalMs: 5 });
    let server = await serve({ store: backing, heartbeatMs: 200 });
    const port = server.address.port;
    const clients = Array.from(
      { length: 4 },
      () => new ClientMirror(new HttpDatastore(server.url), "/calico/rs/"),
    );
    for (const c of clients) stores.push(c.ds);
    await Promise.all(clients.map((c) => c.start()));

    let n = 0;
    const write = async (count: number) => {
      for (let i = 0; i < count; i++, n++) {
        const k = `/calico/rs/${n % 25}`;
        const cur = await writer.get(k);
        if (cur === undefined) await writer.create(k, String(n));
        else if (n % 7 === 0) await writer.delete(k, cur.modRevision);
        else await writer.update(k, String(n), cur.modRevision);
      }
    };
    await write(100);
    await server.stop(200);
    await backing.close();
    await write(100); // written while no API server runs
    backing = new SqliteDatastore(path, { pollIntervalMs: 5 });
    stores.push(backing);
    server = await serve({ store: backing, port, heartbeatMs: 200 });
    await write(100);
    const final = new Map((await writer.list("/calico/rs/")).items.map((kv) => [kv.key, kv.value]));
    const finalRev = await writer.revision();
    for (const c of clients) {
      await until(
        () => c.revision >= finalRev,
        () => `client at ${finalRev} (is at ${c.revision})`,
        15_000,
      );
      assert.deepEqual(c.state, final);
      assert.deepEqual(c.duplicates, []);
    }
    for (const c of clients) c.stop();
  });
});
