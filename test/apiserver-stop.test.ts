/** Graceful stop ends every watch stream promptly, Kubernetes ones included. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { ApiServer } from "../src/apiserver/server.js";

test("stop() ends an open Kubernetes watch cleanly instead of waiting out the grace period", async () => {
  const store = new MemoryDatastore();
  const server = new ApiServer({ store, host: "127.0.0.1", port: 0 });
  await server.start();
  const ctl = new AbortController();
  const guard = setTimeout(() => ctl.abort(), 15_000);
  try {
    const res = await fetch(`${server.url}/apis/projectcalico.org/v3/tiers?watch=true`, {
      signal: ctl.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read(); // the ADDED event for the built-in default tier
    let text = new TextDecoder().decode(first.value);
    const started = Date.now();
    const stopped = server.stop(10_000);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await stopped;
    const took = Date.now() - started;
    assert.ok(took < 3_000, `stop took ${took} ms with a Kubernetes watch open`);
    const types = text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => (JSON.parse(l) as { type: string }).type);
    assert.deepEqual(types, ["ADDED"], "the stream just ends: no ERROR event for a shutdown");
  } finally {
    clearTimeout(guard);
    await server.stop(200);
    await store.close();
  }
});
