/**
 * The `calico` network plugin (reference/calico.md §7.2, §7.3). ADD: addresses from calico-ipam
 * (called in-process through the IPAM library rather than exec'd: the same code and datastore,
 * and one Node start-up saved per container), the veth (veth.ts), the WorkloadEndpoint, the
 * result. Any failure after the first allocation undoes everything done so far. DEL removes
 * veth, endpoint and allocation, each step tolerating its absence. CHECK compares the kernel,
 * the endpoint and IPAM with what ADD set up. GC drops endpoints and allocations of attachments
 * the runtime no longer has. STATUS: datastore reachable and pools with room.
 */
import type { Datastore } from "../datastore/types.js";
import type { AnyResource } from "../api/resource.js";
import { setBigTcp } from "../dataplane/big-tcp.js";
import { openPluginDatastore } from "./datastore.js";
import {
  deleteEndpoint,
  endpointIdentity,
  ensureNetworkProfile,
  getEndpoint,
  nodeEndpoints,
  writeEndpoint,
  NETWORK_ANNOTATION,
} from "./endpoint.js";
import { addressesOf, assignAddresses, collectHandles, poolRoom, releaseAddresses } from "./ipam-ops.js";
import { appendResult } from "./result.js";
import type { PluginContext, PluginHandlers } from "./skel.js";
import { CniCode, CniError, type CniResult } from "./types.js";
import {
  deleteLink,
  readVethState,
  setupVeth,
  showLink,
  WORKLOAD_GATEWAY_V4,
  WORKLOAD_GATEWAY_V6,
  WORKLOAD_HOST_MAC,
} from "./veth.js";

export const CALICO_IPAM = "calico-ipam";

function requireCalicoIpam(ctx: PluginContext): void {
  if (ctx.conf.ipam.type !== CALICO_IPAM) {
    throw new CniError(
      CniCode.UNSUPPORTED_FIELD,
      `Unsupported network configuration: ipam.type ${JSON.stringify(ctx.conf.ipam.type)}; the calico plugin works with "calico-ipam"`,
    );
  }
}

async function withDatastore<T>(ctx: PluginContext, fn: (ds: Datastore) => Promise<T>): Promise<T> {
  ctx.log.phase("handlers loaded");
  if (ctx.sharedDatastore !== undefined)
    return fn(await ctx.sharedDatastore(ctx.conf.datastore, ctx.processEnv));
  const ds = await openPluginDatastore(ctx.conf.datastore, ctx.processEnv);
  ctx.log.phase("datastore open");
  try {
    return await fn(ds);
  } finally {
    await ds.close();
    ctx.log.phase("datastore closed");
  }
}

const kernelError = (what: string, e: unknown): CniError =>
  new CniError(CniCode.INTERNAL, `${what}: ${(e as Error).message}`, undefined, { cause: e });

async function add(ctx: PluginContext): Promise<CniResult> {
  requireCalicoIpam(ctx);
  const { env, conf, log, hostNetns } = ctx;
  const id = endpointIdentity(env, conf.nodename, conf.name);
  return withDatastore(ctx, async (ds) => {
    const existing = await getEndpoint(ds, id);
    if (existing !== undefined && existing.spec.containerID === env.containerID) {
      throw new CniError(
        CniCode.INTERNAL,
        `Container ${env.containerID} is already attached as WorkloadEndpoint ${id.namespace}/${id.name}; run DEL first`,
      );
    }
    const ips = await assignAddresses(ds, {
      network: conf.name,
      containerID: env.containerID,
      node: conf.nodename,
      ipam: conf.ipam,
      attrs: id.ipamAttrs,
    });
    log.info(`assigned ${[...ips.ipv4, ...ips.ipv6].join(", ")} to ${id.name}`);
    log.phase("addresses assigned");
    let vethMade = false;
    try {
      const spec = {
        hostIface: id.hostIface,
        hostNetns,
        ifname: env.ifname,
        netns: env.netns,
        mtu: conf.mtu,
        ipv4: ips.ipv4,
        ipv6: ips.ipv6,
      };
      let mac: string;
      try {
        try {
          ({ containerMac: mac } = await setupVeth(spec));
        } catch (e) {
          // A host end with our name that setupVeth did not create is left by a previous
          // sandbox of the same pod: Calico replaces it. Looked for only on failure, to keep
          // the common ADD at two `ip` runs.
          if ((await showLink(id.hostIface, hostNetns)) === undefined) throw e;
          log.warn(`replacing a stale ${id.hostIface}`);
          await deleteLink(id.hostIface, hostNetns);
          ({ containerMac: mac } = await setupVeth(spec));
        }
      } catch (e) {
        throw kernelError(`Cannot wire ${env.ifname} in ${env.netns} to ${id.hostIface}`, e);
      }
      vethMade = true;
      if (conf.bigTcp) {
        // A performance option: a kernel or link that cannot is reported, not fatal.
        const problems = [
          ...(await setBigTcp(hostNetns, [id.hostIface])),
          ...(await setBigTcp(env.netns, [env.ifname])),
        ];
        for (const p of problems) log.warn(p);
      }
      log.phase("veth wired");
      if (id.orchestrator === "cni") await ensureNetworkProfile(ds, conf.name);
      await writeEndpoint(ds, {
        id,
        node: conf.nodename,
        network: conf.name,
        containerID: env.containerID,
        ifname: env.ifname,
        mac,
        ipv4: ips.ipv4,
        ipv6: ips.ipv6,
        labels: conf.labels,
      });
      log.phase("endpoint written");
      const mtu = conf.mtu > 0 ? { mtu: conf.mtu } : {};
      const mine: CniResult = {
        interfaces: [
          { name: id.hostIface, mac: WORKLOAD_HOST_MAC, ...mtu },
          { name: env.ifname, mac, ...mtu, sandbox: env.netns },
        ],
        ips: [
          ...ips.ipv4.map((a) => ({ address: `${a}/32`, gateway: WORKLOAD_GATEWAY_V4, interface: 1 })),
          ...ips.ipv6.map((a) => ({ address: `${a}/128`, gateway: WORKLOAD_GATEWAY_V6, interface: 1 })),
        ],
        routes: [
          ...(ips.ipv4.length > 0 ? [{ dst: "0.0.0.0/0", gw: WORKLOAD_GATEWAY_V4 }] : []),
          ...(ips.ipv6.length > 0 ? [{ dst: "::/0", gw: WORKLOAD_GATEWAY_V6 }] : []),
        ],
        dns: typeof conf.raw.dns === "object" && conf.raw.dns !== null ? conf.raw.dns : {},
      };
      return conf.prevResult !== undefined ? appendResult(conf.prevResult, mine) : mine;
    } catch (e) {
      log.warn(`ADD failed, rolling back: ${(e as Error).message}`);
      if (vethMade) await deleteLink(id.hostIface, hostNetns).catch(() => false);
      const wep = await getEndpoint(ds, id).catch(() => undefined);
      if (wep !== undefined && wep.spec.containerID === env.containerID)
        await deleteEndpoint(ds, wep).catch(() => undefined);
      await releaseAddresses(ds, conf.name, env.containerID).catch(() => 0);
      throw e;
    }
  });
}

