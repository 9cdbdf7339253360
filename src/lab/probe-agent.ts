/**
 * The probe agent: one small process per workload network namespace (started with
 * `nsenter --net=`), so connectivity is measured with real packets from inside the workload.
 *
 * - It serves TCP and UDP echo on the given ports; every answer names the workload, so the
 *   prober knows who answered (not just that something did).
 * - It takes probe requests over a Unix socket (the filesystem is shared across network
 *   namespaces), one JSON object per line, and answers one JSON line per request:
 *   `{"id":1,"proto":"tcp","addr":"198.19.1.2","port":80,"timeoutMs":500}` →
 *   `{"id":1,"ok":true,"peer":"x-a","ms":1.2}` or `{"id":1,"ok":false,"error":"timeout"}`.
 *   ICMP probes run `ping` in this namespace.
 * - Held connections (`proto: "hold"`): `op: "open"` connects and keeps the connection as
 *   `hold` (an id the prober picks); `op: "check"` sends one line over it and waits for the
 *   echo (so an established flow is proven to still pass data); `op: "close"` ends it. A
 *   server connection whose first line is `hold` echoes every line instead of closing.
 *
 * Usage: node probe-agent-main.js --socket PATH --name NAME [--tcp 80,81] [--udp 80,81]
 */
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { unlinkSync } from "node:fs";
import { createConnection, createServer, isIPv6, type Server, type Socket } from "node:net";

export interface ProbeRequest {
  id: number;
  proto: "tcp" | "udp" | "icmp" | "hold";
  /** Held connections only: what to do with connection `hold`. */
  op?: "open" | "check" | "close";
  hold?: number;
  addr: string;
  port?: number;
  timeoutMs?: number;
  /** TCP only: succeed once the connection is established, without waiting for an answer (a
   * port served by something other than a probe agent, e.g. a BGP speaker). */
  connectOnly?: boolean;
}

export interface ProbeResponse {
  id: number;
  ok: boolean;
  /** The name the answering probe agent gave. */
  peer?: string;
  /** "timeout", "refused", "unreachable", or an errno code. */
  error?: string;
  ms: number;
}

const DEFAULT_TIMEOUT_MS = 1000;

function probeTcp(req: ProbeRequest, timeoutMs: number): Promise<Omit<ProbeResponse, "id" | "ms">> {
  return new Promise((resolve) => {
    let buf = "";
    let done = false;
    const finish = (r: Omit<ProbeResponse, "id" | "ms">, s: Socket) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const sock = createConnection({ host: req.addr, port: req.port ?? 0 });
    const timer = setTimeout(() => finish({ ok: false, error: "timeout" }, sock), timeoutMs);
    sock.setEncoding("utf8");
    sock.on("connect", () => {
      if (req.connectOnly === true) finish({ ok: true }, sock);
      else sock.write("probe\n");
    });
    sock.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) finish({ ok: true, peer: buf.slice(0, nl) }, sock);
    });
    sock.on("error", (e: NodeJS.ErrnoException) =>
      finish({ ok: false, error: e.code === "ECONNREFUSED" ? "refused" : (e.code ?? e.message) }, sock),
    );
    sock.on("end", () => finish({ ok: false, error: "closed" }, sock));
  });
}

function probeUdp(req: ProbeRequest, timeoutMs: number): Promise<Omit<ProbeResponse, "id" | "ms">> {
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(req.addr) ? "udp6" : "udp4");
    let done = false;
    const finish = (r: Omit<ProbeResponse, "id" | "ms">) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, error: "timeout" }), timeoutMs);
    sock.on("message", (m) => finish({ ok: true, peer: m.toString("utf8").trim() }));
    sock.on("error", (e: NodeJS.ErrnoException) =>
      finish({ ok: false, error: e.code === "ECONNREFUSED" ? "refused" : (e.code ?? e.message) }),
    );
    // Connected UDP sockets report ICMP port-unreachable as ECONNREFUSED.
    sock.connect(req.port ?? 0, req.addr, () => sock.send("probe\n"));
  });
}

function probeIcmp(req: ProbeRequest, timeoutMs: number): Promise<Omit<ProbeResponse, "id" | "ms">> {
  return new Promise((resolve) => {
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    const args = [isIPv6(req.addr) ? "-6" : "-4", "-c", "1", "-n", "-q", "-W", String(secs), req.addr];
    const p = spawn("ping", args, { stdio: "ignore" });
    p.on("error", (e) => resolve({ ok: false, error: `ping: ${e.message}` }));
    p.on("close", (code) => resolve(code === 0 ? { ok: true } : { ok: false, error: "timeout" }));
  });
}

/** Held TCP connections by the prober's id, with the reader waiting for the next echo line. */
const held = new Map<
  number,
  { sock: Socket; buf: string; waiter?: ((line: string | Error) => void) | undefined }
>();

function holdOpen(req: ProbeRequest, timeoutMs: number): Promise<Omit<ProbeResponse, "id" | "ms">> {
  const id = req.hold ?? 0;
  return new Promise((resolve) => {
    const sock = createConnection({ host: req.addr, port: req.port ?? 0 });
    const h: { sock: Socket; buf: string; waiter?: ((line: string | Error) => void) | undefined } = {
      sock,
      buf: "",
    };
    let opened = false;
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ ok: false, error: "timeout" });
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write("hold\n"));
    sock.on("data", (d: string) => {
      h.buf += d;
      let nl;
      while ((nl = h.buf.indexOf("\n")) >= 0) {
        const line = h.buf.slice(0, nl);
        h.buf = h.buf.slice(nl + 1);
        if (!opened) {
          opened = true;
          clearTimeout(timer);
          held.set(id, h);
          resolve({ ok: true, peer: line });
        } else {
          const w = h.waiter;
          h.waiter = undefined;
          w?.(line);
        }
      }
    });
    const fail = (e: Error) => {
      if (!opened) {
        clearTimeout(timer);
        resolve({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message });
      }
      const w = h.waiter;
      h.waiter = undefined;
      w?.(e);
    };
    sock.on("error", fail);
    sock.on("end", () => fail(new Error("closed")));
  });
}

