// Placeholder until the selector parser lands: the real module replaces this file.
export class SelectorSyntaxError extends SyntaxError {
  readonly position: number;
  constructor(message: string, position: number) {
    super(message);
    this.position = position;
  }
}
export interface Selector {
  evaluate(labels: Readonly<Record<string, string>>): boolean;
  toString(): string;
}
export function parseSelector(expression: string): Selector {
  throw new SelectorSyntaxError(`not implemented: ${expression}`, 0);
}
