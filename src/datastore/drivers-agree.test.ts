/**
 * Model check: random sequences of operations run against the memory driver (the reference
 * semantics) and the sqlite driver side by side must give the same results, the same error
 * codes, and the same watch streams.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { MemoryDatastore } from "./memory.js";
import { SqliteDatastore } from "./sqlite.js";
import type { Datastore, WatchEvent } from "./types.js";

const dir = mkdtempSync(join(tmpdir(), `calico-ts-agree-test-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

const KEYS = ["/a", "/a/", "/a/x", "/a/x/y", "/a2", "/b/ü", "/b/\u{10000}", "/b/\uE000"];
const PREFIXES = ["", "/", "/a", "/a/", "/a/x", "/b/", "/c"];

type Op =
  | { op: "create"; key: string; value: string }
  | { op: "update"; key: string; value: string; rev: "none" | "current" | "stale" }
  | { op: "delete"; key: string; rev: "none" | "current" | "stale" }
  | { op: "get"; key: string }
  | { op: "list"; prefix: string }
  | { op: "compact"; back: number };

const key = fc.constantFrom(...KEYS);
const value = fc.string({ maxLength: 8 });
const rev = fc.constantFrom("none" as const, "current" as const, "stale" as const);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("create" as const), key, value }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("update" as const), key, value, rev }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key, rev }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("get" as const), key }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("list" as const), prefix: fc.constantFrom(...PREFIXES) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("compact" as const), back: fc.integer({ min: 0, max: 5 }) }),
  },
);

/** Run one op; the outcome as comparable data (a result or an error code). */
async function apply(s: Datastore, o: Op): Promise<unknown> {
  try {
    switch (o.op) {
      case "create":
        return await s.create(o.key, o.value);
      case "update":
      case "delete": {
        const cur = await s.get(o.key);
        const expected =
          o.rev === "none"
            ? undefined
            : o.rev === "current"
              ? (cur?.modRevision ?? 1)
              : (cur?.modRevision ?? 2) - 1;
        return o.op === "update" ? await s.update(o.key, o.value, expected) : await s.delete(o.key, expected);
      }
      case "get":
        return (await s.get(o.key)) ?? null;
      case "list":
        return await s.list(o.prefix);
      case "compact":
        await s.compact(Math.max(0, (await s.revision()) - o.back));
        return "compacted";
    }
  } catch (err) {
    return { error: (err as { code?: string }).code ?? String(err) };
  }
}

let n = 0;

test(
  "memory and sqlite agree on random operation sequences, watch streams included",
  { timeout: 120_000 },
  async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const mem = new MemoryDatastore();
        const sql = new SqliteDatastore(join(dir, `agree-${n++}.db`));
        const streams: WatchEvent[][] = [[], [], [], []];
        const errors: string[] = [];
        const watches = [
          mem.watch("/a/", 0, {
            onEvents: (e) => streams[0]!.push(...e),
            onError: (e) => errors.push(e.message),
          }),
          sql.watch("/a/", 0, {
            onEvents: (e) => streams[1]!.push(...e),
            onError: (e) => errors.push(e.message),
          }),
          mem.watch("", 0, {
            onEvents: (e) => streams[2]!.push(...e),
            onError: (e) => errors.push(e.message),
          }),
          sql.watch("", 0, {
            onEvents: (e) => streams[3]!.push(...e),
            onError: (e) => errors.push(e.message),
          }),
        ];
        try {
          for (const o of ops) {
            const [a, b] = [await apply(mem, o), await apply(sql, o)];
            assert.deepEqual(b, a, `sqlite disagrees with memory on ${JSON.stringify(o)}`);
          }
          const head = await mem.revision();
          assert.equal(await sql.revision(), head);
          const deadline = Date.now() + 5000;
          const count = (evs: WatchEvent[]) => evs.length;
          while (Date.now() < deadline && count(streams[3]!) < count(streams[2]!)) {
            await new Promise((r) => setTimeout(r, 2));
          }
          await new Promise((r) => setTimeout(r, 5));
          assert.deepEqual(errors, []);
          assert.equal(streams[2]!.length, head, "one event per revision");
          assert.deepEqual(streams[1], streams[0]);
          assert.deepEqual(streams[3], streams[2]);
        } finally {
          for (const w of watches) w.close();
          await mem.close();
          await sql.close();
        }
      }),
      { numRuns: 60 },
    );
  },
);
