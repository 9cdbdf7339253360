/**
 * Verdict tables over the dataplane alone: the hand-built DesiredState of fixtures.ts through
 * LinuxDataplane(FakeNft), then the tracer. Covers what calc never produces but the dataplane
 * must survive (fail closed on a missing policy, profile or set) and the config knobs
 * (denyAction Reject). The whole-pipeline tables are in test/pipeline-verdicts.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { emptyChanges } from "../calc/types.js";
import { W1, W2, asState, testConfig, testState, type MutableState } from "./fixtures.js";
import { LinuxDataplane } from "./linux-dataplane.js";
import { FakeNft } from "./nft/fake-nft.js";
import type { Hook } from "./nft/model.js";
import { explain, tracePacket, type Packet } from "./nft/tracer.js";
import type { DataplaneConfig } from "./types.js";

const EXT = { 4: "198.18.0.2", 6: "fd00::2" } as const;
const HOST = { 4: "198.18.0.1", 6: "fd00::1" } as const;

async function programmed(state: MutableState, cfg: DataplaneConfig = testConfig()): Promise<FakeNft> {
  const nft = new FakeNft();
  const dp = new LinuxDataplane({
    nft,
    config: cfg,
    routes: { apply: () => Promise.resolve(0) },
    links: { apply: () => Promise.resolve(0) },
    resyncIntervalMs: 0,
  });
  await dp.apply(asState(state), emptyChanges());
  return nft;
}

type Peer = "w1" | "w2" | "ext" | "host" | `@${string}`;
type Row = [Peer, Peer, number, number | undefined, "accept" | "drop" | "reject"];

function packetFor(
  from: Peer,
  to: Peer,
  f: 4 | 6,
  protocol: number,
  port?: number,
): { pkt: Packet; hooks: Hook[] } {
  const addr = (p: Peer): string =>
    p === "w1"
      ? W1[`v${f}`]
      : p === "w2"
        ? W2[`v${f}`]
        : p === "ext"
          ? EXT[f]
          : p === "host"
            ? HOST[f]
            : p.slice(1);
  const iface = (p: Peer): string => (p === "w1" ? W1.iface : p === "w2" ? W2.iface : "eth0");
  const pkt: Packet = { family: f, saddr: addr(from), daddr: addr(to), protocol, ctState: "new" };
  if (port !== undefined && (protocol === 1 || protocol === 58)) pkt.icmpType = port;
  else if (port !== undefined) {
    pkt.dport = port;
    pkt.sport = 40000;
  }
  if (from === "host") return { pkt: { ...pkt, oifname: iface(to) }, hooks: ["output"] };
  pkt.iifname = iface(from);
  if (to === "host") return { pkt: { ...pkt, daddrIsLocal: true }, hooks: ["prerouting", "input"] };
  return { pkt: { ...pkt, oifname: iface(to) }, hooks: ["prerouting", "forward"] };
}

function check(nft: FakeNft, rows: Row[], families: (4 | 6)[] = [4, 6]): void {
  const bad: string[] = [];
  for (const f of families)
    for (const [from, to, proto, port, want] of rows) {
      const { pkt, hooks } = packetFor(from, to, f, proto === 1 && f === 6 ? 58 : proto, port);
      let got: string = "accept";
      const why: string[] = [];
      let mark = 0;
      for (const h of hooks) {
        const r = tracePacket(nft.ruleset(), { ...pkt, mark }, h);
        why.push(`[${h}] ${explain(r)}`);
        mark = r.mark;
        if (r.verdict !== "accept") {
          got = r.verdict;
          break;
        }
      }
      if (got !== want)
        bad.push(`v${f} ${from} -> ${to} ${proto}/${port}: want ${want}, got ${got}\n${why.join("\n")}`);
    }
  assert.deepEqual(bad, [], bad.join("\n\n"));
}

describe("dataplane verdicts (fixture state)", () => {
  it("tiers, Pass, named ports, notNets, ICMP, profiles and the host endpoint", async () => {
    const nft = await programmed(testState());
    check(nft, [
      ["w1", "w2", 6, 5432, "accept"], // s:frontend to the named port postgres
      ["w1", "w2", 6, 5433, "drop"],
      ["w1", "w2", 6, 8080, "drop"], // v4: in notNets 198.19.0.0/30; v6: a v4-only notNets rule never matches v6
      ["ext", "w2", 6, 5432, "drop"], // not a frontend
      ["w2", "w1", 17, 53, "accept"],
      ["w1", "ext", 6, 443, "accept"],
      ["ext", "host", 6, 80, "accept"], // gnp/host-ssh
      ["ext", "host", 6, 22, "accept"], // failsafe
      ["ext", "host", 6, 81, "drop"],
      ["host", "w1", 6, 80, "accept"],
    ]);
    // block-bad's Pass skips the rest of tier security, so security.icmp is never reached.
    check(
      nft,
      [
        ["w1", "w2", 1, 8, "drop"],
        ["w1", "w2", 1, 13, "drop"],
        ["@198.19.99.5", "w2", 6, 8080, "drop"],
        ["ext", "w2", 6, 8080, "accept"],
      ],
      [4],
    );
    check(nft, [["w1", "w2", 58, 128, "drop"]], [6]);
    // Without block-bad, the ICMP policy decides.
    const s = testState();
    s.policies.delete("gnp/security.block-bad");
    const ep = s.endpoints.get(W2.key);
    if (ep?.kind === "workload") ep.tiers[0]!.ingress = ["gnp/security.icmp"];
    const icmp = await programmed(s);
    check(
      icmp,
      [
        ["w1", "w2", 1, 8, "accept"],
        ["w1", "w2", 1, 13, "drop"],
      ],
      [4],
    );
    check(
      icmp,
      [
        ["w1", "w2", 58, 128, "accept"],
        ["w1", "w2", 58, 129, "drop"],
      ],
      [6],
    );
  });

  it("fails closed: a missing policy, profile or IP set drops, never opens", async () => {
    const noPolicy = testState();
    noPolicy.policies.delete("np/shop/db");
    check(await programmed(noPolicy), [
      ["w1", "w2", 6, 5432, "drop"],
      ["w2", "w1", 6, 80, "drop"],
      ["w2", "ext", 6, 80, "drop"],
    ]);
    const noProfile = testState();
    noProfile.profiles.delete("kns.shop");
    check(await programmed(noProfile), [
      ["ext", "w1", 6, 80, "drop"],
      ["w1", "ext", 6, 80, "drop"],
    ]);
    const noSet = testState();
    noSet.ipSets.delete("n:pg");
    // np/shop/db becomes a single drop: even the 8080 rule no longer allows.
    check(await programmed(noSet), [
      ["ext", "w2", 6, 8080, "drop"],
      ["w1", "ext", 6, 80, "accept"],
    ]);
  });

  it("denyAction Reject rejects in normal chains", async () => {
    const nft = await programmed(testState(), testConfig({ denyAction: "Reject" }));
    check(nft, [
      ["w1", "w2", 6, 5433, "reject"],
      ["ext", "host", 6, 81, "reject"],
      ["w1", "w2", 6, 5432, "accept"],
    ]);
  });
});
