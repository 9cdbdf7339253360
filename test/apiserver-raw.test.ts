import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { ApiServer } from "../src/apiserver/server.js";
import { call } from "./apiserver-fixture.js";

interface KVJ {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
}

describe("calico-apiserver raw key API", () => {
  const store = new MemoryDatastore();
  const server = new ApiServer({ store, k8sApi: null, maxBodyBytes: 64 * 1024 });
  let base = "";
  before(async () => {
    await server.start();
    base = server.url;
  });
  after(async () => {
    await server.stop(500);
    await store.close();
  });

  test("create, get, list, CAS update and delete with the contract's statuses", async () => {
    const c = await call(base, "POST", "/calico-ts/v1/kv", {
      body: { key: "/calico/cas/a", value: '{"n":1}' },
    });
    assert.equal(c.status, 201);
    const a = (c.json as { kv: KVJ }).kv;
    assert.equal(a.value, '{"n":1}');
    const again = await call(base, "POST", "/calico-ts/v1/kv", {
      body: { key: "/calico/cas/a", value: "x" },
    });
    assert.equal(again.status, 409);
    assert.equal((again.json as { code: string }).code, "DATASTORE_ALREADY_EXISTS");

    const g = await call(base, "GET", `/calico-ts/v1/kv?key=${encodeURIComponent("/calico/cas/a")}`);
    assert.deepEqual((g.json as { kv: KVJ }).kv, a);
    const missing = await call(base, "GET", "/calico-ts/v1/kv?key=/calico/cas/none");
    assert.equal(missing.status, 404);
    assert.equal((missing.json as { code: string }).code, "DATASTORE_NOT_FOUND");

    const u = await call(base, "PUT", "/calico-ts/v1/kv", {
      body: { key: "/calico/cas/a", value: '{"n":2}', expectedRevision: a.modRevision },
    });
    assert.equal(u.status, 200);
    const b = (u.json as { kv: KVJ }).kv;
    assert.equal(b.modRevision, a.modRevision + 1);
    const stale = await call(base, "PUT", "/calico-ts/v1/kv", {
      body: { key: "/calico/cas/a", value: '{"n":3}', expectedRevision: a.modRevision },
    });
    assert.equal(stale.status, 409);
    assert.equal((stale.json as { code: string }).code, "DATASTORE_CONFLICT");
    const staleDel = await call(
      base,
      "DELETE",
      `/calico-ts/v1/kv?key=/calico/cas/a&expectedRevision=${a.modRevision}`,
    );
    assert.equal(staleDel.status, 409);
    const l = await call(base, "GET", "/calico-ts/v1/kv?prefix=/calico/cas/");
    assert.deepEqual(l.json, { items: [b], revision: b.modRevision });
    const d = await call(
      base,
      "DELETE",
      `/calico-ts/v1/kv?key=/calico/cas/a&expectedRevision=${b.modRevision}`,
    );
    assert.equal(d.status, 200);
    assert.deepEqual((d.json as { kv: KVJ }).kv, b);
    const gone = await call(base, "PUT", "/calico-ts/v1/kv", { body: { key: "/calico/cas/a", value: "1" } });
    assert.equal(gone.status, 404);
    const rev = await call(base, "GET", "/calico-ts/v1/revision");
    assert.deepEqual(rev.json, { revision: b.modRevision + 1 });
  });

  test("compaction: 200, then watches from below it are 410; beyond the store revision is 400", async () => {
    await call(base, "POST", "/calico-ts/v1/kv", { body: { key: "/calico/compact/a", value: "1" } });
    const r = (await store.revision()) - 0;
    assert.equal((await call(base, "POST", "/calico-ts/v1/compact", { body: { revision: r } })).status, 200);
    const w = await call(base, "GET", `/calico-ts/v1/watch?prefix=/calico/&revision=${r - 1}`);
    assert.equal(w.status, 410);
    assert.equal((w.json as { code: string }).code, "DATASTORE_REVISION_COMPACTED");
    const beyond = await call(base, "POST", "/calico-ts/v1/compact", { body: { revision: r + 100 } });
    assert.equal(beyond.status, 400);
    assert.equal((beyond.json as { code: string }).code, "DATASTORE_INVALID_ARGUMENT");
  });

  test("malformed requests get a clear 4xx and the server keeps serving", async () => {
    const cases: {
      method: string;
      path: string;
      body?: unknown;
      raw?: string;
      status: number;
      re: RegExp;
    }[] = [
      { method: "POST", path: "/calico-ts/v1/kv", raw: "{not json", status: 400, re: /Invalid JSON body/ },
      { method: "POST", path: "/calico-ts/v1/kv", raw: "", status: 400, re: /Invalid JSON body/ },
      { method: "POST", path: "/calico-ts/v1/kv", body: [1, 2], status: 400, re: /expected a JSON object/ },
      {
        method: "POST",
        path: "/calico-ts/v1/kv",
        body: { key: "/calico/x" },
        status: 400,
        re: /Invalid value/,
      },
      {
        method: "POST",
        path: "/calico-ts/v1/kv",
        body: { key: 7, value: "1" },
        status: 400,
        re: /Invalid key/,
      },
      {
        method: "POST",
        path: "/calico-ts/v1/kv",
        body: { key: "/etc/passwd", value: "1" },
        status: 400,
        re: /under "\/calico\/"/,
      },
      {
        method: "POST",
        path: "/calico-ts/v1/kv",
        body: { key: "/calico/\ud800", value: "1" },
        status: 400,
        re: /lone surrogate/,
      },
      { method: "GET", path: "/calico-ts/v1/kv?key=/other/x", status: 400, re: /under "\/calico\/"/ },
      { method: "GET", path: "/calico-ts/v1/kv?prefix=/etc/", status: 400, re: /under "\/calico\/"/ },
      { method: "GET", path: "/calico-ts/v1/kv", status: 400, re: /Missing query parameter: prefix/ },
      {
        method: "PUT",
        path: "/calico-ts/v1/kv",
        body: { key: "/calico/x", value: "1", expectedRevision: -1 },
        status: 400,
        re: /non-negative integer/,
      },
      {
        method: "PUT",
        path: "/calico-ts/v1/kv",
        body: { key: "/calico/x", value: "1", expectedRevision: "abc" },
        status: 400,
        re: /non-negative integer/,
      },
      {
        method: "DELETE",
        path: "/calico-ts/v1/kv?key=/calico/x&expectedRevision=1.5",
        status: 400,
        re: /non-negative integer/,
      },
      {
        method: "GET",
        path: "/calico-ts/v1/watch?prefix=/calico/&revision=-3",
        status: 400,
        re: /non-negative integer/,
      },
      {
        method: "GET",
        path: "/calico-ts/v1/watch?prefix=/calico/&revision=99999999999999999999",
        status: 400,
        re: /non-negative integer/,
      },
      { method: "GET", path: "/calico-ts/v1/watch?prefix=/var/", status: 400, re: /under/ },
      {
        method: "POST",
        path: "/calico-ts/v1/compact",
        body: { revision: "x" },
        status: 400,
        re: /non-negative integer/,
      },
      { method: "PATCH", path: "/calico-ts/v1/kv", body: {}, status: 405, re: /not allowed/ },
      { method: "POST", path: "/calico-ts/v1/revision", body: {}, status: 405, re: /not allowed/ },
      { method: "GET", path: "/calico-ts/v1/nope", status: 404, re: /No such API path/ },
      { method: "GET", path: "/nope", status: 404, re: /No such API path/ },
      { method: "GET", path: "/apis/projectcalico.org/v3/ippools", status: 404, re: /No such API path/ },
    ];
    for (const c of cases) {
      const r = await call(base, c.method, c.path, {
        ...(c.raw !== undefined ? { rawBody: c.raw } : {}),
        ...(c.body !== undefined ? { body: c.body } : {}),
      });
      assert.equal(r.status, c.status, `${c.method} ${c.path}: ${r.text}`);
      const j = r.json as { code: string; message: string };
      assert.equal(typeof j.code, "string", r.text);
      assert.match(j.message, c.re, `${c.method} ${c.path}`);
    }
    assert.equal((await call(base, "GET", "/livez")).status, 200);
  });

  test("a body over the size limit is refused 413, declared or streamed", async () => {
    const big = JSON.stringify({ key: "/calico/big", value: "x".repeat(100 * 1024) });
    const r = await call(base, "POST", "/calico-ts/v1/kv", { rawBody: big });
    assert.equal(r.status, 413);
    assert.equal((r.json as { code: string }).code, "PAYLOAD_TOO_LARGE");
    // Chunked (no content-length): the limit applies while reading.
    const status = await new Promise<string>((resolve, reject) => {
      const { port } = server.address;
      const s = connect(port, "127.0.0.1", () => {
        s.write("POST /calico-ts/v1/kv HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        const chunk = "y".repeat(16 * 1024);
        for (let i = 0; i < 8; i++) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      });
      let got = "";
      s.on("data", (d) => {
        got += d.toString();
        if (got.includes("\r\n")) {
          resolve(got.split("\r\n")[0]!);
          s.destroy();
        }
      });
      s.on("error", reject);
      setTimeout(() => reject(new Error("no answer")), 5000).unref();
    });
    assert.match(status, /^HTTP\/1.1 413/);
    assert.equal(await store.get("/calico/big"), undefined);
  });

  test("garbage on the socket and a bad request line get 400, never a crash", async () => {
    const { port } = server.address;
    for (const junk of [
      "\x00\x01\x02 garbage\r\n\r\n",
      "GET /calico-ts/v1/revision HTTP/9.9 nonsense\r\n\r\n",
    ]) {
      const answer = await new Promise<string>((resolve) => {
        const s = connect(port, "127.0.0.1", () => s.write(junk));
        let got = "";
        s.on("data", (d) => (got += d.toString()));
        s.on("close", () => resolve(got));
        s.on("error", () => resolve(got));
        setTimeout(() => s.destroy(), 2000).unref();
      });
      assert.match(answer, /^HTTP\/1.1 400/);
    }
    assert.equal((await call(base, "GET", "/calico-ts/v1/revision")).status, 200);
  });
});
