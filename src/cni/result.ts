/**
 * Spec versions and result rendering. A plugin answers in the `cniVersion` its configuration
 * names: 1.x results have `interfaces/ips/routes/dns` (1.1.0 adds an interface `mtu`), 0.3.x and
 * 0.4.0 add `version` to each IP, 0.1.0/0.2.0 have `ip4`/`ip6` objects. `prevResult` (a chained
 * plugin's input) may arrive in any of these shapes and is read back into the neutral form.
 */
import {
  CniCode,
  CniError,
  SUPPORTED_VERSIONS,
  type CniResult,
  type ResultIP,
  type ResultRoute,
} from "./types.js";

/** `[major, minor, patch]` of a spec version, or undefined when it is not `x.y.z`. */
export function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Negative, zero or positive as a is older than, equal to or newer than b. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a) ?? [0, 0, 0];
  const y = parseVersion(b) ?? [0, 0, 0];
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

export const atLeast = (v: string, min: string): boolean => compareVersions(v, min) >= 0;

/** Throw the spec's code 1 unless `v` is one we speak. */
export function requireSupportedVersion(v: string): void {
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v)) {
    throw new CniError(
      CniCode.INCOMPATIBLE_VERSION,
      `Incompatible CNI version ${JSON.stringify(v)}: this plugin supports ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
}

const familyOf = (address: string): "4" | "6" => (address.includes(":") ? "6" : "4");

/** The result JSON for `cniVersion`. */
export function renderResult(r: CniResult, cniVersion: string): Record<string, unknown> {
  const dns = Object.keys(r.dns).length > 0 ? { dns: r.dns } : {};
  if (!atLeast(cniVersion, "0.3.0")) {
    // 0.1.0 / 0.2.0: one address per family, routes per family.
    const out: Record<string, unknown> = { cniVersion };
    for (const fam of ["4", "6"] as const) {
      const ip = r.ips.find((i) => familyOf(i.address) === fam);
      if (ip === undefined) continue;
      const routes = r.routes.filter((rt) => familyOf(rt.dst) === fam);
      out[`ip${fam}`] = {
        ip: ip.address,
        ...(ip.gateway !== undefined ? { gateway: ip.gateway } : {}),
        ...(routes.length > 0 ? { routes } : {}),
      };
    }
    return { ...out, ...dns };
  }
  const withMtu = atLeast(cniVersion, "1.1.0");
  const interfaces = r.interfaces.map((i) => {
    const { mtu, ...rest } = i;
    return withMtu && mtu !== undefined ? { ...rest, mtu } : rest;
  });
  const versioned = !atLeast(cniVersion, "1.0.0");
  const ips = r.ips.map((i) => (versioned ? { version: familyOf(i.address), ...i } : i));
  return {
    cniVersion,
    ...(interfaces.length > 0 ? { interfaces } : {}),
    ...(ips.length > 0 ? { ips } : {}),
    ...(r.routes.length > 0 ? { routes: r.routes } : {}),
    ...dns,
  };
}

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

function badPrev(why: string): CniError {
  return new CniError(CniCode.DECODING_FAILURE, `Invalid prevResult in the network configuration: ${why}`);
}

function readRoutes(v: unknown, where: string): ResultRoute[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw badPrev(`${where} must be a list`);
  return v.map((x, i) => {
    const o = obj(x);
    const dst = str(o?.dst);
    if (dst === undefined) throw badPrev(`${where}[${i}].dst must be a string`);
    const gw = str(o?.gw);
    return gw !== undefined ? { dst, gw } : { dst };
  });
}

/** Read a result of any supported version (a chained plugin's `prevResult`). */
export function parseResult(v: unknown): CniResult {
  const o = obj(v);
  if (o === undefined) throw badPrev("not an object");
  const out: CniResult = { interfaces: [], ips: [], routes: [], dns: obj(o.dns) ?? {} };
  if (o.ip4 !== undefined || o.ip6 !== undefined) {
    for (const fam of ["ip4", "ip6"] as const) {
      const f = obj(o[fam]);
      if (f === undefined) continue;
      const ip = str(f.ip);
      if (ip === undefined) throw badPrev(`${fam}.ip must be a string`);
      const gateway = str(f.gateway);
      out.ips.push(gateway !== undefined ? { address: ip, gateway } : { address: ip });
      out.routes.push(...readRoutes(f.routes, `${fam}.routes`));
    }
    return out;
  }
  if (o.interfaces !== undefined) {
    if (!Array.isArray(o.interfaces)) throw badPrev("interfaces must be a list");
    o.interfaces.forEach((x, i) => {
      const f = obj(x);
      const name = str(f?.name);
      if (f === undefined || name === undefined) throw badPrev(`interfaces[${i}].name must be a string`);
      const mac = str(f.mac);
      const sandbox = str(f.sandbox);
      out.interfaces.push({
        name,
        ...(mac !== undefined ? { mac } : {}),
        ...(typeof f.mtu === "number" ? { mtu: f.mtu } : {}),
        ...(sandbox !== undefined ? { sandbox } : {}),
      });
    });
  }
  if (o.ips !== undefined) {
    if (!Array.isArray(o.ips)) throw badPrev("ips must be a list");
    o.ips.forEach((x, i) => {
      const f = obj(x);
      const address = str(f?.address);
      if (f === undefined || address === undefined) throw badPrev(`ips[${i}].address must be a string`);
      const ip: ResultIP = { address };
      const gateway = str(f.gateway);
      if (gateway !== undefined) ip.gateway = gateway;
      if (typeof f.interface === "number") ip.interface = f.interface;
      out.ips.push(ip);
    });
  }
  out.routes = readRoutes(o.routes, "routes");
  return out;
}

/** `prev` followed by `mine`, with `mine`'s interface indexes shifted past `prev`'s interfaces. */
export function appendResult(prev: CniResult, mine: CniResult): CniResult {
  const shift = prev.interfaces.length;
  return {
    interfaces: [...prev.interfaces, ...mine.interfaces],
    ips: [
      ...prev.ips,
      ...mine.ips.map((i) => (i.interface !== undefined ? { ...i, interface: i.interface + shift } : i)),
    ],
    routes: [...prev.routes, ...mine.routes],
    dns: { ...prev.dns, ...mine.dns },
  };
}
