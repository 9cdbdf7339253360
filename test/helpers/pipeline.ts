/**
 * A whole-pipeline harness without a kernel: datastore resources (YAML, decoded and defaulted
 * as the datastore stores them) → CalcGraph → LinuxDataplane over FakeNft (routes and links
 * stubbed) → the packet tracer, which answers "does this packet get through?" per hook.
 *
 * Hosts and addresses (STYLE.md: only test ranges): this host `h1` is 198.18.0.1 / fd00::1 on
 * `eth0`; "ext" is a machine on the underlay, 198.18.0.2 / fd00::2 behind `eth0`; workloads use
 * 198.19.0.0/16 and fd00:19::/48 (`fd00:19:0:X::Y`).
 *
 * Kernel path of a packet (nft(8) hooks; conntrack at priority -200 sits between raw and
 * mangle, so a `notrack` in raw makes later chains see `ct state untracked`):
 * - arriving (from a workload or eth0): prerouting, then input (to this host) or forward;
 * - leaving this host: output.
 * The skb mark carries over from one hook to the next, as in the kernel.
 */
import { decodeResources } from "../../src/api/codec.js";
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND } from "../../src/agent/felix-config.js";
import { CalcGraph } from "../../src/calc/calc-graph.js";
import type { KVUpdate } from "../../src/calc/types.js";
import { resourceKey } from "../../src/datastore/keys.js";
import { LinuxDataplane } from "../../src/dataplane/linux-dataplane.js";
import type { LinkApplier } from "../../src/dataplane/links.js";
import { FakeNft } from "../../src/dataplane/nft/fake-nft.js";
import type { Hook, TableListing } from "../../src/dataplane/nft/model.js";
import {
  explain,
  tracePacket,
  type CtState,
  type Packet,
  type TraceResult,
} from "../../src/dataplane/nft/tracer.js";
import type { KernelRoute, RouteApplier } from "../../src/dataplane/routes.js";
import type { DataplaneConfig } from "../../src/dataplane/types.js";

export const HOST = "h1";
export const HOST_ADDR = { 4: "198.18.0.1", 6: "fd00::1" } as const;
export const EXT_ADDR = { 4: "198.18.0.2", 6: "fd00::2" } as const;
/** The host's uplink (where "ext" and remote workloads are reached). */
export const UPLINK = "eth0";

export type Family = 4 | 6;
export type Proto = "tcp" | "udp" | "sctp" | "icmp" | number;
/** A port for tcp/udp/sctp, an ICMP type (and code) for icmp. */
export type PortOrIcmp = number | { type: number; code?: number } | undefined;

export interface Verdict {
  verdict: "accept" | "drop";
  /** Every hook the packet went through, with the rules that matched. */
  explanation: string;
  traces: { hook: Hook; result: TraceResult }[];
}

export const defaultConfig = (over: Partial<DataplaneConfig> = {}): DataplaneConfig => ({
  interfacePrefixes: ["cali"],
  failsafeInboundHostPorts: [...DEFAULT_FAILSAFE_INBOUND],
  failsafeOutboundHostPorts: [...DEFAULT_FAILSAFE_OUTBOUND],
  defaultEndpointToHostAction: "Drop",
  logPrefix: "calico-packet",
  routeProtocol: 83,
  ipv6: true,
  denyAction: "Drop",
  ...over,
});

class StubRoutes implements RouteApplier {
  apply(want: Map<string, KernelRoute>): Promise<number> {
    return Promise.resolve(want.size);
  }
}
class StubLinks implements LinkApplier {
  apply(ifaces: ReadonlySet<string>): Promise<number> {
    return Promise.resolve(ifaces.size);
  }
}

/** Datastore updates for a YAML text: validated and defaulted as the datastore stores them. */
export function updatesFromYaml(yaml: string): KVUpdate[] {
  return decodeResources(yaml, "test").map(({ resource, kind }) => ({
    key: resourceKey(
      kind.plural,
      resource.metadata.name,
      kind.namespaced ? resource.metadata.namespace : undefined,
    ),
    // What the syncer delivers: the stored JSON, parsed.
    value: JSON.parse(JSON.stringify(resource)) as unknown,
  }));
}

