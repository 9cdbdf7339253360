/**
 * FelixConfiguration (cluster; `default` plus per-node `node.<name>` overrides): the dataplane
 * agent's settings (reference/calico.md §2.17). Every field Calico's API has is known here, so
 * a typo is an error; each is checked for its type, enum, range or format. Field names and
 * constraints follow Felix's generated parameter reference (felix/docs/config-params.md) and
 * libcalico's `validateFelixConfigSpec`. Nothing is defaulted on write: an unset field means
 * "Felix's default", which Felix itself applies.
 */
import type { Resource } from "../resource.js";
import {
  checkBool,
  checkKnownFields,
  checkNumberValue,
  checkStringValue,
  isDNS1123Label,
  isRecord,
  join,
  type Issues,
} from "../check.js";
import { checkDuration, DURATION_HINT, parseDuration } from "../duration.js";
import { checkSelector } from "../selector-field.js";
import type { KindDef } from "./kind.js";
import {
  checkIPField,
  checkNetList,
  checkNetText,
  cloneResource,
  forEachObject,
  regexpProblem,
  singletonNameProblem,
  specOf,
} from "./infra-spec.js";

/** One failsafe port: traffic Felix always allows to/from host endpoints. */
export interface ProtoPort {
  /** TCP (default), UDP or SCTP. */
  protocol?: string;
  port: number;
  /** Only this remote CIDR (any address when unset). */
  net?: string;
}

export interface RouteTableRange {
  min: number;
  max: number;
}

/** The most used fields, typed; every other field Calico knows is accepted as `unknown`. */
export interface FelixConfigurationSpec {
  bpfEnabled?: boolean;
  nftablesMode?: "Auto" | "Enabled" | "Disabled";
  iptablesBackend?: "Auto" | "Legacy" | "NFT";
  chainInsertMode?: "Insert" | "Append";
  ipipEnabled?: boolean;
  vxlanEnabled?: boolean;
  ipipMTU?: number;
  vxlanMTU?: number;
  vxlanMTUV6?: number;
  vxlanPort?: number;
  vxlanVNI?: number;
  wireguardEnabled?: boolean;
  wireguardEnabledV6?: boolean;
  wireguardMTU?: number;
  wireguardListeningPort?: number;
  interfacePrefix?: string;
  interfaceExclude?: string;
  mtuIfacePattern?: string;
  natOutgoingAddress?: string;
  natPortRange?: number | string;
  routeSource?: "CalicoIPAM" | "WorkloadIPs";
  routeTableRanges?: RouteTableRange[];
  deviceRouteProtocol?: number;
  removeExternalRoutes?: boolean;
  ipForwarding?: "Enabled" | "Disabled";
  defaultEndpointToHostAction?: "Drop" | "Accept" | "Return";
  logSeverityScreen?: string;
  logPrefix?: string;
  failsafeInboundHostPorts?: ProtoPort[];
  failsafeOutboundHostPorts?: ProtoPort[];
  kubeNodePortRanges?: (number | string)[];
  routeRefreshInterval?: string;
  iptablesRefreshInterval?: string;
  ipsetsRefreshInterval?: string;
  nftablesRefreshInterval?: string;
  reportingInterval?: string;
  healthEnabled?: boolean;
  healthPort?: number;
  prometheusMetricsEnabled?: boolean;
  prometheusMetricsPort?: number;
  [field: string]: unknown;
}

export type FelixConfiguration = Resource<"FelixConfiguration", FelixConfigurationSpec>;

// ---- field table ----

type Field =
  | { t: "bool" }
  | { t: "duration" }
  | { t: "string"; re?: RegExp; hint?: string }
  | { t: "int"; min: number; max: number }
  | { t: "enum"; values: readonly string[] }
  | { t: "ip"; family: 4 | 6 }
  | { t: "regexp" }
  | { t: "cidrs"; family?: 4 }
  | { t: "protoPorts" }
  | { t: "portRange" }
  | { t: "portRanges" }
  | { t: "routeTableRange" }
  | { t: "routeTableRanges" }
  | { t: "healthTimeouts" }
  | { t: "markMask" }
  | { t: "ifaceList" }
  | { t: "stringMap"; keyRe: RegExp; keyHint: string }
  | { t: "conntrackTimeouts" }
  | { t: "dscp" }
  | { t: "selector" };

