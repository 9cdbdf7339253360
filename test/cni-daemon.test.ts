/**
 * calico-node's CNI daemon (src/cni/daemon.ts) behind the installed plugin executables
 * (install.ts): invocations are answered by the daemon serving the host namespace, the answers
 * are the ones the plugin gives on its own, and every way the daemon can be missing or fail
 * leaves the runtime with a plugin that still works or a clear "try again later", never a
 * second ADD. Real namespaces, a real calico-node, the real shell scripts and `nc`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CniLab, labResources, type Invocation } from "../src/cni/harness.js";
import { CniDaemon, daemonSocketPath, encodeRequest, netnsInode, WIRE_MAGIC } from "../src/cni/daemon.js";
import { installCni } from "../src/cni/install.js";
import { runOk } from "../src/dataplane/netns.js";
import { HANDLE_PREFIX } from "../src/ipam/block.js";

const NODE = "cnid-node-1";
const NODE_MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "agent", "main.js");
const lab = new CniLab(`ctscnid${process.pid}`);
const lines: string[] = [];
const log = {
  info: (m: string, f?: object) => lines.push(`${m} ${JSON.stringify(f ?? {})}`),
  warn: (m: string, f?: object) => lines.push(`WARN ${m} ${JSON.stringify(f ?? {})}`),
};
let sock: string;
let seq = 0;

const conf = (extra: Record<string, unknown> = {}) => ({
  cniVersion: "1.1.0",
  name: "net1",
  type: "calico",
  nodename: NODE,
  datastore: lab.dbUrl,
  ipam: { type: "calico-ipam", assign_ipv6: "true" },
  ...extra,
});

async function handles(): Promise<string[]> {
  return lab.withStore(async (s) => (await s.datastore.list(HANDLE_PREFIX)).items.map((kv) => kv.key));
}
async function weps(): Promise<string[]> {
  return lab.withStore(async (s) => (await s.list("WorkloadEndpoint")).items.map((w) => w.metadata.name));
}
async function assertClean(): Promise<void> {
  assert.deepEqual(await lab.hostCaliLinks(), [], "no cali interface left");
  assert.deepEqual(await handles(), [], "no IPAM handle left");
  assert.deepEqual(await weps(), [], "no WorkloadEndpoint left");
}

async function attach(extra: Partial<Invocation> = {}) {
  const id = `cnid${seq++}`;
  const netns = await lab.container();
  const base = { containerID: id, netns, ifname: "eth0", conf: conf(), ...extra };
  const add = await lab.invoke({ command: "ADD", ...base });
  return { id, netns, base, add };
}

before(async () => {
  await lab.start(labResources(NODE));
  const bin = join(lab.dir, "bin");
  installCni({
    binDir: bin,
    confDir: join(lab.dir, "net.d"),
    datastore: lab.dbUrl,
    networkName: "net1",
    cniVersion: "1.1.0",
    ipv6: true,
    bundle: false,
  });
  lab.installedBinDir = bin;
  sock = daemonSocketPath(netnsInode(lab.hostNs));
});
after(async () => {
  rmSync(sock, { force: true });
  await lab.close();
});

describe("the CNI daemon behind the installed plugins", () => {
  it("answers ADD, CHECK and DEL (twice) for the host namespace it serves; the workload is reachable", async () => {
    const d = new CniDaemon({ hostNetns: lab.hostNs, log });
    await d.start();
    try {
      assert.equal(d.socketPath, sock);
      const { base, add } = await attach();
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const ips = (add.json?.ips as { address: string }[]).map((i) => i.address.split("/")[0]!);
      assert.equal(ips.length, 2, "an IPv4 and an IPv6 address");
      // IPv4 only: the host end's IPv6 link-local (the workload's gateway) is still in DAD.
      for (const a of ips.filter((x) => !x.includes(":")))
        await runOk("ping", ["-c", "1", "-W", "2", a], { netns: lab.hostNs });
      const check = await lab.invoke({ command: "CHECK", ...base });
      assert.equal(check.code, 0, check.stdout);
      for (let i = 0; i < 2; i++) {
        const del = await lab.invoke({ command: "DEL", ...base });
        assert.equal(del.code, 0, del.stdout);
      }
      assert.equal(d.served, 4, "all four invocations went to the daemon");
      assert.ok(lines.some((l) => l.startsWith("CNI request answered") && l.includes('"command":"ADD"')));
      await assertClean();
    } finally {
      await d.stop();
    }
    assert.equal(existsSync(sock), false, "the socket is removed at stop");
  });

  it("gives the same answer as the plugin run on its own: an error JSON byte for byte, VERSION, a result's shape", async () => {
    const d = new CniDaemon({ hostNetns: lab.hostNs, log });
    await d.start();
    try {
      const netns = await lab.container();
      const cases: Invocation[] = [
        {
          command: "ADD",
          containerID: "x1",
          netns,
          ifname: "eth0",
          conf: { ...conf(), ipam: { type: "host-local" } },
        },
        {
          command: "ADD",
          containerID: "x1",
          netns,
          ifname: "eth0",
          conf: { ...conf(), cniVersion: "9.9.9" },
        },
        { command: "VERSION", conf: { cniVersion: "0.4.0" } },
        { command: "STATUS", conf: conf() },
      ];
      for (const c of cases) {
        const before = d.served;
        const viaDaemon = await lab.invoke(c);
        assert.equal(d.served, before + 1);
        const alone = await lab.invoke({ ...c, env: { CALICO_CNI_NO_DAEMON: "1" } });
        assert.equal(d.served, before + 1, "CALICO_CNI_NO_DAEMON runs the plugin in its own process");
        assert.equal(viaDaemon.code, alone.code, c.command);
        assert.equal(viaDaemon.stdout, alone.stdout, c.command);
      }
      const a = await attach();
      const b = await attach({ env: { CALICO_CNI_NO_DAEMON: "1" } });
      const shape = (j: Record<string, unknown> | undefined) =>
        JSON.stringify(j, (k, v: unknown) =>
          typeof v === "string" && ["address", "mac", "name", "sandbox"].includes(k) ? k : v,
        );
      assert.equal(shape(a.add.json), shape(b.add.json));
      for (const x of [a, b]) assert.equal((await lab.invoke({ command: "DEL", ...x.base })).code, 0);
      await assertClean();
    } finally {
      await d.stop();
    }
  });

  it("20 concurrent ADDs through the daemon get 40 distinct addresses; their DELs leave nothing", async () => {
    const d = new CniDaemon({ hostNetns: lab.hostNs, log });
    await d.start();
    try {
      const runs = await Promise.all(Array.from({ length: 20 }, () => attach()));
      for (const r of runs) assert.equal(r.add.code, 0, r.add.stdout + r.add.stderr);
      const addrs = runs.flatMap((r) => (r.add.json?.ips as { address: string }[]).map((i) => i.address));
      assert.equal(new Set(addrs).size, 40);
      const dels = await Promise.all(runs.map((r) => lab.invoke({ command: "DEL", ...r.base })));
      for (const r of dels) assert.equal(r.code, 0, r.stdout);
      assert.equal(d.served, 40);
      await assertClean();
    } finally {
      await d.stop();
    }
  });

  it("with no daemon, or a socket left by a killed one, the plugin runs in its own process", async () => {
    assert.equal(existsSync(sock), false);
    const plain = await attach();
    assert.equal(plain.add.code, 0, plain.add.stdout + plain.add.stderr);
    assert.equal((await lab.invoke({ command: "DEL", ...plain.base })).code, 0);
    // A listener killed with SIGKILL leaves its socket file behind: connecting is refused.
    const nc = spawn("nc", ["-lU", sock], { stdio: "ignore" });
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
    nc.kill("SIGKILL");
    await new Promise((r) => nc.once("exit", r));
    assert.ok(existsSync(sock), "the stale socket is there");
    const stale = await attach();
    assert.equal(stale.add.code, 0, stale.add.stdout + stale.add.stderr);
    assert.equal((await lab.invoke({ command: "DEL", ...stale.base })).code, 0);
    rmSync(sock, { force: true });
    await assertClean();
  });

  it("a daemon that stops mid-request gets 'try again later' (code 11), and the ADD is not run a second time", async () => {
    const fake = createServer({ allowHalfOpen: true }, (s) => {
      s.write(`${WIRE_MAGIC}\n`);
      s.on("data", () => undefined);
      s.on("end", () => s.destroy());
    });
    await new Promise<void>((r) => fake.listen(sock, r));
    try {
      const { add } = await attach();
      assert.equal(add.code, 1);
      assert.equal((add.json as { code?: number }).code, 11, add.stdout);
      assert.match(String(add.json?.msg), /stopped answering/);
      await assertClean();
    } finally {
      await new Promise((r) => fake.close(r));
    }
  });

  it("a malformed request gets the spec's error JSON and the daemon goes on serving", async () => {
    const d = new CniDaemon({ hostNetns: lab.hostNs, log });
    await d.start();
    const ask = (payload: Buffer) =>
      new Promise<string>((resolve, reject) => {
        const c = connect(sock);
        let out = "";
        c.on("data", (b) => (out += String(b)));
        c.on("end", () => resolve(out));
        c.on("error", reject);
        c.end(payload);
      });
    try {
      const bad = await ask(Buffer.from("GET / HTTP/1.1\r\n\r\n"));
      const [greeting, code, body] = bad.split("\n");
      assert.equal(greeting, WIRE_MAGIC);
      assert.equal(code, "1");
      const err = JSON.parse(body!) as { code: number; msg: string };
      assert.equal(err.code, 7);
      assert.match(err.msg, /not "calico-ts-cni\/1"/);
      const huge = await ask(Buffer.alloc(2 << 20, 0x41));
      assert.match(huge, /request larger than/);
      const ok = await ask(encodeRequest({ plugin: "calico", env: { CNI_COMMAND: "VERSION" }, stdin: "{}" }));
      assert.match(ok, /^calico-ts-cni\/1\n0\n\{"cniVersion"/);
    } finally {
      await d.stop();
    }
  });

  it("calico-node serves the plugins of its host namespace from start to SIGTERM", async () => {
    const statusFile = join(lab.dir, "node-status.json");
    const child: ChildProcess = spawn(
      process.execPath,
      [
        NODE_MAIN,
        "--datastore",
        lab.dbUrl,
        "--nodename",
        NODE,
        "--netns",
        lab.hostNs,
        "--no-bgp",
        "--status-file",
        statusFile,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout!.on("data", (b) => (out += String(b)));
    child.stderr!.on("data", (b) => (out += String(b)));
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    try {
      for (let i = 0; i < 300 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(existsSync(sock), `calico-node listens on ${sock}: ${out.slice(-2000)}`);
      const { id, base, add } = await attach();
      assert.equal(add.code, 0, add.stdout + add.stderr);
      assert.ok(out.includes(`"containerID":"${id}"`), `calico-node answered the ADD: ${out.slice(-2000)}`);
      assert.equal((await lab.invoke({ command: "DEL", ...base })).code, 0);
      // Churn: each DEL right behind its ADD, so calico-node often programs an endpoint whose
      // veth is already gone (or removes routes the kernel dropped with it). That is no
      // dataplane failure: five in a row used to make calico-node give up and exit.
      for (let i = 0; i < 20; i++) {
        const c = await attach();
        assert.equal(c.add.code, 0, c.add.stdout + c.add.stderr);
        assert.equal((await lab.invoke({ command: "DEL", ...c.base })).code, 0);
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, `calico-node still runs: ${out.slice(-2000)}`);
      assert.doesNotMatch(out, /Dataplane apply failed|Giving up/);
      await assertClean();
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
    assert.equal(existsSync(sock), false, "calico-node removed its socket on SIGTERM");
  });
});
