/**
 * BGP-learned routes in the kernel (docs/bgp.md, "Speaker"). The speaker marks the desired
 * next-hop set of a prefix (`set`, `delete`) without I/O; `apply()` writes every dirty prefix in
 * one `ip -batch -` transaction in the speaker's namespace. Serialized: one apply at a time;
 * changes made during an apply are written by the next one.
 *
 * Ownership: our routes carry our own route protocol number (default 84, `BGP_ROUTE_PROTOCOL`;
 * 83 belongs to the dataplane's workload routes) and metric 32 (BIRD's kernel-protocol
 * default). Route keys in the kernel include the metric, so `route replace` of ours can never
 * replace a dataplane or static route of the same prefix, and `route del … proto 84 metric 32`
 * deletes only ours. A freshly started speaker finds its routes with `ip route show proto 84`
 * (`sweep()` removes the ones nobody wants any more).
 *
 * One long-lived `ip -o -force -batch -` per KernelRoutes (`IpBatch`) takes the lines: starting
 * an `ip` process costs ~25 ms here, and ~500 ms when 19 speakers of a mesh start one each at
 * once on two CPUs; a running one applies a line in microseconds. `ip` executes each batch
 * line as it reads it and flushes its output per command, so after our lines we send
 * `link show dev lo` and the one-line answer says everything before it was done; failures
 * come on stderr as `Command failed -:<line>`. If the process dies it is started again.
 * `sweep()` (the speaker's start) starts it, so the first routes do not wait for it.
 */
import { formatCIDR, formatIP, parseCIDROrIP, type CIDR } from "../api/net.js";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { commandIn, run } from "../dataplane/netns.js";

/** Our route protocol for BGP-learned routes (the dataplane uses 83 for workload routes). */
export const BGP_ROUTE_PROTOCOL = 84;
/** The metric of our routes: BIRD's kernel protocol default, and not the dataplane's. */
export const BGP_ROUTE_METRIC = 32;

export interface KernelRoutesOptions {
  netns?: string | undefined;
  protocol?: number;
  metric?: number;
}

const addr = (c: CIDR): string => formatIP(c.family, c.addr);

/** The `ip -batch` line that installs `prefix` via `nextHops` (one, or an ECMP route). */
export function replaceLine(prefix: CIDR, nextHops: readonly CIDR[], proto: number, metric: number): string {
  const via =
    nextHops.length === 1
      ? `via ${addr(nextHops[0]!)}`
      : nextHops.map((n) => `nexthop via ${addr(n)}`).join(" ");
  // The family follows from the prefix; `ip -batch` lines take no global options.
  return nextHops.length === 1
    ? `route replace ${formatCIDR(prefix)} ${via} proto ${proto} metric ${metric}`
    : `route replace ${formatCIDR(prefix)} proto ${proto} metric ${metric} ${via}`;
}

export function deleteLine(prefix: CIDR, proto: number, metric: number): string {
  return `route del ${formatCIDR(prefix)} proto ${proto} metric ${metric}`;
}

/** A running `ip -batch` that applies groups of lines, one group at a time. */
export class IpBatch {
  readonly #netns: string | undefined;
  #proc: ChildProcess | undefined;
  /** Lines written so far (ip numbers batch lines from 1). */
  #line = 0;
  #pending: { marker: number; from: number; errors: string[]; done: (errors: string[]) => void }[] = [];
  #stderr: string[] = [];

  constructor(netns: string | undefined) {
    this.#netns = netns;
  }

