/**
 * Interop with BIRD 2 (reference/lab-recipes.md §3): BIRD in one network namespace, our speaker
 * (this file, re-run as a child under `ip netns exec` with BGP_BIRD_CHILD set) in another, a veth
 * between them. One BIRD, several BGP protocols on different BIRD addresses, so every case runs
 * at once:
 *
 *   BIRD address   | kind             | who connects         | extra
 *   198.18.0.1     | iBGP 64512       | BIRD (we are passive)| hold 3 s; our Cease at the end
 *   198.18.0.3     | eBGP 64513↔64512 | us (BIRD passive)    |
 *   fd00::1        | iBGP, IPv6 MP-BGP| BIRD                 |
 *   fd00::3        | eBGP, IPv6       | us                   |
 *   198.18.0.4     | iBGP + MD5       | BIRD (listener key)  |
 *   198.18.0.5     | iBGP + MD5       | us (koffi socket)    |
 *   198.18.0.6     | iBGP + MD5       | BIRD, WRONG key      | must never establish
 *
 * Our side has one address per BIRD protocol (BIRD locks a neighbor address to one protocol):
 * 198.18.0.2, .13–.16, fd00::2, fd00::13.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const isRoot = process.getuid?.() === 0;
const haveBird = (() => {
  try {
    execFileSync("bird", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const skip =
  process.env.CI === undefined && !isRoot
    ? "needs root (network namespaces, port 179, TCP-MD5)"
    : process.env.CI === undefined && !haveBird
      ? "needs BIRD 2 (apt-get install bird2)"
      : false;

interface PeerSpec {
  peer: string;
  /** Our address for this peer: BIRD locks each neighbor address to one protocol. */
  local: string;
  peerAS: number;
  passive?: boolean;
  password?: string;
  family: 4 | 6;
}

const PEERS: PeerSpec[] = [
  { peer: "198.18.0.1", local: "198.18.0.2", peerAS: 64512, passive: true, family: 4 },
  { peer: "198.18.0.3", local: "198.18.0.13", peerAS: 64513, family: 4 },
  { peer: "fd00::1", local: "fd00::2", peerAS: 64512, passive: true, family: 6 },
  { peer: "fd00::3", local: "fd00::13", peerAS: 64513, family: 6 },
  {
    peer: "198.18.0.4",
    local: "198.18.0.14",
    peerAS: 64512,
    passive: true,
    password: "md5-in-secret",
    family: 4,
  },
  { peer: "198.18.0.5", local: "198.18.0.15", peerAS: 64512, password: "md5-out-secret", family: 4 },
  {
    peer: "198.18.0.6",
    local: "198.18.0.16",
    peerAS: 64512,
    passive: true,
    password: "the-right-key",
    family: 4,
  },
];

// ---- child mode: our speaker inside the namespace ----

async function child(): Promise<void> {
  const { BgpListener } = await import("../src/bgp/listener.js");
  const { Session, parseId } = await import("../src/bgp/session.js");
  const { formatCIDR } = await import("../src/api/net.js");
  const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const listener = new BgpListener({ port: 179, host: "::" });
  const sessions = new Map<string, InstanceType<typeof Session>>();
  for (const p of PEERS) {
    const s = new Session({
      localAS: 64512,
      peerAS: p.peerAS,
      routerId: parseId("198.18.0.2"),
      peerAddress: p.peer,
      localAddress: p.local,
      holdTime: 9,
      connectRetryTime: 2,
      idleHoldTime: 0.5,
      maxIdleHoldTime: 2,
      ...(p.passive ? { passive: true } : {}),
      ...(p.password ? { password: p.password } : {}),
      families: [{ afi: p.family === 4 ? 1 : 2, safi: 1 }],
    });
    s.on("state", (c) => out({ ev: "state", peer: p.peer, from: c.from, to: c.to, reason: c.reason }));
    s.on("established", (n) =>
      out({ ev: "established", peer: p.peer, holdTime: n.holdTime, as4: n.as4, families: n.families }),
    );
    s.on("down", (reason) => out({ ev: "down", peer: p.peer, reason }));
    s.on("update", (d) => {
      const nlri = [...d.update.nlri, ...(d.update.attributes.mpReach?.nlri ?? [])].map(formatCIDR);
      const withdrawn = [...d.update.withdrawn, ...(d.update.attributes.mpUnreach?.withdrawn ?? [])].map(
        formatCIDR,
      );
      out({ ev: "update", peer: p.peer, nlri, withdrawn });
    });
    listener.add(s);
    sessions.set(p.peer, s);
  }
  await listener.listen();
  for (const s of sessions.values()) s.start();
  out({ ev: "ready" });
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line) as { cmd: string; peer: string };
    if (cmd.cmd === "stop") {
      await sessions.get(cmd.peer)?.stop();
      out({ ev: "stopped", peer: cmd.peer });
    }
  }
  process.exit(0);
}