const BOOL: Field = { t: "bool" };
const DUR: Field = { t: "duration" };
const STR: Field = { t: "string" };
const I64 = 9007199254740991; // Number.MAX_SAFE_INTEGER stands in for Go's int64 max.
const int = (min: number, max: number): Field => ({ t: "int", min, max });
const oneOf = (...values: string[]): Field => ({ t: "enum", values });
const PORT = int(0, 65535);
const PORT1 = int(1, 65535);
const COUNT = int(0, I64);
const MTU = int(0, 65535);
const PRIORITY = int(1, 2147483646);
const ENABLED = oneOf("Enabled", "Disabled");
const ACCEPT_RETURN = oneOf("Accept", "Return");
const DROP_REJECT = oneOf("Drop", "Reject");
const LOG_LEVEL = oneOf("Trace", "Debug", "Info", "Warning", "Error", "Fatal");
const HOST: Field = {
  t: "string",
  re: /^[a-zA-Z0-9:._+-]{1,64}$/,
  hint: "a host name or address (1-64 of a-z, A-Z, 0-9, ':', '.', '_', '+', '-')",
};
const IFACE_RE = /^[a-zA-Z0-9:._+-]{1,15}$/;
const IFACE_HINT = "an interface name (1-15 of a-z, A-Z, 0-9, ':', '.', '_', '+', '-'; '+' is a wildcard)";
const IFACE: Field = { t: "string", re: IFACE_RE, hint: IFACE_HINT };
const KV_BOOL: Field = {
  t: "string",
  re: /^([a-zA-Z0-9-_]+=(true|false|),)*([a-zA-Z0-9-_]+=(true|false|))?$/,
  hint: 'a comma-separated list of Feature=true|false| pairs, e.g. "SNATFullyRandom=true,RestoreSupportsLock="',
};
const KV_ANY: Field = {
  t: "string",
  re: /^([a-zA-Z0-9-_]+=([^=]+),)*([a-zA-Z0-9-_]+=([^=]+))?$/,
  hint: 'a comma-separated list of Gate=value pairs, e.g. "BPFConnectTimeLoadBalancingWorkaround=enabled"',
};

