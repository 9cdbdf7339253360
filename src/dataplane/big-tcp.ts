/**
 * BIG TCP on the links a packet crosses (an option of the CNI plugin, on in the lab): GSO/GRO
 * packets of up to 192 KiB instead of 64 KiB, for IPv4 and IPv6 (Linux ≥ 6.3; Cilium's
 * `enable-ipv4-big-tcp`). A pure layer-3 fabric can: every hop is a veth or a routed NIC and
 * nothing encapsulates (a VXLAN device stays at 64 KiB). The kernel segments wherever a link
 * allows less, so a mixed path is correct, only not faster there.
 */
import { RtNetlink, linkPacketSizes, setLinkPacketSizes, type LinkPacketSizes } from "./rtnetlink.js";
import { loadLibc } from "./nft/netlink-elements.js";

/** Cilium's BIG TCP size: 192 KiB. */
export const BIG_TCP_SIZE = 196_608;

/**
 * Set the GSO/GRO maximum sizes of `names` in `netns` (undefined: ours). Returns what could
 * not be done, one line per link (or one for all when rtnetlink is unavailable); empty when
 * every link is set.
 */
export async function setBigTcp(
  netns: string | undefined,
  names: readonly string[],
  size = BIG_TCP_SIZE,
): Promise<string[]> {
  if (names.length === 0) return [];
  const r = await withRtNetlink(netns, (rt) =>
    setLinkPacketSizes(rt, names, size).map((f) => `BIG TCP not set on ${f.name}: ${f.reason}`),
  );
  return r ?? [`BIG TCP not set on ${names.join(", ")}: koffi (libc) is not available`];
}

/** The GSO/GRO sizes of `names` in `netns`, as the kernel reports them (undefined: no such link); undefined without rtnetlink. */
export function readLinkPacketSizes(
  netns: string | undefined,
  names: readonly string[],
): Promise<(LinkPacketSizes | undefined)[] | undefined> {
  return withRtNetlink(netns, (rt) => names.map((n) => linkPacketSizes(rt, n)));
}

/** `fn` with an rtnetlink socket in `netns`, closed after; undefined when koffi cannot load. */
async function withRtNetlink<T>(netns: string | undefined, fn: (rt: RtNetlink) => T): Promise<T | undefined> {
  const c = await loadLibc();
  if (c === undefined) return undefined;
  const rt = RtNetlink.open(c, netns);
  try {
    return fn(rt);
  } finally {
    rt.close();
  }
}
