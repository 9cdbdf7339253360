import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { run, runOk } from "../dataplane/netns.js";
import {
  chooseAddress,
  ipCommands,
  parseAutodetectMethod,
  parseIpAddrJson,
  parseRouteGetSource,
  resolveNodeAddress,
  type AutodetectIO,
} from "./autodetect.js";

const link = (ifname: string, addrs: [string, string, number, string?][], flags = ["UP", "LOWER_UP"]) => ({
  ifname,
  flags,
  addr_info: addrs.map(([family, local, prefixlen, scope]) => ({
    family,
    local,
    prefixlen,
    scope: scope ?? "global",
  })),
});

/** `ip -j addr` of a host with the usual clutter before and after its real interfaces. */
const FIXTURE = JSON.stringify([
  link("lo", [
    ["inet", "127.0.0.1", 8, "host"],
    ["inet6", "::1", 128, "host"],
  ]),
  link("docker0", [["inet", "198.18.200.1", 24]]),
  link("cali1234567890a", [["inet6", "fe80::ecee:eeff:feee:eeee", 64, "link"]]),
  link("veth99", [["inet", "198.18.201.1", 24]]),
  link("eth0", [
    ["inet6", "fe80::1", 64, "link"],
    ["inet", "198.18.0.5", 24],
    ["inet6", "fd00::5", 64],
  ]),
  link("eth1", [
    ["inet", "198.18.1.5", 16],
    ["inet6", "fd00::1:5", 64],
  ]),
  link("tunl0", [["inet", "198.19.0.1", 32]]),
]);
const IFACES = parseIpAddrJson(FIXTURE);

describe("autodetect: choosing from ip -j addr", () => {
  const cases: [string, 4 | 6, string | undefined][] = [
    ["first-found", 4, "198.18.0.5/24"],
    ["", 4, "198.18.0.5/24"],
    ["first-found", 6, "fd00::5/64"],
    ["interface=eth1", 4, "198.18.1.5/16"],
    ["interface=eth.*", 6, "fd00::5/64"],
    ["interface=nomatch,eth1", 4, "198.18.1.5/16"],
    ["interface=docker0", 4, "198.18.200.1/24"],
    ["interface=nomatch", 4, undefined],
    ["skip-interface=eth0", 4, "198.18.1.5/16"],
    ["skip-interface=eth0,eth1", 4, undefined],
    ["cidr=198.18.1.0/24", 4, "198.18.1.5/16"],
    ["cidr=198.18.200.0/24", 4, "198.18.200.1/24"],
    ["cidr=203.0.113.0/24,fd00::1:0/112", 6, "fd00::1:5/64"],
    ["cidr=fd00::/64", 4, undefined],
  ];
  for (const [method, family, want] of cases) {
    test(`${method || "(empty)"} IPv${family} → ${want ?? "nothing"}`, () => {
      const got = chooseAddress(parseAutodetectMethod(method), family, IFACES);
      assert.equal(got?.cidr, want);
    });
  }

  test("can-reach takes the kernel's source address and the prefix of its interface", () => {
    const src = parseRouteGetSource(
      '[{"dst":"198.18.1.1","dev":"eth1","prefsrc":"198.18.1.5","flags":[],"uid":0,"cache":[]}]',
    );
    assert.equal(src, "198.18.1.5");
    assert.deepEqual(chooseAddress(parseAutodetectMethod("can-reach=198.18.1.1"), 4, IFACES, src), {
      cidr: "198.18.1.5/16",
      interfaceName: "eth1",
    });
  });

  test("bad methods are refused with the method quoted", () => {
    for (const m of [
      "interface=",
      "interface=(",
      "cidr=nonsense",
      "can-reach=",
      "kubernetes-internal-ip",
      "magic",
    ]) {
      assert.throws(
        () => parseAutodetectMethod(m),
        (e: Error) => e.message.includes(`"${m}"`),
        m,
      );
    }
  });
});

describe("autodetect: the IP / IP6 settings", () => {
  const io: AutodetectIO = {
    ipAddr: () => Promise.resolve(FIXTURE),
    routeGet: (family) =>
      Promise.resolve(
        family === 4 ? '[{"dev":"eth1","prefsrc":"198.18.1.5"}]' : '[{"dev":"eth0","prefsrc":"fd00::5"}]',
      ),
  };
  const cases: [string | undefined, string | undefined, 4 | 6, string | undefined][] = [
    [undefined, undefined, 4, "198.18.0.5/24"],
    ["autodetect", "interface=eth1", 4, "198.18.1.5/16"],
    ["none", undefined, 4, undefined],
    ["198.18.7.7/20", undefined, 4, "198.18.7.7/20"],
    ["198.18.1.5", undefined, 4, "198.18.1.5/16"],
    ["198.18.9.9", undefined, 4, "198.18.9.9/32"],
    ["fd00::5", undefined, 6, "fd00::5/64"],
    ["autodetect", "can-reach=198.18.1.1", 4, "198.18.1.5/16"],
    ["autodetect", "can-reach=fd00::9", 6, "fd00::5/64"],
  ];
  for (const [ip, method, family, want] of cases) {
    test(`IP=${ip ?? "(unset)"} method=${method ?? "(unset)"} IPv${family} → ${want ?? "none"}`, async () => {
      assert.equal((await resolveNodeAddress(ip, method, family, io))?.cidr, want);
    });
  }
  test("an address of the wrong family is refused", async () => {
    await assert.rejects(
      resolveNodeAddress("fd00::5", undefined, 4, io),
      /"fd00::5" is not .*an IPv4 address/,
    );
  });
});

describe("autodetect: in a real network namespace", () => {
  const root = process.getuid?.() === 0;
  test(
    "first-found, interface= and can-reach= see the namespace's own addresses",
    { skip: !root && "needs root (ip netns)" },
    async () => {
      const ns = `cts-ad-${randomBytes(3).toString("hex")}`;
      await runOk("ip", ["netns", "add", ns]);
      try {
        const ip = (...args: string[]) => runOk("ip", args, { netns: ns });
        await ip("link", "set", "lo", "up");
        // A veth pair with host-like names (the dummy module may be missing).
        await ip("link", "add", "ens9", "type", "veth", "peer", "name", "dummy0");
        await ip("addr", "add", "198.18.50.1/24", "dev", "dummy0");
        await ip("addr", "add", "198.18.60.7/22", "dev", "ens9");
        await ip("addr", "add", "fd00::60:7/64", "dev", "ens9", "nodad");
        await ip("link", "set", "dummy0", "up");
        await ip("link", "set", "ens9", "up");
        const io = ipCommands(ns);
        // dummy.* is on Calico's default exclude list, so first-found skips it.
        assert.equal((await resolveNodeAddress(undefined, "first-found", 4, io))?.cidr, "198.18.60.7/22");
        assert.equal(
          (await resolveNodeAddress(undefined, "interface=dummy0", 4, io))?.cidr,
          "198.18.50.1/24",
        );
        assert.equal(
          (await resolveNodeAddress(undefined, "can-reach=198.18.61.1", 4, io))?.cidr,
          "198.18.60.7/22",
        );
        assert.equal((await resolveNodeAddress(undefined, "first-found", 6, io))?.cidr, "fd00::60:7/64");
      } finally {
        await run("ip", ["netns", "del", ns]);
      }
    },
  );
});
