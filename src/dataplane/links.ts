/**
 * Per-interface sysctls for local workload interfaces (reference/calico.md §1.7,
 * lab-recipes §1): forwarding, proxy ARP answering for 169.254.1.1 at once (proxy_delay=0),
 * IPv6 proxy NDP, forwarding, no router advertisements and no DAD (without accept_dad=0 the
 * first v6 packets fail for ~2 s). Plus the global ip_forward / IPv6 forwarding, which a new
 * netns has off.
 *
 * Only interfaces that exist are configured (the CNI plugin creates them, often after the
 * endpoint appears); an interface is remembered by name and ifindex, so one that appears later
 * or is re-created gets its sysctls on the next apply. All writes of an apply go in ONE
 * `sysctl` invocation.
 */
import { CalicoError } from "../errors.js";
import { run, runOk } from "./netns.js";

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

export class SysctlLinkManager implements LinkApplier {
  /** name → ifindex we configured. */
  private readonly done = new Map<string, number>();

  constructor(private readonly netns?: string) {}

  async links(): Promise<Map<string, number>> {
    const json = await runOk("ip", ["-j", "link", "show"], { netns: this.netns });
    const out = new Map<string, number>();
    for (const l of JSON.parse(json) as { ifname: string; ifindex: number }[]) out.set(l.ifname, l.ifindex);
    return out;
  }

  async apply(ifaces: ReadonlySet<string>, ipv6: boolean, full: boolean): Promise<number> {
    // Fast path: every wanted interface is configured and none left. Listing links spawns
    // `ip`, which costs tens of ms from a large agent process; an interface re-created under
    // the same name without its endpoint changing is caught by the next full apply.
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
    const present = await this.links();
    const writes: string[] = full ? globalSysctls(ipv6) : [];
    let n = 0;
    for (const iface of ifaces) {
      const idx = present.get(iface);
      if (idx === undefined || this.done.get(iface) === idx) continue;
      writes.push(...interfaceSysctls(iface, ipv6));
      this.done.set(iface, idx);
      n++;
    }
    for (const name of [...this.done.keys()])
      if (!ifaces.has(name) || !present.has(name)) this.done.delete(name);
    if (writes.length === 0) return 0;
    // -e: an interface without IPv6 (disable_ipv6) has no ipv6 keys; skip them, not fail.
    const r = await run("sysctl", ["-q", "-e", "-w", ...writes], { netns: this.netns });
    if (r.code !== 0) {
      for (const iface of ifaces) this.done.delete(iface);
      throw new CalicoError(
        "SYSCTL_FAILED",
        `sysctl for ${n} workload interfaces failed: ${r.stderr.trim()}`,
      );
    }
    return n;
  }
}