// ---- parent mode: namespaces, BIRD, assertions ----

const NS_BIRD = `ctsbird-${process.pid}`;
const NS_US = `ctsus-${process.pid}`;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function birdConf(dir: string): string {
  const proto = (
    name: string,
    o: {
      local: string;
      as: number;
      neighbor: string;
      peerAS: number;
      ch: "ipv4" | "ipv6";
      passive?: boolean;
      password?: string;
    },
  ) => `
protocol bgp ${name} {
  local ${o.local} as ${o.as};
  neighbor ${o.neighbor} as ${o.peerAS};
  ${o.as === o.peerAS ? "direct;" : ""}
  ${o.passive ? "passive on;" : ""}
  ${o.password ? `password "${o.password}";` : ""}
  hold time 3;
  connect retry time 2; connect delay time 1; error wait time 1, 4;
  ${o.ch} { import all; export where proto = "static${o.ch === "ipv4" ? 4 : 6}"; ${o.as === o.peerAS ? "next hop self;" : ""} };
}`;
  return `
router id 198.18.0.1;
log "${dir}/bird.log" all;
protocol device { scan time 2; }
protocol static static4 { ipv4; route 198.19.1.0/26 blackhole; }
protocol static static6 { ipv6; route fd00:19:0:1::/64 blackhole; }
${proto("ibgp4", { local: "198.18.0.1", as: 64512, neighbor: "198.18.0.2", peerAS: 64512, ch: "ipv4" })}
${proto("ebgp4", { local: "198.18.0.3", as: 64513, neighbor: "198.18.0.13", peerAS: 64512, ch: "ipv4", passive: true })}
${proto("ibgp6", { local: "fd00::1", as: 64512, neighbor: "fd00::2", peerAS: 64512, ch: "ipv6" })}
${proto("ebgp6", { local: "fd00::3", as: 64513, neighbor: "fd00::13", peerAS: 64512, ch: "ipv6", passive: true })}
${proto("md5in", { local: "198.18.0.4", as: 64512, neighbor: "198.18.0.14", peerAS: 64512, ch: "ipv4", password: "md5-in-secret" })}
${proto("md5out", { local: "198.18.0.5", as: 64512, neighbor: "198.18.0.15", peerAS: 64512, ch: "ipv4", password: "md5-out-secret", passive: true })}
${proto("md5wrong", { local: "198.18.0.6", as: 64512, neighbor: "198.18.0.16", peerAS: 64512, ch: "ipv4", password: "a-wrong-key" })}
`;
}

