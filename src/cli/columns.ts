/**
 * calicoctl's `-o ps` (default) and `-o wide` columns for each kind (reference/calico.md §8).
 */
import type { AnyResource } from "../api/resource.js";

export interface Column {
  header: string;
  value(r: AnyResource): string;
}

const str = (v: unknown): string =>
  v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
const spec = (field: string) => (r: AnyResource) => str(r.spec[field]);
const specObj = (r: AnyResource, field: string): Record<string, unknown> => {
  const v = r.spec[field];
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
};
const list = (v: unknown): string => (Array.isArray(v) ? v.map(str).join(",") : str(v));
const count = (field: string) => (r: AnyResource) =>
  String(Array.isArray(r.spec[field]) ? (r.spec[field] as unknown[]).length : 0);

const NAME: Column = { header: "NAME", value: (r) => r.metadata.name };
const NAMESPACE: Column = { header: "NAMESPACE", value: (r) => r.metadata.namespace ?? "" };
const col = (header: string, value: (r: AnyResource) => string): Column => ({ header, value });

interface KindColumns {
  ps: Column[];
  wide: Column[];
  /** Show NAMESPACE first only when listing across namespaces (-A). */
  namespaceOnlyWhenAll?: boolean;
}

const policyCols = (global: boolean): KindColumns => {
  const base = global ? [NAME] : [NAMESPACE, NAME];
  return {
    ps: [...base, col("TIER", (r) => str(r.spec.tier ?? "default"))],
    wide: [
      ...base,
      col("TIER", (r) => str(r.spec.tier ?? "default")),
      col("ORDER", spec("order")),
      col("SELECTOR", spec("selector")),
    ],
  };
};

const COLUMNS: Record<string, KindColumns> = {
  IPPool: {
    ps: [NAME, col("CIDR", spec("cidr")), col("SELECTOR", spec("nodeSelector"))],
    wide: [
      NAME,
      col("CIDR", spec("cidr")),
      col("NAT", (r) => str(r.spec.natOutgoing ?? false)),
      col("IPIPMODE", spec("ipipMode")),
      col("VXLANMODE", spec("vxlanMode")),
      col("DISABLED", (r) => str(r.spec.disabled ?? false)),
      col("DISABLEBGPEXPORT", (r) => str(r.spec.disableBGPExport ?? false)),
      col("SELECTOR", spec("nodeSelector")),
      col("ASSIGNMENTMODE", spec("assignmentMode")),
    ],
  },
  IPReservation: { ps: [NAME], wide: [NAME, col("CIDRS", (r) => list(r.spec.reservedCIDRs))] },
  NetworkPolicy: policyCols(false),
  StagedNetworkPolicy: policyCols(false),
  GlobalNetworkPolicy: policyCols(true),
  StagedGlobalNetworkPolicy: policyCols(true),
  Tier: {
    ps: [NAME, col("ORDER", spec("order"))],
    wide: [
      NAME,
      col("ORDER", spec("order")),
      col("DEFAULTACTION", (r) => str(r.spec.defaultAction ?? "Deny")),
    ],
  },
  Node: {
    ps: [NAME],
    wide: [
      NAME,
      col("ASN", (r) => str(specObj(r, "bgp").asNumber ?? "")),
      col("IPV4", (r) => str(specObj(r, "bgp").ipv4Address)),
      col("IPV6", (r) => str(specObj(r, "bgp").ipv6Address)),
    ],
  },
  WorkloadEndpoint: {
    namespaceOnlyWhenAll: true,
    ps: [
      col("WORKLOAD", (r) => str(r.spec.pod ?? r.spec.workload)),
      col("NODE", spec("node")),
      col("NETWORKS", (r) => list(r.spec.ipNetworks)),
      col("INTERFACE", spec("interfaceName")),
    ],
    wide: [
      NAME,
      col("WORKLOAD", (r) => str(r.spec.pod ?? r.spec.workload)),
      col("NODE", spec("node")),
      col("NETWORKS", (r) => list(r.spec.ipNetworks)),
      col("INTERFACE", spec("interfaceName")),
      col("PROFILES", (r) => list(r.spec.profiles)),
      col("NATS", (r) =>
        Array.isArray(r.spec.ipNATs)
          ? (r.spec.ipNATs as Record<string, unknown>[])
              .map((n) => `${str(n.internalIP)}:${str(n.externalIP)}`)
              .join(",")
          : "",
      ),
    ],
  },
  HostEndpoint: {
    ps: [NAME, col("NODE", spec("node"))],
    wide: [
      NAME,
      col("NODE", spec("node")),
      col("INTERFACE", spec("interfaceName")),
      col("IPS", (r) => list(r.spec.expectedIPs)),
      col("PROFILES", (r) => list(r.spec.profiles)),
    ],
  },
  BGPPeer: {
    ps: [
      NAME,
      col("PEERIP", (r) =>
        str(r.spec.peerIP ?? (r.spec.peerSelector !== undefined ? `(${str(r.spec.peerSelector)})` : "")),
      ),
      col("NODE", (r) =>
        r.spec.node !== undefined
          ? str(r.spec.node)
          : r.spec.nodeSelector !== undefined
            ? `(${str(r.spec.nodeSelector)})`
            : "(global)",
      ),
      col("ASN", spec("asNumber")),
    ],
    wide: [],
  },
  BGPConfiguration: {
    ps: [
      NAME,
      col("LOGSEVERITY", spec("logSeverityScreen")),
      col("MESHENABLED", spec("nodeToNodeMeshEnabled")),
      col("ASNUMBER", spec("asNumber")),
    ],
    wide: [],
  },
  BGPFilter: {
    ps: [
      NAME,
      col("NUMEXPORTV4", count("exportV4")),
      col("NUMIMPORTV4", count("importV4")),
      col("NUMEXPORTV6", count("exportV6")),
      col("NUMIMPORTV6", count("importV6")),
    ],
    wide: [],
  },
  ClusterInformation: {
    ps: [
      NAME,
      col("CLUSTERGUID", spec("clusterGUID")),
      col("CLUSTERTYPE", spec("clusterType")),
      col("CALICOVERSION", spec("calicoVersion")),
      col("DATASTOREREADY", spec("datastoreReady")),
    ],
    wide: [],
  },
  IPAMConfiguration: {
    ps: [
      NAME,
      col("STRICTAFFINITY", spec("strictAffinity")),
      col("AUTOALLOCATEBLOCKS", spec("autoAllocateBlocks")),
    ],
    wide: [
      NAME,
      col("STRICTAFFINITY", spec("strictAffinity")),
      col("AUTOALLOCATEBLOCKS", spec("autoAllocateBlocks")),
      col("MAXBLOCKSPERHOST", spec("maxBlocksPerHost")),
    ],
  },
  NetworkSet: { ps: [NAMESPACE, NAME], wide: [NAMESPACE, NAME, col("NETS", (r) => list(r.spec.nets))] },
  GlobalNetworkSet: { ps: [NAME], wide: [NAME, col("NETS", (r) => list(r.spec.nets))] },
  Profile: {
    ps: [NAME],
    wide: [
      NAME,
      col("LABELS", (r) =>
        Object.entries(specObj(r, "labelsToApply"))
          .map(([k, v]) => `${k}=${str(v)}`)
          .join(","),
      ),
    ],
  },
};

