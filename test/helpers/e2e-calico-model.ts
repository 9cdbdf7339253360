/**
 * A small, independent model of Calico policy evaluation (reference/calico.md §1.6, §2.6–§2.12),
 * written from the reference, not from src/calc: given the endpoints, the namespaces' labels and
 * the projectcalico.org/v3 resources in force (Tier, GlobalNetworkPolicy, NetworkPolicy, Profile,
 * NetworkSet, GlobalNetworkSet), is one packet from one workload to another allowed? The e2e
 * test (e2e-calico.test.ts) compares real packets on the lab with it.
 *
 * - Per direction (egress at the source, ingress at the destination): tiers by `order` (absent
 *   last, then by name; `default` is 1,000,000 unless given); a tier counts only if one of its
 *   policies selects the endpoint for that direction; in it, policies by `order` (absent last)
 *   then name; the first matching Allow/Deny/Pass rule decides (Log continues); Pass and a tier
 *   whose `defaultAction` is Pass go on to the next tier; a tier left without a verdict denies.
 * - After the tiers (none applied, or all passed): the endpoint's profiles in order, first
 *   Allow/Deny wins; nothing matched: deny.
 * - A rule is for one IP family when `ipVersion` says so or its nets/notNets are of one family.
 * - Rule selectors match the endpoint or the network sets holding the peer's address: in a
 *   NetworkPolicy only those of its own namespace (NetworkSets, not GlobalNetworkSets) unless
 *   `namespaceSelector` says otherwise; in a GlobalNetworkPolicy or a profile, all of them.
 *
 * It throws on any field it does not model, so a scenario cannot silently go beyond it.
 */

export type Labels = Record<string, string>;

export interface ModelEndpoint {
  name: string;
  namespace: string;
  /** The endpoint's own labels, as stored on its WorkloadEndpoint. */
  labels: Labels;
  profiles: string[];
  ips: string[];
}

/** A projectcalico.org/v3 resource as written to the datastore (the fields the model reads). */
export interface ModelResource {
  apiVersion?: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Labels };
  spec: Record<string, unknown>;
}

export interface ModelPacket {
  family: 4 | 6;
  proto: "TCP" | "UDP" | "ICMP" | "ICMPv6";
  /** Destination port (TCP/UDP). */
  port?: number;
  /** ICMP type and code (ICMP/ICMPv6). */
  icmpType?: number;
  icmpCode?: number;
}

// ---- selectors (reference/calico.md §3: the subset the scenarios use) ----

type Sel = (labels: Labels) => boolean;

/** Parse a selector: `all()`, `global()`, `has(k)`, `k == 'v'`, `k != 'v'`, `k in {'a','b'}`,
 * `k not in {…}`, `!`, `&&`, `||`, parentheses. */
