/**
 * `/openapi/v2` for older kubectl (Debian's 1.20), which downloads it as protobuf before any
 * apply/create: it must parse, or kubectl refuses (unless `--validate=false`). It describes
 * no schemas (kubectl skips client-side validation of kinds it has no model for and computes
 * JSON merge patches) but one PATCH operation per kind carrying `x-kubernetes-group-version-kind`
 * and the `dryRun` query parameter, which is how kubectl 1.20 decides that `kubectl diff`
 * and `--dry-run=server` may be used.
 *
 * The protobuf form is gnostic's `openapi.v2.Document` (google/gnostic openapiv2/OpenAPIv2.proto),
 * written by hand: only length-delimited fields are needed.
 */
import { API_GROUP } from "../../api/resource.js";
import type { KindDef } from "../../api/kinds/kind.js";
import { CALICO_TS_VERSION } from "../../version.js";
import { GROUP_VERSION } from "./discovery.js";

/** The protobuf media type kubectl asks for (gnostic openapi_v2.Document). */
export const OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

const QUERY_PARAMS = ["dryRun", "fieldManager", "fieldValidation"] as const;

interface PatchPath {
  path: string;
  kind: string;
}

function patchPaths(kinds: readonly KindDef[]): PatchPath[] {
  return kinds.map((k) => ({
    path: k.namespaced
      ? `/apis/${API_GROUP}/${GROUP_VERSION}/namespaces/{namespace}/${k.plural}/{name}`
      : `/apis/${API_GROUP}/${GROUP_VERSION}/${k.plural}/{name}`,
    kind: k.kind,
  }));
}

// --- protobuf wire format: varints and length-delimited fields (wire type 2) ---

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** Field `num` (wire type 2) holding a string or an embedded message. */
function field(num: number, value: string | Buffer): Buffer {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  return Buffer.concat([varint((num << 3) | 2), varint(bytes.length), bytes]);
}

const msg = (...fields: Buffer[]): Buffer => Buffer.concat(fields);

function queryParameter(name: string): Buffer {
  // ParametersItem.parameter(1) → Parameter.non_body_parameter(2) →
  // NonBodyParameter.query_parameter_sub_schema(3) → { in(2), name(4), type(6) }
  const sub = msg(field(2, "query"), field(4, name), field(6, "string"));
  return field(8, msg(field(1, msg(field(2, msg(field(3, sub)))))));
}

function patchOperation(kind: string): Buffer {
  const gvkYaml = `group: ${API_GROUP}\nkind: ${kind}\nversion: ${GROUP_VERSION}\n`;
  return msg(
    field(5, `patch${kind}`), // operation_id
    ...QUERY_PARAMS.map(queryParameter), // parameters (8)
    // vendor_extension(13): NamedAny { name(1), value(2): Any { yaml(2) } }
    field(13, msg(field(1, "x-kubernetes-group-version-kind"), field(2, msg(field(2, gvkYaml))))),
  );
}

export function openApiV2Protobuf(kinds: readonly KindDef[]): Buffer {
  const paths = patchPaths(kinds).map(({ path, kind }) =>
    // Paths.path(2): NamedPathItem { name(1), value(2): PathItem { patch(8) } }
    field(2, msg(field(1, path), field(2, msg(field(8, patchOperation(kind)))))),
  );
  return msg(
    field(1, "2.0"), // swagger
    field(2, msg(field(1, "calico-ts"), field(2, CALICO_TS_VERSION))), // info { title, version }
    field(8, msg(...paths)), // paths
  );
}

export function openApiV2Json(kinds: readonly KindDef[]): unknown {
  const paths: Record<string, unknown> = {};
  for (const { path, kind } of patchPaths(kinds)) {
    paths[path] = {
      patch: {
        operationId: `patch${kind}`,
        parameters: QUERY_PARAMS.map((name) => ({ name, in: "query", type: "string", uniqueItems: true })),
        responses: { "200": { description: "OK" } },
        "x-kubernetes-group-version-kind": { group: API_GROUP, kind, version: GROUP_VERSION },
      },
    };
  }
  return { swagger: "2.0", info: { title: "calico-ts", version: CALICO_TS_VERSION }, paths, definitions: {} };
}

/** The response for `/openapi/v2`, protobuf when the client asks for it. */
export function openApiV2(
  kinds: readonly KindDef[],
  accept: string | undefined,
): { contentType: string; body: Buffer } {
  if (accept?.includes(OPENAPI_V2_PROTOBUF) === true) {
    // Not the requested type as Content-Type: "@" is no token character, and client-go's
    // mime.ParseMediaType refuses it (kube-openapi answers application/octet-stream too).
    return { contentType: "application/octet-stream", body: openApiV2Protobuf(kinds) };
  }
  return { contentType: "application/json", body: Buffer.from(JSON.stringify(openApiV2Json(kinds))) };
}
