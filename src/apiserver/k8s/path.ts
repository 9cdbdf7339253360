/**
 * Which resource a `/apis/projectcalico.org/v3/…` path names (Kubernetes REST layout):
 * `[watch/][namespaces/NS/]PLURAL[/NAME]`. A namespaced kind without `namespaces/NS` means
 * every namespace (list and watch only); a cluster-scoped kind never takes a namespace.
 */
import { KINDS } from "../../api/registry.js";
import type { KindDef } from "../../api/kinds/kind.js";
import { API_GROUP } from "../../api/resource.js";
import { GROUP_VERSION } from "./discovery.js";
import { statusError, StatusReason } from "./status.js";

export const GROUP_VERSION_PATH = `/apis/${API_GROUP}/${GROUP_VERSION}`;

export interface ResourcePath {
  kind: KindDef;
  /** Undefined: cluster-scoped kind, or a namespaced kind across all namespaces. */
  namespace?: string;
  name?: string;
  /** The legacy `/watch/` prefix was used. */
  legacyWatch: boolean;
}

const byPlural = new Map(KINDS.map((k) => [k.plural, k]));

const notFound = (path: string) =>
  statusError(StatusReason.NotFound, `the server could not find the requested resource (${path})`);

/** Parse the part after `/apis/projectcalico.org/v3/`; throws a 404 Status when it names nothing. */
export function parseResourcePath(path: string): ResourcePath {
  const rest = path.slice(GROUP_VERSION_PATH.length + 1);
  let segs: string[];
  try {
    segs = rest.split("/").map((s) => decodeURIComponent(s));
  } catch {
    throw statusError(StatusReason.BadRequest, `malformed percent-encoding in path ${JSON.stringify(path)}`);
  }
  const legacyWatch = segs[0] === "watch";
  if (legacyWatch) segs = segs.slice(1);
  let namespace: string | undefined;
  if (segs[0] === "namespaces" && segs.length >= 3) {
    namespace = segs[1];
    segs = segs.slice(2);
  }
  const kind = byPlural.get(segs[0] ?? "");
  if (kind === undefined || segs.length > 2 || segs.some((s) => s === "")) throw notFound(path);
  if (namespace !== undefined && !kind.namespaced) throw notFound(path);
  const name = segs[1];
  if (name !== undefined && kind.namespaced && namespace === undefined) throw notFound(path);
  return {
    kind,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {}),
    legacyWatch,
  };
}
