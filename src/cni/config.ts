/**
 * The network configuration both plugins read from stdin: the spec's fields (cniVersion, name,
 * type, args, runtimeConfig, prevResult, the GC's valid attachments) and Calico's own
 * (reference/calico.md §7.1: datastore, nodename, mtu, log_level, ipam.*, policy). Parsed once
 * into a typed object; anything malformed is the spec's code 7 naming the field (an unsupported
 * value, code 2), an unsupported cniVersion is code 1.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseResult, requireSupportedVersion } from "./result.js";
import { CniCode, CniError, type Attachment, type CniResult } from "./types.js";

export type LogLevel = "debug" | "info" | "warning" | "error";

export interface IpamConf {
  type: string;
  assignIPv4: boolean;
  assignIPv6: boolean;
  ipv4Pools: string[];
  ipv6Pools: string[];
}

export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  /** Our datastore URL (`datastore`, else from `etcd_endpoints`); undefined: $CALICO_DATASTORE or the default. */
  datastore: string | undefined;
  nodename: string;
  /** 0: leave the kernel's default. */
  mtu: number;
  /** `big_tcp` (ours): GSO/GRO packets of up to 192 KiB on both ends of the veth (big-tcp.ts). */
  bigTcp: boolean;
  logLevel: LogLevel;
  logFilePath: string | undefined;
  ipam: IpamConf;
  /** `args.cni.labels` and `runtimeConfig.labels`, merged (runtimeConfig wins). */
  labels: Record<string, string>;
  prevResult: CniResult | undefined;
  validAttachments: Attachment[] | undefined;
  /** The whole document as read (handed to a delegated IPAM plugin unchanged). */
  raw: Record<string, unknown>;
}

