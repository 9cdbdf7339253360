/**
 * Policy and profile rules → ParsedRule (reference/calico.md §2.11, §2.13): actions
 * lower-cased, protocols to numbers, nets parsed, ports split into ranges and named ports,
 * and every selector turned into an IP set the rule refers to by ID.
 */
import { networkOf, parseCIDROrIP, type CIDR, type IPFamily } from "../api/net.js";
import { isObj, num, objects, str, type Obj } from "./decode.js";
import { MATCH_NOTHING, namedPortSet, selectorSet, type IPSetSpec } from "./ipset-spec.js";
import { entitySelectors } from "./selector-translation.js";
import { newRule, type ParsedRule, type PortRange, type RuleAction } from "./types.js";

const PROTOCOLS: Readonly<Record<string, number>> = {
  icmp: 1,
  tcp: 6,
  udp: 17,
  icmpv6: 58,
  sctp: 132,
  udplite: 136,
};

/** An IANA protocol number from a v3 name (any case) or a number; undefined if neither. */
export function protocolNumber(p: unknown): number | undefined {
  if (typeof p === "number") return Number.isInteger(p) && p >= 0 && p <= 255 ? p : undefined;
  if (typeof p !== "string") return undefined;
  if (/^\d+$/.test(p)) return protocolNumber(Number(p));
  return PROTOCOLS[p.toLowerCase()];
}

/** Raised for a rule that cannot be translated; the whole policy is then treated as invalid. */
export class RuleTranslationError extends Error {}

export interface RuleContext {
  /** `gnp/x ingress`, used in `origin`. */
  origin: string;
  /** Namespace of a NetworkPolicy; undefined for global policies and profiles. */
  namespace: string | undefined;
  logPrefix: string;
}

export interface TranslatedRules {
  rules: ParsedRule[];
  /** Every IP set the rules refer to (possibly repeated). */
  sets: IPSetSpec[];
}

const ACTIONS: Readonly<Record<string, RuleAction>> = {
  allow: "allow",
  deny: "deny",
  pass: "pass",
  "next-tier": "pass",
  log: "log",
};

function icmpOf(v: unknown): { type: number; code?: number } | undefined {
  if (!isObj(v)) return undefined;
  const type = num(v.type);
  if (type === undefined) return undefined;
  const code = num(v.code);
  return code === undefined ? { type } : { type, code };
}

function nets(v: unknown, what: string): CIDR[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new RuleTranslationError(`${what} is not a list`);
  return v.map((n) => {
    const c = typeof n === "string" ? parseCIDROrIP(n.trim()) : undefined;
    if (c === undefined) throw new RuleTranslationError(`${what}: ${JSON.stringify(n)} is not a CIDR`);
    return networkOf(c);
  });
}

interface Ports {
  ranges: PortRange[];
  named: string[];
}

function ports(v: unknown, what: string): Ports {
  const out: Ports = { ranges: [], named: [] };
  if (v === undefined) return out;
  if (!Array.isArray(v)) throw new RuleTranslationError(`${what} is not a list`);
  for (const p of v) {
    if (typeof p === "number" && Number.isInteger(p) && p >= 0 && p <= 65535) {
      out.ranges.push({ first: p, last: p });
      continue;
    }
    if (typeof p !== "string") throw new RuleTranslationError(`${what}: ${JSON.stringify(p)} is not a port`);
    const m = /^(\d+)(?::(\d+))?$/.exec(p.trim());
    if (m === null) {
      out.named.push(p);
      continue;
    }
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (first > last || last > 65535)
      throw new RuleTranslationError(`${what}: bad port range ${JSON.stringify(p)}`);
    out.ranges.push({ first, last });
  }
  return out;
}

function familyOf(rule: Obj, allNets: readonly CIDR[], protocol: number | undefined): IPFamily | undefined {
  const v = num(rule.ipVersion);
  if (v === 4 || v === 6) return v;
  const first = allNets[0];
  if (first !== undefined) return first.family;
  if (protocol === 1) return 4;
  if (protocol === 58) return 6;
  return undefined;
}

/** Translates one rule list. Throws RuleTranslationError (or SelectorSyntaxError) when invalid. */
export function translateRules(list: unknown, ctx: RuleContext): TranslatedRules {
  const out: TranslatedRules = { rules: [], sets: [] };
  if (list === undefined || list === null) return out;
  if (!Array.isArray(list)) throw new RuleTranslationError(`${ctx.origin}: rules are not a list`);
  list.forEach((r, i) => {
    const origin = `${ctx.origin}[${i}]`;
    if (!isObj(r)) throw new RuleTranslationError(`${origin}: not an object`);
    out.rules.push(translateRule(r, { ...ctx, origin }, out.sets));
  });
  return out;
}

