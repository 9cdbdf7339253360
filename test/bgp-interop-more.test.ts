/**
 * More interop of our BGP speaker with BIRD 2, in network namespaces on one bridge
 * (test/helpers/bgp-lab.ts), each speaker a child process in its namespace:
 *
 *  (a) our speakers as route-reflector clients of a BIRD route reflector: a route of client 1
 *      reaches client 2's kernel with its next hop unchanged, ORIGINATOR_ID and CLUSTER_LIST set,
 *      and ping/TCP between the clients' loopbacks goes over the reflected routes;
 *  (b) BIRD clients of OUR route reflector: the reflected attributes as BIRD shows them, and
 *      traffic between the BIRD clients;
 *  (c) graceful restart of our speaker (SIGKILL, then a new process): BIRD keeps our route
 *      (stale) and traffic keeps flowing; after the restart the session comes back, our
 *      End-of-RIB refreshes BIRD's route, our kernel routes from BIRD survived, and the one BIRD
 *      stopped announcing meanwhile is swept once our restart time is up.
 *
 * Addresses: sessions 198.18.0.0/24 on the bridge, routes and loopbacks in 198.19.0.0/16.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { BirdProcess, haveBird } from "./helpers/bgp-bird.js";
import { BridgeLab } from "./helpers/bgp-lab.js";
import { sleep, SpeakerProcess, until } from "./helpers/speaker-process.js";

const isRoot = process.getuid?.() === 0;
const skip =
  process.env.CI === undefined && !isRoot
    ? "needs root (network namespaces, port 179)"
    : process.env.CI === undefined && !haveBird
      ? "needs BIRD 2 (apt-get install bird2)"
      : false;

const execFileP = promisify(execFile);
const TAG = `ctr${process.pid % 100000}`;

const TIMERS = "hold time 3; connect retry time 1; connect delay time 1; error wait time 1, 4;";

/** One BIRD BGP protocol to a neighbour on the bridge, iBGP AS 64512. */
function birdPeer(name: string, local: string, neighbor: string, extra: string, channel: string): string {
  return `protocol bgp ${name} {
  local ${local} as 64512; neighbor ${neighbor} as 64512; direct; ${TIMERS}
  ${extra}
  ipv4 { ${channel} };
}
`;
}

const KERNEL = `protocol kernel k4 { learn; scan time 1; ipv4 { import none; export filter { if proto = "static4" then reject; accept; }; }; }\n`;

/** ping from a namespace, from `src` to `dst`; true when a reply came back. */
async function ping(ns: string, src: string, dst: string): Promise<boolean> {
  try {
    await execFileP("ip", ["netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-I", src, dst]);
    return true;
  } catch {
    return false;
  }
}

/** A TCP exchange: nc listening on `dst` in `dstNs`, a line sent from `src` in `srcNs`. */
async function tcpExchange(srcNs: string, src: string, dstNs: string, dst: string): Promise<string> {
  const server = execFileP("ip", ["netns", "exec", dstNs, "timeout", "5", "nc", "-l", "-N", dst, "7000"]);
  await sleep(300);
  await execFileP("sh", [
    "-c",
    `echo hello-over-bgp | ip netns exec ${srcNs} timeout 5 nc -N -s ${src} ${dst} 7000`,
  ]);
  return (await server).stdout.trim();
}

