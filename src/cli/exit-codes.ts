/**
 * calicoctl exit codes. Calico's own calicoctl exits 1 for every failure; we keep 0 and 1
 * where it has them and split the rest so scripts can tell a typo from a conflict.
 */
export const ExitCode = {
  /** Everything asked for was done. */
  OK: 0,
  /** A resource operation failed: not found, already exists, conflict, rejected by a cross-resource rule. */
  FAILED: 1,
  /** Bad command line: unknown command, option or kind; missing arguments. */
  USAGE: 2,
  /** The input (YAML/JSON, a resource, a patch or a selector) is invalid; nothing was written. */
  INVALID_INPUT: 3,
  /** The datastore could not be reached or its setting is malformed. */
  DATASTORE: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODE_HELP = `Exit codes:
  0  success
  1  a resource operation failed (not found, already exists, conflict, rejected)
  2  usage error (unknown command, option or kind; missing arguments)
  3  invalid input: YAML/JSON, resource validation, patch or label errors; nothing was written
  4  the datastore is unavailable or its setting (--datastore / CALICO_DATASTORE) is malformed`;
