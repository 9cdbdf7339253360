/**
 * The kernel side of an attachment (reference/calico.md §1.7, DESIGN.md §3): a veth pair whose
 * host end `cali…` (MAC ee:ee:ee:ee:ee:ee, proxy ARP/NDP, the /32 and /128 host routes) stays
 * in the plugin's network namespace and whose other end becomes `CNI_IFNAME` in the container,
 * holding the addresses and the default routes via 169.254.1.1 and the host end's link-local.
 * Two `ip -batch` runs per ADD (host, container) keep the process count low. The node agent
 * later re-programs the host routes and sysctls with its own route proto; the ones written
 * here make the workload reachable before the agent has seen the endpoint.
 */
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { run, runOk } from "../dataplane/netns.js";
import { WORKLOAD_GATEWAY_V4, WORKLOAD_GATEWAY_V6, WORKLOAD_HOST_MAC } from "../lab/workload.js";

export { WORKLOAD_GATEWAY_V4, WORKLOAD_GATEWAY_V6, WORKLOAD_HOST_MAC };

export interface VethSpec {
  hostIface: string;
  /** The network namespace the host end goes in (name or path); undefined: ours. */
  hostNetns?: string | undefined;
  ifname: string;
  /** The container's netns path (CNI_NETNS). */
  netns: string;
  /** 0: the kernel's default. */
  mtu: number;
  ipv4: string[];
  ipv6: string[];
}

export interface VethResult {
  containerMac: string;
}

/** A random locally administered unicast MAC for the container end. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** The host-end sysctls Calico sets (reference §1.7), relative to /proc/sys/net. */
function hostSysctls(iface: string): { v4: [string, string][]; v6: [string, string][] } {
  return {
    v4: [
      [`ipv4/conf/${iface}/forwarding`, "1"],
      [`ipv4/conf/${iface}/proxy_arp`, "1"],
      [`ipv4/neigh/${iface}/proxy_delay`, "0"],
    ],
    v6: [
      [`ipv6/conf/${iface}/accept_ra`, "0"],
      [`ipv6/conf/${iface}/proxy_ndp`, "1"],
      [`ipv6/conf/${iface}/forwarding`, "1"],
    ],
  };
}

/**
 * The host end: links and routes by `ip -batch`, then the sysctls. In our own namespace they are
 * written through /proc; in another (the CNI daemon of an agent run with --netns) the same
 * process writes them after entering it: /proc/sys/net is the opener's namespace's.
 */
async function setupHostEnd(s: VethSpec, batch: string[]): Promise<void> {
  const input = `${batch.join("\n")}\n`;
  const { v4, v6 } = hostSysctls(s.hostIface);
  const withV6 = s.ipv6.length > 0;
  if (s.hostNetns === undefined) {
    await runOk("ip", ["-batch", "-"], { input });
    const w = ([path, value]: [string, string]): void => writeFileSync(`/proc/sys/net/${path}`, value);
    v4.forEach(w);
    if (withV6 && existsSync(`/proc/sys/net/ipv6/conf/${s.hostIface}`)) v6.forEach(w);
    return;
  }
  const echo = (l: [string, string][]): string =>
    l.map(([p, v]) => `echo ${v} > /proc/sys/net/${p}`).join(" && ");
  const script = [
    "ip -batch -",
    echo(v4),
    ...(withV6 ? [`{ [ ! -d /proc/sys/net/ipv6/conf/${s.hostIface} ] || { ${echo(v6)}; }; }`] : []),
  ].join(" && ");
  await runOk("sh", ["-c", script], { input, netns: s.hostNetns });
}

