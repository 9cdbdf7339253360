/**
 * `calicoctl lab` end to end on the real kernel, through the built executable (so the lab's
 * processes must outlive the command that started them): up with 2 hosts, status (hosts ready,
 * BGP mesh Established, workloads with pool addresses), the connectivity matrix measured with
 * real packets against the demo policy (cross-host paths allowed and denied), exec in a
 * workload's namespace, add-workload and del-workload through the CNI plugin, and down leaving
 * no namespace, process or file; then down after the lab's processes and `lab up` itself were
 * killed with SIGKILL half-way. Every lab here has its own name (namespace prefix) and state
 * directory, so it never meets a user's lab or another test's.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { run as runCmd } from "../src/dataplane/netns.js";
import { fileURLToPath } from "node:url";
import type { LabStatus } from "../src/lab/lab.js";
import { BIG_TCP_SIZE, readLinkPacketSizes } from "../src/dataplane/big-tcp.js";
import type { LabState } from "../src/lab/lab-state.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const tag = process.pid.toString(36);
const root = mkdtempSync(join(tmpdir(), "cts-labtest-"));
const labs: { name: string; dir: string }[] = [];

function newLab(suffix: string): { name: string; dir: string; flags: string[] } {
  const name = `t${tag}${suffix}`.slice(0, 12);
  const dir = join(root, name);
  labs.push({ name, dir });
  return { name, dir, flags: ["--name", name, "--state-dir", dir] };
}

interface Run {
  code: number;
  out: string;
  err: string;
}

function cli(
  args: string[],
  timeoutMs = 120_000,
  env: NodeJS.ProcessEnv = {},
  input?: string,
): Promise<Run> & { pid: number | undefined } {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  child.stdin.on("error", () => undefined);
  child.stdin.end(input);
  const p = new Promise<Run>((resolve) => {
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, sig) => {
      clearTimeout(t);
      resolve({ code: code ?? (sig !== null ? 128 : 1), out, err });
    });
  });
  return Object.assign(p, { pid: child.pid });
}

const netnsWith = (prefix: string): string[] => {
  try {
    return readdirSync("/run/netns").filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
};

/** PIDs whose command line names `dir` (every lab process carries its state directory). */
function processesWith(dir: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ").includes(dir)) pids.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return pids.filter((p) => p !== process.pid);
}

