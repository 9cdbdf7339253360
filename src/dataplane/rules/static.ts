/**
 * The fixed part of table `inet calico` (STYLE.md "nftables as data"): base chains per hook,
 * the dispatch chains and their verdict maps, workload→host, failsafes, host-endpoint
 * dispatch and NAT-outgoing. Only the host-endpoint dispatch and the optional raw/mangle hooks
 * depend on the state (which host endpoints exist and which kinds of policy they have).
 */
import type { IPFamily } from "../../api/net.js";
import { parseCIDROrIP } from "../../api/net.js";
import type { LocalHostEndpoint, PoolInfo } from "../../calc/types.js";
import type { BaseChainSpec, Chain, Match, MapSpec, Rule, Verdict } from "../nft/model.js";
import {
  BASE,
  CHAIN,
  MAP,
  endpointChain,
  ipSetName,
  ALL_POOLS_SET_ID,
  MASQ_POOLS_SET_ID,
  type EndpointChainKind,
} from "../names.js";
import type { DataplaneConfig, FailsafePort } from "../types.js";
import { chain } from "./comment.js";
import { established } from "./endpoint.js";
import { ACCEPT_MARK, PASS_MARK } from "./marks.js";
import { families } from "./policy.js";

const base = (type: BaseChainSpec["type"], hook: BaseChainSpec["hook"], priority: number): BaseChainSpec => ({
  type,
  hook,
  priority,
  policy: "accept",
});
/** Priorities (nft's named ones): raw -300, mangle -150, filter 0, srcnat 100 (+10 as Felix). */
export const PRIORITY = { raw: -300, mangle: -150, filter: 0, srcnat: 110 } as const;

const r = (matches: Match[], verdict?: Verdict, statements: Rule["statements"] = []): Rule =>
  verdict === undefined ? { matches, statements } : { matches, statements, verdict };
const acceptMarked = (): Match => ({ type: "mark", op: "==", mask: ACCEPT_MARK, value: ACCEPT_MARK });
const wildcards = (cfg: DataplaneConfig): string[] => cfg.interfacePrefixes.map((p) => `${p}*`);
const untrackedAccept = (): Rule =>
  r([{ type: "ct-state", op: "==", states: ["untracked"] }], { type: "accept" });

export const dispatchMaps = (): MapSpec[] => [
  { name: MAP.fromWlDispatch, keyType: "ifname" },
  { name: MAP.toWlDispatch, keyType: "ifname" },
  { name: MAP.toWlEstablished, keyType: "ifname" },
];

/** ICMPv6 a workload needs to reach its host before any policy: RS, NS, NA (RFC 4861 §4). */
const WORKLOAD_NDP_TYPES = [133, 135, 136];
/** The host's own neighbour discovery on host-endpoint interfaces: RS, RA, NS, NA. */
const HOST_NDP_TYPES = [133, 134, 135, 136];

/** Accept these ICMPv6 types (none when IPv6 is off). */
const acceptNdp = (types: number[], ipv6: boolean): Rule[] =>
  ipv6 ? types.map((t) => r([{ type: "icmp", family: 6, op: "==", icmpType: t }], { type: "accept" })) : [];

function failsafeRules(ports: FailsafePort[], dir: "in" | "out", ipv6: boolean): Rule[] {
  const out: Rule[] = [];
  for (const p of ports) {
    const proto = p.protocol === "tcp" ? 6 : 17;
    const m: Match[] = [
      { type: "l4proto", op: "==", protocols: [proto] },
      { type: "port", dir: "dport", op: "==", ranges: [{ first: p.port, last: p.port }] },
    ];
    if (p.net !== undefined) {
      const c = parseCIDROrIP(p.net);
      if (c === undefined || (c.family === 6 && !ipv6)) continue;
      m.unshift({
        type: "addr",
        family: c.family,
        dir: dir === "in" ? "saddr" : "daddr",
        op: "==",
        cidrs: [c],
      });
      m.unshift({ type: "nfproto", family: c.family });
    }
    out.push(r(m, { type: "accept" }));
  }
  return out;
}