/** A delete of the resource at `key` (as the syncer delivers it). */
export const deleteOf = (key: string): KVUpdate => ({ key, value: null });

export interface WorkloadOpts {
  ns?: string;
  /** Index X in 198.19.X.Y / fd00:19:0:X::Y (default 0). */
  net?: number;
  /** Host part Y (required: distinct per workload). */
  host: number;
  labels?: Record<string, string>;
  profiles?: string[];
  ports?: { name: string; protocol?: string; port: number }[];
  sa?: string;
  node?: string;
  /** Interface name (default `cali` + pod name padded). */
  iface?: string;
  /** Leave out the IPv6 address. */
  v4Only?: boolean;
}

export const wlAddr = (net: number, host: number): { 4: string; 6: string } => ({
  4: `198.19.${net}.${host}`,
  6: `fd00:19:0:${net.toString(16)}::${host.toString(16)}`,
});

/** YAML for a k8s WorkloadEndpoint of pod `pod` (profiles default to `kns.<ns>`). */
export function workloadYaml(pod: string, o: WorkloadOpts): string {
  const ns = o.ns ?? "default";
  const node = o.node ?? HOST;
  const a = wlAddr(o.net ?? 0, o.host);
  const esc = (s: string): string => s.replace(/-/g, "--");
  const iface =
    o.iface ??
    `cali${pod
      .replace(/[^a-z0-9]/g, "")
      .padEnd(11, "0")
      .slice(0, 11)}`;
  const doc = {
    apiVersion: "projectcalico.org/v3",
    kind: "WorkloadEndpoint",
    metadata: { name: `${esc(node)}-k8s-${esc(pod)}-eth0`, namespace: ns, labels: o.labels ?? {} },
    spec: {
      orchestrator: "k8s",
      node,
      pod,
      endpoint: "eth0",
      interfaceName: iface,
      ipNetworks: o.v4Only === true ? [`${a[4]}/32`] : [`${a[4]}/32`, `${a[6]}/128`],
      profiles: o.profiles ?? [`kns.${ns}`],
      ...(o.ports === undefined ? {} : { ports: o.ports.map((p) => ({ protocol: "TCP", ...p })) }),
      ...(o.sa === undefined ? {} : { serviceAccountName: o.sa }),
    },
  };
  return `---\n${JSON.stringify(doc)}\n`;
}

/** A namespace profile as Kubernetes synthesises it: allow all, labels `pcns.*`. */
export function namespaceProfileYaml(ns: string, labels: Record<string, string> = {}): string {
  const labelsToApply: Record<string, string> = { "pcns.projectcalico.org/name": ns };
  for (const [k, v] of Object.entries(labels)) labelsToApply[`pcns.${k}`] = v;
  const doc = {
    apiVersion: "projectcalico.org/v3",
    kind: "Profile",
    metadata: { name: `kns.${ns}` },
    spec: { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }], labelsToApply },
  };
  return `---\n${JSON.stringify(doc)}\n`;
}

/** A service-account profile: labels only (`pcsa.*`), no rules. */
export function serviceAccountProfileYaml(ns: string, sa: string, labels: Record<string, string>): string {
  const labelsToApply: Record<string, string> = { "pcsa.projectcalico.org/name": sa };
  for (const [k, v] of Object.entries(labels)) labelsToApply[`pcsa.${k}`] = v;
  const doc = {
    apiVersion: "projectcalico.org/v3",
    kind: "Profile",
    metadata: { name: `ksa.${ns}.${sa}` },
    spec: { labelsToApply },
  };
  return `---\n${JSON.stringify(doc)}\n`;
}

interface WorkloadInfo {
  iface: string;
  node: string;
  addrs: Partial<Record<Family, string>>;
}

