/**
 * A selector that does not parse. `position` is the 0-based offset of the offending input;
 * the message names the 1-based column (STYLE.md: a selector error names the column).
 */
export class SelectorSyntaxError extends SyntaxError {
  /** Stable code, for callers that branch on codes across the project's errors. */
  readonly code = "SELECTOR_SYNTAX";
  readonly position: number;
  /** The selector text that failed (possibly long; the message truncates it). */
  readonly selector: string;

  constructor(message: string, position: number, selector = "") {
    super(message);
    this.name = "SelectorSyntaxError";
    this.position = position;
    this.selector = selector;
  }
}

export function isSelectorSyntaxError(err: unknown): err is SelectorSyntaxError {
  return err instanceof SelectorSyntaxError;
}

const MAX_QUOTED = 120;

/** Builds the error: `<what> at column <n> in selector '<text>'`. */
export function syntaxError(what: string, position: number, selector: string): SelectorSyntaxError {
  const shown = selector.length > MAX_QUOTED ? `${selector.slice(0, MAX_QUOTED)}…` : selector;
  return new SelectorSyntaxError(
    `${what} at column ${position + 1} in selector '${escapeControls(shown)}'`,
    position,
    selector,
  );
}

/** Keeps messages on one line: control characters are shown as JSON escapes (`\n`). */
export function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
}
