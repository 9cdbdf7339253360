/**
 * The agent's effective configuration (reference/calico.md §1.4 "Config precedence", §2.17):
 * per parameter, the first that sets it of
 *
 *   env `FELIX_<PARAM>` (name case-insensitive)  >  FelixConfiguration `node.<nodename>`
 *   >  FelixConfiguration `default`  >  the built-in default.
 *
 * Resolution is field by field: `node.<name>` overriding one field leaves the others to
 * `default`. A value that does not parse is ignored with a warning (the next source down
 * applies), as Felix does. Only the parameters this agent uses are resolved here.
 */
import { parseDuration } from "../api/duration.js";
import { parseCIDR } from "../api/net.js";
import { RESOURCE_PREFIX } from "../datastore/keys.js";
import { DEFAULT_ROUTE_PROTOCOL } from "../dataplane/routes.js";
import type { DataplaneConfig, FailsafePort } from "../dataplane/types.js";
import { parseLogLevel, type LogLevel, type Logger } from "./log.js";

/** The route protocol number on routes we write, unless `deviceRouteProtocol` says otherwise
 * (the dataplane's own number, not Felix's 80, so the two never mistake each other's routes). */
export { DEFAULT_ROUTE_PROTOCOL };

const fp = (protocol: "tcp" | "udp", port: number): FailsafePort => ({ protocol, port });
/** reference/calico.md §2.12. */
export const DEFAULT_FAILSAFE_INBOUND: readonly FailsafePort[] = [
  fp("tcp", 22),
  fp("udp", 68),
  fp("tcp", 179),
  fp("tcp", 2379),
  fp("tcp", 2380),
  fp("tcp", 5473),
  fp("tcp", 6443),
  fp("tcp", 6666),
  fp("tcp", 6667),
];
export const DEFAULT_FAILSAFE_OUTBOUND: readonly FailsafePort[] = [
  fp("udp", 53),
  fp("udp", 67),
  fp("tcp", 179),
  fp("tcp", 2379),
  fp("tcp", 2380),
  fp("tcp", 5473),
  fp("tcp", 6443),
  fp("tcp", 6666),
  fp("tcp", 6667),
];

export interface AgentConfig {
  dataplane: DataplaneConfig;
  logSeverityScreen: LogLevel;
  /** 0 disables the periodic route resync. */
  routeRefreshIntervalMs: number;
  /** nftablesRefreshInterval (else iptablesRefreshInterval); 0 disables. */
  tablesRefreshIntervalMs: number;
  healthEnabled: boolean;
  healthHost: string;
  healthPort: number;
  prometheusMetricsEnabled: boolean;
  prometheusMetricsHost: string;
  prometheusMetricsPort: number;
}

export type ConfigSource = "env" | "node" | "default" | "builtin";

type Parsed<T> = { ok: true; value: T } | { ok: false; why: string };
type Parser<T> = (raw: unknown, fromEnv: boolean) => Parsed<T>;

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(why: string): Parsed<T> => ({ ok: false, why });

const str: Parser<string> = (raw) => (typeof raw === "string" ? ok(raw) : bad("expected a string"));

const bool: Parser<boolean> = (raw) => {
  if (typeof raw === "boolean") return ok(raw);
  if (typeof raw === "string") {
    const t = raw.trim().toLowerCase();
    if (["true", "1", "yes", "y", "on"].includes(t)) return ok(true);
    if (["false", "0", "no", "n", "off"].includes(t)) return ok(false);
  }
  return bad("expected true or false");
};

const port: Parser<number> = (raw) => {
  const n =
    typeof raw === "number" ? raw : typeof raw === "string" && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? ok(n) : bad("expected a port number 0-65535");
};

const routeProto: Parser<number> = (raw) => {
  const n =
    typeof raw === "number" ? raw : typeof raw === "string" && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 255 ? ok(n) : bad("expected a route protocol number 1-255");
};

