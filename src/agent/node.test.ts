import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDatastore } from "../datastore/memory.js";
import { ResourceStore } from "../datastore/resources.js";
import { nullLogger } from "./log.js";
import { CalicoNodeRun, type NodeDeps } from "./node.js";
import { FELIX_CONFIG_PREFIX } from "./felix-config.js";
import { FakeCalculator, FakeDataplane } from "./testing/fakes.js";

const IP_ADDR = JSON.stringify([
  {
    ifname: "lo",
    flags: ["UP"],
    addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8, scope: "host" }],
  },
  {
    ifname: "eth0",
    flags: ["UP"],
    addr_info: [{ family: "inet", local: "198.18.0.7", prefixlen: 24, scope: "global" }],
  },
]);

async function until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("calico-node run: registers, serves health, programs after sync, follows config, stops cleanly", async () => {
  const ds = new MemoryDatastore();
  await ds.create(`${FELIX_CONFIG_PREFIX}default`, JSON.stringify({ spec: { logPrefix: "first" } }));
  const sysctls: string[] = [];
  const dataplanes: FakeDataplane[] = [];
  const calcs: { hostname: string; logPrefix: string }[] = [];
  const deps: NodeDeps = {
    datastore: ds,
    createCalc: (o) => {
      calcs.push({ hostname: o.hostname, logPrefix: o.logPrefix });
      return new FakeCalculator();
    },
    createDataplane: () => {
      const c = new FakeCalculator();
      const dp = new FakeDataplane(c);
      dataplanes.push(dp);
      return dp;
    },
    autodetect: {
      ipAddr: () => Promise.resolve(IP_ADDR),
      routeGet: () => Promise.reject(new Error("unused")),
    },
    sysctl: (s) => {
      sysctls.push(s.name);
      return Promise.resolve();
    },
  };
  const run = new CalicoNodeRun(
    { nodename: "host-a", env: {}, log: nullLogger(), healthPort: 0, metricsPort: 0 },
    deps,
  );
  await run.start();
  try {
    const node = await new ResourceStore(ds).get("Node", "host-a");
    assert.deepEqual(node.spec.bgp, { ipv4Address: "198.18.0.7/24" });
    assert.deepEqual(sysctls, ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]);
    assert.deepEqual(calcs, [{ hostname: "host-a", logPrefix: "first" }]);
    await until(() => run.loop?.health().ready === true, "ready");
    const r = await fetch(`http://127.0.0.1:${run.healthPort}/readiness`);
    assert.equal(r.status, 200);
    const m = await (await fetch(`http://127.0.0.1:${run.metricsPort}/metrics`)).text();
    assert.match(m, /felix_resync_state 3/);

    // A dataplane-only change is handed to the dataplane; a logPrefix change ends the run for a restart.
    await ds
      .update(`${FELIX_CONFIG_PREFIX}node.host-a`, "{}")
      .catch(() =>
        ds.create(
          `${FELIX_CONFIG_PREFIX}node.host-a`,
          JSON.stringify({ spec: { defaultEndpointToHostAction: "Accept" } }),
        ),
      );
    await until(() => dataplanes[0]!.configs.length === 1, "setConfig");
    assert.equal(dataplanes[0]!.configs[0]!.defaultEndpointToHostAction, "Accept");
    await ds.update(`${FELIX_CONFIG_PREFIX}default`, JSON.stringify({ spec: { logPrefix: "second" } }));
    assert.equal(await run.stopped, "restart");
  } finally {
    await run.halt();
    await ds.close();
  }
});
