import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawn } from "node:child_process";
import { commandIn, runOk } from "../dataplane/netns.js";
import { NetnsSet, runPrefix } from "./netns-set.js";
import { ProbeAgent } from "./probe.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (network namespaces)" : false;

describe("probe agents in two namespaces joined by a veth", { skip }, () => {
  const nets = new NetnsSet(runPrefix("ctspr"));
  let a: ProbeAgent;
  let b: ProbeAgent;
  let nsB: string;

  before(async () => {
    const nsA = await nets.add("a");
    nsB = await nets.add("b");
    await runOk("ip", [
      "-n",
      nsA,
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      nsB,
    ]);
    for (const [ns, v4, v6] of [
      [nsA, "198.19.250.1/30", "fd00:19:0:fa::1/64"],
      [nsB, "198.19.250.2/30", "fd00:19:0:fa::2/64"],
    ] as const) {
      await runOk("ip", ["-n", ns, "addr", "add", v4, "dev", "eth0"]);
      await runOk("ip", ["-n", ns, "addr", "add", v6, "dev", "eth0", "nodad"]);
      await runOk("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    }
    a = await ProbeAgent.start({ netns: nsA, name: "a", tcpPorts: [80], udpPorts: [80] });
    b = await ProbeAgent.start({ netns: nsB, name: "b", tcpPorts: [80, 81], udpPorts: [80] });
    // A fresh veth takes a moment before IPv6 passes (link-local addresses, carrier).
    for (let i = 0; i < 30; i++) {
      if ((await a.probe({ proto: "udp", addr: "fd00:19:0:fa::2", port: 80, timeoutMs: 100 })).ok) break;
    }
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await nets.cleanup();
  });

  test("TCP, UDP and ICMP reach the other side, which names itself", async () => {
    for (const addr of ["198.19.250.2", "fd00:19:0:fa::2"]) {
      assert.deepEqual((await a.probe({ proto: "tcp", addr, port: 81 })).peer, "b", `tcp ${addr}`);
      assert.equal((await a.probe({ proto: "udp", addr, port: 80 })).peer, "b", `udp ${addr}`);
      assert.equal((await a.probe({ proto: "icmp", addr })).ok, true, `icmp ${addr}`);
    }
    assert.equal((await b.probe({ proto: "tcp", addr: "198.19.250.1", port: 80 })).peer, "a");
  });

  test("a held connection keeps passing data until it is closed", async () => {
    const h = await a.holdOpen("198.19.250.2", 80);
    assert.notEqual(h, undefined);
    for (let i = 0; i < 3; i++) assert.equal((await a.holdCheck(h!)).peer, "b");
    await a.holdClose(h!);
    assert.deepEqual((await a.holdCheck(h!)).error, "not-held");
    assert.equal(await a.holdOpen("198.19.250.2", 82), undefined, "a refused connection is not held");
  });

  test("a closed port is refused; a dropped one times out", async () => {
    const refused = await a.probe({ proto: "tcp", addr: "198.19.250.2", port: 82 });
    assert.deepEqual([refused.ok, refused.error], [false, "refused"]);
    await runOk("nft", ["-f", "-"], {
      netns: nsB,
      input:
        "table inet ctsprobe { chain input { type filter hook input priority 0; tcp dport 81 drop; udp dport 80 drop; icmp type echo-request drop; }; }\n",
    });
    const dropped = await a.probe({ proto: "tcp", addr: "198.19.250.2", port: 81, timeoutMs: 300 });
    assert.deepEqual([dropped.ok, dropped.error], [false, "timeout"]);
    const udp = await a.probe({ proto: "udp", addr: "198.19.250.2", port: 80, timeoutMs: 300 });
    assert.deepEqual([udp.ok, udp.error], [false, "timeout"]);
    assert.equal((await a.probe({ proto: "icmp", addr: "198.19.250.2", timeoutMs: 1000 })).ok, false);
    assert.equal((await a.probe({ proto: "tcp", addr: "198.19.250.2", port: 80 })).peer, "b");
  });

  test("connectOnly succeeds on a port whose server never answers; a plain probe times out", async () => {
    // A server that accepts and says nothing (as a BGP speaker waiting for an OPEN).
    const argv = commandIn(nsB, process.execPath, [
      "-e",
      "require('net').createServer(() => {}).listen(83, () => console.log('ready'))",
    ]);
    const silent = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "ignore"] });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("the silent server did not start within 10 s")), 10_000);
        silent.stdout.once("data", () => {
          clearTimeout(t);
          resolve();
        });
      });
      const plain = await a.probe({ proto: "tcp", addr: "198.19.250.2", port: 83, timeoutMs: 300 });
      assert.deepEqual([plain.ok, plain.error], [false, "timeout"]);
      for (const addr of ["198.19.250.2", "fd00:19:0:fa::2"])
        assert.equal((await a.probe({ proto: "tcp", addr, port: 83, connectOnly: true })).ok, true, addr);
      const refused = await a.probe({ proto: "tcp", addr: "198.19.250.2", port: 84, connectOnly: true });
      assert.deepEqual([refused.ok, refused.error], [false, "refused"]);
    } finally {
      silent.kill("SIGKILL");
    }
  });
});