export const FELIX_FIELDS: Readonly<Record<string, Field>> = {
  // process
  featureDetectOverride: KV_BOOL,
  featureGates: KV_ANY,
  goGCThreshold: int(-1, I64),
  goMaxProcs: int(-1, I64),
  goMemoryLimitMB: int(-1, I64),
  healthEnabled: BOOL,
  healthHost: HOST,
  healthPort: PORT,
  healthTimeoutOverrides: { t: "healthTimeouts" },
  logActionRateLimit: {
    t: "string",
    re: /^[1-9]\d{0,3}\/(?:second|minute|hour|day)$/,
    hint: 'a rate such as "10/second" (1-9999 per second, minute, hour or day)',
  },
  logActionRateLimitBurst: COUNT,
  logDebugFilenameRegex: { t: "regexp" },
  logFilePath: STR,
  logPrefix: {
    t: "string",
    re: /^[a-zA-Z0-9%: /_-]*$/,
    hint: "letters, digits, '%', ':', ' ', '/', '_' and '-'",
  },
  logSeverityFile: LOG_LEVEL,
  logSeverityScreen: LOG_LEVEL,
  logSeveritySys: LOG_LEVEL,
  prometheusGoMetricsEnabled: BOOL,
  prometheusMetricsCAFile: STR,
  prometheusMetricsCertFile: STR,
  prometheusMetricsClientAuth: oneOf(
    "NoClientCert",
    "RequireAndVerifyClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
  ),
  prometheusMetricsEnabled: BOOL,
  prometheusMetricsHost: HOST,
  prometheusMetricsKeyFile: STR,
  prometheusMetricsPort: PORT,
  prometheusProcessMetricsEnabled: BOOL,
  prometheusWireGuardMetricsEnabled: BOOL,
  usageReportingEnabled: BOOL,
  usageReportingInitialDelay: DUR,
  usageReportingInterval: DUR,
  // dataplane: common
  allowIPIPPacketsFromWorkloads: BOOL,
  allowVXLANPacketsFromWorkloads: BOOL,
  cgroupV2Path: STR,
  chainInsertMode: oneOf("Insert", "Append"),
  dataplaneDriver: STR,
  dataplaneWatchdogTimeout: DUR,
  defaultEndpointToHostAction: oneOf("Drop", "Accept", "Return"),
  deviceRouteProtocol: int(0, 255),
  deviceRouteSourceAddress: { t: "ip", family: 4 },
  deviceRouteSourceAddressIPv6: { t: "ip", family: 6 },
  disableConntrackInvalidCheck: BOOL,
  endpointStatusPathPrefix: STR,
  externalNodesList: { t: "cidrs", family: 4 },
  failsafeInboundHostPorts: { t: "protoPorts" },
  failsafeOutboundHostPorts: { t: "protoPorts" },
  floatingIPs: ENABLED,
  ipForwarding: ENABLED,
  ipv4ElevatedRoutePriority: PRIORITY,
  ipv4NormalRoutePriority: PRIORITY,
  ipv6ElevatedRoutePriority: PRIORITY,
  ipv6NormalRoutePriority: PRIORITY,
  interfaceExclude: STR,
  interfacePrefix: {
    t: "string",
    re: /^[a-zA-Z0-9_-]{1,15}(,[a-zA-Z0-9_-]{1,15})*$/,
    hint: 'a comma-separated list of interface name prefixes, e.g. "cali"',
  },
  interfaceRefreshInterval: DUR,
  ipv6Support: BOOL,
  istioAmbientMode: ENABLED,
  istioDSCPMark: { t: "dscp" },
  liveMigrationRouteConvergenceTime: DUR,
  mtuIfacePattern: { t: "regexp" },
  natOutgoingAddress: { t: "ip", family: 4 },
  natOutgoingExclusions: oneOf("IPPoolsOnly", "IPPoolsAndHostIPs"),
  natPortRange: { t: "portRange" },
  nftablesMode: oneOf("Auto", "Enabled", "Disabled"),
  netlinkTimeout: DUR,
  nodeSelector: { t: "selector" },
  policySyncPathPrefix: STR,
  programClusterRoutes: ENABLED,
  removeExternalRoutes: BOOL,
  requireMTUFile: BOOL,
  routeRefreshInterval: DUR,
  routeSource: oneOf("CalicoIPAM", "WorkloadIPs"),
  routeSyncDisabled: BOOL,
  routeTableRange: { t: "routeTableRange" },
  routeTableRanges: { t: "routeTableRanges" },
  serviceLoopPrevention: oneOf("Drop", "Reject", "Disabled"),
  sidecarAccelerationEnabled: BOOL,
  useInternalDataplaneDriver: BOOL,
  workloadSourceSpoofing: oneOf("Disabled", "Any"),
  // dataplane: iptables
  ipsetsRefreshInterval: DUR,
  iptablesBackend: oneOf("Auto", "Legacy", "NFT"),
  iptablesFilterAllowAction: ACCEPT_RETURN,
  iptablesFilterDenyAction: DROP_REJECT,
  iptablesLockFilePath: STR,
  iptablesLockProbeInterval: DUR,
  iptablesLockTimeout: DUR,
  iptablesMangleAllowAction: ACCEPT_RETURN,
  iptablesMarkMask: { t: "markMask" },
  iptablesNATOutgoingInterfaceFilter: IFACE,
  iptablesPostWriteCheckInterval: DUR,
  iptablesRefreshInterval: DUR,
  kubeNodePortRanges: { t: "portRanges" },
  maxIpsetSize: COUNT,
  // dataplane: nftables
  nftablesFilterAllowAction: ACCEPT_RETURN,
  nftablesFilterDenyAction: DROP_REJECT,
  nftablesMangleAllowAction: ACCEPT_RETURN,
  nftablesMarkMask: { t: "markMask" },
  nftablesRefreshInterval: DUR,
  // dataplane: eBPF
  bpfAttachType: oneOf("TC", "TCX", "Netkit"),
  bpfCTLBLogFilter: oneOf("all"),
  bpfConnectTimeLoadBalancing: oneOf("TCP", "Enabled", "Disabled"),
  bpfConnectTimeLoadBalancingEnabled: BOOL,
  bpfConntrackMode: oneOf("Auto", "BPFProgram", "Userspace"),
  bpfConntrackLogLevel: oneOf("Off", "Debug"),
  bpfConntrackTimeouts: { t: "conntrackTimeouts" },
  bpfDSROptoutCIDRs: { t: "cidrs" },
  bpfDataIfacePattern: { t: "regexp" },
  bpfDisableGROForIfaces: { t: "regexp" },
  bpfDisableUnprivileged: BOOL,
  bpfEnabled: BOOL,
  bpfEnforceRPF: oneOf("Disabled", "Strict", "Loose"),
  bpfExcludeCIDRsFromNAT: { t: "cidrs" },
  bpfExportBufferSizeMB: COUNT,
  bpfExtToServiceConnmark: int(0, 0xffffffff),
  bpfExternalServiceMode: oneOf("Tunnel", "DSR"),
  bpfForceTrackPacketsFromIfaces: { t: "ifaceList" },
  bpfHostConntrackBypass: BOOL,
  bpfHostNetworkedNATWithoutCTLB: ENABLED,
  bpfJITHardening: oneOf("Auto", "Strict"),
  bpfKubeProxyEndpointSlicesEnabled: BOOL,
  bpfKubeProxyHealthzPort: PORT,
  bpfKubeProxyIptablesCleanupEnabled: BOOL,
  bpfKubeProxyMinSyncPeriod: DUR,
  bpfL3IfacePattern: { t: "regexp" },
  bpfLogFilters: {
    t: "stringMap",
    keyRe: /^[a-zA-Z0-9_.-]{1,15}$/,
    keyHint: 'an interface name, or "all", "weps" or "heps"',
  },
  bpfLogLevel: oneOf("Off", "Info", "Debug"),
  bpfMaglevMaxEndpointsPerService: int(1, 3000),
  bpfMaglevMaxServices: int(1, 3000),
  bpfMapSizeConntrack: COUNT,
  bpfMapSizeConntrackCleanupQueue: COUNT,
  bpfMapSizeConntrackScaling: oneOf("Disabled", "DoubleIfFull"),
  bpfMapSizeIPSets: COUNT,
  bpfMapSizeIfState: COUNT,
  bpfMapSizeNATAffinity: COUNT,
  bpfMapSizeNATBackend: COUNT,
  bpfMapSizeNATFrontend: COUNT,
  bpfMapSizePerCpuConntrack: COUNT,
  bpfMapSizeRoute: COUNT,
  bpfPSNATPorts: { t: "portRange" },
  bpfPolicyDebugEnabled: BOOL,
  bpfProfiling: ENABLED,
  bpfRedirectToPeer: oneOf("Disabled", "Enabled", "L2Only"),
  // Windows, OpenStack, XDP
  windowsManageFirewallRules: ENABLED,
  endpointReportingDelay: DUR,
  endpointReportingEnabled: BOOL,
  metadataAddr: { t: "string", re: /^[a-zA-Z0-9_.-]+$/, hint: 'an IP address, host name or "none"' },
  metadataPort: PORT,
  openstackRegion: STR,
  reportingInterval: DUR,
  reportingTTL: DUR,
  genericXDPEnabled: BOOL,
  xdpEnabled: BOOL,
  xdpRefreshInterval: DUR,
  // overlays
  vxlanEnabled: BOOL,
  vxlanMTU: MTU,
  vxlanMTUV6: MTU,
  vxlanPort: PORT1,
  vxlanVNI: int(0, 0xffffff),
  ipipEnabled: BOOL,
  ipipMTU: MTU,
  wireguardEnabled: BOOL,
  wireguardEnabledV6: BOOL,
  wireguardHostEncryptionEnabled: BOOL,
  wireguardInterfaceName: IFACE,
  wireguardInterfaceNameV6: IFACE,
  wireguardKeepAlive: DUR,
  wireguardListeningPort: PORT1,
  wireguardListeningPortV6: PORT1,
  wireguardMTU: MTU,
  wireguardMTUV6: MTU,
  wireguardRoutingRulePriority: int(0, 32767),
  wireguardThreadingEnabled: BOOL,
  // flow logs, AWS, debug
  flowLogsCollectorDebugTrace: BOOL,
  flowLogsFlushInterval: DUR,
  flowLogsGoldmaneServer: STR,
  flowLogsLocalReporter: ENABLED,
  flowLogsPolicyEvaluationMode: oneOf("Continuous", "None"),
  awsSrcDstCheck: oneOf("DoNothing", "Enable", "Disable"),
  debugDisableLogDropping: BOOL,
  debugHost: HOST,
  debugMemoryProfilePath: STR,
  debugPort: PORT,
  debugSimulateCalcGraphHangAfter: DUR,
  debugSimulateDataplaneApplyDelay: DUR,
  debugSimulateDataplaneHangAfter: DUR,
};