export function parseSelector(src: string): Sel {
  const toks = src.match(/\s*(==|!=|&&|\|\||[!(){},]|'[^']*'|"[^"]*"|[A-Za-z0-9_./-]+)/g) ?? [];
  const t = toks.map((s) => s.trim());
  if (t.join("").replace(/\s/g, "") !== src.replace(/\s/g, ""))
    throw new Error(`model: cannot lex selector "${src}"`);
  let i = 0;
  const peek = () => t[i];
  const next = () => {
    const x = t[i++];
    if (x === undefined) throw new Error(`model: selector "${src}" ends early`);
    return x;
  };
  const expect = (x: string) => {
    if (next() !== x) throw new Error(`model: selector "${src}": expected ${x}`);
  };
  const str = (x: string) => {
    if (!/^['"]/.test(x)) throw new Error(`model: selector "${src}": expected a quoted value, got ${x}`);
    return x.slice(1, -1);
  };
  const or = (): Sel => {
    let l = and();
    while (peek() === "||") {
      next();
      const a = l;
      const b = and();
      l = (x) => a(x) || b(x);
    }
    return l;
  };
  const and = (): Sel => {
    let l = unary();
    while (peek() === "&&") {
      next();
      const a = l;
      const b = unary();
      l = (x) => a(x) && b(x);
    }
    return l;
  };
  const set = (): string[] => {
    expect("{");
    const vals: string[] = [];
    while (peek() !== "}") {
      vals.push(str(next()));
      if (peek() === ",") next();
    }
    expect("}");
    return vals;
  };
  const unary = (): Sel => {
    const x = next();
    if (x === "!") {
      const inner = unary();
      return (l) => !inner(l);
    }
    if (x === "(") {
      const inner = or();
      expect(")");
      return inner;
    }
    if (x === "all" || x === "global") {
      expect("(");
      expect(")");
      return () => true;
    }
    if (x === "has") {
      expect("(");
      const k = next();
      expect(")");
      return (l) => Object.hasOwn(l, k);
    }
    const op = next();
    if (op === "==") {
      const v = str(next());
      return (l) => l[x] === v;
    }
    if (op === "!=") {
      const v = str(next());
      return (l) => l[x] !== v;
    }
    if (op === "in") {
      const vs = set();
      return (l) => Object.hasOwn(l, x) && vs.includes(l[x]!);
    }
    if (op === "not" && next() === "in") {
      const vs = set();
      return (l) => !(Object.hasOwn(l, x) && vs.includes(l[x]!));
    }
    throw new Error(`model: selector "${src}": unexpected ${op}`);
  };
  const sel = or();
  if (i !== t.length) throw new Error(`model: selector "${src}": trailing ${t.slice(i).join(" ")}`);
  return sel;
}

const matches = (selector: string | undefined, labels: Labels): boolean =>
  parseSelector(selector ?? "all()")(labels);

// ---- addresses ----

function parseIp(ip: string): { family: 4 | 6; n: bigint } {
  if (!ip.includes(":"))
    return { family: 4, n: ip.split(".").reduce((acc, o) => acc * 256n + BigInt(Number(o)), 0n) };
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const h = head === "" || head === undefined ? [] : head.split(":");
  const tl = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill("0"), ...tl];
  if (groups.length !== 8) throw new Error(`model: bad IPv6 address ${ip}`);
  return { family: 6, n: groups.reduce((acc, g) => acc * 65536n + BigInt(parseInt(g, 16)), 0n) };
}

export const familyOf = (ipOrCidr: string): 4 | 6 => (ipOrCidr.includes(":") ? 6 : 4);

export function inCidr(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split("/");
  const a = parseIp(ip);
  const b = parseIp(net!);
  if (a.family !== b.family) return false;
  const bits = BigInt((a.family === 4 ? 32 : 128) - Number(len ?? (a.family === 4 ? 32 : 128)));
  return a.n >> bits === b.n >> bits;
}

// ---- rules ----

interface EntityRule {
  nets?: string[];
  notNets?: string[];
  selector?: string;
  namespaceSelector?: string;
  ports?: (number | string)[];
}

interface Rule {
  action: "Allow" | "Deny" | "Pass" | "Log";
  ipVersion?: 4 | 6;
  protocol?: string | number;
  notProtocol?: string | number;
  icmp?: { type?: number; code?: number };
  notICMP?: { type?: number; code?: number };
  source?: EntityRule;
  destination?: EntityRule;
}

const RULE_FIELDS = new Set([
  "action",
  "ipVersion",
  "protocol",
  "notProtocol",
  "icmp",
  "notICMP",
  "source",
  "destination",
]);
const ENTITY_FIELDS = new Set(["nets", "notNets", "selector", "namespaceSelector", "ports"]);

const PROTO_NUMBERS: Record<string, number> = {
  TCP: 6,
  UDP: 17,
  ICMP: 1,
  ICMPv6: 58,
  SCTP: 132,
  UDPLite: 136,
};
const protoNumber = (p: string | number): number => (typeof p === "number" ? p : PROTO_NUMBERS[p]!);

/** Where a rule selector looks for the peer: the policy's namespace, or anywhere. */
interface Scope {
  namespace: string | undefined;
}

/** Something an address can belong to that rule selectors see: an endpoint or a network set. */
interface Labelled {
  kind: "endpoint" | "NetworkSet" | "GlobalNetworkSet";
  namespace: string | undefined;
  labels: Labels;
}

export interface ModelWorld {
  endpoints: readonly ModelEndpoint[];
  nsLabels: Record<string, Labels>;
  resources: readonly ModelResource[];
}

function checkFields(what: string, obj: object, known: Set<string>): void {
  for (const k of Object.keys(obj))
    if (!known.has(k)) throw new Error(`model: ${what} field "${k}" is not modelled`);
}

function effectiveLabels(world: ModelWorld, ep: ModelEndpoint): Labels {
  const out: Labels = {};
  for (const p of ep.profiles) {
    const prof = world.resources.find((r) => r.kind === "Profile" && r.metadata.name === p);
    Object.assign(out, (prof?.spec.labelsToApply as Labels | undefined) ?? {});
  }
  return { ...out, ...ep.labels };
}

function owners(world: ModelWorld, ip: string): Labelled[] {
  const out: Labelled[] = [];
  for (const ep of world.endpoints)
    if (ep.ips.includes(ip))
      out.push({ kind: "endpoint", namespace: ep.namespace, labels: effectiveLabels(world, ep) });
  for (const r of world.resources) {
    if (r.kind !== "NetworkSet" && r.kind !== "GlobalNetworkSet") continue;
    if (!((r.spec.nets as string[] | undefined) ?? []).some((n) => inCidr(ip, n))) continue;
    const ns = r.kind === "NetworkSet" ? r.metadata.namespace : undefined;
    out.push({
      kind: r.kind,
      namespace: ns,
      labels: {
        ...(r.metadata.labels ?? {}),
        ...(ns !== undefined ? { "projectcalico.org/namespace": ns } : {}),
      },
    });
  }
  return out;
}

function entityMatches(
  world: ModelWorld,
  e: EntityRule | undefined,
  ip: string,
  port: number | undefined,
  scope: Scope,
): boolean {
  if (e === undefined) return true;
  checkFields("entity rule", e, ENTITY_FIELDS);
  if (e.nets !== undefined && !e.nets.some((n) => inCidr(ip, n))) return false;
  if (e.notNets !== undefined && e.notNets.some((n) => inCidr(ip, n))) return false;
  if (e.ports !== undefined) {
    if (port === undefined) return false;
    const hit = e.ports.some((p) => {
      if (typeof p === "number") return p === port;
      const [lo, hi] = p.split(":").map(Number);
      if (hi === undefined || Number.isNaN(lo)) throw new Error(`model: named port "${p}" is not modelled`);
      return port >= lo! && port <= hi;
    });
    if (!hit) return false;
  }
  if (e.selector === undefined && e.namespaceSelector === undefined) return true;
  return owners(world, ip).some((o) => {
    const inScope =
      e.namespaceSelector === "global()"
        ? o.kind === "GlobalNetworkSet"
        : e.namespaceSelector !== undefined
          ? o.namespace !== undefined && matches(e.namespaceSelector, world.nsLabels[o.namespace] ?? {})
          : scope.namespace === undefined ||
            (o.namespace === scope.namespace && o.kind !== "GlobalNetworkSet");
    return inScope && matches(e.selector, o.labels);
  });
}

function ruleFamily(r: Rule): 4 | 6 | undefined {
  if (r.ipVersion !== undefined) return r.ipVersion;
  const cidrs = [r.source, r.destination].flatMap((e) => [...(e?.nets ?? []), ...(e?.notNets ?? [])]);
  return cidrs.length > 0 ? familyOf(cidrs[0]!) : undefined;
}

function icmpMatches(m: { type?: number; code?: number }, pkt: ModelPacket): boolean {
  return (
    (m.type === undefined || m.type === pkt.icmpType) && (m.code === undefined || m.code === pkt.icmpCode)
  );
}

function ruleMatches(
  world: ModelWorld,
  r: Rule,
  pkt: ModelPacket,
  srcIp: string,
  dstIp: string,
  scope: Scope,
): boolean {
  checkFields("rule", r, RULE_FIELDS);
  const fam = ruleFamily(r);
  if (fam !== undefined && fam !== pkt.family) return false;
  const proto = protoNumber(pkt.proto);
  if (r.protocol !== undefined && protoNumber(r.protocol) !== proto) return false;
  if (r.notProtocol !== undefined && protoNumber(r.notProtocol) === proto) return false;
  const isIcmp = pkt.proto === "ICMP" || pkt.proto === "ICMPv6";
  if (r.icmp !== undefined && !(isIcmp && icmpMatches(r.icmp, pkt))) return false;
  if (r.notICMP !== undefined && isIcmp && icmpMatches(r.notICMP, pkt)) return false;
  if (r.source?.ports !== undefined) throw new Error("model: source ports are not modelled");
  return (
    entityMatches(world, r.source, srcIp, undefined, scope) &&
    entityMatches(world, r.destination, dstIp, isIcmp ? undefined : pkt.port, scope)
  );
}

// ---- policies, tiers, profiles ----

type Dir = "Ingress" | "Egress";

const orderKey = (o: unknown): number => (typeof o === "number" ? o : Number.POSITIVE_INFINITY);

function byOrderThenName(a: ModelResource, b: ModelResource): number {
  const d = orderKey(a.spec.order) - orderKey(b.spec.order);
  if (d !== 0 && !Number.isNaN(d)) return d;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

function types(p: ModelResource): Dir[] {
  const t = p.spec.types as Dir[] | undefined;
  if (t !== undefined && t.length > 0) return t;
  const hasIn = p.spec.ingress !== undefined;
  const hasEg = p.spec.egress !== undefined;
  return hasEg && !hasIn ? ["Egress"] : hasEg ? ["Ingress", "Egress"] : ["Ingress"];
}

const POLICY_FIELDS = new Set([
  "tier",
  "order",
  "selector",
  "namespaceSelector",
  "types",
  "ingress",
  "egress",
]);

function selects(world: ModelWorld, p: ModelResource, ep: ModelEndpoint): boolean {
  checkFields(p.kind, p.spec, POLICY_FIELDS);
  if (p.kind === "NetworkPolicy" && p.metadata.namespace !== ep.namespace) return false;
  if (p.kind === "GlobalNetworkPolicy" && p.spec.namespaceSelector !== undefined) {
    if (!matches(p.spec.namespaceSelector as string, world.nsLabels[ep.namespace] ?? {})) return false;
  }
  return matches(p.spec.selector as string | undefined, effectiveLabels(world, ep));
}

/** The verdict of one direction at `self` for a packet from `srcIp` to `dstIp`. */
function directionAllows(
  world: ModelWorld,
  dir: Dir,
  self: ModelEndpoint,
  pkt: ModelPacket,
  srcIp: string,
  dstIp: string,
): boolean {
  const rulesOf = (r: ModelResource): Rule[] =>
    ((dir === "Ingress" ? r.spec.ingress : r.spec.egress) as Rule[] | undefined) ?? [];
  const tierRes = world.resources.filter((r) => r.kind === "Tier");
  const tierNames = new Set(["default", ...tierRes.map((t) => t.metadata.name)]);
  const tierOrder = (name: string): number => {
    const t = tierRes.find((x) => x.metadata.name === name);
    return t !== undefined
      ? orderKey(t.spec.order)
      : name === "default"
        ? 1_000_000
        : Number.POSITIVE_INFINITY;
  };
  const tierDefault = (name: string): string =>
    (tierRes.find((x) => x.metadata.name === name)?.spec.defaultAction as string | undefined) ?? "Deny";
  const tiers = [...tierNames].sort((a, b) => tierOrder(a) - tierOrder(b) || (a < b ? -1 : a > b ? 1 : 0));
  for (const tier of tiers) {
    const pols = world.resources
      .filter(
        (r) =>
          (r.kind === "NetworkPolicy" || r.kind === "GlobalNetworkPolicy") &&
          ((r.spec.tier as string | undefined) ?? "default") === tier &&
          types(r).includes(dir) &&
          selects(world, r, self),
      )
      .sort(byOrderThenName);
    if (pols.length === 0) continue;
    let verdict: string | undefined;
    for (const p of pols) {
      const scope: Scope = { namespace: p.kind === "NetworkPolicy" ? p.metadata.namespace : undefined };
      const hit = rulesOf(p).find(
        (r) => r.action !== "Log" && ruleMatches(world, r, pkt, srcIp, dstIp, scope),
      );
      if (hit !== undefined) {
        verdict = hit.action;
        break;
      }
    }
    if (verdict === "Allow") return true;
    if (verdict === "Deny") return false;
    if (verdict === "Pass") continue;
    if (tierDefault(tier) !== "Pass") return false;
  }
  for (const name of self.profiles) {
    const prof = world.resources.find((r) => r.kind === "Profile" && r.metadata.name === name);
    if (prof === undefined) continue;
    const hit = rulesOf(prof).find(
      (r) =>
        (r.action === "Allow" || r.action === "Deny") &&
        ruleMatches(world, r, pkt, srcIp, dstIp, { namespace: undefined }),
    );
    if (hit !== undefined) return hit.action === "Allow";
  }
  return false;
}

/** Whether the resources in `world` let `src` send `pkt` to `dst` (both workloads). */
export function calicoAllows(
  world: ModelWorld,
  src: ModelEndpoint,
  dst: ModelEndpoint,
  pkt: ModelPacket,
): boolean {
  const srcIp = src.ips.find((a) => familyOf(a) === pkt.family);
  const dstIp = dst.ips.find((a) => familyOf(a) === pkt.family);
  if (srcIp === undefined || dstIp === undefined) return false;
  return (
    directionAllows(world, "Egress", src, pkt, srcIp, dstIp) &&
    directionAllows(world, "Ingress", dst, pkt, srcIp, dstIp)
  );
}