/** A listing without handles, comparable with deepEqual. */
export function normalListing(l: TableListing | undefined): unknown {
  if (l === undefined) return undefined;
  const sort = <T>(m: Map<string, T>): [string, T][] => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    chains: sort(l.chains).map(([n, c]) => [n, c.base ?? null, c.rules.map((r) => r.comment ?? "")]),
    sets: sort(l.sets).map(([n, s]) => [n, s.spec.keyType, s.spec.interval, [...s.elements].sort()]),
    maps: sort(l.maps).map(([n, m]) => [n, sort(m.elements)]),
  };
}

/**
 * A peer: a workload's pod name (local or on another node), `host` (this host), `ext` (a
 * machine behind eth0), or `@<address>` (any address behind eth0).
 */
export type Peer = string;

export interface VerdictOpts {
  ct?: "new" | "established";
  /** Source address override (anti-spoofing tests). */
  saddr?: string;
  /** Interface override for a packet from an unknown workload interface. */
  iifname?: string;
  /** Interface override for a packet to an unknown workload interface. */
  oifname?: string;
  sport?: number;
}

export class Pipeline {
  readonly calc: CalcGraph;
  readonly nft = new FakeNft();
  readonly dp: LinuxDataplane;
  readonly problems: string[] = [];
  private readonly workloads = new Map<string, WorkloadInfo>();

  constructor(readonly config: DataplaneConfig = defaultConfig()) {
    this.calc = new CalcGraph({ hostname: HOST, onProblem: (m) => this.problems.push(m) });
    this.dp = new LinuxDataplane({
      nft: this.nft,
      config,
      routes: new StubRoutes(),
      links: new StubLinks(),
      resyncIntervalMs: 0,
    });
  }

  /** Feed updates to calc, flush, apply the changes to the dataplane (incrementally). */
  async apply(updates: KVUpdate[], opts: { full?: boolean } = {}): Promise<void> {
    for (const u of updates) this.noteWorkload(u);
    this.calc.onUpdates(updates);
    const changes = this.calc.flush();
    await this.dp.apply(this.calc.state, changes, opts);
  }

  async load(yaml: string): Promise<void> {
    await this.apply(updatesFromYaml(yaml));
  }

  static async of(yaml: string, config?: DataplaneConfig): Promise<Pipeline> {
    const p = new Pipeline(config);
    await p.load(yaml);
    return p;
  }

  /** Learn workload addresses from updates without applying them (peers that may be absent). */
  learnWorkloads(updates: KVUpdate[]): void {
    for (const u of updates) this.noteWorkload(u);
  }

  private noteWorkload(u: KVUpdate): void {
    const m = /\/workloadendpoints\/[^/]+\/[^/]+$/.exec(u.key);
    if (m === null || u.value === null || typeof u.value !== "object") return;
    const spec = (u.value as { spec?: Record<string, unknown> }).spec ?? {};
    const pod = typeof spec.pod === "string" ? spec.pod : undefined;
    if (pod === undefined) return;
    const addrs: Partial<Record<Family, string>> = {};
    for (const n of (spec.ipNetworks as string[] | undefined) ?? []) {
      const a = n.split("/")[0]!;
      addrs[a.includes(":") ? 6 : 4] = a;
    }
    this.workloads.set(pod, { iface: String(spec.interfaceName), node: String(spec.node), addrs });
  }

  listing(): Promise<unknown> {
    return this.nft.list().then(normalListing);
  }

  private where(
    peer: Peer,
    f: Family,
  ): { addr: string; iface?: string; kind: "local-wl" | "host" | "remote" } {
    if (peer === "host") return { addr: HOST_ADDR[f], kind: "host" };
    if (peer === "ext") return { addr: EXT_ADDR[f], kind: "remote" };
    if (peer.startsWith("@")) return { addr: peer.slice(1), kind: "remote" };
    const w = this.workloads.get(peer);
    if (w === undefined) throw new Error(`unknown peer "${peer}"`);
    const addr = w.addrs[f];
    if (addr === undefined) throw new Error(`workload "${peer}" has no IPv${f} address`);
    return w.node === HOST ? { addr, iface: w.iface, kind: "local-wl" } : { addr, kind: "remote" };
  }