export const FELIX_FIELD_NAMES: readonly string[] = Object.keys(FELIX_FIELDS);

// ---- checks by type ----

/** Felix parses its enums case-insensitively; the API documents the canonical spelling. */
function checkFelixEnum(v: unknown, path: string, values: readonly string[], issues: Issues): void {
  if (typeof v !== "string" || !values.some((a) => a.toLowerCase() === v.toLowerCase())) {
    issues.add(path, `must be one of ${values.join(", ")}`, v);
  }
}

const PORT_RANGE = /^(\d{1,5}):(\d{1,5})$/;

/** A port or `n:m` range as numorstring.Port holds it (a number, or a string). */
function checkPortRange(v: unknown, path: string, issues: Issues): void {
  const hint = 'a port from 0 to 65535 or a range "n:m" with n ≤ m';
  if (typeof v === "number") {
    checkNumberValue(v, path, issues, { integer: true, min: 0, max: 65535 });
    return;
  }
  if (typeof v !== "string") {
    issues.add(path, `must be ${hint}`, v);
    return;
  }
  if (/^\d{1,5}$/.test(v) && Number(v) <= 65535) return;
  const m = PORT_RANGE.exec(v);
  if (m === null || Number(m[1]) > 65535 || Number(m[2]) > 65535 || Number(m[1]) > Number(m[2])) {
    issues.add(path, `must be ${hint}`, v);
  }
}

