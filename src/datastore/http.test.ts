import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDatastore } from "./sqlite.js";
import { describeDatastoreConformance } from "./conformance.js";
import { MemoryDatastore } from "./memory.js";
import { HttpDatastore, parseHttpDatastoreUrl, redactHttpUrl } from "./http.js";
import { ApiServer } from "../apiserver/server.js";
import { isUnavailable } from "./types.js";

const dir = mkdtempSync(join(tmpdir(), `calico-ts-http-test-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A fresh in-process API server on a memory (or sqlite) store, serving the suite's key root. */
async function fixture(kind: "memory" | "sqlite" = "memory") {
  const backing = kind === "memory" ? new MemoryDatastore() : new SqliteDatastore(join(dir, `s${n++}.db`));
  const server = new ApiServer({ store: backing, root: "/conformance/", k8sApi: null, heartbeatMs: 500 });
  await server.start();
  const store = new HttpDatastore(server.url);
  return {
    store,
    server,
    cleanup: async () => {
      await store.close();
      await server.stop(1000);
      await backing.close();
    },
  };
}

describeDatastoreConformance("http (API server on a memory store)", () => fixture("memory"), {
  spawnUrl: (s) => s.url,
});

describeDatastoreConformance("http (API server on a sqlite store)", () => fixture("sqlite"));

describe("http driver URLs", () => {
  test("token from userinfo, ?token= or the environment; CA from ?ca= or the environment", () => {
    assert.deepEqual(parseHttpDatastoreUrl("http://t1@h:1", { env: { CALICO_DATASTORE_TOKEN: "t3" } }), {
      url: "http://h:1",
      options: { token: "t1" },
    });
    assert.deepEqual(
      parseHttpDatastoreUrl("http://h:1/?token=t2", { env: { CALICO_DATASTORE_TOKEN: "t3" } }),
      {
        url: "http://h:1",
        options: { token: "t2" },
      },
    );
    assert.deepEqual(parseHttpDatastoreUrl("http://h:1", { env: { CALICO_DATASTORE_TOKEN: "t3" } }), {
      url: "http://h:1",
      options: { token: "t3" },
    });
    assert.throws(
      () => parseHttpDatastoreUrl("https://h:1?ca=/nonexistent/ca.pem", { env: {} }),
      (e: unknown) => isUnavailable(e) && /nonexistent\/ca.pem/.test((e as Error).message),
    );
    assert.equal(redactHttpUrl("https://abc@h:1?token=xyz&ca=/c"), "https://***@h:1?token=***&ca=/c");
  });
});

describe("http driver failures", () => {
  const stores: HttpDatastore[] = [];
  after(async () => {
    for (const s of stores) await s.close();
  });

  test("an unreachable server fails UNAVAILABLE naming the URL", async () => {
    const s = new HttpDatastore("http://127.0.0.1:1");
    stores.push(s);
    await assert.rejects(s.create("/calico/x", "1"), (e: unknown) => {
      assert.ok(isUnavailable(e));
      assert.match((e as Error).message, /http:\/\/127.0.0.1:1 is unreachable/);
      return true;
    });
  });
});
