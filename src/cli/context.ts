/** What every command gets: output, the datastore client, and input loading. */
import { decodeInputs, type SourcedResource } from "../api/codec.js";
import type { KindDef } from "../api/kinds/kind.js";
import { findKind, KINDS } from "../api/registry.js";
import { resourceId, type ResourceStore } from "../datastore/resources.js";
import { readInputs } from "./input.js";
import { UsageError } from "./usage-error.js";

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
}

export interface CliContext {
  /** Print a line (a newline is added if missing). */
  out(text: string): void;
  err(text: string): void;
  /** The resource client; the datastore is opened on first use and closed by runCli. */
  store(): Promise<ResourceStore>;
  readStdin(): Promise<string>;
}

export const kindList = (): string =>
  KINDS.map((k) => `  ${k.kind.padEnd(32)} ${[k.plural, ...k.shortNames].join(", ")}`).join("\n");

/** A kind named on the command line (any case, plural or short name), or a usage error. */
export function kindArg(name: string): KindDef {
  const kind = findKind(name);
  if (kind === undefined)
    throw new UsageError(`Unknown resource type "${name}". Known types:\n${kindList()}`);
  return kind;
}

/**
 * Read and validate every document of every `-f` input before anything is written; apply
 * `-n` to namespaced resources that do not name a namespace.
 */
export async function loadResources(
  ctx: CliContext,
  filename: string,
  recursive: boolean,
  namespace?: string,
): Promise<SourcedResource[]> {
  const all = decodeInputs(await readInputs(filename, recursive, () => ctx.readStdin()));
  if (namespace === undefined) return all;
  for (const r of all) {
    if (!r.kind.namespaced) continue;
    const given = r.ref.namespace;
    if (given !== undefined && given !== "default" && given !== namespace) {
      throw new UsageError(
        `${resourceId(r.kind.kind, r.resource.metadata.name, given)} has namespace "${given}" but -n ${namespace} was given`,
      );
    }
    r.resource.metadata.namespace = namespace;
  }
  return all;
}