function checkField(
  spec: Record<string, unknown>,
  name: string,
  field: Field,
  path: string,
  issues: Issues,
): void {
  const v = spec[name];
  if (v === undefined || v === null) return;
  const p = join(path, name);
  switch (field.t) {
    case "bool":
      checkBool(spec, name, path, issues);
      return;
    case "duration":
      checkDuration(spec, name, path, issues);
      return;
    case "string":
      checkStringValue(
        v,
        p,
        issues,
        field.re === undefined ? {} : { pattern: field.re, patternHint: field.hint ?? "" },
      );
      return;
    case "int":
      checkNumberValue(v, p, issues, { integer: true, min: field.min, max: field.max });
      return;
    case "enum":
      checkFelixEnum(v, p, field.values, issues);
      return;
    case "ip":
      checkIPField(spec, name, path, issues, field.family);
      return;
    case "regexp": {
      const s = checkStringValue(v, p, issues);
      const problem = s === undefined ? undefined : regexpProblem(s);
      if (problem !== undefined) issues.add(p, `must be a valid regular expression (${problem})`, v);
      return;
    }
    case "cidrs":
      checkNetList(spec, name, path, issues, field.family === undefined ? {} : { family: field.family });
      return;
    case "protoPorts":
      forEachObject(spec, name, path, issues, (pp, ip) => {
        checkKnownFields(pp, ["protocol", "port", "net"], ip, issues);
        // Felix defaults a missing protocol to tcp and reads it case-insensitively.
        if (pp.protocol !== undefined && pp.protocol !== "") {
          checkFelixEnum(pp.protocol, join(ip, "protocol"), ["TCP", "UDP", "SCTP"], issues);
        }
        if (pp.port === undefined) issues.add(join(ip, "port"), "is required");
        else checkNumberValue(pp.port, join(ip, "port"), issues, { integer: true, min: 1, max: 65535 });
        if (pp.net !== undefined && pp.net !== "") checkNetText(pp.net, join(ip, "net"), issues);
      });
      return;
    case "portRange":
      checkPortRange(v, p, issues);
      return;
    case "portRanges": {
      if (!Array.isArray(v)) {
        issues.add(p, 'must be a list of ports or "n:m" ranges', v);
        return;
      }
      // iptables multiport takes 15 ports, each range using two (validateFelixConfigSpec).
      if (v.length > 7) issues.add(p, `must have at most 7 ranges (has ${v.length})`);
      v.forEach((r: unknown, i) => checkPortRange(r, join(p, i), issues));
      return;
    }
    case "routeTableRange": {
      if (!isRecord(v)) {
        issues.add(p, "must be an object {min, max}", v);
        return;
      }
      checkKnownFields(v, ["min", "max"], p, issues);
      const min = checkNumberValue(v.min, join(p, "min"), issues, { integer: true, min: 1, max: 250 });
      const max = checkNumberValue(v.max, join(p, "max"), issues, { integer: true, min: 1, max: 250 });
      if (min !== undefined && max !== undefined && max < min)
        issues.add(p, "min must not be greater than max", v);
      return;
    }
    case "routeTableRanges": {
      let tables = 0;
      forEachObject(spec, name, path, issues, (r, ip) => {
        checkKnownFields(r, ["min", "max"], ip, issues);
        const min = checkNumberValue(r.min, join(ip, "min"), issues, {
          integer: true,
          min: 1,
          max: 0xffffffff,
        });
        const max = checkNumberValue(r.max, join(ip, "max"), issues, {
          integer: true,
          min: 1,
          max: 0xffffffff,
        });
        if (min !== undefined && max !== undefined) {
          if (max < min) issues.add(ip, "min must not be greater than max", r);
          else tables += max - min + 1;
        }
      });
      if (tables > 0xffff) issues.add(p, `targets too many tables (${tables}; at most 65535 in all)`, v);
      return;
    }
    case "healthTimeouts":
      forEachObject(spec, name, path, issues, (o, ip) => {
        checkKnownFields(o, ["name", "timeout"], ip, issues);
        checkStringValue(o.name, join(ip, "name"), issues, {
          pattern: /^[a-zA-Z0-9_ -]+$/,
          patternHint: "a component name (letters, digits, '_', ' ' and '-')",
        });
        if (o.timeout === undefined) issues.add(join(ip, "timeout"), "is required");
        else checkDuration(o, "timeout", ip, issues);
      });
      return;
    case "markMask": {
      const n = checkNumberValue(v, p, issues, { integer: true, min: 0, max: 0xffffffff });
      // Felix needs at least two mark bits (it exits otherwise).
      if (n !== undefined && n.toString(2).replace(/0/g, "").length < 2) {
        issues.add(p, "must have at least 2 bits set, e.g. 0xffff0000 (4294901760)", v);
      }
      return;
    }
    case "ifaceList": {
      if (!Array.isArray(v)) {
        issues.add(p, "must be a list of interface names", v);
        return;
      }
      v.forEach((s: unknown, i) =>
        checkStringValue(s, join(p, i), issues, { pattern: IFACE_RE, patternHint: IFACE_HINT }),
      );
      return;
    }
    case "stringMap": {
      if (!isRecord(v)) {
        issues.add(p, "must be a map of strings", v);
        return;
      }
      for (const [k, val] of Object.entries(v)) {
        const kp = `${p}[${JSON.stringify(k)}]`;
        if (!field.keyRe.test(k)) issues.add(kp, `key must be ${field.keyHint}`, k);
        if (typeof val !== "string") issues.add(kp, "must be a string", val);
      }
      return;
    }
    case "conntrackTimeouts": {
      if (!isRecord(v)) {
        issues.add(p, "must be an object of conntrack timers", v);
        return;
      }
      for (const [k, val] of Object.entries(v)) {
        if (typeof val !== "string" || (val !== "Auto" && parseDuration(val) === undefined)) {
          issues.add(join(p, k), `must be "Auto" or ${DURATION_HINT}`, val);
        }
      }
      return;
    }
    case "dscp": {
      if (typeof v === "number") checkNumberValue(v, p, issues, { integer: true, min: 0, max: 63 });
      else if (
        typeof v !== "string" ||
        !(/^(CS[0-7]|AF[1-4][1-3]|EF|DF|LE|VA)$/i.test(v) || (/^\d{1,2}$/.test(v) && Number(v) <= 63))
      ) {
        issues.add(p, "must be a DSCP value from 0 to 63 or a name such as EF, AF21 or CS1", v);
      }
      return;
    }
    case "selector":
      if (v !== "") checkSelector(spec, name, path, issues, { global: "forbidden" });
      return;
  }
}

