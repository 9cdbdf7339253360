/**
 * What every driver's watch shares: why a watch cannot start, and how a watch's one terminal
 * error reaches its handler.
 */
import { checkRevision } from "./key-range.js";
import { DatastoreError, DatastoreErrorCode, type WatchHandlers } from "./types.js";

/** The error a new watch must end with at once (store closed, bad revision), or undefined. */
export function watchStartError(
  closed: boolean,
  url: string,
  prefix: string,
  afterRevision: number,
): Error | undefined {
  if (closed) {
    return new DatastoreError(
      DatastoreErrorCode.CLOSED,
      `Cannot watch "${prefix}": datastore ${url} is closed`,
    );
  }
  try {
    checkRevision("watch revision", afterRevision);
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

/**
 * Deliver a watch's terminal error: now, or a microtask later (never inside the caller's
 * turn unless asked). A throwing error handler has nowhere further to report to.
 */
export function deliverWatchError(handlers: WatchHandlers, err: Error, now: boolean): void {
  const deliver = () => {
    try {
      handlers.onError(err);
    } catch {
      // nowhere further to report to
    }
  };
  if (now) deliver();
  else queueMicrotask(deliver);
}
