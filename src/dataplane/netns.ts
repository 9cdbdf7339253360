/**
 * The one place that runs kernel tools and enters network namespaces (DESIGN.md §3).
 * A namespace is named (`/run/netns/<name>`, as `ip netns add` makes them) or given as a path
 * (`/proc/<pid>/ns/net`). We enter with `nsenter --net=`, which changes only the network
 * namespace; `ip netns exec` also remounts /sys, which breaks container runtimes
 * (reference/lab-recipes.md §8).
 */
import { spawn } from "node:child_process";
import { CalicoError } from "../errors.js";

export interface RunOptions {
  /** Network namespace name or path; undefined runs in the caller's namespace. */
  netns?: string | undefined;
  /** Written to the child's stdin (e.g. an `nft -f -` script or an `ip -batch -` file). */
  input?: string;
  /** Kill the child after this long (default 30 s). */
  timeoutMs?: number;
  /** The child's environment (default: ours). */
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export const netnsPath = (netns: string): string => (netns.includes("/") ? netns : `/run/netns/${netns}`);

/** The argv that runs `cmd args` in `netns`. */
export function commandIn(netns: string | undefined, cmd: string, args: readonly string[]): string[] {
  return netns === undefined ? [cmd, ...args] : ["nsenter", `--net=${netnsPath(netns)}`, "--", cmd, ...args];
}

/** Run a command (in a namespace); resolves with its exit code, never rejects on a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = commandIn(opts.netns, cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["pipe", "pipe", "pipe"],
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new CalicoError("COMMAND_FAILED", `Cannot run ${argv.join(" ")}: ${e.message}`, { cause: e }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code: code ?? (signal !== null ? 128 : 1),
      });
    });
    child.stdin.on("error", () => {
      // The child exited before reading all input; its exit code tells the story.
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Run and require exit code 0; the error names the command, the namespace and stderr. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const where = opts.netns === undefined ? "" : ` in netns ${opts.netns}`;
    throw new CalicoError(
      "COMMAND_FAILED",
      `${cmd} ${args.join(" ")}${where} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  return r.stdout;
}

/** The libc calls `inNetns` needs (`loadLibc()` in nft/netlink-elements.ts provides them). */
export interface NetnsLibc {
  open: (path: string, flags: number) => number;
  close: (fd: number) => number;
  setns: (fd: number, nstype: number) => number;
  errno: () => number;
}

const O_RDONLY = 0;
const O_CLOEXEC = 0x80000;
const CLONE_NEWNET = 0x40000000;

/**
 * Run `fn` synchronously with THIS thread in `netns` (setns), then move the thread back, also
 * when `fn` throws. Sockets and `/proc/sys/net/...` files opened inside belong to `netns` for
 * their whole life, so callers open inside and use them after. `fn` must be synchronous: no other
 * JavaScript runs meanwhile, and libuv's pool threads keep their own namespace. undefined: run
 * `fn` here. Never falls back to the caller's namespace: a failed setns throws.
 */
export function inNetns<T>(c: NetnsLibc, netns: string | undefined, fn: () => T): T {
  if (netns === undefined) return fn();
  const fail = (what: string, errno: number) =>
    new CalicoError("NETNS_ENTER_FAILED", `Cannot ${what} for netns ${netns}: errno ${errno}`);
  const self = c.open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) throw fail("open /proc/thread-self/ns/net", c.errno());
  const target = c.open(netnsPath(netns), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    const e = c.errno();
    c.close(self);
    throw fail(`open ${netnsPath(netns)}`, e);
  }
  try {
    if (c.setns(target, CLONE_NEWNET) !== 0) throw fail("setns", c.errno());
    let result: { value: T } | { error: unknown };
    try {
      result = { value: fn() };
    } catch (error) {
      result = { error };
    }
    // Back before anything else runs on this thread.
    if (c.setns(self, CLONE_NEWNET) !== 0) throw fail("setns back", c.errno());
    if ("error" in result) throw result.error;
    return result.value;
  } finally {
    c.close(target);
    c.close(self);
  }
}