/** Go duration (`90s`, `1m30s`); from env also plain seconds (`90`, `2.5`), as Felix reads them. */
const duration: Parser<number> = (raw, fromEnv) => {
  if (typeof raw === "number" && fromEnv) return ok(raw * 1000);
  if (typeof raw !== "string") return bad('expected a duration such as "90s"');
  const t = raw.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return ok(Number(t) * 1000);
  const ms = parseDuration(t);
  return ms !== undefined && ms >= 0 ? ok(ms) : bad('expected a duration such as "90s"');
};

const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw) => {
    if (typeof raw !== "string") return bad(`expected one of ${values.join(", ")}`);
    const hit = values.find((v) => v.toLowerCase() === raw.trim().toLowerCase());
    return hit !== undefined ? ok(hit) : bad(`expected one of ${values.join(", ")}`);
  };

const logLevel: Parser<LogLevel> = (raw) => {
  const l = typeof raw === "string" ? parseLogLevel(raw) : undefined;
  return l !== undefined ? ok(l) : bad("expected Trace, Debug, Info, Warning, Error or Fatal");
};

function failsafeItem(item: unknown): Parsed<FailsafePort | undefined> {
  if (typeof item !== "object" || item === null) return bad("expected {protocol, port, net}");
  const { protocol, port: p, net } = item as { protocol?: unknown; port?: unknown; net?: unknown };
  const proto = typeof protocol === "string" ? protocol.toLowerCase() : protocol === undefined ? "tcp" : "";
  const n = port(p, false);
  if (!n.ok) return n;
  if (net !== undefined && (typeof net !== "string" || parseCIDR(net) === undefined)) {
    return bad(`net ${JSON.stringify(net)} is not a CIDR`);
  }
  // SCTP failsafe ports are not programmed (DataplaneConfig has tcp/udp only); skip them.
  if (proto === "sctp") return ok(undefined);
  if (proto !== "tcp" && proto !== "udp")
    return bad(`protocol ${JSON.stringify(protocol)} is not TCP, UDP or SCTP`);
  return ok({ protocol: proto, port: n.value, ...(typeof net === "string" ? { net } : {}) });
}

/**
 * A failsafe list: the API's `[{protocol, port, net}]`, or Felix's env form
 * `tcp:22,udp:68,tcp:198.18.0.0/16:2379,tcp:[fd00::/64]:22`; `none` or `[]` disables.
 */
const failsafe: Parser<FailsafePort[]> = (raw) => {
  let items: unknown[];
  if (Array.isArray(raw)) items = raw;
  else if (typeof raw === "string") {
    const t = raw.trim();
    if (t === "" || t.toLowerCase() === "none" || t === "[]") return ok([]);
    items = [];
    for (const part of t.split(",")) {
      const m = /^\s*(?:([a-zA-Z]+):)?(?:\[([^\]]+)\]:|([0-9.]+\/\d+):)?(\d+)\s*$/.exec(part);
      if (m === null) return bad(`"${part}" is not protocol:port or protocol:net:port`);
      const net = m[2] ?? m[3];
      items.push({ protocol: m[1] ?? "tcp", port: Number(m[4]), ...(net !== undefined ? { net } : {}) });
    }
  } else return bad("expected a list of {protocol, port, net}");
  const out: FailsafePort[] = [];
  for (const item of items) {
    const r = failsafeItem(item);
    if (!r.ok) return r;
    if (r.value !== undefined) out.push(r.value);
  }
  return ok(out);
};

const prefixes: Parser<string[]> = (raw) => {
  if (typeof raw !== "string") return bad("expected a comma-separated list of prefixes");
  const list = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return list.length > 0 && list.every((s) => /^[a-zA-Z0-9_.-]{1,12}$/.test(s))
    ? ok(list)
    : bad("expected a comma-separated list of interface name prefixes");
};

interface ParamDef<T> {
  parse: Parser<T>;
  builtin: T;
}
const param = <T>(parse: Parser<T>, builtin: T): ParamDef<T> => ({ parse, builtin });

