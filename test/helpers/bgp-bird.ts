/**
 * BIRD 2 in a network namespace for the BGP interop tests and benches: a config written to a
 * private directory, `bird -f` under nsenter (stops on SIGTERM), and `birdc` on its socket.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const haveBird = (() => {
  try {
    execFileSync("bird", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

export class BirdProcess {
  readonly dir: string;
  readonly conf: string;
  proc: ChildProcess | undefined;

  /** A config text gets `log "<dir>/bird.log" all;` prepended; a function writes the config
   * file itself (large configs, written in chunks). Either is parse-checked (`bird -p`). */
  constructor(
    readonly ns: string,
    config: string | ((confPath: string, logPath: string) => void),
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "cts-bird-"));
    this.conf = join(this.dir, "bird.conf");
    const log = join(this.dir, "bird.log");
    if (typeof config === "string") writeFileSync(this.conf, `log "${log}" all;\n${config}`);
    else config(this.conf, log);
    try {
      execFileSync("bird", ["-p", "-c", this.conf], { stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      rmSync(this.dir, { recursive: true, force: true });
      throw err;
    }
  }

  get socket(): string {
    return join(this.dir, "bird.ctl");
  }

  start(): void {
    this.proc = spawn(
      "nsenter",
      [`--net=/run/netns/${this.ns}`, "--", "bird", "-f", "-c", this.conf, "-s", this.socket],
      { stdio: "ignore" },
    );
  }

  /** `birdc` output, or the error text (the tests print it in failures). */
  birdc(...args: string[]): string {
    try {
      return execFileSync("birdc", ["-s", this.socket, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (err) {
      return `birdc failed: ${(err as Error).message}`;
    }
  }

  /** The state column of `show protocols <name>` (e.g. "Established"). */
  protocolInfo(name: string): string {
    const line = this.birdc("show", "protocols", name)
      .split("\n")
      .find((l) => l.startsWith(`${name} `));
    return line?.trim().split(/\s+/).slice(5).join(" ") ?? "";
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 3000);
      await gone;
      clearTimeout(t);
    }
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
