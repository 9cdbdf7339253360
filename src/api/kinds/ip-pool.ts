/**
 * IPPool (cluster): a range workloads, tunnels or LoadBalancer services get addresses from,
 * split into blocks affine to nodes (reference/calico.md §2.1, §4). Rules follow libcalico's
 * `validateIPPoolSpec` plus the CRD schema.
 */
import type { AnyResource, Resource } from "../resource.js";
import { checkBool, checkEnum, checkKnownFields, checkNumber, join, type Issues } from "../check.js";
import { cidrsOverlap, isMasked, parseCIDR, type CIDR } from "../net.js";
import { checkSelector } from "../selector-field.js";
import type { KindDef } from "./kind.js";
import { checkNetField, cloneResource, mutableSpec, specOf } from "./infra-spec.js";

export const ENCAP_MODES = ["Never", "Always", "CrossSubnet"] as const;
export type EncapMode = (typeof ENCAP_MODES)[number];
export const IPPOOL_ALLOWED_USES = ["Workload", "Tunnel", "LoadBalancer"] as const;
export type IPPoolAllowedUse = (typeof IPPOOL_ALLOWED_USES)[number];
export const ASSIGNMENT_MODES = ["Automatic", "Manual"] as const;
export type AssignmentMode = (typeof ASSIGNMENT_MODES)[number];

export interface IPPoolSpec {
  cidr: string;
  blockSize?: number;
  ipipMode?: EncapMode;
  vxlanMode?: EncapMode;
  natOutgoing?: boolean;
  disabled?: boolean;
  disableBGPExport?: boolean;
  nodeSelector?: string;
  namespaceSelector?: string;
  allowedUses?: IPPoolAllowedUse[];
  assignmentMode?: AssignmentMode;
}

export type IPPool = Resource<"IPPool", IPPoolSpec>;

export const DEFAULT_BLOCK_SIZE = { 4: 26, 6: 122 } as const;
export const BLOCK_SIZE_RANGE = { 4: [20, 32], 6: [116, 128] } as const;
export const DEFAULT_ALLOWED_USES: readonly IPPoolAllowedUse[] = ["Workload", "Tunnel"];

const LINK_LOCAL = { 4: parseCIDR("169.254.0.0/16") as CIDR, 6: parseCIDR("fe80::/10") as CIDR } as const;

const FIELDS = [
  "cidr",
  "blockSize",
  "ipipMode",
  "vxlanMode",
  "natOutgoing",
  "disabled",
  "disableBGPExport",
  "nodeSelector",
  "namespaceSelector",
  "allowedUses",
  "assignmentMode",
] as const;

const encapOn = (m: EncapMode | undefined): boolean => m === "Always" || m === "CrossSubnet";

