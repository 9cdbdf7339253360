/**
 * Transactions as text: one `nft -f -` script per transaction (STYLE.md "nftables as data").
 * The script is printable, so a failed apply can be read line by line (nft names the line).
 *
 * nft 1.0.6 facts this file depends on (reference/lab-recipes.md §2, checked against the binary):
 * - object names cannot be quoted and some words are keywords (`fwd`, `ct`): names are validated;
 * - a quoted string cannot contain `"` (there is no escape): comments and log prefixes are checked;
 * - a `{ ... }` literal with several values is an anonymous set (it takes a handle from the
 *   table's counter); a single value is rendered bare, so it does not;
 * - `th dport` reads the transport header at a fixed offset whatever the protocol, so we demand
 *   a preceding `meta l4proto` match restricted to port-carrying protocols;
 * - literal CIDR lists in rules are merged here (contained prefixes dropped); elements of named
 *   interval sets are NOT merged: the caller must not add overlapping intervals (the kernel
 *   rejects them, and `FakeNft` does too).
 */
import { formatIP, networkOf, familyBits, type CIDR, cidrContains } from "../../api/net.js";
import { CalicoError } from "../../errors.js";
import {
  TABLE_FAMILY,
  TABLE_NAME,
  type BaseChainSpec,
  type MapSpec,
  type MapVerdict,
  type Match,
  type PortRange,
  type Rule,
  type SetSpec,
  type Statement,
  type Transaction,
  type TxOp,
  type Verdict,
  type VmapDispatch,
} from "./model.js";
import { canonicalElement } from "./elements.js";

export const NFT_RENDER_INVALID = "NFT_RENDER_INVALID";

const TABLE = `${TABLE_FAMILY} ${TABLE_NAME}`;

/** Maximum comment length nft accepts (bytes). */
export const MAX_COMMENT_BYTES = 128;
/** IFNAMSIZ - 1 */
export const MAX_IFNAME = 15;

/** Protocols whose transport header starts with 16-bit source and destination ports. */
export const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 132, 136]);

/** Words nft 1.0.6's scanner turns into keywords that cannot be used as chain/set names
 * (names cannot be quoted). Not exhaustive: a conservative list of the ones near our names. */
const RESERVED = new Set([
  "fwd",
  "ct",
  "ip",
  "ip6",
  "inet",
  "meta",
  "tcp",
  "udp",
  "sctp",
  "icmp",
  "icmpv6",
  "th",
  "table",
  "chain",
  "set",
  "map",
  "rule",
  "element",
  "counter",
  "log",
  "accept",
  "drop",
  "reject",
  "jump",
  "goto",
  "return",
  "continue",
  "queue",
  "dup",
  "nat",
  "snat",
  "dnat",
  "masquerade",
  "redirect",
  "notrack",
  "mark",
  "flow",
  "limit",
  "quota",
  "vmap",
  "fib",
  "rt",
  "socket",
  "tproxy",
  "synproxy",
  "ether",
  "vlan",
  "arp",
  "type",
  "hook",
  "priority",
  "policy",
  "comment",
  "flags",
  "elements",
  "interval",
  "timeout",
  "handle",
  "position",
  "index",
  "add",
  "delete",
  "flush",
  "insert",
  "list",
  "create",
  "replace",
  "reset",
  "describe",
  "monitor",
  "export",
  "import",
  "netdev",
  "bridge",
  "ah",
  "esp",
  "comp",
  "dccp",
  "udplite",
  "exthdr",
  "frag",
  "hbh",
  "rh",
  "mh",
  "dst",
  "srh",
  "tunnel",
  "state",
  "status",
  "label",
  "secmark",
  "ct",
  "numgen",
  "hash",
  "jhash",
  "symhash",
  "osf",
]);

const NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]*$/;

function invalid(message: string): CalicoError {
  return new CalicoError(NFT_RENDER_INVALID, message);
}

/** Throws unless `name` can be written unquoted as an nft chain/set/map name. */
export function checkName(kind: string, name: string): string {
  if (!NAME_RE.test(name) || name.length > 255) {
    throw invalid(`Cannot render ${kind} name "${name}": must match ${String(NAME_RE)}`);
  }
  if (RESERVED.has(name.toLowerCase())) {
    throw invalid(`Cannot render ${kind} name "${name}": it is an nft keyword`);
  }
  return name;
}

