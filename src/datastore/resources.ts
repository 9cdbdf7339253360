/**
 * The typed v3 resource client over any Datastore: what calicoctl, the CNI plugin and the
 * API server use to read and write resources. Every write validates and defaults the
 * resource first (an invalid resource is never stored), keeps server-owned metadata (uid,
 * creationTimestamp), and maps the datastore's revision to `metadata.resourceVersion`, so a
 * caller that supplies a resourceVersion gets compare-and-swap.
 */
import { randomUUID } from "node:crypto";
import { CalicoError, hasCode } from "../errors.js";
import { decodeResource } from "../api/codec.js";
import { findKind } from "../api/registry.js";
import type { KindDef } from "../api/kinds/kind.js";
import { parseCIDR, cidrsOverlap } from "../api/net.js";
import { API_VERSION, type AnyResource } from "../api/resource.js";
import {
  DatastoreError,
  DatastoreErrorCode,
  isAlreadyExists,
  isConflict,
  isNotFound,
  type Datastore,
  type KV,
} from "./types.js";
import { resourceKey, resourcePrefix } from "./keys.js";
import { CALICO_TS_VERSION } from "../version.js";
import { DEFAULT_TIER } from "../api/kinds/tier.js";
import { DEFAULT_TIER_NAME } from "../api/kinds/network-policy.js";

export const ResourceErrorCode = {
  NOT_FOUND: "RESOURCE_NOT_FOUND",
  ALREADY_EXISTS: "RESOURCE_ALREADY_EXISTS",
  CONFLICT: "RESOURCE_CONFLICT",
  REJECTED: "RESOURCE_REJECTED",
  UNKNOWN_KIND: "RESOURCE_UNKNOWN_KIND",
} as const;
export type ResourceErrorCode = (typeof ResourceErrorCode)[keyof typeof ResourceErrorCode];

export class ResourceError extends CalicoError {
  declare readonly code: ResourceErrorCode;
}

export const isResourceNotFound = (e: unknown): boolean => hasCode(e, ResourceErrorCode.NOT_FOUND);
export const isResourceExists = (e: unknown): boolean => hasCode(e, ResourceErrorCode.ALREADY_EXISTS);
export const isResourceConflict = (e: unknown): boolean => hasCode(e, ResourceErrorCode.CONFLICT);

/** `NetworkPolicy(prod/allow-db)`, the way calicoctl names a resource in messages. */
export function resourceId(kind: string, name: string, namespace?: string): string {
  return `${kind}(${namespace !== undefined ? `${namespace}/` : ""}${name})`;
}

export interface ResourceRef {
  kind: string;
  name: string;
  namespace?: string;
}

const POLICY_KINDS_WITH_TIER = new Set([
  "NetworkPolicy",
  "GlobalNetworkPolicy",
  "StagedNetworkPolicy",
  "StagedGlobalNetworkPolicy",
]);
const MAX_CAS_RETRIES = 20;

export class ResourceStore {
  private builtinsChecked = false;

  constructor(readonly datastore: Datastore) {}

  kindOf(name: string): KindDef {
    const kind = findKind(name);
    if (kind === undefined) {
      throw new ResourceError(ResourceErrorCode.UNKNOWN_KIND, `Unknown resource type "${name}"`);
    }
    return kind;
  }

  private keyOf(kind: KindDef, name: string, namespace: string | undefined): string {
    return resourceKey(kind.plural, name, kind.namespaced ? (namespace ?? "default") : undefined);
  }

  private fromKV(kind: KindDef, kv: KV): AnyResource {
    const stored = JSON.parse(kv.value) as AnyResource;
    return {
      apiVersion: API_VERSION,
      kind: kind.kind,
      metadata: { ...stored.metadata, resourceVersion: String(kv.modRevision) },
      spec: stored.spec,
      ...(stored.status !== undefined ? { status: stored.status } : {}),
    };
  }

  private toStored(res: AnyResource): string {
    const metadata = { ...res.metadata };
    delete metadata.resourceVersion;
    return JSON.stringify({
      apiVersion: API_VERSION,
      kind: res.kind,
      metadata,
      spec: res.spec,
      status: res.status,
    });
  }

  private idOf(kind: KindDef, res: { metadata: { name: string; namespace?: string } }): string {
    return resourceId(kind.kind, res.metadata.name, kind.namespaced ? res.metadata.namespace : undefined);
  }

  /** Validate + default (throws ValidationError); then cross-resource rules. */
  private async prepare(input: unknown): Promise<{ kind: KindDef; res: AnyResource }> {
    const { resource, kind } = decodeResource(input);
    await this.ensureBuiltins();
    await this.checkReferences(kind, resource);
    return { kind, res: resource };
  }