/** Columns for a kind; kinds without a table of their own show NAME (and NAMESPACE). */
export function columnsFor(
  kind: string,
  namespaced: boolean,
  wide: boolean,
  allNamespaces: boolean,
): Column[] {
  const def = COLUMNS[kind];
  let cols: Column[];
  if (def === undefined) cols = namespaced ? [NAMESPACE, NAME] : [NAME];
  else cols = wide && def.wide.length > 0 ? def.wide : def.ps;
  if (def?.namespaceOnlyWhenAll === true && allNamespaces) cols = [NAMESPACE, ...cols];
  return cols;
}

/**
 * `-o custom-columns=NAME,CIDR,...`: any of the kind's ps/wide headers (plus NAME and
 * NAMESPACE), in the order given. Returns the unknown names instead when there are any.
 */
export function customColumns(
  kind: string,
  names: readonly string[],
): Column[] | { unknown: string[]; known: string[] } {
  const def = COLUMNS[kind];
  const pool = [NAME, NAMESPACE, ...(def?.ps ?? []), ...(def?.wide ?? [])];
  const byHeader = new Map(pool.map((c) => [c.header, c]));
  const unknown = names.filter((n) => !byHeader.has(n.toUpperCase()));
  if (unknown.length > 0) return { unknown, known: [...byHeader.keys()] };
  return names.map((n) => byHeader.get(n.toUpperCase())!);
}

/** Left-aligned columns separated by three spaces, as calicoctl's tabwriter prints them. */
export function renderTable(cols: readonly Column[], rows: readonly AnyResource[]): string {
  const cells = [cols.map((c) => c.header), ...rows.map((r) => cols.map((c) => c.value(r)))];
  const widths = cols.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 3)))
        .join("")
        .trimEnd(),
    )
    .join("\n");
}
