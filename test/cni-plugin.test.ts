/**
 * The `calico` and `calico-ipam` executables run the way a container runtime runs them: in a
 * host network namespace, against container namespaces and a sqlite datastore, for every
 * spec version's result format. Checks the kernel (interfaces, addresses, routes, a ping from
 * the host), the WorkloadEndpoint and IPAM after ADD, and that DEL, rollback and GC leave
 * nothing behind.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runOk } from "../src/dataplane/netns.js";
import { CniLab, labResources, type Invocation } from "../src/cni/harness.js";
import { HANDLE_PREFIX } from "../src/ipam/block.js";
import { BIG_TCP_SIZE, readLinkPacketSizes } from "../src/dataplane/big-tcp.js";
import { WORKLOAD_GATEWAY_V6 } from "../src/lab/workload.js";

const NODE = "cni-node-1";
const lab = new CniLab(`ctscni${process.pid}`);
let seq = 0;

function conf(version: string, ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    cniVersion: version,
    name: "net1",
    type: "calico",
    nodename: NODE,
    datastore: lab.dbUrl,
    ipam: { type: "calico-ipam", ...ipam },
    ...extra,
  };
}

async function handles(): Promise<string[]> {
  return lab.withStore(async (s) => (await s.datastore.list(HANDLE_PREFIX)).items.map((kv) => kv.key));
}
async function weps(): Promise<string[]> {
  return lab.withStore(async (s) => (await s.list("WorkloadEndpoint")).items.map((w) => w.metadata.name));
}
async function ping(addr: string): Promise<void> {
  await runOk("ping", [addr.includes(":") ? "-6" : "-4", "-c", "1", "-W", "2", addr], { netns: lab.hostNs });
}

async function assertClean(): Promise<void> {
  assert.deepEqual(await lab.hostCaliLinks(), [], "no cali interface left");
  assert.deepEqual(await handles(), [], "no IPAM handle left");
  assert.deepEqual(await weps(), [], "no WorkloadEndpoint left");
}

before(async () => {
  await lab.start([
    ...labResources(NODE),
    {
      apiVersion: "projectcalico.org/v3",
      kind: "IPPool",
      metadata: { name: "tiny" },
      spec: { cidr: "198.19.9.0/30", blockSize: 30 },
    },
  ]);
});
after(async () => {
  await lab.close();
});

const addrsOf = (json: Record<string, unknown> | undefined): string[] => {
  if (json === undefined) return [];
  if (Array.isArray(json.ips)) return (json.ips as { address: string }[]).map((i) => i.address);
  return (["ip4", "ip6"] as const).flatMap((f) => (json[f] ? [(json[f] as { ip: string }).ip] : []));
};

for (const version of ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
  for (const mode of ["dual", "v4", "v6"] as const) {
    it(`${version} ${mode}: ADD, CHECK, DEL, DEL again`, async () => {
      const netns = await lab.container();
      const ipam =
        mode === "dual"
          ? { assign_ipv6: "true" }
          : mode === "v6"
            ? { assign_ipv4: "false", assign_ipv6: "true" }
            : {};
      const inv: Invocation = {
        command: "ADD",
        containerID: `c${seq++}-${mode}`,
        netns,
        ifname: "eth0",
        conf: conf(version, ipam),
      };
      const add = await lab.invoke(inv);
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const json = add.json!;
      assert.equal(json.cniVersion, version);
      const addrs = addrsOf(json);
      assert.equal(addrs.length, mode === "dual" ? 2 : 1);
      if (mode !== "v6") assert.match(addrs[0]!, /^198\.19\.0\.\d+\/32$/);
      if (mode !== "v4") assert.match(addrs.at(-1)!, /^fd00:19::[0-9a-f]+\/128$/);
      if (version.startsWith("0.3") || version === "0.4.0") {
        assert.ok((json.ips as { version: string }[]).every((i) => i.version === "4" || i.version === "6"));
      }
      if (version.startsWith("1.")) assert.ok((json.ips as object[]).every((i) => !("version" in i)));
      if (version === "0.1.0" || version === "0.2.0") assert.equal(json.ips, undefined);
      else {
        const ifs = json.interfaces as { name: string; mac: string; sandbox?: string }[];
        assert.match(ifs[0]!.name, /^cali[0-9a-f]{11}$/);
        assert.equal(ifs[0]!.mac, "ee:ee:ee:ee:ee:ee");
        assert.deepEqual([ifs[1]!.name, ifs[1]!.sandbox], ["eth0", netns]);
      }
      // The kernel: addresses in the container, routes both ways, packets.
      const caddr = await runOk("ip", ["addr", "show", "dev", "eth0"], { netns });
      for (const a of addrs) assert.ok(caddr.includes(a), `${a} on eth0`);
      const r4 = await runOk("ip", ["-4", "route"], { netns });
      const r6 = await runOk("ip", ["-6", "route"], { netns });
      if (mode !== "v6") assert.match(r4, /default via 169\.254\.1\.1 dev eth0/);
      if (mode !== "v4") assert.match(r6, /default via fe80::ecee:eeff:feee:eeee dev eth0/);
      for (const a of addrs) {
        if (!a.includes(":")) await ping(a.split("/")[0]!);
      }
      const wepList = await weps();
      assert.equal(wepList.length, 1);
      assert.equal(wepList[0], `cni--node--1-cni-${inv.containerID!.replace(/-/g, "--")}-eth0`);
      if (version !== "0.1.0" && version !== "0.2.0" && version !== "0.3.0" && version !== "0.3.1") {
        const chk = await lab.invoke({
          ...inv,
          command: "CHECK",
          conf: { ...conf(version, ipam), prevResult: json },
        });
        assert.equal(chk.code, 0, chk.stdout + chk.stderr);
      }
      for (let i = 0; i < 2; i++) {
        const del = await lab.invoke({ ...inv, command: "DEL" });
        assert.equal(del.code, 0, del.stdout + del.stderr);
        assert.equal(del.stdout, "");
      }
      await assertClean();
    });
  }
}

describe("errors and rollback", () => {
  it("VERSION lists every supported version; CHECK before 0.4.0 and STATUS/GC before 1.1.0 are code 1", async () => {
    const v = await lab.invoke({ command: "VERSION", conf: { cniVersion: "0.4.0" } });
    assert.equal(v.code, 0);
    assert.deepEqual(v.json, {
      cniVersion: "0.4.0",
      supportedVersions: ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
    const netns = await lab.container();
    const chk = await lab.invoke({
      command: "CHECK",
      containerID: "x",
      netns,
      ifname: "eth0",
      conf: conf("0.3.1"),
    });
    assert.equal(chk.code, 1);
    assert.equal(chk.json?.code, 1);
    const st = await lab.invoke({ command: "STATUS", conf: conf("1.0.0") });
    assert.equal(st.json?.code, 1);
    const bad = await lab.invoke({
      command: "ADD",
      containerID: "x",
      netns,
      ifname: "eth0",
      conf: conf("9.9.9"),
    });
    assert.equal(bad.json?.code, 1);
  });

  it("big_tcp: both ends of the veth take 192 KiB GSO/GRO packets (IPv4 and IPv6); without it 64 KiB", async () => {
    for (const big of [true, false]) {
      const netns = await lab.container();
      const inv: Invocation = {
        command: "ADD",
        containerID: `big-${big}`,
        netns,
        ifname: "eth0",
        conf: conf("1.1.0", {}, big ? { big_tcp: true } : {}),
      };
      const add = await lab.invoke(inv);
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const host = (add.json!.interfaces as { name: string }[])[0]!.name;
      const want = big ? BIG_TCP_SIZE : 65_536;
      for (const [ns, name] of [
        [lab.hostNs, host],
        [netns, "eth0"],
      ] as const) {
        const [s] = (await readLinkPacketSizes(ns, [name]))!;
        assert.deepEqual(s, { gso: want, gro: want, gsoIPv4: want, groIPv4: want }, `${name} in ${ns}`);
      }
      await ping((add.json!.ips as { address: string }[])[0]!.address.split("/")[0]!);
      const del = await lab.invoke({ ...inv, command: "DEL" });
      assert.equal(del.code, 0, del.stderr);
    }
    const bad = await lab.invoke({
      command: "ADD",
      containerID: "x",
      netns: await lab.container(),
      ifname: "eth0",
      conf: conf("1.1.0", {}, { big_tcp: "yes" }),
    });
    assert.equal(bad.json?.code, 7);
    assert.match(String(bad.json?.msg), /big_tcp/);
    await assertClean();
  });

  it("IPv6 works the moment ADD returns: the host end's link-local (the gateway) skips DAD", async () => {
    // A new namespace keeps the kernel's accept_dad=1, as a real host does.
    assert.equal(
      (await runOk("sysctl", ["-n", "net.ipv6.conf.default.accept_dad"], { netns: lab.hostNs })).trim(),
      "1",
    );
    const netns = await lab.container();
    const inv: Invocation = {
      command: "ADD",
      containerID: "dad",
      netns,
      ifname: "eth0",
      conf: conf("1.1.0", { assign_ipv6: "true" }),
    };
    const add = await lab.invoke(inv);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const host = (add.json!.interfaces as { name: string }[])[0]!.name;
    const addrs = await runOk("ip", ["-6", "addr", "show", "dev", host], { netns: lab.hostNs });
    assert.match(addrs, /inet6 fe80::ecee:eeff:feee:eeee\/64 scope link/, addrs);
    assert.doesNotMatch(addrs, /tentative/, addrs);
    // At once, with no retry: the container reaches its IPv6 gateway.
    await runOk("ping", ["-6", "-c", "1", "-W", "1", `${WORKLOAD_GATEWAY_V6}%eth0`], { netns });
    const del = await lab.invoke({ ...inv, command: "DEL" });
    assert.equal(del.code, 0, del.stderr);
    await assertClean();
  });

  it("bad configuration is code 7 naming the field; missing variables code 4", async () => {
    const netns = await lab.container();
    const r = await lab.invoke({
      command: "ADD",
      containerID: "x",
      netns,
      ifname: "eth0",
      conf: conf("1.1.0", {}, { mtu: "big" }),
    });
    assert.equal(r.json?.code, 7);
    assert.match(String(r.json?.msg), /mtu/);
    const p = await lab.invoke({
      command: "ADD",
      containerID: "x",
      netns,
      ifname: "eth0",
      conf: conf("1.1.0", { ipv4_pools: "pool4" }),
    });
    assert.equal(p.json?.code, 7);
    assert.match(String(p.json?.msg), /ipam\.ipv4_pools/);
    const e = await lab.invoke({ command: "ADD", containerID: "x", ifname: "eth0", conf: conf("1.1.0") });
    assert.equal(e.json?.code, 4);
    assert.match(String(e.json?.msg), /CNI_NETNS/);
    const d = await lab.invoke({ command: "ADD", containerID: "x", netns, ifname: "eth0", conf: {} });
    assert.equal(d.json?.code, 7);
    await assertClean();
  });

  it("an ADD that fails in the kernel (CNI_IFNAME taken) rolls back; DEL after it succeeds", async () => {
    const netns = await lab.container();
    await runOk("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], { netns });
    const inv: Invocation = {
      command: "ADD",
      containerID: "clash",
      netns,
      ifname: "eth0",
      conf: conf("1.1.0", { assign_ipv6: "true" }),
    };
    const r = await lab.invoke(inv);
    assert.notEqual(r.code, 0);
    assert.equal(r.json?.code, 100);
    assert.match(String(r.json?.msg), /eth0/);
    await assertClean();
    const del = await lab.invoke({ ...inv, command: "DEL" });
    assert.equal(del.code, 0, del.stdout);
    await assertClean();
  });

  it("an exhausted pool fails ADD with code 101 and leaves nothing; STATUS then reports 50", async () => {
    const ipam = { ipv4_pools: ["tiny"] };
    const added: Invocation[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const inv: Invocation = {
          command: "ADD",
          containerID: `tiny${i}`,
          netns: await lab.container(),
          ifname: "eth0",
          conf: conf("1.1.0", ipam),
        };
        const r = await lab.invoke(inv);
        assert.equal(r.code, 0, r.stdout);
        added.push(inv);
      }
      const st = await lab.invoke({ command: "STATUS", conf: conf("1.1.0", ipam) });
      assert.equal(st.json?.code, 50);
      assert.match(String(st.json?.msg), /tiny/);
      const fifth = await lab.invoke({
        command: "ADD",
        containerID: "tiny4",
        netns: await lab.container(),
        ifname: "eth0",
        conf: conf("1.1.0", ipam),
      });
      assert.equal(fifth.json?.code, 101, fifth.stdout);
      assert.equal((await weps()).length, 4);
      assert.equal((await lab.hostCaliLinks()).length, 4);
    } finally {
      for (const inv of added) await lab.invoke({ ...inv, command: "DEL" });
    }
    await assertClean();
    const ok = await lab.invoke({ command: "STATUS", conf: conf("1.1.0", ipam) });
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(ok.stdout, "");
  });

  it("DEL with the netns already gone releases everything", async () => {
    const netns = await lab.container();
    const inv: Invocation = {
      command: "ADD",
      containerID: "gone",
      netns,
      ifname: "eth0",
      conf: conf("1.0.0"),
    };
    assert.equal((await lab.invoke(inv)).code, 0);
    await lab.removeNetns(netns);
    const del = await lab.invoke({ ...inv, command: "DEL" });
    assert.equal(del.code, 0, del.stdout);
    await assertClean();
  });

  it("CHECK notices a removed address (code 102)", async () => {
    const netns = await lab.container();
    const inv: Invocation = {
      command: "ADD",
      containerID: "chk",
      netns,
      ifname: "eth0",
      conf: conf("1.1.0"),
    };
    const add = await lab.invoke(inv);
    const addr = addrsOf(add.json)[0]!;
    await runOk("ip", ["addr", "del", addr, "dev", "eth0"], { netns });
    const chk = await lab.invoke({
      ...inv,
      command: "CHECK",
      conf: { ...conf("1.1.0"), prevResult: add.json },
    });
    assert.equal(chk.json?.code, 102);
    assert.ok(String(chk.json?.msg).includes(addr));
    await lab.invoke({ ...inv, command: "DEL" });
    await assertClean();
  });

  it("GC removes endpoints and allocations not in cni.dev/valid-attachments", async () => {
    const a: Invocation = {
      command: "ADD",
      containerID: "gckeep",
      netns: await lab.container(),
      ifname: "eth0",
      conf: conf("1.1.0"),
    };
    const b: Invocation = {
      command: "ADD",
      containerID: "gcdrop",
      netns: await lab.container(),
      ifname: "eth0",
      conf: conf("1.1.0"),
    };
    assert.equal((await lab.invoke(a)).code, 0);
    assert.equal((await lab.invoke(b)).code, 0);
    const gc = await lab.invoke({
      command: "GC",
      conf: { ...conf("1.1.0"), "cni.dev/valid-attachments": [{ containerID: "gckeep", ifname: "eth0" }] },
    });
    assert.equal(gc.code, 0, gc.stdout);
    assert.deepEqual(await handles(), [`${HANDLE_PREFIX}net1.gckeep`]);
    assert.deepEqual(await weps(), ["cni--node--1-cni-gckeep-eth0"]);
    assert.equal((await lab.hostCaliLinks()).length, 1);
    await lab.invoke({ ...a, command: "DEL" });
    await lab.invoke({ ...b, command: "DEL" });
    await assertClean();
  });

  it("k8s pod identity from CNI_ARGS, labels from args.cni.labels, prevResult kept", async () => {
    const netns = await lab.container();
    const prev = {
      cniVersion: "1.1.0",
      interfaces: [{ name: "x0" }],
      ips: [],
      dns: { nameservers: ["198.18.0.53"] },
    };
    const inv: Invocation = {
      command: "ADD",
      containerID: "pod1",
      netns,
      ifname: "eth0",
      args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1",
      conf: conf(
        "1.1.0",
        {},
        { args: { cni: { labels: [{ key: "app", value: "web" }] } }, prevResult: prev },
      ),
    };
    const add = await lab.invoke(inv);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.equal((add.json!.interfaces as unknown[]).length, 3);
    assert.equal((add.json!.ips as { interface: number }[])[0]!.interface, 2);
    assert.deepEqual(add.json!.dns, { nameservers: ["198.18.0.53"] });
    const wep = await lab.withStore((s) => s.get("WorkloadEndpoint", "cni--node--1-k8s-web--1-eth0", "shop"));
    assert.equal(wep.metadata.labels?.app, "web");
    assert.equal(wep.metadata.labels?.["projectcalico.org/namespace"], "shop");
    assert.deepEqual(wep.spec.profiles, ["kns.shop"]);
    assert.equal(wep.spec.pod, "web-1");
    await lab.invoke({ ...inv, command: "DEL" });
    await assertClean();
  });

  it("calico-ipam alone: ADD returns addresses, CHECK, DEL releases", async () => {
    const inv: Invocation = {
      plugin: "calico-ipam",
      command: "ADD",
      containerID: "ipamonly",
      netns: "/nonexistent",
      ifname: "eth0",
      conf: conf("1.0.0", { assign_ipv6: "true" }),
    };
    const add = await lab.invoke(inv);
    assert.equal(add.code, 0, add.stdout);
    assert.equal((add.json!.ips as unknown[]).length, 2);
    assert.equal(add.json!.interfaces, undefined);
    assert.equal((await lab.invoke({ ...inv, command: "CHECK" })).code, 0);
    assert.equal((await lab.invoke({ ...inv, command: "DEL" })).code, 0);
    assert.equal((await lab.invoke({ ...inv, command: "CHECK" })).json?.code, 102);
    await assertClean();
  });
});
