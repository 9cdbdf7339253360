/**
 * Fault test (issue 3) through the API server: etcd is killed and restarted while HTTP clients
 * watch through calico-apiserver and a writer keeps writing. The API server's one datastore
 * watch must resume (or re-list) so that every client ends with exactly etcd's final state,
 * with no event applied twice.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { openEtcdDatastore } from "../src/datastore/etcd.js";
import { EtcdServer, etcdSkipReason } from "../src/datastore/testing/etcd-server.js";
import { HttpDatastore } from "../src/datastore/http.js";
import { isConflict, isNotFound, isUnavailable, type Datastore } from "../src/datastore/types.js";
import { ApiServer } from "../src/apiserver/server.js";
import { ClientMirror, until } from "./apiserver-fixture.js";

const skip = etcdSkipReason();
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One write, retried while etcd is down (bounded by `deadline`). */
async function writeRetrying(ds: Datastore, key: string, n: number, deadline: number): Promise<void> {
  for (;;) {
    try {
      const cur = await ds.get(key);
      if (cur === undefined) await ds.create(key, String(n));
      else if (n % 5 === 0) await ds.delete(key, cur.modRevision);
      else await ds.update(key, String(n), cur.modRevision);
      return;
    } catch (err) {
      // A write whose reply was lost in the crash may have happened: the CAS makes the retry safe.
      if (!isUnavailable(err) && !isConflict(err) && !isNotFound(err)) throw err;
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

test(
  "etcd restarted under the API server: HTTP watchers end with etcd's final state",
  { skip, timeout: 120_000 },
  async () => {
    const etcd = await EtcdServer.start();
    cleanups.push(() => etcd.remove());
    const backing = openEtcdDatastore(etcd.url());
    const writer = openEtcdDatastore(etcd.url());
    cleanups.push(async () => {
      await writer.close();
      await backing.close();
    });
    const server = new ApiServer({ store: backing, k8sApi: null, heartbeatMs: 300 });
    await server.start();
    cleanups.push(() => server.stop(500));
    await server.cache.ready();

    const clients = Array.from(
      { length: 3 },
      () => new ClientMirror(new HttpDatastore(server.url), "/calico/er/"),
    );
    cleanups.push(async () => {
      for (const c of clients) {
        c.stop();
        await c.ds.close();
      }
    });
    await Promise.all(clients.map((c) => c.start()));

    const deadline = Date.now() + 60_000;
    let n = 0;
    const write = async (count: number) => {
      for (let i = 0; i < count; i++, n++) await writeRetrying(writer, `/calico/er/${n % 10}`, n, deadline);
    };
    await write(40);
    await etcd.restart();
    await write(40);
    await etcd.restart();
    await write(40);

    const finalRev = await writer.revision();
    const final = new Map((await writer.list("/calico/er/")).items.map((kv) => [kv.key, kv.value]));
    for (const c of clients) {
      await until(
        () => c.revision >= finalRev,
        () => `a client at revision ${finalRev} (is at ${c.revision})`,
        30_000,
      );
      assert.deepEqual(c.state, final);
      assert.deepEqual(c.duplicates, []);
    }
    assert.ok(server.cache.inSync);
  },
);
