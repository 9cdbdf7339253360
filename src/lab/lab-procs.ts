/**
 * Processes the lab leaves running after the command that started them exits: calico-node per
 * host, a probe agent per workload, etcd. Each starts detached inside its network namespace
 * (`nsenter --net=` execs, so the PID recorded is the process itself), with stdout and stderr
 * appended to a log file in the state directory. Signals go only to a recorded PID whose
 * command line still carries the lab's marker, never to a reused PID.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { commandIn } from "../dataplane/netns.js";
import { CalicoError } from "../errors.js";
import type { LabProcess } from "./lab-state.js";

export interface Detached {
  pid: number;
  /** Valid while this process lives: tells whether the child already exited. */
  child: ChildProcess;
}

export function spawnDetached(
  netns: string,
  cmd: string,
  args: readonly string[],
  log: string,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Detached {
  const fd = openSync(log, "a");
  try {
    const argv = commandIn(netns, cmd, args);
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ["ignore", fd, fd],
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      env: { ...process.env, ...opts.env },
    });
    child.on("error", () => undefined);
    child.unref();
    if (child.pid === undefined)
      throw new CalicoError("LAB_SPAWN_FAILED", `Cannot start ${argv.join(" ")} (see ${log})`);
    return { pid: child.pid, child };
  } finally {
    closeSync(fd);
  }
}

/** Does PID run a command line containing `marker`? */
export function isOurs(p: LabProcess): boolean {
  try {
    return readFileSync(`/proc/${p.pid}/cmdline`, "utf8").replace(/\0/g, " ").includes(p.marker);
  } catch {
    return false;
  }
}

function signal(p: LabProcess, sig: NodeJS.Signals): void {
  if (!isOurs(p)) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    // gone meanwhile
  }
}

/** SIGTERM every live process of ours, SIGKILL what is left after `graceMs`. Never throws. */
export async function stopProcesses(ps: readonly LabProcess[], graceMs = 2000): Promise<void> {
  for (const p of ps) signal(p, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (ps.some(isOurs) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const p of ps) signal(p, "SIGKILL");
  const hard = Date.now() + 2000;
  while (ps.some(isOurs) && Date.now() < hard) await new Promise((r) => setTimeout(r, 20));
}