async function del(ctx: PluginContext): Promise<void> {
  requireCalicoIpam(ctx);
  const { env, conf, log } = ctx;
  const id = endpointIdentity(env, conf.nodename, conf.name);
  await withDatastore(ctx, async (ds) => {
    const wep = await getEndpoint(ds, id);
    const mine = wep === undefined || wep.spec.containerID === env.containerID;
    try {
      // Deleting the host end takes the container end with it. When the endpoint belongs to a
      // newer sandbox of the same pod, the host name is that sandbox's: only touch our netns.
      const gone = mine ? await deleteLink(id.hostIface, ctx.hostNetns) : false;
      if (!gone && env.netns !== "") {
        const { existsSync } = await import("node:fs");
        if (existsSync(env.netns)) await deleteLink(env.ifname, env.netns);
      }
    } catch (e) {
      throw kernelError(`Cannot remove ${id.hostIface}`, e);
    }
    log.phase("link deleted");
    if (wep !== undefined && mine) await deleteEndpoint(ds, wep);
    log.phase("endpoint deleted");
    const n = await releaseAddresses(ds, conf.name, env.containerID);
    log.phase("addresses released");
    log.info(
      `DEL released ${n} address(es)${wep !== undefined && !mine ? "; endpoint belongs to a newer container, kept" : ""}`,
    );
  });
}

async function check(ctx: PluginContext): Promise<void> {
  requireCalicoIpam(ctx);
  const { env, conf } = ctx;
  const id = endpointIdentity(env, conf.nodename, conf.name);
  const problems: string[] = [];
  await withDatastore(ctx, async (ds) => {
    const wep = await getEndpoint(ds, id);
    const held = await addressesOf(ds, conf.name, env.containerID);
    if (wep === undefined) problems.push(`WorkloadEndpoint ${id.namespace}/${id.name} does not exist`);
    else if (wep.spec.containerID !== env.containerID)
      problems.push(`WorkloadEndpoint ${id.name} belongs to container ${String(wep.spec.containerID)}`);
    const nets = (wep?.spec.ipNetworks as string[] | undefined) ?? [];
    const want = held.map((a) => `${a}/${a.includes(":") ? 128 : 32}`);
    if (held.length === 0) problems.push(`IPAM holds no address for handle ${conf.name}.${env.containerID}`);
    for (const n of nets)
      if (!want.includes(n)) problems.push(`endpoint address ${n} is not allocated to this container`);
    const st = await readVethState(id.hostIface, env.ifname, env.netns, ctx.hostNetns);
    if (st.host === undefined) problems.push(`host interface ${id.hostIface} is missing`);
    else {
      if (st.host.address !== WORKLOAD_HOST_MAC)
        problems.push(`${id.hostIface} has MAC ${String(st.host.address)}, expected ${WORKLOAD_HOST_MAC}`);
      if (!(st.host.flags ?? []).includes("UP")) problems.push(`${id.hostIface} is down`);
    }
    if (st.container === undefined) problems.push(`${env.ifname} is missing in ${env.netns}`);
    const expected = new Set([...want, ...(conf.prevResult?.ips.map((i) => i.address) ?? [])]);
    if (st.container !== undefined) {
      for (const a of expected)
        if (!st.containerAddrs.includes(a)) problems.push(`${env.ifname} lacks address ${a}`);
      if (
        held.some((a) => !a.includes(":")) &&
        !st.containerRoutes.some((r) => r.dst === "default" && r.gw === WORKLOAD_GATEWAY_V4)
      ) {
        problems.push(`${env.ifname} has no default route via ${WORKLOAD_GATEWAY_V4}`);
      }
      if (
        held.some((a) => a.includes(":")) &&
        !st.containerRoutes.some((r) => r.dst === "default" && r.gw === WORKLOAD_GATEWAY_V6)
      ) {
        problems.push(`${env.ifname} has no IPv6 default route via ${WORKLOAD_GATEWAY_V6}`);
      }
    }
    for (const a of want)
      if (st.host !== undefined && !st.hostRoutes.includes(a.replace(/\/(32|128)$/, ""))) {
        problems.push(`no host route to ${a} via ${id.hostIface}`);
      }
  });
  if (problems.length > 0) {
    throw new CniError(
      CniCode.CHECK_FAILED,
      `CHECK failed for container ${env.containerID}: ${problems.join("; ")}`,
    );
  }
}

