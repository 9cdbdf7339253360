/** get: tables (ps, wide, custom-columns), YAML and JSON. */
import type { Command } from "commander";
import { stringify as toYaml } from "yaml";
import { API_VERSION, type AnyResource } from "../../api/resource.js";
import { columnsFor, customColumns, renderTable, type Column } from "../columns.js";
import { kindArg, type CliContext } from "../context.js";
import { UsageError } from "../usage-error.js";

interface GetOpts {
  output: string;
  namespace?: string;
  allNamespaces?: boolean;
  export?: boolean;
}

/** `--export`: what is left when cluster-specific metadata is dropped. */
function exportView(r: AnyResource): AnyResource {
  const metadata = { ...r.metadata };
  delete metadata.resourceVersion;
  delete metadata.uid;
  delete metadata.creationTimestamp;
  return { ...r, metadata };
}

type Format = { table: Column[] } | { doc: "yaml" | "json" };

function parseFormat(output: string, kind: string, namespaced: boolean, allNamespaces: boolean): Format {
  if (output === "ps" || output === "table" || output === "wide") {
    return { table: columnsFor(kind, namespaced, output === "wide", allNamespaces) };
  }
  if (output === "yaml" || output === "json") return { doc: output };
  if (output.startsWith("custom-columns=")) {
    const names = output
      .slice("custom-columns=".length)
      .split(",")
      .filter((n) => n !== "");
    const cols = customColumns(kind, names);
    if (!Array.isArray(cols)) {
      throw new UsageError(
        `get: unknown column(s) ${cols.unknown.join(", ")} for ${kind}; available: ${cols.known.join(", ")}`,
      );
    }
    return { table: cols };
  }
  throw new UsageError(
    `get: unknown output format "${output}"; use ps (or table), wide, yaml, json or custom-columns=...`,
  );
}

export function registerGetCommand(program: Command, ctx: CliContext): void {
  program
    .command("get")
    .description("Show resources of a kind, as a table (default), wide table, YAML or JSON")
    .argument("<kind>", "resource kind, plural or short name (e.g. ippools, gnp, networkpolicy)")
    .argument("[names...]", "only these resources")
    .option(
      "-o, --output <format>",
      "ps (or table) | wide | yaml | json | custom-columns=NAME,CIDR,...",
      "ps",
    )
    .option("-n, --namespace <ns>", "namespace (namespaced kinds; default: default)")
    .option("-A, --all-namespaces", "list across all namespaces")
    .option("--export", "omit cluster-specific metadata (resourceVersion, uid, creationTimestamp)")
    .action(async (kindName: string, names: string[], o: GetOpts) => {
      const kind = kindArg(kindName);
      if (o.allNamespaces === true && o.namespace !== undefined) {
        throw new UsageError("get: give -n or -A, not both");
      }
      const format = parseFormat(o.output, kind.kind, kind.namespaced, o.allNamespaces === true);
      const store = await ctx.store();
      const namespace = kind.namespaced && o.allNamespaces !== true ? (o.namespace ?? "default") : undefined;
      let items: AnyResource[] = [];
      let revision: number | undefined;
      if (names.length > 0) {
        for (const name of names) items.push(await store.get(kind.kind, name, namespace));
      } else {
        ({ items, revision } = await store.list(kind.kind, namespace));
      }
      if (o.export === true) items = items.map(exportView);
      if ("table" in format) {
        ctx.out(renderTable(format.table, items));
        return;
      }
      // One named resource prints alone; anything else is a `<Kind>List`, as calicoctl does.
      const doc: unknown =
        names.length === 1
          ? items[0]
          : {
              apiVersion: API_VERSION,
              kind: `${kind.kind}List`,
              metadata: revision !== undefined ? { resourceVersion: String(revision) } : {},
              items,
            };
      ctx.out(format.doc === "json" ? JSON.stringify(doc, null, 2) : toYaml(doc, { lineWidth: 0 }));
    });
}
