/**
 * Server-side dry run (`?dryRun=All`, what `kubectl diff` and `--dry-run=server` send): the
 * write is decoded, validated and defaulted exactly as a real one, checked against the current
 * object (exists / resourceVersion), and the would-be result returned; nothing is stored.
 * Cross-resource rules that ResourceStore checks on write (the policy's tier exists, pool
 * CIDRs do not overlap, immutable pool fields) are not evaluated here.
 */
import { randomUUID } from "node:crypto";
import { decodeResource } from "../../api/codec.js";
import type { AnyResource } from "../../api/resource.js";
import {
  ResourceError,
  ResourceErrorCode,
  isResourceNotFound,
  resourceId,
  type ResourceRef,
  type ResourceStore,
} from "../../datastore/resources.js";

export async function dryRunCreate(store: ResourceStore, input: unknown): Promise<AnyResource> {
  const { resource, kind } = decodeResource(input);
  const { name, namespace } = resource.metadata;
  try {
    await store.get(kind.kind, name, namespace);
    throw new ResourceError(
      ResourceErrorCode.ALREADY_EXISTS,
      `resource already exists: ${resourceId(kind.kind, name, namespace)}`,
    );
  } catch (err) {
    if (!isResourceNotFound(err)) throw err;
  }
  delete resource.metadata.resourceVersion;
  resource.metadata.uid = randomUUID();
  resource.metadata.creationTimestamp = new Date().toISOString();
  return resource;
}

export async function dryRunReplace(store: ResourceStore, input: unknown): Promise<AnyResource> {
  const { resource, kind } = decodeResource(input);
  const { name, namespace } = resource.metadata;
  const current = await store.get(kind.kind, name, namespace);
  const wanted = resource.metadata.resourceVersion;
  if (wanted !== undefined && wanted !== current.metadata.resourceVersion) {
    throw new ResourceError(
      ResourceErrorCode.CONFLICT,
      `update conflict: ${resourceId(kind.kind, name, namespace)} has changed (resourceVersion "${wanted}" given, current is "${current.metadata.resourceVersion ?? ""}")`,
    );
  }
  const md = resource.metadata;
  if (current.metadata.uid !== undefined) md.uid = current.metadata.uid;
  if (current.metadata.creationTimestamp !== undefined)
    md.creationTimestamp = current.metadata.creationTimestamp;
  if (current.metadata.resourceVersion !== undefined) md.resourceVersion = current.metadata.resourceVersion;
  return resource;
}

export async function dryRunDelete(
  store: ResourceStore,
  ref: ResourceRef & { resourceVersion?: string },
): Promise<AnyResource> {
  const current = await store.get(ref.kind, ref.name, ref.namespace);
  if (ref.resourceVersion !== undefined && ref.resourceVersion !== current.metadata.resourceVersion) {
    throw new ResourceError(
      ResourceErrorCode.CONFLICT,
      `delete conflict: ${resourceId(current.kind, ref.name, current.metadata.namespace)} has changed since resourceVersion "${ref.resourceVersion}"`,
    );
  }
  return current;
}