  /** The built-in default tier and ClusterInformation exist in every initialised store. */
  async ensureBuiltins(): Promise<void> {
    if (this.builtinsChecked) return;
    const builtins: AnyResource[] = [
      structuredClone(DEFAULT_TIER) as unknown as AnyResource,
      {
        apiVersion: API_VERSION,
        kind: "ClusterInformation",
        metadata: { name: "default" },
        spec: {
          clusterGUID: randomUUID().replace(/-/g, ""),
          clusterType: "calico-ts",
          calicoVersion: `v${CALICO_TS_VERSION}`,
          datastoreReady: true,
        },
      },
    ];
    for (const b of builtins) {
      const kind = findKind(b.kind);
      if (kind === undefined) continue; // kind not registered (yet): nothing to create
      const key = this.keyOf(kind, b.metadata.name, undefined);
      if ((await this.datastore.get(key)) !== undefined) continue;
      const { resource } = decodeResource(b);
      resource.metadata.uid = randomUUID();
      resource.metadata.creationTimestamp = new Date().toISOString();
      try {
        await this.datastore.create(key, this.toStored(resource));
      } catch (err) {
        if (!isAlreadyExists(err)) throw err; // another process created it first: fine
      }
    }
    this.builtinsChecked = true;
  }

  private async checkReferences(kind: KindDef, res: AnyResource): Promise<void> {
    if (POLICY_KINDS_WITH_TIER.has(kind.kind)) {
      const tier = typeof res.spec.tier === "string" ? res.spec.tier : DEFAULT_TIER_NAME;
      if (tier !== DEFAULT_TIER_NAME) {
        const tierKind = this.kindOf("Tier");
        if ((await this.datastore.get(this.keyOf(tierKind, tier, undefined))) === undefined) {
          throw new ResourceError(
            ResourceErrorCode.REJECTED,
            `Cannot write ${this.idOf(kind, res)}: tier "${tier}" does not exist (create the Tier first)`,
          );
        }
      }
    }
    if (kind.kind === "IPPool" && typeof res.spec.cidr === "string") {
      const mine = parseCIDR(res.spec.cidr);
      if (mine === undefined) return;
      const { items } = await this.datastore.list(resourcePrefix(kind.plural));
      for (const kv of items) {
        const other = this.fromKV(kind, kv);
        if (other.metadata.name === res.metadata.name || typeof other.spec.cidr !== "string") continue;
        const theirs = parseCIDR(other.spec.cidr);
        if (theirs !== undefined && cidrsOverlap(mine, theirs)) {
          throw new ResourceError(
            ResourceErrorCode.REJECTED,
            `Cannot write ${this.idOf(kind, res)}: CIDR ${res.spec.cidr} overlaps with IPPool(${other.metadata.name}) CIDR ${other.spec.cidr}`,
          );
        }
      }
    }
  }

  /** Fields that may not change once written (reference/calico.md §2.1). */
  private checkImmutable(kind: KindDef, before: AnyResource, after: AnyResource): void {
    if (kind.kind !== "IPPool") return;
    for (const field of ["cidr", "blockSize"] as const) {
      if (JSON.stringify(before.spec[field]) !== JSON.stringify(after.spec[field])) {
        throw new ResourceError(
          ResourceErrorCode.REJECTED,
          `Cannot update ${this.idOf(kind, after)}: spec.${field} may not be changed (is ${JSON.stringify(before.spec[field])}, requested ${JSON.stringify(after.spec[field])}); delete and re-create the pool`,
        );
      }
    }
  }

