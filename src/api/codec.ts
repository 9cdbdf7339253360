/**
 * Reading resources from text: YAML or JSON, one or many documents, `List` kinds, and
 * Kubernetes `networking.k8s.io/v1` NetworkPolicy (converted to its Calico form). Every
 * document is decoded and validated before the caller writes anything; problems come back
 * together, each naming its document, kind, name, field path, bad value and what is allowed.
 */
import { LineCounter, parseAllDocuments } from "yaml";
import { CalicoError } from "../errors.js";
import { checkKnownFields, checkLabels, checkStringMap, isRecord, Issues } from "./check.js";
import { isDNS1123Label, isDNS1123Subdomain, DNS1123_LABEL_HINT, DNS1123_SUBDOMAIN_HINT } from "./check.js";
import { convertK8sNetworkPolicy, K8S_NETWORKING_API_VERSION } from "./k8s-network-policy.js";
import { findKind, kindNames } from "./registry.js";
import type { KindDef } from "./kinds/kind.js";
import { API_VERSION, type AnyResource } from "./resource.js";
import { ValidationError, type DocumentRef, type ValidationIssue } from "./validation.js";

/** One decoded, validated resource and where it came from. */
export interface SourcedResource {
  resource: AnyResource;
  kind: KindDef;
  ref: DocumentRef;
}

/** Raised when any document of an input fails to parse or validate; carries every failure. */
export class InputError extends CalicoError {
  readonly failures: readonly ValidationError[];
  /** How many documents (List items counted singly) the input held. */
  readonly total: number;

  constructor(failures: readonly ValidationError[], total: number) {
    const head =
      failures.length === 1
        ? `1 of ${total} document(s) is invalid; nothing was written`
        : `${failures.length} of ${total} document(s) are invalid; nothing was written`;
    super("INPUT_INVALID", `${head}\n${failures.map((f) => f.message).join("\n")}`);
    this.failures = failures;
    this.total = total;
  }
}

export const isInputError = (err: unknown): err is InputError => err instanceof InputError;

const METADATA_FIELDS = [
  "name",
  "namespace",
  "labels",
  "annotations",
  "resourceVersion",
  "uid",
  "creationTimestamp",
  "generateName",
  "generation",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "ownerReferences",
  "finalizers",
  "managedFields",
  "selfLink",
] as const;

const TOP_FIELDS = ["apiVersion", "kind", "metadata", "spec", "status"] as const;

interface RawDocument {
  value: unknown;
  ref: DocumentRef;
  parseIssues: ValidationIssue[];
}

/** Split text into documents (YAML stream or JSON), skipping empty ones. */
function readDocuments(text: string, source: string | undefined): RawDocument[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: RawDocument[] = [];
  let index = 0;
  for (const doc of list) {
    const start = lines.linePos(doc.range[0]).line;
    const issues: ValidationIssue[] = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      const at = pos !== undefined ? `line ${pos.line}, column ${pos.col}` : "";
      return { path: at === "" ? "(document)" : at, message: `YAML/JSON syntax error: ${e.message}` };
    });
    let value: unknown;
    if (issues.length === 0) {
      try {
        value = doc.toJS({ maxAliasCount: 100 });
      } catch (err) {
        issues.push({ path: "(document)", message: `cannot read document: ${(err as Error).message}` });
      }
    }
    // A document with only comments or `---` separators holds nothing: skip it.
    if (issues.length === 0 && (value === null || value === undefined)) continue;
    index++;
    const ref: DocumentRef = { index, line: start };
    if (source !== undefined) ref.source = source;
    out.push({ value, ref, parseIssues: issues });
  }
  return out;
}

function refWith(ref: DocumentRef, raw: unknown): DocumentRef {
  if (!isRecord(raw)) return ref;
  const out: DocumentRef = { ...ref };
  if (typeof raw.kind === "string") out.kind = raw.kind;
  const md = raw.metadata;
  if (isRecord(md)) {
    if (typeof md.name === "string") out.name = md.name;
    if (typeof md.namespace === "string") out.namespace = md.namespace;
  }
  return out;
}

/**
 * Decode and validate one resource object (already parsed from YAML/JSON). Returns the
 * resource with defaults applied, or throws a ValidationError naming every problem.
 */
