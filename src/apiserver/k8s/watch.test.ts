import { test } from "node:test";
import assert from "node:assert/strict";
import { resourceFromKV, WatchTranslator } from "./watch.js";
import { objectFilter } from "./selectors.js";
import { findKind } from "../../api/registry.js";
import type { KV, WatchEvent } from "../../datastore/types.js";

const kind = findKind("GlobalNetworkPolicy")!;
const key = (name: string) => `/calico/resources/v3/projectcalico.org/globalnetworkpolicies/${name}`;

function kv(name: string, rev: number, created: number, labels: Record<string, string> = {}): KV {
  return {
    key: key(name),
    value: JSON.stringify({
      apiVersion: "projectcalico.org/v3",
      kind: "GlobalNetworkPolicy",
      metadata: { name, labels, uid: "u" },
      spec: { order: rev },
    }),
    createRevision: created,
    modRevision: rev,
  };
}

const put = (k: KV, prev?: KV): WatchEvent =>
  prev !== undefined ? { type: "put", kv: k, prev } : { type: "put", kv: k };
const del = (name: string, revision: number, prev?: KV): WatchEvent =>
  prev !== undefined
    ? { type: "delete", key: key(name), revision, prev }
    : { type: "delete", key: key(name), revision };

const run = (t: WatchTranslator, events: WatchEvent[]) =>
  events.map((e) => {
    const out = t.translate(e);
    return out === undefined
      ? "-"
      : `${out.type} ${out.object.metadata.name}@${out.object.metadata.resourceVersion}`;
  });

test("objects carry the event's revision; deletes the previous object at the delete's revision", () => {
  const r = resourceFromKV(kind, kv("a", 5, 3));
  assert.equal(r.metadata.resourceVersion, "5");
  assert.equal(r.kind, "GlobalNetworkPolicy");
  const t = new WatchTranslator(kind, objectFilter(null, null));
  const out = t.translate(del("a", 9, kv("a", 5, 3)));
  assert.equal(out?.type, "DELETED");
  assert.equal(out?.object.metadata.resourceVersion, "9");
  assert.equal(out?.object.metadata.uid, "u");
  // Without the previous value, the name comes from the key.
  assert.equal(t.translate(del("b", 10))?.object.metadata.name, "b");
});

test("without selectors: created is ADDED, later writes MODIFIED, with or without prev", () => {
  const t = new WatchTranslator(kind, objectFilter(null, null));
  assert.deepEqual(
    run(t, [put(kv("a", 1, 1)), put(kv("a", 2, 1), kv("a", 1, 1)), put(kv("b", 3, 2)), del("a", 4)]),
    [
      "ADDED a@1",
      "MODIFIED a@2",
      "MODIFIED b@3", // created before the watch started: the client already has it
      "DELETED a@4",
    ],
  );
});

test("with a label selector: entering is ADDED, leaving is DELETED, unseen objects stay unseen", () => {
  const t = new WatchTranslator(kind, objectFilter("app=web", null));
  const web = (rev: number) => kv("a", rev, 1, { app: "web" });
  const db = (rev: number) => kv("a", rev, 1, { app: "db" });
  assert.deepEqual(
    run(t, [
      put(db(2), db(1)), // never matched: nothing
      put(web(3), db(2)), // enters
      put(web(4), web(3)), // stays
      put(db(5), web(4)), // leaves
      put(db(6)), // no prev, not present: nothing
      del("a", 7, db(6)), // was not visible: nothing
      put(web(8)), // no prev: enters
      del("a", 9), // was present: DELETED
    ]),
    ["-", "ADDED a@3", "MODIFIED a@4", "DELETED a@5", "-", "-", "ADDED a@8", "DELETED a@9"],
  );
});

test("seeded keys (the initial listing) count as present", () => {
  const t = new WatchTranslator(kind, objectFilter("app=web", null));
  t.seed(key("a"));
  assert.deepEqual(run(t, [put(kv("a", 5, 1, { app: "web" }))]), ["MODIFIED a@5"]);
});
