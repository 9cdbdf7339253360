import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { HttpDatastore } from "../src/datastore/http.js";
import { isUnavailable } from "../src/datastore/types.js";
import { ApiServer } from "../src/apiserver/server.js";
import { TokenAuthenticator, parseTokenFile } from "../src/apiserver/auth.js";
import { call, makeCert, StreamReader } from "./apiserver-fixture.js";

const TOKENS = [
  "# comment line",
  "admin-token,admin,1",
  'reader-token,reader,2,"read-only,viewers"',
  '"quoted,token",odd,3,"a"',
].join("\n");

describe("calico-apiserver auth", () => {
  const store = new MemoryDatastore();
  const server = new ApiServer({
    store,
    k8sApi: null,
    tokens: new TokenAuthenticator(parseTokenFile(TOKENS)),
  });
  before(() => server.start());
  after(async () => {
    await server.stop(500);
    await store.close();
  });

  test("no token, a malformed header or an unknown token: 401 with a body that reveals nothing", async () => {
    const base = server.url;
    const variants: { headers?: Record<string, string>; token?: string }[] = [
      {},
      { token: "wrong" },
      { token: "admin-token-x" },
      { headers: { authorization: "Basic YWRtaW46eA==" } },
      { headers: { authorization: "Bearer" } },
    ];
    const bodies = new Set<string>();
    for (const v of variants) {
      for (const [method, path] of [
        ["GET", "/calico-ts/v1/kv?key=/calico/x"],
        ["GET", "/calico-ts/v1/nonexistent"],
        ["POST", "/calico-ts/v1/kv"],
        ["GET", "/no/such/path"],
      ] as const) {
        const r = await call(base, method, path, {
          ...v,
          ...(method === "POST" ? { body: { key: "/calico/a", value: "1" } } : {}),
        });
        assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(v)}`);
        assert.equal(r.headers["www-authenticate"], 'Bearer realm="calico-apiserver"');
        // An unauthenticated caller may not keep the connection (and a server socket) open.
        assert.equal(r.headers.connection, "close");
        bodies.add(r.text);
      }
    }
    assert.deepEqual([...bodies], ['{"code":"UNAUTHORIZED","message":"Unauthorized"}']);
    assert.equal((await store.list("/calico/")).items.length, 0);
  });

  test("Kubernetes paths get a Kubernetes Status on 401", async () => {
    const r = await call(server.url, "GET", "/apis/projectcalico.org/v3/ippools");
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "Unauthorized",
      reason: "Unauthorized",
      code: 401,
    });
  });

  test("a read-only token reads and watches but every write is 403", async () => {
    const base = server.url;
    await call(base, "POST", "/calico-ts/v1/kv", {
      token: "admin-token",
      body: { key: "/calico/ro/a", value: "1" },
    });
    const get = await call(base, "GET", "/calico-ts/v1/kv?key=/calico/ro/a", { token: "reader-token" });
    assert.equal(get.status, 200);
    const w = new StreamReader(base, "/calico-ts/v1/watch?prefix=/calico/ro/", { token: "reader-token" });
    try {
      await w.waitFor((r) => r.lines.some((l) => l.type === "in-sync"), "in-sync");
      assert.equal(w.status, 200);
    } finally {
      w.close();
    }
    for (const [method, path, body] of [
      ["POST", "/calico-ts/v1/kv", { key: "/calico/ro/b", value: "1" }],
      ["PUT", "/calico-ts/v1/kv", { key: "/calico/ro/a", value: "2" }],
      ["DELETE", "/calico-ts/v1/kv?key=/calico/ro/a", undefined],
      ["POST", "/calico-ts/v1/compact", { revision: 1 }],
      ["DELETE", "/no/such/path", undefined],
    ] as const) {
      const r = await call(base, method, path, {
        token: "reader-token",
        ...(body !== undefined ? { body } : {}),
      });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal(r.text, '{"code":"FORBIDDEN","message":"Forbidden"}');
    }
    assert.equal((await store.get("/calico/ro/a"))?.value, "1");
    assert.equal(await store.get("/calico/ro/b"), undefined);
  });

  test("quoted CSV tokens work; health and metrics need no token", async () => {
    const r = await call(server.url, "GET", "/calico-ts/v1/revision", { token: "quoted,token" });
    assert.equal(r.status, 200);
    for (const p of ["/livez", "/readyz", "/metrics"]) {
      assert.equal((await call(server.url, "GET", p)).status, 200, p);
    }
  });

  test("the HTTP driver sends its token; without one it fails UNAVAILABLE saying why", async () => {
    const good = new HttpDatastore(server.url, { token: "admin-token" });
    const none = new HttpDatastore(server.url);
    const ro = new HttpDatastore(server.url, { token: "reader-token" });
    try {
      const kv = await good.create("/calico/drv/a", "1");
      assert.equal((await ro.get("/calico/drv/a"))?.value, "1");
      await assert.rejects(
        none.get("/calico/drv/a"),
        (e: unknown) => isUnavailable(e) && /401 Unauthorized/.test((e as Error).message),
      );
      await assert.rejects(
        ro.update("/calico/drv/a", "2", kv.modRevision),
        (e: unknown) => isUnavailable(e) && /403 Forbidden/.test((e as Error).message),
      );
      const err = await new Promise<Error>((resolve) =>
        none.watch("/calico/", 0, { onEvents: () => {}, onError: resolve }),
      );
      assert.ok(isUnavailable(err), String(err));
    } finally {
      await Promise.all([good.close(), none.close(), ro.close()]);
    }
  });
});

describe("token file format", () => {
  test("parses users, uids, groups and the read-only flag", () => {
    const entries = parseTokenFile(TOKENS);
    assert.deepEqual(
      entries.map((e) => [e.token, e.user, e.uid, [...e.groups], e.readOnly]),
      [
        ["admin-token", "admin", "1", [], false],
        ["reader-token", "reader", "2", ["read-only", "viewers"], true],
        ["quoted,token", "odd", "3", ["a"], false],
      ],
    );
  });

  test("malformed lines fail naming the line, never the token", () => {
    const cases: [string, RegExp][] = [
      ["secret-1,user", /line 1: expected token,user,uid/],
      ['ok,a,1\nsecret-2,u,2,"unterminated', /line 2: unbalanced quotes/],
      ["secret-3,u,1\nsecret-3,v,2", /line 2: duplicate token/],
      [",u,1", /line 1: the token and user must not be empty/],
    ];
    for (const [text, re] of cases) {
      assert.throws(
        () => parseTokenFile(text, "tokens.csv"),
        (e: unknown) => re.test((e as Error).message) && !/secret/.test((e as Error).message),
        text,
      );
    }
  });
});

describe("calico-apiserver TLS", () => {
  const certs = makeCert();
  const store = new MemoryDatastore();
  const server = new ApiServer({
    store,
    k8sApi: null,
    tls: { cert: certs.cert, key: certs.key },
    tokens: new TokenAuthenticator(parseTokenFile("t,u,1")),
  });
  before(() => server.start());
  after(async () => {
    await server.stop(500);
    await store.close();
    certs.cleanup();
  });

  test("serves HTTPS with the given certificate; a client without the CA refuses it", async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ok = await call(server.url, "GET", "/calico-ts/v1/revision", { token: "t", ca: certs.cert });
    assert.equal(ok.status, 200);
    await assert.rejects(call(server.url, "GET", "/livez"), /self[- ]signed|unable to verify|certificate/i);
    const plain = await call(server.url.replace("https:", "http:"), "GET", "/livez").catch((e: Error) => e);
    assert.ok(plain instanceof Error || plain.status >= 400, "plain HTTP to the TLS port must not work");
  });

  test("the HTTP driver over https with token and CA: CRUD and a watch", async () => {
    const ds = new HttpDatastore(server.url, { token: "t", ca: certs.cert });
    const untrusting = new HttpDatastore(server.url, { token: "t" });
    try {
      const got: string[] = [];
      const w = ds.watch("/calico/tls/", await ds.revision(), {
        onEvents: (es) => got.push(...es.map((e) => e.type)),
        onError: () => {},
      });
      const kv = await ds.create("/calico/tls/a", "1");
      await ds.update("/calico/tls/a", "2", kv.modRevision);
      await ds.delete("/calico/tls/a");
      const deadline = Date.now() + 5000;
      while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      w.close();
      assert.deepEqual(got, ["put", "put", "delete"]);
      await assert.rejects(untrusting.revision(), (e: unknown) => isUnavailable(e));
    } finally {
      await ds.close();
      await untrusting.close();
    }
  });
});