export function decodeResource(raw: unknown, ref: DocumentRef = {}): SourcedResource {
  let docRef = refWith(ref, raw);
  const issues = new Issues();
  if (!isRecord(raw)) {
    issues.add("(document)", "must be a mapping with apiVersion, kind, metadata and spec", raw);
    throw new ValidationError(docRef, issues.list);
  }
  let obj: Record<string, unknown> = raw;
  if (obj.apiVersion === K8S_NETWORKING_API_VERSION && obj.kind === "NetworkPolicy") {
    const converted = convertK8sNetworkPolicy(obj);
    if (converted.resource === undefined || converted.issues.length > 0) {
      throw new ValidationError(docRef, converted.issues);
    }
    obj = converted.resource as unknown as Record<string, unknown>;
    docRef = { ...refWith(ref, obj), kind: "NetworkPolicy (from networking.k8s.io/v1)" };
  }
  checkKnownFields(obj, TOP_FIELDS, "", issues);
  if (obj.apiVersion !== API_VERSION) {
    issues.add(
      "apiVersion",
      `must be ${API_VERSION} (or ${K8S_NETWORKING_API_VERSION} for a Kubernetes NetworkPolicy)`,
      obj.apiVersion,
    );
  }
  const kind = typeof obj.kind === "string" ? findKind(obj.kind) : undefined;
  if (kind === undefined || kind.kind !== obj.kind) {
    const hint = kind !== undefined ? `; did you mean ${kind.kind}?` : "";
    issues.add("kind", `must be one of ${kindNames().join(", ")}${hint}`, obj.kind);
    throw new ValidationError(docRef, issues.list);
  }
  const metadata = isRecord(obj.metadata) ? { ...obj.metadata } : undefined;
  if (metadata === undefined) {
    if (obj.metadata === undefined || obj.metadata === null) issues.add("metadata", "is required");
    else issues.add("metadata", "must be a mapping", obj.metadata);
    throw new ValidationError(docRef, issues.list);
  }
  checkKnownFields(metadata, METADATA_FIELDS, "metadata", issues);
  const name = metadata.name;
  if (typeof name !== "string" || name === "") {
    issues.add("metadata.name", "is required (a non-empty string)", name);
  } else {
    const problem = kind.nameProblem?.(name);
    if (problem !== undefined) issues.add("metadata.name", problem, name);
    else if (!isDNS1123Subdomain(name))
      issues.add("metadata.name", `must be ${DNS1123_SUBDOMAIN_HINT}`, name);
  }
  if (kind.namespaced) {
    if (metadata.namespace === undefined || metadata.namespace === "") metadata.namespace = "default";
    else if (typeof metadata.namespace !== "string" || !isDNS1123Label(metadata.namespace)) {
      issues.add("metadata.namespace", `must be ${DNS1123_LABEL_HINT}`, metadata.namespace);
    }
    docRef.namespace = typeof metadata.namespace === "string" ? metadata.namespace : "default";
  } else if (metadata.namespace !== undefined && metadata.namespace !== "") {
    issues.add("metadata.namespace", `must not be set: ${kind.kind} is not namespaced`, metadata.namespace);
  } else {
    delete metadata.namespace;
  }
  checkLabels(metadata, "labels", "metadata", issues);
  checkStringMap(metadata, "annotations", "metadata", issues);
  if (metadata.resourceVersion !== undefined && typeof metadata.resourceVersion !== "string") {
    issues.add("metadata.resourceVersion", "must be a string", metadata.resourceVersion);
  }
  const spec = obj.spec === undefined || obj.spec === null ? {} : obj.spec;
  if (!isRecord(spec)) issues.add("spec", "must be a mapping", spec);
  if (!issues.ok) throw new ValidationError(docRef, issues.list);

  const resource: AnyResource = {
    apiVersion: API_VERSION,
    kind: kind.kind,
    metadata: metadata as unknown as AnyResource["metadata"],
    spec: spec as Record<string, unknown>,
  };
  if (isRecord(obj.status)) resource.status = obj.status;
  kind.validate(resource, issues);
  if (!issues.ok) throw new ValidationError(docRef, issues.list);
  return { resource: kind.withDefaults(resource), kind, ref: docRef };
}

/** `XList` kinds (and plain `List`) hold resources in `items`. */
function listItems(value: unknown): unknown[] | undefined {
  if (!isRecord(value) || typeof value.kind !== "string" || !value.kind.endsWith("List")) return undefined;
  return Array.isArray(value.items) ? (value.items as unknown[]) : [];
}

/** One input text (a file, stdin) and its name for error messages. */
export interface InputText {
  text: string;
  source?: string;
}

/**
 * Decode every resource in every input (YAML streams or JSON). All documents are validated;
 * if any fails, throws one InputError listing every failure, and nothing should be written.
 */
export function decodeInputs(inputs: readonly InputText[]): SourcedResource[] {
  const out: SourcedResource[] = [];
  const failures: ValidationError[] = [];
  let total = 0;
  for (const input of inputs) {
    for (const doc of readDocuments(input.text, input.source)) {
      if (doc.parseIssues.length > 0) {
        total++;
        failures.push(new ValidationError(doc.ref, doc.parseIssues));
        continue;
      }
      const items = listItems(doc.value);
      const entries =
        items === undefined
          ? [{ raw: doc.value, ref: doc.ref }]
          : items.map((raw, i) => ({ raw, ref: { ...doc.ref, item: i + 1 } }));
      for (const { raw, ref } of entries) {
        total++;
        try {
          out.push(decodeResource(raw, ref));
        } catch (err) {
          if (err instanceof ValidationError) failures.push(err);
          else throw err;
        }
      }
    }
  }
  if (failures.length > 0) throw new InputError(failures, total);
  return out;
}

/** `decodeInputs` for one text. */
export function decodeResources(text: string, source?: string): SourcedResource[] {
  return decodeInputs([source === undefined ? { text } : { text, source }]);
}
