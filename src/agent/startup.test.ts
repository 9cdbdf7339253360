import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MemoryDatastore } from "../datastore/memory.js";
import { ResourceStore } from "../datastore/resources.js";
import { run, runOk } from "../dataplane/netns.js";
import { registerNode, requiredSysctls, setSysctls, storedNodeAddresses, sysctlWriter } from "./startup.js";

test("startup: creates the Node with its BGP addresses", async () => {
  const store = new ResourceStore(new MemoryDatastore());
  await registerNode(store, "host-a", { ipv4: "198.18.0.5/24", ipv6: "fd00::5/64" });
  const node = await store.get("Node", "host-a");
  assert.deepEqual(node.spec.bgp, { ipv4Address: "198.18.0.5/24", ipv6Address: "fd00::5/64" });
  assert.deepEqual(await storedNodeAddresses(store, "host-a"), { ipv4: "198.18.0.5/24", ipv6: "fd00::5/64" });
  assert.deepEqual(await storedNodeAddresses(store, "nobody"), {});
});

test("startup: updates the addresses and keeps fields others set", async () => {
  const store = new ResourceStore(new MemoryDatastore());
  await store.create({
    apiVersion: "projectcalico.org/v3",
    kind: "Node",
    metadata: { name: "host-a", labels: { rack: "r1" } },
    spec: {
      bgp: { asNumber: 64600, ipv4Address: "198.18.9.9/24", routeReflectorClusterID: "198.18.255.1" },
      ipv4VXLANTunnelAddr: "198.19.0.1",
    },
  });
  await registerNode(store, "host-a", { ipv4: "198.18.0.5/24" });
  const node = await store.get("Node", "host-a");
  assert.deepEqual(node.metadata.labels, { rack: "r1" });
  assert.deepEqual(node.spec.bgp, {
    asNumber: 64600,
    ipv4Address: "198.18.0.5/24",
    routeReflectorClusterID: "198.18.255.1",
  });
  assert.equal(node.spec.ipv4VXLANTunnelAddr, "198.19.0.1");
});

test("startup: concurrent registrations of many nodes and one node all land", async () => {
  const store = new ResourceStore(new MemoryDatastore());
  await Promise.all([
    registerNode(store, "host-a", { ipv4: "198.18.0.5/24" }),
    registerNode(store, "host-a", { ipv6: "fd00::5/64" }),
    registerNode(new ResourceStore(store.datastore), "host-a", { ipv4: "198.18.0.5/24" }),
    ...Array.from({ length: 5 }, (_, i) =>
      registerNode(store, `host-${i}`, { ipv4: `198.18.1.${i + 1}/24` }),
    ),
  ]);
  assert.deepEqual((await store.get("Node", "host-a")).spec.bgp, {
    ipv4Address: "198.18.0.5/24",
    ipv6Address: "fd00::5/64",
  });
  assert.equal((await store.list("Node")).items.length, 6);
});

test("startup: sysctls are set through the writer in order", async () => {
  const seen: string[] = [];
  await setSysctls(requiredSysctls(true), (s) => {
    seen.push(`${s.name}=${s.value}`);
    return Promise.resolve();
  });
  assert.deepEqual(seen, ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
  assert.deepEqual(
    requiredSysctls(false).map((s) => s.name),
    ["net.ipv4.ip_forward"],
  );
});

test("startup: sysctls in a real namespace", { skip: process.getuid?.() !== 0 && "needs root" }, async () => {
  const ns = `cts-sc-${randomBytes(3).toString("hex")}`;
  await runOk("ip", ["netns", "add", ns]);
  try {
    await setSysctls(requiredSysctls(true), sysctlWriter(ns));
    const v4 = await runOk("sysctl", ["-n", "net.ipv4.ip_forward"], { netns: ns });
    const v6 = await runOk("sysctl", ["-n", "net.ipv6.conf.all.forwarding"], { netns: ns });
    assert.deepEqual([v4.trim(), v6.trim()], ["1", "1"]);
  } finally {
    await run("ip", ["netns", "del", ns]);
  }
});
