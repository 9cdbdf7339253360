/**
 * Faults on a running lab, for the end-to-end fault scenarios (issue 8) and for trying things by
 * hand: kill a host's calico-node and start it again exactly as `lab up` did, make a host die
 * (its processes killed, its namespace gone), stop and start the lab's etcd.
 *
 * Every change to the lab goes through the state file under the lab's lock, like `lab up` and
 * the workload commands, so `lab down` still finds everything (a restarted agent or etcd is
 * recorded before it is waited for). Signals go only to recorded PIDs whose command line still
 * carries the lab's marker (lab-procs.ts).
 */
import { existsSync } from "node:fs";
import { run } from "../dataplane/netns.js";
import { CalicoError } from "../errors.js";
import { startAgent, startEtcd } from "./lab.js";
import { isOurs, stopProcesses } from "./lab-procs.js";
import {
  requireLabState,
  withLabLock,
  writeLabState,
  type LabHost,
  type LabLocation,
  type LabProcess,
  type LabState,
} from "./lab-state.js";

function findHost(s: LabState, name: string): LabHost {
  const h = s.hosts.find((x) => x.name === name);
  if (h === undefined)
    throw new CalicoError(
      "LAB_NO_SUCH_HOST",
      `No host "${name}" in lab "${s.name}"; hosts: ${s.hosts.map((x) => x.name).join(", ")}`,
    );
  return h;
}

const agentProcess = (s: LabState, h: LabHost): LabProcess | undefined =>
  h.pid === undefined ? undefined : { pid: h.pid, role: `calico-node ${h.name}`, marker: s.stateDir };

/** SIGKILL `p` if it is still ours (never a reused PID); resolves once it is gone (≤ 5 s). */
async function kill(p: LabProcess): Promise<void> {
  if (!isOurs(p)) return;
  try {
    process.kill(p.pid, "SIGKILL");
  } catch {
    return; // gone meanwhile
  }
  const deadline = Date.now() + 5000;
  while (isOurs(p) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** Forget the records of processes that are gone (so a restart does not pile them up). */
function dropDead(s: LabState, pids: readonly number[]): void {
  s.processes = s.processes.filter((p) => !pids.includes(p.pid) || isOurs(p));
}

/**
 * SIGKILL `host`'s calico-node, as a crash or the OOM killer would: nothing is cleaned up, its
 * BGP sessions end without a NOTIFICATION (the kernel closes the sockets), so peers that
 * negotiated graceful restart keep its routes. Resolves once the process is gone; a no-op when
 * it is not running.
 */
export async function labKillAgent(loc: LabLocation, host: string): Promise<void> {
  await withLabLock(loc, async () => {
    const s = requireLabState(loc);
    const h = findHost(s, host);
    const p = agentProcess(s, h);
    if (p === undefined || !isOurs(p)) return;
    await kill(p);
    if (isOurs(p))
      throw new CalicoError("LAB_AGENT_STUCK", `calico-node on ${h.name} (pid ${p.pid}) survived SIGKILL`);
    dropDead(s, [p.pid]);
    writeLabState(s);
  });
}

/**
 * Start `host`'s calico-node again with the command line `lab up` used (same datastore,
 * addresses, status file and log, which it appends to). Its old status file is removed first, so
 * a caller waiting for `ready` sees the new process. Refuses while the old one still runs.
 */
export async function labRestartAgent(loc: LabLocation, host: string): Promise<void> {
  await withLabLock(loc, () => {
    const s = requireLabState(loc);
    const h = findHost(s, host);
    const p = agentProcess(s, h);
    if (p !== undefined && isOurs(p))
      throw new CalicoError(
        "LAB_AGENT_RUNNING",
        `calico-node on ${h.name} is still running (pid ${p.pid}); kill it first`,
      );
    if (!existsSync(`/run/netns/${h.netns}`))
      throw new CalicoError("LAB_HOST_GONE", `Host ${h.name} is gone (no namespace ${h.netns})`);
    startAgent(s, h);
    return Promise.resolve();
  });
}

/**
 * The host dies: everything running in its namespace is SIGKILLed (calico-node first: its BGP
 * sessions drop without a NOTIFICATION, as when a machine loses power after its TCP stack said
 * goodbye), then the namespace is deleted, taking its uplink and its workloads' veths with it.
 * Its Node resource and its workloads' records stay, as they would in a cluster until someone
 * removes them; `lab down` still cleans up the workloads' namespaces and probe agents.
 */
export async function labKillHost(loc: LabLocation, host: string): Promise<void> {
  await withLabLock(loc, async () => {
    const s = requireLabState(loc);
    const h = findHost(s, host);
    const p = agentProcess(s, h);
    if (p !== undefined) await kill(p);
    if (existsSync(`/run/netns/${h.netns}`)) {
      const pids = await run("ip", ["netns", "pids", h.netns]);
      for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone already
        }
      }
      await run("ip", ["netns", "del", h.netns]);
    }
    if (p !== undefined) dropDead(s, [p.pid]);
    s.netns = s.netns.filter((n) => n !== h.netns);
    writeLabState(s);
  });
}

function etcdProcesses(s: LabState): LabProcess[] {
  if (s.datastore.kind !== "etcd")
    throw new CalicoError(
      "LAB_BAD_OPTION",
      `Lab "${s.name}" uses ${s.datastore.kind}, not etcd: there is no datastore process to stop or start`,
    );
  return s.processes.filter((p) => p.role === "etcd");
}

/**
 * Stop the lab's etcd (SIGTERM, SIGKILL after 5 s). Its data directory stays, so
 * `labStartDatastore` brings the same cluster back with every revision.
 */
export async function labStopDatastore(loc: LabLocation): Promise<void> {
  await withLabLock(loc, async () => {
    const s = requireLabState(loc);
    const ps = etcdProcesses(s).filter(isOurs);
    await stopProcesses(ps, 5000);
    const stuck = ps.filter(isOurs);
    if (stuck.length > 0)
      throw new CalicoError(
        "LAB_ETCD_STUCK",
        `etcd (pid ${stuck.map((p) => p.pid).join(", ")}) did not stop`,
      );
    dropDead(
      s,
      ps.map((p) => p.pid),
    );
    writeLabState(s);
  });
}

/** Start the lab's etcd again as `lab up` did (same data directory); resolves once it answers. */
export async function labStartDatastore(loc: LabLocation): Promise<void> {
  await withLabLock(loc, async () => {
    const s = requireLabState(loc);
    const live = etcdProcesses(s).filter(isOurs);
    if (live.length > 0)
      throw new CalicoError("LAB_ETCD_RUNNING", `etcd is still running (pid ${live[0]!.pid})`);
    await startEtcd(s);
  });
}
