import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, READER, type TestServer } from "./k8s/test-server.js";

const GV = "/apis/projectcalico.org/v3";
const TABLE =
  "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

const pool = (name: string, cidr: string, labels?: Record<string, string>) => ({
  apiVersion: "projectcalico.org/v3",
  kind: "IPPool",
  metadata: { name, ...(labels !== undefined ? { labels } : {}) },
  spec: { cidr },
});

const gnp = (name: string, order: number) => ({
  apiVersion: "projectcalico.org/v3",
  kind: "GlobalNetworkPolicy",
  metadata: { name },
  spec: { selector: "all()", order, ingress: [{ action: "Allow" }] },
});

const np = (name: string, namespace: string) => ({
  apiVersion: "projectcalico.org/v3",
  kind: "NetworkPolicy",
  metadata: { name, namespace },
  spec: { selector: "app == 'web'" },
});

let s: TestServer;

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  const r = await fetch(`${s.url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  return { status: r.status, json: text === "" ? undefined : JSON.parse(text), headers: r.headers };
}

/** Read watch events until `want` of them arrived (or the stream ends), bounded in time. */
async function watchEvents(
  path: string,
  want: number,
  opts: { accept?: string; during?: () => Promise<void>; timeoutMs?: number } = {},
): Promise<any[]> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeoutMs ?? 5000);
  const events: any[] = [];
  try {
    const r = await fetch(`${s.url}${path}`, {
      signal: ctl.signal,
      headers: opts.accept !== undefined ? { accept: opts.accept } : {},
    });
    assert.equal(r.status, 200, `watch ${path}`);
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    let buf = "";
    let started = false;
    for (;;) {
      if (!started && opts.during !== undefined) {
        started = true;
        // Give the server a moment to have the watch registered, then change things.
        setTimeout(() => void opts.during!().catch(() => ctl.abort()), 50);
      }
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        events.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
      if (events.length >= want) break;
    }
    await reader.cancel().catch(() => undefined);
  } catch (err) {
    if (!ctl.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return events;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

before(async () => {
  s = await startTestServer();
});
after(async () => {
  await s.close();
});

describe("discovery", () => {
  test("/apis lists projectcalico.org with v3 preferred", async () => {
    const { status, json, headers } = await call("GET", "/apis");
    assert.equal(status, 200);
    assert.equal(headers.get("content-type"), "application/json");
    assert.equal(json.kind, "APIGroupList");
    assert.deepEqual(json.groups, [
      {
        kind: "APIGroup",
        apiVersion: "v1",
        name: "projectcalico.org",
        versions: [{ groupVersion: "projectcalico.org/v3", version: "v3" }],
        preferredVersion: { groupVersion: "projectcalico.org/v3", version: "v3" },
      },
    ]);
    assert.equal((await call("GET", "/apis/projectcalico.org")).json.name, "projectcalico.org");
  });

  test("/api has no core versions; /version names us", async () => {
    const api = await call("GET", "/api");
    assert.equal(api.json.kind, "APIVersions");
    assert.deepEqual(api.json.versions, []);
    const v = await call("GET", "/version");
    assert.equal(v.json.major, "1");
    assert.match(v.json.gitVersion, /calico-ts/);
  });

  test("the v3 resource list has every kind with verbs, short names and categories", async () => {
    const { json } = await call("GET", GV);
    assert.equal(json.kind, "APIResourceList");
    assert.equal(json.groupVersion, "projectcalico.org/v3");
    const gnpRes = json.resources.find((r: any) => r.name === "globalnetworkpolicies");
    assert.deepEqual(gnpRes, {
      name: "globalnetworkpolicies",
      singularName: "globalnetworkpolicy",
      namespaced: false,
      kind: "GlobalNetworkPolicy",
      verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
      shortNames: ["gnp", "gnps"],
      categories: ["calico"],
    });
    const npRes = json.resources.find((r: any) => r.name === "networkpolicies");
    assert.equal(npRes.namespaced, true);
    assert.ok(json.resources.length >= 20);
  });

  test("OpenAPI v3 declares fieldValidation on every kind's PATCH", async () => {
    const root = await call("GET", "/openapi/v3");
    const url: string = root.json.paths["apis/projectcalico.org/v3"].serverRelativeURL;
    assert.match(url, /^\/openapi\/v3\/apis\/projectcalico\.org\/v3\?hash=/);
    const doc = (await call("GET", url)).json;
    const patch = doc.paths["/apis/projectcalico.org/v3/namespaces/{namespace}/networkpolicies/{name}"].patch;
    assert.deepEqual(patch["x-kubernetes-group-version-kind"], {
      group: "projectcalico.org",
      version: "v3",
      kind: "NetworkPolicy",
    });
    assert.ok(patch.parameters.some((p: any) => p.name === "fieldValidation" && p.in === "query"));
    const v2 = await call("GET", "/openapi/v2");
    assert.equal(v2.json.swagger, "2.0");
    assert.deepEqual(v2.json.definitions, {});
    const pb = await fetch(`${s.url}/openapi/v2`, {
      headers: { accept: "application/com.github.proto-openapi.spec.v2@v1.0+protobuf" },
    });
    // client-go cannot parse the requested type ("@") as a Content-Type.
    assert.equal(pb.headers.get("content-type"), "application/octet-stream");
    const bytes = Buffer.from(await pb.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 5)], [0x0a, 3, 0x32, 0x2e, 0x30]); // swagger: "2.0"
  });

  test("paths outside the Kubernetes API are not ours; unknown ones under it are 404 Status", async () => {
    const r = await fetch(`${s.url}/livez`);
    assert.equal(await r.text(), "not mine\n");
    for (const p of ["/apis/apps/v1", `${GV}/pods`, "/api/v1", `${GV}/ippools/a/status`]) {
      const { status, json } = await call("GET", p);
      assert.equal(status, 404, p);
      assert.equal(json.kind, "Status");
      assert.equal(json.reason, "NotFound");
    }
  });
});

describe("create, get, list, replace, patch, delete", () => {
  test("POST creates (201) and GET reads back with resourceVersion, uid, creationTimestamp", async () => {
    const c = await call("POST", `${GV}/ippools`, pool("crud-a", "198.19.0.0/24"));
    assert.equal(c.status, 201);
    assert.equal(c.json.kind, "IPPool");
    assert.match(c.json.metadata.resourceVersion, /^\d+$/);
    assert.ok(c.json.metadata.uid);
    const g = await call("GET", `${GV}/ippools/crud-a`);
    assert.equal(g.status, 200);
    assert.deepEqual(g.json, c.json);
    const again = await call("POST", `${GV}/ippools`, pool("crud-a", "198.19.0.0/24"));
    assert.equal(again.status, 409);
    assert.equal(again.json.reason, "AlreadyExists");
    assert.equal(again.json.message, 'ippools.projectcalico.org "crud-a" already exists');
  });

  test("invalid objects are 422 Invalid with a cause per field", async () => {
    const bad = { ...gnp("crud-bad", 1), spec: { selector: "app ==", bogus: 1 } };
    const r = await call("POST", `${GV}/globalnetworkpolicies`, bad);
    assert.equal(r.status, 422);
    assert.equal(r.json.reason, "Invalid");
    assert.equal(r.json.details.name, "crud-bad");
    assert.equal(r.json.details.kind, "GlobalNetworkPolicy");
    assert.deepEqual(r.json.details.causes.map((c: { field: string }) => c.field).sort(), [
      "spec.bogus",
      "spec.selector",
    ]);
    // Cross-resource rules too: an overlapping pool.
    const overlap = await call("POST", `${GV}/ippools`, pool("crud-overlap", "198.19.0.0/25"));
    assert.equal(overlap.status, 422);
    assert.match(overlap.json.message, /overlaps with IPPool\(crud-a\)/);
  });

  test("a body that disagrees with the URL is 400 BadRequest", async () => {
    const wrongKind = await call("POST", `${GV}/ippools`, gnp("crud-x", 1));
    assert.equal(wrongKind.status, 400);
    assert.match(wrongKind.json.message, /kind "GlobalNetworkPolicy"/);
    const wrongName = await call("PUT", `${GV}/ippools/crud-a`, pool("crud-b", "198.19.0.0/24"));
    assert.equal(wrongName.status, 400);
    assert.match(wrongName.json.message, /does not match the name on the URL/);
    const wrongNs = await call("POST", `${GV}/namespaces/prod/networkpolicies`, np("crud-np", "dev"));
    assert.equal(wrongNs.status, 400);
    assert.match(wrongNs.json.message, /namespace of the provided object \(dev\)/);
    const notJson = await call("POST", `${GV}/ippools`, "{nope");
    assert.equal(notJson.status, 400);
    assert.match(notJson.json.message, /not valid JSON/);
    const wrongType = await call("POST", `${GV}/ippools`, "x", { "content-type": "text/plain" });
    assert.equal(wrongType.status, 415);
  });

  test("namespaced kinds: create in the URL's namespace, list one or all namespaces", async () => {
    const body = np("crud-np", "prod") as any;
    delete body.metadata.namespace;
    const c = await call("POST", `${GV}/namespaces/prod/networkpolicies`, body);
    assert.equal(c.status, 201, JSON.stringify(c.json));
    assert.equal(c.json.metadata.namespace, "prod");
    assert.equal(
      (await call("POST", `${GV}/namespaces/dev/networkpolicies`, np("crud-np", "dev"))).status,
      201,
    );
    const prod = await call("GET", `${GV}/namespaces/prod/networkpolicies`);
    assert.equal(prod.json.kind, "NetworkPolicyList");
    assert.deepEqual(
      prod.json.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`),
      ["prod/crud-np"],
    );
    const all = await call("GET", `${GV}/networkpolicies`);
    assert.deepEqual(
      all.json.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`),
      ["dev/crud-np", "prod/crud-np"],
    );
    assert.equal((await call("GET", `${GV}/namespaces/dev/networkpolicies/crud-np`)).status, 200);
    assert.equal((await call("GET", `${GV}/namespaces/qa/networkpolicies/crud-np`)).status, 404);
  });

  test("lists carry the store revision and honour label and field selectors", async () => {
    await call("POST", `${GV}/ippools`, pool("sel-a", "198.19.1.0/24", { env: "test", team: "a" }));
    await call("POST", `${GV}/ippools`, pool("sel-b", "198.19.2.0/24", { env: "prod" }));
    const names = async (q: string): Promise<string[]> => {
      const items = (await call("GET", `${GV}/ippools?${q}`)).json.items as { metadata: { name: string } }[];
      return items.map((i) => i.metadata.name).sort();
    };
    assert.deepEqual(await names(`labelSelector=${encodeURIComponent("env in (test,prod)")}`), [
      "sel-a",
      "sel-b",
    ]);
    assert.deepEqual(await names("labelSelector=env%3Dtest"), ["sel-a"]);
    assert.deepEqual(await names("labelSelector=env%2Cteam"), ["sel-a"]);
    assert.deepEqual(await names("labelSelector=!env"), ["crud-a"]);
    assert.deepEqual(await names("fieldSelector=metadata.name%3Dsel-b"), ["sel-b"]);
    const list = await call("GET", `${GV}/ippools`);
    assert.equal(list.json.metadata.resourceVersion, String(await s.datastore.revision()));
    const bad = await call("GET", `${GV}/ippools?labelSelector=${encodeURIComponent("a in b")}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.reason, "BadRequest");
  });

  test("GET with kubectl's Accept returns a Table", async () => {
    const t = await call("GET", `${GV}/ippools?labelSelector=env%3Dtest`, undefined, { accept: TABLE });
    assert.equal(t.json.kind, "Table");
    assert.equal(t.json.apiVersion, "meta.k8s.io/v1");
    assert.deepEqual(
      t.json.columnDefinitions
        .filter((c: { priority: number }) => c.priority === 0)
        .map((c: { name: string }) => c.name),
      ["Name", "Cidr", "Selector", "Age"],
    );
    assert.deepEqual(t.json.rows[0].cells.slice(0, 3), ["sel-a", "198.19.1.0/24", "all()"]);
    assert.equal(t.json.rows[0].object.kind, "PartialObjectMetadata");
    assert.equal(t.json.rows[0].object.metadata.labels.env, "test");
    const one = await call("GET", `${GV}/ippools/sel-b`, undefined, { accept: TABLE });
    assert.equal(one.json.rows.length, 1);
  });

  test("PUT replaces with compare-and-swap on resourceVersion", async () => {
    const cur = (await call("POST", `${GV}/globalnetworkpolicies`, gnp("cas", 1))).json;
    const next = { ...cur, spec: { ...cur.spec, order: 2 } };
    const ok = await call("PUT", `${GV}/globalnetworkpolicies/cas`, next);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.spec.order, 2);
    assert.equal(ok.json.metadata.uid, cur.metadata.uid);
    const stale = await call("PUT", `${GV}/globalnetworkpolicies/cas`, {
      ...next,
      spec: { ...next.spec, order: 3 },
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.reason, "Conflict");
    const missing = await call("PUT", `${GV}/globalnetworkpolicies/nope`, gnp("nope", 1));
    assert.equal(missing.status, 404);
  });

  test("PATCH: merge, strategic (as merge) and JSON patch, validated like any write", async () => {
    await call("POST", `${GV}/globalnetworkpolicies`, gnp("pt", 1));
    const merge = await call(
      "PATCH",
      `${GV}/globalnetworkpolicies/pt`,
      { metadata: { labels: { a: "b" } }, spec: { order: 5 } },
      { "content-type": "application/merge-patch+json" },
    );
    assert.equal(merge.status, 200, JSON.stringify(merge.json));
    assert.equal(merge.json.spec.order, 5);
    assert.equal(merge.json.metadata.labels.a, "b");
    const smp = await call(
      "PATCH",
      `${GV}/globalnetworkpolicies/pt`,
      { spec: { order: 6, "$setElementOrder/ingress": [] } },
      { "content-type": "application/strategic-merge-patch+json" },
    );
    assert.equal(smp.status, 200, JSON.stringify(smp.json));
    assert.equal(smp.json.spec.order, 6);
    const jp = await call(
      "PATCH",
      `${GV}/globalnetworkpolicies/pt`,
      [{ op: "replace", path: "/spec/order", value: 7 }],
      { "content-type": "application/json-patch+json" },
    );
    assert.equal(jp.json.spec.order, 7);
    const invalid = await call(
      "PATCH",
      `${GV}/globalnetworkpolicies/pt`,
      { spec: { order: "high" } },
      { "content-type": "application/merge-patch+json" },
    );
    assert.equal(invalid.status, 422);
    const failedTest = await call(
      "PATCH",
      `${GV}/globalnetworkpolicies/pt`,
      [{ op: "test", path: "/spec/order", value: 1 }],
      { "content-type": "application/json-patch+json" },
    );
    assert.equal(failedTest.status, 422);
    const rename = await call(
      "PATCH",
      `${GV}/globalnetworkpolicies/pt`,
      { metadata: { name: "other" } },
      { "content-type": "application/merge-patch+json" },
    );
    assert.equal(rename.status, 400);
    const pinned = await call(
      "PATCH",
      `${GV}/globalnetworkpolicies/pt`,
      { metadata: { resourceVersion: "1" }, spec: { order: 8 } },
      { "content-type": "application/merge-patch+json" },
    );
    assert.equal(pinned.status, 409);
    const ssa = await call("PATCH", `${GV}/globalnetworkpolicies/pt`, "{}", {
      "content-type": "application/apply-patch+yaml",
    });
    assert.equal(ssa.status, 415);
    assert.match(ssa.json.message, /server-side apply is not supported/);
    const missing = await call(
      "PATCH",
      `${GV}/globalnetworkpolicies/none`,
      {},
      {
        "content-type": "application/merge-patch+json",
      },
    );
    assert.equal(missing.status, 404);
  });

  test("DELETE returns the deleted object and honours preconditions", async () => {
    const cur = (await call("POST", `${GV}/globalnetworkpolicies`, gnp("del", 1))).json;
    const wrongRv = await call("DELETE", `${GV}/globalnetworkpolicies/del`, {
      kind: "DeleteOptions",
      apiVersion: "v1",
      preconditions: { resourceVersion: "1" },
    });
    assert.equal(wrongRv.status, 409);
    const wrongUid = await call("DELETE", `${GV}/globalnetworkpolicies/del`, { preconditions: { uid: "x" } });
    assert.equal(wrongUid.status, 409);
    const badRv = await call("DELETE", `${GV}/globalnetworkpolicies/del`, {
      preconditions: { resourceVersion: "abc" },
    });
    assert.equal(badRv.status, 400, "a malformed resourceVersion is the client's mistake, not a 500");
    assert.equal(badRv.json.reason, "BadRequest");
    assert.match(badRv.json.message, /resourceVersion "abc" is not a revision number/);
    const ok = await call("DELETE", `${GV}/globalnetworkpolicies/del`, {
      kind: "DeleteOptions",
      apiVersion: "v1",
      propagationPolicy: "Background",
      preconditions: { uid: cur.metadata.uid, resourceVersion: cur.metadata.resourceVersion },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.metadata.name, "del");
    const gone = await call("DELETE", `${GV}/globalnetworkpolicies/del`);
    assert.equal(gone.status, 404);
    assert.equal(gone.json.message, 'globalnetworkpolicies.projectcalico.org "del" not found');
    const tier = await call("DELETE", `${GV}/tiers/default`);
    assert.equal(tier.status, 422);
  });

  test("unsupported methods are 405, unknown paths 404 whatever the method", async () => {
    assert.equal((await call("DELETE", `${GV}/ippools`)).status, 405);
    assert.equal((await call("POST", `${GV}/ippools/x`, pool("x", "198.19.9.0/24"))).status, 405);
    assert.equal((await call("POST", "/apis", {})).status, 405);
    assert.equal(
      (await call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {})).status,
      404,
    );
  });

  test("dryRun=All validates and answers like the write but stores nothing", async () => {
    const before = await s.datastore.revision();
    const create = await call("POST", `${GV}/ippools?dryRun=All`, pool("dry", "198.19.9.0/24"));
    assert.equal(create.status, 201);
    assert.equal(create.json.metadata.name, "dry");
    assert.equal(create.json.spec.blockSize, 26, "defaults applied");
    const invalid = await call("POST", `${GV}/ippools?dryRun=All`, pool("dry", "nonsense"));
    assert.equal(invalid.status, 422);
    const exists = await call("POST", `${GV}/ippools?dryRun=All`, pool("crud-a", "198.19.0.0/24"));
    assert.equal(exists.status, 409);
    const patch = await call(
      "PATCH",
      `${GV}/ippools/crud-a?dryRun=All`,
      { spec: { disabled: true } },
      { "content-type": "application/merge-patch+json" },
    );
    assert.equal(patch.status, 200);
    assert.equal(patch.json.spec.disabled, true);
    const cur = (await call("GET", `${GV}/ippools/crud-a`)).json;
    const put = await call("PUT", `${GV}/ippools/crud-a?dryRun=All`, {
      ...cur,
      metadata: { ...cur.metadata, resourceVersion: "1" },
    });
    assert.equal(put.status, 409);
    const del = await call("DELETE", `${GV}/ippools/crud-a`, { kind: "DeleteOptions", dryRun: ["All"] });
    assert.equal(del.status, 200);
    assert.equal((await call("GET", `${GV}/ippools/dry`)).status, 404);
    assert.equal((await call("GET", `${GV}/ippools/crud-a`)).json.spec.disabled, cur.spec.disabled);
    assert.equal(await s.datastore.revision(), before);
    assert.equal((await call("POST", `${GV}/ippools?dryRun=Some`, pool("dry", "198.19.9.0/24"))).status, 400);
  });

  test("malformed requests get a 4xx Status, never a 5xx", async () => {
    await call("POST", `${GV}/globalnetworkpolicies`, gnp("mal", 1));
    const MERGE = { "content-type": "application/merge-patch+json" };
    const JSONP = { "content-type": "application/json-patch+json" };
    const cases: [string, string, unknown, Record<string, string>?][] = [
      ["POST", `${GV}/ippools`, "[1,2]"],
      ["POST", `${GV}/ippools`, "null"],
      ["POST", `${GV}/ippools`, { kind: "IPPool", metadata: "x" }],
      ["POST", `${GV}/ippools`, { kind: "IPPool", apiVersion: "v1", metadata: { name: "a" } }],
      ["POST", `${GV}/ippools`, { kind: "IPPool", metadata: { name: 7 }, spec: { cidr: "198.19.3.0/24" } }],
      ["POST", `${GV}/ippools`, ""],
      [
        "PUT",
        `${GV}/globalnetworkpolicies/mal`,
        { ...gnp("mal", 1), metadata: { name: "mal", resourceVersion: 5 } },
      ],
      [
        "PUT",
        `${GV}/globalnetworkpolicies/mal`,
        { ...gnp("mal", 1), metadata: { name: "mal", resourceVersion: "x" } },
      ],
      ["PATCH", `${GV}/globalnetworkpolicies/mal`, "{not json", MERGE],
      ["PATCH", `${GV}/globalnetworkpolicies/mal`, '"a string"', MERGE],
      ["PATCH", `${GV}/globalnetworkpolicies/mal`, "", MERGE],
      ["PATCH", `${GV}/globalnetworkpolicies/mal`, { op: "add" }, JSONP],
      ["PATCH", `${GV}/globalnetworkpolicies/mal`, [{ op: "replace", path: "", value: 1 }], JSONP],
      ["PATCH", `${GV}/globalnetworkpolicies/mal`, { kind: "IPPool" }, MERGE],
      ["PATCH", `${GV}/globalnetworkpolicies/mal`, {}, {}],
      ["DELETE", `${GV}/globalnetworkpolicies/mal`, "{bad"],
      ["GET", `${GV}/globalnetworkpolicies?fieldSelector=spec.order%3D1`, undefined],
      ["GET", `${GV}/globalnetworkpolicies/%E0%A4%A`, undefined],
      ["GET", `${GV}/globalnetworkpolicies?watch=true&resourceVersion=-3`, undefined],
    ];
    for (const [method, path, body, headers] of cases) {
      const r = await call(method, path, body, headers);
      const what = `${method} ${path} ${JSON.stringify(body)} -> ${r.status} ${JSON.stringify(r.json)}`;
      assert.ok(r.status >= 400 && r.status < 500, what);
      assert.equal(r.json.kind, "Status", what);
    }
    assert.equal((await call("GET", `${GV}/globalnetworkpolicies/mal`)).json.spec.order, 1);
  });

  test("bodies over the size limit are 413", async () => {
    const big = JSON.stringify({ ...pool("big", "198.19.9.0/24"), pad: "x".repeat(4 * 1024 * 1024) });
    const r = await call("POST", `${GV}/ippools`, big);
    assert.equal(r.status, 413);
  });
});

