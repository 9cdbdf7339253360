/**
 * `calicoctl lab exec`: run a command in the foreground, as a shell would. stdin, stdout and
 * stderr are the caller's own (a pipe, a file or a terminal, byte for byte), and the result is
 * the command's exit status in the shell's convention — its exit code, or 128 + the signal
 * number if a signal ended it — so `calicoctl lab exec w -- sh -c 'exit 3'` exits 3.
 *
 * The command is `nsenter … -- CMD` (lab.ts `labExecArgv`); nsenter execs CMD, so the child's
 * status is CMD's own.
 */
import { spawn, type StdioOptions } from "node:child_process";
import { constants } from "node:os";

/** A shell's `$?` for a child that ended with `code` or by `signal`. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal !== null ? constants.signals[signal] : undefined;
  return n !== undefined ? 128 + n : 1;
}

/** Signals passed on to the command while it runs, so it (not just we) hears them. */
const FORWARDED = ["SIGTERM", "SIGHUP", "SIGINT"] as const;

/**
 * Run `argv` with our stdio and resolve with its exit status. SIGTERM and SIGHUP sent to us are
 * passed on to the command, and SIGINT too unless stdin is a terminal (there the terminal
 * already sends Ctrl-C to the whole foreground group): we wait for the command either way and
 * report how it ended.
 */
export function runForeground(argv: readonly string[], stdio: StdioOptions = "inherit"): Promise<number> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error("Cannot run an empty command"));
  return new Promise<number>((resolve, reject) => {
    const child = spawn(file, args, { stdio });
    const handlers = FORWARDED.map((sig) => {
      const h = () => {
        if (sig !== "SIGINT" || process.stdin.isTTY !== true) child.kill(sig);
      };
      process.on(sig, h);
      return [sig, h] as const;
    });
    let settled = false;
    const done = (): boolean => {
      for (const [sig, h] of handlers) process.removeListener(sig, h);
      const first = !settled;
      settled = true;
      return first;
    };
    child.on("error", (err) => {
      if (done()) reject(new Error(`Cannot run ${file}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code, signal) => {
      if (done()) resolve(exitStatus(code, signal));
    });
  });
}
