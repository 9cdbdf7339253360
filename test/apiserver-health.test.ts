import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDatastore } from "../src/datastore/memory.js";
import type { Datastore, ListResult } from "../src/datastore/types.js";
import { ApiServer } from "../src/apiserver/server.js";
import { call, StreamReader, until } from "./apiserver-fixture.js";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("calico-apiserver health and metrics", () => {
  test("/readyz is 503 until the watch cache is in sync, /livez is 200 throughout", async () => {
    const inner = new MemoryDatastore();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    // A datastore whose first listing hangs until released.
    const store: Datastore = Object.assign(Object.create(inner) as Datastore, {
      list: async (p: string): Promise<ListResult> => {
        await gate;
        return inner.list(p);
      },
    });
    const server = new ApiServer({ store, k8sApi: null, readyTimeoutMs: 200 });
    await server.start();
    cleanups.push(async () => {
      release();
      await server.stop(200);
      await inner.close();
    });
    assert.equal((await call(server.url, "GET", "/livez")).status, 200);
    const notReady = await call(server.url, "GET", "/readyz");
    assert.equal(notReady.status, 503);
    assert.match(notReady.text, /not in sync/);
    const w = await call(server.url, "GET", "/calico-ts/v1/watch?prefix=/calico/");
    assert.equal(w.status, 503);
    release();
    await until(
      () => server.cache.inSync,
      () => "in sync",
    );
    assert.equal((await call(server.url, "GET", "/readyz")).status, 200);
  });

  test("/metrics: watchers, events delivered, request latency by route/method/code, cut-offs", async () => {
    const store = new MemoryDatastore();
    const server = new ApiServer({ store, k8sApi: null });
    await server.start();
    const r = new StreamReader(server.url, "/calico-ts/v1/watch?prefix=/calico/&revision=0");
    cleanups.push(async () => {
      r.close();
      await server.stop(200);
      await store.close();
    });
    await r.waitFor((x) => x.lines.some((l) => l.type === "in-sync"), "in-sync");
    await call(server.url, "POST", "/calico-ts/v1/kv", { body: { key: "/calico/m", value: "1" } });
    await call(server.url, "GET", "/calico-ts/v1/kv?key=/calico/none");
    await r.waitFor((x) => x.events().length === 1, "one event");
    const m = await call(server.url, "GET", "/metrics");
    assert.equal(m.status, 200);
    assert.match(String(m.headers["content-type"]), /text\/plain/);
    assert.match(m.text, /^calico_apiserver_watchers 1$/m);
    assert.match(m.text, /^calico_apiserver_watch_events_delivered_total 1$/m);
    assert.match(m.text, /^calico_apiserver_watchers_cut_off_total 0$/m);
    assert.match(
      m.text,
      /calico_apiserver_request_duration_seconds_count\{route="kv",method="POST",code="201"\} 1/,
    );
    assert.match(
      m.text,
      /calico_apiserver_request_duration_seconds_count\{route="kv",method="GET",code="404"\} 1/,
    );
    assert.match(m.text, /^# TYPE calico_apiserver_datastore_errors_total counter$/m);
    assert.match(m.text, /^calico_apiserver_cache_revision \d+$/m);
  });
});
