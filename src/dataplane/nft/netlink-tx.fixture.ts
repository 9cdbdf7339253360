/**
 * A transaction that uses every kind of object, match, statement and verdict of model.ts (and
 * the encodings nft picks between: single value vs anonymous set, prefix byte-aligned or not,
 * wildcard names in a set, merged payload compares, implicit dependencies), for the netlink
 * encoder's tests: its unit test compares bytes with what nft 1.0.6 sends for the rendered
 * script, its kernel test compares `nft list` after applying it both ways.
 */
import { parseCIDR, type CIDR } from "../../api/net.js";
import type { Match, Rule, Statement, Transaction, TxOp, Verdict, VmapDispatch } from "./model.js";

const c = (s: string): CIDR => {
  const x = parseCIDR(s);
  if (x === undefined) throw new Error(`bad CIDR ${s}`);
  return x;
};

const rule = (
  chain: string,
  matches: Match[],
  statements: Statement[] = [],
  verdict?: Verdict | VmapDispatch,
  comment?: string,
): TxOp => {
  const r: Rule = { matches, statements };
  if (verdict !== undefined) r.verdict = verdict;
  if (comment !== undefined) r.comment = comment;
  return { op: "add-rule", chain, rule: r };
};

const accept: Verdict = { type: "accept" };
const drop: Verdict = { type: "drop" };
const tcp: Match = { type: "l4proto", op: "==", protocols: [6] };
const port = (dir: "sport" | "dport", op: "==" | "!=", ...r: [number, number][]): Match => ({
  type: "port",
  dir,
  op,
  ranges: r.map(([first, last]) => ({ first, last })),
});

/** Objects (sets, maps, chains) the rules below reference. */
export const EVERY_OBJECT: TxOp[] = [
  { op: "ensure-table" },
  { op: "add-set", set: { name: "nl40s-a", keyType: "ipv4_addr", interval: true, comment: "sel a" } },
  { op: "add-set", set: { name: "nl60s-a", keyType: "ipv6_addr", interval: true } },
  {
    op: "add-set",
    set: { name: "nl40n-a", keyType: "ipv4_addr . inet_proto . inet_service", interval: false },
  },
  {
    op: "add-set",
    set: { name: "nl60n-a", keyType: "ipv6_addr . inet_proto . inet_service", interval: false, comment: "n" },
  },
  { op: "add-set", set: { name: "nl-ports", keyType: "inet_service", interval: false } },
  { op: "add-set", set: { name: "nl-ifaces", keyType: "ifname", interval: false } },
  { op: "add-map", map: { name: "nl-from-wl", keyType: "ifname", comment: "dispatch" } },
  { op: "add-map", map: { name: "nl-to-wl", keyType: "ifname" } },
  { op: "add-chain", chain: "nl-c1" },
  { op: "add-chain", chain: "nl-c2" },
  {
    op: "add-chain",
    chain: "nl-fwd",
    base: { type: "filter", hook: "forward", priority: 0, policy: "drop" },
  },
  {
    op: "add-chain",
    chain: "nl-raw",
    base: { type: "filter", hook: "prerouting", priority: -300, policy: "accept" },
  },
  {
    op: "add-chain",
    chain: "nl-nat",
    base: { type: "nat", hook: "postrouting", priority: 110, policy: "accept" },
  },
  { op: "add-elements", set: "nl40s-a", elements: ["198.19.0.0/24", "198.19.5.5", "198.19.7.1-198.19.7.9"] },
  { op: "add-elements", set: "nl60s-a", elements: ["fd00:19::/64", "fd00:19:0:1::5"] },
  { op: "add-elements", set: "nl40n-a", elements: ["198.19.0.2 . 6 . 80", "198.19.0.3 . 17 . 53"] },
  { op: "add-elements", set: "nl60n-a", elements: ["fd00:19::2 . 6 . 443"] },
  { op: "add-elements", set: "nl-ports", elements: ["80", "443"] },
  { op: "add-elements", set: "nl-ifaces", elements: ["cali1", "eth0"] },
  {
    op: "add-map-elements",
    map: "nl-from-wl",
    elements: [
      ["cali1", { type: "goto", chain: "nl-c1" }],
      ["cali2", { type: "jump", chain: "nl-c2" }],
      ["cali3", accept],
      ["cali4", drop],
    ],
  },
];