function holdCheck(req: ProbeRequest, timeoutMs: number): Promise<Omit<ProbeResponse, "id" | "ms">> {
  const h = held.get(req.hold ?? 0);
  if (h === undefined || h.sock.destroyed) return Promise.resolve({ ok: false, error: "not-held" });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      h.waiter = undefined;
      resolve({ ok: false, error: "timeout" });
    }, timeoutMs);
    h.waiter = (line) => {
      clearTimeout(timer);
      resolve(line instanceof Error ? { ok: false, error: line.message } : { ok: true, peer: line });
    };
    h.sock.write("ping\n");
  });
}

function runHold(req: ProbeRequest, timeoutMs: number): Promise<Omit<ProbeResponse, "id" | "ms">> {
  if (req.op === "open") return holdOpen(req, timeoutMs);
  if (req.op === "check") return holdCheck(req, timeoutMs);
  const h = held.get(req.hold ?? 0);
  held.delete(req.hold ?? 0);
  h?.sock.destroy();
  return Promise.resolve({ ok: h !== undefined });
}

export async function runProbe(req: ProbeRequest): Promise<ProbeResponse> {
  const t0 = performance.now();
  const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let r: Omit<ProbeResponse, "id" | "ms">;
  try {
    r =
      req.proto === "tcp"
        ? await probeTcp(req, timeoutMs)
        : req.proto === "udp"
          ? await probeUdp(req, timeoutMs)
          : req.proto === "hold"
            ? await runHold(req, timeoutMs)
            : await probeIcmp(req, timeoutMs);
  } catch (e) {
    // e.g. ENETUNREACH thrown synchronously by a socket call: the probe failed, the agent lives.
    r = { ok: false, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
  return { id: req.id, ...r, ms: Math.round((performance.now() - t0) * 10) / 10 };
}

function parsePorts(s: string | undefined): number[] {
  if (s === undefined || s === "") return [];
  return s.split(",").map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`bad port "${p}"`);
    return n;
  });
}

export function probeAgentMain(argv: string[]): void {
  const opt = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const socketPath = opt("socket");
  const name = opt("name");
  if (socketPath === undefined || name === undefined) {
    process.stderr.write("usage: probe-agent --socket PATH --name NAME [--tcp PORTS] [--udp PORTS]\n");
    process.exit(2);
  }
  const servers: Server[] = [];
  const listening: Promise<void>[] = [];
  for (const port of parsePorts(opt("tcp"))) {
    const s = createServer((c) => {
      c.on("error", () => undefined);
      c.setEncoding("utf8");
      let buf = "";
      let holding = false;
      const onData = (d: string) => {
        buf += d;
        if (!holding) {
          // Anything but a first line "hold" is a one-shot probe: answer and close, as before.
          if (buf.length < 5 && "hold\n".startsWith(buf)) return;
          if (!buf.startsWith("hold\n")) {
            c.off("data", onData);
            c.end(`${name}\n`);
            return;
          }
          holding = true;
        }
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          buf = buf.slice(nl + 1);
          c.write(`${name}\n`);
        }
      };
      c.on("data", onData);
    });
    listening.push(
      new Promise((resolve) => s.listen({ port, host: "::", ipv6Only: false }, () => resolve())),
    );
    servers.push(s);
  }
  for (const port of parsePorts(opt("udp"))) {
    for (const type of ["udp4", "udp6"] as const) {
      const u = createSocket({ type, ipv6Only: type === "udp6" });
      u.on("message", (_m, rinfo) => u.send(`${name}\n`, rinfo.port, rinfo.address));
      u.on("error", (e) => process.stderr.write(`udp ${type} ${port}: ${e.message}\n`));
      listening.push(new Promise((resolve) => u.bind(port, () => resolve())));
    }
  }
  try {
    unlinkSync(socketPath);
  } catch {
    // not there
  }
  const control = createServer((c) => {
    let buf = "";
    c.setEncoding("utf8");
    c.on("error", () => undefined);
    c.on("data", (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let req: ProbeRequest;
        try {
          req = JSON.parse(line) as ProbeRequest;
        } catch {
          c.write(`${JSON.stringify({ id: -1, ok: false, error: "bad request", ms: 0 })}\n`);
          continue;
        }
        void runProbe(req).then((r) => c.write(`${JSON.stringify(r)}\n`));
      }
    });
  });
  // A socket error nobody listened for must not end the agent: every probe after it would fail.
  process.on("uncaughtException", (e) => process.stderr.write(`probe-agent: ${e.message}\n`));
  // "ready" only once every listener is bound: a probe sent earlier would be refused.
  listening.push(new Promise((resolve) => control.listen(socketPath, () => resolve())));
  void Promise.all(listening).then(() => process.stdout.write("ready\n"));
  const stop = () => {
    control.close();
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // Exit with the parent: the control side holds our stdin open.
  process.stdin.on("end", stop);
  process.stdin.resume();
}