/** A double-quoted nft string; nft has no escape for `"`, so it and newlines are refused. */
export function quote(what: string, s: string, maxBytes?: number): string {
  if (/["\n\r\\]/.test(s))
    throw invalid(`Cannot render ${what} ${JSON.stringify(s)}: it contains a quote, backslash or newline`);
  if (maxBytes !== undefined && Buffer.byteLength(s, "utf8") > maxBytes) {
    throw invalid(`Cannot render ${what} ${JSON.stringify(s)}: longer than ${maxBytes} bytes`);
  }
  return `"${s}"`;
}

function ifname(name: string): string {
  const bare = name.endsWith("*") ? name.slice(0, -1) : name;
  if (bare.length === 0 && !name.endsWith("*")) throw invalid(`Cannot render an empty interface name`);
  if (bare.length > MAX_IFNAME || bare.includes("*")) {
    throw invalid(
      `Cannot render interface name "${name}": at most ${MAX_IFNAME} characters, "*" only at the end`,
    );
  }
  return quote("interface name", name);
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, "0")}`;

function checkU32(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw invalid(`Cannot render ${what} ${n}: not a 32-bit unsigned integer`);
}

/** One value bare, several as an anonymous set `{ a, b }` (which costs a handle). */
function valueList(values: string[]): string {
  const uniq = [...new Set(values)];
  return uniq.length === 1 ? uniq[0]! : `{ ${uniq.join(", ")} }`;
}

/** How many anonymous sets a rule's rendering creates (each takes a table handle). */
export function anonymousSetCount(rule: Rule): number {
  let n = 0;
  for (const m of rule.matches) {
    switch (m.type) {
      case "ifname":
        if (new Set(m.names).size > 1) n++;
        break;
      case "l4proto":
        if (new Set(m.protocols).size > 1) n++;
        break;
      case "addr":
        if (mergeCIDRs(m.cidrs).length > 1) n++;
        break;
      case "port":
        if (new Set(m.ranges.map(portText)).size > 1) n++;
        break;
      case "icmp":
        if (m.op === "!=" && m.code !== undefined) n++;
        break;
      case "nfproto":
      case "addr-set":
      case "addr-port-set":
      case "ct-state":
      case "mark":
      case "fib-daddr-local":
        break;
    }
  }
  return n;
}

/** Literal CIDRs for a rule: masked, deduplicated, contained prefixes dropped. */
export function mergeCIDRs(cidrs: readonly CIDR[]): CIDR[] {
  const nets = cidrs.map(networkOf).sort((a, b) => a.prefix - b.prefix);
  const out: CIDR[] = [];
  for (const c of nets) {
    if (!out.some((o) => o.family === c.family && cidrContains(o, c))) out.push(c);
  }
  return out;
}

function cidrText(c: CIDR): string {
  const n = networkOf(c);
  return n.prefix === familyBits(n.family)
    ? formatIP(n.family, n.addr)
    : `${formatIP(n.family, n.addr)}/${n.prefix}`;
}

function checkPort(p: number): void {
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw invalid(`Cannot render port ${p}: not in 0-65535`);
}

function portText(r: PortRange): string {
  checkPort(r.first);
  checkPort(r.last);
  if (r.first > r.last) throw invalid(`Cannot render port range ${r.first}-${r.last}: first > last`);
  return r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`;
}

const neg = (op: "==" | "!="): string => (op === "!=" ? "!= " : "");
const ipProto = (family: 4 | 6): string => (family === 4 ? "ip" : "ip6");

function nonEmpty<T>(what: string, xs: readonly T[]): void {
  if (xs.length === 0) throw invalid(`Cannot render ${what} match with no values`);
}