/** One or more rules for every match, statement and verdict kind. */
export const EVERY_RULE: TxOp[] = [
  rule("nl-c1", [{ type: "ifname", dir: "iif", op: "==", names: ["cali1234"] }], [], accept, "exact name"),
  rule("nl-c1", [{ type: "ifname", dir: "oif", op: "!=", names: ["cali*"] }], [], drop),
  rule("nl-c1", [{ type: "ifname", dir: "iif", op: "==", names: ["a", "b*"] }], [], accept),
  rule("nl-c1", [{ type: "ifname", dir: "oif", op: "!=", names: ["lo", "eth0"] }], [], accept),
  rule("nl-c1", [{ type: "ifname", dir: "oif", op: "==", names: ["a*", "b"] }], [], accept),
  rule(
    "nl-c1",
    [
      { type: "l4proto", op: "==", protocols: [17, 6] },
      port("dport", "==", [8000, 8080], [80, 80], [81, 81]),
    ],
    [],
    accept,
  ),
  rule("nl-c1", [{ type: "l4proto", op: "!=", protocols: [6, 17] }], [], accept),
  rule("nl-c1", [tcp, port("sport", "==", [53, 53]), port("dport", "==", [80, 80])], [], accept, "merged"),
  rule(
    "nl-c1",
    [
      tcp,
      port("sport", "==", [53, 54]),
      port("dport", "!=", [80, 90]),
      port("dport", "!=", [99, 99]),
      port("sport", "!=", [1, 1], [5, 9]),
    ],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [
      { type: "nfproto", family: 4 },
      {
        type: "addr",
        family: 4,
        dir: "saddr",
        op: "==",
        cidrs: [c("198.19.0.0/26"), c("198.19.1.1/32"), c("10.0.0.0/24"), c("10.0.1.0/24")],
      },
    ],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [{ type: "addr", family: 4, dir: "saddr", op: "!=", cidrs: [c("198.19.0.0/26")] }],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [
      { type: "addr", family: 4, dir: "saddr", op: "==", cidrs: [c("198.19.0.1/32")] },
      { type: "addr", family: 4, dir: "daddr", op: "==", cidrs: [c("10.0.0.0/8")] },
    ],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [
      { type: "addr", family: 4, dir: "daddr", op: "!=", cidrs: [c("10.0.0.0/16")] },
      { type: "addr", family: 4, dir: "saddr", op: "!=", cidrs: [c("10.0.0.1/32")] },
    ],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [
      { type: "nfproto", family: 6 },
      { type: "addr", family: 6, dir: "daddr", op: "==", cidrs: [c("fd00:19::/64")] },
      { type: "addr", family: 6, dir: "saddr", op: "==", cidrs: [c("fd00:19::/127")] },
    ],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [
      {
        type: "addr",
        family: 6,
        dir: "saddr",
        op: "!=",
        cidrs: [c("fd00:19::/64"), c("fd00:19:0:1::5/128")],
      },
    ],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [
      { type: "nfproto", family: 4 },
      { type: "addr-set", family: 4, dir: "saddr", op: "==", set: "nl40s-a" },
      { type: "addr-set", family: 4, dir: "daddr", op: "!=", set: "nl40s-a" },
    ],
    [],
    accept,
  ),
  rule("nl-c1", [{ type: "addr-set", family: 6, dir: "saddr", op: "==", set: "nl60s-a" }], [], accept),
  rule(
    "nl-c1",
    [
      { type: "nfproto", family: 4 },
      tcp,
      { type: "addr-port-set", family: 4, dir: "daddr", op: "==", set: "nl40n-a" },
    ],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [
      { type: "nfproto", family: 6 },
      tcp,
      { type: "addr-port-set", family: 6, dir: "saddr", op: "!=", set: "nl60n-a" },
    ],
    [],
    accept,
  ),
  rule(
    "nl-c1",
    [
      { type: "nfproto", family: 4 },
      { type: "l4proto", op: "==", protocols: [1] },
      { type: "icmp", family: 4, op: "==", icmpType: 8, code: 0 },
    ],
    [],
    accept,
  ),
  rule("nl-c1", [{ type: "icmp", family: 4, op: "!=", icmpType: 8, code: 0 }], [], accept),
  rule("nl-c1", [{ type: "icmp", family: 4, op: "==", icmpType: 8 }], [], accept),
  rule("nl-c1", [{ type: "icmp", family: 6, op: "!=", icmpType: 128 }], [], accept),
  rule("nl-c1", [{ type: "icmp", family: 6, op: "!=", icmpType: 128, code: 0 }], [], accept),
  rule("nl-c1", [{ type: "icmp", family: 6, op: "==", icmpType: 128, code: 0 }], [], accept),
  rule("nl-c1", [{ type: "ct-state", op: "==", states: ["established", "related"] }], [], accept),
  rule("nl-c1", [{ type: "ct-state", op: "==", states: ["invalid"] }], [], drop),
  rule("nl-c1", [{ type: "ct-state", op: "!=", states: ["new"] }], [], drop),
  rule(
    "nl-c1",
    [
      { type: "ct-state", op: "!=", states: ["established", "related"] },
      { type: "ct-state", op: "==", states: ["untracked"] },
    ],
    [],
    drop,
  ),
  rule("nl-c1", [{ type: "mark", op: "==", mask: 0x10000, value: 0x10000 }], [], { type: "return" }),
  rule(
    "nl-c1",
    [
      { type: "mark", op: "!=", mask: 0xffffffff, value: 0 },
      { type: "mark", op: "==", mask: 0, value: 0 },
    ],
    [],
    { type: "continue" },
  ),
  rule("nl-c1", [{ type: "fib-daddr-local", op: "==" }], [], { type: "jump", chain: "nl-c2" }),
  rule("nl-c1", [{ type: "fib-daddr-local", op: "!=" }], [], { type: "goto", chain: "nl-c2" }),
  rule(
    "nl-c1",
    [],
    [
      { type: "counter" },
      { type: "log", prefix: "calico-packet", level: "info" },
      { type: "set-mark", clear: 0x30000, set: 0x10000 },
      { type: "set-mark", clear: 0, set: 0x10000 },
      { type: "set-mark", clear: 0x20000, set: 0 },
    ],
    { type: "reject" },
  ),
  rule(
    "nl-c1",
    [],
    [
      { type: "log", prefix: "x" },
      { type: "log", prefix: "y", level: "warn" },
    ],
  ),
  rule("nl-raw", [], [{ type: "notrack" }]),
  rule("nl-fwd", [], [], { type: "vmap", key: "iifname", map: "nl-from-wl" }, "from wl"),
  rule("nl-fwd", [], [], { type: "vmap", key: "oifname", map: "nl-to-wl" }),
  rule("nl-nat", [], [], { type: "masquerade" }),
  rule("nl-nat", [], [], { type: "masquerade", fully_random: true }, "masq"),
];

export const everyKindTransaction = (): Transaction => ({ ops: [...EVERY_OBJECT, ...EVERY_RULE] });