export const DEFAULT_NODENAME_FILE = "/var/lib/calico/nodename";
export const DEFAULT_MTU_FILE = "/var/lib/calico/mtu";
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const invalid = (field: string, why: string): CniError =>
  new CniError(CniCode.INVALID_NETWORK_CONFIG, `Invalid network configuration: ${field} ${why}`);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function optString(o: Obj, field: string, where: string): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw invalid(`${where}${field}`, `must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function optObject(o: Obj, field: string, where: string): Obj | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw invalid(`${where}${field}`, "must be an object");
  return v;
}

function stringList(o: Obj, field: string, where: string): string[] {
  const v = o[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string" || x === "")) {
    throw invalid(`${where}${field}`, `must be a list of non-empty strings, got ${JSON.stringify(v)}`);
  }
  return v as string[];
}

/** Calico writes `assign_ipv4: "true"`; a JSON boolean is taken too. */
function flag(o: Obj, field: string, where: string, dflt: boolean): boolean {
  const v = o[field];
  if (v === undefined || v === null || v === "") return dflt;
  if (v === true || v === "true") return true;
  if (v === false || v === "false") return false;
  throw invalid(`${where}${field}`, `must be "true" or "false", got ${JSON.stringify(v)}`);
}

const LEVELS: Record<string, LogLevel> = {
  debug: "debug",
  info: "info",
  warn: "warning",
  warning: "warning",
  error: "error",
  fatal: "error",
  panic: "error",
};

/** `etcd_endpoints: "http://h:2379,http://h2:2379"` → `etcd://h:2379,h2:2379` (etcds for https). */
function etcdUrl(endpoints: string): string {
  const list = endpoints
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  const tls = list.some((e) => e.startsWith("https://"));
  const hosts = list.map((e) => e.replace(/^https?:\/\//, "").replace(/\/$/, ""));
  if (hosts.length === 0) throw invalid("etcd_endpoints", "names no endpoint");
  return `${tls ? "etcds" : "etcd"}://${hosts.join(",")}`;
}

function readLabels(conf: Obj): Record<string, string> {
  const labels: Record<string, string> = {};
  const cni = isObj(conf.args) && isObj(conf.args.cni) ? conf.args.cni : undefined;
  // CNI CONVENTIONS.md: args.cni.labels is a list of {key, value}.
  if (cni?.labels !== undefined) {
    if (!Array.isArray(cni.labels)) throw invalid("args.cni.labels", "must be a list of {key, value}");
    cni.labels.forEach((l, i) => {
      if (!isObj(l) || typeof l.key !== "string" || typeof l.value !== "string") {
        throw invalid(`args.cni.labels[${i}]`, "must be {key: string, value: string}");
      }
      labels[l.key] = l.value;
    });
  }
  const rc = isObj(conf.runtimeConfig) ? conf.runtimeConfig.labels : undefined;
  if (rc !== undefined) {
    if (!isObj(rc) || Object.values(rc).some((v) => typeof v !== "string")) {
      throw invalid("runtimeConfig.labels", "must be a map of strings");
    }
    Object.assign(labels, rc);
  }
  return labels;
}

function readAttachments(conf: Obj): Attachment[] | undefined {
  // libcni sends both names (the spec's `cni.dev/valid-attachments`, and an older spelling).
  const field =
    conf["cni.dev/valid-attachments"] !== undefined ? "cni.dev/valid-attachments" : "cni.dev/attachments";
  const v = conf[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid(field, "must be a list of {containerID, ifname}");
  return v.map((a, i) => {
    if (!isObj(a) || typeof a.containerID !== "string" || typeof a.ifname !== "string") {
      throw invalid(`${field}[${i}]`, "must be {containerID: string, ifname: string}");
    }
    return { containerID: a.containerID, ifname: a.ifname };
  });
}

function resolveNodename(conf: Obj, readFile: (p: string) => string | undefined): string {
  const explicit = optString(conf, "nodename", "");
  if (explicit !== undefined && explicit !== "") return explicit;
  const file = optString(conf, "nodename_file", "") ?? DEFAULT_NODENAME_FILE;
  const fromFile = readFile(file)?.trim();
  if (fromFile !== undefined && fromFile !== "") return fromFile;
  return hostname().toLowerCase();
}

export function readTextFile(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Decode stdin; a document that is not a JSON object is the spec's code 6. */
export function decodeConfig(stdin: string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(
      CniCode.DECODING_FAILURE,
      `Cannot decode the network configuration on stdin: ${(e as Error).message}`,
    );
  }
  if (!isObj(v))
    throw new CniError(CniCode.DECODING_FAILURE, "The network configuration on stdin is not a JSON object");
  return v;
}

/** Parse and check a configuration (anything but VERSION). */
export function parseNetConf(conf: Obj, readFile: (p: string) => string | undefined = readTextFile): NetConf {
  const cniVersion = optString(conf, "cniVersion", "");
  if (cniVersion === undefined || cniVersion === "") throw invalid("cniVersion", "is required");
  requireSupportedVersion(cniVersion);
  const name = optString(conf, "name", "");
  if (name === undefined || !NAME_RE.test(name)) {
    throw invalid(
      "name",
      `must start with a letter or digit and hold only letters, digits, '_', '.', '-' (got ${JSON.stringify(name ?? "")})`,
    );
  }
  const type = optString(conf, "type", "") ?? "";
  const dsType = optString(conf, "datastore_type", "");
  if (dsType !== undefined && dsType !== "" && dsType !== "etcdv3") {
    throw new CniError(
      CniCode.UNSUPPORTED_FIELD,
      `Unsupported network configuration: datastore_type ${JSON.stringify(dsType)}; calico-ts reads its datastore from "datastore" (e.g. "sqlite:/var/lib/calico/calico-ts.db") or etcd_endpoints`,
    );
  }
  const endpoints = optString(conf, "etcd_endpoints", "");
  const datastore = optString(conf, "datastore", "") || (endpoints ? etcdUrl(endpoints) : undefined);
  const deviceType = optString(conf, "device_type", "");
  if (deviceType !== undefined && deviceType !== "" && deviceType !== "veth") {
    throw new CniError(
      CniCode.UNSUPPORTED_FIELD,
      `Unsupported network configuration: device_type ${JSON.stringify(deviceType)} (only "veth")`,
    );
  }
  let mtu = 0;
  if (conf.mtu !== undefined && conf.mtu !== null) {
    if (
      typeof conf.mtu !== "number" ||
      !Number.isInteger(conf.mtu) ||
      conf.mtu < 0 ||
      (conf.mtu > 0 && conf.mtu < 68) ||
      conf.mtu > 65535
    ) {
      throw invalid(
        "mtu",
        `must be 0 (automatic) or an integer from 68 to 65535, got ${JSON.stringify(conf.mtu)}`,
      );
    }
    mtu = conf.mtu;
  }
  if (mtu === 0) {
    // calico-node writes the MTU it detected; no file means the kernel's default.
    const fromFile = Number(readFile(DEFAULT_MTU_FILE)?.trim() ?? "");
    if (Number.isInteger(fromFile) && fromFile >= 68) mtu = fromFile;
  }
  const level = (optString(conf, "log_level", "") ?? "warning").toLowerCase();
  const logLevel = level === "" ? "warning" : LEVELS[level];
  if (logLevel === undefined)
    throw invalid(
      "log_level",
      `must be one of ${Object.keys(LEVELS).join(", ")}, got ${JSON.stringify(level)}`,
    );
  const ipamObj = optObject(conf, "ipam", "");
  if (ipamObj === undefined) throw invalid("ipam", 'is required (e.g. {"type": "calico-ipam"})');
  const ipamType = optString(ipamObj, "type", "ipam.");
  if (ipamType === undefined || ipamType === "") throw invalid("ipam.type", "is required");
  const ipam: IpamConf = {
    type: ipamType,
    assignIPv4: flag(ipamObj, "assign_ipv4", "ipam.", true),
    assignIPv6: flag(ipamObj, "assign_ipv6", "ipam.", false),
    ipv4Pools: stringList(ipamObj, "ipv4_pools", "ipam."),
    ipv6Pools: stringList(ipamObj, "ipv6_pools", "ipam."),
  };
  if (!ipam.assignIPv4 && !ipam.assignIPv6) {
    throw invalid("ipam", "assigns no address: assign_ipv4 and assign_ipv6 are both false");
  }
  const policy = optObject(conf, "policy", "");
  const policyType = policy !== undefined ? optString(policy, "type", "policy.") : undefined;
  if (policyType !== undefined && policyType !== "" && policyType !== "k8s") {
    throw new CniError(
      CniCode.UNSUPPORTED_FIELD,
      `Unsupported network configuration: policy.type ${JSON.stringify(policyType)} (only "k8s")`,
    );
  }
  return {
    cniVersion,
    name,
    type,
    datastore,
    nodename: resolveNodename(conf, readFile),
    mtu,
    bigTcp: flag(conf, "big_tcp", "", false),
    logLevel,
    logFilePath: optString(conf, "log_file_path", "") || undefined,
    ipam,
    labels: readLabels(conf),
    prevResult:
      conf.prevResult !== undefined && conf.prevResult !== null ? parseResult(conf.prevResult) : undefined,
    validAttachments: readAttachments(conf),
    raw: conf,
  };
}
