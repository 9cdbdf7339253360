/**
 * ConntrackCleaner on a real kernel, in a scratch netns: flows are inserted with `conntrack -I`
 * (as a workload's traffic would leave them), and only those of addresses that left the local
 * workload set are deleted — where the address is the original source, the original
 * destination or (after NAT) the reply source; other flows stay. A missing binary is reported,
 * not thrown.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConntrackCleaner } from "./conntrack.js";
import { run, runOk } from "./netns.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (netns); runs in CI" : false;

describe("ConntrackCleaner", { skip }, () => {
  const ns = `ctsct${process.pid}`;
  before(async () => {
    await runOk("ip", ["netns", "add", ns]);
  });
  after(async () => {
    await run("ip", ["netns", "delete", ns]);
  });

  const insert = (_f: 4 | 6, src: string, dst: string, sport: number, extra: string[] = []) =>
    runOk(
      "conntrack",
      [
        "-I",
        "-s",
        src,
        "-d",
        dst,
        "-p",
        "tcp",
        "--sport",
        String(sport),
        "--dport",
        "80",
        "--state",
        "ESTABLISHED",
        "-t",
        "600",
        "-u",
        "SEEN_REPLY",
        ...extra,
      ],
      { netns: ns },
    );
  /** Every flow as "src>dst" of its original direction. */
  const flows = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const f of ["ipv4", "ipv6"]) {
      const r = await run("conntrack", ["-L", "-f", f], { netns: ns });
      for (const line of r.stdout.split("\n")) {
        const m = /src=(\S+) dst=(\S+)/.exec(line);
        if (m !== null) out.push(`${m[1]}>${m[2]}`);
      }
    }
    return out.sort();
  };

  it("deletes the flows of addresses that left the local workloads, and only those", async () => {
    await insert(4, "198.19.0.5", "198.19.0.9", 1000); // from the workload that goes
    await insert(4, "198.19.0.7", "198.19.0.5", 1001); // to it
    // to a NATed address whose reply comes from it
    await insert(4, "198.19.0.7", "198.19.9.9", 1002, [
      "-r",
      "198.19.0.5",
      "-q",
      "198.19.0.7",
      "--reply-port-src",
      "80",
      "--reply-port-dst",
      "1002",
    ]);
    await insert(4, "198.19.0.6", "198.19.0.9", 1003); // another workload's
    await insert(6, "fd00:19::5", "fd00:19::9", 1004);
    await insert(6, "fd00:19::6", "fd00:19::9", 1005);
    assert.equal((await flows()).length, 6);

    const c = new ConntrackCleaner({ netns: ns });
    // The first call only learns the addresses.
    assert.deepEqual(await c.apply(new Set(["198.19.0.5", "198.19.0.6", "fd00:19::5", "fd00:19::6"])), {
      removed: [],
      errors: [],
    });
    assert.equal((await flows()).length, 6);
    assert.deepEqual(await c.apply(new Set(["198.19.0.6", "fd00:19::6"])), {
      removed: ["198.19.0.5", "fd00:19::5"],
      errors: [],
    });
    assert.deepEqual(await flows(), ["198.19.0.6>198.19.0.9", "fd00:19::6>fd00:19::9"]);
    // Nothing left to delete for an address that goes again: not an error.
    const again = new ConntrackCleaner({ netns: ns });
    await again.apply(new Set(["198.19.0.5"]));
    assert.deepEqual(await again.apply(new Set()), { removed: ["198.19.0.5"], errors: [] });
  });

  it("reports what it cannot do (no conntrack binary) and does not throw", async () => {
    const c = new ConntrackCleaner({
      netns: ns,
      run: () => Promise.reject(new Error("spawn conntrack ENOENT")),
    });
    await c.apply(new Set(["198.19.0.8"]));
    const r = await c.apply(new Set());
    assert.deepEqual(r.removed, []);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!, /Cannot delete the flows of 198\.19\.0\.8 .*ENOENT/);
  });
});
