/**
 * Node address autodetection, as calico-node does it (Appendix A: `IP`, `IP6`,
 * `IP_AUTODETECTION_METHOD`, `IP6_AUTODETECTION_METHOD`): the address the node's BGP speaker
 * uses and peers reach it on, with its prefix length (`198.18.0.5/24`; the prefix decides
 * CrossSubnet, reference/calico.md §2.3).
 *
 * Methods: `first-found` (the first global address on an interface not excluded by Calico's
 * default list), `interface=REGEX[,REGEX]`, `skip-interface=REGEX[,REGEX]`, `can-reach=ADDR`
 * (the source address the kernel would use towards ADDR: a route lookup, no traffic),
 * `cidr=CIDR[,CIDR]`. Regexes match anywhere in the name, as Go's `MatchString` does.
 *
 * Addresses are read with `ip -j addr` in the agent's network namespace (`--netns`); the
 * choice itself is pure and tested on parsed fixtures.
 */
import { cidrContains, formatIP, parseCIDR, parseIP, type IPFamily } from "../api/net.js";
import { CalicoError } from "../errors.js";
import { runOk } from "../dataplane/netns.js";

export const AUTODETECT_ERROR = "AGENT_AUTODETECT_FAILED";

/**
 * calico-node's DEFAULT_INTERFACES_TO_EXCLUDE (node/pkg/lifecycle/startup/autodetection), matched
 * against the whole name.
 */
export const DEFAULT_INTERFACES_TO_EXCLUDE: readonly string[] = [
  "docker.*",
  "cbr.*",
  "dummy.*",
  "virbr.*",
  "lxcbr.*",
  "veth.*",
  "lo",
  "cali.*",
  "tunl.*",
  "flannel.*",
  "kube-ipvs.*",
  "cni.*",
  "vxlan.calico.*",
  "vxlan-v6.calico.*",
  "wireguard.cali.*",
  "wg-v6.cali.*",
  "nodelocaldns.*",
  "podman.*",
];

export interface InterfaceAddress {
  family: IPFamily;
  address: string;
  prefixLength: number;
  scope: string;
}

export interface HostInterface {
  name: string;
  up: boolean;
  addresses: InterfaceAddress[];
}

export type AutodetectMethod =
  | { kind: "first-found" }
  | { kind: "interface"; regexes: RegExp[] }
  | { kind: "skip-interface"; regexes: RegExp[] }
  | { kind: "can-reach"; destination: string }
  | { kind: "cidr"; cidrs: string[] };

export interface DetectedAddress {
  /** `198.18.0.5/24`, `fd00::5/64`. */
  cidr: string;
  interfaceName: string;
}

function fail(message: string): CalicoError {
  return new CalicoError(AUTODETECT_ERROR, message);
}

function compileRegexes(text: string, method: string): RegExp[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => {
      try {
        return new RegExp(s);
      } catch (err) {
        throw fail(`Invalid autodetection method "${method}": bad regular expression "${s}": ${String(err)}`);
      }
    });
}

/** Parse an `IP_AUTODETECTION_METHOD` value; empty means `first-found`. */
export function parseAutodetectMethod(text: string): AutodetectMethod {
  const t = text.trim();
  if (t === "" || t === "first-found") return { kind: "first-found" };
  const eq = t.indexOf("=");
  const name = eq < 0 ? t : t.slice(0, eq);
  const arg = eq < 0 ? "" : t.slice(eq + 1);
  switch (name) {
    case "interface":
    case "skip-interface": {
      const regexes = compileRegexes(arg, t);
      if (regexes.length === 0) throw fail(`Invalid autodetection method "${t}": needs a regular expression`);
      return { kind: name, regexes };
    }
    case "can-reach": {
      const dest = arg.trim();
      if (dest === "") throw fail(`Invalid autodetection method "${t}": needs an address or host name`);
      return { kind: "can-reach", destination: dest };
    }
    case "cidr": {
      const cidrs = arg
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
      for (const c of cidrs) {
        if (parseCIDR(c) === undefined)
          throw fail(`Invalid autodetection method "${t}": "${c}" is not a CIDR`);
      }
      if (cidrs.length === 0) throw fail(`Invalid autodetection method "${t}": needs at least one CIDR`);
      return { kind: "cidr", cidrs };
    }
    default:
      throw fail(
        `Invalid autodetection method "${t}": expected first-found, interface=REGEX, skip-interface=REGEX, can-reach=ADDR or cidr=CIDR`,
      );
  }
}

interface IpAddrJson {
  ifname?: string;
  flags?: string[];
  operstate?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[];
}

/** The interfaces and addresses in `ip -j addr` output. */
export function parseIpAddrJson(text: string): HostInterface[] {
  const data = JSON.parse(text) as IpAddrJson[];
  if (!Array.isArray(data)) throw fail("Cannot read interfaces: `ip -j addr` did not print a JSON array");
  return data
    .filter((l) => typeof l.ifname === "string")
    .map((l) => ({
      name: l.ifname!,
      up: (l.flags ?? []).includes("UP"),
      addresses: (l.addr_info ?? []).flatMap((a): InterfaceAddress[] => {
        const family = a.family === "inet" ? 4 : a.family === "inet6" ? 6 : undefined;
        if (family === undefined || typeof a.local !== "string" || typeof a.prefixlen !== "number") return [];
        return [{ family, address: a.local, prefixLength: a.prefixlen, scope: a.scope ?? "global" }];
      }),
    }));
}

const anchored = (patterns: readonly string[]): RegExp[] => patterns.map((p) => new RegExp(`^(?:${p})$`));
const DEFAULT_EXCLUDES = anchored(DEFAULT_INTERFACES_TO_EXCLUDE);

