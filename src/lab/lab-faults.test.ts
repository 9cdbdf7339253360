import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CalicoError } from "../errors.js";
import { labKillAgent, labRestartAgent, labStartDatastore, labStopDatastore } from "./lab-faults.js";
import { isOurs } from "./lab-procs.js";
import {
  LAB_STATE_VERSION,
  labLocation,
  readLabState,
  writeLabState,
  type LabLocation,
  type LabState,
} from "./lab-state.js";

/** A process that stays until killed, with `marker` on its command line (or not). */
function sleeper(marker?: string): ChildProcess {
  return spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", ...(marker ? [marker] : [])], {
    stdio: "ignore",
  });
}

const exited = (c: ChildProcess): Promise<void> =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => c.once("exit", () => r()));

/** A lab state with one host h1 (its namespace absent) whose agent is `agentPid`. */
function fakeLab(kind: "sqlite" | "etcd", agentPid?: number): LabLocation {
  const dir = mkdtempSync(join(tmpdir(), "cts-labfaults-"));
  const loc = labLocation("faultsut", dir);
  const s: LabState = {
    version: LAB_STATE_VERSION,
    name: loc.name,
    prefix: loc.prefix,
    stateDir: dir,
    createdAt: new Date().toISOString(),
    phase: "up",
    datastore: { kind, url: kind === "etcd" ? "etcd://198.18.0.254:2379" : `sqlite:${dir}/calico.db` },
    ipv6: false,
    fabricNetns: `${loc.prefix}fab`,
    hosts: [
      {
        name: "h1",
        netns: `${loc.prefix}h1-absent`,
        v4: "198.18.0.1",
        v6: undefined,
        statusFile: join(dir, "h1-status.json"),
        log: join(dir, "h1.log"),
        pid: agentPid,
      },
    ],
    workloads: [],
    netns: [],
    processes: agentPid !== undefined ? [{ pid: agentPid, role: "calico-node h1", marker: dir }] : [],
  };
  writeLabState(s);
  return loc;
}

const code = (c: string) => (e: unknown) => e instanceof CalicoError && e.code === c;

/** Record `c` as h1's calico-node in the lab's state. */
function recordAgent(loc: LabLocation, c: ChildProcess): void {
  const s = readLabState(loc)!;
  s.hosts[0]!.pid = c.pid;
  s.processes.push({ pid: c.pid!, role: "calico-node h1", marker: loc.stateDir });
  writeLabState(s);
}

test("labKillAgent SIGKILLs the recorded agent and forgets it; again is a no-op", async () => {
  const loc = fakeLab("sqlite");
  const agent = sleeper(loc.stateDir);
  try {
    recordAgent(loc, agent);
    await labKillAgent(loc, "h1");
    await exited(agent);
    assert.equal(agent.signalCode, "SIGKILL");
    assert.deepEqual(readLabState(loc)!.processes, [], "the dead agent's record is dropped");
    await labKillAgent(loc, "h1");
    await assert.rejects(labKillAgent(loc, "h9"), code("LAB_NO_SUCH_HOST"));
  } finally {
    agent.kill("SIGKILL");
    rmSync(loc.stateDir, { recursive: true, force: true });
  }
});

test("labKillAgent never signals a PID whose command line lacks the lab's marker (reused PID)", async () => {
  const stranger = sleeper();
  try {
    const loc = fakeLab("sqlite", stranger.pid);
    await labKillAgent(loc, "h1");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(stranger.exitCode, null);
    assert.equal(stranger.signalCode, null, "the stranger is alive");
    rmSync(loc.stateDir, { recursive: true, force: true });
  } finally {
    stranger.kill("SIGKILL");
  }
});

test("labRestartAgent refuses while the agent runs, and when the host's namespace is gone", async () => {
  const loc0 = fakeLab("sqlite");
  const agent = sleeper(loc0.stateDir);
  try {
    recordAgent(loc0, agent);
    await assert.rejects(labRestartAgent(loc0, "h1"), code("LAB_AGENT_RUNNING"));
    agent.kill("SIGKILL");
    await exited(agent);
    await assert.rejects(labRestartAgent(loc0, "h1"), code("LAB_HOST_GONE"));
  } finally {
    agent.kill("SIGKILL");
    rmSync(loc0.stateDir, { recursive: true, force: true });
  }
});

test("labStopDatastore stops the lab's etcd and forgets it; only etcd labs have one", async () => {
  const sq = fakeLab("sqlite");
  await assert.rejects(labStopDatastore(sq), code("LAB_BAD_OPTION"));
  await assert.rejects(labStartDatastore(sq), code("LAB_BAD_OPTION"));
  rmSync(sq.stateDir, { recursive: true, force: true });

  const loc = fakeLab("etcd");
  const etcd = sleeper(loc.stateDir);
  try {
    const s = readLabState(loc)!;
    s.processes.push({ pid: etcd.pid!, role: "etcd", marker: loc.stateDir });
    writeLabState(s);
    assert.ok(isOurs(s.processes[0]!));
    await assert.rejects(labStartDatastore(loc), code("LAB_ETCD_RUNNING"));
    await labStopDatastore(loc);
    await exited(etcd);
    assert.equal(etcd.signalCode, "SIGTERM", "a stop, not a crash");
    assert.deepEqual(readLabState(loc)!.processes, []);
  } finally {
    etcd.kill("SIGKILL");
    rmSync(loc.stateDir, { recursive: true, force: true });
  }
});
