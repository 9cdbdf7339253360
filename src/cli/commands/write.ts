/** create, apply, replace, delete, validate: writes from files (and delete by name). */
import type { Command } from "commander";
import type { SourcedResource } from "../../api/codec.js";
import type { AnyResource } from "../../api/resource.js";
import {
  isResourceExists,
  isResourceNotFound,
  resourceId,
  type ResourceStore,
} from "../../datastore/resources.js";
import { kindArg, loadResources, type CliContext } from "../context.js";
import { WriteError } from "../errors.js";
import { UsageError } from "../usage-error.js";

type WriteAction = "create" | "apply" | "replace" | "delete";

const PAST: Record<WriteAction, string> = {
  create: "created",
  apply: "applied",
  replace: "replaced",
  delete: "deleted",
};

interface FileOpts {
  filename?: string;
  recursive?: boolean;
  namespace?: string;
  skipExists?: boolean;
  skipNotExists?: boolean;
  skipEmpty?: boolean;
}

/** "1 'IPPool' resource(s)" when all share a kind, "3 resource(s)" otherwise (calicoctl's wording). */
export function countPhrase(resources: readonly { kind: string }[]): string {
  const kinds = new Set(resources.map((r) => r.kind));
  const [only] = kinds;
  return kinds.size === 1 && only !== undefined
    ? `${resources.length} '${only}' resource(s)`
    : `${resources.length} resource(s)`;
}

function describeItem(item: SourcedResource): string {
  const md = item.resource.metadata;
  const id = resourceId(item.kind.kind, md.name, item.kind.namespaced ? md.namespace : undefined);
  const where = [item.ref.source, item.ref.index !== undefined ? `document ${item.ref.index}` : undefined]
    .filter((x) => x !== undefined)
    .join(" ");
  return where === "" ? id : `${id} (${where})`;
}

function writeOne(store: ResourceStore, action: WriteAction, r: AnyResource): Promise<AnyResource> {
  switch (action) {
    case "create":
      return store.create(r);
    case "apply":
      return store.apply(r).then((x) => x.resource);
    case "replace":
      return store.replace(r);
    case "delete": {
      const md = r.metadata;
      return store.delete({
        kind: r.kind,
        name: md.name,
        ...(md.namespace !== undefined ? { namespace: md.namespace } : {}),
        ...(md.resourceVersion !== undefined ? { resourceVersion: md.resourceVersion } : {}),
      });
    }
  }
}

/** Validate everything first, then write in order, stopping at the first failure as calicoctl does. */
async function writeFromFile(ctx: CliContext, action: WriteAction, o: FileOpts & { filename: string }) {
  const items = await loadResources(ctx, o.filename, o.recursive === true, o.namespace);
  if (items.length === 0) {
    if (o.skipEmpty === true) return;
    throw new UsageError(`No resources specified in "${o.filename}"`);
  }
  const store = await ctx.store();
  const done: AnyResource[] = [];
  let skipped = 0;
  for (const item of items) {
    try {
      done.push(await writeOne(store, action, item.resource));
    } catch (e) {
      if (
        (action === "create" && o.skipExists === true && isResourceExists(e)) ||
        (action === "delete" && o.skipNotExists === true && isResourceNotFound(e))
      ) {
        skipped++;
        continue;
      }
      if (done.length > 0) {
        ctx.err(
          `Partial success: ${PAST[action]} the first ${done.length} out of ${items.length} resources:`,
        );
      }
      throw new WriteError(e, `Failed to ${action} ${describeItem(item)}`);
    }
  }
  const skippedNote =
    skipped > 0 ? ` (${skipped} skipped: ${action === "create" ? "already exist" : "do not exist"})` : "";
  ctx.out(`Successfully ${PAST[action]} ${countPhrase(done)}${skippedNote}`);
}

function fileOptions(cmd: Command, verb: string): Command {
  return cmd
    .option("-f, --filename <path>", `file, directory or "-" (stdin) with the resources to ${verb}`)
    .option("-R, --recursive", "process the directory given with -f recursively")
    .option("-n, --namespace <ns>", "namespace for namespaced resources that do not name one")
    .option("--skip-empty", "do not fail when the input holds no resources");
}

const DESCRIPTIONS = {
  create: "Create resources from a file; fails for a resource that already exists",
  apply: "Create or replace resources from a file",
  replace: "Replace existing resources from a file; fails for a resource that does not exist",
} as const;

export function registerWriteCommands(program: Command, ctx: CliContext): void {
  for (const action of ["create", "apply", "replace"] as const) {
    const cmd = fileOptions(program.command(action).description(DESCRIPTIONS[action]), action);
    if (action === "create")
      cmd.option("--skip-exists", "skip resources that already exist instead of failing");
    cmd.action(async (o: FileOpts) => {
      if (o.filename === undefined) throw new UsageError(`${action}: -f/--filename is required`);
      await writeFromFile(ctx, action, { ...o, filename: o.filename });
    });
  }

  fileOptions(
    program
      .command("delete")
      .description("Delete resources named in a file (-f) or by KIND NAME...")
      .argument("[kind]", "resource kind (when not using -f)")
      .argument("[names...]", "resource names")
      .option("-s, --skip-not-exists", "do not fail for resources that do not exist"),
    "delete",
  ).action(async (kindName: string | undefined, names: string[], o: FileOpts) => {
    if (o.filename !== undefined) {
      if (kindName !== undefined) throw new UsageError("delete: give either -f or KIND NAME..., not both");
      await writeFromFile(ctx, "delete", { ...o, filename: o.filename });
      return;
    }
    if (kindName === undefined || names.length === 0) {
      throw new UsageError("delete: give -f <file> or a KIND and at least one NAME");
    }
    const kind = kindArg(kindName);
    const store = await ctx.store();
    let deleted = 0;
    for (const name of names) {
      try {
        await store.delete({
          kind: kind.kind,
          name,
          ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
        });
        deleted++;
      } catch (e) {
        if (o.skipNotExists === true && isResourceNotFound(e)) continue;
        if (deleted > 0)
          ctx.err(`Partial success: deleted the first ${deleted} out of ${names.length} resources:`);
        throw e;
      }
    }
    ctx.out(`Successfully deleted ${deleted} '${kind.kind}' resource(s)`);
  });

  program
    .command("validate")
    .description("Validate resources in a file without writing them")
    .option("-f, --filename <path>", 'file, directory or "-" (stdin)')
    .option("-R, --recursive", "process the directory recursively")
    .action(async (o: { filename?: string; recursive?: boolean }) => {
      if (o.filename === undefined) throw new UsageError("validate: -f/--filename is required");
      const items = await loadResources(ctx, o.filename, o.recursive === true);
      ctx.out(`Successfully validated ${countPhrase(items.map((i) => i.resource))}`);
    });
}
