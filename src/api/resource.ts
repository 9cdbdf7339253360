/**
 * The shape every `projectcalico.org/v3` resource shares: Kubernetes-style metadata plus a
 * kind-specific spec. Kind-specific spec types live in `src/api/kinds/`.
 */
export const API_GROUP = "projectcalico.org";
export const API_VERSION = "projectcalico.org/v3";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The datastore revision of the last write, as a decimal string (Kubernetes convention). */
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
  generateName?: string;
}

export interface Resource<K extends string = string, S = Record<string, unknown>> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  status?: Record<string, unknown>;
}

/** Any v3 resource whose spec is not yet known to be of a particular kind. */
export type AnyResource = Resource<string, Record<string, unknown>>;