/** The FelixConfiguration parameters this agent reads, with Felix's built-in defaults (§2.17). */
export const PARAMS = {
  interfacePrefix: param(prefixes, ["cali"]),
  failsafeInboundHostPorts: param(failsafe, [...DEFAULT_FAILSAFE_INBOUND]),
  failsafeOutboundHostPorts: param(failsafe, [...DEFAULT_FAILSAFE_OUTBOUND]),
  defaultEndpointToHostAction: param(oneOf("Drop", "Accept", "Return"), "Drop" as const),
  nftablesFilterDenyAction: param(oneOf("Drop", "Reject"), "Drop" as const),
  logPrefix: param(str, "calico-packet"),
  logSeverityScreen: param(logLevel, "info"),
  routeRefreshInterval: param(duration, 90_000),
  iptablesRefreshInterval: param(duration, 180_000),
  nftablesRefreshInterval: param(duration, 180_000),
  deviceRouteProtocol: param(routeProto, DEFAULT_ROUTE_PROTOCOL),
  ipv6Support: param(bool, true),
  healthEnabled: param(bool, false),
  healthHost: param(str, "localhost"),
  healthPort: param(port, 9099),
  prometheusMetricsEnabled: param(bool, false),
  prometheusMetricsHost: param(str, ""),
  prometheusMetricsPort: param(port, 9091),
} as const;
export type ParamName = keyof typeof PARAMS;
type ParamValue<N extends ParamName> = (typeof PARAMS)[N]["builtin"];

export interface ConfigInputs {
  /** `spec` of FelixConfiguration `default`, if it exists. */
  defaultSpec?: Record<string, unknown> | undefined;
  /** `spec` of FelixConfiguration `node.<nodename>`, if it exists. */
  nodeSpec?: Record<string, unknown> | undefined;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
}

export interface ResolvedConfig {
  config: AgentConfig;
  /** Where each parameter's value came from. */
  sources: Record<ParamName, ConfigSource>;
}

/** Env values by lower-cased parameter name (FELIX_ stripped). */
function felixEnv(env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && k.toUpperCase().startsWith("FELIX_")) out.set(k.slice(6).toLowerCase(), v);
  }
  return out;
}

export function resolveConfig(inputs: ConfigInputs): ResolvedConfig {
  const env = felixEnv(inputs.env ?? {});
  const sources = {} as Record<ParamName, ConfigSource>;
  const values = {} as { [N in ParamName]: ParamValue<N> };
  for (const name of Object.keys(PARAMS) as ParamName[]) {
    const def = PARAMS[name] as ParamDef<unknown>;
    const candidates: [ConfigSource, unknown][] = [
      ["env", env.get(name.toLowerCase())],
      ["node", inputs.nodeSpec?.[name]],
      ["default", inputs.defaultSpec?.[name]],
    ];
    let chosen: { source: ConfigSource; value: unknown } = { source: "builtin", value: def.builtin };
    for (const [source, raw] of candidates) {
      if (raw === undefined || raw === null) continue;
      const r = def.parse(raw, source === "env");
      if (r.ok) {
        chosen = { source, value: r.value };
        break;
      }
      inputs.log?.warn("Ignoring invalid configuration value", {
        param: name,
        source: source === "env" ? `FELIX_${name.toUpperCase()}` : `FelixConfiguration ${source}`,
        value: raw,
        why: r.why,
      });
    }
    sources[name] = chosen.source;
    (values as Record<string, unknown>)[name] = chosen.value;
  }
  const tablesSource = sources.nftablesRefreshInterval;
  const tablesMs =
    tablesSource === "builtin" && sources.iptablesRefreshInterval !== "builtin"
      ? values.iptablesRefreshInterval
      : values.nftablesRefreshInterval;
  return {
    sources,
    config: {
      dataplane: {
        interfacePrefixes: values.interfacePrefix,
        failsafeInboundHostPorts: values.failsafeInboundHostPorts,
        failsafeOutboundHostPorts: values.failsafeOutboundHostPorts,
        defaultEndpointToHostAction: values.defaultEndpointToHostAction,
        logPrefix: values.logPrefix,
        routeProtocol: values.deviceRouteProtocol,
        ipv6: values.ipv6Support,
        denyAction: values.nftablesFilterDenyAction,
      },
      logSeverityScreen: values.logSeverityScreen,
      routeRefreshIntervalMs: values.routeRefreshInterval,
      tablesRefreshIntervalMs: tablesMs,
      healthEnabled: values.healthEnabled,
      healthHost: values.healthHost,
      healthPort: values.healthPort,
      prometheusMetricsEnabled: values.prometheusMetricsEnabled,
      prometheusMetricsHost: values.prometheusMetricsHost,
      prometheusMetricsPort: values.prometheusMetricsPort,
    },
  };
}

