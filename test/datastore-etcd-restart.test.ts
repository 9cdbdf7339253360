/**
 * Fault test (issue 3): etcd is killed (SIGKILL) and restarted on the same data dir twice while
 * watches are open and a writer keeps writing through the outages. Every watcher must end with
 * exactly the datastore's final state, and its event stream must be gap- and duplicate-free:
 * revisions strictly increasing, and each counter's values going up by exactly 1 per event.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { openEtcdDatastore, type EtcdDatastore } from "../src/datastore/etcd.js";
import { EtcdServer, etcdSkipReason } from "../src/datastore/testing/etcd-server.js";
import {
  isAlreadyExists,
  isConflict,
  isNotFound,
  isUnavailable,
  type WatchEvent,
} from "../src/datastore/types.js";

const skip = etcdSkipReason();
const servers: EtcdServer[] = [];
const stores: EtcdDatastore[] = [];

after(async () => {
  for (const s of stores) await s.close();
  for (const s of servers) await s.remove();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const revOf = (e: WatchEvent): number => (e.type === "put" ? e.kv.modRevision : e.revision);
const keyOf = (e: WatchEvent): string => (e.type === "put" ? e.kv.key : e.key);

/** A watcher that applies events to its own copy of the data and checks the stream as it goes. */
class Mirror {
  readonly state = new Map<string, { value: string; modRevision: number }>();
  lastRev: number;
  events = 0;
  readonly problems: string[] = [];
  readonly errors: Error[] = [];

  constructor(
    readonly name: string,
    store: EtcdDatastore,
    prefix: string,
    from: number,
  ) {
    this.lastRev = from;
    store.watch(prefix, from, {
      onEvents: (es) => {
        for (const e of es) this.apply(e);
      },
      onError: (err) => this.errors.push(err),
    });
  }

  private apply(e: WatchEvent): void {
    this.events++;
    const rev = revOf(e);
    if (rev <= this.lastRev)
      this.problems.push(`${this.name}: revision ${rev} after ${this.lastRev} (duplicate)`);
    this.lastRev = rev;
    const key = keyOf(e);
    const before = this.state.get(key);
    if (e.type === "put") {
      const n = Number(e.kv.value);
      const expected = before === undefined ? 1 : Number(before.value) + 1;
      if (n !== expected)
        this.problems.push(`${this.name}: ${key}=${n}, expected ${expected} (lost or repeated)`);
      this.state.set(key, { value: e.kv.value, modRevision: rev });
    } else {
      if (before === undefined) this.problems.push(`${this.name}: delete of ${key} it never saw`);
      this.state.delete(key);
    }
  }
}

/** Retry `fn` while etcd is down (UNAVAILABLE), up to the deadline. */
async function retrying<T>(fn: () => Promise<T>, deadline: number, outages: { n: number }): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!isUnavailable(err) || Date.now() > deadline || i > 2000) throw err;
      outages.n++;
      await sleep(20);
    }
  }
}

for (const [mode, opts] of [
  ["plain", {}],
  ["TLS client certificates and user/password auth", { tls: true, auth: true }],
] as const) {
  test(
    `etcd (${mode}) killed and restarted twice under open watches and writes: every watcher ends with the final state`,
    { skip, timeout: 120_000 },
    async (t) => {
      const srv = await EtcdServer.start(opts);
      servers.push(srv);
      await scenario(srv, t);
    },
  );
}

async function scenario(srv: EtcdServer, t: { diagnostic: (m: string) => void }): Promise<void> {
  const open = () => {
    const s = openEtcdDatastore(srv.url(), { env: {} });
    stores.push(s);
    return s;
  };
  const writer = open();
  const p = `/calico/restart/${process.pid}/`;
  const r0 = await writer.revision();
  const a = open();
  const b = open();
  // Two watches on one client, one on another, one started from the past after some writes.
  const mirrors = [new Mirror("a1", a, p, r0), new Mirror("a2", a, p, r0), new Mirror("b", b, p, r0)];

  const keys = Array.from({ length: 8 }, (_, i) => `${p}k${i}`);
  const deadline = Date.now() + 90_000;
  const outages = { n: 0 };
  let writes = 0;
  /** CAS-increment a counter (create at 1), tolerating outages and ambiguous outcomes. */
  const bump = async (key: string) => {
    for (let i = 0; i < 1000; i++) {
      const cur = await retrying(() => writer.get(key), deadline, outages);
      try {
        if (cur === undefined) await retrying(() => writer.create(key, "1"), deadline, outages);
        else
          await retrying(
            () => writer.update(key, String(Number(cur.value) + 1), cur.modRevision),
            deadline,
            outages,
          );
        writes++;
        return;
      } catch (err) {
        if (!isConflict(err) && !isAlreadyExists(err)) throw err;
      }
    }
    throw new Error(`could not bump ${key}`);
  };
  const burst = async (n: number) => {
    for (let i = 0; i < n; i++) await bump(keys[i % keys.length]!);
  };

  await burst(40);
  mirrors.push(new Mirror("late", b, p, r0)); // replays the first 40 from history
  let stop = false;
  const background = (async () => {
    for (let i = 0; !stop && i < 10_000 && Date.now() < deadline; i++) await bump(keys[i % keys.length]!);
  })();
  try {
    for (let cycle = 0; cycle < 2; cycle++) {
      await sleep(300);
      await srv.kill(); // a crash, mid-write
      await assert.rejects(writer.get(keys[0]!), (e: unknown) => isUnavailable(e));
      await sleep(700);
      await srv.launch(); // same data dir and ports
      await burst(30);
    }
  } finally {
    stop = true;
    await background;
  }
  // A delete and a re-create after the restarts must reach everyone as well.
  await retrying(() => writer.delete(keys[0]!), deadline, outages).catch((e: unknown) => {
    if (!isNotFound(e)) throw e;
  });
  await bump(keys[1]!);

  const final = await writer.list(p);
  const want = new Map(final.items.map((kv) => [kv.key, { value: kv.value, modRevision: kv.modRevision }]));
  const until = Date.now() + 20_000;
  const caughtUp = () =>
    mirrors.every((m) => m.lastRev >= final.items.reduce((x, kv) => Math.max(x, kv.modRevision), 0));
  while (!caughtUp() && Date.now() < until && mirrors.every((m) => m.errors.length === 0)) await sleep(20);
  for (const m of mirrors) {
    assert.deepEqual(m.errors, [], `${m.name} watch failed`);
    assert.deepEqual(m.problems, [], `${m.name} stream problems`);
    assert.deepEqual(
      [...m.state.entries()].sort(),
      [...want.entries()].sort(),
      `${m.name} ends with the final state`,
    );
  }
  assert.ok(outages.n > 0, "the writer saw the outages");
  assert.ok(writes >= 100, `only ${writes} writes`);
  const total = [...want.values()].reduce((x, v) => x + Number(v.value), 0);
  t.diagnostic(`${writes} writes, ${outages.n} retried calls during outages, counters sum ${total}`);
}
