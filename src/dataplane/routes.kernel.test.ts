/**
 * RouteManager on a real kernel, both ways to it (rtnetlink and the `ip -batch` fallback), in a
 * scratch netns: routes created, replaced, deleted and repaired (v4 and v6, workload routes and
 * blackholes); other protocols' routes never touched; a route whose interface is missing is
 * reported by name while the others are applied. Plus the rtnetlink encoder against the parser.
 */
import assert from "node:assert/strict";
import { readlinkSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { run, runOk } from "./netns.js";
import {
  DEFAULT_ROUTE_PROTOCOL,
  RouteManager,
  encodeRoute,
  parseRoutes,
  parseRouteMessage,
  type KernelRoute,
} from "./routes.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (netns); runs in CI" : false;
const PROTO = DEFAULT_ROUTE_PROTOCOL;

const uni = (dst: string, dev: string): KernelRoute => ({ dst, type: "unicast", dev });
const bh = (dst: string): KernelRoute => ({ dst, type: "blackhole" });
const routes = (...rs: KernelRoute[]) => new Map(rs.map((r) => [r.dst, r]));

/** Our routes as `ip` lists them (both families): an independent read of the kernel. */
async function kernelRoutes(ns: string): Promise<Map<string, KernelRoute>> {
  const out = new Map<string, KernelRoute>();
  for (const f of [4, 6] as const)
    for (const [k, v] of parseRoutes(
      await runOk("ip", ["-n", ns, `-${f}`, "-j", "route", "show", "proto", String(PROTO)]),
      f,
    ))
      out.set(k, v);
  return out;
}

describe("encodeRoute / parseRouteMessage", () => {
  it("a replace request reads back as the route it encodes (v4, v6, blackhole)", () => {
    const names = new Map([[7, "cali1"]]);
    for (const r of [
      uni("198.19.0.5/32", "cali1"),
      uni("fd00:19:0:1::5/128", "cali1"),
      bh("198.19.0.0/26"),
      bh("fd00:19:0:1::/122"),
    ]) {
      const msg = encodeRoute({ op: "replace", route: r }, PROTO, 1, 7);
      assert.deepEqual(
        parseRouteMessage(msg, PROTO, (i) => names.get(i)),
        r,
      );
      assert.equal(
        parseRouteMessage(msg, PROTO + 1, (i) => names.get(i)),
        undefined,
        "another protocol is not ours",
      );
    }
  });
  it("refuses a destination that is not a CIDR", () => {
    assert.throws(
      () => encodeRoute({ op: "del", route: bh("nope") }, PROTO, 1),
      /Cannot encode route "nope"/,
    );
  });
});

for (const via of ["netlink", "ip"] as const) {
  describe(`RouteManager via ${via} on a real kernel`, { skip }, () => {
    const NS = `ctsrt-${process.pid}-${via[0]}`;
    before(async () => {
      await runOk("ip", ["netns", "add", NS]);
      await runOk("ip", ["-n", NS, "-batch", "-"], {
        input: [
          "link set lo up",
          "link add calia type veth peer name peera",
          "link add calib type veth peer name peerb",
        ]
          .concat(["calia", "peera", "calib", "peerb"].map((i) => `link set ${i} up`))
          .join("\n"),
      });
      // Someone else's routes: another proto (static, Felix's 80) in our destination space.
      await runOk("ip", ["-n", NS, "route", "add", "198.19.77.0/24", "dev", "calib", "proto", "static"]);
      await runOk("ip", ["-n", NS, "route", "add", "198.19.0.9/32", "dev", "calia", "proto", "80"]);
      await runOk("ip", ["-n", NS, "-6", "route", "add", "fd00:19:0:77::/64", "dev", "calib", "proto", "80"]);
    });
    after(async () => {
      await run("ip", ["netns", "del", NS]);
    });

    const foreign = async () => [
      await runOk("ip", ["-n", NS, "route", "show", "proto", "static"]),
      await runOk("ip", ["-n", NS, "route", "show", "proto", "80"]),
      await runOk("ip", ["-n", NS, "-6", "route", "show", "proto", "80"]),
    ];

    it("creates, replaces and deletes v4 and v6 routes; other protocols' routes untouched", async () => {
      const m = new RouteManager(PROTO, { netns: NS, via });
      const others = await foreign();
      assert.match(others.join(""), /198\.19\.77\.0\/24.*198\.19\.0\.9.*fd00:19:0:77::\/64/s);
      const want = routes(
        uni("198.19.0.1/32", "calia"),
        uni("198.19.0.2/32", "calib"),
        bh("198.19.0.0/26"),
        uni("fd00:19:0:1::1/128", "calia"),
        bh("fd00:19:0:1::/122"),
      );
      assert.equal(await m.apply(want, true), 5);
      assert.deepEqual(await kernelRoutes(NS), want);
      assert.deepEqual(await m.read(true), want);
      assert.equal(await m.apply(want, true, false), 0, "nothing changed");
      assert.equal(await m.apply(want, true, true), 0, "full: read back, nothing to write");

      // Replace (a workload moved interface) and delete (v4 and v6), incrementally.
      const next = routes(
        uni("198.19.0.1/32", "calib"),
        uni("198.19.0.2/32", "calib"),
        uni("fd00:19:0:1::1/128", "calia"),
      );
      assert.equal(await m.apply(next, true, false), 3);
      assert.deepEqual(await kernelRoutes(NS), next);

      // Drift: a route deleted and one added with our proto by hand; a full apply repairs both.
      await runOk("ip", ["-n", NS, "route", "del", "198.19.0.2/32"]);
      await runOk("ip", [
        "-n",
        NS,
        "-6",
        "route",
        "add",
        "blackhole",
        "fd00:19:0:2::/122",
        "proto",
        String(PROTO),
      ]);
      assert.equal(await m.apply(next, true, true), 2);
      assert.deepEqual(await kernelRoutes(NS), next);

      // Without IPv6 our v6 routes are neither read nor written.
      assert.equal(await m.apply(routes(uni("198.19.0.2/32", "calib")), false, true), 1);
      assert.deepEqual(
        await kernelRoutes(NS),
        routes(uni("198.19.0.2/32", "calib"), uni("fd00:19:0:1::1/128", "calia")),
      );
      assert.equal(await m.apply(new Map(), true, true), 2);
      assert.deepEqual(await kernelRoutes(NS), new Map());
      assert.deepEqual(await foreign(), others);
    });

    it("a route whose interface is missing waits (not an error); a delete of a gone route is done", async () => {
      const m = new RouteManager(PROTO, { netns: NS, via });
      const want = routes(
        uni("198.19.0.1/32", "calia"),
        uni("198.19.0.3/32", "calic"),
        uni("fd00:19:0:1::3/128", "calic"),
        bh("198.19.0.0/26"),
      );
      assert.equal(await m.apply(want, true), 2);
      assert.deepEqual([...m.waiting].map((r) => r.dst).sort(), ["198.19.0.3/32", "fd00:19:0:1::3/128"]);
      assert.deepEqual(await kernelRoutes(NS), routes(uni("198.19.0.1/32", "calia"), bh("198.19.0.0/26")));

      // The CNI plugin creates the interface; the next incremental apply writes both.
      await runOk("ip", ["-n", NS, "-batch", "-"], {
        input: "link add calic type veth peer name peerc\nlink set calic up\nlink set peerc up\n",
      });
      assert.equal(await m.apply(want, true, false), 2);
      assert.equal(m.waiting.length, 0);
      assert.deepEqual(await kernelRoutes(NS), want);
      assert.equal(await m.apply(want, true, false), 0, "nothing left to do");

      // Incremental (interfaces looked up by name): a missing one waits the same way.
      const more = new Map([...want, ["198.19.0.4/32", uni("198.19.0.4/32", "calid")]]);
      assert.equal(await m.apply(more, true, false), 0);
      assert.deepEqual(
        [...m.waiting].map((r) => r.dst),
        ["198.19.0.4/32"],
      );

      // The interface goes first (CNI DEL) and takes its routes: deleting them is no error.
      await runOk("ip", ["-n", NS, "link", "del", "calic"]);
      const left = routes(uni("198.19.0.1/32", "calia"), bh("198.19.0.0/26"));
      await m.apply(left, true, false);
      assert.equal(m.waiting.length, 0);
      assert.deepEqual(await kernelRoutes(NS), left);

      // A workload moving to an interface not there yet keeps its old route until it can be
      // replaced, and that route is still deleted once nothing wants the prefix.
      const moved = routes(uni("198.19.0.1/32", "calie"), bh("198.19.0.0/26"));
      assert.equal(await m.apply(moved, true, false), 0);
      assert.deepEqual(await kernelRoutes(NS), left);
      assert.equal(await m.apply(routes(bh("198.19.0.0/26")), true, false), 1);
      assert.deepEqual(await kernelRoutes(NS), routes(bh("198.19.0.0/26")));
      // A full apply reads back and waits the same way.
      assert.equal(await m.apply(moved, true, true), 0);
      assert.deepEqual(
        [...m.waiting].map((r) => r.dst),
        ["198.19.0.1/32"],
      );
      assert.equal(await m.apply(new Map(), true, true), 1);
      assert.deepEqual(await kernelRoutes(NS), new Map());
    });
  });
}

describe("RouteManager in a namespace that does not exist", { skip }, () => {
  it("fails with the namespace named, leaving this thread where it was", async () => {
    const before = readlinkSync("/proc/thread-self/ns/net");
    const m = new RouteManager(PROTO, { netns: `ctsrt-${process.pid}-none`, via: "netlink" });
    await assert.rejects(m.apply(routes(bh("198.19.0.0/26")), false), /ctsrt-\d+-none/);
    assert.equal(readlinkSync("/proc/thread-self/ns/net"), before);
  });
});
