/**
 * The etcd driver against a real etcd (Debian etcd-server) started on loopback for this file:
 * the whole conformance suite, including its multi-process part (workers open the server's
 * URL), plus the etcd-specific behaviour (unreachable endpoints, URL handling).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { describeDatastoreConformance } from "./conformance.js";
import { EtcdDatastore, etcdPrefixEnd, openEtcdDatastore } from "./etcd.js";
import { EtcdServer, etcdSkipReason } from "./testing/etcd-server.js";
import { isUnavailable } from "./types.js";

const skip = etcdSkipReason();
let server: EtcdServer | undefined;

before(async () => {
  if (skip === false) server = await EtcdServer.start();
});
after(async () => {
  await server?.remove();
});

const need = (): EtcdServer => {
  assert.ok(server !== undefined, "etcd did not start");
  return server;
};

if (skip !== false) {
  test("etcd driver", { skip }, () => {});
} else {
  describeDatastoreConformance(
    "etcd",
    () => {
      const store = openEtcdDatastore(need().url());
      return Promise.resolve({ store, cleanup: () => store.close() });
    },
    { spawnUrl: () => need().url() },
  );

  describe("etcd driver", () => {
    test("a missing etcd skips the tests with the reason only outside CI", () => {
      const missing = ["/nonexistent/etcd"];
      assert.match(etcdSkipReason({}, missing) as string, /etcd is not installed \(\/nonexistent\/etcd\)/);
      assert.match(etcdSkipReason({ CI: "false" }, missing) as string, /not installed/);
      assert.equal(etcdSkipReason({ CI: "true" }, missing), false);
      assert.equal(etcdSkipReason({}, [process.execPath]), false);
    });

    test("the prefix end is etcd's: the last byte below 0xff incremented", () => {
      assert.deepEqual(etcdPrefixEnd(Buffer.from("/a/")), Buffer.from("/a0"));
      assert.deepEqual(etcdPrefixEnd(Buffer.from([0x61, 0xff, 0xff])), Buffer.from([0x62]));
      assert.deepEqual(etcdPrefixEnd(Buffer.from([0xff])), Buffer.from([0]));
    });

    test("an unreachable etcd fails UNAVAILABLE naming the endpoints, quickly", async () => {
      const s = new EtcdDatastore({ endpoints: ["127.0.0.1:1", "127.0.0.1:2"], callTimeoutMs: 3_000 });
      try {
        const start = Date.now();
        for (const op of [() => s.get("/calico/x"), () => s.create("/calico/x", "1"), () => s.revision()]) {
          await assert.rejects(op(), (e: unknown) => {
            assert.ok(isUnavailable(e), String(e));
            assert.match((e as Error).message, /etcd at 127\.0\.0\.1:1,127\.0\.0\.1:2/);
            return true;
          });
        }
        assert.ok(Date.now() - start < 10_000);
      } finally {
        await s.close();
      }
    });

    test("with a dead endpoint listed first or second, every call fails over to the live one", async () => {
      for (const endpoints of [
        ["127.0.0.1:1", need().endpoint],
        [need().endpoint, "127.0.0.1:1"],
      ]) {
        const s = new EtcdDatastore({ endpoints });
        try {
          const p = `/calico/failover/${process.pid}/${endpoints[0]}/`;
          for (let i = 0; i < 20; i++) {
            const kv = await s.create(`${p}${i}`, String(i));
            assert.equal((await s.get(`${p}${i}`))?.value, String(i));
            await s.update(`${p}${i}`, "x", kv.modRevision);
          }
          assert.equal((await s.list(p)).items.length, 20);
        } finally {
          await s.close();
        }
      }
    });

    test("no gRPC failure escapes as an unhandled rejection or exception", async () => {
      const escaped: unknown[] = [];
      const onRejection = (e: unknown) => escaped.push(e);
      process.on("unhandledRejection", onRejection);
      process.on("uncaughtException", onRejection);
      try {
        // Watches connecting and calls in flight to nowhere, then closed mid-way.
        const dead = new EtcdDatastore({ endpoints: ["127.0.0.1:1"], reconnectMinMs: 5 });
        const errors: Error[] = [];
        for (let i = 0; i < 5; i++)
          dead.watch(`/calico/${i}/`, 0, { onEvents: () => {}, onError: (e) => errors.push(e) });
        const calls = Promise.allSettled([
          dead.get("/calico/a"),
          dead.create("/calico/a", "1"),
          dead.list("/calico/"),
        ]);
        await new Promise((r) => setTimeout(r, 200));
        await dead.close();
        await calls;
        // A live store closed while its watches and calls are in flight.
        const live = openEtcdDatastore(need().url());
        for (let i = 0; i < 5; i++) live.watch(`/calico/${i}/`, 0, { onEvents: () => {}, onError: () => {} });
        const inFlight = Promise.allSettled([
          live.create(`/calico/closing/${process.pid}`, "1"),
          live.list("/calico/"),
        ]);
        await live.close();
        await inFlight;
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(escaped, []);
        assert.equal(errors.length, 5);
        assert.ok(errors.every((e) => (e as { code?: string }).code === "DATASTORE_CLOSED"));
      } finally {
        process.off("unhandledRejection", onRejection);
        process.off("uncaughtException", onRejection);
      }
    });

    test("the store revision is etcd's header revision", async () => {
      const s = openEtcdDatastore(need().url());
      try {
        const r0 = await s.revision();
        const kv = await s.create(`/calico/test/${process.pid}/rev`, "1");
        assert.equal(kv.modRevision, r0 + 1);
        const out = await need().etcdctl(["get", `/calico/test/${process.pid}/rev`, "-w", "json"]);
        const parsed = JSON.parse(out) as { kvs: { mod_revision: number }[] };
        assert.equal(parsed.kvs[0]?.mod_revision, kv.modRevision);
      } finally {
        await s.close();
      }
    });
  });
}
