/**
 * Discovery documents (the legacy, unaggregated form every kubectl understands): `/api`,
 * `/api/v1`, `/apis`, `/apis/projectcalico.org`, `/apis/projectcalico.org/v3`, `/version`,
 * and a minimal OpenAPI v3 description. kubectl ≥ 1.26 asks for aggregated discovery first
 * (`as=APIGroupDiscoveryList`); answering with plain `application/json` makes it fall back.
 *
 * The OpenAPI v3 document only declares, for every kind, that PATCH takes the
 * `fieldValidation` query parameter. That is what kubectl's default `--validate=strict` looks
 * for before it leaves validation to the server (which validates every write anyway); without
 * it kubectl would download `/openapi/v2` for client-side validation and refuse to apply
 * when that fails. It carries no schemas, so `kubectl apply` computes JSON merge patches.
 *
 * Older kubectl (Debian's 1.20) knows only `/openapi/v2` (openapi-v2.ts).
 */
import { API_GROUP } from "../../api/resource.js";
import type { KindDef } from "../../api/kinds/kind.js";
import { CALICO_TS_VERSION } from "../../version.js";

export const GROUP_VERSION = "v3";
export const VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"] as const;
export const CATEGORIES = ["calico"] as const;

/**
 * `/api`: the core group has no resources here, so it lists no versions (client-go skips a
 * legacy group without versions; an empty `/api/v1` would count as a discovery failure).
 */
export function apiVersions(serverAddress: string): unknown {
  return {
    kind: "APIVersions",
    versions: [],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function calicoGroup(): unknown {
  const gv = { groupVersion: `${API_GROUP}/${GROUP_VERSION}`, version: GROUP_VERSION };
  return { kind: "APIGroup", apiVersion: "v1", name: API_GROUP, versions: [gv], preferredVersion: gv };
}

export function apiGroupList(): unknown {
  return { kind: "APIGroupList", apiVersion: "v1", groups: [calicoGroup()] };
}

export function apiGroup(): unknown {
  return calicoGroup();
}

/** Short names for discovery: calicoctl's aliases less the singular name kubectl derives itself. */
export function discoveryShortNames(kind: KindDef): string[] {
  const singular = kind.kind.toLowerCase();
  return kind.shortNames.filter((n) => n !== singular && n !== kind.plural);
}

export function apiResourceList(kinds: readonly KindDef[]): unknown {
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: `${API_GROUP}/${GROUP_VERSION}`,
    resources: kinds.map((k) => ({
      name: k.plural,
      singularName: k.kind.toLowerCase(),
      namespaced: k.namespaced,
      kind: k.kind,
      verbs: [...VERBS],
      shortNames: discoveryShortNames(k),
      categories: [...CATEGORIES],
    })),
  };
}

/**
 * `/version` (version.Info). kubectl only prints it, but gcloud's kubectl dispatcher picks a
 * kubectl release from the minor version, so we report the Kubernetes API level we follow
 * and name ourselves in gitVersion.
 */
export function versionInfo(): unknown {
  return {
    major: "1",
    minor: "32",
    gitVersion: `v1.32.0+calico-ts-${CALICO_TS_VERSION}`,
    gitCommit: "",
    gitTreeState: "",
    buildDate: "",
    goVersion: "",
    compiler: "node",
    platform: `${process.platform}/${process.arch}`,
  };
}

const OPENAPI_V3_PATH = `apis/${API_GROUP}/${GROUP_VERSION}`;

/** `/openapi/v3`: the list of group-version documents. */
export function openApiV3Root(kinds: readonly KindDef[]): unknown {
  const hash = openApiHash(kinds);
  return {
    paths: { [OPENAPI_V3_PATH]: { serverRelativeURL: `/openapi/v3/${OPENAPI_V3_PATH}?hash=${hash}` } },
  };
}

export function isOpenApiV3GroupPath(path: string): boolean {
  return path === `/openapi/v3/${OPENAPI_V3_PATH}`;
}

function openApiHash(kinds: readonly KindDef[]): string {
  // Stable per build: changes only when the set of kinds or our version changes.
  let h = 0x811c9dc5;
  for (const ch of `${CALICO_TS_VERSION}:${kinds.map((k) => k.plural).join(",")}`) {
    h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  }
  return h.toString(16).toUpperCase().padStart(8, "0");
}

/** `/openapi/v3/apis/projectcalico.org/v3`: PATCH operations that accept `fieldValidation`. */
export function openApiV3Group(kinds: readonly KindDef[]): unknown {
  const paths: Record<string, unknown> = {};
  const queryParam = (name: string) => ({ name, in: "query", schema: { type: "string", uniqueItems: true } });
  for (const k of kinds) {
    const base = k.namespaced
      ? `/apis/${API_GROUP}/${GROUP_VERSION}/namespaces/{namespace}/${k.plural}`
      : `/apis/${API_GROUP}/${GROUP_VERSION}/${k.plural}`;
    const gvk = { group: API_GROUP, version: GROUP_VERSION, kind: k.kind };
    const op = (action: string) => ({
      operationId: `${action}${k.kind}`,
      parameters: [queryParam("dryRun"), queryParam("fieldManager"), queryParam("fieldValidation")],
      responses: { "200": { description: "OK" } },
      "x-kubernetes-action": action,
      "x-kubernetes-group-version-kind": gvk,
    });
    paths[base] = { post: op("post") };
    paths[`${base}/{name}`] = { put: op("put"), patch: op("patch") };
  }
  return {
    openapi: "3.0.0",
    info: { title: "calico-ts", version: CALICO_TS_VERSION },
    paths,
    components: { schemas: {} },
  };
}
