/**
 * Drive a BgpSpeaker running in another network namespace: the child (speaker-child.ts) is
 * started with `nsenter --net=/run/netns/<ns>` and spoken to in JSON lines. Shared by the
 * speaker interop tests and the BGP benches.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { PeerConfig, SpeakerConfig } from "../../src/bgp/speaker.js";
import type { BestPath, ChildCmd, ChildConfig } from "./speaker-child.js";

export interface Reply {
  id?: number;
  ev?: string;
  ok?: boolean;
  error?: string;
  status?: {
    peers: { address: string; state: string; info?: string; lastDown?: string; routesReceived: number }[];
    locRibSize: number;
    kernelError?: string;
  };
  errors?: string[];
  counts?: { locRib: number; up: boolean[]; at: number };
  mem?: { heapUsed: number; arrayBuffers: number; rss: number };
  best?: BestPath | null;
  wait?: { firstUp?: number; reached?: number; locRib: number };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Poll `pred` every 50 ms until it holds, or throw naming `what` after `ms`. */
export async function until(
  what: string,
  pred: () => boolean | Promise<boolean>,
  ms = 20000,
  detail: () => string = () => "",
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await sleep(50);
  }
}

/** Session timers small enough for tests (seconds). */
export const FAST_TIMERS = { holdTime: 3, connectRetryTime: 1, idleHoldTime: 0.2, maxIdleHoldTime: 1 };

export interface SpeakerProcessOptions {
  ns: string;
  /** Our router id; the rest of the speaker config defaults to AS 64512, FAST_TIMERS, kernel on. */
  routerId: string;
  peers: PeerConfig[];
  speaker?: Partial<SpeakerConfig>;
  originate?: string[];
  /** Extra node flags, e.g. --expose-gc for memory figures. */
  nodeArgs?: string[];
}

export class SpeakerProcess {
  readonly proc: ChildProcess;
  readonly lines: Reply[] = [];
  readonly ns: string;
  #next = 1;
  #waiters = new Map<number, (r: Reply) => void>();

  constructor(o: SpeakerProcessOptions) {
    this.ns = o.ns;
    const cfg: ChildConfig = {
      speaker: {
        asn: 64512,
        routerId: o.routerId,
        listen: { host: "::", port: 179 },
        netns: o.ns,
        ...FAST_TIMERS,
        ...o.speaker,
      },
      peers: o.peers,
      ...(o.originate ? { originate: o.originate } : {}),
    };
    const script = fileURLToPath(new URL("./speaker-child.js", import.meta.url));
    this.proc = spawn(
      "nsenter",
      [`--net=/run/netns/${o.ns}`, "--", process.execPath, ...(o.nodeArgs ?? []), script],
      { env: { ...process.env, SPK_CONFIG: JSON.stringify(cfg) }, stdio: ["pipe", "pipe", "inherit"] },
    );
    createInterface({ input: this.proc.stdout! }).on("line", (l) => {
      let r: Reply;
      try {
        r = JSON.parse(l) as Reply;
      } catch {
        r = { ev: "garbage", error: l };
      }
      this.lines.push(r);
      if (this.lines.length > 200) this.lines.shift();
      if (r.id !== undefined) this.#waiters.get(r.id)?.(r);
    });
  }

  get ready(): boolean {
    return this.lines.some((l) => l.ev === "ready");
  }

  async waitReady(ms = 20000): Promise<void> {
    await until(`speaker in ${this.ns} ready`, () => this.ready || this.proc.exitCode !== null, ms);
    if (!this.ready) throw new Error(`speaker in ${this.ns} exited (${this.proc.exitCode}) before ready`);
  }

  /** Send one command; resolves with the reply (throws if the command failed or timed out). */
  send(cmd: Omit<ChildCmd, "id">, ms = 10000): Promise<Reply> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiters.delete(id);
        reject(new Error(`speaker in ${this.ns}: no reply to ${cmd.cmd} in ${ms} ms`));
      }, ms);
      this.#waiters.set(id, (r) => {
        clearTimeout(t);
        this.#waiters.delete(id);
        if (r.ok) resolve(r);
        else reject(new Error(`speaker in ${this.ns}: ${cmd.cmd} failed: ${r.error}`));
      });
      this.proc.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }

  async peerState(i = 0): Promise<string> {
    return (await this.send({ cmd: "status" })).status?.peers[i]?.state ?? "?";
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGKILL");
    await gone;
  }
}
