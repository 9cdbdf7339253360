/**
 * Measuring the lab with real packets: the prober connects to a workload's probe agent over its
 * control socket (in the state directory) and asks it to send TCP/UDP/ICMP probes from inside
 * the workload's namespace. `connectivityMatrix` probes every workload from every other one,
 * all at once; a probe that fails is re-sent until `settleMs` has passed, so a fabric still
 * converging is not reported as denied too early, while a real deny costs one timeout.
 */
import { connect, type Socket } from "node:net";
import type { ProbeRequest, ProbeResponse } from "./probe-agent.js";

export class ProbeClient {
  private nextId = 1;
  private buf = "";
  private readonly pending = new Map<number, (r: ProbeResponse) => void>();

  private constructor(private readonly sock: Socket) {
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
    sock.on("error", () => this.failAll("control socket error"));
    sock.on("close", () => this.failAll("control socket closed"));
  }

  static connect(path: string, timeoutMs = 2000): Promise<ProbeClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`no answer on ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(t);
        resolve(new ProbeClient(s));
      });
      s.once("error", (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  private failAll(error: string): void {
    for (const [id, f] of this.pending) f({ id, ok: false, error, ms: 0 });
    this.pending.clear();
  }

  /** One probe; never hangs (the probe's timeout plus 3 s at most). */
  probe(req: Omit<ProbeRequest, "id">): Promise<ProbeResponse> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          resolve({ id, ok: false, error: "no-answer", ms: 0 });
        },
        (req.timeoutMs ?? 1000) + 3000,
      );
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.sock.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface MatrixEndpoint {
  name: string;
  socket: string;
  /** The address probed (the first IPv4 address, else IPv6). */
  addr: string | undefined;
}

export interface MatrixCell {
  from: string;
  to: string;
  ok: boolean;
  /** Who answered (the probe agent names itself), or why it failed. */
  detail: string;
}

export interface MatrixOptions {
  /** `icmp`: one echo request (`ping`) per pair; `port` is ignored. */
  proto?: "tcp" | "udp" | "icmp";
  port?: number;
  timeoutMs?: number;
  /** Keep re-sending failed probes until this long after the start (a converging fabric). */
  settleMs?: number;
  /** Stop re-sending a pair's probe once it failed and `expect(from, to)` says it is denied. */
  expect?: (from: string, to: string) => boolean | undefined;
}

/** Probe every endpoint from every other one (real packets, all pairs in parallel). */
export async function connectivityMatrix(
  eps: readonly MatrixEndpoint[],
  opts: MatrixOptions = {},
): Promise<MatrixCell[]> {
  const proto = opts.proto ?? "tcp";
  const port = opts.port ?? 80;
  const timeoutMs = opts.timeoutMs ?? 700;
  const deadline = Date.now() + (opts.settleMs ?? 0);
  const clients = new Map<string, ProbeClient | Error>();
  await Promise.all(
    eps.map(async (e) => {
      clients.set(
        e.name,
        await ProbeClient.connect(e.socket).catch((err: unknown) =>
          err instanceof Error ? err : new Error(String(err)),
        ),
      );
    }),
  );
  try {
    const pairs = eps.flatMap((from) => eps.filter((to) => to !== from).map((to) => ({ from, to })));
    return await Promise.all(
      pairs.map(async ({ from, to }): Promise<MatrixCell> => {
        const c = clients.get(from.name);
        const cell = { from: from.name, to: to.name };
        if (c === undefined || c instanceof Error)
          return { ...cell, ok: false, detail: `probe agent down (${c?.message ?? "?"})` };
        if (to.addr === undefined) return { ...cell, ok: false, detail: "no address" };
        for (let attempt = 0; attempt < 100; attempt++) {
          // A retry waits longer: on a loaded machine an allowed probe can miss a short timeout.
          const t = attempt === 0 ? timeoutMs : Math.min(timeoutMs * 4, 3000);
          const r = await c.probe({ proto, addr: to.addr, port, timeoutMs: t });
          if (r.ok) return { ...cell, ok: true, detail: r.peer ?? "" };
          const denied = opts.expect?.(from.name, to.name) === false;
          if (denied || Date.now() >= deadline) return { ...cell, ok: false, detail: r.error ?? "failed" };
          // Refused/unreachable come back at once: pace the retries.
          await new Promise((res) => setTimeout(res, 200));
        }
        return { ...cell, ok: false, detail: "gave up" };
      }),
    );
  } finally {
    for (const c of clients.values()) if (!(c instanceof Error)) c.close();
  }
}