async function assertGone(name: string, dir: string): Promise<void> {
  // netns removal is asynchronous in the kernel, the names go at once; processes may take a moment to be reaped.
  const deadline = Date.now() + 5000;
  while (processesWith(dir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(netnsWith(`cts${name}-`), [], "no namespace left");
  assert.deepEqual(processesWith(dir), [], "no process left");
  assert.equal(existsSync(dir), false, "state directory removed");
}

const main = newLab("a");
let status: LabStatus;

before(async () => {
  const up = await cli(["lab", "up", "--nodes", "2", ...main.flags]);
  assert.equal(up.code, 0, `lab up failed:\n${up.out}\n${up.err}`);
  assert.match(up.out, /Connectivity, IPv4 TCP port 80/);
  assert.match(up.out, /Try next:/);
  assert.doesNotMatch(up.out, /differs from the demo policy/, up.out);
});

after(async () => {
  for (const l of labs) await cli(["lab", "down", "--name", l.name, "--state-dir", l.dir]);
  rmSync(root, { recursive: true, force: true });
});

test("lab status -o json: 2 hosts ready with their mesh session Established, demo workloads with pool addresses", async () => {
  const r = await cli(["lab", "status", "-o", "json", "--no-probe", ...main.flags]);
  assert.equal(r.code, 0, r.err);
  status = JSON.parse(r.out) as LabStatus;
  assert.equal(status.phase, "up");
  assert.deepEqual(status.apiserver, { url: "http://198.18.0.254:5473", state: "running" });
  assert.deepEqual(
    status.hosts.map((h) => [h.name, h.v4, h.agent, h.ready]),
    [
      ["h1", "198.18.0.1", "running", true],
      ["h2", "198.18.0.2", "running", true],
    ],
  );
  assert.deepEqual(
    status.hosts.map((h) => h.bgp.map((p) => `${p.peer} ${p.state}`)),
    [["198.18.0.2 Established"], ["198.18.0.1 Established"]],
  );
  assert.deepEqual(
    status.workloads.map((w) => [w.name, w.host, w.probe]),
    [
      ["frontend", "h1", "running"],
      ["backend", "h2", "running"],
      ["db", "h1", "running"],
      ["client", "h2", "running"],
    ],
  );
  for (const w of status.workloads) {
    assert.equal(w.ipv4.length, 1);
    assert.match(w.ipv4[0]!, /^198\.19\.\d+\.\d+$/);
    assert.match(w.iface, /^cali[0-9a-f]{11}$/);
  }
  // BIG TCP (Linux ≥ 6.3): every hop of the lab takes 192 KiB packets, the workloads' veths
  // (set by the CNI plugin, both ends) included.
  assert.equal(status.bigTcp, true, "this kernel supports BIG TCP for IPv4");
  const sizesOf = async (netns: string, names: string[]) =>
    ((await readLinkPacketSizes(netns, names)) ?? []).map((s, i) => [names[i], s?.gsoIPv4]);
  const fe = status.workloads.find((w) => w.name === "frontend")!;
  assert.deepEqual(
    [
      ...(await sizesOf(`cts${main.name}-h1`, ["eth0", fe.iface])),
      ...(await sizesOf(`cts${main.name}-w-frontend`, ["eth0"])),
      ...(await sizesOf(`cts${main.name}-fab`, ["p1", "p2"])),
    ],
    [
      ["eth0", BIG_TCP_SIZE],
      [fe.iface, BIG_TCP_SIZE],
      ["eth0", BIG_TCP_SIZE],
      ["p1", BIG_TCP_SIZE],
      ["p2", BIG_TCP_SIZE],
    ],
  );
});

test("the matrix, measured with real packets, follows the demo policy across hosts", async () => {
  const r = await cli(["lab", "status", "-o", "json", ...main.flags]);
  assert.equal(r.code, 0, r.err);
  const st = JSON.parse(r.out) as LabStatus;
  const m = st.matrices.find((x) => x.family === 4)!;
  const got = (from: string, to: string) => m.cells.find((c) => c.from === from && c.to === to)!;
  // frontend (h1) → backend (h2): allowed by backend-from-frontend, answered by backend itself.
  assert.deepEqual([got("frontend", "backend").ok, got("frontend", "backend").detail], [true, "backend"]);
  // client (h2) → backend (h2), frontend (h1) → db (h1): denied.
  assert.equal(got("client", "backend").ok, false);
  assert.equal(got("frontend", "db").ok, false);
  // backend (h2) → db (h1): allowed; anyone → client.
  assert.equal(got("backend", "db").ok, true);
  assert.equal(got("db", "client").ok, true);
  for (const c of m.cells) assert.equal(c.ok, c.expected, `${c.from} → ${c.to}: ${c.detail}`);
});

test("lab exec runs a command in the workload's namespace; a cross-host ping works", async () => {
  const fe = status.workloads.find((w) => w.name === "frontend")!;
  const client = status.workloads.find((w) => w.name === "client")!;
  const r = await cli([
    "lab",
    "exec",
    ...main.flags,
    "frontend",
    "--",
    "ip",
    "-4",
    "-o",
    "addr",
    "show",
    "dev",
    "eth0",
  ]);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.includes(`${fe.ipv4[0]}/32`), r.out);
  const ping = await cli([
    "lab",
    "exec",
    ...main.flags,
    "frontend",
    "--",
    "ping",
    "-c",
    "1",
    "-W",
    "3",
    client.ipv4[0]!,
  ]);
  assert.equal(ping.code, 0, ping.out + ping.err);
  const bad = await cli(["lab", "exec", ...main.flags, "nosuch", "--", "true"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /No workload or host "nosuch"/);
  // calico-apiserver, reached from a host namespace, serves the lab's datastore.
  const api = await cli([
    "lab",
    "exec",
    ...main.flags,
    "h1",
    "--",
    process.execPath,
    CLI,
    "--datastore",
    "http://198.18.0.254:5473",
    "get",
    "workloadendpoints",
    "-A",
  ]);
  assert.equal(api.code, 0, api.err);
  assert.match(api.out, /demo +frontend +h1 +198\.19\./);
  const fails = await cli(["lab", "exec", ...main.flags, "frontend", "--", "false"]);
  assert.equal(fails.code, 1);
});

test("lab exec exits with the command's status and passes stdin, stdout and stderr through", async () => {
  const three = await cli(["lab", "exec", ...main.flags, "frontend", "--", "sh", "-c", "exit 3"]);
  assert.equal(three.code, 3, three.err);
  assert.equal(three.err, "", "the command's status is no calicoctl error");
  const io = await cli(
    ["lab", "exec", ...main.flags, "frontend", "--", "sh", "-c", "cat; echo oops >&2; exit 5"],
    120_000,
    {},
    "no newline at the end",
  );
  assert.deepEqual(io, { code: 5, out: "no newline at the end", err: "oops\n" });
  const killed = await cli(["lab", "exec", ...main.flags, "frontend", "--", "sh", "-c", "kill -KILL $$"]);
  assert.equal(killed.code, 128 + 9);
});

test("add-workload attaches through the CNI plugin with labels (the policy applies to it); del-workload removes it", async () => {
  // Two at once (and a third on h2): the lab's lock keeps every state update.
  const [add, add2] = await Promise.all([
    cli(["lab", "add-workload", ...main.flags, "h1", "extra", "--labels", "app=frontend,team=x"]),
    cli(["lab", "add-workload", ...main.flags, "h2", "extra2", "--labels", "app=other"]),
  ]);
  assert.equal(add.code, 0, add.out + add.err);
  assert.equal(add2.code, 0, add2.out + add2.err);
  assert.match(add.out, /^Workload extra on h1: 198\.19\.\d+\.\d+ \(interface cali[0-9a-f]{11}\)/);
  assert.ok(
    existsSync(`/run/netns/cts${main.name}-w-extra`) && existsSync(`/run/netns/cts${main.name}-w-extra2`),
  );
  const r = await cli(["lab", "status", "-o", "json", ...main.flags]);
  const st = JSON.parse(r.out) as LabStatus;
  const w = st.workloads.find((x) => x.name === "extra")!;
  assert.ok(
    st.workloads.some((x) => x.name === "extra2"),
    "both concurrent adds recorded",
  );
  assert.deepEqual(w.labels, { app: "frontend", team: "x" });
  const m = st.matrices[0]!;
  const cell = (from: string, to: string) => m.cells.find((c) => c.from === from && c.to === to)!;
  // app=frontend on h1 may reach backend on h2, not db.
  assert.equal(cell("extra", "backend").ok, true, cell("extra", "backend").detail);
  assert.equal(
    cell("extra", "db").ok,
    false,
    `${cell("extra", "db").detail}; workloads: ${JSON.stringify(st.workloads.map((x) => [x.name, x.host, x.ipv4]))}`,
  );
  const weps = await cli([
    "--datastore",
    `sqlite:${main.dir}/calico.db`,
    "get",
    "workloadendpoints",
    "-A",
    "-o",
    "json",
  ]);
  assert.ok(weps.out.includes("h1-k8s-extra-eth0"), weps.out);
  const dup = await cli(["lab", "add-workload", ...main.flags, "h2", "extra"]);
  assert.notEqual(dup.code, 0);
  assert.match(dup.err, /already exists/);

  // The probes left flows of extra's address in h1's conntrack table.
  const extraIp = w.ipv4[0]!;
  const flowsOf = async (ip: string): Promise<string[]> =>
    (await runCmd("conntrack", ["-L", "-f", "ipv4"], { netns: `cts${main.name}-h1` })).stdout
      .split("\n")
      .filter((l) => l.includes(`=${ip} `));
  assert.ok((await flowsOf(extraIp)).length > 0, "the probes' flows are tracked");
  const [del, del2] = await Promise.all([
    cli(["lab", "del-workload", ...main.flags, "extra"]),
    cli(["lab", "del-workload", ...main.flags, "extra2"]),
  ]);
  assert.equal(del.code, 0, del.err);
  assert.equal(del2.code, 0, del2.err);
  // calico-node deletes the flows of a workload that went (Felix does too), so a workload given
  // the address next does not inherit them.
  let left = await flowsOf(extraIp);
  for (let i = 0; i < 50 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = await flowsOf(extraIp);
  }
  assert.deepEqual(left, [], "no flow of the deleted workload's address is left");
  assert.deepEqual(netnsWith(`cts${main.name}-w-extra`), []);
  const after = JSON.parse(
    (await cli(["lab", "status", "-o", "json", "--no-probe", ...main.flags])).out,
  ) as LabStatus;
  assert.equal(
    after.workloads.some((x) => x.name === "extra" || x.name === "extra2"),
    false,
  );
  const weps2 = await cli([
    "--datastore",
    `sqlite:${main.dir}/calico.db`,
    "get",
    "workloadendpoints",
    "-A",
    "-o",
    "json",
  ]);
  assert.ok(!weps2.out.includes("h1-k8s-extra-eth0"), "its WorkloadEndpoint is gone");
});

test("lab down removes every namespace, process and file; a second down is a no-op", async () => {
  const down = await cli(["lab", "down", ...main.flags]);
  assert.equal(down.code, 0, down.err);
  assert.match(down.out, /removed: \d+ namespaces, \d+ processes/);
  await assertGone(main.name, main.dir);
  const again = await cli(["lab", "down", ...main.flags]);
  assert.equal(again.code, 0);
  assert.match(again.out, /nothing to remove/);
});

test("lab down after SIGKILL of lab up half-way and of every lab process leaves nothing", async () => {
  const l = newLab("k");
  const up = cli(["lab", "up", "--nodes", "2", ...l.flags]);
  // Wait until the agents run (recorded in the state file), then kill lab up itself.
  const deadline = Date.now() + 60_000;
  let state: LabState | undefined;
  for (;;) {
    try {
      state = JSON.parse(readFileSync(join(l.dir, "state.json"), "utf8")) as LabState;
    } catch {
      state = undefined;
    }
    if ((state?.processes.length ?? 0) >= 2) break;
    assert.ok(Date.now() < deadline, "lab up never started its agents");
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(up.pid!, "SIGKILL");
  await up;
  // Now the processes it left: SIGKILL each (a crash of the whole lab).
  await new Promise((r) => setTimeout(r, 500));
  const left = processesWith(l.dir);
  assert.ok(left.length >= 2, `agents outlive lab up: ${left.length}`);
  for (const pid of left) process.kill(pid, "SIGKILL");
  assert.ok(netnsWith(`cts${l.name}-`).length >= 3, "the namespaces are still there");
  const down = await cli(["lab", "down", ...l.flags]);
  assert.equal(down.code, 0, down.err);
  await assertGone(l.name, l.dir);
  // A new lab of the same name comes up cleanly afterwards (nothing stale in the way), with a
  // real etcd in its fabric namespace this time; down stops etcd too.
  const again = await cli(["lab", "up", "--nodes", "1", "--no-demo", "--datastore", "etcd", ...l.flags]);
  assert.equal(again.code, 0, again.out + again.err);
  assert.match(again.out, /datastore etcd:\/\/198\.18\.0\.254:2379/);
  assert.equal((await cli(["lab", "down", ...l.flags])).code, 0);
  await assertGone(l.name, l.dir);
});

test("lab up --tor: mesh off, every host peers with a BIRD ToR that reflects the blocks; a plain host behind it reaches workloads by routed IP", async () => {
  const l = newLab("t");
  const up = await cli(["lab", "up", "--nodes", "2", "--tor", ...l.flags]);
  assert.equal(up.code, 0, up.out + up.err);
  assert.doesNotMatch(up.out, /differs from the demo policy/, up.out);
  const st = JSON.parse((await cli(["lab", "status", "-o", "json", ...l.flags])).out) as LabStatus;
  // Each host has exactly one session: the ToR (no mesh).
  assert.deepEqual(
    st.hosts.map((h) => h.bgp.map((p) => `${p.peer} ${p.type} ${p.state}`)),
    [["198.18.0.253 global Established"], ["198.18.0.253 global Established"]],
  );
  assert.equal(st.tor?.bird, "running");
  assert.deepEqual(
    st.tor?.sessions.map((p) => `${p.name} ${p.state} ${p.info}`),
    ["h1 up Established", "h2 up Established"],
  );
  // The ToR's kernel routes each host's block via that host, learned from BIRD.
  const torRoutes = await cli([
    "lab",
    "exec",
    ...l.flags,
    "tor",
    "--",
    "ip",
    "-4",
    "route",
    "show",
    "proto",
    "bird",
  ]);
  for (const w of st.workloads) {
    const host = st.hosts.find((h) => h.name === w.host)!;
    assert.ok(
      torRoutes.out.split("\n").some((r) => r.includes(` via ${host.v4} `)),
      `a block via ${host.v4}: ${torRoutes.out}`,
    );
  }
  // The plain host: reaches frontend and client (any source allowed), not backend or db (policy).
  const m = st.matrices.find((x) => x.family === 4)!;
  const cell = (from: string, to: string) => m.cells.find((c) => c.from === from && c.to === to)!;
  assert.deepEqual(
    ["frontend", "client", "backend", "db"].map((to) => cell("ext", to).ok),
    [true, true, false, false],
  );
  assert.equal(cell("frontend", "ext").ok, true);
  assert.equal(cell("ext", "frontend").detail, "frontend");
  const ping = await cli([
    "lab",
    "exec",
    ...l.flags,
    "ext",
    "--",
    "ping",
    "-c",
    "1",
    "-W",
    "3",
    st.workloads[0]!.ipv4[0]!,
  ]);
  assert.equal(ping.code, 0, ping.out + ping.err);
  assert.equal((await cli(["lab", "down", ...l.flags])).code, 0);
  await assertGone(l.name, l.dir);
});

test("a lab up that fails half-way (etcd does not start) removes what it made and says why", async () => {
  const l = newLab("f");
  const up = await cli(["lab", "up", "--nodes", "2", "--datastore", "etcd", ...l.flags], 120_000, {
    ETCD_BIN: "/bin/false",
  });
  assert.notEqual(up.code, 0);
  assert.match(up.err, /etcd did not become healthy/);
  await assertGone(l.name, l.dir);
  const bad = await cli(["lab", "up", "--nodes", "0", ...l.flags]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--nodes must be 1-200/);
  await assertGone(l.name, l.dir);
});