  async create(input: unknown): Promise<AnyResource> {
    const { kind, res } = await this.prepare(input);
    res.metadata.uid = randomUUID();
    res.metadata.creationTimestamp = new Date().toISOString();
    const key = this.keyOf(kind, res.metadata.name, res.metadata.namespace);
    try {
      return this.fromKV(kind, await this.datastore.create(key, this.toStored(res)));
    } catch (err) {
      if (isAlreadyExists(err)) {
        throw new ResourceError(
          ResourceErrorCode.ALREADY_EXISTS,
          `resource already exists: ${this.idOf(kind, res)}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * Replace an existing resource. With `metadata.resourceVersion` set, only if it is still
   * current (compare-and-swap); without, against whatever is current.
   */
  async replace(input: unknown): Promise<AnyResource> {
    const { kind, res } = await this.prepare(input);
    const key = this.keyOf(kind, res.metadata.name, res.metadata.namespace);
    const wanted = res.metadata.resourceVersion;
    for (let attempt = 0; ; attempt++) {
      const current = await this.datastore.get(key);
      if (current === undefined) {
        throw new ResourceError(
          ResourceErrorCode.NOT_FOUND,
          `resource does not exist: ${this.idOf(kind, res)}`,
        );
      }
      if (wanted !== undefined && wanted !== String(current.modRevision)) {
        throw new ResourceError(
          ResourceErrorCode.CONFLICT,
          `update conflict: ${this.idOf(kind, res)} has changed (resourceVersion "${wanted}" given, current is "${current.modRevision}"); get it again and retry`,
        );
      }
      const before = this.fromKV(kind, current);
      this.checkImmutable(kind, before, res);
      const next: AnyResource = {
        ...res,
        metadata: {
          ...res.metadata,
          ...(before.metadata.uid !== undefined ? { uid: before.metadata.uid } : {}),
          ...(before.metadata.creationTimestamp !== undefined
            ? { creationTimestamp: before.metadata.creationTimestamp }
            : {}),
        },
      };
      try {
        return this.fromKV(kind, await this.datastore.update(key, this.toStored(next), current.modRevision));
      } catch (err) {
        // A concurrent writer won the race. Retry only when the caller did not pin a version.
        if ((isConflict(err) || isNotFound(err)) && wanted === undefined && attempt < MAX_CAS_RETRIES)
          continue;
        if (isConflict(err)) {
          throw new ResourceError(ResourceErrorCode.CONFLICT, `update conflict: ${this.idOf(kind, res)}`, {
            cause: err,
          });
        }
        throw err;
      }
    }
  }

  /** Create or replace (calicoctl apply). */
  async apply(input: unknown): Promise<{ resource: AnyResource; created: boolean }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return { resource: await this.replace(input), created: false };
      } catch (err) {
        if (!isResourceNotFound(err)) throw err;
      }
      try {
        return { resource: await this.create(input), created: true };
      } catch (err) {
        // Created concurrently between our replace and create: go round again.
        if (!isResourceExists(err) || attempt >= MAX_CAS_RETRIES) throw err;
      }
    }
  }

  /**
   * Read-modify-write (patch, label): `change` gets the current resource and returns the new
   * one, which is validated like any write; retried on a concurrent change.
   */
  async update(
    kindName: string,
    name: string,
    namespace: string | undefined,
    change: (current: AnyResource) => unknown,
  ): Promise<AnyResource> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(kindName, name, namespace);
      const next = change(structuredClone(current));
      try {
        return await this.replace(next);
      } catch (err) {
        if (isResourceConflict(err) && attempt < MAX_CAS_RETRIES) continue;
        throw err;
      }
    }
  }

  async get(kindName: string, name: string, namespace?: string): Promise<AnyResource> {
    const kind = this.kindOf(kindName);
    const kv = await this.datastore.get(this.keyOf(kind, name, namespace));
    if (kv === undefined) {
      throw new ResourceError(
        ResourceErrorCode.NOT_FOUND,
        `resource does not exist: ${resourceId(kind.kind, name, kind.namespaced ? (namespace ?? "default") : undefined)}`,
      );
    }
    return this.fromKV(kind, kv);
  }

  /** All resources of a kind; for namespaced kinds, of one namespace unless `namespace` is undefined. */
  async list(kindName: string, namespace?: string): Promise<{ items: AnyResource[]; revision: number }> {
    const kind = this.kindOf(kindName);
    const { items, revision } = await this.datastore.list(
      resourcePrefix(kind.plural, kind.namespaced ? namespace : undefined),
    );
    return { items: items.map((kv) => this.fromKV(kind, kv)), revision };
  }

  async delete(ref: ResourceRef & { resourceVersion?: string }): Promise<AnyResource> {
    const kind = this.kindOf(ref.kind);
    const namespace = kind.namespaced ? (ref.namespace ?? "default") : undefined;
    const id = resourceId(kind.kind, ref.name, namespace);
    if (kind.kind === "Tier") await this.checkTierDeletable(ref.name);
    const key = this.keyOf(kind, ref.name, namespace);
    if (ref.resourceVersion !== undefined && !/^\d{1,15}$/.test(ref.resourceVersion)) {
      throw new DatastoreError(
        DatastoreErrorCode.INVALID_ARGUMENT,
        `Cannot delete ${id}: resourceVersion ${JSON.stringify(ref.resourceVersion)} is not a revision number`,
      );
    }
    const expected = ref.resourceVersion !== undefined ? Number(ref.resourceVersion) : undefined;
    try {
      const prev = await this.datastore.delete(key, expected);
      return this.fromKV(kind, prev);
    } catch (err) {
      if (isNotFound(err)) {
        throw new ResourceError(ResourceErrorCode.NOT_FOUND, `resource does not exist: ${id}`, {
          cause: err,
        });
      }
      if (isConflict(err)) {
        throw new ResourceError(
          ResourceErrorCode.CONFLICT,
          `delete conflict: ${id} has changed since resourceVersion "${ref.resourceVersion ?? ""}"`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  private async checkTierDeletable(name: string): Promise<void> {
    if (name === DEFAULT_TIER_NAME) {
      throw new ResourceError(ResourceErrorCode.REJECTED, `Cannot delete Tier(default): it is built in`);
    }
    for (const policyKind of POLICY_KINDS_WITH_TIER) {
      const kind = findKind(policyKind);
      if (kind === undefined) continue;
      const { items } = await this.datastore.list(resourcePrefix(kind.plural));
      const inTier = items.map((kv) => this.fromKV(kind, kv)).find((p) => p.spec.tier === name);
      if (inTier !== undefined) {
        throw new ResourceError(
          ResourceErrorCode.REJECTED,
          `Cannot delete Tier(${name}): it still contains ${this.idOf(kind, inTier)}; delete its policies first`,
        );
      }
    }
  }
}
