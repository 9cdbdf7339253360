/** Pure parts of the plugins: result rendering per version, config and env parsing, the sqlite fast path. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendResult, parseResult, renderResult } from "./result.js";
import { parseNetConf } from "./config.js";
import { parseCniArgs, readCniEnv } from "./env.js";
import { absoluteSqlitePath } from "./datastore.js";
import { sqlitePathFromUrl } from "../datastore/open.js";
import { CniError, type CniResult } from "./types.js";

const result: CniResult = {
  interfaces: [
    { name: "cali0123456789a", mac: "ee:ee:ee:ee:ee:ee", mtu: 1400 },
    { name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/run/netns/x" },
  ],
  ips: [
    { address: "198.19.0.5/32", gateway: "169.254.1.1", interface: 1 },
    { address: "fd00:19::5/128", gateway: "fe80::ecee:eeff:feee:eeee", interface: 1 },
  ],
  routes: [
    { dst: "0.0.0.0/0", gw: "169.254.1.1" },
    { dst: "::/0", gw: "fe80::ecee:eeff:feee:eeee" },
  ],
  dns: {},
};

describe("renderResult", () => {
  it("1.1.0 keeps interface mtu, 1.0.0 drops it; neither has ip versions", () => {
    const a = renderResult(result, "1.1.0") as { interfaces: { mtu?: number }[]; ips: object[] };
    assert.equal(a.interfaces[0]!.mtu, 1400);
    const b = renderResult(result, "1.0.0") as { interfaces: { mtu?: number }[]; ips: object[] };
    assert.equal(b.interfaces[0]!.mtu, undefined);
    assert.ok(b.ips.every((i) => !("version" in i)));
  });
  it("0.3.1 and 0.4.0 add version to each ip", () => {
    for (const v of ["0.3.0", "0.3.1", "0.4.0"]) {
      const r = renderResult(result, v) as { ips: { version: string }[] };
      assert.deepEqual(
        r.ips.map((i) => i.version),
        ["4", "6"],
      );
    }
  });
  it("0.2.0 has ip4/ip6 with per-family routes", () => {
    const r = renderResult(result, "0.2.0");
    assert.deepEqual(r.ip4, {
      ip: "198.19.0.5/32",
      gateway: "169.254.1.1",
      routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
    });
    assert.equal((r.ip6 as { ip: string }).ip, "fd00:19::5/128");
  });
  it("every rendering reads back to the same addresses", () => {
    for (const v of ["0.1.0", "0.2.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
      assert.deepEqual(
        parseResult(renderResult(result, v)).ips.map((i) => i.address),
        ["198.19.0.5/32", "fd00:19::5/128"],
        v,
      );
    }
  });
  it("appendResult shifts interface indexes past prevResult's", () => {
    const prev = parseResult({ cniVersion: "1.0.0", interfaces: [{ name: "a" }, { name: "b" }], ips: [] });
    const r = appendResult(prev, result);
    assert.deepEqual(
      r.ips.map((i) => i.interface),
      [3, 3],
    );
    assert.equal(r.interfaces.length, 4);
  });
  it("malformed prevResult is code 6", () => {
    assert.throws(
      () => parseResult({ ips: [{}] }),
      (e: unknown) => e instanceof CniError && e.cniCode === 6,
    );
  });
});

describe("parseNetConf", () => {
  const base = {
    cniVersion: "1.0.0",
    name: "n",
    type: "calico",
    nodename: "h",
    ipam: { type: "calico-ipam" },
  };
  const noFiles = (): undefined => undefined;
  const code = (conf: Record<string, unknown>): number | undefined => {
    try {
      parseNetConf(conf, noFiles);
      return undefined;
    } catch (e) {
      return (e as CniError).cniCode;
    }
  };
  it("defaults: IPv4 only, level warning, no mtu", () => {
    const c = parseNetConf(base, noFiles);
    assert.deepEqual([c.ipam.assignIPv4, c.ipam.assignIPv6, c.logLevel, c.mtu], [true, false, "warning", 0]);
  });
  it("reads Calico's string flags, pools, etcd_endpoints, labels and the nodename file", () => {
    const c = parseNetConf(
      {
        ...base,
        nodename: undefined,
        etcd_endpoints: "http://198.18.0.254:2379,http://198.18.0.253:2379",
        ipam: { type: "calico-ipam", assign_ipv6: "true", ipv6_pools: ["p6"] },
        args: { cni: { labels: [{ key: "app", value: "web" }] } },
      },
      (p) => (p === "/var/lib/calico/nodename" ? "node-7\n" : undefined),
    );
    assert.equal(c.datastore, "etcd://198.18.0.254:2379,198.18.0.253:2379");
    assert.equal(c.nodename, "node-7");
    assert.deepEqual(c.ipam.ipv6Pools, ["p6"]);
    assert.deepEqual(c.labels, { app: "web" });
  });
  it("rejects with the right codes", () => {
    assert.equal(code({ ...base, cniVersion: "2.0.0" }), 1);
    assert.equal(code({ ...base, datastore_type: "kubernetes" }), 2);
    assert.equal(code({ ...base, mtu: 20 }), 7);
    assert.equal(code({ ...base, name: "-x" }), 7);
    assert.equal(code({ ...base, ipam: { type: "calico-ipam", assign_ipv4: "false" } }), 7);
    assert.equal(code({ ...base, ipam: { type: "calico-ipam", assign_ipv4: "yes" } }), 7);
    assert.equal(code({ ...base, log_level: "loud" }), 7);
    assert.equal(code({ ...base, "cni.dev/valid-attachments": [{ containerID: 1 }] }), 7);
  });
});

describe("environment", () => {
  it("parses CNI_ARGS and checks each command's variables", () => {
    assert.deepEqual(parseCniArgs("IgnoreUnknown=1;K8S_POD_NAME=a=b"), {
      IgnoreUnknown: "1",
      K8S_POD_NAME: "a=b",
    });
    assert.throws(() => parseCniArgs("novalue"), /CNI_ARGS/);
    assert.throws(
      () => readCniEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0" }),
      /CNI_NETNS/,
    );
    assert.throws(
      () => readCniEnv({ CNI_COMMAND: "DEL", CNI_CONTAINERID: "c", CNI_IFNAME: "a-very-long-ifname" }),
      /15 bytes/,
    );
    assert.throws(() => readCniEnv({ CNI_COMMAND: "FROB" }), /Unknown CNI_COMMAND/);
    assert.equal(readCniEnv({ CNI_COMMAND: "del", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0" }).netns, "");
  });
});

describe("absoluteSqlitePath", () => {
  it("agrees with the general opener for the forms it takes, and leaves the rest to it", () => {
    for (const url of [
      "sqlite:/var/lib/calico/x.db",
      "sqlite:///var/lib/calico/x.db",
      "sqlite:/a/./b//c.db",
    ]) {
      assert.equal(absoluteSqlitePath(url), sqlitePathFromUrl(url), url);
    }
    for (const url of [
      "sqlite:rel.db",
      "sqlite://localhost/x.db",
      "sqlite:~/x.db",
      "etcd://198.18.0.1:2379",
    ]) {
      assert.equal(absoluteSqlitePath(url), undefined, url);
    }
  });
});
