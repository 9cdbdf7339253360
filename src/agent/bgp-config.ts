/**
 * What this node's BGP speaker should be, from the datastore (reference/calico.md §2.14, §2.15,
 * §5): pure, no I/O. `BgpResourceCache` keeps the resources BGP reads from the syncer's updates;
 * `desiredBgp(view, nodename)` turns them into the speaker's settings, its peers and the
 * prefixes it originates — what Calico's confd renders into bird.cfg, bird_aggr.cfg and
 * bird_ipam.cfg. Anything that cannot be honoured is named in `problems`, never thrown.
 */
import { createHash } from "node:crypto";
import { parseASNumber } from "../api/kinds/as-number.js";
import { parsePeerIP } from "../api/kinds/bgp-peer.js";
import { parseDuration } from "../api/duration.js";
import {
  cidrContains,
  formatCIDR,
  formatIP,
  parseCIDR,
  parseIP,
  type CIDR,
  type IPFamily,
} from "../api/net.js";
import { decodeBlock, decodeNodeAddrs } from "../calc/routes.js";
import { classifyKey, labelsOf, metadataOf, obj, specOf, str, strings, objects } from "../calc/decode.js";
import type { KVUpdate } from "../calc/types.js";
import type { Block } from "../ipam/block.js";
import type { PathAttributes } from "../bgp/packet/types.js";
import type { PeerConfig } from "../bgp/speaker.js";
import { parseSelector } from "../selector/index.js";

// ---- types ------------------------------------------------------------------------------

/** `calicoctl node status`'s PEER TYPE column. */
export type PeerType = "node-to-node mesh" | "global" | "node specific";

export interface BgpNode {
  name: string;
  labels: Record<string, string>;
  asn?: number;
  /** Bare BGP addresses. */
  v4?: string;
  v6?: string;
  rrClusterId?: string;
}

export interface BgpPool {
  cidr: CIDR;
  disabled: boolean;
  disableBGPExport: boolean;
}

/** The resources BGP reads, by name (blocks by datastore key). */
export interface BgpView {
  nodes: ReadonlyMap<string, BgpNode>;
  /** BGPConfiguration specs: `default`, `node.<name>`. */
  configs: ReadonlyMap<string, Record<string, unknown>>;
  peers: ReadonlyMap<string, Record<string, unknown>>;
  pools: ReadonlyMap<string, BgpPool>;
  blocks: ReadonlyMap<string, Block>;
}

export interface DesiredPeer extends PeerConfig {
  type: PeerType;
  /** BIRD's protocol name Calico would use (`Mesh_198_18_0_2`, `Node_…`, `Global_…`). */
  name: string;
  /** GR restart time offered to this peer, seconds; 0 = not offered. */
  gracefulRestartTime: number;
}

export interface DesiredBgp {
  asn: number;
  routerId: string;
  listenPort: number;
  /** bindMode NodeIP: listen on the node's IPv4 address only. */
  listenHost?: string;
  /** GR restart time offered by default (nodeMeshMaxRestartTime, else 120 s); 0 = off. */
  gracefulRestartTime: number;
  peers: DesiredPeer[];
  /** Prefix text → attributes to originate it with (communities from prefixAdvertisements). */
  prefixes: Map<string, PathAttributes>;
  /** Configuration we could not honour, in words. */
  problems: string[];
}

export type BgpDecision = { enabled: true; config: DesiredBgp } | { enabled: false; reason: string };

/** Looks up `secretKeyRef` passwords; undefined when the secret is not available. */
export type SecretLookup = (name: string, key: string) => string | undefined;

export const DEFAULT_ASN = 64512;
export const DEFAULT_LISTEN_PORT = 179;
/** BIRD's default graceful-restart time, which Calico keeps (reference §5.3). */
export const DEFAULT_RESTART_TIME = 120;

// ---- the cache the runner feeds from the syncer -----------------------------------------

/** An address (with or without a prefix length) in canonical text, or undefined. */
function bare(s: string | undefined): string | undefined {
  const ip = s === undefined ? undefined : parseIP(s.split("/")[0]!.trim());
  return ip === undefined ? undefined : formatIP(ip.family, ip.value);
}