function translateRule(rule: Obj, ctx: RuleContext, sets: IPSetSpec[]): ParsedRule {
  const action = ACTIONS[(str(rule.action) ?? "").toLowerCase()];
  if (action === undefined)
    throw new RuleTranslationError(`${ctx.origin}: unknown action ${JSON.stringify(rule.action)}`);
  const protocol = rule.protocol === undefined ? undefined : protocolNumber(rule.protocol);
  const notProtocol = rule.notProtocol === undefined ? undefined : protocolNumber(rule.notProtocol);
  if (rule.protocol !== undefined && protocol === undefined) {
    throw new RuleTranslationError(`${ctx.origin}: unknown protocol ${JSON.stringify(rule.protocol)}`);
  }
  if (rule.notProtocol !== undefined && notProtocol === undefined) {
    throw new RuleTranslationError(`${ctx.origin}: unknown protocol ${JSON.stringify(rule.notProtocol)}`);
  }
  const src = isObj(rule.source) ? rule.source : {};
  const dst = isObj(rule.destination) ? rule.destination : {};

  const parsed: ParsedRule = newRule(action, ctx.origin, {
    srcNets: nets(src.nets, `${ctx.origin} source.nets`),
    notSrcNets: nets(src.notNets, `${ctx.origin} source.notNets`),
    dstNets: nets(dst.nets, `${ctx.origin} destination.nets`),
    notDstNets: nets(dst.notNets, `${ctx.origin} destination.notNets`),
  });
  if (protocol !== undefined) parsed.protocol = protocol;
  if (notProtocol !== undefined) parsed.notProtocol = notProtocol;
  const icmp = icmpOf(rule.icmp);
  if (icmp !== undefined) parsed.icmp = icmp;
  const notICMP = icmpOf(rule.notICMP);
  if (notICMP !== undefined) parsed.notICMP = notICMP;
  const family = familyOf(
    rule,
    [...parsed.srcNets, ...parsed.notSrcNets, ...parsed.dstNets, ...parsed.notDstNets],
    protocol,
  );
  if (family !== undefined) parsed.ipVersion = family;
  if (action === "log") parsed.logPrefix = ctx.logPrefix;

  const use = (spec: IPSetSpec, into: string[]): void => {
    sets.push(spec);
    if (!into.includes(spec.id)) into.push(spec.id);
  };
  const side = (
    entity: Obj,
    name: "source" | "destination",
    f: {
      ports: PortRange[];
      notPorts: PortRange[];
      ipSets: string[];
      notIPSets: string[];
      namedPortSets: string[];
      notNamedPortSets: string[];
    },
  ): void => {
    const sels = entitySelectors(entity, ctx.namespace);
    if (sels.selector !== undefined) use(selectorSet(sels.selector), f.ipSets);
    if (sels.notSelector !== undefined) use(selectorSet(sels.notSelector), f.notIPSets);
    const p = ports(entity.ports, `${ctx.origin} ${name}.ports`);
    const np = ports(entity.notPorts, `${ctx.origin} ${name}.notPorts`);
    f.ports.push(...p.ranges);
    f.notPorts.push(...np.ranges);
    // A named port resolves against the endpoints the side's selector matches (all of them
    // when it has none), per endpoint: address, protocol and port number.
    const portSel = sels.selector ?? "all()";
    for (const n of p.named) use(namedPortSet(portSel, n, protocol), f.namedPortSets);
    for (const n of np.named) use(namedPortSet(portSel, n, protocol), f.notNamedPortSets);
    // Kubernetes Service matches need the Service/EndpointSlice resources, which the
    // calculation does not receive: fail closed, the rule matches nothing.
    if (entity.services !== undefined && entity.services !== null) {
      use(selectorSet(MATCH_NOTHING), f.ipSets);
      parsed.origin = `${ctx.origin} (${name}.services unsupported: matches nothing)`;
    }
  };
  side(src, "source", {
    ports: parsed.srcPorts,
    notPorts: parsed.notSrcPorts,
    ipSets: parsed.srcIPSets,
    notIPSets: parsed.notSrcIPSets,
    namedPortSets: parsed.srcNamedPortIPSets,
    notNamedPortSets: parsed.notSrcNamedPortIPSets,
  });
  side(dst, "destination", {
    ports: parsed.dstPorts,
    notPorts: parsed.notDstPorts,
    ipSets: parsed.dstIPSets,
    notIPSets: parsed.notDstIPSets,
    namedPortSets: parsed.dstNamedPortIPSets,
    notNamedPortSets: parsed.notDstNamedPortIPSets,
  });
  // HTTP matches need an L7 proxy (Calico's Dikastes); an Allow we cannot narrow must not
  // allow more than asked: it matches nothing.
  if (isObj(rule.http) && (objects(rule.http.paths).length > 0 || Array.isArray(rule.http.methods))) {
    use(selectorSet(MATCH_NOTHING), parsed.srcIPSets);
    parsed.origin = `${parsed.origin} (http match unsupported: matches nothing)`;
  }
  return parsed;
}