  #start(): ChildProcess {
    const [cmd, ...args] = commandIn(this.#netns, "ip", ["-o", "-force", "-batch", "-"]);
    const p = spawn(cmd!, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.#line = 0;
    createInterface({ input: p.stdout }).on("line", (l) => {
      if (!/^\d+: lo:/.test(l)) return;
      const w = this.#pending.shift();
      if (this.#pending.length === 0) this.#hold(false);
      w?.done(w.errors);
    });
    createInterface({ input: p.stderr }).on("line", (l) => {
      const m = /^Command failed -:(\d+)/.exec(l);
      const w = m ? this.#pending.find((x) => Number(m[1]) >= x.from && Number(m[1]) < x.marker) : undefined;
      if (w) w.errors.push(`${this.#stderr.join("; ")} (line ${Number(m![1]) - w.from + 1})`);
      this.#stderr = m ? [] : [...this.#stderr.slice(-3), l];
    });
    const fail = (why: string) => {
      if (this.#proc !== p) return;
      this.#proc = undefined;
      for (const w of this.#pending.splice(0)) w.done([...w.errors, `ip -batch ${why}`]);
    };
    p.on("exit", (code, sig) => fail(`exited (${sig ?? code})`));
    p.on("error", (err) => fail(`failed: ${err.message}`));
    p.stdin.on("error", () => undefined); // EPIPE after an exit: reported by "exit"
    // An idle batch process must not keep the program alive; one with answers due must.
    p.unref();
    this.#proc = p;
    this.#hold(false);
    return p;
  }

  #hold(on: boolean): void {
    const p = this.#proc;
    if (!p) return;
    for (const s of [p.stdin, p.stdout, p.stderr] as ({ ref(): void; unref(): void } | null)[])
      if (on) s?.ref();
      else s?.unref();
  }

  /** Start the process now (idempotent), so the first routes do not wait for it. */
  warm(): void {
    if (!this.#proc) this.#start();
  }

  /** Apply `lines`; resolves with the failures (empty: all applied). */
  apply(lines: readonly string[]): Promise<string[]> {
    const p = this.#proc ?? this.#start();
    const from = this.#line + 1;
    this.#line += lines.length + 1;
    return new Promise((done) => {
      this.#pending.push({ marker: this.#line, from, errors: [], done });
      this.#hold(true);
      p.stdin?.write(`${lines.join("\n")}\nlink show dev lo\n`);
    });
  }

  close(): void {
    this.#proc?.stdin?.end();
    this.#proc = undefined;
  }
}

export class KernelRoutes {
  readonly protocol: number;
  readonly metric: number;
  readonly #netns: string | undefined;
  /** Desired state: prefix text → next hops. */
  readonly #want = new Map<string, { prefix: CIDR; nextHops: CIDR[] }>();
  /** What the kernel has (as far as we wrote it successfully). */
  readonly #have = new Map<string, string>();
  readonly #dirty = new Set<string>();
  readonly #batch: IpBatch;
  #applying: Promise<void> | undefined;
  #again = false;
  /** The last apply error in words (for status), cleared by a successful apply. */
  lastError: string | undefined;

  constructor(opts: KernelRoutesOptions = {}) {
    this.#netns = opts.netns;
    this.protocol = opts.protocol ?? BGP_ROUTE_PROTOCOL;
    this.metric = opts.metric ?? BGP_ROUTE_METRIC;
    this.#batch = new IpBatch(opts.netns);
  }

  /** Stop the `ip -batch` process (a later apply starts another). */
  close(): void {
    this.#batch.close();
  }

  set(prefix: CIDR, nextHops: readonly CIDR[]): void {
    if (nextHops.length === 0) return this.delete(prefix);
    const key = formatCIDR(prefix);
    this.#want.set(key, { prefix, nextHops: [...nextHops] });
    this.#dirty.add(key);
  }

  delete(prefix: CIDR): void {
    const key = formatCIDR(prefix);
    this.#want.delete(key);
    this.#dirty.add(key);
  }

  /** Forget every desired route (the next apply deletes them all). */
  clear(): void {
    for (const key of this.#want.keys()) this.#dirty.add(key);
    for (const key of this.#have.keys()) this.#dirty.add(key);
    this.#want.clear();
  }

  /** The desired table, prefix → next hops as text (for tests and status). */
  desired(): Map<string, string[]> {
    return new Map([...this.#want].map(([k, v]) => [k, v.nextHops.map(addr)]));
  }

  /** Write every dirty prefix; resolves when the kernel has everything marked so far. */
  apply(): Promise<void> {
    if (this.#applying) {
      this.#again = true;
      return this.#applying;
    }
    this.#applying = (async () => {
      try {
        do {
          this.#again = false;
          await this.#applyOnce();
        } while (this.#again || this.#dirty.size > 0);
      } finally {
        this.#applying = undefined;
      }
    })();
    return this.#applying;
  }

  async #applyOnce(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const keys = [...this.#dirty];
    this.#dirty.clear();
    const lines: string[] = [];
    const next = new Map<string, string | undefined>();
    for (const key of keys) {
      const w = this.#want.get(key);
      if (w) {
        const line = replaceLine(w.prefix, w.nextHops, this.protocol, this.metric);
        if (this.#have.get(key) !== line) lines.push(line);
        next.set(key, line);
      } else if (this.#have.has(key)) {
        const prefix = parseCIDROrIP(key);
        if (prefix) lines.push(deleteLine(prefix, this.protocol, this.metric));
        next.set(key, undefined);
      }
    }
    if (lines.length === 0) return;
    // -force: one failed line (e.g. a delete of a route already gone) must not stop the rest.
    const errors = await this.#batch.apply(lines);
    // Some line failed: record it (the next sweep re-reads the whole table).
    this.lastError = errors.length === 0 ? undefined : errors.join("; ");
    for (const [key, line] of next) {
      if (line === undefined) this.#have.delete(key);
      else this.#have.set(key, line);
    }
  }

  /** Full sync: delete every route of our protocol the kernel has that is not desired, and
   * re-mark every desired route (a restart, or a failed apply, may have left the kernel
   * different from what we think). */
  async sweep(): Promise<void> {
    this.#batch.warm();
    for (const f of [4, 6] as const) {
      const r = await run("ip", [`-${f}`, "-j", "route", "show", "proto", String(this.protocol)], {
        netns: this.#netns,
      });
      if (r.code !== 0) continue;
      let rows: { dst?: string; metric?: number }[] = [];
      try {
        rows = JSON.parse(r.stdout || "[]") as typeof rows;
      } catch {
        continue;
      }
      for (const row of rows) {
        if (row.dst === undefined || (row.metric ?? 0) !== this.metric) continue;
        const c = parseCIDROrIP(row.dst);
        if (!c) continue;
        const key = formatCIDR(c);
        this.#have.set(key, "(found in kernel)");
        this.#dirty.add(key);
      }
    }
    for (const key of this.#want.keys()) {
      this.#have.delete(key);
      this.#dirty.add(key);
    }
    await this.apply();
  }
}
