/**
 * Two of our speakers in two network namespaces joined by a veth, iBGP AS 64512:
 *
 *   ns A (198.18.0.1/24) ── veth ── ns B (198.18.0.2/24)
 *
 * Node cannot switch namespaces, so each speaker is a child process under
 * `nsenter --net=/run/netns/<ns>` (test/helpers/speaker-process.ts), driven by JSON lines. Checked in the kernel of B: A's 198.19.1.0/26 arrives as
 * `via 198.18.0.1 proto 84`; withdrawing removes it; stopping A (no graceful restart) removes it;
 * a dataplane route (proto 83) of the same prefix is never touched.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sh, SpeakerProcess, until } from "./helpers/speaker-process.js";

const isRoot = process.getuid?.() === 0;
const skip = process.env.CI === undefined && !isRoot ? "needs root (network namespaces, port 179)" : false;
const haveBird = (() => {
  try {
    execFileSync("bird", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const skipBird =
  skip !== false
    ? skip
    : process.env.CI === undefined && !haveBird
      ? "needs BIRD 2 (apt-get install bird2)"
      : false;

// ---- parent ----

const NS_A = `ctsspa-${process.pid}`;
const NS_B = `ctsspb-${process.pid}`;

const routesOf = (ns: string, prefix: string) =>
  sh("ip", ["-n", ns, prefix.includes(":") ? "-6" : "-4", "route", "show", prefix]).trim();

{
  describe("BGP speaker: two of ours in network namespaces, routes in the kernel", { skip }, () => {
    let a: SpeakerProcess | undefined;
    let b: SpeakerProcess | undefined;

    before(async () => {
      sh("ip", ["netns", "add", NS_A]);
      sh("ip", ["netns", "add", NS_B]);
      sh("ip", [
        "link",
        "add",
        "ctsspa0",
        "netns",
        NS_A,
        "type",
        "veth",
        "peer",
        "name",
        "ctsspb0",
        "netns",
        NS_B,
      ]);
      for (const [ns, dev, addr] of [
        [NS_A, "ctsspa0", "198.18.0.1/24"],
        [NS_B, "ctsspb0", "198.18.0.2/24"],
      ] as const) {
        sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
        sh("ip", ["-n", ns, "addr", "add", addr, "dev", dev]);
        sh("ip", ["-n", ns, "link", "set", dev, "up"]);
      }
      a = new SpeakerProcess({
        ns: NS_A,
        routerId: "198.18.0.1",
        peers: [{ address: "198.18.0.2", asn: 64512 }],
      });
      // Both active: a session waiting out its restart back-off takes the peer's connection
      // instead of refusing it, so two active speakers never lock each other out.
      b = new SpeakerProcess({
        ns: NS_B,
        routerId: "198.18.0.2",
        peers: [{ address: "198.18.0.1", asn: 64512 }],
      });
      await Promise.all([a.waitReady(), b.waitReady()]);
    });

    after(() => {
      a?.proc.kill("SIGKILL");
      b?.proc.kill("SIGKILL");
      for (const ns of [NS_A, NS_B]) {
        try {
          sh("ip", ["netns", "del", ns]);
        } catch {
          /* already gone */
        }
      }
    });

    it("reaches Established both ways", async () => {
      await until(
        "A Established",
        async () => {
          const [sa, sb] = [await a!.peerState(), await b!.peerState()];
          return sa === "Established" && sb === "Established";
        },
        20000,
        () => JSON.stringify([a!.lines.at(-1), b!.lines.at(-1)]),
      );
      await until("B Established", async () => (await b!.peerState()) === "Established");
    });

    it("A's originated prefix is in B's kernel via A, proto 84; not in A's own kernel", async () => {
      // A dataplane-style route of the same prefix on B (proto 83): must survive everything.
      sh("ip", ["-n", NS_B, "route", "add", "blackhole", "198.19.1.0/26", "proto", "83"]);
      await a!.send({ cmd: "originate", prefix: "198.19.1.0/26" });
      await until("route on B", () =>
        /198\.19\.1\.0\/26 via 198\.18\.0\.1 .*proto 84/.test(routesOf(NS_B, "198.19.1.0/26")),
      );
      assert.equal(sh("ip", ["-n", NS_A, "route", "show", "proto", "84"]).trim(), "");
    });

    it("withdraw on A removes the route on B, and only ours", async () => {
      await a!.send({ cmd: "withdraw", prefix: "198.19.1.0/26" });
      await until("route gone on B", () => !routesOf(NS_B, "198.19.1.0/26").includes("proto 84"));
      assert.match(routesOf(NS_B, "198.19.1.0/26"), /blackhole 198\.19\.1\.0\/26 proto 83/);
    });

    it("stopping A (no graceful restart) removes the route on B; B's status says why", async () => {
      await a!.send({ cmd: "originate", prefix: "198.19.1.0/26" });
      await until("route on B again", () => routesOf(NS_B, "198.19.1.0/26").includes("proto 84"));
      await a!.send({ cmd: "stop" });
      await until("route gone on B after stop", () => !routesOf(NS_B, "198.19.1.0/26").includes("proto 84"));
      const st = await b!.send({ cmd: "status" });
      const row = st.status?.peers[0];
      assert.notEqual(row?.state, "Established");
      // info is the latest attempt (A is gone, so likely "connection refused"); lastDown keeps why.
      assert.match(row?.lastDown ?? "", /Cease|shutdown/i);
      assert.match(routesOf(NS_B, "198.19.1.0/26"), /proto 83/);
    });
  });

  describe(
    "BGP speaker against BIRD 2: iBGP over IPv4 and IPv6, routes both ways, traffic",
    { skip: skipBird },
    () => {
      const NS_BIRD = `ctsspc-${process.pid}`;
      const NS_US = `ctsspd-${process.pid}`;
      let dir = "";
      let bird: ChildProcess | undefined;
      let us: SpeakerProcess | undefined;
      const birdc = (...args: string[]): string => {
        try {
          return sh("birdc", ["-s", join(dir, "bird.ctl"), ...args]);
        } catch (err) {
          return `birdc failed: ${(err as Error).message}`;
        }
      };

      before(async () => {
        dir = mkdtempSync(join(tmpdir(), "cts-spk-bird-"));
        sh("ip", ["netns", "add", NS_BIRD]);
        sh("ip", ["netns", "add", NS_US]);
        sh("ip", [
          "link",
          "add",
          "ctsspc0",
          "netns",
          NS_BIRD,
          "type",
          "veth",
          "peer",
          "name",
          "ctsspd0",
          "netns",
          NS_US,
        ]);
        for (const [ns, dev, addrs, lo] of [
          [NS_BIRD, "ctsspc0", ["198.18.0.1/24", "fd00::1/64"], ["198.19.1.1/32", "fd00:19:0:1::1/128"]],
          [NS_US, "ctsspd0", ["198.18.0.2/24", "fd00::2/64"], ["198.19.2.1/32", "fd00:19:0:2::1/128"]],
        ] as const) {
          sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
          for (const a of addrs)
            sh("ip", ["-n", ns, "addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : [])]);
          for (const a of lo) sh("ip", ["-n", ns, "addr", "add", a, "dev", "lo"]);
          sh("ip", ["-n", ns, "link", "set", dev, "up"]);
        }
        const conf = join(dir, "bird.conf");
        // reference/lab-recipes.md §3: kernel protocols install what BGP learns; statics are exported.
        writeFileSync(
          conf,
          `router id 198.18.0.1;
log "${dir}/bird.log" all;
protocol device { scan time 2; }
protocol kernel k4 { learn; scan time 2; merge paths on; ipv4 { import none; export filter { if proto = "static4" then reject; accept; }; }; }
protocol kernel k6 { learn; scan time 2; ipv6 { import none; export filter { if proto = "static6" then reject; accept; }; }; }
protocol static static4 { ipv4; route 198.19.1.0/26 blackhole; }
protocol static static6 { ipv6; route fd00:19:0:1::/64 blackhole; }
protocol bgp peer4 {
  local 198.18.0.1 as 64512; neighbor 198.18.0.2 as 64512; direct; hold time 3;
  connect retry time 2; connect delay time 1; error wait time 1, 4;
  ipv4 { import all; export where proto = "static4"; next hop self; };
}
protocol bgp peer6 {
  local fd00::1 as 64512; neighbor fd00::2 as 64512; direct; hold time 3;
  connect retry time 2; connect delay time 1; error wait time 1, 4;
  ipv6 { import all; export where proto = "static6"; next hop self; };
}
`,
        );
        sh("bird", ["-p", "-c", conf]);
        bird = spawn(
          "nsenter",
          [`--net=/run/netns/${NS_BIRD}`, "--", "bird", "-f", "-c", conf, "-s", join(dir, "bird.ctl")],
          {
            stdio: "ignore",
          },
        );
        us = new SpeakerProcess({
          ns: NS_US,
          routerId: "198.18.0.2",
          peers: [
            { address: "198.18.0.1", asn: 64512, families: [4] },
            { address: "fd00::1", asn: 64512, families: [6] },
          ],
        });
        await us.waitReady();
      });

      after(() => {
        us?.proc.kill("SIGKILL");
        bird?.kill("SIGTERM");
        for (const ns of [NS_BIRD, NS_US]) {
          try {
            sh("ip", ["netns", "del", ns]);
          } catch {
            /* already gone */
          }
        }
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      it("both sessions Established", async () => {
        await until("v4 Established", async () => (await us!.peerState(0)) === "Established");
        await until("v6 Established", async () => (await us!.peerState(1)) === "Established");
      });

      it("BIRD's routes land in our kernel with proto 84, ours in BIRD's kernel", async () => {
        await us!.send({ cmd: "originate", prefix: "198.19.2.0/26" });
        await us!.send({ cmd: "originate", prefix: "fd00:19:0:2::/64" });
        await until("v4 route from BIRD", () =>
          /via 198\.18\.0\.1 .*proto 84/.test(routesOf(NS_US, "198.19.1.0/26")),
        );
        await until(
          "v6 route from BIRD",
          () => /via fd00::1 .*proto 84/.test(routesOf(NS_US, "fd00:19:0:1::/64")),
          20000,
          () =>
            `${sh("ip", ["-n", NS_US, "-6", "route"])}\n${JSON.stringify(us!.lines.at(-1))}\n${birdc("show", "route", "all")}`,
        );
        await until(
          "v4 route in BIRD's kernel",
          () => /via 198\.18\.0\.2 .*proto bird/.test(routesOf(NS_BIRD, "198.19.2.0/26")),
          10000,
        ).catch((e: unknown) => {
          throw new Error(`${(e as Error).message}\n${birdc("show", "route", "all")}`);
        });
        await until(
          "v6 route in BIRD's kernel",
          () => /via fd00::2 .*proto bird/.test(routesOf(NS_BIRD, "fd00:19:0:2::/64")),
          10000,
        );
      });

      it("traffic flows over the BGP-learned routes, IPv4 and IPv6", () => {
        sh("ip", ["netns", "exec", NS_US, "ping", "-c", "1", "-W", "2", "-I", "198.19.2.1", "198.19.1.1"]);
        sh("ip", [
          "netns",
          "exec",
          NS_US,
          "ping",
          "-6",
          "-c",
          "1",
          "-W",
          "2",
          "-I",
          "fd00:19:0:2::1",
          "fd00:19:0:1::1",
        ]);
      });

      it("BIRD withdrawing (protocol disabled) removes the route from our kernel", async () => {
        birdc("disable", "peer4");
        await until("v4 route gone", () => !routesOf(NS_US, "198.19.1.0/26").includes("proto 84"));
        assert.match(routesOf(NS_US, "fd00:19:0:1::/64"), /proto 84/);
        birdc("enable", "peer4");
        await until("v4 route back", () => routesOf(NS_US, "198.19.1.0/26").includes("proto 84"));
      });
    },
  );
}
