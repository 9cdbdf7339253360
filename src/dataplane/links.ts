/**
 * Per-interface sysctls for local workload interfaces (reference/calico.md §1.7,
 * lab-recipes §1): forwarding, proxy ARP answering for 169.254.1.1 at once (proxy_delay=0),
 * IPv6 proxy NDP, forwarding, no router advertisements and no DAD (without accept_dad=0 the
 * first v6 packets fail for ~2 s). Plus the global ip_forward / IPv6 forwarding, which a new
 * netns has off.
 *
 * Only interfaces that exist are configured (the CNI plugin creates them, often after the
 * endpoint appears); an interface is remembered by name and ifindex, so one that appears later
 * or is re-created gets its sysctls on the next apply.
 *
 * Two ways to the kernel: with koffi, the interfaces come from one RTM_GETLINK dump and each
 * `/proc/sys/net/...` file is opened with this thread inside the namespace (`inNetns`: a file
 * under /proc/sys/net opened there belongs to that namespace), then read and written only where
 * the value differs — no process per interface, ~7,000 files for 1,000 interfaces. Without
 * koffi (or `via: "sysctl"`, `CALICO_RTNETLINK=0`): `ip -j link show` and ONE `sysctl -e -w`.
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { CalicoError } from "../errors.js";
import { inNetns, run, runOk } from "./netns.js";
import { loadLibc } from "./nft/netlink-elements.js";
import { RtNetlink, type Libc } from "./rtnetlink.js";

export interface LinkApplier {
  /** Configure workload interfaces; returns how many were (re)configured. */
  apply(ifaces: ReadonlySet<string>, ipv6: boolean, full: boolean): Promise<number>;
}

/** The `key=value` writes for one workload interface (slash form: names may contain dots). */
export function interfaceSysctls(iface: string, ipv6: boolean): string[] {
  const v4 = [
    `net/ipv4/conf/${iface}/forwarding=1`,
    `net/ipv4/conf/${iface}/proxy_arp=1`,
    `net/ipv4/neigh/${iface}/proxy_delay=0`,
  ];
  if (!ipv6) return v4;
  return [
    ...v4,
    `net/ipv6/conf/${iface}/proxy_ndp=1`,
    `net/ipv6/conf/${iface}/forwarding=1`,
    `net/ipv6/conf/${iface}/accept_ra=0`,
    `net/ipv6/conf/${iface}/accept_dad=0`,
  ];
}

export function globalSysctls(ipv6: boolean): string[] {
  return ipv6 ? ["net/ipv4/ip_forward=1", "net/ipv6/conf/all/forwarding=1"] : ["net/ipv4/ip_forward=1"];
}

/** Files opened per trip into the namespace (each stays open until written). */
const FILES_PER_ENTRY = 512;

export interface SysctlWriteResult {
  /** Files whose value differed and was written. */
  written: number;
  /** Keys with no file (an interface without IPv6, or gone): skipped, like `sysctl -e`. */
  missing: string[];
}

/**
 * Write `key=value` sysctls (slash form) of `netns` through /proc/sys, only where the current
 * value differs. Every file is attempted; failures are collected and thrown together at the end.
 */
export function writeSysctls(
  c: Libc,
  netns: string | undefined,
  writes: readonly string[],
): SysctlWriteResult {
  const res: SysctlWriteResult = { written: 0, missing: [] };
  const failed: string[] = [];
  const buf = Buffer.alloc(64);
  for (let i = 0; i < writes.length; i += FILES_PER_ENTRY) {
    const chunk = writes.slice(i, i + FILES_PER_ENTRY).map((w) => {
      const eq = w.indexOf("=");
      return { key: w.slice(0, eq), value: w.slice(eq + 1), fd: -1 };
    });
    inNetns(c, netns, () => {
      for (const f of chunk) {
        try {
          f.fd = openSync(`/proc/sys/${f.key}`, "r+");
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOENT") res.missing.push(f.key);
          else failed.push(`${f.key}: ${(e as Error).message}`);
        }
      }
    });
    for (const f of chunk) {
      if (f.fd < 0) continue;
      try {
        // Positional read and write: an integer sysctl ignores a write at a non-zero offset.
        const cur = buf.toString("utf8", 0, readSync(f.fd, buf, 0, buf.length, 0)).trim();
        if (cur !== f.value) {
          writeSync(f.fd, `${f.value}\n`, 0);
          res.written++;
        }
      } catch (e) {
        failed.push(`${f.key}=${f.value}: ${(e as Error).message}`);
      } finally {
        closeSync(f.fd);
      }
    }
  }
  if (failed.length > 0) {
    const where = netns === undefined ? "" : ` in netns ${netns}`;
    const shown =
      failed.slice(0, 10).join("; ") + (failed.length > 10 ? `; and ${failed.length - 10} more` : "");
    throw new CalicoError(
      "SYSCTL_FAILED",
      `${failed.length} of ${writes.length} sysctl writes${where} failed: ${shown}`,
    );
  }
  return res;
}

