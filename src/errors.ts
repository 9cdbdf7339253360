/**
 * The base of every error calico-ts raises on purpose. Callers branch on `code` (or the
 * predicates each component exports), never on message text (STYLE.md, Errors).
 */
export class CalicoError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export function hasCode(err: unknown, code: string): boolean {
  return err instanceof CalicoError && err.code === code;
}