/** `iifname "eth0" goto <chain>` per host endpoint with that kind of chain; `*` last. */
function hepDispatch(
  name: string,
  heps: LocalHostEndpoint[],
  kind: EndpointChainKind,
  has: (h: LocalHostEndpoint) => boolean,
  dir: "iif" | "oif",
  cfg: DataplaneConfig,
): Chain {
  const rules: Rule[] = [];
  const sorted = [...heps].filter(has).sort((a, b) => (a.interfaceName < b.interfaceName ? -1 : 1));
  for (const h of sorted.filter((h) => h.interfaceName !== "*"))
    rules.push(
      r([{ type: "ifname", dir, op: "==", names: [h.interfaceName] }], {
        type: "goto",
        chain: endpointChain(kind, h.interfaceName),
      }),
    );
  const any = sorted.find((h) => h.interfaceName === "*");
  if (any !== undefined)
    // An all-interfaces endpoint covers host interfaces, never workloads or loopback.
    rules.push(
      r([{ type: "ifname", dir, op: "!=", names: [...wildcards(cfg), "lo"] }], {
        type: "goto",
        chain: endpointChain(kind, "*"),
      }),
    );
  return chain(name, rules);
}

/**
 * The fast path for a flow's later packets (bench/fabric). From a known workload interface:
 * straight to its `fw` chain, whose first rules accept established/related packets from the
 * workload's own addresses (anti-spoofing: any other source goes on to the drop). To a known
 * workload interface from elsewhere: accepted (its `tw` chain would accept them first). A
 * lookup that misses (an unknown cali* interface, no workload on either side) falls through
 * to the full path below, so no verdict changes: for these packets the full path reaches the
 * same chains, after the mark reset, the host-endpoint forward chains (which accept
 * established first too) and the wildcard matches.
 */
function establishedFastPath(wl: string[]): Rule[] {
  return [
    {
      matches: [established()],
      statements: [],
      verdict: { type: "vmap", key: "iifname", map: MAP.fromWlDispatch },
    },
    {
      matches: [established(), { type: "ifname", dir: "iif", op: "!=", names: wl }],
      statements: [],
      verdict: { type: "vmap", key: "oifname", map: MAP.toWlEstablished },
    },
  ];
}

export interface StaticPart {
  chains: Chain[];
  maps: MapSpec[];
}

/**
 * `hepKinds(h)` says which chain kinds host endpoint h has (see endpoint.ts), so dispatch
 * never names a chain that does not exist.
 */
