/**
 * Server-side printing (meta.k8s.io/v1 Table): `kubectl get` asks for
 * `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever columns the server
 * sends. We send calicoctl's columns (src/cli/columns.ts): its default (`ps`) columns at
 * priority 0, the extra `-o wide` columns at priority 1, NAME first and AGE last. kubectl adds
 * NAMESPACE itself (from each row's object metadata) for `-A`, so we never send one.
 */
import type { AnyResource } from "../../api/resource.js";
import { columnsFor, type Column } from "../../cli/columns.js";
import type { KindDef } from "../../api/kinds/kind.js";

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object: unknown;
}

export interface Table {
  kind: "Table";
  apiVersion: "meta.k8s.io/v1";
  metadata: { resourceVersion?: string };
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

/** Which representation the client asked for in its Accept header. */
export type Representation = "object" | "table";

/**
 * kubectl get sends `application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;
 * v=v1beta1;g=meta.k8s.io,application/json`. We serve the v1 Table when it is acceptable and
 * plain JSON otherwise (a client that accepts only a v1beta1 Table also takes plain JSON).
 */
export function representationOf(accept: string | undefined): Representation {
  if (accept === undefined) return "object";
  for (const range of accept.split(",")) {
    const params = range
      .split(";")
      .slice(1)
      .map((p) => p.trim().split("="));
    const get = (k: string) => params.find(([pk]) => pk === k)?.[1];
    if (get("as") === "Table" && get("g") === "meta.k8s.io" && get("v") === "v1") return "table";
  }
  return "object";
}

/** `includeObject` query parameter: what each row's `object` carries (default Metadata). */
export type IncludeObject = "None" | "Metadata" | "Object";

export function parseIncludeObject(v: string | null): IncludeObject {
  return v === "None" || v === "Object" ? v : "Metadata";
}

const NAME_HEADER = "NAME";
const AGE: Column = { header: "AGE", value: (r) => age(r.metadata.creationTimestamp, Date.now()) };

/** The column set of a kind: ps columns at priority 0, extra wide ones at 1. */
export function tableColumns(kind: KindDef): { col: Column; priority: number }[] {
  const ps = columnsFor(kind.kind, kind.namespaced, false, false).filter((c) => c.header !== "NAMESPACE");
  const wide = columnsFor(kind.kind, kind.namespaced, true, false).filter((c) => c.header !== "NAMESPACE");
  const psHeaders = new Set(ps.map((c) => c.header));
  const out: { col: Column; priority: number }[] = [];
  const seen = new Set<string>();
  const add = (col: Column, priority: number) => {
    if (seen.has(col.header)) return;
    seen.add(col.header);
    out.push({ col, priority });
  };
  const name = [...ps, ...wide].find((c) => c.header === NAME_HEADER);
  add(name ?? { header: NAME_HEADER, value: (r) => r.metadata.name }, 0);
  for (const c of ps) add(c, 0);
  add(AGE, 0);
  for (const c of wide) add(c, psHeaders.has(c.header) ? 0 : 1);
  return out;
}

const pretty = (header: string) => header.charAt(0) + header.slice(1).toLowerCase();

export function toTable(
  kind: KindDef,
  items: readonly AnyResource[],
  opts: { resourceVersion?: string; includeObject?: IncludeObject } = {},
): Table {
  const cols = tableColumns(kind);
  const include = opts.includeObject ?? "Metadata";
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: opts.resourceVersion !== undefined ? { resourceVersion: opts.resourceVersion } : {},
    columnDefinitions: cols.map(({ col, priority }) => ({
      name: pretty(col.header),
      type: "string",
      format: col.header === NAME_HEADER ? "name" : "",
      description: col.header === NAME_HEADER ? "Name of the resource" : `calicoctl's ${col.header} column`,
      priority,
    })),
    rows: items.map((r) => ({
      cells: cols.map(({ col }) => col.value(r)),
      object:
        include === "Object"
          ? r
          : include === "None"
            ? null
            : { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: r.metadata },
    })),
  };
}

/** kubectl's short ages (k8s.io/apimachinery/pkg/util/duration.HumanDuration, simplified). */
export function age(timestamp: string | undefined, now: number): string {
  if (timestamp === undefined) return "<unknown>";
  const t = Date.parse(timestamp);
  if (Number.isNaN(t)) return "<unknown>";
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 > 0 ? `${s % 60}s` : ""}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return `${h}h${m % 60 > 0 ? `${m % 60}m` : ""}`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return `${d}d${h % 24 > 0 ? `${h % 24}h` : ""}`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}
