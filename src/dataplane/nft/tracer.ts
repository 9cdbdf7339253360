/**
 * A packet tracer over `FakeNft`'s ruleset: which verdict our table gives a packet at a hook,
 * and which rules matched on the way (so a failing test can print why).
 *
 * nftables semantics followed (nft(8) "CHAINS", "VERDICT STATEMENT"):
 * - every base chain registered at the hook runs, lowest priority first; `accept` ends only
 *   the current base chain (the packet goes on to the next one), `drop`/`reject` end it all;
 *   the chain policy applies when a base chain runs off its end;
 * - `jump` pushes a return point, `goto` does not; `return` (or the end of a regular chain)
 *   goes back to the last return point, and at the base chain means the policy;
 * - `continue` and rules without a verdict go on to the next rule; a vmap lookup that misses
 *   does the same;
 * - `ip …`/`ip6 …`/`icmp …` matches carry nft's implicit protocol dependency: a `!=` match of
 *   the other family does not match either.
 * Not modelled: conntrack itself (the packet states its `ctState`), NAT rewriting (masquerade
 * is reported, addresses are not changed), routing.
 */
import { cidrContains, parseIP, type IPFamily } from "../../api/net.js";
import { CalicoError } from "../../errors.js";
import type { ElementValue } from "./elements.js";
import type { FakeChain, Ruleset } from "./fake-nft.js";
import type { Hook, Match, MapVerdict, Rule } from "./model.js";

export type CtState = "new" | "established" | "related" | "invalid" | "untracked";

export interface Packet {
  family: IPFamily;
  iifname?: string;
  oifname?: string;
  saddr: string;
  daddr: string;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6). */
  protocol: number;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  ctState: CtState;
  mark?: number;
  /** `fib daddr type local`: the destination is an address of this host. */
  daddrIsLocal?: boolean;
}

export interface TraceStep {
  chain: string;
  /** Index of the rule in its chain; -1 for the chain's policy. */
  index: number;
  handle?: number;
  comment?: string;
  /** What the rule did: its verdict, a vmap hit, or `policy accept`. */
  action: string;
}

export interface TraceResult {
  verdict: "accept" | "drop" | "reject";
  /** Rules whose matches all held, in evaluation order, and the policies applied. */
  matched: TraceStep[];
  /** The packet mark after the statements ran. */
  mark: number;
  logs: string[];
  notrack: boolean;
  masquerade: boolean;
}

export const NFT_TRACE_FAILED = "NFT_TRACE_FAILED";
const MAX_STEPS = 100_000;

interface Pkt extends Packet {
  src: bigint;
  dst: bigint;
}

