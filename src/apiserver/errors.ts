/**
 * How the API server reports failures on the wire: a JSON body `{code, message}` with a stable
 * code, and an HTTP status derived from it. Datastore errors keep their own codes
 * (`DATASTORE_CONFLICT`, …) so the HTTP datastore driver can rebuild the same `DatastoreError`
 * on the client side; protocol errors use the codes below.
 */
import { CalicoError } from "../errors.js";
import { DatastoreError, DatastoreErrorCode } from "../datastore/types.js";

export const ApiErrorCode = {
  BAD_REQUEST: "BAD_REQUEST",
  UNAUTHORIZED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  NOT_FOUND: "NOT_FOUND",
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  UNAVAILABLE: "UNAVAILABLE",
  INTERNAL: "INTERNAL",
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

export class ApiError extends CalicoError {
  readonly status: number;
  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

export const badRequest = (message: string): ApiError => new ApiError(400, ApiErrorCode.BAD_REQUEST, message);

const DATASTORE_STATUS: Record<DatastoreErrorCode, number> = {
  [DatastoreErrorCode.NOT_FOUND]: 404,
  [DatastoreErrorCode.ALREADY_EXISTS]: 409,
  [DatastoreErrorCode.CONFLICT]: 409,
  [DatastoreErrorCode.REVISION_COMPACTED]: 410,
  [DatastoreErrorCode.INVALID_ARGUMENT]: 400,
  [DatastoreErrorCode.CLOSED]: 503,
  [DatastoreErrorCode.UNAVAILABLE]: 503,
  [DatastoreErrorCode.BAD_URL]: 500,
};

export const isDatastoreCode = (code: unknown): code is DatastoreErrorCode =>
  typeof code === "string" && Object.prototype.hasOwnProperty.call(DATASTORE_STATUS, code);

/** The status and body for any thrown value; unknown errors become a 500 that reveals nothing. */
export function errorResponse(err: unknown): { status: number; code: string; message: string; key?: string } {
  if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof DatastoreError) {
    const r = { status: DATASTORE_STATUS[err.code], code: err.code, message: err.message };
    return err.key !== undefined ? { ...r, key: err.key } : r;
  }
  if (err instanceof CalicoError && isDatastoreCode(err.code)) {
    return { status: DATASTORE_STATUS[err.code], code: err.code, message: err.message };
  }
  return { status: 500, code: ApiErrorCode.INTERNAL, message: "Internal error" };
}
