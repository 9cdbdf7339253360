/**
 * Datastore key layout, following Calico's etcd layout (reference/calico.md §1.2):
 * `/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>`.
 */
export const RESOURCE_PREFIX = "/calico/resources/v3/projectcalico.org/";

export interface ResourceKeyParts {
  plural: string;
  namespace?: string;
  name: string;
}

export function resourceKey(plural: string, name: string, namespace?: string): string {
  return namespace === undefined
    ? `${RESOURCE_PREFIX}${plural}/${name}`
    : `${RESOURCE_PREFIX}${plural}/${namespace}/${name}`;
}

/** The prefix listing every resource of a kind, or of one namespace of a namespaced kind. */
export function resourcePrefix(plural: string, namespace?: string): string {
  return namespace === undefined
    ? `${RESOURCE_PREFIX}${plural}/`
    : `${RESOURCE_PREFIX}${plural}/${namespace}/`;
}

export function parseResourceKey(key: string): ResourceKeyParts | undefined {
  if (!key.startsWith(RESOURCE_PREFIX)) return undefined;
  const parts = key.slice(RESOURCE_PREFIX.length).split("/");
  if (parts.length === 2 && parts[0] && parts[1]) return { plural: parts[0], name: parts[1] };
  if (parts.length === 3 && parts[0] && parts[1] && parts[2]) {
    return { plural: parts[0], namespace: parts[1], name: parts[2] };
  }
  return undefined;
}