function ifMatch(pattern: string, name: string): boolean {
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

function inAddrValues(values: Iterable<ElementValue>, a: bigint, family: IPFamily): boolean {
  for (const v of values) if (v.kind === "addr" && v.family === family && v.lo <= a && a <= v.hi) return true;
  return false;
}

const PORT_PROTOS = new Set([6, 17, 132, 136]);

/** Whether a match holds; `undefined` when its protocol dependency fails (no match either way). */
function evalMatch(rs: Ruleset, m: Match, p: Pkt): boolean {
  const apply = (op: "==" | "!=", hit: boolean): boolean => (op === "==" ? hit : !hit);
  switch (m.type) {
    case "ifname": {
      const name = (m.dir === "iif" ? p.iifname : p.oifname) ?? "";
      return apply(
        m.op,
        m.names.some((n) => ifMatch(n, name)),
      );
    }
    case "nfproto":
      return p.family === m.family;
    case "l4proto":
      return apply(m.op, m.protocols.includes(p.protocol));
    case "addr": {
      if (p.family !== m.family) return false;
      const a = m.dir === "saddr" ? p.src : p.dst;
      return apply(
        m.op,
        m.cidrs.some((c) =>
          cidrContains(c, { family: p.family, addr: a, prefix: p.family === 4 ? 32 : 128 }),
        ),
      );
    }
    case "addr-set": {
      if (p.family !== m.family) return false;
      const set = rs.sets.get(m.set);
      if (set === undefined)
        throw new CalicoError(NFT_TRACE_FAILED, `Cannot trace: set "${m.set}" does not exist`);
      return apply(m.op, inAddrValues(set.elements.values(), m.dir === "saddr" ? p.src : p.dst, p.family));
    }
    case "port": {
      const port = m.dir === "sport" ? p.sport : p.dport;
      if (!PORT_PROTOS.has(p.protocol) || port === undefined) return false;
      return apply(
        m.op,
        m.ranges.some((r) => r.first <= port && port <= r.last),
      );
    }
    case "addr-port-set": {
      if (p.family !== m.family || p.dport === undefined) return false;
      const set = rs.sets.get(m.set);
      if (set === undefined)
        throw new CalicoError(NFT_TRACE_FAILED, `Cannot trace: set "${m.set}" does not exist`);
      const a = m.dir === "saddr" ? p.src : p.dst;
      let hit = false;
      for (const v of set.elements.values()) {
        if (v.kind === "concat" && v.addr === a && v.proto === p.protocol && v.port === p.dport) hit = true;
      }
      return apply(m.op, hit);
    }
    case "icmp": {
      const proto = m.family === 4 ? 1 : 58;
      if (p.family !== m.family || p.protocol !== proto || p.icmpType === undefined) return false;
      const hit = p.icmpType === m.icmpType && (m.code === undefined || p.icmpCode === m.code);
      return apply(m.op, hit);
    }
    case "ct-state":
      return apply(m.op, m.states.includes(p.ctState));
    case "mark":
      return apply(m.op, ((p.mark ?? 0) & m.mask) >>> 0 === m.value >>> 0);
    case "fib-daddr-local":
      return apply(m.op, p.daddrIsLocal === true);
  }
}

type Outcome = { kind: "accept" | "drop" | "reject" } | { kind: "policy" };

/** Trace `packet` through every base chain of `hook` in `ruleset`. */
export function tracePacket(ruleset: Ruleset | undefined, packet: Packet, hook: Hook): TraceResult {
  const src = parseIP(packet.saddr);
  const dst = parseIP(packet.daddr);
  if (src?.family !== packet.family || dst?.family !== packet.family) {
    throw new CalicoError(
      NFT_TRACE_FAILED,
      `Cannot trace packet ${packet.saddr} -> ${packet.daddr}: not IPv${packet.family} addresses`,
    );
  }
  const p: Pkt = { ...packet, mark: packet.mark ?? 0, src: src.value, dst: dst.value };
  const result: TraceResult = {
    verdict: "accept",
    matched: [],
    mark: p.mark ?? 0,
    logs: [],
    notrack: false,
    masquerade: false,
  };
  if (ruleset === undefined) return result;
  const bases = [...ruleset.chains.values()]
    .filter((c) => c.base?.hook === hook)
    .sort((a, b) => a.base!.priority - b.base!.priority);
  let steps = 0;

  const runBase = (baseChain: FakeChain): Outcome => {
    // The stack of return points: [chain, next rule index].
    const stack: [FakeChain, number][] = [];
    let chain = baseChain;
    let i = 0;
    for (;;) {
      if (++steps > MAX_STEPS)
        throw new CalicoError(
          NFT_TRACE_FAILED,
          `Cannot trace: more than ${MAX_STEPS} rule evaluations (a loop?)`,
        );
      const entry = chain.rules[i];
      if (entry === undefined) {
        // End of chain: implicit return.
        const back = stack.pop();
        if (back === undefined) return { kind: "policy" };
        [chain, i] = back;
        continue;
      }
      const rule: Rule = entry.rule;
      const index = i;
      i++;
      if (!rule.matches.every((m) => evalMatch(ruleset, m, p))) continue;
      for (const s of rule.statements) {
        if (s.type === "set-mark") p.mark = ((((p.mark ?? 0) & ~s.clear) >>> 0) | s.set) >>> 0;
        else if (s.type === "log") result.logs.push(s.prefix);
        else if (s.type === "notrack") result.notrack = true;
      }
      const v = rule.verdict;
      const step = (action: string): void => {
        result.matched.push({
          chain: chain.name,
          index,
          handle: entry.handle,
          ...(rule.comment === undefined ? {} : { comment: rule.comment }),
          action,
        });
      };
      let transfer: MapVerdict | undefined;
      if (v === undefined || v.type === "continue") {
        step(v === undefined ? "next" : "continue");
        continue;
      }
      if (v.type === "vmap") {
        const map = ruleset.maps.get(v.map);
        if (map === undefined)
          throw new CalicoError(NFT_TRACE_FAILED, `Cannot trace: map "${v.map}" does not exist`);
        const key = (v.key === "iifname" ? p.iifname : p.oifname) ?? "";
        transfer = map.elements.get(key);
        step(
          transfer === undefined
            ? `vmap @${v.map}: no element for "${key}"`
            : `vmap @${v.map}: ${describe(transfer)}`,
        );
        if (transfer === undefined) continue;
      } else {
        step(v.type === "jump" || v.type === "goto" ? `${v.type} ${v.chain}` : v.type);
      }
      const t = transfer ?? v;
      switch (t.type) {
        case "accept":
        case "drop":
        case "reject":
          return { kind: t.type };
        case "masquerade":
          result.masquerade = true;
          return { kind: "accept" };
        case "return": {
          const back = stack.pop();
          if (back === undefined) return { kind: "policy" };
          [chain, i] = back;
          break;
        }
        case "jump":
        case "goto": {
          const target = ruleset.chains.get(t.chain);
          if (target === undefined)
            throw new CalicoError(NFT_TRACE_FAILED, `Cannot trace: chain "${t.chain}" does not exist`);
          if (t.type === "jump") stack.push([chain, i]);
          chain = target;
          i = 0;
          break;
        }
        case "vmap":
          break; // handled above
      }
    }
  };

  for (const b of bases) {
    let out = runBase(b);
    if (out.kind === "policy") {
      result.matched.push({ chain: b.name, index: -1, action: `policy ${b.base!.policy}` });
      out = { kind: b.base!.policy };
    }
    if (out.kind !== "accept") {
      result.verdict = out.kind;
      break;
    }
  }
  result.mark = p.mark ?? 0;
  return result;
}

function describe(v: MapVerdict): string {
  return v.type === "jump" || v.type === "goto" ? `${v.type} ${v.chain}` : v.type;
}

/** One line per matched rule, for test failure messages. */
export function explain(r: TraceResult): string {
  return [
    `verdict ${r.verdict}`,
    ...r.matched.map(
      (s) => `  ${s.chain}[${s.index}]${s.comment === undefined ? "" : ` "${s.comment}"`}: ${s.action}`,
    ),
  ].join("\n");
}