export async function statusOf(ctx: PluginContext): Promise<void> {
  let rooms: Awaited<ReturnType<typeof poolRoom>>;
  try {
    rooms = await withDatastore(ctx, (ds) => poolRoom(ds, ctx.conf.ipam));
  } catch (e) {
    throw new CniError(CniCode.PLUGIN_NOT_AVAILABLE, `Datastore not available: ${(e as Error).message}`);
  }
  for (const r of rooms) {
    if (r.pools.length === 0)
      throw new CniError(CniCode.PLUGIN_NOT_AVAILABLE, `No enabled IPv${r.family} pool for workloads`);
    if (r.free < 1) {
      throw new CniError(
        CniCode.PLUGIN_NOT_AVAILABLE,
        `IPv${r.family} pools ${r.pools.join(", ")} have no free address`,
      );
    }
  }
}

function attachmentsOf(ctx: PluginContext) {
  const valid = ctx.conf.validAttachments;
  if (valid === undefined) {
    throw new CniError(
      CniCode.INVALID_NETWORK_CONFIG,
      "Invalid network configuration: GC needs cni.dev/valid-attachments",
    );
  }
  return valid;
}

async function gc(ctx: PluginContext): Promise<void> {
  requireCalicoIpam(ctx);
  const valid = attachmentsOf(ctx);
  const { conf, log } = ctx;
  await withDatastore(ctx, async (ds) => {
    const keep = new Set(valid.map((a) => `${a.containerID}/${a.ifname}`));
    const stale: AnyResource[] = (await nodeEndpoints(ds, conf.nodename)).filter(
      (w) =>
        w.metadata.annotations?.[NETWORK_ANNOTATION] === conf.name &&
        !keep.has(`${String(w.spec.containerID)}/${String(w.spec.endpoint)}`),
    );
    for (const w of stale) {
      await deleteLink(String(w.spec.interfaceName), ctx.hostNetns).catch(() => false);
      await deleteEndpoint(ds, w);
    }
    const released = await collectHandles(ds, conf.name, conf.nodename, valid);
    log.info(`GC removed ${stale.length} endpoint(s), released ${released.length} handle(s)`);
  });
}

export const calicoPlugin: PluginHandlers = { add, del, check, status: statusOf, gc };

/** The IPAM plugin's handlers (calico-ipam executable): addresses only, no interfaces. */
export const calicoIpamPlugin: PluginHandlers = {
  async add(ctx) {
    const { env, conf } = ctx;
    const id = endpointIdentity(env, conf.nodename, conf.name);
    const ips = await withDatastore(ctx, (ds) =>
      assignAddresses(ds, {
        network: conf.name,
        containerID: env.containerID,
        node: conf.nodename,
        ipam: conf.ipam,
        attrs: id.ipamAttrs,
      }),
    );
    return {
      interfaces: [],
      ips: [
        ...ips.ipv4.map((a) => ({ address: `${a}/32` })),
        ...ips.ipv6.map((a) => ({ address: `${a}/128` })),
      ],
      routes: [],
      dns: {},
    };
  },
  async del(ctx) {
    await withDatastore(ctx, (ds) => releaseAddresses(ds, ctx.conf.name, ctx.env.containerID));
  },
  async check(ctx) {
    const held = await withDatastore(ctx, (ds) => addressesOf(ds, ctx.conf.name, ctx.env.containerID));
    if (held.length === 0) {
      throw new CniError(
        CniCode.CHECK_FAILED,
        `IPAM holds no address for handle ${ctx.conf.name}.${ctx.env.containerID}`,
      );
    }
  },
  status: statusOf,
  async gc(ctx) {
    const valid = attachmentsOf(ctx);
    await withDatastore(ctx, (ds) => collectHandles(ds, ctx.conf.name, ctx.conf.nodename, valid));
  },
};
