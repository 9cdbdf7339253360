/**
 * calico-ts as a library: the selector language, the v3 resource types and validators, the
 * YAML/JSON codec, and the datastore client. The executables (`calicoctl`, …) sit on top of
 * exactly these.
 */
export {
  parseSelector,
  selectorUniqueId,
  canonicaliseSelector,
  SelectorSyntaxError,
  isSelectorSyntaxError,
  LabelIndex,
  type Selector,
  type SelectorNode,
} from "./selector/index.js";

export { API_VERSION, API_GROUP, type AnyResource, type ObjectMeta, type Resource } from "./api/resource.js";
export {
  ValidationError,
  isValidationError,
  describeDocument,
  formatIssue,
  type DocumentRef,
  type ValidationIssue,
} from "./api/validation.js";
export {
  decodeResource,
  decodeResources,
  InputError,
  isInputError,
  type SourcedResource,
} from "./api/codec.js";
export { KINDS, findKind, kindNames } from "./api/registry.js";
export type { KindDef } from "./api/kinds/kind.js";
export { convertK8sNetworkPolicy } from "./api/k8s-network-policy.js";
export { mergePatch, jsonPatch, PatchError } from "./api/patch.js";
export { parseIP, parseCIDR, formatIP, formatCIDR, type CIDR, type IPAddr } from "./api/net.js";

export * from "./datastore/index.js";
export {
  ResourceStore,
  ResourceError,
  isResourceNotFound,
  isResourceExists,
  isResourceConflict,
  resourceId,
} from "./datastore/resources.js";
export { resourceKey, resourcePrefix, parseResourceKey } from "./datastore/keys.js";

export { CalicoError } from "./errors.js";
export { CALICO_TS_VERSION } from "./version.js";

export { ApiServer } from "./apiserver/server.js";
export { WatchCache } from "./apiserver/watch-cache.js";
export { type AuthInfo } from "./apiserver/auth.js";
