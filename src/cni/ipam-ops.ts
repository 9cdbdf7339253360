/**
 * What `calico-ipam` does, over the IPAM library (docs/ipam.md): assign with the handle
 * `<network>.<containerID>` and Calico's owner attributes, release by that handle, check that
 * the handle still holds the addresses, collect the handles of attachments the runtime no
 * longer has (GC), and say whether the pools have room (STATUS). Used in-process by the
 * `calico` plugin and by the `calico-ipam` executable alike.
 */
import type { Datastore } from "../datastore/types.js";
import { IPAM } from "../ipam/allocator.js";
import {
  HANDLE_PREFIX,
  addressOf,
  blockKey,
  blockPrefix,
  blockSize,
  freeCount,
  parseBlock,
  type HandleDoc,
} from "../ipam/block.js";
import { IPAMErrorCode } from "../ipam/errors.js";
import { cidrContains, formatCIDR, formatIP, parseCIDR, type IPFamily } from "../api/net.js";
import type { IpamConf } from "./config.js";
import { CniCode, CniError, type Attachment } from "./types.js";

export interface Assigned {
  ipv4: string[];
  ipv6: string[];
}

/** Calico's handle for a CNI attachment (reference/calico.md §4.1). */
export const handleFor = (network: string, containerID: string): string => `${network}.${containerID}`;

/** IPAM failures as CNI errors: exhausted pools are ours (101), contention is "try again later". */
export function ipamCniError(e: unknown, what: string): CniError {
  const code = (e as { code?: string }).code;
  const cni =
    code === IPAMErrorCode.POOL_EXHAUSTED
      ? CniCode.ADDRESSES_EXHAUSTED
      : code === IPAMErrorCode.POOL_NOT_FOUND || code === IPAMErrorCode.POOL_DISABLED
        ? CniCode.INVALID_NETWORK_CONFIG
        : code === IPAMErrorCode.RETRIES_EXHAUSTED || code === "DATASTORE_UNAVAILABLE"
          ? CniCode.TRY_AGAIN_LATER
          : CniCode.INTERNAL;
  return new CniError(cni, `${what}: ${(e as Error).message}`, undefined, { cause: e });
}

export interface AssignRequest {
  network: string;
  containerID: string;
  node: string;
  ipam: IpamConf;
  /** Owner attributes (namespace, pod or workload) stored with the allocation. */
  attrs: Record<string, string>;
}

export async function assignAddresses(ds: Datastore, req: AssignRequest): Promise<Assigned> {
  const ipam = new IPAM(ds);
  const handleID = handleFor(req.network, req.containerID);
  try {
    const r = await ipam.autoAssign({
      node: req.node,
      handleID,
      attrs: { ...req.attrs, node: req.node, timestamp: new Date().toISOString() },
      num4: req.ipam.assignIPv4 ? 1 : 0,
      num6: req.ipam.assignIPv6 ? 1 : 0,
      ...(req.ipam.ipv4Pools.length > 0 ? { pools4: req.ipam.ipv4Pools } : {}),
      ...(req.ipam.ipv6Pools.length > 0 ? { pools6: req.ipam.ipv6Pools } : {}),
      intendedUse: "Workload",
    });
    return { ipv4: r.ipv4.map((a) => a.address), ipv6: r.ipv6.map((a) => a.address) };
  } catch (e) {
    // autoAssign gives back what it took on failure; release by handle in case it was killed half-way.
    await ipam.releaseByHandle(handleID).catch(() => undefined);
    throw ipamCniError(e, `Cannot assign addresses for container ${req.containerID} on node "${req.node}"`);
  }
}

export async function releaseAddresses(ds: Datastore, network: string, containerID: string): Promise<number> {
  try {
    return await new IPAM(ds).releaseByHandle(handleFor(network, containerID));
  } catch (e) {
    throw ipamCniError(e, `Cannot release the addresses of container ${containerID}`);
  }
}