/** Create and address the pair. On failure the host end is removed again before the error is thrown. */
export async function setupVeth(s: VethSpec): Promise<VethResult> {
  if (!existsSync(s.netns)) throw new Error(`network namespace ${s.netns} does not exist`);
  const containerMac = randomMac();
  const mtu = s.mtu > 0 ? ` mtu ${s.mtu}` : "";
  const host = [
    `link add name ${s.hostIface} address ${WORKLOAD_HOST_MAC}${mtu} type veth peer name ${s.ifname} address ${containerMac}${mtu} netns ${s.netns}`,
    // The host end's link-local is the workloads' IPv6 gateway: given without DAD before the
    // link is up, it answers at once (the kernel's own would be tentative for 1–2 s).
    ...(s.ipv6.length > 0
      ? [
          `link set ${s.hostIface} addrgenmode none`,
          `address add ${WORKLOAD_GATEWAY_V6}/64 dev ${s.hostIface} nodad`,
        ]
      : []),
    `link set ${s.hostIface} up`,
    ...s.ipv4.map((a) => `route add ${a}/32 dev ${s.hostIface} scope link`),
    ...s.ipv6.map((a) => `route add ${a}/128 dev ${s.hostIface}`),
  ];
  const wl = s.ifname;
  const container = [
    `link set ${wl} up`,
    ...s.ipv4.map((a) => `address add ${a}/32 dev ${wl}`),
    ...s.ipv6.map((a) => `address add ${a}/128 dev ${wl} nodad`),
    ...(s.ipv4.length > 0
      ? [
          `route add ${WORKLOAD_GATEWAY_V4} dev ${wl} scope link`,
          `route add default via ${WORKLOAD_GATEWAY_V4} dev ${wl}`,
        ]
      : []),
    ...(s.ipv6.length > 0 ? [`route add default via ${WORKLOAD_GATEWAY_V6} dev ${wl}`] : []),
  ];
  try {
    await setupHostEnd(s, host);
    await runOk("ip", ["-batch", "-"], { input: `${container.join("\n")}\n`, netns: s.netns });
  } catch (e) {
    // The link-add may have failed because the name is someone else's: delete only a pair
    // whose peer we created, i.e. only if the add itself got through.
    const created = await hostIfaceHasPeerIn(s.hostIface, s.netns, s.hostNetns);
    if (created) await deleteLink(s.hostIface, s.hostNetns);
    throw e;
  }
  return { containerMac };
}

async function hostIfaceHasPeerIn(
  hostIface: string,
  netns: string,
  hostNetns: string | undefined,
): Promise<boolean> {
  const link = await showLink(hostIface, hostNetns);
  if (link === undefined) return false;
  const peer = await run("ip", ["-j", "link", "show"], { netns });
  if (peer.code !== 0) return false;
  const links = JSON.parse(peer.stdout) as IpLink[];
  return links.some((l) => l.link_index === link.ifindex);
}

export interface IpLink {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu?: number;
  operstate?: string;
  flags?: string[];
  link_index?: number;
}

/** The link in our netns (or `netns`), or undefined when there is none. */
export async function showLink(name: string, netns?: string): Promise<IpLink | undefined> {
  const r = await run("ip", ["-j", "link", "show", "dev", name], { netns });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as IpLink[])[0];
}

/** Delete a link in our netns (or `netns`); a link that is not there is not an error. */
export async function deleteLink(name: string, netns?: string): Promise<boolean> {
  const r = await run("ip", ["link", "del", "dev", name], { netns });
  if (r.code === 0) return true;
  if (/Cannot find device|does not exist/i.test(r.stderr)) return false;
  throw new Error(
    `ip link del ${name}${netns !== undefined ? ` in ${netns}` : ""} failed: ${r.stderr.trim()}`,
  );
}

interface IpAddrInfo {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

/** What CHECK compares against ADD's result: the container end's addresses and routes, the host end and its routes. */
export interface VethState {
  host: IpLink | undefined;
  hostRoutes: string[];
  container: IpLink | undefined;
  containerAddrs: string[];
  containerRoutes: { dst: string; gw?: string }[];
}

export async function readVethState(
  hostIface: string,
  ifname: string,
  netns: string,
  hostNetns?: string,
): Promise<VethState> {
  const host = await showLink(hostIface, hostNetns);
  const hostRoutes: string[] = [];
  if (host !== undefined) {
    for (const fam of ["-4", "-6"]) {
      const r = await runOk("ip", [fam, "-j", "route", "show", "dev", hostIface], { netns: hostNetns });
      for (const rt of JSON.parse(r) as IpRoute[]) hostRoutes.push(rt.dst);
    }
  }
  const container = existsSync(netns) ? await showLink(ifname, netns) : undefined;
  const containerAddrs: string[] = [];
  const containerRoutes: { dst: string; gw?: string }[] = [];
  if (container !== undefined) {
    const a = JSON.parse(await runOk("ip", ["-j", "addr", "show", "dev", ifname], { netns })) as IpAddrInfo[];
    for (const i of a[0]?.addr_info ?? []) {
      if (!i.local.startsWith("fe80:")) containerAddrs.push(`${i.local}/${i.prefixlen}`);
    }
    for (const fam of ["-4", "-6"]) {
      const r = await runOk("ip", [fam, "-j", "route", "show", "dev", ifname], { netns });
      for (const rt of JSON.parse(r) as IpRoute[]) {
        containerRoutes.push(rt.gateway !== undefined ? { dst: rt.dst, gw: rt.gateway } : { dst: rt.dst });
      }
    }
  }
  return { host, hostRoutes, container, containerAddrs, containerRoutes };
}