export function validateIPPoolSpec(spec: Record<string, unknown>, path: string, issues: Issues): void {
  checkKnownFields(spec, FIELDS, path, issues);
  if (typeof spec.cidr === "string" && spec.cidr.length > 48) {
    issues.add(join(path, "cidr"), "must be at most 48 characters", spec.cidr);
  }
  // Calico's pool validator accepts a bare address as a /32 (/128); the host-bit and size
  // checks below then decide.
  const cidr = checkNetField(spec, "cidr", path, issues, { required: true });
  const cidrPath = join(path, "cidr");
  if (cidr !== undefined) {
    if (!isMasked(cidr)) {
      issues.add(
        cidrPath,
        "IP pool CIDR must be strictly masked (no host bits set, e.g. 198.19.0.0/16)",
        spec.cidr,
      );
    }
    if (cidrsOverlap(cidr, LINK_LOCAL[cidr.family])) {
      issues.add(
        cidrPath,
        `must not overlap the IPv${cidr.family} link-local range ${cidr.family === 4 ? "169.254.0.0/16" : "fe80::/10"}`,
        spec.cidr,
      );
    }
  }

  const blockSize = checkNumber(spec, "blockSize", path, issues, { integer: true, min: 0, max: 128 });
  let effectiveBlock: number | undefined;
  if (cidr !== undefined) {
    const [lo, hi] = BLOCK_SIZE_RANGE[cidr.family];
    if (blockSize !== undefined && blockSize !== 0 && (blockSize < lo || blockSize > hi)) {
      issues.add(
        join(path, "blockSize"),
        `must be from ${lo} to ${hi} for an IPv${cidr.family} pool`,
        blockSize,
      );
    } else {
      effectiveBlock =
        blockSize === undefined || blockSize === 0 ? DEFAULT_BLOCK_SIZE[cidr.family] : blockSize;
    }
  }

  const ipip = checkEnum(spec, "ipipMode", path, ENCAP_MODES, issues);
  const vxlan = checkEnum(spec, "vxlanMode", path, ENCAP_MODES, issues);
  checkBool(spec, "natOutgoing", path, issues);
  const disabled = checkBool(spec, "disabled", path, issues);
  const noExport = checkBool(spec, "disableBGPExport", path, issues);
  checkEnum(spec, "assignmentMode", path, ASSIGNMENT_MODES, issues);

  if (
    cidr !== undefined &&
    effectiveBlock !== undefined &&
    disabled !== true &&
    cidr.prefix > effectiveBlock
  ) {
    issues.add(
      cidrPath,
      `pool is smaller than one block: prefix /${cidr.prefix} is longer than blockSize ${effectiveBlock} (use a larger pool, or blockSize ${cidr.prefix} or more)`,
      spec.cidr,
    );
  }
  if (cidr?.family === 6 && encapOn(ipip)) {
    issues.add(
      join(path, "ipipMode"),
      "must be Never for an IPv6 pool (IPIP carries IPv4 only)",
      spec.ipipMode,
    );
  }
  if (encapOn(ipip) && encapOn(vxlan)) {
    issues.add(
      join(path, "vxlanMode"),
      `IPIP and VXLAN cannot both be enabled on one pool (ipipMode is ${String(ipip)}); set one of them to Never`,
      spec.vxlanMode,
    );
  }

  const nodeSelector = spec.nodeSelector;
  if (nodeSelector !== "") checkSelector(spec, "nodeSelector", path, issues, { global: "forbidden" });
  const nsSelector = spec.namespaceSelector;
  if (nsSelector !== "") checkSelector(spec, "namespaceSelector", path, issues, { global: "forbidden" });

  const usesPath = join(path, "allowedUses");
  const uses: IPPoolAllowedUse[] = [];
  const rawUses = spec.allowedUses;
  if (rawUses !== undefined && rawUses !== null) {
    if (!Array.isArray(rawUses))
      issues.add(usesPath, `must be a list of ${IPPOOL_ALLOWED_USES.join(", ")}`, rawUses);
    else
      rawUses.forEach((u: unknown, i) => {
        if (typeof u !== "string" || !(IPPOOL_ALLOWED_USES as readonly string[]).includes(u)) {
          issues.add(join(usesPath, i), `must be one of ${IPPOOL_ALLOWED_USES.join(", ")}`, u);
        } else if (uses.includes(u as IPPoolAllowedUse)) {
          issues.add(join(usesPath, i), "is listed more than once", u);
        } else uses.push(u as IPPoolAllowedUse);
      });
  }
  if (uses.includes("LoadBalancer")) {
    for (const other of uses.filter((u) => u !== "LoadBalancer")) {
      issues.add(usesPath, `LoadBalancer cannot be combined with ${other} in one pool`, rawUses);
    }
    if (encapOn(ipip))
      issues.add(join(path, "ipipMode"), "must be Never for a LoadBalancer pool", spec.ipipMode);
    if (encapOn(vxlan))
      issues.add(join(path, "vxlanMode"), "must be Never for a LoadBalancer pool", spec.vxlanMode);
    if (noExport === true) {
      issues.add(
        join(path, "disableBGPExport"),
        "must be false for a LoadBalancer pool (its addresses are reached only through BGP)",
        true,
      );
    }
    if (nodeSelector !== undefined && nodeSelector !== "" && nodeSelector !== "all()") {
      issues.add(
        join(path, "nodeSelector"),
        'must be "all()" (or unset) for a LoadBalancer pool',
        nodeSelector,
      );
    }
  }
  // Tunnel addresses are per node, not per namespace. Checked against the uses as written:
  // with allowedUses unset, Calico's own default includes Tunnel (see docs/api-infra.md).
  if (uses.includes("Tunnel") && typeof nsSelector === "string" && nsSelector !== "") {
    issues.add(
      join(path, "namespaceSelector"),
      "must be empty for a pool whose allowedUses include Tunnel",
      nsSelector,
    );
  }
}

export function ipPoolWithDefaults(resource: AnyResource): AnyResource {
  const out = cloneResource(resource);
  const spec = mutableSpec(out);
  const cidr = typeof spec.cidr === "string" ? parseCIDR(spec.cidr) : undefined;
  if (cidr !== undefined && (spec.blockSize === undefined || spec.blockSize === 0)) {
    spec.blockSize = DEFAULT_BLOCK_SIZE[cidr.family];
  }
  if (spec.ipipMode === undefined || spec.ipipMode === "") spec.ipipMode = "Never";
  if (spec.vxlanMode === undefined || spec.vxlanMode === "") spec.vxlanMode = "Never";
  if (spec.nodeSelector === undefined || spec.nodeSelector === "") spec.nodeSelector = "all()";
  if (!Array.isArray(spec.allowedUses) || spec.allowedUses.length === 0)
    spec.allowedUses = [...DEFAULT_ALLOWED_USES];
  if (spec.assignmentMode === undefined || spec.assignmentMode === "") spec.assignmentMode = "Automatic";
  return out;
}

export const IP_POOL_KIND: KindDef = {
  kind: "IPPool",
  plural: "ippools",
  namespaced: false,
  shortNames: ["ippool", "ipp", "ipps", "pool", "pools"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateIPPoolSpec(spec, "spec", issues);
  },
  withDefaults: ipPoolWithDefaults,
};
