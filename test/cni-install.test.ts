/**
 * `calicoctl cni install` into temp directories: the wrappers are executable and answer VERSION,
 * and the conflist's calico entry, as a runtime would hand it over, attaches a container
 * through the installed `calico` executable.
 */
import { BIG_TCP_SIZE, readLinkPacketSizes } from "../src/dataplane/big-tcp.js";
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../src/cli/cli.js";
import { CniLab, labResources } from "../src/cni/harness.js";
import { runOk } from "../src/dataplane/netns.js";

const lab = new CniLab(`ctscnii${process.pid}`);
before(async () => {
  await lab.start(labResources("inst-node"));
});
after(async () => {
  await lab.close();
});

it("installs both plugins and a conflist that works", async () => {
  const out: string[] = [];
  const binDir = join(lab.dir, "bin");
  const confDir = join(lab.dir, "net.d");
  const code = await runCli(
    [
      "cni",
      "install",
      "--bin-dir",
      binDir,
      "--conf-dir",
      confDir,
      "--datastore",
      lab.dbUrl,
      "--nodename",
      "inst-node",
      "--ipv6",
      "--big-tcp",
    ],
    { io: { stdout: (s) => out.push(s), stderr: (s) => out.push(s), readStdin: () => Promise.resolve("") } },
  );
  assert.equal(code, 0, out.join(""));
  for (const name of ["calico", "calico-ipam"]) {
    assert.ok((statSync(join(binDir, name)).mode & 0o111) !== 0, `${name} is executable`);
    const v = execFileSync(join(binDir, name), {
      env: { CNI_COMMAND: "VERSION", PATH: process.env.PATH },
      input: "",
    });
    assert.ok(
      (JSON.parse(v.toString()) as { supportedVersions: string[] }).supportedVersions.includes("1.1.0"),
    );
  }
  const list = JSON.parse(readFileSync(join(confDir, "10-calico.conflist"), "utf8")) as {
    name: string;
    cniVersion: string;
    plugins: Record<string, unknown>[];
  };
  assert.equal(list.name, "k8s-pod-network");
  assert.deepEqual(list.plugins[0]?.ipam, { type: "calico-ipam", assign_ipv4: "true", assign_ipv6: "true" });
  assert.equal(list.plugins[0]?.big_tcp, true);
  // What a runtime sends: the plugin entry with the list's name and cniVersion.
  const netconf = { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion };
  const netns = await lab.container();
  const wrapper = join(binDir, "calico");
  const env = {
    PATH: process.env.PATH,
    CNI_CONTAINERID: "inst1",
    CNI_NETNS: netns,
    CNI_IFNAME: "eth0",
    CNI_PATH: binDir,
  };
  const add = await runOk(
    "nsenter",
    [
      `--net=/run/netns/${lab.hostNs}`,
      "--",
      "env",
      ...Object.entries({ ...env, CNI_COMMAND: "ADD" }).map(([k, v]) => `${k}=${v}`),
      wrapper,
    ],
    {
      input: JSON.stringify(netconf),
    },
  );
  const result = JSON.parse(add) as { ips: { address: string }[]; interfaces: { name: string }[] };
  assert.equal(result.ips.length, 2);
  // The installed (bundled) plugin set BIG TCP through rtnetlink on the host end.
  const [hostEnd] = (await readLinkPacketSizes(lab.hostNs, [result.interfaces[0]!.name]))!;
  assert.equal(hostEnd?.gsoIPv4, BIG_TCP_SIZE);
  await runOk(
    "nsenter",
    [
      `--net=/run/netns/${lab.hostNs}`,
      "--",
      "env",
      ...Object.entries({ ...env, CNI_COMMAND: "DEL" }).map(([k, v]) => `${k}=${v}`),
      wrapper,
    ],
    {
      input: JSON.stringify(netconf),
    },
  );
  assert.deepEqual(await lab.hostCaliLinks(), []);
});
