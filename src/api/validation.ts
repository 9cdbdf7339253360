/**
 * Validation results. A validator never throws on bad input: it collects every problem it
 * finds, each naming the field path, the bad value and what is allowed, so a user can fix a
 * whole document in one go.
 */
import { CalicoError } from "../errors.js";

export interface ValidationIssue {
  /** Dotted/indexed path from the resource root, e.g. `spec.ingress[0].destination.ports[1]`. */
  path: string;
  /** The offending value (omitted when the problem is a missing field). */
  value?: unknown;
  /** What went wrong and what is allowed, e.g. `must be one of Allow, Deny, Log, Pass`. */
  message: string;
}

/** Where a resource came from, for error messages: `document 3 (NetworkPolicy "default/allow-db")`. */
export interface DocumentRef {
  /** 1-based index of the document in its file/stream, when known. */
  index?: number;
  /** 1-based index of the item inside a `List` document. */
  item?: number;
  /** 1-based line where the document starts. */
  line?: number;
  kind?: string;
  name?: string;
  namespace?: string;
  /** The file the document was read from, when known. */
  source?: string;
}

export function describeDocument(ref: DocumentRef): string {
  // e.g. `policies.yaml: document 2, item 3 (line 14), NetworkPolicy "prod/allow-db"`
  let where = "";
  if (ref.index !== undefined) where += `document ${ref.index}`;
  if (ref.item !== undefined) where += `${where === "" ? "" : ", "}item ${ref.item}`;
  if (ref.line !== undefined) where += ` (line ${ref.line})`;
  where = where.trim();
  if (ref.source !== undefined) where = where === "" ? ref.source : `${ref.source}: ${where}`;
  const what = ref.kind ?? "resource";
  const name =
    ref.name !== undefined ? ` "${ref.namespace !== undefined ? `${ref.namespace}/` : ""}${ref.name}"` : "";
  return where === "" ? `${what}${name}` : `${where}, ${what}${name}`;
}

export function formatValue(value: unknown): string {
  if (value === undefined) return "<missing>";
  if (typeof value === "string") return JSON.stringify(value);
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return "<unprintable>";
  }
}

export function formatIssue(issue: ValidationIssue): string {
  const value = "value" in issue ? ` = ${formatValue(issue.value)}` : "";
  return `${issue.path}${value}: ${issue.message}`;
}

/** Thrown when a resource (or a document of a file) fails validation. Carries every issue found. */
export class ValidationError extends CalicoError {
  readonly document: DocumentRef;
  readonly issues: readonly ValidationIssue[];

  constructor(document: DocumentRef, issues: readonly ValidationIssue[]) {
    const lines = issues.map((i) => `  ${formatIssue(i)}`);
    super("VALIDATION_FAILED", `Invalid ${describeDocument(document)}:\n${lines.join("\n")}`);
    this.document = document;
    this.issues = issues;
  }
}

export function isValidationError(err: unknown): err is ValidationError {
  return err instanceof ValidationError;
}