/** Addresses worth offering as a node address: global scope, not loopback or link-local. */
function usable(a: InterfaceAddress, family: IPFamily): boolean {
  if (a.family !== family || a.scope !== "global") return false;
  const ip = parseIP(a.address);
  if (ip === undefined) return false;
  if (family === 4) return !a.address.startsWith("127.") && !a.address.startsWith("169.254.");
  return !/^fe[89ab]/i.test(a.address) && a.address !== "::1";
}

function firstAddress(
  ifaces: readonly HostInterface[],
  family: IPFamily,
  include: (name: string) => boolean,
  accept: (a: InterfaceAddress) => boolean = () => true,
): DetectedAddress | undefined {
  for (const iface of ifaces) {
    if (!include(iface.name)) continue;
    for (const a of iface.addresses) {
      if (usable(a, family) && accept(a)) {
        return { cidr: `${a.address}/${a.prefixLength}`, interfaceName: iface.name };
      }
    }
  }
  return undefined;
}

/**
 * Choose an address by a method that needs no route lookup. `can-reach` needs the source
 * address the kernel picked (`routeSource`), which is then looked up among the interfaces
 * for its prefix length.
 */
export function chooseAddress(
  method: AutodetectMethod,
  family: IPFamily,
  ifaces: readonly HostInterface[],
  routeSource?: string,
): DetectedAddress | undefined {
  const notExcluded = (name: string) => !DEFAULT_EXCLUDES.some((r) => r.test(name));
  switch (method.kind) {
    case "first-found":
      return firstAddress(ifaces, family, notExcluded);
    case "interface":
      return firstAddress(ifaces, family, (n) => method.regexes.some((r) => r.test(n)));
    case "skip-interface":
      return firstAddress(ifaces, family, (n) => notExcluded(n) && !method.regexes.some((r) => r.test(n)));
    case "cidr": {
      const cidrs = method.cidrs.map((c) => parseCIDR(c)!).filter((c) => c.family === family);
      return firstAddress(
        ifaces,
        family,
        () => true,
        (a) => {
          const ip = parseCIDR(`${a.address}/${family === 4 ? 32 : 128}`);
          return ip !== undefined && cidrs.some((c) => cidrContains(c, ip));
        },
      );
    }
    case "can-reach": {
      if (routeSource === undefined) return undefined;
      const want = parseIP(routeSource);
      if (want === undefined) return undefined;
      for (const iface of ifaces) {
        for (const a of iface.addresses) {
          const ip = parseIP(a.address);
          if (ip !== undefined && ip.family === want.family && ip.value === want.value) {
            return { cidr: `${a.address}/${a.prefixLength}`, interfaceName: iface.name };
          }
        }
      }
      // The kernel's source is not configured on an interface we can see: host route form.
      return { cidr: `${routeSource}/${family === 4 ? 32 : 128}`, interfaceName: "" };
    }
  }
}

/** The `prefsrc` of `ip -j route get` output, if any. */
export function parseRouteGetSource(text: string): string | undefined {
  const data = JSON.parse(text) as { prefsrc?: string }[];
  const src = Array.isArray(data) ? data[0]?.prefsrc : undefined;
  return typeof src === "string" ? src : undefined;
}

export interface AutodetectIO {
  /** `ip -j addr` output. */
  ipAddr(): Promise<string>;
  /** `ip -j [-6] route get DEST` output. */
  routeGet(family: IPFamily, destination: string): Promise<string>;
}

export function ipCommands(netns: string | undefined): AutodetectIO {
  return {
    ipAddr: () => runOk("ip", ["-j", "addr", "show"], { netns }),
    routeGet: (family, dest) =>
      runOk("ip", ["-j", family === 6 ? "-6" : "-4", "route", "get", dest], { netns }),
  };
}

/**
 * Resolve the `IP`/`IP6` setting: an explicit address (with or without a prefix length; an
 * address without one gets the prefix of the interface that carries it, else /32 or /128),
 * `none` (undefined), or `autodetect`/empty using `method`.
 */
export async function resolveNodeAddress(
  setting: string | undefined,
  methodText: string | undefined,
  family: IPFamily,
  io: AutodetectIO,
): Promise<DetectedAddress | undefined> {
  const s = (setting ?? "").trim();
  if (s.toLowerCase() === "none") return undefined;
  if (s !== "" && s.toLowerCase() !== "autodetect") {
    const asCidr = parseCIDR(s);
    if (asCidr !== undefined) {
      if (asCidr.family !== family)
        throw fail(`IPv${family} address setting "${s}" is not an IPv${family} address`);
      return { cidr: `${formatIP(family, asCidr.addr)}/${asCidr.prefix}`, interfaceName: "" };
    }
    const ip = parseIP(s);
    if (ip === undefined || ip.family !== family) {
      throw fail(
        `IPv${family} address setting "${s}" is not "autodetect", "none" or an IPv${family} address`,
      );
    }
    const found = chooseAddress(
      { kind: "can-reach", destination: s },
      family,
      parseIpAddrJson(await io.ipAddr()),
      formatIP(family, ip.value),
    );
    return found;
  }
  const method = parseAutodetectMethod(methodText ?? "");
  const ifaces = parseIpAddrJson(await io.ipAddr());
  let src: string | undefined;
  if (method.kind === "can-reach") {
    try {
      src = parseRouteGetSource(await io.routeGet(family, method.destination));
    } catch (err) {
      throw new CalicoError(
        AUTODETECT_ERROR,
        `Cannot autodetect an IPv${family} address with can-reach=${method.destination}: no route (${String(err)})`,
        { cause: err },
      );
    }
  }
  return chooseAddress(method, family, ifaces, src);
}