/** The addresses the handle holds (empty when it holds none). */
export async function addressesOf(ds: Datastore, network: string, containerID: string): Promise<string[]> {
  const handleID = handleFor(network, containerID);
  const kv = await ds.get(`${HANDLE_PREFIX}${handleID}`);
  if (kv === undefined) return [];
  const doc = JSON.parse(kv.value) as HandleDoc;
  const out: string[] = [];
  for (const text of Object.keys(doc.block)) {
    const c = parseCIDR(text);
    const bkv = c !== undefined ? await ds.get(blockKey(c)) : undefined;
    if (bkv === undefined) continue;
    const b = parseBlock(bkv.value);
    b.allocations.forEach((idx, o) => {
      if (idx !== null && b.attributes[idx]?.handleID === handleID)
        out.push(formatIP(b.cidr.family, addressOf(b, o)));
    });
  }
  return out;
}

/**
 * GC: release every `<network>.<containerID>` handle whose allocations are on `node` and whose
 * container is not among the valid attachments. Returns the container IDs released.
 */
export async function collectHandles(
  ds: Datastore,
  network: string,
  node: string,
  valid: readonly Attachment[],
): Promise<string[]> {
  const keep = new Set(valid.map((a) => a.containerID));
  const prefix = `${HANDLE_PREFIX}${network}.`;
  const released: string[] = [];
  const ipam = new IPAM(ds);
  for (const kv of (await ds.list(prefix)).items) {
    const handleID = kv.key.slice(HANDLE_PREFIX.length);
    const containerID = handleID.slice(network.length + 1);
    if (keep.has(containerID)) continue;
    if (!(await handleOnNode(ds, handleID, JSON.parse(kv.value) as HandleDoc, node))) continue;
    try {
      await ipam.releaseByHandle(handleID);
    } catch (e) {
      throw ipamCniError(e, `GC cannot release handle "${handleID}"`);
    }
    released.push(containerID);
  }
  return released;
}

async function handleOnNode(ds: Datastore, handleID: string, doc: HandleDoc, node: string): Promise<boolean> {
  for (const cidrText of Object.keys(doc.block)) {
    const c = parseCIDR(cidrText);
    const bkv = c !== undefined ? await ds.get(blockKey(c)) : undefined;
    if (bkv === undefined) continue;
    const b = parseBlock(bkv.value);
    const attr = b.attributes.find((a) => a.handleID === handleID);
    if (attr?.secondary?.node === node) return true;
  }
  return false;
}

/** Free addresses per family in the pools this configuration may use (STATUS). */
export async function poolRoom(
  ds: Datastore,
  conf: IpamConf,
): Promise<{ family: IPFamily; pools: string[]; free: number }[]> {
  const ipam = new IPAM(ds);
  const all = (await ipam.pools()).filter((p) => !p.disabled && p.allowedUses.includes("Workload"));
  const reserved = await ipam.reservations();
  const out: { family: IPFamily; pools: string[]; free: number }[] = [];
  for (const family of [4, 6] as const) {
    if (family === 4 ? !conf.assignIPv4 : !conf.assignIPv6) continue;
    const named = family === 4 ? conf.ipv4Pools : conf.ipv6Pools;
    const pools = all.filter(
      (p) =>
        p.cidr.family === family &&
        (named.length === 0 || named.includes(p.name) || named.includes(formatCIDR(p.cidr))),
    );
    let free = 0;
    const blocks = (await ds.list(blockPrefix(family))).items.map((kv) => parseBlock(kv.value));
    for (const p of pools) {
      const total = Number(1n << BigInt((family === 4 ? 32 : 128) - p.cidr.prefix));
      const inBlocks = blocks.filter((b) => cidrContains(p.cidr, b.cidr));
      const blockCapacity = inBlocks.reduce((n, b) => n + blockSize(b.cidr), 0);
      free += total - blockCapacity + inBlocks.reduce((n, b) => n + freeCount(b, reserved), 0);
    }
    out.push({ family, pools: pools.map((p) => p.name), free });
  }
  return out;
}
