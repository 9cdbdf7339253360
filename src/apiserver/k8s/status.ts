/**
 * Kubernetes `Status` objects (meta/v1): how every failure of the Kubernetes-convention API is
 * reported, so that kubectl prints `Error from server (NotFound): …` as it does against a real
 * cluster. The mapping from our error codes to a reason and HTTP code lives here, in one place.
 */
import type { ServerResponse } from "node:http";
import { hasCode } from "../../errors.js";
import { isValidationError, formatValue } from "../../api/validation.js";
import { isInputError } from "../../api/codec.js";
import { ResourceErrorCode } from "../../datastore/resources.js";
import { DatastoreErrorCode, isClosed, isCompacted, isUnavailable } from "../../datastore/types.js";
import { API_GROUP } from "../../api/resource.js";

/** The reasons we use (k8s.io/apimachinery/pkg/apis/meta/v1 StatusReason). */
export const StatusReason = {
  NotFound: "NotFound",
  AlreadyExists: "AlreadyExists",
  Conflict: "Conflict",
  Invalid: "Invalid",
  BadRequest: "BadRequest",
  Forbidden: "Forbidden",
  Unauthorized: "Unauthorized",
  MethodNotAllowed: "MethodNotAllowed",
  NotAcceptable: "NotAcceptable",
  UnsupportedMediaType: "UnsupportedMediaType",
  RequestEntityTooLarge: "RequestEntityTooLarge",
  /** 410: a watch asked for history that has been compacted away. */
  Expired: "Expired",
  /** 503: the datastore is unreachable or closed (retryable). */
  ServiceUnavailable: "ServiceUnavailable",
  InternalError: "InternalError",
} as const;
export type StatusReason = (typeof StatusReason)[keyof typeof StatusReason];

const CODE_OF: Record<StatusReason, number> = {
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Invalid: 422,
  BadRequest: 400,
  Forbidden: 403,
  Unauthorized: 401,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  UnsupportedMediaType: 415,
  RequestEntityTooLarge: 413,
  Expired: 410,
  ServiceUnavailable: 503,
  InternalError: 500,
};

export interface StatusCause {
  field?: string;
  message: string;
  reason?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  /** Kubernetes puts the resource (plural) here for NotFound/AlreadyExists, the kind for Invalid. */
  kind?: string;
  causes?: StatusCause[];
}

export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message: string;
  reason: StatusReason;
  code: number;
  details?: StatusDetails;
}

export function failure(reason: StatusReason, message: string, details?: StatusDetails): Status {
  const s: Status = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code: CODE_OF[reason],
  };
  if (details !== undefined) s.details = details;
  return s;
}

/** Thrown inside the handler to answer with a given Status; anything else is mapped by `toStatus`. */
export class StatusError extends Error {
  constructor(readonly status: Status) {
    super(status.message);
    this.name = "StatusError";
  }
}

export const statusError = (reason: StatusReason, message: string, details?: StatusDetails): StatusError =>
  new StatusError(failure(reason, message, details));

/** What a failed request was about, for the Status message and details. */
export interface Subject {
  /** Plural resource name, e.g. `globalnetworkpolicies`. */
  plural: string;
  kind: string;
  name?: string;
}

const qualified = (s: Subject): string => `${s.plural}.${API_GROUP}`;

/** Map any error thrown while serving a request to the Status the client should see. */
export function toStatus(err: unknown, subject?: Subject): Status {
  if (err instanceof StatusError) return err.status;
  const named = subject?.name !== undefined ? { name: subject.name } : {};
  if (isValidationError(err) || isInputError(err)) {
    const issues = isInputError(err) ? err.failures.flatMap((f) => f.issues) : err.issues;
    const causes = issues.map((i) => ({
      reason: "FieldValueInvalid",
      field: i.path,
      message: "value" in i ? `Invalid value: ${formatValue(i.value)}: ${i.message}` : i.message,
    }));
    const what =
      subject !== undefined ? `${subject.kind}.${API_GROUP} "${subject.name ?? ""}"` : "the resource";
    const lines = causes.map((c) => `${c.field}: ${c.message}`);
    return failure(StatusReason.Invalid, `${what} is invalid: ${lines.join(", ")}`, {
      ...named,
      group: API_GROUP,
      ...(subject !== undefined ? { kind: subject.kind } : {}),
      causes,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  const about = { ...named, group: API_GROUP, ...(subject !== undefined ? { kind: subject.plural } : {}) };
  if (hasCode(err, ResourceErrorCode.NOT_FOUND)) {
    const msg = subject !== undefined ? `${qualified(subject)} "${subject.name ?? ""}" not found` : message;
    return failure(StatusReason.NotFound, msg, about);
  }
  if (hasCode(err, ResourceErrorCode.ALREADY_EXISTS)) {
    const msg =
      subject !== undefined ? `${qualified(subject)} "${subject.name ?? ""}" already exists` : message;
    return failure(StatusReason.AlreadyExists, msg, about);
  }
  if (hasCode(err, ResourceErrorCode.CONFLICT)) {
    const msg =
      subject !== undefined
        ? `Operation cannot be fulfilled on ${qualified(subject)} "${subject.name ?? ""}": ${message}`
        : message;
    return failure(StatusReason.Conflict, msg, about);
  }
  if (hasCode(err, ResourceErrorCode.REJECTED) || hasCode(err, "PATCH_INVALID")) {
    // A cross-resource rule (missing tier, overlapping CIDR, immutable field): one message,
    // no per-field causes, so kubectl prints it as it stands.
    return failure(StatusReason.Invalid, message, {
      ...named,
      group: API_GROUP,
      ...(subject !== undefined ? { kind: subject.kind } : {}),
    });
  }
  if (isCompacted(err)) return failure(StatusReason.Expired, `too old resource version: ${message}`);
  if (isUnavailable(err) || isClosed(err)) return failure(StatusReason.ServiceUnavailable, message);
  if (hasCode(err, DatastoreErrorCode.INVALID_ARGUMENT)) return failure(StatusReason.BadRequest, message);
  return failure(StatusReason.InternalError, `Internal error occurred: ${message}`);
}

/** Write a Status as the whole response. */
export function writeStatus(res: ServerResponse, status: Status): void {
  const body = JSON.stringify(status);
  res.writeHead(status.code, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(body);
}
