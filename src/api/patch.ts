/**
 * Patches for `calicoctl patch`: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).
 * Kubernetes' "strategic" merge needs per-field schema knowledge Calico's CLI does not use
 * for its own resources; we treat it as a merge patch, which is what it reduces to for maps.
 */
import { CalicoError } from "../errors.js";

export class PatchError extends CalicoError {
  constructor(message: string) {
    super("PATCH_INVALID", message);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** RFC 7386 §2: objects merge recursively, `null` deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

interface Op {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

/** RFC 6901 JSON pointer → tokens. */
function pointer(path: string, where: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/"))
    throw new PatchError(`${where}: path ${JSON.stringify(path)} must start with "/"`);
  return path
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc: unknown, tokens: string[], where: string): { parent: unknown; last: string } {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObj(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`${where}: path does not exist`);
  }
  return { parent: cur, last: tokens[tokens.length - 1] ?? "" };
}

function arrayIndex(arr: unknown[], token: string, forInsert: boolean, where: string): number {
  if (forInsert && token === "-") return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(token))
    throw new PatchError(`${where}: bad array index ${JSON.stringify(token)}`);
  const i = Number(token);
  if (i > arr.length || (!forInsert && i === arr.length))
    throw new PatchError(`${where}: index ${i} out of range`);
  return i;
}

function getAt(doc: unknown, tokens: string[], where: string): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false, where)];
    else if (isObj(cur) && t in cur) cur = cur[t];
    else throw new PatchError(`${where}: path does not exist`);
  }
  return cur;
}

function remove(doc: unknown, tokens: string[], where: string): unknown {
  if (tokens.length === 0) throw new PatchError(`${where}: cannot remove the whole document`);
  const { parent, last } = parentOf(doc, tokens, where);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, last, false, where), 1)[0];
  if (isObj(parent) && last in parent) {
    const v = parent[last];
    delete parent[last];
    return v;
  }
  throw new PatchError(`${where}: path does not exist`);
}

function add(doc: unknown, tokens: string[], value: unknown, where: string): unknown {
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens, where);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true, where), 0, value);
  else if (isObj(parent)) parent[last] = value;
  else throw new PatchError(`${where}: parent is not an object or array`);
  return doc;
}

/** Apply an RFC 6902 patch to a copy of `doc`. Errors name the failing operation's index. */
export function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError("a JSON patch must be an array of operations");
  let out = structuredClone(doc);
  ops.forEach((raw, i) => {
    const where = `operation ${i}`;
    if (!isObj(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") {
      throw new PatchError(`${where}: must be an object with "op" and "path"`);
    }
    const op = raw as unknown as Op;
    const tokens = pointer(op.path, where);
    switch (op.op) {
      case "add":
        out = add(out, tokens, structuredClone(op.value), where);
        break;
      case "remove":
        remove(out, tokens, where);
        break;
      case "replace":
        getAt(out, tokens, where);
        if (tokens.length === 0) out = structuredClone(op.value);
        else {
          remove(out, tokens, where);
          out = add(out, tokens, structuredClone(op.value), where);
        }
        break;
      case "move":
      case "copy": {
        if (typeof op.from !== "string") throw new PatchError(`${where}: "${op.op}" needs "from"`);
        const fromTokens = pointer(op.from, where);
        const v =
          op.op === "move" ? remove(out, fromTokens, where) : structuredClone(getAt(out, fromTokens, where));
        out = add(out, tokens, v, where);
        break;
      }
      case "test":
        if (JSON.stringify(getAt(out, tokens, where)) !== JSON.stringify(op.value)) {
          throw new PatchError(`${where}: test failed at ${op.path}`);
        }
        break;
      default:
        throw new PatchError(
          `${where}: unknown op ${JSON.stringify(op.op)}; allowed: add, remove, replace, move, copy, test`,
        );
    }
  });
  return out;
}