export function decodeBgpNode(name: string, value: unknown): BgpNode | undefined {
  const spec = specOf(value);
  if (spec === undefined) return undefined;
  const bgp = obj(spec.bgp);
  const addrs = decodeNodeAddrs(value) ?? {};
  const n: BgpNode = { name, labels: labelsOf(metadataOf(value).labels) };
  const asn = parseASNumber(bgp.asNumber);
  if (asn !== undefined) n.asn = asn;
  const v4 = bare(addrs.v4);
  const v6 = bare(addrs.v6);
  if (v4 !== undefined) n.v4 = v4;
  if (v6 !== undefined) n.v6 = v6;
  const cid = bare(str(bgp.routeReflectorClusterID));
  if (cid !== undefined) n.rrClusterId = cid;
  return n;
}

function decodePool(value: unknown): BgpPool | undefined {
  const spec = specOf(value);
  const cidr = parseCIDR(str(spec?.cidr) ?? "");
  if (spec === undefined || cidr === undefined) return undefined;
  return { cidr, disabled: spec.disabled === true, disableBGPExport: spec.disableBGPExport === true };
}

/** The syncer's updates folded into a `BgpView`; tolerant of any value (unreadable = absent). */
export class BgpResourceCache implements BgpView {
  readonly nodes = new Map<string, BgpNode>();
  readonly configs = new Map<string, Record<string, unknown>>();
  readonly peers = new Map<string, Record<string, unknown>>();
  readonly pools = new Map<string, BgpPool>();
  readonly blocks = new Map<string, Block>();

  /** Apply a batch; true when something BGP reads changed. */
  onUpdates(updates: readonly KVUpdate[]): boolean {
    let changed = false;
    for (const u of updates) changed = this.#one(u) || changed;
    return changed;
  }

  #one({ key, value }: KVUpdate): boolean {
    const k = classifyKey(key);
    if (k.type === "block") return put(this.blocks, key, value === null ? undefined : decodeBlock(value));
    if (k.type !== "resource") return false;
    switch (k.plural) {
      case "nodes":
        return put(this.nodes, k.name, value === null ? undefined : decodeBgpNode(k.name, value));
      case "bgpconfigurations":
        return put(this.configs, k.name, value === null ? undefined : specOf(value));
      case "bgppeers":
        return put(this.peers, k.name, value === null ? undefined : specOf(value));
      case "ippools":
        return put(this.pools, k.name, value === null ? undefined : decodePool(value));
      default:
        return false;
    }
  }
}

function put<T>(m: Map<string, T>, k: string, v: T | undefined): boolean {
  if (v === undefined) return m.delete(k);
  m.set(k, v);
  return true;
}

// ---- the decision -----------------------------------------------------------------------

/** Calico's `CALICO_ROUTER_ID=hash`: 4 bytes of a hash of the node name (used without IPv4). */
export function hashRouterId(nodename: string): string {
  const h = createHash("sha256").update(nodename).digest();
  return [h[0]! | 1, h[1]!, h[2]!, h[3]!].join(".");
}

const idPart = (ip: string): string => ip.replace(/[.:]/g, "_");

/** Calico's rule (reference §5.1): towards a peer whose address compares greater (as text) we
 * are passive — that peer calls us — so two nodes never race to connect. */
const passiveFor = (peerIp: string, ownIp: string | undefined): boolean =>
  ownIp !== undefined && peerIp > ownIp;

function seconds(text: unknown, what: string, problems: string[]): number | undefined {
  if (text === undefined || text === null || text === "") return undefined;
  const ms = typeof text === "string" ? parseDuration(text) : undefined;
  if (ms === undefined || ms < 0) {
    problems.push(`${what} ${JSON.stringify(text)} is not a duration; using the default`);
    return undefined;
  }
  return Math.round(ms / 1000);
}

function selects(expression: unknown, node: BgpNode, what: string, problems: string[]): boolean {
  try {
    return parseSelector(typeof expression === "string" ? expression : "").evaluate(node.labels);
  } catch (err) {
    problems.push(`${what}: bad selector "${String(expression)}": ${(err as Error).message}`);
    return false;
  }
}

interface Communities {
  communities: number[];
  largeCommunities: [number, number, number][];
}