export interface SysctlLinkManagerOptions {
  /** Network namespace (name or path); undefined: this process's. */
  netns?: string | undefined;
  /** `netlink` (default when koffi loads; `CALICO_RTNETLINK=0` turns it off) or `sysctl`. */
  via?: "netlink" | "sysctl";
}

export class SysctlLinkManager implements LinkApplier {
  /** name → ifindex we configured. */
  private readonly done = new Map<string, number>();
  private readonly netns: string | undefined;
  private readonly via: "netlink" | "sysctl" | undefined;

  constructor(opts: SysctlLinkManagerOptions = {}) {
    this.netns = opts.netns;
    this.via = opts.via ?? (process.env.CALICO_RTNETLINK === "0" ? "sysctl" : undefined);
  }

  private async libc(): Promise<Libc | undefined> {
    if (this.via === "sysctl") return undefined;
    const c = await loadLibc();
    if (c === undefined && this.via === "netlink")
      throw new CalicoError("SYSCTL_FAILED", "sysctls through /proc need koffi, which failed to load");
    return c;
  }

  /** Interface name → ifindex in the namespace (of `names` only, when given: may be cheaper). */
  async links(names?: ReadonlySet<string>): Promise<Map<string, number>> {
    const c = await this.libc();
    if (c !== undefined) {
      const nl = RtNetlink.open(c, this.netns);
      try {
        return nl.links(names);
      } finally {
        nl.close();
      }
    }
    const json = await runOk("ip", ["-j", "link", "show"], { netns: this.netns });
    const out = new Map<string, number>();
    for (const l of JSON.parse(json) as { ifname: string; ifindex: number }[]) out.set(l.ifname, l.ifindex);
    return out;
  }

  async apply(ifaces: ReadonlySet<string>, ipv6: boolean, full: boolean): Promise<number> {
    // Fast path: every wanted interface is configured and none left. An interface re-created
    // under the same name without its endpoint changing is caught by the next full apply.
    if (!full && ifaces.size === this.done.size) {
      let all = true;
      for (const i of ifaces)
        if (!this.done.has(i)) {
          all = false;
          break;
        }
      if (all) return 0;
    }
    if (full) this.done.clear();
    // Incremental: look up only the interfaces not configured yet.
    const present = await this.links(
      full ? undefined : new Set([...ifaces].filter((i) => !this.done.has(i))),
    );
    const writes: string[] = full ? globalSysctls(ipv6) : [];
    const configured: string[] = [];
    for (const iface of ifaces) {
      const idx = present.get(iface);
      if (idx === undefined || this.done.get(iface) === idx) continue;
      writes.push(...interfaceSysctls(iface, ipv6));
      this.done.set(iface, idx);
      configured.push(iface);
    }
    for (const name of [...this.done.keys()])
      if (!ifaces.has(name) || (full && !present.has(name))) this.done.delete(name);
    if (writes.length === 0) return 0;
    try {
      await this.write(writes);
    } catch (e) {
      for (const iface of configured) this.done.delete(iface);
      throw e;
    }
    return configured.length;
  }

  private async write(writes: string[]): Promise<void> {
    const c = await this.libc();
    if (c !== undefined) {
      const { missing } = writeSysctls(c, this.netns, writes);
      // An interface that vanished since the listing has no conf directory: retry it later.
      for (const key of missing) {
        const m = /^net\/ipv4\/conf\/([^/]+)\/forwarding$/.exec(key);
        if (m !== null) this.done.delete(m[1]!);
      }
      return;
    }
    // -e: an interface without IPv6 (disable_ipv6) has no ipv6 keys; skip them, not fail.
    const r = await run("sysctl", ["-q", "-e", "-w", ...writes], { netns: this.netns });
    if (r.code !== 0)
      throw new CalicoError(
        "SYSCTL_FAILED",
        `sysctl of ${writes.length} keys${this.netns === undefined ? "" : ` in netns ${this.netns}`} failed: ${r.stderr.trim()}`,
      );
  }
}