export function validateFelixConfigurationSpec(
  spec: Record<string, unknown>,
  path: string,
  issues: Issues,
): void {
  checkKnownFields(spec, FELIX_FIELD_NAMES, path, issues);
  for (const [name, field] of Object.entries(FELIX_FIELDS)) checkField(spec, name, field, path, issues);

  if (spec.routeTableRange !== undefined && spec.routeTableRanges !== undefined) {
    issues.add(
      join(path, "routeTableRange"),
      "cannot be set together with routeTableRanges (its replacement)",
      spec.routeTableRange,
    );
  }
  const region = spec.openstackRegion;
  // The region becomes part of a namespace name, "openstack-region-<region>" (≤ 63 chars).
  if (typeof region === "string" && region !== "") {
    if (region.length > 46)
      issues.add(join(path, "openstackRegion"), "must be at most 46 characters", region);
    else if (!isDNS1123Label(region))
      issues.add(join(path, "openstackRegion"), "must be a DNS-1123 label", region);
  }
}

export const FELIX_CONFIGURATION_KIND: KindDef = {
  kind: "FelixConfiguration",
  plural: "felixconfigurations",
  namespaced: false,
  shortNames: ["felixconfiguration", "felixconfig", "felixconfigs"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateFelixConfigurationSpec(spec, "spec", issues);
  },
  withDefaults: cloneResource,
  nameProblem: (name) => singletonNameProblem(name, true),
};
