/**
 * Calico's label-selector language: parser, canonical form, compiled evaluation, unique IDs
 * (reference/calico.md §3), and the incremental label index the policy calculation uses (§1.4).
 */
export type {
  AllNode,
  AndNode,
  GlobalNode,
  HasNode,
  LabelSetNode,
  LabelSetOp,
  LabelValueNode,
  LabelValueOp,
  NotNode,
  OrNode,
  SelectorNode,
  SelectorNodeKind,
} from "./ast.js";
export { canonicalString, compareUtf8, normaliseSet, referencedLabels } from "./ast.js";
export type { Labels, Predicate } from "./compile.js";
export { SelectorSyntaxError, isSelectorSyntaxError } from "./errors.js";
export { MAX_NESTING, MAX_SELECTOR_LENGTH } from "./parser.js";
export { MAX_LABEL_LENGTH } from "./tokenizer.js";
export {
  calicoHashId,
  canonicaliseSelector,
  parseSelector,
  parseSelectorUncached,
  selectorFromNode,
  selectorUniqueId,
  type Selector,
} from "./selector.js";
export { LabelIndex, type LabelIndexCallbacks, type LabelIndexStats } from "./label-index.js";
export { anchorsOf, type Anchor } from "./anchors.js";
