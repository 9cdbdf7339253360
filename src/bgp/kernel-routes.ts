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
 */
import { formatCIDR, formatIP, parseCIDROrIP, type CIDR } from "../api/net.js";
import { run, runOk } from "../dataplane/netns.js";

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

export class KernelRoutes {
  readonly protocol: number;
  readonly metric: number;
  readonly #netns: string | undefined;
  /** Desired state: prefix text → next hops. */
  readonly #want = new Map<string, { prefix: CIDR; nextHops: CIDR[] }>();
  /** What the kernel has (as far as we wrote it successfully). */
  readonly #have = new Map<string, string>();
  readonly #dirty = new Set<string>();
  #applying: Promise<void> | undefined;
  #again = false;
  /** The last apply error in words (for status), cleared by a successful apply. */
  lastError: string | undefined;

  constructor(opts: KernelRoutesOptions = {}) {
    this.#netns = opts.netns;
    this.protocol = opts.protocol ?? BGP_ROUTE_PROTOCOL;
    this.metric = opts.metric ?? BGP_ROUTE_METRIC;
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
    try {
      // -force: one failed line (e.g. a delete of a route already gone) must not stop the rest.
      await runOk("ip", ["-force", "-batch", "-"], { netns: this.#netns, input: `${lines.join("\n")}\n` });
      this.lastError = undefined;
    } catch (err) {
      // Some line failed: record it, and re-read the whole table on the next sweep.
      this.lastError = err instanceof Error ? err.message : String(err);
    }
    for (const [key, line] of next) {
      if (line === undefined) this.#have.delete(key);
      else this.#have.set(key, line);
    }
  }

  /** Full sync: delete every route of our protocol the kernel has that is not desired, and
   * re-mark every desired route (a restart, or a failed apply, may have left the kernel
   * different from what we think). */
  async sweep(): Promise<void> {
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
