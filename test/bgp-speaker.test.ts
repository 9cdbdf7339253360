/**
 * Two of our speakers in two network namespaces joined by a veth, iBGP AS 64512:
 *
 *   ns A (198.18.0.1/24) ── veth ── ns B (198.18.0.2/24)
 *
 * Node cannot switch namespaces, so each speaker is this file re-run as a child under
 * `nsenter --net=/run/netns/<ns>` (BGP_SPEAKER_CHILD set), driven by JSON lines on stdin and
 * answering on stdout. Checked in the kernel of B: A's 198.19.1.0/26 arrives as
 * `via 198.18.0.1 proto 84`; withdrawing removes it; stopping A (no graceful restart) removes it;
 * a dataplane route (proto 83) of the same prefix is never touched.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const isRoot = process.getuid?.() === 0;
const skip = process.env.CI === undefined && !isRoot ? "needs root (network namespaces, port 179)" : false;

interface Cmd {
  id: number;
  cmd: "originate" | "withdraw" | "status" | "stop";
  prefix?: string;
}

// ---- child mode: one speaker in its namespace ----

async function child(): Promise<void> {
  const { BgpSpeaker } = await import("../src/bgp/speaker.js");
  const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const speaker = new BgpSpeaker({
    asn: 64512,
    routerId: process.env.SPK_ROUTER_ID!,
    listen: { host: "::", port: 179 },
    netns: process.env.SPK_NETNS!,
    holdTime: 3,
    connectRetryTime: 1,
    idleHoldTime: 0.2,
  });
  speaker.addPeer({ address: process.env.SPK_PEER!, asn: 64512 });
  await speaker.start();
  out({ ev: "ready" });
  for await (const line of createInterface({ input: process.stdin })) {
    const c = JSON.parse(line) as Cmd;
    try {
      if (c.cmd === "originate") speaker.originate(c.prefix!);
      else if (c.cmd === "withdraw") speaker.withdraw(c.prefix!);
      else if (c.cmd === "stop") await speaker.stop();
      await speaker.settled();
      out({ id: c.id, ok: true, status: speaker.status(), errors: speaker.errors });
    } catch (err) {
      out({ id: c.id, ok: false, error: (err as Error).message });
    }
    if (c.cmd === "stop") break;
  }
  process.exit(0);
}

// ---- parent mode ----

const NS_A = `ctsspa-${process.pid}`;
const NS_B = `ctsspb-${process.pid}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

interface Reply {
  id?: number;
  ev?: string;
  ok?: boolean;
  error?: string;
  status?: { peers: { address: string; state: string; info?: string }[]; locRibSize: number };
  errors?: string[];
}

class SpeakerProcess {
  readonly proc: ChildProcess;
  readonly lines: Reply[] = [];
  #next = 1;
  constructor(ns: string, routerId: string, peer: string) {
    this.proc = spawn(
      "nsenter",
      [`--net=/run/netns/${ns}`, "--", process.execPath, fileURLToPath(import.meta.url)],
      {
        env: {
          ...process.env,
          BGP_SPEAKER_CHILD: "1",
          SPK_ROUTER_ID: routerId,
          SPK_PEER: peer,
          SPK_NETNS: ns,
        },
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    createInterface({ input: this.proc.stdout! }).on("line", (l) => {
      try {
        this.lines.push(JSON.parse(l) as Reply);
      } catch {
        this.lines.push({ ev: "garbage", error: l });
      }
    });
  }
  async send(cmd: Omit<Cmd, "id">): Promise<Reply> {
    const id = this.#next++;
    this.proc.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    await until(`reply to ${cmd.cmd}`, () => this.lines.some((l) => l.id === id), 10000);
    const r = this.lines.find((l) => l.id === id)!;
    assert.ok(r.ok, `${cmd.cmd} failed: ${r.error}`);
    return r;
  }
  async peerState(): Promise<string> {
    return (await this.send({ cmd: "status" })).status?.peers[0]?.state ?? "?";
  }
}

async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const routesOf = (ns: string, prefix: string) => sh("ip", ["-n", ns, "route", "show", prefix]).trim();

if (process.env.BGP_SPEAKER_CHILD) {
  await child();
} else {
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
      a = new SpeakerProcess(NS_A, "198.18.0.1", "198.18.0.2");
      b = new SpeakerProcess(NS_B, "198.18.0.2", "198.18.0.1");
      await until("both speakers ready", () => [a!, b!].every((s) => s.lines.some((l) => l.ev === "ready")));
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
      await until("A Established", async () => (await a!.peerState()) === "Established");
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
      assert.match(row?.info ?? "", /Cease|shutdown/i);
      assert.match(routesOf(NS_B, "198.19.1.0/26"), /proto 83/);
    });
  });
}
