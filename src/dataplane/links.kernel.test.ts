/**
 * SysctlLinkManager on a real kernel, both ways (/proc/sys opened inside the namespace, and the
 * `sysctl` fallback): two scratch namespaces hold interfaces of the SAME names; configuring one
 * sets every sysctl there and nothing in the other, nor in this process's namespace, and leaves
 * this thread in its own namespace. Only values that differ are written; missing keys are
 * skipped; a re-created interface is configured again on a full apply.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { SysctlLinkManager, globalSysctls, interfaceSysctls, writeSysctls } from "./links.js";
import { run, runOk } from "./netns.js";
import { loadLibc } from "./nft/netlink-elements.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (netns); runs in CI" : false;
const A = `ctsln-${process.pid}-a`;
const B = `ctsln-${process.pid}-b`;
const IFACES = ["calil1", "calil2"];

/** key → value of `keys` (slash form) read with `sysctl` inside `ns`. */
async function values(ns: string, keys: string[]): Promise<Map<string, string>> {
  const out = await runOk("sysctl", ["-n", ...keys], { netns: ns });
  const lines = out.trim().split("\n");
  return new Map(keys.map((k, i) => [k, lines[i]!]));
}

const keysOf = (writes: string[]) => writes.map((w) => w.slice(0, w.indexOf("=")));
const allWrites = () => [...globalSysctls(true), ...IFACES.flatMap((i) => interfaceSysctls(i, true))];

/** The opposite of what we write: a fresh interface's values (proxy_delay 80, DAD and RA on). */
const kernelDefault = (w: string) =>
  w
    .replace(/=1$/, "=0")
    .replace(/(accept_ra|accept_dad)=0$/, "$1=1")
    .replace(/proxy_delay=0$/, "proxy_delay=80");

/** This process's own values of the global keys (must never change). */
const rootGlobals = () =>
  globalSysctls(true).map((w) => readFileSync(`/proc/sys/${w.split("=")[0]!}`, "utf8"));

describe("SysctlLinkManager on a real kernel", { skip }, () => {
  before(async () => {
    for (const ns of [A, B]) {
      await runOk("ip", ["netns", "add", ns]);
      await runOk("ip", ["-n", ns, "-batch", "-"], {
        input: IFACES.map((i, n) => `link add ${i} type veth peer name peer${n}\nlink set ${i} up\n`).join(
          "",
        ),
      });
    }
  });
  after(async () => {
    for (const ns of [A, B]) await run("ip", ["netns", "del", ns]);
  });

  for (const via of ["netlink", "sysctl"] as const) {
    it(`via ${via}: sets every sysctl in the target namespace only`, async () => {
      const thread = readlinkSync("/proc/thread-self/ns/net");
      const root = rootGlobals();
      const untouchedB = await values(B, keysOf(allWrites()));
      // Start from the kernel's defaults in A (the other case may have configured it).
      await runOk("sysctl", ["-q", "-w", ...allWrites().map(kernelDefault)], {
        netns: A,
      });
      const m = new SysctlLinkManager({ netns: A, via });
      assert.equal(await m.apply(new Set([...IFACES, "calinone"]), true, true), 2, "two interfaces exist");
      for (const [k, v] of await values(A, keysOf(allWrites())))
        assert.equal(
          v,
          allWrites()
            .find((w) => w.startsWith(`${k}=`))!
            .split("=")[1],
          k,
        );
      assert.deepEqual(await values(B, keysOf(allWrites())), untouchedB, "the other namespace is untouched");
      assert.deepEqual(rootGlobals(), root, "this process's namespace is untouched");
      assert.equal(existsSync("/proc/sys/net/ipv4/conf/calil1"), false);
      assert.equal(readlinkSync("/proc/thread-self/ns/net"), thread, "this thread is back in its namespace");
      assert.equal(await m.apply(new Set(IFACES), true, false), 0, "nothing new: fast path");

      // A re-created interface (new ifindex, kernel defaults) is configured on a full apply.
      await runOk("ip", ["-n", A, "-batch", "-"], {
        input: "link del calil2\nlink add calil2 type veth peer name peer1\nlink set calil2 up\n",
      });
      assert.equal(
        (await values(A, ["net/ipv4/conf/calil2/proxy_arp"])).get("net/ipv4/conf/calil2/proxy_arp"),
        "0",
      );
      assert.equal(await m.apply(new Set(IFACES), true, true), 2);
      assert.equal(
        (await values(A, ["net/ipv4/conf/calil2/proxy_arp"])).get("net/ipv4/conf/calil2/proxy_arp"),
        "1",
      );
    });
  }

  it("writeSysctls writes only the values that differ and skips missing keys", async () => {
    const c = await loadLibc();
    assert.ok(c, "koffi loads here");
    const writes = interfaceSysctls("calil1", true);
    await runOk(
      "sysctl",
      ["-q", "-w", "net/ipv4/conf/calil1/proxy_arp=0", "net/ipv6/conf/calil1/accept_dad=1"],
      {
        netns: A,
      },
    );
    assert.deepEqual(writeSysctls(c, A, writes), { written: 2, missing: [] });
    assert.deepEqual(writeSysctls(c, A, writes), { written: 0, missing: [] });
    assert.deepEqual(writeSysctls(c, A, ["net/ipv4/conf/calinone/forwarding=1", "net/ipv4/ip_forward=1"]), {
      written: 0,
      missing: ["net/ipv4/conf/calinone/forwarding"],
    });
    assert.throws(
      () => writeSysctls(c, A, ["net/ipv4/conf/calil1/forwarding=nonsense"]),
      (e: Error) => {
        assert.match(
          e.message,
          /1 of 1 sysctl writes in netns ctsln-\d+-a failed: net\/ipv4\/conf\/calil1\/forwarding=nonsense/,
        );
        return true;
      },
    );
    assert.throws(() => writeSysctls(c, `ctsln-${process.pid}-none`, writes), /ctsln-\d+-none/);
  });
});