export function renderMatch(m: Match): string {
  switch (m.type) {
    case "ifname":
      nonEmpty("ifname", m.names);
      return `${m.dir}name ${neg(m.op)}${valueList(m.names.map(ifname))}`;
    case "nfproto":
      return `meta nfproto ${m.family === 4 ? "ipv4" : "ipv6"}`;
    case "l4proto":
      nonEmpty("l4proto", m.protocols);
      for (const p of m.protocols) {
        if (!Number.isInteger(p) || p < 0 || p > 255)
          throw invalid(`Cannot render protocol ${p}: not in 0-255`);
      }
      return `meta l4proto ${neg(m.op)}${valueList(m.protocols.map(String))}`;
    case "addr": {
      nonEmpty("address", m.cidrs);
      const wrong = m.cidrs.find((c) => c.family !== m.family);
      if (wrong !== undefined)
        throw invalid(
          `Cannot render ${ipProto(m.family)} ${m.dir} match: ${cidrText(wrong)} is not IPv${m.family}`,
        );
      return `${ipProto(m.family)} ${m.dir} ${neg(m.op)}${valueList(mergeCIDRs(m.cidrs).map(cidrText))}`;
    }
    case "addr-set":
      return `${ipProto(m.family)} ${m.dir} ${neg(m.op)}@${checkName("set", m.set)}`;
    case "port":
      nonEmpty("port", m.ranges);
      return `th ${m.dir} ${neg(m.op)}${valueList(m.ranges.map(portText))}`;
    case "addr-port-set":
      return `${ipProto(m.family)} ${m.dir} . meta l4proto . th dport ${neg(m.op)}@${checkName("set", m.set)}`;
    case "icmp": {
      const p = m.family === 4 ? "icmp" : "icmpv6";
      const checkByte = (what: string, n: number): void => {
        if (!Number.isInteger(n) || n < 0 || n > 255)
          throw invalid(`Cannot render ${p} ${what} ${n}: not in 0-255`);
      };
      checkByte("type", m.icmpType);
      if (m.code === undefined) return `${p} type ${neg(m.op)}${m.icmpType}`;
      checkByte("code", m.code);
      // The op applies to the pair; nft only negates a concatenation against a set.
      return m.op === "=="
        ? `${p} type ${m.icmpType} ${p} code ${m.code}`
        : `${p} type . ${p} code != { ${m.icmpType} . ${m.code} }`;
    }
    case "ct-state":
      nonEmpty("ct state", m.states);
      return `ct state ${neg(m.op)}${[...new Set(m.states)].join(",")}`;
    case "mark":
      checkU32("mark mask", m.mask);
      checkU32("mark value", m.value);
      return `meta mark & ${hex(m.mask)} ${m.op} ${hex(m.value)}`;
    case "fib-daddr-local":
      return `fib daddr type ${neg(m.op)}local`;
  }
}

export function renderStatement(s: Statement): string {
  switch (s.type) {
    case "counter":
      return "counter";
    case "log": {
      const level = s.level === undefined ? "" : ` level ${checkLevel(s.level)}`;
      return `log prefix ${quote("log prefix", s.prefix, 127)}${level}`;
    }
    case "set-mark":
      checkU32("mark clear bits", s.clear);
      checkU32("mark set bits", s.set);
      return `meta mark set meta mark & ${hex(~s.clear >>> 0)} | ${hex(s.set)}`;
    case "notrack":
      return "notrack";
  }
}

const LOG_LEVELS = new Set(["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit"]);
function checkLevel(level: string): string {
  if (!LOG_LEVELS.has(level))
    throw invalid(`Cannot render log level "${level}": one of ${[...LOG_LEVELS].join(", ")}`);
  return level;
}

export function renderVerdict(v: Verdict | VmapDispatch): string {
  switch (v.type) {
    case "accept":
    case "drop":
    case "reject":
    case "return":
    case "continue":
      return v.type;
    case "jump":
    case "goto":
      return `${v.type} ${checkName("chain", v.chain)}`;
    case "masquerade":
      return v.fully_random === true ? "masquerade fully-random" : "masquerade";
    case "vmap":
      return `${v.key} vmap @${checkName("map", v.map)}`;
  }
}

/** Checks the l4proto dependency of port matches (see file comment). */
function checkPortDependency(rule: Rule): void {
  let protoOk = false;
  for (const m of rule.matches) {
    if (m.type === "l4proto") {
      protoOk = m.op === "==" && m.protocols.length > 0 && m.protocols.every((p) => PORT_PROTOCOLS.has(p));
    }
    if (m.type === "port" && !protoOk) {
      throw invalid(
        `Cannot render port match "th ${m.dir}": it needs an earlier "meta l4proto" match (==) ` +
          `limited to port protocols (6, 17, 132, 136) in the same rule`,
      );
    }
  }
}

/** The rule's body as it follows `add rule inet calico <chain>`. */
export function renderRule(rule: Rule): string {
  checkPortDependency(rule);
  const parts = [...rule.matches.map(renderMatch), ...rule.statements.map(renderStatement)];
  if (rule.verdict !== undefined) parts.push(renderVerdict(rule.verdict));
  if (rule.comment !== undefined) parts.push(`comment ${quote("comment", rule.comment, MAX_COMMENT_BYTES)}`);
  if (parts.length === 0) return "counter"; // an empty rule is not valid nft; never produced by us
  return parts.join(" ");
}

export function renderBaseSpec(b: BaseChainSpec): string {
  if (!Number.isInteger(b.priority))
    throw invalid(`Cannot render chain priority ${b.priority}: not an integer`);
  return `{ type ${b.type} hook ${b.hook} priority ${b.priority}; policy ${b.policy}; }`;
}

function renderSetSpec(s: SetSpec): string {
  const parts = [`type ${s.keyType};`];
  if (s.interval) parts.push("flags interval;");
  if (s.comment !== undefined) parts.push(`comment ${quote("set comment", s.comment, MAX_COMMENT_BYTES)};`);
  return `{ ${parts.join(" ")} }`;
}