interface Ev {
  ev: string;
  peer?: string;
  to?: string;
  reason?: string;
  nlri?: string[];
  holdTime?: number;
  families?: { afi: number; safi: number }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (process.env.BGP_BIRD_CHILD) {
  await child();
} else {
  describe("BGP interop with BIRD 2 in network namespaces", { skip }, () => {
    let dir = "";
    let bird: ChildProcess | undefined;
    let us: ChildProcess | undefined;
    const events: Ev[] = [];
    let birdSock = "";

    const until = async (what: string, pred: () => boolean, ms = 20000) => {
      const end = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > end) {
          throw new Error(
            `timed out waiting for ${what}; our events: ${JSON.stringify(events.slice(-30))}\nBIRD: ${birdc("show protocols")}\nbird.log: ${birdLog()}`,
          );
        }
        await sleep(50);
      }
    };
    const birdc = (...args: string[]): string => {
      try {
        return sh("birdc", ["-s", birdSock, ...args]);
      } catch (err) {
        return `birdc failed: ${(err as Error).message}`;
      }
    };
    const birdLog = () => {
      try {
        return sh("tail", ["-n", "25", join(dir, "bird.log")]);
      } catch {
        return "(no log)";
      }
    };
    const established = (peer: string) => events.some((e) => e.ev === "established" && e.peer === peer);
    const birdState = (proto: string) =>
      birdc("show", "protocols", proto)
        .split("\n")
        .find((l) => l.startsWith(proto)) ?? "";

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "cts-bird-"));
      birdSock = join(dir, "bird.ctl");
      sh("ip", ["netns", "add", NS_BIRD]);
      sh("ip", ["netns", "add", NS_US]);
      sh("ip", [
        "link",
        "add",
        "ctsb0",
        "netns",
        NS_BIRD,
        "type",
        "veth",
        "peer",
        "name",
        "ctsu0",
        "netns",
        NS_US,
      ]);
      for (const [ns, dev, addrs] of [
        [
          NS_BIRD,
          "ctsb0",
          [
            "198.18.0.1/24",
            "198.18.0.3/24",
            "198.18.0.4/24",
            "198.18.0.5/24",
            "198.18.0.6/24",
            "fd00::1/64",
            "fd00::3/64",
          ],
        ],
        [
          NS_US,
          "ctsu0",
          [
            "198.18.0.2/24",
            "198.18.0.13/24",
            "198.18.0.14/24",
            "198.18.0.15/24",
            "198.18.0.16/24",
            "fd00::2/64",
            "fd00::13/64",
          ],
        ],
      ] as const) {
        sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
        for (const a of addrs)
          sh("ip", ["-n", ns, "addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : [])]);
        sh("ip", ["-n", ns, "link", "set", dev, "up"]);
      }
      const conf = join(dir, "bird.conf");
      writeFileSync(conf, birdConf(dir));
      sh("bird", ["-p", "-c", conf]);
      bird = spawn("ip", ["netns", "exec", NS_BIRD, "bird", "-f", "-c", conf, "-s", birdSock], {
        stdio: "ignore",
      });
      const self = fileURLToPath(import.meta.url);
      us = spawn("ip", ["netns", "exec", NS_US, process.execPath, self], {
        env: { ...process.env, BGP_BIRD_CHILD: "1" },
        stdio: ["pipe", "pipe", "inherit"],
      });
      const child = us;
      createInterface({ input: child.stdout! }).on("line", (l) => {
        try {
          events.push(JSON.parse(l) as Ev);
        } catch {
          events.push({ ev: "garbage", reason: l });
        }
      });
      await until("our speaker ready", () => events.some((e) => e.ev === "ready"), 10000);
    });

    after(() => {
      us?.kill("SIGKILL");
      bird?.kill("SIGTERM");
      try {
        sh("ip", ["netns", "del", NS_BIRD]);
      } catch {
        /* already gone */
      }
      try {
        sh("ip", ["netns", "del", NS_US]);
      } catch {
        /* already gone */
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("iBGP over IPv4 with BIRD as the active side: Established, hold time 3 negotiated", async () => {
      await until("Established with 198.18.0.1", () => established("198.18.0.1"));
      const e = events.find((x) => x.ev === "established" && x.peer === "198.18.0.1");
      assert.equal(e?.holdTime, 3);
      await until("BIRD says Established", () => birdState("ibgp4").includes("Established"));
    });

    it("eBGP 64513↔64512 over IPv4 with BIRD as the passive side", async () => {
      await until("Established with 198.18.0.3", () => established("198.18.0.3"));
      await until("BIRD says Established", () => birdState("ebgp4").includes("Established"));
    });

    it("IPv6 (MP-BGP) sessions, iBGP with BIRD active and eBGP with BIRD passive", async () => {
      await until("Established with fd00::1", () => established("fd00::1"));
      await until("Established with fd00::3", () => established("fd00::3"));
      const e = events.find((x) => x.ev === "established" && x.peer === "fd00::1");
      assert.deepEqual(e?.families, [{ afi: 2, safi: 1 }]);
    });

    it("BIRD's routes arrive in our UPDATE events (v4 and v6)", async (t) => {
      const got = (peer: string, prefix: string) =>
        events.some((e) => e.ev === "update" && e.peer === peer && (e.nlri ?? []).includes(prefix));
      await until("198.19.1.0/26 from iBGP", () => got("198.18.0.1", "198.19.1.0/26"));
      await until("198.19.1.0/26 from eBGP", () => got("198.18.0.3", "198.19.1.0/26"));
      await until("fd00:19:0:1::/64 from iBGP v6", () => got("fd00::1", "fd00:19:0:1::/64"));
      await until("fd00:19:0:1::/64 from eBGP v6", () => got("fd00::3", "fd00:19:0:1::/64"));
      for (const e of events.filter((x) => x.ev === "update"))
        t.diagnostic(`UPDATE from ${e.peer}: ${JSON.stringify(e.nlri)}`);
    });

    it("TCP-MD5: the right key establishes both ways (listener key; koffi outgoing socket)", async () => {
      await until("Established with 198.18.0.4 (BIRD connects in)", () => established("198.18.0.4"));
      await until("Established with 198.18.0.5 (we connect out)", () => established("198.18.0.5"));
      await until("BIRD md5in Established", () => birdState("md5in").includes("Established"));
      await until("BIRD md5out Established", () => birdState("md5out").includes("Established"));
    });

    it("TCP-MD5: a wrong key never establishes", async (t) => {
      await sleep(3000);
      assert.ok(!established("198.18.0.6"), "established with a wrong MD5 key");
      assert.ok(!birdState("md5wrong").includes("Established"), birdState("md5wrong"));
      // The kernel drops the unsigned/mis-signed SYNs: the session never even opens.
      assert.ok(!events.some((e) => e.peer === "198.18.0.6" && e.to === "OpenSent"));
      t.diagnostic(`BIRD: ${birdState("md5wrong").trim()}`);
    });

    it("keepalives hold every session up for more than two hold periods (3 s)", async () => {
      const before = events.filter((e) => e.ev === "down" && e.peer !== "198.18.0.6").length;
      await sleep(7500);
      const downs = events.filter((e) => e.ev === "down" && e.peer !== "198.18.0.6");
      assert.equal(downs.length, before, JSON.stringify(downs));
      for (const p of ["ibgp4", "ebgp4", "ibgp6", "ebgp6", "md5in", "md5out"]) {
        assert.match(birdState(p), /Established/, p);
      }
    });

    it("our Cease NOTIFICATION shuts BIRD's session cleanly and BIRD shows why", async (t) => {
      us!.stdin!.write(`${JSON.stringify({ cmd: "stop", peer: "198.18.0.1" })}\n`);
      await until("stopped", () => events.some((e) => e.ev === "stopped" && e.peer === "198.18.0.1"));
      await until("BIRD shows the administrative shutdown", () =>
        /Received: Administrative shutdown/i.test(birdc("show", "protocols", "all", "ibgp4")),
      );
      t.diagnostic(`BIRD: ${birdState("ibgp4").trim()}`);
      const info = birdc("show", "protocols", "all", "ibgp4")
        .split("\n")
        .filter((l) => /error|Received/i.test(l));
      t.diagnostic(`BIRD: ${info.join(" | ").trim()}`);
      const last = events.filter((e) => e.peer === "198.18.0.1" && e.ev === "down").at(-1);
      assert.match(last?.reason ?? "", /stopped by the operator/);
      // The other sessions are unaffected.
      assert.match(birdState("ebgp4"), /Established/);
    });
  });
}
