/**
 * Agent restart on the real kernel (issue 5): with a→b allowed and c→b denied, an established
 * a→b TCP connection is held open while calico-node is SIGKILLed and started again.
 *
 * - While the agent is down the kernel keeps enforcing: the held flow passes data, c→b stays
 *   denied, a new a→b connection works.
 * - The new agent converges without flushing: sampled throughout the restart window, the table
 *   and the policy chain are always there, c→b never gets through, the held flow never stalls,
 *   and its first full apply writes (almost) nothing.
 * - A policy written while the agent was down is enforced once it is back.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { decodeResources } from "../src/api/codec.js";
import { run } from "../src/dataplane/netns.js";
import { OneHostFabric } from "./helpers/one-host-fabric.js";
import { waitForAgent } from "./helpers/agent-status.js";
import { B_FROM_A, docs, KNS_X_ALLOW } from "./helpers/scenarios.js";
import { assertReach, logLines, reaches } from "./helpers/reach.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (network namespaces, nftables)" : false;

const A = "198.19.2.1";
const B = "198.19.2.2";
const C = "198.19.2.3";

const SETUP = docs(KNS_X_ALLOW, B_FROM_A);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(
  "calico-node restart: enforcement continues, the new agent converges without flushing",
  { skip },
  () => {
    const fabric = new OneHostFabric();

    before(async () => {
      await fabric.start();
      for (const r of decodeResources(SETUP)) await fabric.store!.apply(r.resource);
      for (const [name, v4, i] of [
        ["a", A, 1],
        ["b", B, 2],
        ["c", C, 3],
      ] as const) {
        await fabric.addWorkload({
          namespace: "x",
          name,
          labels: { app: name },
          v4,
          v6: `fd00:19:0:2::${i}`,
        });
      }
      fabric.startAgent();
      await waitForAgent(fabric, await fabric.revision());
    });
    after(async () => {
      if (process.exitCode !== undefined && process.exitCode !== 0)
        process.stderr.write(fabric.agentLog.slice(-20_000));
      await fabric.stop();
    });

    const a = () => fabric.workloads.get("x.a")!.probe;

    test("SIGKILL and restart: held flow, deny and table survive; first full apply is (nearly) empty", async (t) => {
      await assertReach(
        fabric,
        [
          { from: "x.a", to: "b", addr: B, probe: "tcp80", allowed: true },
          { from: "x.c", to: "b", addr: B, probe: "tcp80", allowed: false },
        ],
        "before the restart",
      );
      const held = await a().holdOpen(B, 80);
      assert.notEqual(held, undefined, "a→b connection opened");
      const listing = await run("nft", ["list", "table", "inet", "calico"], { netns: fabric.host });
      const policyChains = [...listing.stdout.matchAll(/chain (filter-cali-p[io]-\S*b-from-a\S*)/g)].map(
        (m) => m[1]!,
      );
      assert.ok(policyChains.length > 0, `the policy chain for b-from-a is programmed:\n${listing.stdout}`);

      // Agent down: the kernel keeps enforcing.
      await fabric.stopAgent("SIGKILL");
      await sleep(500);
      assert.equal((await a().holdCheck(held!)).ok, true, "held a→b passes data while the agent is down");
      await assertReach(
        fabric,
        [
          { from: "x.a", to: "b", addr: B, probe: "tcp80", allowed: true },
          { from: "x.c", to: "b", addr: B, probe: "tcp80", allowed: false },
        ],
        "while the agent is down",
      );

      // Sample the restart window: table listing, c→b probes, held-flow checks, all bounded.
      const problems: string[] = [];
      let samples = { nft: 0, deny: 0, held: 0 };
      let sampling = true;
      const nftSampler = (async () => {
        while (sampling) {
          const r = await run("nft", ["list", "table", "inet", "calico"], { netns: fabric.host });
          samples.nft++;
          if (r.code !== 0) problems.push(`table missing: ${r.stderr.trim()}`);
          else
            for (const c of policyChains)
              if (!r.stdout.includes(`chain ${c} `)) problems.push(`chain ${c} missing from a listing`);
          await sleep(20);
        }
      })();
      const denySampler = (async () => {
        while (sampling) {
          if (await reaches(fabric, "x.c", B, "tcp80", 300)) problems.push("c→b got through");
          samples.deny++;
        }
      })();
      const heldSampler = (async () => {
        while (sampling) {
          const r = await a().holdCheck(held!, 1000);
          if (!r.ok) problems.push(`held a→b stalled: ${r.error}`);
          samples.held++;
          await sleep(50);
        }
      })();

      const logFrom = fabric.agentLog.length;
      fabric.startAgent();
      await waitForAgent(fabric, await fabric.revision());
      await sleep(1000);
      sampling = false;
      await Promise.all([nftSampler, denySampler, heldSampler]);
      t.diagnostic(`samples during the restart window: ${JSON.stringify(samples)}`);
      samples = { nft: 0, deny: 0, held: 0 };
      assert.deepEqual([...new Set(problems)], [], "no gap in enforcement during the restart");

      const fulls = logLines(fabric.agentLog.slice(logFrom), "Applied (full)");
      assert.ok(fulls.length >= 1, "the new agent logged its first full apply");
      const first = fulls[0]!;
      t.diagnostic(`new agent's first full apply: ${JSON.stringify(first)}`);
      assert.ok(
        typeof first.nftOps === "number" && first.nftOps <= 2,
        `the first full apply after a restart rewrites (almost) nothing: nftOps=${String(first.nftOps)}`,
      );
      assert.equal(first.routesChanged, 0, "no route rewritten");

      assert.equal((await a().holdCheck(held!)).ok, true, "held a→b still passes data after the restart");
      await a().holdClose(held!);
      await assertReach(
        fabric,
        [
          { from: "x.a", to: "b", addr: B, probe: "tcp80", allowed: true },
          { from: "x.c", to: "b", addr: B, probe: "tcp80", allowed: false },
        ],
        "after the restart",
      );
    });

    test("a policy written while the agent is down is enforced once it is back", async () => {
      await fabric.stopAgent("SIGKILL");
      const [pol] = decodeResources(`
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: b-from-c-81}
spec:
  order: 10
  selector: app == 'b'
  types: [Ingress]
  ingress: [{action: Allow, protocol: TCP, source: {selector: app == 'c'}, destination: {ports: [81]}}]
`);
      await fabric.store!.apply(pol!.resource);
      await assertReach(
        fabric,
        [{ from: "x.c", to: "b", addr: B, probe: "tcp81", allowed: false }],
        "the kernel does not change while the agent is down",
      );
      fabric.startAgent();
      await waitForAgent(fabric, await fabric.revision());
      await assertReach(
        fabric,
        [
          { from: "x.c", to: "b", addr: B, probe: "tcp81", allowed: true },
          { from: "x.c", to: "b", addr: B, probe: "tcp80", allowed: false },
          { from: "x.a", to: "b", addr: B, probe: "tcp80", allowed: true },
          { from: "x.a", to: "b", addr: B, probe: "tcp81", allowed: false },
        ],
        "after the restart with the new policy",
      );
    });
  },
);