export function staticChains(
  cfg: DataplaneConfig,
  heps: LocalHostEndpoint[],
  hepKinds: (h: LocalHostEndpoint) => Set<EndpointChainKind>,
): StaticPart {
  const wl = wildcards(cfg);
  const kinds = new Map(heps.map((h) => [h, hepKinds(h)]));
  const has = (k: EndpointChainKind) => (h: LocalHostEndpoint) => kinds.get(h)?.has(k) ?? false;
  const anyUntracked = heps.some((h) => has("raw-fh")(h) || has("raw-th")(h));
  const anyPreDNAT = heps.some(has("mangle-fh"));
  const top = anyUntracked ? [untrackedAccept()] : [];
  // The host's own IPv6 neighbour discovery on a host-endpoint interface is never policed:
  // without it every IPv6 packet through that interface (failsafes included) fails once the
  // neighbour caches empty (RFC 4861; Felix accepts ICMPv6 NDP for host endpoints too).
  const ndp = acceptNdp(HOST_NDP_TYPES, cfg.ipv6);
  const chains: Chain[] = [];

  chains.push(
    chain(
      BASE.filterInput,
      [
        ...top,
        r([{ type: "ifname", dir: "iif", op: "==", names: wl }], { type: "goto", chain: CHAIN.wlToHost }),
        ...ndp,
        r([{ type: "ifname", dir: "iif", op: "!=", names: ["lo"] }], {
          type: "jump",
          chain: CHAIN.fromHostEndpoint,
        }),
      ],
      base("filter", "input", PRIORITY.filter),
    ),
    chain(
      BASE.filterForward,
      [
        ...top,
        ...establishedFastPath(wl),
        r([], undefined, [{ type: "set-mark", clear: ACCEPT_MARK | PASS_MARK, set: 0 }]),
        r([], { type: "jump", chain: CHAIN.fromHepForward }),
        r([{ type: "ifname", dir: "iif", op: "==", names: wl }], {
          type: "jump",
          chain: CHAIN.fromWlDispatch,
        }),
        r([{ type: "ifname", dir: "oif", op: "==", names: wl }], { type: "jump", chain: CHAIN.toWlDispatch }),
        r([], { type: "jump", chain: CHAIN.toHepForward }),
        r([acceptMarked()], { type: "accept" }),
      ],
      base("filter", "forward", PRIORITY.filter),
    ),
    chain(
      BASE.filterOutput,
      [
        ...top,
        // Host → workload is not policed (Felix: contacting local workloads from the host is
        // needed, and policing it protects nothing against a compromised host).
        r([{ type: "ifname", dir: "oif", op: "==", names: wl }], { type: "return" }),
        ...ndp,
        r([{ type: "ifname", dir: "oif", op: "!=", names: ["lo"] }], {
          type: "jump",
          chain: CHAIN.toHostEndpoint,
        }),
      ],
      base("filter", "output", PRIORITY.filter),
    ),
    chain(CHAIN.fromWlDispatch, [
      { matches: [], statements: [], verdict: { type: "vmap", key: "iifname", map: MAP.fromWlDispatch } },
      r([], { type: "drop" }), // an unknown workload interface
    ]),
    chain(CHAIN.toWlDispatch, [
      { matches: [], statements: [], verdict: { type: "vmap", key: "oifname", map: MAP.toWlDispatch } },
      r([], { type: "drop" }),
    ]),
    chain(CHAIN.wlToHost, [
      ...acceptNdp(WORKLOAD_NDP_TYPES, cfg.ipv6),
      r([], { type: "jump", chain: CHAIN.fromWlDispatch }),
      r(
        [],
        cfg.defaultEndpointToHostAction === "Accept"
          ? { type: "accept" }
          : cfg.defaultEndpointToHostAction === "Return"
            ? { type: "return" }
            : { type: "drop" },
      ),
    ]),
    chain(CHAIN.failsafeIn, failsafeRules(cfg.failsafeInboundHostPorts, "in", cfg.ipv6)),
    chain(CHAIN.failsafeOut, failsafeRules(cfg.failsafeOutboundHostPorts, "out", cfg.ipv6)),
    hepDispatch(CHAIN.fromHostEndpoint, heps, "fh", has("fh"), "iif", cfg),
    hepDispatch(CHAIN.toHostEndpoint, heps, "th", has("th"), "oif", cfg),
    hepDispatch(CHAIN.fromHepForward, heps, "fhfw", has("fhfw"), "iif", cfg),
    hepDispatch(CHAIN.toHepForward, heps, "thfw", has("thfw"), "oif", cfg),
  );

  if (anyUntracked) {
    const notrackMarked = r([acceptMarked()], { type: "accept" }, [{ type: "notrack" }]);
    const clear = r([], undefined, [{ type: "set-mark", clear: ACCEPT_MARK | PASS_MARK, set: 0 }]);
    chains.push(
      chain(
        BASE.rawPrerouting,
        [...ndp, clear, r([], { type: "jump", chain: CHAIN.rawFromHostEndpoint }), notrackMarked],
        base("filter", "prerouting", PRIORITY.raw),
      ),
      chain(
        BASE.rawOutput,
        [...ndp, clear, r([], { type: "jump", chain: CHAIN.rawToHostEndpoint }), notrackMarked],
        base("filter", "output", PRIORITY.raw),
      ),
      hepDispatch(CHAIN.rawFromHostEndpoint, heps, "raw-fh", has("raw-fh"), "iif", cfg),
      hepDispatch(CHAIN.rawToHostEndpoint, heps, "raw-th", has("raw-th"), "oif", cfg),
    );
  }
  if (anyPreDNAT) {
    chains.push(
      chain(
        BASE.manglePrerouting,
        [
          ...ndp,
          r([], { type: "jump", chain: CHAIN.mangleFromHostEndpoint }),
          r([acceptMarked()], { type: "accept" }),
        ],
        base("filter", "prerouting", PRIORITY.mangle),
      ),
      hepDispatch(CHAIN.mangleFromHostEndpoint, heps, "mangle-fh", has("mangle-fh"), "iif", cfg),
    );
  }

  return { chains, maps: dispatchMaps() };
}

/**
 * natOutgoing (§6): source in a natOutgoing pool, destination outside every pool. Only while
 * some pool asks for it: a registered nat hook puts every forwarded packet of every flow
 * through the NAT core (nf_nat_inet_fn), which costs throughput even with no rule to match.
 */
export function natChains(cfg: DataplaneConfig, pools: Iterable<PoolInfo>): Chain[] {
  const fams = families(cfg.ipv6);
  if (![...pools].some((p) => p.natOutgoing && fams.includes(p.cidr.family))) return [];
  return [
    chain(
      BASE.natPostrouting,
      [r([], { type: "jump", chain: CHAIN.natOutgoing })],
      base("nat", "postrouting", PRIORITY.srcnat),
    ),
    chain(
      CHAIN.natOutgoing,
      fams.map((f: IPFamily) =>
        r(
          [
            { type: "addr-set", family: f, dir: "saddr", op: "==", set: ipSetName(f, MASQ_POOLS_SET_ID) },
            { type: "addr-set", family: f, dir: "daddr", op: "!=", set: ipSetName(f, ALL_POOLS_SET_ID) },
          ],
          { type: "masquerade" },
        ),
      ),
    ),
  ];
}