export const FELIX_CONFIG_PREFIX = `${RESOURCE_PREFIX}felixconfigurations/`;

const specOf = (value: unknown): Record<string, unknown> | undefined => {
  if (typeof value !== "object" || value === null) return undefined;
  const spec = (value as { spec?: unknown }).spec;
  return typeof spec === "object" && spec !== null ? (spec as Record<string, unknown>) : {};
};

/** What changed between two configs, by the part of the agent that must react. */
export interface ConfigDiff {
  dataplane: boolean;
  log: boolean;
  timers: boolean;
  health: boolean;
  metrics: boolean;
}

export function diffConfig(a: AgentConfig, b: AgentConfig): ConfigDiff {
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  return {
    dataplane: !same(a.dataplane, b.dataplane),
    log: a.logSeverityScreen !== b.logSeverityScreen,
    timers:
      a.routeRefreshIntervalMs !== b.routeRefreshIntervalMs ||
      a.tablesRefreshIntervalMs !== b.tablesRefreshIntervalMs,
    health: !same(
      [a.healthEnabled, a.healthHost, a.healthPort],
      [b.healthEnabled, b.healthHost, b.healthPort],
    ),
    metrics: !same(
      [a.prometheusMetricsEnabled, a.prometheusMetricsHost, a.prometheusMetricsPort],
      [b.prometheusMetricsEnabled, b.prometheusMetricsHost, b.prometheusMetricsPort],
    ),
  };
}

/**
 * Follows FelixConfiguration `default` and `node.<nodename>` in the syncer's stream and
 * re-resolves when either changes; `onChange` gets the new config and what differs.
 */
export class FelixConfigTracker {
  private defaultSpec: Record<string, unknown> | undefined;
  private nodeSpec: Record<string, unknown> | undefined;
  private current: ResolvedConfig;
  private readonly defaultKey = `${FELIX_CONFIG_PREFIX}default`;
  private readonly nodeKey: string;

  constructor(
    private readonly opts: {
      nodename: string;
      env: NodeJS.ProcessEnv;
      log?: Logger;
      initial?: {
        defaultSpec?: Record<string, unknown> | undefined;
        nodeSpec?: Record<string, unknown> | undefined;
      };
      onChange?: (config: AgentConfig, diff: ConfigDiff, previous: AgentConfig) => void;
    },
  ) {
    this.nodeKey = `${FELIX_CONFIG_PREFIX}node.${opts.nodename}`;
    this.defaultSpec = opts.initial?.defaultSpec;
    this.nodeSpec = opts.initial?.nodeSpec;
    this.current = this.resolve();
  }

  get config(): AgentConfig {
    return this.current.config;
  }
  get sources(): Record<ParamName, ConfigSource> {
    return this.current.sources;
  }

  private resolve(): ResolvedConfig {
    return resolveConfig({
      defaultSpec: this.defaultSpec,
      nodeSpec: this.nodeSpec,
      env: this.opts.env,
      ...(this.opts.log !== undefined ? { log: this.opts.log } : {}),
    });
  }

  /** Feed syncer updates; returns true when the effective config changed. */
  onUpdates(updates: readonly { key: string; value: unknown }[]): boolean {
    let touched = false;
    for (const u of updates) {
      if (u.key === this.defaultKey) {
        this.defaultSpec = specOf(u.value);
        touched = true;
      } else if (u.key === this.nodeKey) {
        this.nodeSpec = specOf(u.value);
        touched = true;
      }
    }
    if (!touched) return false;
    const next = this.resolve();
    const diff = diffConfig(this.current.config, next.config);
    if (!Object.values(diff).some(Boolean)) return false;
    const previous = this.current.config;
    this.current = next;
    this.opts.onChange?.(next.config, diff, previous);
    return true;
  }
}
