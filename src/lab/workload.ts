/**
 * Wire a workload namespace to a host namespace the way Calico's CNI plugin does
 * (reference/calico.md §1.7): a veth whose host end is `cali…` with MAC ee:ee:ee:ee:ee:ee and
 * whose workload end is `eth0` holding the workload's /32 and /128, a link route to
 * 169.254.1.1 and default routes via 169.254.1.1 and the host end's link-local address.
 * The host side's routes and sysctls are the node agent's job, not this module's.
 */
import { createHash } from "node:crypto";
import { runOk } from "../dataplane/netns.js";

export const WORKLOAD_HOST_MAC = "ee:ee:ee:ee:ee:ee";
/** The link-local address of a host veth end with MAC ee:ee:ee:ee:ee:ee (EUI-64). */
export const WORKLOAD_GATEWAY_V6 = "fe80::ecee:eeff:feee:eeee";
export const WORKLOAD_GATEWAY_V4 = "169.254.1.1";

/** `cali` + 11 hex chars of SHA-1 of the workload identity, as Calico names host veths. */
export function hostVethName(identity: string, prefix = "cali"): string {
  return `${prefix}${createHash("sha1").update(identity).digest("hex").slice(0, 11)}`;
}

export interface WorkloadWiring {
  /** Host network namespace (name or path). */
  hostNetns: string;
  /** Workload network namespace (name or path); must exist. */
  workloadNetns: string;
  hostIface: string;
  /** Container-side name (default eth0). */
  workloadIface?: string;
  /** Bare addresses. */
  ipv4?: string[];
  ipv6?: string[];
  mtu?: number;
}

export async function wireWorkload(w: WorkloadWiring): Promise<void> {
  const h = w.hostNetns;
  const wl = w.workloadNetns;
  const eth = w.workloadIface ?? "eth0";
  await runOk("ip", ["-n", h, "link", "add", w.hostIface, "type", "veth", "peer", "name", eth, "netns", wl]);
  await runOk("ip", ["-n", h, "link", "set", w.hostIface, "address", WORKLOAD_HOST_MAC]);
  if (w.mtu !== undefined) {
    await runOk("ip", ["-n", h, "link", "set", w.hostIface, "mtu", String(w.mtu)]);
    await runOk("ip", ["-n", wl, "link", "set", eth, "mtu", String(w.mtu)]);
  }
  await runOk("ip", ["-n", h, "link", "set", w.hostIface, "up"]);
  await runOk("ip", ["-n", wl, "link", "set", eth, "up"]);
  const batch: string[] = [];
  for (const a of w.ipv4 ?? []) batch.push(`address add ${a}/32 dev ${eth}`);
  for (const a of w.ipv6 ?? []) batch.push(`address add ${a}/128 dev ${eth} nodad`);
  if ((w.ipv4 ?? []).length > 0) {
    batch.push(`route add ${WORKLOAD_GATEWAY_V4} dev ${eth} scope link`);
    batch.push(`route add default via ${WORKLOAD_GATEWAY_V4} dev ${eth}`);
  }
  if ((w.ipv6 ?? []).length > 0) batch.push(`route add ::/0 via ${WORKLOAD_GATEWAY_V6} dev ${eth}`);
  if (batch.length > 0) await runOk("ip", ["-n", wl, "-batch", "-"], { input: `${batch.join("\n")}\n` });
}
