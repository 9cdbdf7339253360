/**
 * calico-node under faults, on the real kernel with real packets (issue 5):
 *
 * - Fail closed: `nft` starts refusing every call (a wrapper first on the agent's PATH; the
 *   agent runs with CALICO_NFT_NETLINK=0 so every transaction goes through that `nft`, since the
 *   netlink path would bypass it). The agent retries as full applies, exits non-zero after
 *   --max-apply-failures, and the kernel keeps the last programmed policy: what was denied stays
 *   denied.
 * - Datastore outage: etcd is killed for ~10 s. Enforcement is unchanged throughout, the agent
 *   stays live, and once etcd is back a policy change is enforced.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { decodeResources } from "../src/api/codec.js";
import { run } from "../src/dataplane/netns.js";
import { EtcdServer, etcdSkipReason } from "../src/datastore/testing/etcd-server.js";
import { OneHostFabric } from "./helpers/one-host-fabric.js";
import { waitForAgent } from "./helpers/agent-status.js";
import { B_FROM_A, docs, KNS_X_ALLOW } from "./helpers/scenarios.js";
import { assertReach, logLines, type Expectation } from "./helpers/reach.js";

const isRoot = process.getuid?.() === 0;
const rootSkip =
  !isRoot && process.env.CI === undefined ? "needs root (network namespaces, nftables)" : false;

const A = "198.19.4.1";
const B = "198.19.4.2";
const C = "198.19.4.3";

const SETUP = docs(KNS_X_ALLOW, B_FROM_A);

const ALLOW_C = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: b-from-c}
spec:
  order: 10
  selector: app == 'b'
  types: [Ingress]
  ingress: [{action: Allow, protocol: TCP, source: {selector: app == 'c'}}]
`;

const CLOSED: Expectation[] = [
  { from: "x.a", to: "b", addr: B, probe: "tcp80", allowed: true },
  { from: "x.a", to: "b", addr: B, probe: "tcp81", allowed: false },
  { from: "x.c", to: "b", addr: B, probe: "tcp80", allowed: false },
  { from: "x.c", to: "b", addr: B, probe: "tcp81", allowed: false },
];

async function setUp(fabric: OneHostFabric): Promise<void> {
  await fabric.start();
  for (const r of decodeResources(SETUP)) await fabric.store!.apply(r.resource);
  for (const [name, v4, i] of [
    ["a", A, 1],
    ["b", B, 2],
    ["c", C, 3],
  ] as const) {
    await fabric.addWorkload({ namespace: "x", name, labels: { app: name }, v4, v6: `fd00:19:0:4::${i}` });
  }
}

async function applyYaml(fabric: OneHostFabric, yaml: string): Promise<void> {
  for (const r of decodeResources(yaml)) await fabric.store!.apply(r.resource);
}

describe("fail closed: nft refuses every transaction", { skip: rootSkip }, () => {
  const fabric = new OneHostFabric();
  const bin = join(fabric.dir, "bin");
  const flag = join(fabric.dir, "nft-broken");

  before(async () => {
    await setUp(fabric);
    // An `nft` first on the agent's PATH that passes through until the flag file exists.
    mkdirSync(bin);
    writeFileSync(
      join(bin, "nft"),
      `#!/bin/sh\nif [ -e '${flag}' ]; then echo 'nft (test wrapper): refusing' >&2; exit 1; fi\nexec /usr/sbin/nft "$@"\n`,
    );
    chmodSync(join(bin, "nft"), 0o755);
    fabric.startAgent(["--max-apply-failures", "3"], {
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      CALICO_NFT_NETLINK: "0",
    });
    await waitForAgent(fabric, await fabric.revision());
  });
  after(async () => {
    if (process.exitCode !== undefined && process.exitCode !== 0)
      process.stderr.write(fabric.agentLog.slice(-20_000));
    await fabric.stop();
  });

  test("the agent retries, exits non-zero, and the last programmed policy stays enforced", async () => {
    await assertReach(fabric, CLOSED, "programmed before the fault");
    writeFileSync(flag, "");
    await applyYaml(fabric, ALLOW_C);
    const code = await Promise.race([
      fabric.agentExited(),
      new Promise<"still running">((r) => setTimeout(() => r("still running"), 20_000)),
    ]);
    assert.equal(code, 1, "calico-node exits 1 after --max-apply-failures");
    assert.equal(
      logLines(fabric.agentLog, "Dataplane apply failed; retrying as a full apply").length,
      2,
      "two retries before giving up (3 consecutive failures)",
    );
    assert.equal(
      logLines(fabric.agentLog, "Dataplane keeps failing; exiting rather than run open").length,
      1,
    );
    const table = await run("nft", ["list", "table", "inet", "calico"], { netns: fabric.host });
    assert.equal(table.code, 0, "the table is still there after the agent gave up");
    await assertReach(fabric, CLOSED, "after the agent gave up: the kernel keeps the last (closed) policy");
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function health(port: number, path: string): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

describe("datastore outage: etcd down for ~10 s", { skip: rootSkip || etcdSkipReason() }, () => {
  let etcd: EtcdServer | undefined;
  let fabric: OneHostFabric | undefined;
  let healthPort = 0;

  before(async () => {
    etcd = await EtcdServer.start();
    fabric = new OneHostFabric({ dbUrl: etcd.url() });
    await setUp(fabric);
    healthPort = await freePort();
    fabric.startAgent([], {
      FELIX_HEALTHENABLED: "true",
      FELIX_HEALTHHOST: "127.0.0.1",
      FELIX_HEALTHPORT: String(healthPort),
    });
    await waitForAgent(fabric, await fabric.revision());
  });
  after(async () => {
    if (process.exitCode !== undefined && process.exitCode !== 0 && fabric !== undefined)
      process.stderr.write(fabric.agentLog.slice(-20_000));
    await fabric?.stop();
    await etcd?.remove();
  });

  test("enforcement unchanged and the agent live during the outage; converges after", async (t) => {
    const f = fabric!;
    await assertReach(f, CLOSED, "before the outage");
    assert.equal(await health(healthPort, "/liveness"), 200);
    await etcd!.kill();
    const t0 = Date.now();
    const readiness: number[] = [];
    while (Date.now() - t0 < 10_000) {
      await assertReach(f, CLOSED, `${Math.round((Date.now() - t0) / 1000)} s into the outage`);
      assert.equal(f.agent!.exitCode, null, "the agent keeps running");
      assert.equal(await health(healthPort, "/liveness"), 200, "the agent stays live");
      readiness.push(await health(healthPort, "/readiness"));
      await new Promise((r) => setTimeout(r, 1000));
    }
    t.diagnostic(`readiness during the outage: ${readiness.join(" ")}`);
    await etcd!.launch();
    await applyYaml(f, ALLOW_C);
    await waitForAgent(f, await f.revision(), 30_000);
    await assertReach(
      f,
      [
        { from: "x.a", to: "b", addr: B, probe: "tcp80", allowed: true },
        { from: "x.a", to: "b", addr: B, probe: "tcp81", allowed: false },
        { from: "x.c", to: "b", addr: B, probe: "tcp80", allowed: true },
        { from: "x.c", to: "b", addr: B, probe: "tcp81", allowed: true },
      ],
      "a policy written after the outage is enforced",
    );
    assert.equal(await health(healthPort, "/readiness"), 200, "ready again");
  });
});