/** Resolve a prefixAdvertisement's community names and literals. */
function communitiesOf(names: string[], defined: Map<string, string>, problems: string[]): Communities {
  const out: Communities = { communities: [], largeCommunities: [] };
  for (const n of names) {
    const v = defined.get(n) ?? n;
    const parts = v.split(":").map(Number);
    if (parts.length === 2 && parts.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff))
      out.communities.push(parts[0]! * 0x10000 + parts[1]!);
    else if (parts.length === 3 && parts.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff))
      out.largeCommunities.push(parts as [number, number, number]);
    else
      problems.push(`prefixAdvertisements: community "${n}" is neither defined nor a value aa:nn / aa:nn:mm`);
  }
  return out;
}

/**
 * The speaker this node should run, or why none. `secret` resolves BGPPeer and mesh passwords
 * (`secretKeyRef`); without it a peer that needs a password is left out (named in problems).
 */
export function desiredBgp(view: BgpView, nodename: string, secret?: SecretLookup): BgpDecision {
  const me = view.nodes.get(nodename);
  if (me === undefined) return { enabled: false, reason: `Node "${nodename}" is not in the datastore` };
  if (me.v4 === undefined && me.v6 === undefined)
    return {
      enabled: false,
      reason: `Node "${nodename}" has no BGP address (spec.bgp.ipv4Address/ipv6Address)`,
    };
  const problems: string[] = [];
  const global = view.configs.get("default") ?? {};
  const local = view.configs.get(`node.${nodename}`) ?? {};
  /** A field of node.<name>, else of default. */
  const field = (f: string): unknown => local[f] ?? global[f];

  const defaultAsn = parseASNumber(global.asNumber) ?? DEFAULT_ASN;
  const asnOf = (n: BgpNode): number => n.asn ?? defaultAsn;
  const asn = asnOf(me);
  const listenPortRaw = field("listenPort");
  const listenPort =
    typeof listenPortRaw === "number" &&
    Number.isInteger(listenPortRaw) &&
    listenPortRaw > 0 &&
    listenPortRaw < 65536
      ? listenPortRaw
      : DEFAULT_LISTEN_PORT;
  const meshRestart = seconds(field("nodeMeshMaxRestartTime"), "nodeMeshMaxRestartTime", problems);
  const gracefulRestartTime = meshRestart ?? DEFAULT_RESTART_TIME;

  const password = (ref: unknown, what: string): { ok: boolean; value?: string } => {
    const r = obj(obj(ref).secretKeyRef);
    const name = str(r.name);
    const key = str(r.key);
    if (name === undefined || key === undefined) return { ok: true };
    const v = secret?.(name, key);
    if (v !== undefined) return { ok: true, value: v };
    if (r.optional === true) return { ok: true };
    problems.push(`${what}: password secret "${name}" key "${key}" is not available; peer left out`);
    return { ok: false };
  };

  // Peers by address: an explicit BGPPeer replaces a mesh peer of the same address, a node
  // specific one a global one (one session per address, as BIRD allows one protocol per neighbor).
  const rank: Record<PeerType, number> = { "node-to-node mesh": 0, global: 1, "node specific": 2 };
  const peers = new Map<string, DesiredPeer>();
  const add = (p: DesiredPeer): void => {
    const had = peers.get(p.address);
    if (had === undefined || rank[p.type] > rank[had.type]) peers.set(p.address, p);
  };
  /** Where another Calico node listens, when not 179 (its node.<name> listenPort, else the global one). */
  const listenPortOf = (n: BgpNode): number | undefined => {
    const p = view.configs.get(`node.${n.name}`)?.listenPort ?? global.listenPort;
    return typeof p === "number" && p !== DEFAULT_LISTEN_PORT ? p : undefined;
  };
  const ownAddr = (f: IPFamily): string | undefined => (f === 4 ? me.v4 : me.v6);
  const rrClient = (peerAsn: number, peerCluster: string | undefined): boolean =>
    me.rrClusterId !== undefined && peerAsn === asn && peerCluster !== me.rrClusterId;

  // 1. The node-to-node mesh (route reflectors are not meshed: reference §5.1).
  if (global.nodeToNodeMeshEnabled !== false && me.rrClusterId === undefined) {
    const pw = password(global.nodeMeshPassword, "nodeMeshPassword");
    for (const other of view.nodes.values()) {
      if (other.name === nodename || other.rrClusterId !== undefined || !pw.ok) continue;
      for (const f of [4, 6] as const) {
        const addr = f === 4 ? other.v4 : other.v6;
        const own = ownAddr(f);
        if (addr === undefined || own === undefined || addr === own) continue;
        add({
          address: addr,
          asn: asnOf(other),
          type: "node-to-node mesh",
          name: `Mesh_${idPart(addr)}`,
          passive: passiveFor(addr, own),
          localAddress: own,
          gracefulRestartTime,
          ...(pw.value !== undefined ? { password: pw.value } : {}),
          ...(listenPortOf(other) !== undefined ? { port: listenPortOf(other)! } : {}),
        });
      }
    }
  }

  // 2. BGPPeers that apply to this node.
  for (const [name, spec] of [...view.peers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const what = `BGPPeer "${name}"`;
    const forNode = str(spec.node);
    const nodeSel = str(spec.nodeSelector);
    let type: PeerType;
    if (forNode !== undefined && forNode !== "") {
      if (forNode !== nodename) continue;
      type = "node specific";
    } else if (nodeSel !== undefined && nodeSel !== "") {
      if (!selects(nodeSel, me, `${what} nodeSelector`, problems)) continue;
      type = "node specific";
    } else type = "global";
    if (spec.localWorkloadSelector !== undefined && spec.localWorkloadSelector !== "") {
      problems.push(`${what}: localWorkloadSelector is not supported; peer left out`);
      continue;
    }
    const pw = password(spec.password, what);
    if (!pw.ok) continue;
    const restart = seconds(spec.maxRestartTime, `${what} maxRestartTime`, problems) ?? gracefulRestartTime;
    const nextHopMode = str(spec.nextHopMode);
    const keep = nextHopMode === "Keep" || (nextHopMode === undefined && spec.keepOriginalNextHop === true);
    const ttl = typeof spec.ttlSecurity === "number" && spec.ttlSecurity > 0;
    if (typeof spec.ttlSecurity === "number" && spec.ttlSecurity > 1)
      problems.push(`${what}: ttlSecurity ${spec.ttlSecurity} hops is applied as 1 hop (GTSM min TTL 254)`);
    for (const f of ["filters", "reachableBy", "keepaliveTime", "numAllowedLocalASNumbers", "localASNumber"])
      if (spec[f] !== undefined && !(Array.isArray(spec[f]) && (spec[f] as unknown[]).length === 0))
        problems.push(`${what}: ${f} is not supported and is ignored`);
    const common = (addr: string, peerAsn: number, port: number | undefined, passive: boolean) => {
      const f: IPFamily = addr.includes(":") ? 6 : 4;
      const own = ownAddr(f);
      const p: DesiredPeer = {
        address: addr,
        asn: peerAsn,
        type,
        name: `${type === "global" ? "Global" : "Node"}_${idPart(addr)}${port !== undefined ? `_port_${port}` : ""}`,
        passive,
        gracefulRestartTime: restart,
      };
      if (port !== undefined) p.port = port;
      if (own !== undefined && spec.sourceAddress !== "None") p.localAddress = own;
      if (pw.value !== undefined) p.password = pw.value;
      if (keep) p.keepOriginalNextHop = true;
      if (nextHopMode === "Self") p.nextHopSelf = true;
      if (ttl) p.ttlSecurity = true;
      return p;
    };
    const peerIP = str(spec.peerIP);
    if (peerIP !== undefined && peerIP !== "") {
      const pa = parsePeerIP(peerIP);
      const peerAsn = parseASNumber(spec.asNumber);
      if (pa === undefined || peerAsn === undefined) {
        problems.push(`${what}: needs a valid peerIP and asNumber; peer left out`);
        continue;
      }
      const addr = formatIP(pa.ip.family, pa.ip.value);
      if (addr === me.v4 || addr === me.v6) continue;
      // A peer that is a Calico node: its cluster ID decides RR client-ness (reference §5.1).
      const peerNode = [...view.nodes.values()].find((n) => n.v4 === addr || n.v6 === addr);
      const p = common(
        addr,
        peerAsn,
        pa.port,
        peerNode !== undefined && passiveFor(addr, ownAddr(pa.ip.family)),
      );
      if (rrClient(peerAsn, peerNode?.rrClusterId)) p.rrClient = true;
      add(p);
    } else if (spec.peerSelector !== undefined && spec.peerSelector !== "") {
      for (const other of view.nodes.values()) {
        if (other.name === nodename || !selects(spec.peerSelector, other, `${what} peerSelector`, problems))
          continue;
        // Two reflectors of one cluster do not peer as reflector and client.
        for (const f of [4, 6] as const) {
          const addr = f === 4 ? other.v4 : other.v6;
          const own = ownAddr(f);
          if (addr === undefined || own === undefined) continue;
          const port = listenPortOf(other);
          const p = common(addr, asnOf(other), port, passiveFor(addr, own));
          if (rrClient(asnOf(other), other.rrClusterId)) p.rrClient = true;
          if (me.rrClusterId !== undefined && me.rrClusterId === other.rrClusterId) delete p.rrClient;
          add(p);
        }
      }
    } else problems.push(`${what}: neither peerIP nor peerSelector; peer left out`);
  }
  // The peers' GR time is what the speaker offers them; RR clients need our cluster ID.
  for (const p of peers.values())
    if (p.rrClient === true && me.rrClusterId !== undefined) p.clusterId = me.rrClusterId;

  // 3. What we originate (reference §5.2): our affine blocks and our borrowed addresses, in
  // pools that are neither disabled nor disableBGPExport (a block in no pool is still ours).
  const pools = [...view.pools.values()];
  const poolOf = (c: CIDR) => pools.find((p) => cidrContains(p.cidr, c));
  const exported = (c: CIDR, needPool: boolean): boolean => {
    const p = poolOf(c);
    if (p === undefined) return !needPool;
    return !p.disabled && !p.disableBGPExport;
  };
  const prefixes = new Map<string, PathAttributes>();
  const mine = `host:${nodename}`;
  for (const b of view.blocks.values()) {
    if (b.affinity === mine) {
      const hostBits = b.cidr.family === 4 ? 32 : 128;
      if (b.cidr.prefix !== hostBits && exported(b.cidr, false)) prefixes.set(formatCIDR(b.cidr), {});
      continue;
    }
    b.allocations.forEach((a, ordinal) => {
      if (a === null || a === undefined || b.attributes[a]?.secondary?.node !== nodename) return;
      const c: CIDR = {
        family: b.cidr.family,
        addr: b.cidr.addr + BigInt(ordinal),
        prefix: b.cidr.family === 4 ? 32 : 128,
      };
      if (exported(c, true)) prefixes.set(formatCIDR(c), {});
    });
  }
  // Communities: every prefixAdvertisement whose CIDR holds an originated prefix adds its own.
  const defined = new Map(objects(field("communities")).map((c) => [str(c.name) ?? "", str(c.value) ?? ""]));
  for (const adv of objects(field("prefixAdvertisements"))) {
    const cidr = parseCIDR(str(adv.cidr) ?? "");
    if (cidr === undefined) {
      problems.push(`prefixAdvertisements: "${String(adv.cidr)}" is not a CIDR`);
      continue;
    }
    const c = communitiesOf(strings(adv.communities), defined, problems);
    for (const [text, attrs] of prefixes) {
      const p = parseCIDR(text)!;
      if (!cidrContains(cidr, p)) continue;
      if (c.communities.length > 0) attrs.communities = [...(attrs.communities ?? []), ...c.communities];
      if (c.largeCommunities.length > 0)
        attrs.largeCommunities = [...(attrs.largeCommunities ?? []), ...c.largeCommunities];
    }
  }
  for (const f of ["serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs"])
    if (objects(global[f]).length > 0)
      problems.push(`BGPConfiguration ${f} is not supported (no Services yet)`);

  const config: DesiredBgp = {
    asn,
    routerId: me.v4 ?? hashRouterId(nodename),
    listenPort,
    gracefulRestartTime,
    peers: [...peers.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)),
    prefixes,
    problems,
  };
  if (field("bindMode") === "NodeIP" && me.v4 !== undefined) config.listenHost = me.v4;
  return { enabled: true, config };
}