function renderMapSpec(m: MapSpec): string {
  const parts = [`type ${m.keyType} : verdict;`];
  if (m.comment !== undefined) parts.push(`comment ${quote("map comment", m.comment, MAX_COMMENT_BYTES)};`);
  return `{ ${parts.join(" ")} }`;
}

/** A set element as nft input text: canonical text, with ifnames quoted. */
function elementText(keyType: SetSpec["keyType"] | "ifname", e: string): string {
  return keyType === "ifname" ? ifname(e) : e;
}

function renderMapVerdict(v: MapVerdict): string {
  return v.type === "jump" || v.type === "goto" ? `${v.type} ${checkName("chain", v.chain)}` : v.type;
}

/**
 * Element text needs the set's key type (to quote interface names); sets added earlier in the
 * same transaction are found there, others in `keyTypes` (e.g. from a listing). Without it,
 * text that is not an address, prefix, range, port or concatenation is quoted as a name.
 */
export interface RenderOptions {
  keyTypes?: ReadonlyMap<string, SetSpec["keyType"]>;
}

/** One command line per op (none for empty element lists, which nft would reject). */
export function renderOp(
  op: TxOp,
  keyTypeOf: (set: string) => SetSpec["keyType"] | undefined,
): string | undefined {
  switch (op.op) {
    case "ensure-table":
      return `add table ${TABLE}`;
    case "delete-table":
      return `delete table ${TABLE}`;
    case "add-chain":
      return `add chain ${TABLE} ${checkName("chain", op.chain)}${op.base === undefined ? "" : ` ${renderBaseSpec(op.base)}`}`;
    case "flush-chain":
      return `flush chain ${TABLE} ${checkName("chain", op.chain)}`;
    case "delete-chain":
      return `delete chain ${TABLE} ${checkName("chain", op.chain)}`;
    case "add-rule":
      return `add rule ${TABLE} ${checkName("chain", op.chain)} ${renderRule(op.rule)}`;
    case "delete-rule":
      if (!Number.isInteger(op.handle) || op.handle <= 0)
        throw invalid(`Cannot render rule handle ${op.handle}`);
      return `delete rule ${TABLE} ${checkName("chain", op.chain)} handle ${op.handle}`;
    case "add-set":
      return `add set ${TABLE} ${checkName("set", op.set.name)} ${renderSetSpec(op.set)}`;
    case "flush-set":
      return `flush set ${TABLE} ${checkName("set", op.set)}`;
    case "delete-set":
      return `delete set ${TABLE} ${checkName("set", op.set)}`;
    case "add-elements":
    case "delete-elements": {
      if (op.elements.length === 0) return undefined;
      const kt = keyTypeOf(op.set);
      const verb = op.op === "add-elements" ? "add" : "delete";
      const els = op.elements.map((e) =>
        kt === undefined ? guessElementText(e) : elementText(kt, canonicalOrRaw(kt, e)),
      );
      return `${verb} element ${TABLE} ${checkName("set", op.set)} { ${els.join(", ")} }`;
    }
    case "add-map":
      return `add map ${TABLE} ${checkName("map", op.map.name)} ${renderMapSpec(op.map)}`;
    case "flush-map":
      return `flush map ${TABLE} ${checkName("map", op.map)}`;
    case "delete-map":
      return `delete map ${TABLE} ${checkName("map", op.map)}`;
    case "add-map-elements":
      if (op.elements.length === 0) return undefined;
      return `add element ${TABLE} ${checkName("map", op.map)} { ${op.elements
        .map(([k, v]) => `${ifname(k)} : ${renderMapVerdict(v)}`)
        .join(", ")} }`;
    case "delete-map-elements":
      if (op.keys.length === 0) return undefined;
      return `delete element ${TABLE} ${checkName("map", op.map)} { ${op.keys.map(ifname).join(", ")} }`;
  }
}

function canonicalOrRaw(kt: SetSpec["keyType"], e: string): string {
  try {
    return canonicalElement(kt, e);
  } catch {
    return e; // let nft report it, with the line
  }
}

/** The `nft -f -` script of a transaction: one command per line, in op order. */
export function renderTransaction(tx: Transaction, opts: RenderOptions = {}): string {
  const known = new Map(opts.keyTypes ?? []);
  const lines: string[] = [];
  for (const op of tx.ops) {
    if (op.op === "add-set") known.set(op.set.name, op.set.keyType);
    if (op.op === "delete-table") known.clear();
    const line = renderOp(op, (s) => known.get(s));
    if (line !== undefined) lines.push(line);
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

function guessElementText(e: string): string {
  return /^[0-9a-fA-F:./\- ]+$/.test(e) ? e : ifname(e);
}