  /** The verdict our table gives a packet from → to (both directions' policy, every hook). */
  verdict(from: Peer, to: Peer, f: Family, proto: Proto, port?: PortOrIcmp, o: VerdictOpts = {}): Verdict {
    const s = this.where(from, f);
    const d = this.where(to, f);
    const protocol =
      proto === "tcp"
        ? 6
        : proto === "udp"
          ? 17
          : proto === "sctp"
            ? 132
            : proto === "icmp"
              ? f === 4
                ? 1
                : 58
              : proto;
    const pkt: Packet = {
      family: f,
      saddr: o.saddr ?? s.addr,
      daddr: d.addr,
      protocol,
      ctState: o.ct ?? "new",
      daddrIsLocal: d.kind === "host",
    };
    if (typeof port === "number") {
      pkt.dport = port;
      pkt.sport = o.sport ?? 40000;
    } else if (port !== undefined) {
      pkt.icmpType = port.type;
      if (port.code !== undefined) pkt.icmpCode = port.code;
    }
    const hooks: { hook: Hook; iif?: string; oif?: string }[] = [];
    const inIf = o.iifname ?? (s.kind === "local-wl" ? s.iface : UPLINK);
    const outIf = o.oifname ?? (d.kind === "local-wl" ? d.iface : d.kind === "remote" ? UPLINK : undefined);
    if (s.kind === "host")
      hooks.push({ hook: "output", ...(outIf === undefined ? { oif: "lo" } : { oif: outIf }) });
    else {
      hooks.push({ hook: "prerouting", iif: inIf! });
      if (d.kind === "host") hooks.push({ hook: "input", iif: inIf! });
      else hooks.push({ hook: "forward", iif: inIf!, ...(outIf === undefined ? {} : { oif: outIf }) });
    }
    const ruleset = this.nft.ruleset();
    const traces: { hook: Hook; result: TraceResult }[] = [];
    let mark = 0;
    let ct: CtState = pkt.ctState;
    let verdict: "accept" | "drop" = "accept";
    for (const h of hooks) {
      const p: Packet = { ...pkt, ctState: ct, mark };
      if (h.iif !== undefined) p.iifname = h.iif;
      if (h.oif !== undefined) p.oifname = h.oif;
      let r = tracePacket(ruleset, p, h.hook);
      if (r.notrack && ct !== "untracked") {
        // Conntrack (priority -200) runs after raw: later chains of this hook see untracked.
        ct = "untracked";
        r = tracePacket(ruleset, { ...p, ctState: ct }, h.hook);
      }
      traces.push({ hook: h.hook, result: r });
      mark = r.mark;
      if (r.verdict !== "accept") {
        verdict = "drop";
        break;
      }
    }
    const explanation = traces.map((t) => `[${t.hook}] ${explain(t.result)}`).join("\n");
    return { verdict, explanation, traces };
  }
}

/** One row of a verdict table: from, to, protocol, port or ICMP, expected verdict. */
export type Row = [from: Peer, to: Peer, proto: Proto, port: PortOrIcmp, expect: "accept" | "drop"];

/**
 * Check every row for each family; returns the mismatches (with explanations) so one assertion
 * reports the whole table.
 */
export function checkTable(
  p: Pipeline,
  rows: Row[],
  families: Family[] = [4, 6],
  o: VerdictOpts = {},
): string[] {
  const bad: string[] = [];
  for (const f of families)
    for (const [from, to, proto, port, expect] of rows) {
      const v = p.verdict(from, to, f, proto, port, o);
      if (v.verdict !== expect) {
        bad.push(
          `v${f} ${from} -> ${to} ${String(proto)} ${JSON.stringify(port)}: want ${expect}, got ${v.verdict}\n${v.explanation}`,
        );
      }
    }
  return bad;
}
