/**
 * nftables as data (knftables' model, DESIGN.md §3): the objects of our one table
 * `inet calico` and the transactions that change them. Rules are structured (matches,
 * statements, a verdict), not text, so that
 * - `render.ts` turns a transaction into one `nft -f` script (printable when it fails),
 * - `FakeNft` applies the same transaction atomically in memory, and
 * - the packet tracer evaluates the fake's ruleset to give verdicts.
 *
 * Every rule carries a comment; the dataplane puts a hash of the rule there, so a read-back
 * (`nft -j list table`) can be compared rule by rule without parsing expressions back.
 */
import type { CIDR, IPFamily } from "../../api/net.js";

export const TABLE_FAMILY = "inet";
export const TABLE_NAME = "calico";

// ---- matches ----

export type Op = "==" | "!=";

export interface PortRange {
  first: number;
  last: number;
}

export type Match =
  /** `iifname "cali1234"` / `oifname != "cali*"` (a trailing `*` is nft's wildcard). */
  | { type: "ifname"; dir: "iif" | "oif"; op: Op; names: string[] }
  /** `meta nfproto ipv4` */
  | { type: "nfproto"; family: IPFamily }
  /** `meta l4proto 6`, `meta l4proto != { 6, 17 }` */
  | { type: "l4proto"; op: Op; protocols: number[] }
  /** `ip saddr { 198.19.0.0/26, ... }` / `ip6 daddr != ...` — literal prefixes. */
  | { type: "addr"; family: IPFamily; dir: "saddr" | "daddr"; op: Op; cidrs: CIDR[] }
  /** `ip saddr @cali40s-XYZ` — a named set of addresses/prefixes. */
  | { type: "addr-set"; family: IPFamily; dir: "saddr" | "daddr"; op: Op; set: string }
  /** `th dport { 80, 8000-8080 }` — requires a preceding l4proto match in the rule for
   * tcp/udp/sctp/udplite; `th` reads the transport header's port fields. */
  | { type: "port"; dir: "sport" | "dport"; op: Op; ranges: PortRange[] }
  /** `ip daddr . meta l4proto . th dport @cali40n-XYZ` — named-port sets. */
  | { type: "addr-port-set"; family: IPFamily; dir: "saddr" | "daddr"; op: Op; set: string }
  /** `icmp type 8 icmp code 0` / `icmpv6 type 128`; op applies to the (type, code) pair. */
  | { type: "icmp"; family: IPFamily; op: Op; icmpType: number; code?: number }
  /** `ct state established,related` / `ct state invalid` */
  | { type: "ct-state"; op: Op; states: ("established" | "related" | "invalid" | "new" | "untracked")[] }
  /** `meta mark & 0x10000 == 0x10000` */
  | { type: "mark"; op: Op; mask: number; value: number }
  /** `fib daddr type local` (traffic to this host) */
  | { type: "fib-daddr-local"; op: Op };

// ---- statements (non-terminal) ----

export type Statement =
  | { type: "counter" }
  | { type: "log"; prefix: string; level?: string }
  /** `meta mark set meta mark & ~clear | set` */
  | { type: "set-mark"; clear: number; set: number }
  /** `notrack` (raw prerouting/output only) */
  | { type: "notrack" };

// ---- verdicts ----

export type Verdict =
  | { type: "accept" }
  | { type: "drop" }
  | { type: "reject" }
  | { type: "return" }
  | { type: "continue" }
  | { type: "jump"; chain: string }
  | { type: "goto"; chain: string }
  /** `masquerade` (nat postrouting only) */
  | { type: "masquerade"; fully_random?: boolean };

/** `iifname vmap @map` / `oifname vmap @map`: dispatch on the interface name. */
export interface VmapDispatch {
  type: "vmap";
  key: "iifname" | "oifname";
  map: string;
}

export interface Rule {
  matches: Match[];
  statements: Statement[];
  /** What happens when every match holds, after the statements: a verdict, a verdict-map
   * lookup, or nothing (fall through to the next rule). */
  verdict?: Verdict | VmapDispatch;
  /** nft comments are at most 128 bytes; the dataplane stores a rule hash here. */
  comment?: string;
}

