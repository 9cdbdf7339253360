import { CalicoError } from "../errors.js";

/** A bad command line; exits with ExitCode.USAGE. */
export class UsageError extends CalicoError {
  constructor(message: string) {
    super("CLI_USAGE", message);
  }
}
