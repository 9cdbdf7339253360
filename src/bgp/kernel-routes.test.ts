import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { parseCIDR, parseCIDROrIP, type CIDR } from "../api/net.js";
import { deleteLine, IpBatch, KernelRoutes, replaceLine } from "./kernel-routes.js";

const c = (t: string): CIDR => (t.includes("/") ? parseCIDR(t) : parseCIDROrIP(t))!;

describe("kernel route batch lines", () => {
  const cases: { name: string; line: string; want: string }[] = [
    {
      name: "one next hop",
      line: replaceLine(c("198.19.1.0/26"), [c("198.18.0.1")], 84, 32),
      want: "route replace 198.19.1.0/26 via 198.18.0.1 proto 84 metric 32",
    },
    {
      name: "ECMP",
      line: replaceLine(c("198.19.1.0/26"), [c("198.18.0.1"), c("198.18.0.3")], 84, 32),
      want: "route replace 198.19.1.0/26 proto 84 metric 32 nexthop via 198.18.0.1 nexthop via 198.18.0.3",
    },
    {
      name: "IPv6",
      line: replaceLine(c("fd00:19:0:1::/64"), [c("fd00::1")], 84, 32),
      want: "route replace fd00:19:0:1::/64 via fd00::1 proto 84 metric 32",
    },
    {
      name: "delete names our protocol and metric, so it only ever matches ours",
      line: deleteLine(c("198.19.1.0/26"), 84, 32),
      want: "route del 198.19.1.0/26 proto 84 metric 32",
    },
  ];
  for (const t of cases) it(t.name, () => assert.equal(t.line, t.want));
});

const isRoot = process.getuid?.() === 0;

describe(
  "KernelRoutes in a network namespace (one ip -batch process)",
  { skip: isRoot ? false : "needs root" },
  () => {
    const ns = `ctskr-${process.pid}`;
    const ip = (...args: string[]) => execFileSync("ip", ["-n", ns, ...args], { encoding: "utf8" }).trim();
    let k: KernelRoutes | undefined;
    let b: IpBatch | undefined;

    before(() => {
      execFileSync("ip", ["netns", "add", ns]);
      ip("link", "add", "d0", "type", "veth", "peer", "name", "d1");
      ip("addr", "add", "198.18.0.1/24", "dev", "d0");
      ip("link", "set", "d0", "up");
      ip("link", "set", "d1", "up");
    });
    after(() => {
      k?.close();
      b?.close();
      execFileSync("ip", ["netns", "del", ns]);
    });

    it("applies routes (one next hop, ECMP) and deletes them, answering once each group is done", async () => {
      k = new KernelRoutes({ netns: ns });
      await k.sweep();
      k.set(c("198.19.1.0/26"), [c("198.18.0.2")]);
      k.set(c("198.19.2.0/26"), [c("198.18.0.2"), c("198.18.0.3")]);
      await k.apply();
      assert.equal(k.lastError, undefined);
      assert.match(ip("route", "show", "198.19.1.0/26"), /via 198\.18\.0\.2 dev d0 proto 84 metric 32/);
      assert.match(
        ip("route", "show", "198.19.2.0/26"),
        /nexthop via 198\.18\.0\.2 .*\n\s*nexthop via 198\.18\.0\.3/,
      );
      k.delete(c("198.19.1.0/26"));
      await k.apply();
      assert.equal(ip("route", "show", "198.19.1.0/26"), "");
      k.clear();
      await k.apply();
      assert.equal(ip("route", "show", "proto", "84"), "");
    });

    it("reports the failing lines of a group and keeps applying the others", async () => {
      b = new IpBatch(ns);
      const errors = await b.apply([
        "route replace 198.19.3.0/26 via 198.18.0.2 proto 84 metric 32",
        "route del 198.19.4.0/26 proto 84 metric 32",
        "route replace 198.19.5.0/26 via 198.18.0.2 proto 84 metric 32",
      ]);
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /line 2/);
      assert.match(ip("route", "show", "198.19.5.0/26"), /proto 84/);
      assert.deepEqual(await b.apply(["route del 198.19.3.0/26 proto 84 metric 32"]), []);
    });
  },
);
