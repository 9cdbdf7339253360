/** Mapping failures to calicoctl's exit codes and messages. */
import { isInputError } from "../api/codec.js";
import { PatchError } from "../api/patch.js";
import { isValidationError } from "../api/validation.js";
import { ResourceError } from "../datastore/resources.js";
import { DatastoreError } from "../datastore/types.js";
import { ExitCode } from "./exit-codes.js";
import { UsageError } from "./usage-error.js";

/** A failed write of one resource out of several, naming that resource in front. */
export class WriteError extends Error {
  constructor(
    readonly original: unknown,
    prefix: string,
  ) {
    super(`${prefix}: ${original instanceof Error ? original.message : String(original)}`);
  }
}

/**
 * A command that ran another program in the foreground (`lab exec`) exits with that program's
 * status; nothing is printed, the program has already said why.
 */
export class ChildExitStatus extends Error {
  constructor(
    readonly status: number,
    what: string,
  ) {
    super(`${what} exited with status ${status}`);
  }
}

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof WriteError) return exitCodeFor(err.original);
  if (err instanceof UsageError) return ExitCode.USAGE;
  if (isValidationError(err) || isInputError(err) || err instanceof PatchError) return ExitCode.INVALID_INPUT;
  if (err instanceof DatastoreError) {
    return err.code === "DATASTORE_BAD_URL" ||
      err.code === "DATASTORE_UNAVAILABLE" ||
      err.code === "DATASTORE_CLOSED"
      ? ExitCode.DATASTORE
      : ExitCode.FAILED;
  }
  if (err instanceof ResourceError)
    return err.code === "RESOURCE_UNKNOWN_KIND" ? ExitCode.USAGE : ExitCode.FAILED;
  return ExitCode.FAILED;
}

export function formatError(err: unknown): string {
  return `Error: ${err instanceof Error ? err.message : String(err)}`;
}