// ---- objects ----

export type ChainType = "filter" | "nat" | "route";
export type Hook = "prerouting" | "input" | "forward" | "output" | "postrouting";

export interface BaseChainSpec {
  type: ChainType;
  hook: Hook;
  /** Numeric priority (filter 0, raw -300, mangle -150, dstnat -100, srcnat 100). */
  priority: number;
  policy: "accept" | "drop";
}

export interface Chain {
  name: string;
  base?: BaseChainSpec;
  rules: Rule[];
}

/** Set element key types we use. */
export type SetKeyType =
  | "ipv4_addr"
  | "ipv6_addr"
  | "ipv4_addr . inet_proto . inet_service"
  | "ipv6_addr . inet_proto . inet_service"
  | "ifname"
  | "inet_service";

export interface SetSpec {
  name: string;
  keyType: SetKeyType;
  /** `interval` for prefix sets (ipv4_addr/ipv6_addr with CIDR members). */
  interval: boolean;
  comment?: string;
}

/**
 * Elements in canonical text: `198.19.0.5`, `198.19.0.0/26`, `fd00:19::/64`,
 * `198.19.0.5 . 6 . 8080`, `"cali1234"`-less ifnames (`cali1234`), ports `80`.
 */
export type SetElement = string;

export interface MapSpec {
  name: string;
  /** Dispatch maps: interface name → verdict. */
  keyType: "ifname";
  comment?: string;
}

/** A verdict-map element value: only chain transfers and accept/drop. */
export type MapVerdict =
  { type: "accept" } | { type: "drop" } | { type: "jump"; chain: string } | { type: "goto"; chain: string };

// ---- transactions ----

/**
 * One operation of a transaction, in the order nft applies them. The whole transaction is
 * atomic: all operations take effect, or (on any error) none do.
 * `ensure-table` is `table inet calico {}` (create if missing; no-op if present), which lets a
 * transaction start with `delete-table` safely (nft 1.0.6 has no `destroy`).
 */
export type TxOp =
  | { op: "ensure-table" }
  | { op: "delete-table" }
  | { op: "add-chain"; chain: string; base?: BaseChainSpec }
  | { op: "flush-chain"; chain: string }
  | { op: "delete-chain"; chain: string }
  | { op: "add-rule"; chain: string; rule: Rule }
  /** Delete one rule by its kernel handle (from a listing). */
  | { op: "delete-rule"; chain: string; handle: number }
  | { op: "add-set"; set: SetSpec }
  | { op: "flush-set"; set: string }
  | { op: "delete-set"; set: string }
  | { op: "add-elements"; set: string; elements: SetElement[] }
  | { op: "delete-elements"; set: string; elements: SetElement[] }
  | { op: "add-map"; map: MapSpec }
  | { op: "flush-map"; map: string }
  | { op: "delete-map"; map: string }
  | { op: "add-map-elements"; map: string; elements: [string, MapVerdict][] }
  | { op: "delete-map-elements"; map: string; keys: string[] };

export interface Transaction {
  ops: TxOp[];
}

// ---- read-back ----

/** What a listing of the table returns: enough to diff against the desired state. */
export interface TableListing {
  chains: Map<string, { base?: BaseChainSpec; rules: { handle: number; comment?: string }[] }>;
  sets: Map<string, { spec: SetSpec; elements: Set<SetElement> }>;
  maps: Map<string, { spec: MapSpec; elements: Map<string, MapVerdict> }>;
}

/**
 * The kernel interface (knftables' `Interface`): `NftCli` runs `nft`, `FakeNft` keeps the
 * ruleset in memory. Both apply a transaction atomically and list our table.
 */
export interface Nft {
  /** Apply atomically; on failure nothing changed and the error carries the script and nft's message. */
  apply(tx: Transaction): Promise<void>;
  /** Our table, or undefined when it does not exist. */
  list(): Promise<TableListing | undefined>;
}
