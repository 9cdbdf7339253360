/**
 * calico-node's start-up, before the loop (docs/agent.md): register or update this host's
 * `Node` resource with its BGP addresses, and set the sysctls the agent needs. Nothing else in
 * the kernel is touched here; the dataplane waits for the syncer's first InSync.
 */
import { CalicoError } from "../errors.js";
import { run } from "../dataplane/netns.js";
import { isResourceExists, isResourceNotFound, type ResourceStore } from "../datastore/resources.js";
import type { AnyResource } from "../api/resource.js";
import { nullLogger, type Logger } from "./log.js";

export interface NodeAddresses {
  /** `198.18.0.5/24`; undefined leaves the stored value as it is. */
  ipv4?: string | undefined;
  ipv6?: string | undefined;
}

/**
 * Create `Node(nodename)` or update its `spec.bgp.ipv4Address`/`ipv6Address`, keeping every
 * other field (AS number, route reflector ID, tunnel addresses, labels) as others set it.
 * Concurrent writers are handled by compare-and-swap with retries (ResourceStore.update).
 */
export async function registerNode(
  store: ResourceStore,
  nodename: string,
  addrs: NodeAddresses,
  log: Logger = nullLogger(),
): Promise<AnyResource> {
  const setAddrs = (bgp: Record<string, unknown>): Record<string, unknown> => ({
    ...bgp,
    ...(addrs.ipv4 !== undefined ? { ipv4Address: addrs.ipv4 } : {}),
    ...(addrs.ipv6 !== undefined ? { ipv6Address: addrs.ipv6 } : {}),
  });
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const res = await store.update("Node", nodename, undefined, (current) => {
        const spec = { ...current.spec };
        const bgp = setAddrs((spec.bgp as Record<string, unknown> | undefined) ?? {});
        if (Object.keys(bgp).length > 0) spec.bgp = bgp;
        return { ...current, spec };
      });
      log.info("Updated Node", { node: nodename, bgp: res.spec.bgp });
      return res;
    } catch (err) {
      if (!isResourceNotFound(err)) throw err;
    }
    const bgp = setAddrs({});
    try {
      const res = await store.create({
        apiVersion: "projectcalico.org/v3",
        kind: "Node",
        metadata: { name: nodename },
        spec: Object.keys(bgp).length > 0 ? { bgp } : {},
      });
      log.info("Created Node", { node: nodename, bgp: res.spec.bgp });
      return res;
    } catch (err) {
      if (!isResourceExists(err)) throw err; // created concurrently: update it instead
    }
  }
  throw new CalicoError(
    "AGENT_STARTUP_FAILED",
    `Cannot register Node(${nodename}): it keeps appearing and vanishing`,
  );
}

/** The stored BGP addresses of a node, if it exists (to fall back on when autodetection finds nothing). */
export async function storedNodeAddresses(store: ResourceStore, nodename: string): Promise<NodeAddresses> {
  try {
    const node = await store.get("Node", nodename);
    const bgp = (node.spec.bgp ?? {}) as { ipv4Address?: string; ipv6Address?: string };
    return { ipv4: bgp.ipv4Address, ipv6: bgp.ipv6Address };
  } catch (err) {
    if (isResourceNotFound(err)) return {};
    throw err;
  }
}

export interface Sysctl {
  name: string;
  value: string;
}

/** The host-wide sysctls a router needs (per-interface ones are the dataplane's). */
export function requiredSysctls(ipv6: boolean): Sysctl[] {
  return [
    { name: "net.ipv4.ip_forward", value: "1" },
    ...(ipv6 ? [{ name: "net.ipv6.conf.all.forwarding", value: "1" }] : []),
  ];
}

export type SysctlWriter = (s: Sysctl) => Promise<void>;

/** `sysctl -w` in the agent's namespace (sysctls under net. are per network namespace). */
export function sysctlWriter(netns: string | undefined): SysctlWriter {
  return async ({ name, value }) => {
    const r = await run("sysctl", ["-q", "-w", `${name}=${value}`], { netns });
    if (r.code !== 0) {
      throw new CalicoError(
        "AGENT_SYSCTL_FAILED",
        `Cannot set sysctl ${name}=${value}${netns !== undefined ? ` in netns ${netns}` : ""}: ${r.stderr.trim()}`,
      );
    }
  };
}

export async function setSysctls(
  sysctls: readonly Sysctl[],
  write: SysctlWriter,
  log: Logger = nullLogger(),
): Promise<void> {
  for (const s of sysctls) {
    await write(s);
    log.info("Set sysctl", { name: s.name, value: s.value });
  }
}