describe("read-only tokens", () => {
  let ro: TestServer;
  before(async () => {
    ro = await startTestServer(READER);
    await ro.store.create(pool("ro-a", "198.19.0.0/24"));
  });
  after(async () => {
    await ro.close();
  });

  test("may read but every write is 403 Forbidden and changes nothing", async () => {
    const get = await fetch(`${ro.url}${GV}/ippools/ro-a`);
    assert.equal(get.status, 200);
    const writes: [string, string, unknown][] = [
      ["POST", `${GV}/ippools`, pool("ro-b", "198.19.1.0/24")],
      ["PUT", `${GV}/ippools/ro-a`, pool("ro-a", "198.19.0.0/24")],
      ["PATCH", `${GV}/ippools/ro-a`, { spec: { disabled: true } }],
      ["DELETE", `${GV}/ippools/ro-a`, undefined],
    ];
    for (const [method, path, body] of writes) {
      const r = await fetch(`${ro.url}${path}`, {
        method,
        headers: { "content-type": method === "PATCH" ? "application/merge-patch+json" : "application/json" },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const json: any = await r.json();
      assert.equal(r.status, 403, method);
      assert.equal(json.reason, "Forbidden");
      assert.match(json.message, /User "viewer" cannot/);
    }
    assert.equal((await ro.store.list("IPPool")).items.length, 1);
    assert.notEqual((await ro.store.get("IPPool", "ro-a")).spec.disabled, true);
  });
});

describe("watch", () => {
  test("without resourceVersion: ADDED for the current list, then changes", async () => {
    await s.store.create(gnp("w-1", 1));
    const events = await watchEvents(`${GV}/globalnetworkpolicies?watch=true&labelSelector=`, 100, {
      timeoutMs: 1500,
      during: async () => {
        await s.store.create(gnp("w-2", 2));
        await s.store.update("GlobalNetworkPolicy", "w-2", undefined, (r) => ({
          ...r,
          spec: { ...r.spec, order: 3 },
        }));
        await s.store.delete({ kind: "GlobalNetworkPolicy", name: "w-2" });
      },
    });
    const seen = events.map((e) => `${e.type} ${e.object.metadata.name}`);
    assert.ok(seen.includes("ADDED w-1"), seen.join(","));
    assert.deepEqual(seen.slice(-3), ["ADDED w-2", "MODIFIED w-2", "DELETED w-2"]);
    const revs = events.slice(-3).map((e) => Number(e.object.metadata.resourceVersion));
    assert.ok(revs[0]! < revs[1]! && revs[1]! < revs[2]!, `revisions increase: ${revs.join(",")}`);
  });

  test("from a resourceVersion: every change after it, nothing before", async () => {
    const created = await s.store.create(gnp("w-rv", 1));
    const rv = created.metadata.resourceVersion!;
    await s.store.update("GlobalNetworkPolicy", "w-rv", undefined, (r) => ({
      ...r,
      spec: { ...r.spec, order: 9 },
    }));
    const events = await watchEvents(
      `${GV}/globalnetworkpolicies?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3Dw-rv`,
      1,
    );
    assert.equal(events.length, 1);
    assert.equal(events[0].type, "MODIFIED");
    assert.equal(events[0].object.spec.order, 9);
    assert.equal(events[0].object.metadata.resourceVersion, String(Number(rv) + 1));
  });

  test("label selectors turn objects leaving the selection into DELETED, entering into ADDED", async () => {
    const created = await s.store.create({
      ...gnp("w-sel", 1),
      metadata: { name: "w-sel", labels: { w: "yes" } },
    });
    const relabel = (v: string) =>
      s.store.update("GlobalNetworkPolicy", "w-sel", undefined, (r) => ({
        ...r,
        metadata: { ...r.metadata, labels: { ...r.metadata.labels, w: v } },
      }));
    const events = await watchEvents(
      `${GV}/globalnetworkpolicies?watch=true&resourceVersion=${created.metadata.resourceVersion!}&labelSelector=w%3Dyes`,
      3,
      {
        during: async () => {
          await relabel("yes2"); // still "yes"? no: leaves
          await relabel("no");
          await relabel("yes"); // enters
          await relabel("yes"); // stays (no-op write still a change)
        },
      },
    );
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.object.metadata.labels.w}`),
      ["DELETED yes2", "ADDED yes", "MODIFIED yes"],
    );
  });

  test("legacy /watch/ paths and single-object watches", async () => {
    await s.store.create(gnp("w-legacy", 1));
    const events = await watchEvents(`${GV}/watch/globalnetworkpolicies/w-legacy`, 1);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.object.metadata.name}`),
      ["ADDED w-legacy"],
    );
  });

  test("Table watches send one-row Tables", async () => {
    const events = await watchEvents(
      `${GV}/globalnetworkpolicies?watch=true&fieldSelector=metadata.name%3Dw-legacy`,
      1,
      { accept: TABLE },
    );
    assert.equal(events[0].type, "ADDED");
    assert.equal(events[0].object.kind, "Table");
    assert.equal(events[0].object.rows.length, 1);
    assert.equal(events[0].object.rows[0].cells[0], "w-legacy");
  });

  test("a compacted resourceVersion ends the stream with a 410 Expired ERROR event", async () => {
    await s.store.create(gnp("w-compact", 1));
    const rev = await s.datastore.revision();
    await s.datastore.compact(rev);
    const events = await watchEvents(`${GV}/globalnetworkpolicies?watch=true&resourceVersion=1`, 5);
    assert.equal(events.length, 1);
    assert.equal(events[0].type, "ERROR");
    assert.equal(events[0].object.kind, "Status");
    assert.equal(events[0].object.code, 410);
    assert.equal(events[0].object.reason, "Expired");
  });

  test("timeoutSeconds ends the stream", async () => {
    const rev = await s.datastore.revision();
    const started = Date.now();
    const r = await fetch(`${s.url}${GV}/ippools?watch=true&resourceVersion=${rev}&timeoutSeconds=1`, {
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(await r.text(), "");
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 4000, `ended after ${took} ms`);
  });

  test("bad watch parameters are 400", async () => {
    for (const q of ["resourceVersion=abc", "timeoutSeconds=-1", "labelSelector=%3D%3D"]) {
      const r = await call("GET", `${GV}/ippools?watch=true&${q}`);
      assert.equal(r.status, 400, q);
    }
    assert.equal((await call("POST", `${GV}/ippools?watch=true`, {})).status, 405);
  });

  test("a client that goes away releases its datastore watch", async () => {
    const before = s.openWatches();
    const ctl = new AbortController();
    const r = await fetch(
      `${s.url}${GV}/ippools?watch=true&resourceVersion=${await s.datastore.revision()}`,
      {
        signal: ctl.signal,
      },
    );
    assert.equal(r.status, 200);
    await waitFor("the watch to open", () => s.openWatches() === before + 1);
    ctl.abort();
    await waitFor("the watch to close", () => s.openWatches() === before);
  });

  test("a client that stops reading is cut off once the buffer bound is passed", async () => {
    const small = await startTestServer(undefined, { maxWatchBuffer: 64 * 1024 });
    try {
      const body = { ...gnp("big", 1), metadata: { name: "big", annotations: { pad: "x".repeat(100_000) } } };
      // A raw socket that never reads: the server's socket buffer and then its queue fill up.
      const { connect } = await import("node:net");
      const url = new URL(small.url);
      const sock = connect(Number(url.port), url.hostname);
      sock.pause();
      sock.write(`GET ${GV}/globalnetworkpolicies?watch=true&resourceVersion=0 HTTP/1.1\r\nHost: x\r\n\r\n`);
      await waitFor("the watch to open", () => small.openWatches() === 1);
      // Up to 20 MB of events: more than loopback socket buffers take, so the queue must grow.
      for (let i = 0; i < 200 && small.openWatches() === 1; i++) {
        await small.store.create({ ...body, metadata: { ...body.metadata, name: `big-${i}` } });
        await new Promise((res) => setTimeout(res, 10));
      }
      await waitFor("the slow watcher to be cut off", () => small.openWatches() === 0);
      sock.destroy();
    } finally {
      await small.close();
    }
  });
});
