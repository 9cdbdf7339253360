/** patch and label: read-modify-write of one resource, validated like any write. */
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { labelKeyProblem, labelValueProblem } from "../../api/check.js";
import type { KindDef } from "../../api/kinds/kind.js";
import { jsonPatch, mergePatch, PatchError } from "../../api/patch.js";
import type { AnyResource } from "../../api/resource.js";
import { resourceId } from "../../datastore/resources.js";
import { kindArg, type CliContext } from "../context.js";
import { UsageError } from "../usage-error.js";

/** Kind, name and namespace may not be changed by a patch. */
function checkIdentity(kind: KindDef, before: AnyResource, after: unknown): AnyResource {
  const a = after as AnyResource;
  if (
    typeof a !== "object" ||
    a === null ||
    a.kind !== before.kind ||
    a.metadata?.name !== before.metadata.name ||
    (kind.namespaced && a.metadata.namespace !== before.metadata.namespace)
  ) {
    throw new PatchError("a patch may not change kind, metadata.name or metadata.namespace");
  }
  return a;
}

export function registerPatchCommands(program: Command, ctx: CliContext): void {
  program
    .command("patch")
    .description("Patch a resource with a JSON merge patch (default) or a JSON patch")
    .argument("<kind>", "resource kind")
    .argument("<name>", "resource name")
    .requiredOption("-p, --patch <json>", "the patch, as JSON (or YAML)")
    .option("-t, --type <type>", "merge | json | strategic (treated as merge)", "strategic")
    .option("-n, --namespace <ns>", "namespace (namespaced kinds)")
    .action(
      async (kindName: string, name: string, o: { patch: string; type: string; namespace?: string }) => {
        const kind = kindArg(kindName);
        if (!["merge", "json", "strategic"].includes(o.type)) {
          throw new UsageError(`patch: unknown --type "${o.type}"; use merge, json or strategic`);
        }
        let patch: unknown;
        try {
          patch = parseYaml(o.patch);
        } catch (e) {
          throw new PatchError(`patch is not valid JSON/YAML: ${(e as Error).message}`);
        }
        const store = await ctx.store();
        await store.update(kind.kind, name, o.namespace, (current) => {
          const next = o.type === "json" ? jsonPatch(current, patch) : mergePatch(current, patch);
          return checkIdentity(kind, current, next);
        });
        ctx.out(`Successfully patched 1 '${kind.kind}' resource`);
      },
    );

  program
    .command("label")
    .description("Add, change or remove a label on a resource")
    .argument("<kind>", "resource kind")
    .argument("<name>", "resource name")
    .argument("<label>", "key=value to set, or key with --remove")
    .option("--overwrite", "replace the value of an existing label")
    .option("--remove", "remove the label")
    .option("-n, --namespace <ns>", "namespace (namespaced kinds)")
    .action(
      async (
        kindName: string,
        name: string,
        label: string,
        o: { overwrite?: boolean; remove?: boolean; namespace?: string },
      ) => {
        const kind = kindArg(kindName);
        const eq = label.indexOf("=");
        const key = eq >= 0 ? label.slice(0, eq) : label;
        const value = eq >= 0 ? label.slice(eq + 1) : undefined;
        if (o.remove === true && value !== undefined)
          throw new UsageError("label: with --remove give only the key");
        if (o.remove !== true && value === undefined)
          throw new UsageError("label: give key=value (or key with --remove)");
        const keyProblem = labelKeyProblem(key);
        if (keyProblem !== undefined) throw new PatchError(`label key ${JSON.stringify(key)}: ${keyProblem}`);
        const valueProblem = value !== undefined ? labelValueProblem(value) : undefined;
        if (valueProblem !== undefined)
          throw new PatchError(`label value ${JSON.stringify(value)}: ${valueProblem}`);
        const store = await ctx.store();
        await store.update(kind.kind, name, o.namespace, (current) => {
          const labels = { ...(current.metadata.labels ?? {}) };
          if (o.remove === true) {
            if (!(key in labels)) {
              throw new PatchError(
                `${resourceId(kind.kind, name, current.metadata.namespace)} has no label "${key}"`,
              );
            }
            delete labels[key];
          } else {
            if (key in labels && o.overwrite !== true && labels[key] !== value) {
              throw new PatchError(
                `label "${key}" is already set to "${labels[key]}"; use --overwrite to change it`,
              );
            }
            labels[key] = value ?? "";
          }
          return { ...current, metadata: { ...current.metadata, labels } };
        });
        const what = `${kind.kind.toLowerCase()} ${name}`;
        ctx.out(
          o.remove === true
            ? `Successfully removed label ${key} from ${what}`
            : `Successfully set label ${key} on ${what}`,
        );
      },
    );
}
