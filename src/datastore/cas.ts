/**
 * The compare-and-swap rule every driver applies to update and delete (DESIGN.md §2): the key
 * must exist, and with an expected revision its modRevision must equal it. One place for the
 * rule and its error messages, whatever the driver's storage.
 */
import { DatastoreError, DatastoreErrorCode } from "./types.js";

/** The error to raise for `op` on `key`, or undefined when the write may go ahead. */
export function casError(
  key: string,
  op: string,
  currentModRevision: number | undefined,
  expectedRevision: number | undefined,
): DatastoreError | undefined {
  if (currentModRevision === undefined) {
    return new DatastoreError(DatastoreErrorCode.NOT_FOUND, `Cannot ${op} "${key}": it does not exist`, {
      key,
    });
  }
  if (expectedRevision !== undefined && currentModRevision !== expectedRevision) {
    return new DatastoreError(
      DatastoreErrorCode.CONFLICT,
      `Cannot ${op} "${key}": expected revision ${expectedRevision} but it is at ${currentModRevision}`,
      { key },
    );
  }
  return undefined;
}
