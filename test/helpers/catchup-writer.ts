/**
 * A writer process for test/agent-catchup.test.ts: `count` rapid writes (create / update /
 * delete over a small key set in both agent prefixes) to a sqlite file, with random pauses,
 * bounded in time. Prints `{"revision": N}` — the revision of its last write — on stdout.
 *
 * argv[2]: JSON { path, count, keys, seed, retainRevisions?, deadlineMs, tail?: "create-delete" }
 */
import { SqliteDatastore } from "../../src/datastore/sqlite.js";
import { IPAM_ASSIGNMENT_PREFIX } from "../../src/agent/syncer.js";

interface Args {
  path: string;
  count: number;
  keys: number;
  seed: number;
  retainRevisions?: number;
  deadlineMs: number;
  /** End with a create and a delete of a fresh key (a net no-op a re-list cannot see). */
  tail?: "create-delete";
}

const args = JSON.parse(process.argv[2]!) as Args;
let s = args.seed >>> 0 || 1;
const rnd = (): number => {
  // xorshift32: reproducible from the seed the test prints
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  s >>>= 0;
  return s / 2 ** 32;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const catchupKey = (i: number): string =>
  i % 3 === 2
    ? `${IPAM_ASSIGNMENT_PREFIX}10.${i}.0.0-26`
    : `/calico/resources/v3/projectcalico.org/workloadendpoints/ns/ep-${i}`;

async function main(): Promise<void> {
  const ds = new SqliteDatastore(args.path, {
    ...(args.retainRevisions !== undefined ? { retainRevisions: args.retainRevisions } : {}),
  });
  const end = Date.now() + args.deadlineMs;
  const present = new Map<string, number>();
  for (const kv of (await ds.list("/calico/")).items) present.set(kv.key, kv.modRevision);
  let rev = 0;
  for (let n = 0; n < args.count && Date.now() < end; n++) {
    const key = catchupKey(Math.floor(rnd() * args.keys));
    const value = JSON.stringify({ n, seed: args.seed });
    const mod = present.get(key);
    if (mod === undefined) {
      rev = (await ds.create(key, value)).modRevision;
      present.set(key, rev);
    } else if (rnd() < 0.2) {
      await ds.delete(key, mod);
      rev = await ds.revision();
      present.delete(key);
    } else {
      rev = (await ds.update(key, value, mod)).modRevision;
      present.set(key, rev);
    }
    // Pauses: mostly back-to-back (several commits between two polls), sometimes around
    // the poll interval, now and then long enough for the watcher to go idle.
    const p = rnd();
    if (p < 0.05) await sleep(Math.floor(rnd() * 30));
    else if (p < 0.25) await sleep(Math.floor(rnd() * 6));
  }
  if (args.tail === "create-delete") {
    const key = `/calico/resources/v3/projectcalico.org/workloadendpoints/ns/tail-${args.seed}`;
    const kv = await ds.create(key, "{}");
    await ds.delete(key, kv.modRevision);
    rev = await ds.revision();
  }
  await ds.close();
  process.stdout.write(`${JSON.stringify({ revision: rev })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
