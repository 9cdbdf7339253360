/**
 * Tolerant readers for datastore values. The datastore validates and defaults what it stores,
 * but the calculation must never throw on a value it does not understand: anything
 * unreadable is treated as absent (Felix's ValidationFilter turns invalid values into nil).
 */
import { RESOURCE_PREFIX } from "../datastore/keys.js";

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

export const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;

export const bool = (v: unknown): boolean => v === true;

export const obj = (v: unknown): Obj => (isObj(v) ? v : {});

/** The strings of an array (non-strings dropped); [] when not an array. */
export const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

export const objects = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

/** A label map: string values only. */
export function labelsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(v)) return out;
  for (const [k, x] of Object.entries(v)) if (typeof x === "string") out[k] = x;
  return out;
}

/** What a key names: a v3 resource, an IPAM block, or something the calculation ignores. */
export type KeyInfo =
  | { type: "resource"; plural: string; namespace?: string; name: string }
  | { type: "block"; key: string }
  | { type: "other" };

const BLOCK_KEY = /^\/calico\/ipam\/v2\/assignment\/ipv[46]\/block\/[^/]+$/;

export function classifyKey(key: string): KeyInfo {
  if (key.startsWith(RESOURCE_PREFIX)) {
    const parts = key.slice(RESOURCE_PREFIX.length).split("/");
    if (parts.length === 2 && parts[0] && parts[1])
      return { type: "resource", plural: parts[0], name: parts[1] };
    if (parts.length === 3 && parts[0] && parts[1] && parts[2]) {
      return { type: "resource", plural: parts[0], namespace: parts[1], name: parts[2] };
    }
    return { type: "other" };
  }
  if (BLOCK_KEY.test(key)) return { type: "block", key };
  return { type: "other" };
}

/** The spec of a resource value, or undefined when the value is not a resource object. */
export function specOf(value: unknown): Obj | undefined {
  if (!isObj(value)) return undefined;
  if (value.spec === undefined) return {};
  return isObj(value.spec) ? value.spec : undefined;
}

export const metadataOf = (value: unknown): Obj => (isObj(value) ? obj(value.metadata) : {});
