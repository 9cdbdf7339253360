/**
 * The prober's side of the probe agent (probe-agent.ts): start one agent inside a network
 * namespace, send it probe requests, stop it. Used by the lab's connectivity matrix and the
 * real-traffic tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CalicoError } from "../errors.js";
import { commandIn } from "../dataplane/netns.js";
import type { ProbeRequest, ProbeResponse } from "./probe-agent.js";

export type { ProbeRequest, ProbeResponse } from "./probe-agent.js";

const AGENT_MAIN = join(dirname(fileURLToPath(import.meta.url)), "probe-agent-main.js");

export interface ProbeAgentOptions {
  /** Network namespace name or path the agent runs in. */
  netns: string;
  /** Name the agent answers with. */
  name: string;
  tcpPorts?: number[];
  udpPorts?: number[];
}

export class ProbeAgent {
  private nextId = 1;
  private readonly pending = new Map<number, (r: ProbeResponse) => void>();
  private buf = "";

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    private readonly sock: Socket,
    private readonly dir: string,
  ) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const r = JSON.parse(this.buf.slice(0, nl)) as ProbeResponse;
        this.buf = this.buf.slice(nl + 1);
        this.pending.get(r.id)?.(r);
        this.pending.delete(r.id);
      }
    });
    sock.on("error", () => undefined);
  }

  static async start(opts: ProbeAgentOptions): Promise<ProbeAgent> {
    const dir = mkdtempSync(join(tmpdir(), "cts-probe-"));
    const socketPath = join(dir, "control.sock");
    const args = [AGENT_MAIN, "--socket", socketPath, "--name", opts.name];
    if (opts.tcpPorts?.length) args.push("--tcp", opts.tcpPorts.join(","));
    if (opts.udpPorts?.length) args.push("--udp", opts.udpPorts.join(","));
    const argv = commandIn(opts.netns, process.execPath, args);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => (stderr += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("did not start within 10 s")), 10_000);
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (d: string) => {
          if (d.includes("ready")) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`exited with ${code}: ${stderr.trim()}`));
        });
      });
      const sock = await new Promise<Socket>((resolve, reject) => {
        const s = connect(socketPath, () => resolve(s));
        s.once("error", reject);
      });
      return new ProbeAgent(opts.name, child, sock, dir);
    } catch (e) {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new CalicoError(
        "PROBE_AGENT_FAILED",
        `Cannot start the probe agent "${opts.name}" in netns ${opts.netns}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  /** Send one probe from this agent's namespace. Never hangs: if the agent does not answer
   * within the probe's timeout plus 5 s, the probe fails with error "no-answer". */
  probe(req: Omit<ProbeRequest, "id">): Promise<ProbeResponse> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const t0 = performance.now();
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          resolve({ id, ok: false, error: "no-answer", ms: performance.now() - t0 });
        },
        (req.timeoutMs ?? 1000) + 5000,
      );
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.sock.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  private nextHold = 1;

  /** Open a TCP connection from this namespace and keep it; resolves with its handle, or
   * undefined when it could not be opened. */
  async holdOpen(addr: string, port: number, timeoutMs = 1000): Promise<number | undefined> {
    const hold = this.nextHold++;
    const r = await this.probe({ proto: "hold", op: "open", hold, addr, port, timeoutMs });
    return r.ok ? hold : undefined;
  }

  /** Send one line over a held connection and wait for the echo: does the flow still pass data? */
  holdCheck(hold: number, timeoutMs = 1000): Promise<ProbeResponse> {
    return this.probe({ proto: "hold", op: "check", hold, addr: "", timeoutMs });
  }

  async holdClose(hold: number): Promise<void> {
    await this.probe({ proto: "hold", op: "close", hold, addr: "" });
  }

  async stop(): Promise<void> {
    this.sock.destroy();
    this.child.stdin?.end();
    this.child.kill("SIGTERM");
    await new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else {
        const t = setTimeout(() => {
          this.child.kill("SIGKILL");
          resolve();
        }, 2000);
        this.child.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
      }
    });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