describe("BGP interop: route reflection and graceful restart with BIRD 2", { skip }, () => {
  describe("(a) our speakers as clients of a BIRD route reflector", () => {
    let lab: BridgeLab | undefined;
    let rr: BirdProcess | undefined;
    const clients: SpeakerProcess[] = [];

    before(async () => {
      lab = new BridgeLab(`${TAG}a`, 3);
      lab.addLoopback(1, "198.19.2.1/32");
      lab.addLoopback(2, "198.19.3.1/32");
      const rrConf =
        "router id 198.18.0.1;\nprotocol device { scan time 1; }\n" +
        [2, 3]
          .map((i) =>
            birdPeer(
              `c${i}`,
              "198.18.0.1",
              `198.18.0.${i}`,
              "rr client; rr cluster id 198.18.0.1;",
              "import all; export all;",
            ),
          )
          .join("");
      rr = new BirdProcess(lab.node(0).ns, rrConf);
      rr.start();
      for (const i of [1, 2]) {
        const n = lab.node(i);
        clients.push(
          new SpeakerProcess({
            ns: n.ns,
            routerId: n.v4,
            peers: [{ address: "198.18.0.1", asn: 64512 }],
            originate: [`198.19.${i + 1}.0/26`],
          }),
        );
      }
      await Promise.all(clients.map((c) => c.waitReady()));
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.kill()));
      await rr?.cleanup();
      lab?.destroy();
    });

    it("both clients Established with the BIRD reflector", async () => {
      for (const c of clients)
        await until(
          `${c.ns} Established`,
          async () => (await c.peerState()) === "Established",
          20000,
          () => rr!.birdc("show", "protocols", "all"),
        );
    });

    it("client 1's route is in client 2's kernel via client 1 (next hop unchanged), and vice versa", async () => {
      await until(
        "198.19.2.0/26 on client 2",
        () => /via 198\.18\.0\.2 dev eth0 proto 84 metric 32/.test(lab!.routes(2, "198.19.2.0/26")),
        20000,
        () => rr!.birdc("show", "route", "all"),
      );
      await until("198.19.3.0/26 on client 1", () =>
        /via 198\.18\.0\.3 dev eth0 proto 84 metric 32/.test(lab!.routes(1, "198.19.3.0/26")),
      );
    });

    it("the reflected route carries ORIGINATOR_ID = client 1 and CLUSTER_LIST = the reflector", async () => {
      const r = await clients[1]!.send({ cmd: "route", prefix: "198.19.2.0/26" });
      assert.deepEqual(r.best, {
        peer: "198.18.0.1",
        nextHop: "198.18.0.2",
        stale: false,
        originatorId: "198.18.0.2",
        clusterList: ["198.18.0.1"],
      });
      // Client 1 got its own route back from the reflector? Then it was rejected by
      // ORIGINATOR_ID (RFC 4456 §8): its best is its own, local route.
      const own = await clients[0]!.send({ cmd: "route", prefix: "198.19.2.0/26" });
      assert.equal(own.best?.peer, "local");
    });

    it("ping and TCP between the clients' loopbacks over the reflected routes", async () => {
      assert.ok(await ping(lab!.node(2).ns, "198.19.3.1", "198.19.2.1"), "ping client 2 → client 1");
      assert.equal(
        await tcpExchange(lab!.node(2).ns, "198.19.3.1", lab!.node(1).ns, "198.19.2.1"),
        "hello-over-bgp",
      );
    });
  });

  describe("(b) BIRD clients of our route reflector", () => {
    let lab: BridgeLab | undefined;
    const birds: BirdProcess[] = [];
    let us: SpeakerProcess | undefined;

    before(async () => {
      lab = new BridgeLab(`${TAG}b`, 3);
      for (const i of [1, 2]) {
        const n = lab.node(i);
        lab.addLoopback(i, `198.19.${i + 1}.1/32`);
        const b = new BirdProcess(
          n.ns,
          `router id ${n.v4};\nprotocol device { scan time 1; }\n${KERNEL}` +
            `protocol static static4 { ipv4; route 198.19.${i + 1}.0/26 blackhole; }\n` +
            birdPeer("refl", n.v4, "198.18.0.1", "", `import all; export where proto = "static4";`),
        );
        b.start();
        birds.push(b);
      }
      us = new SpeakerProcess({
        ns: lab.node(0).ns,
        routerId: "198.18.0.1",
        peers: [
          { address: "198.18.0.2", asn: 64512, rrClient: true },
          { address: "198.18.0.3", asn: 64512, rrClient: true },
        ],
      });
      await us.waitReady();
    });

    after(async () => {
      await us?.kill();
      await Promise.all(birds.map((b) => b.cleanup()));
      lab?.destroy();
    });

    it("both BIRD clients Established with us", async () => {
      for (const i of [0, 1])
        await until(`peer ${i} Established`, async () => (await us!.peerState(i)) === "Established");
    });

    it("BIRD client 2 shows client 1's route reflected by us: next hop, ORIGINATOR_ID, CLUSTER_LIST", async () => {
      let shown = "";
      await until(
        "reflected route in BIRD 2",
        () => {
          shown = birds[1]!.birdc("show", "route", "all", "198.19.2.0/26");
          return shown.includes("BGP.cluster_list");
        },
        20000,
        () => shown,
      );
      assert.match(shown, /BGP\.next_hop: 198\.18\.0\.2\b/);
      assert.match(shown, /BGP\.originator_id: 198\.18\.0\.2\b/);
      assert.match(shown, /BGP\.cluster_list: 198\.18\.0\.1\b/);
      assert.match(shown, /BGP\.local_pref: 100\b/);
      assert.match(shown, /BGP\.as_path: *\n/, "iBGP reflection adds no AS");
      const back = birds[0]!.birdc("show", "route", "all", "198.19.3.0/26");
      assert.match(back, /BGP\.originator_id: 198\.18\.0\.3\b/);
    });

    it("the BIRD clients forward to each other over the reflected routes (kernel, ping)", async () => {
      await until("route in BIRD 2's kernel", () =>
        /via 198\.18\.0\.2 dev eth0 proto bird/.test(lab!.routes(2, "198.19.2.0/26")),
      );
      await until("route in BIRD 1's kernel", () =>
        /via 198\.18\.0\.3 dev eth0 proto bird/.test(lab!.routes(1, "198.19.3.0/26")),
      );
      assert.ok(await ping(lab!.node(2).ns, "198.19.3.1", "198.19.2.1"), "ping BIRD 2 → BIRD 1");
      // Our reflector installs both too (it is a router on the path as well).
      assert.match(lab!.routes(0, "198.19.2.0/26"), /via 198\.18\.0\.2 .*proto 84/);
    });
  });

  describe("(c) graceful restart of our speaker, BIRD as the helper", () => {
    let lab: BridgeLab | undefined;
    let bird: BirdProcess | undefined;
    let us: SpeakerProcess | undefined;
    const RESTART = 8;
    const birdConf = (withGone: boolean) =>
      `router id 198.18.0.1;\nprotocol device { scan time 1; }\n${KERNEL}` +
      `protocol static static4 { ipv4; route 198.19.1.0/26 blackhole; ${withGone ? "route 198.19.9.0/26 blackhole;" : ""} }\n` +
      birdPeer(
        "ours",
        "198.18.0.1",
        "198.18.0.2",
        "graceful restart on; graceful restart time 30;",
        `import all; export where proto = "static4"; next hop self;`,
      );
    const start = () =>
      new SpeakerProcess({
        ns: lab!.node(1).ns,
        routerId: "198.18.0.2",
        peers: [{ address: "198.18.0.1", asn: 64512 }],
        speaker: { gracefulRestartTime: RESTART },
        originate: ["198.19.2.0/26"],
      });

    before(async () => {
      lab = new BridgeLab(`${TAG}c`, 2);
      lab.addLoopback(0, "198.19.1.1/32");
      lab.addLoopback(1, "198.19.2.1/32");
      bird = new BirdProcess(lab.node(0).ns, birdConf(true));
      bird.start();
      us = start();
      await us.waitReady();
    });

    after(async () => {
      await us?.kill();
      await bird?.cleanup();
      lab?.destroy();
    });

    it("Established with graceful restart negotiated; routes both ways; ping", async () => {
      await until("Established", async () => (await us!.peerState()) === "Established");
      await until("our route in BIRD's kernel", () =>
        /via 198\.18\.0\.2 dev eth0 proto bird/.test(lab!.routes(0, "198.19.2.0/26")),
      );
      await until("BIRD's routes in our kernel", () =>
        ["198.19.1.0/26", "198.19.9.0/26"].every((p) =>
          /via 198\.18\.0\.1 .*proto 84/.test(lab!.routes(1, p)),
        ),
      );
      const caps = bird!.birdc("show", "protocols", "all", "ours");
      // Our OPEN's GR capability as BIRD read it: restart time, IPv4 with forwarding preserved.
      assert.match(
        caps,
        /Neighbor capabilities[\s\S]*Graceful restart\s+Restart time: 8\s+AF supported: ipv4\s+AF preserved: ipv4/,
        caps,
      );
      assert.ok(await ping(lab!.node(1).ns, "198.19.2.1", "198.19.1.1"));
    });

    it("SIGKILL, restart: BIRD keeps our route stale, traffic flows, our kernel routes survive; refresh and sweep after", async () => {
      // Probe forwarding every 100 ms across the whole restart (bounded: 60 s at most).
      let probing = true;
      const probes = { ok: 0, failed: 0 };
      const prober = (async () => {
        const end = Date.now() + 60000;
        while (probing && Date.now() < end) {
          if (await ping(lab!.node(1).ns, "198.19.2.1", "198.19.1.1")) probes.ok++;
          else probes.failed++;
          await sleep(100);
        }
      })();
      try {
        await us!.kill();
        await until("BIRD sees the session down", () => !/Established/.test(bird!.protocolInfo("ours")));
        const during = bird!.birdc("show", "route", "all", "198.19.2.0/26");
        assert.match(during, /198\.19\.2\.0\/26/, `BIRD dropped our route at once:\n${during}`);
        assert.match(bird!.birdc("show", "protocols", "all", "ours"), /Neighbor graceful restart active/);
        assert.match(lab!.routes(0, "198.19.2.0/26"), /proto bird/);
        // While we are down, BIRD stops announcing 198.19.9.0/26.
        writeFileSync(bird!.conf, `log "${bird!.dir}/bird.log" all;\n${birdConf(false)}`);
        assert.match(bird!.birdc("configure"), /Reconfigured/);
        await sleep(1500);
        assert.match(
          lab!.routes(1, "198.19.9.0/26"),
          /proto 84/,
          "stale kernel route kept while we are down",
        );

        const restartedAt = Date.now();
        us = start();
        await us.waitReady();
        await until("Established again", async () => (await us!.peerState()) === "Established");
        await until(
          "BIRD leaves graceful restart (our End-of-RIB)",
          () => !/Neighbor graceful restart active/.test(bird!.birdc("show", "protocols", "all", "ours")),
          15000,
          () => bird!.birdc("show", "protocols", "all", "ours"),
        );
        assert.match(lab!.routes(0, "198.19.2.0/26"), /via 198\.18\.0\.2 .*proto bird/);
        assert.match(lab!.routes(1, "198.19.1.0/26"), /via 198\.18\.0\.1 .*proto 84/);
        assert.match(lab!.routes(1, "198.19.9.0/26"), /proto 84/, "kept until our restart time is up");
        await until(
          "the route BIRD no longer announces swept",
          () => !lab!.routes(1, "198.19.9.0/26").includes("proto 84"),
          (RESTART + 5) * 1000,
        );
        assert.ok(Date.now() - restartedAt >= RESTART * 1000 - 200, "swept only after the restart time");
        assert.match(lab!.routes(1, "198.19.1.0/26"), /via 198\.18\.0\.1 .*proto 84/, "refreshed route kept");
        const best = await us.send({ cmd: "route", prefix: "198.19.1.0/26" });
        assert.equal(best.best?.stale, false);
      } finally {
        probing = false;
        await prober;
      }
      assert.ok(probes.ok > 20, `few probes: ${JSON.stringify(probes)}`);
      assert.equal(probes.failed, 0, `pings lost during the restart: ${JSON.stringify(probes)}`);
      assert.ok(await ping(lab!.node(1).ns, "198.19.2.1", "198.19.1.1"));
    });
  });
});
