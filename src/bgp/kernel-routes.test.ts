import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseCIDR, parseCIDROrIP, type CIDR } from "../api/net.js";
import { deleteLine, replaceLine } from "./kernel-routes.js";

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
