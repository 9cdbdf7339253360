/**
 * The lab's state file: every namespace and process `lab up` made, written before and after
 * each step (atomically: temp file + rename), so `lab down` can remove everything even after
 * `lab up` was killed half-way or the lab's processes were killed with SIGKILL. The file
 * lives in the lab's state directory together with the datastore, logs and status files.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { CalicoError } from "../errors.js";

export const LAB_STATE_VERSION = 1;
/** The default state directory root; each lab is `<root>/<name>`. */
export const LAB_STATE_ROOT = "/run/calico-ts-lab";
export const DEFAULT_LAB_NAME = "lab";

export type LabDatastoreKind = "sqlite" | "etcd";

export interface LabProcess {
  pid: number;
  /** What it is: "calico-node h1", "workload frontend", "etcd". */
  role: string;
  /** A string its /proc/PID/cmdline must contain before we signal it (PIDs get reused). */
  marker: string;
}

export interface LabHost {
  /** Node name: h1, h2, … */
  name: string;
  netns: string;
  v4: string;
  v6: string | undefined;
  statusFile: string;
  log: string;
  pid: number | undefined;
}

export interface LabWorkload {
  name: string;
  host: string;
  /** The Kubernetes namespace its WorkloadEndpoint is in. */
  namespace: string;
  netns: string;
  containerID: string;
  labels: Record<string, string>;
  ipv4: string[];
  ipv6: string[];
  /** The host-side veth the CNI plugin made. */
  iface: string;
  /** The probe agent's control socket. */
  socket: string;
  pid: number | undefined;
}

export interface LabTor {
  netns: string;
  /** The plain (non-Calico) host behind the ToR. */
  extNetns: string;
  /** BIRD's config file and control socket. */
  conf: string;
  ctl: string;
  pid: number | undefined;
  extSocket: string;
  extPid: number | undefined;
}

export interface LabState {
  version: number;
  name: string;
  /** Every namespace the lab made starts with this. */
  prefix: string;
  stateDir: string;
  createdAt: string;
  phase: "starting" | "up" | "failed";
  datastore: { kind: LabDatastoreKind; url: string };
  ipv6: boolean;
  /** BIG TCP on every link of the lab and the workloads' veths (undefined: a lab from before). */
  bigTcp?: boolean;
  fabricNetns: string;
  hosts: LabHost[];
  workloads: LabWorkload[];
  /** Every namespace made, in creation order. */
  netns: string[];
  /** Every process started (agents, probe agents, etcd, BIRD). */
  processes: LabProcess[];
  /** With --tor. */
  tor?: LabTor | undefined;
  apiserver?: { url: string; pid: number; log: string } | undefined;
}

export interface LabLocation {
  name: string;
  stateDir: string;
  prefix: string;
}

const NAME_RE = /^[a-z0-9]{1,12}$/;

/** Where lab `name` keeps its state; `stateDir` overrides the default. */
export function labLocation(name: string = DEFAULT_LAB_NAME, stateDir?: string): LabLocation {
  if (!NAME_RE.test(name))
    throw new CalicoError(
      "LAB_BAD_NAME",
      `Invalid lab name ${JSON.stringify(name)}: use 1-12 lower-case letters and digits`,
    );
  return { name, stateDir: stateDir ?? join(LAB_STATE_ROOT, name), prefix: `cts${name}-` };
}

export const stateFile = (loc: LabLocation): string => join(loc.stateDir, "state.json");

export function readLabState(loc: LabLocation): LabState | undefined {
  const path = stateFile(loc);
  if (!existsSync(path)) return undefined;
  let s: LabState;
  try {
    s = JSON.parse(readFileSync(path, "utf8")) as LabState;
  } catch (e) {
    throw new CalicoError("LAB_STATE_CORRUPT", `Cannot read the lab state ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (s.version !== LAB_STATE_VERSION)
    throw new CalicoError(
      "LAB_STATE_CORRUPT",
      `The lab state ${path} has version ${s.version}; this calicoctl writes ${LAB_STATE_VERSION}`,
    );
  return s;
}

/** The lab's state, or a LAB_NOT_UP error naming where it looked. */
export function requireLabState(loc: LabLocation): LabState {
  const s = readLabState(loc);
  if (s === undefined)
    throw new CalicoError(
      "LAB_NOT_UP",
      `No lab "${loc.name}" is up (no state in ${loc.stateDir}); start one with: calicoctl lab up`,
    );
  return s;
}

export function writeLabState(s: LabState): void {
  mkdirSync(s.stateDir, { recursive: true });
  const path = join(s.stateDir, "state.json");
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, path);
}

export function isLabError(err: unknown, code: string): boolean {
  return err instanceof CalicoError && err.code === code;
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * Run `fn` holding the lab's lock (`<state>/lock`, created exclusively, holding our PID), so
 * two `lab up`/`add-workload`/`del-workload` of one lab never interleave their state-file
 * updates. A lock whose holder is dead is taken over; waits at most `timeoutMs`.
 * `lab down` takes no lock: it must work whatever state the lab is in.
 */
export async function withLabLock<T>(
  loc: LabLocation,
  fn: () => Promise<T>,
  timeoutMs = 120_000,
): Promise<T> {
  mkdirSync(loc.stateDir, { recursive: true });
  const path = join(loc.stateDir, "lock");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: "wx" });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let holder = NaN;
      try {
        holder = Number(readFileSync(path, "utf8"));
      } catch {
        continue; // released meanwhile
      }
      if (!Number.isInteger(holder) || holder <= 0 || !pidAlive(holder)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new CalicoError(
          "LAB_BUSY",
          `Lab "${loc.name}" is busy: process ${holder} holds ${path} (another calicoctl lab command)`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      if (readFileSync(path, "utf8") === String(process.pid)) rmSync(path, { force: true });
    } catch {
      // the state directory is gone (lab down, or a failed lab up cleaned up)
    }
  }
}

/** What the lab writes in its state directory: `removeStateDir` deletes these and nothing else. */
const OWN_ENTRY = [
  /^state\.json(\.\d+\.tmp)?$/,
  /^lock$/,
  /^calico\.db(-wal|-shm|-journal)?$/,
  /^logs$/,
  /^w$/,
  /^cni$/, // the installed CNI plugins (installLabCni)
  /^etcd$/,
  /^h\d+-status\.json(\.bgp)?(\.\d+)?(\.tmp)?$/,
  /^tor-bird\.(conf|ctl)$/,
];

/**
 * Delete the lab's files, then the directory if that left it empty. Only names the lab writes
 * are removed, so a `--state-dir` pointing at a directory with other files loses none of them.
 */
export function removeStateDir(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names)
    if (OWN_ENTRY.some((re) => re.test(n))) rmSync(join(dir, n), { recursive: true, force: true });
  try {
    rmdirSync(dir);
  } catch {
    // not empty: someone else's files are in it
  }
}
