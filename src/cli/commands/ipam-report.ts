/**
 * The `calicoctl ipam check -o FILE` report, and reading it back for
 * `ipam release --from-report` (reference/calico.md §8: the safe leak-cleanup workflow).
 *
 * A report pins what it saw: the datastore revision of the scan, ClusterInformation's
 * resourceVersion (locking or unlocking the datastore changes it, so a report taken before a
 * lock no longer matches), and per leaked address the handle and the per-allocation sequence
 * number, which `releaseIPs` checks so an address re-allocated since the scan is left alone.
 */
import { parseIP } from "../../api/net.js";
import { ValidationError, type ValidationIssue } from "../../api/validation.js";
import type { AllocationState, IPAMIssue, UnallocatedUse } from "../../ipam/index.js";

/** Bump when a field changes meaning; readers refuse versions they do not know. */
export const REPORT_FORMAT_VERSION = 1;
const REPORT_KIND = "IPAM check report";

export interface ReportedAddress {
  address: string;
  state: Exclude<AllocationState, "in-use">;
  reason: string;
  handleID: string | null;
  sequenceNumber: number;
  block: string;
  /** The node the allocation names (attrs.node), else the block's affine node, else "". */
  node: string;
  attrs: Record<string, string>;
}

export interface IPAMReport {
  formatVersion: typeof REPORT_FORMAT_VERSION;
  kind: typeof REPORT_KIND;
  generatedAt: string;
  /** The datastore revision the workload view was read at. */
  datastoreRevision: number;
  /** ClusterInformation `default` metadata.resourceVersion, null if it did not exist. */
  clusterInformationResourceVersion: string | null;
  /** ClusterInformation spec.datastoreReady was false when the report was taken. */
  datastoreLocked: boolean;
  counts: { pools: number; blocks: number; allocations: number; handles: number; affinities: number };
  allocationsPerNode: Record<string, number>;
  problems: IPAMIssue[];
  /** Allocated but not in use: leaked (node gone) and leak candidates (no workload holds it). */
  leaked: ReportedAddress[];
  inUseNotAllocated: UnallocatedUse[];
}

export function newReport(fields: Omit<IPAMReport, "formatVersion" | "kind">): IPAMReport {
  return { formatVersion: REPORT_FORMAT_VERSION, kind: REPORT_KIND, ...fields };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Decode a report file, checking everything release relies on; a bad one is a
 * ValidationError naming the file and each bad field (exit 3, nothing released).
 */
export function parseReport(text: string, source: string): IPAMReport {
  const fail = (issues: ValidationIssue[]): never => {
    throw new ValidationError({ source, kind: REPORT_KIND }, issues);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return fail([{ path: "(file)", message: `not JSON: ${e instanceof Error ? e.message : String(e)}` }]);
  }
  if (!isObject(doc)) return fail([{ path: "(file)", value: doc, message: "must be a JSON object" }]);
  if (doc.formatVersion !== REPORT_FORMAT_VERSION) {
    return fail([
      {
        path: "formatVersion",
        value: doc.formatVersion,
        message: `must be ${REPORT_FORMAT_VERSION} (written by calicoctl ipam check -o)`,
      },
    ]);
  }
  const issues: ValidationIssue[] = [];
  const rv = doc.clusterInformationResourceVersion;
  if (rv !== null && typeof rv !== "string") {
    issues.push({
      path: "clusterInformationResourceVersion",
      value: rv,
      message: "must be a string or null",
    });
  }
  if (!Number.isSafeInteger(doc.datastoreRevision)) {
    issues.push({ path: "datastoreRevision", value: doc.datastoreRevision, message: "must be an integer" });
  }
  if (!Array.isArray(doc.leaked)) {
    issues.push({ path: "leaked", value: doc.leaked, message: "must be a list of addresses" });
  } else {
    doc.leaked.forEach((e: unknown, i) => {
      const at = `leaked[${i}]`;
      if (!isObject(e)) {
        issues.push({ path: at, value: e, message: "must be an object" });
        return;
      }
      if (typeof e.address !== "string" || parseIP(e.address) === undefined) {
        issues.push({ path: `${at}.address`, value: e.address, message: "must be an IP address" });
      }
      const seq = e.sequenceNumber;
      if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
        issues.push({
          path: `${at}.sequenceNumber`,
          value: seq,
          message: "must be a non-negative integer",
        });
      }
      if (e.handleID !== null && typeof e.handleID !== "string") {
        issues.push({ path: `${at}.handleID`, value: e.handleID, message: "must be a string or null" });
      }
    });
  }
  if (issues.length > 0) fail(issues);
  return doc as unknown as IPAMReport;
}
