/**
 * calicoctl: calicoctl-compatible resource commands over the datastore client. It reaches
 * the system only through `ResourceStore` (STYLE.md: the CLI never touches internals).
 */
import { existsSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { decodeResources, InputError, isInputError, type SourcedResource } from "../api/codec.js";
import { mergePatch, jsonPatch, PatchError } from "../api/patch.js";
import { API_VERSION, type AnyResource } from "../api/resource.js";
import { isValidationError, type ValidationError } from "../api/validation.js";
import { labelKeyProblem, labelValueProblem } from "../api/check.js";
import { openDatastore as openDatastoreDefault } from "../datastore/open.js";
import { DatastoreError, type Datastore } from "../datastore/types.js";
import {
  isResourceExists,
  isResourceNotFound,
  ResourceError,
  ResourceStore,
  resourceId,
} from "../datastore/resources.js";
import type { KindDef } from "../api/kinds/kind.js";
import { KINDS } from "../api/registry.js";
import { CALICO_TS_VERSION } from "../version.js";
import { columnsFor, customColumns, renderTable, type Column } from "./columns.js";
import { EXIT_CODE_HELP, ExitCode } from "./exit-codes.js";
import { readInputs } from "./input.js";
import { UsageError } from "./usage-error.js";

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
}

export interface CliDeps {
  io: CliIO;
  env?: NodeJS.ProcessEnv;
  /** Injected in tests to share one in-memory store across invocations. */
  openDatastore?: (url?: string) => Promise<Datastore>;
}

interface GlobalOpts {
  datastore?: string;
  config?: string;
}

const DEFAULT_CONFIG_FILE = "/etc/calico/calicoctl.cfg";

/**
 * The datastore setting: `--datastore` > `CALICO_DATASTORE` > calicoctl.cfg (`spec.datastore`,
 * or Calico's `datastoreType: etcdv3` + `etcdEndpoints`) > Calico's `ETCD_ENDPOINTS` env >
 * the driver default. Returns undefined to let `openDatastore` apply env/default rules.
 */
export function resolveDatastoreSetting(opts: GlobalOpts, env: NodeJS.ProcessEnv): string | undefined {
  if (opts.datastore !== undefined) return opts.datastore;
  if (env.CALICO_DATASTORE !== undefined && env.CALICO_DATASTORE !== "") return env.CALICO_DATASTORE;
  const cfgPath = opts.config ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (cfgPath !== undefined) {
    let cfg: unknown;
    try {
      cfg = parseYaml(readFileSync(cfgPath, "utf8"));
    } catch (err) {
      throw new UsageError(`Cannot read config file "${cfgPath}": ${(err as Error).message}`);
    }
    const spec = (cfg as { spec?: Record<string, unknown> } | null)?.spec ?? {};
    if (typeof spec.datastore === "string") return spec.datastore;
    if (spec.datastoreType === "etcdv3" && typeof spec.etcdEndpoints === "string") {
      return etcdUrl(spec.etcdEndpoints);
    }
    if (spec.datastoreType !== undefined && spec.datastoreType !== "etcdv3") {
      throw new UsageError(
        `Config file "${cfgPath}": datastoreType ${JSON.stringify(spec.datastoreType)} is not supported; use etcdv3 or spec.datastore`,
      );
    }
  }
  if (env.DATASTORE_TYPE === "etcdv3" && env.ETCD_ENDPOINTS !== undefined) return etcdUrl(env.ETCD_ENDPOINTS);
  return undefined;
}

/** Calico's `ETCD_ENDPOINTS=http://a:2379,http://b:2379` → `etcd://a:2379,b:2379`. */
function etcdUrl(endpoints: string): string {
  const hosts = endpoints
    .split(",")
    .map((e) =>
      e
        .trim()
        .replace(/^https?:\/\//, "")
        .replace(/\/$/, ""),
    )
    .filter((e) => e !== "");
  return `etcd://${hosts.join(",")}`;
}

function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof UsageError) return ExitCode.USAGE;
  if (isValidationError(err) || isInputError(err) || err instanceof PatchError) return ExitCode.INVALID_INPUT;
  if (err instanceof DatastoreError) {
    return err.code === "DATASTORE_BAD_URL" ||
      err.code === "DATASTORE_UNAVAILABLE" ||
      err.code === "DATASTORE_CLOSED"
      ? ExitCode.DATASTORE
      : ExitCode.FAILED;
  }
  if (err instanceof ResourceError) {
    return err.code === "RESOURCE_UNKNOWN_KIND" ? ExitCode.USAGE : ExitCode.FAILED;
  }
  return ExitCode.FAILED;
}

function gitCommit(): string {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    return execFileSync("git", ["-C", here, "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

const kindList = (): string =>
  KINDS.map((k) => `  ${k.kind.padEnd(32)} ${[k.plural, ...k.shortNames].join(", ")}`).join("\n");

/** "1 'IPPool' resource(s)" when all share a kind, "3 resource(s)" otherwise. */
function countPhrase(resources: readonly { kind: string }[]): string {
  const kinds = new Set(resources.map((r) => r.kind));
  const [only] = kinds;
  return kinds.size === 1 && only !== undefined
    ? `${resources.length} '${only}' resource(s)`
    : `${resources.length} resource(s)`;
}

type WriteAction = "create" | "apply" | "replace" | "delete";
const PAST: Record<WriteAction, string> = {
  create: "created",
  apply: "applied",
  replace: "replaced",
  delete: "deleted",
};

export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  const { io } = deps;
  const env = deps.env ?? process.env;
  const open = deps.openDatastore ?? openDatastoreDefault;
  let store: ResourceStore | undefined;
  let exit: number = ExitCode.OK;

  const program = new Command("calicoctl");
  program
    .description("calico-ts: manage Calico projectcalico.org/v3 resources")
    .option(
      "--datastore <url>",
      "datastore URL: sqlite:<path>, etcd://host:port[,host:port], http(s)://host:port",
    )
    .option("-c, --config <file>", `calicoctl config file (default ${DEFAULT_CONFIG_FILE} if present)`)
    .addOption(
      new Option("-l, --log-level <level>", "log level (accepted for calicoctl compatibility)").hideHelp(),
    )
    .addOption(new Option("--allow-version-mismatch", "accepted for calicoctl compatibility").hideHelp())
    .addOption(new Option("--context <name>", "accepted for calicoctl compatibility").hideHelp())
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) })
    .addHelpText(
      "after",
      `\nDatastore: --datastore, else $CALICO_DATASTORE, else the config file, else the default sqlite file.\n\nResource kinds (and the other names accepted):\n${kindList()}\n\n${EXIT_CODE_HELP}\n`,
    );

  const getStore = async (): Promise<ResourceStore> => {
    if (store === undefined) {
      const url = resolveDatastoreSetting(program.opts<GlobalOpts>(), env);
      store = new ResourceStore(await open(url));
    }
    return store;
  };

  const out = (s: string) => io.stdout(s.endsWith("\n") ? s : `${s}\n`);
  const err = (s: string) => io.stderr(s.endsWith("\n") ? s : `${s}\n`);

  const kindOrUsage = (name: string): KindDef => {
    const k = KINDS.find((d) =>
      [d.kind, d.plural, ...d.shortNames].some((n) => n.toLowerCase() === name.toLowerCase()),
    );
    if (k === undefined) {
      throw new UsageError(`Unknown resource type "${name}". Known types:\n${kindList()}`);
    }
    return k;
  };

  /** Read, decode and validate every document of every -f input before any write. */
  const loadAll = async (
    filename: string,
    recursive: boolean,
    namespace?: string,
  ): Promise<SourcedResource[]> => {
    const inputs = await readInputs(filename, recursive, () => io.readStdin());
    const failures: ValidationError[] = [];
    const all: SourcedResource[] = [];
    let total = 0;
    for (const input of inputs) {
      try {
        const items = decodeResources(input.text, input.source);
        total += items.length;
        all.push(...items);
      } catch (e) {
        if (!isInputError(e)) throw e;
        failures.push(...e.failures);
        total += e.total;
      }
    }
    if (failures.length > 0) {
      throw new InputError(failures, total);
    }
    if (namespace !== undefined) {
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
    }
    return all;
  };

  const writeFromFile = async (
    action: WriteAction,
    o: {
      filename: string;
      recursive?: boolean;
      namespace?: string;
      skipExists?: boolean;
      skipNotExists?: boolean;
      skipEmpty?: boolean;
    },
  ) => {
    const items = await loadAll(o.filename, o.recursive === true, o.namespace);
    if (items.length === 0) {
      if (o.skipEmpty === true) return;
      throw new UsageError(`No resources specified in "${o.filename}"`);
    }
    const s = await getStore();
    const done: AnyResource[] = [];
    let skipped = 0;
    for (const item of items) {
      const r = item.resource;
      try {
        switch (action) {
          case "create":
            done.push(await s.create(r));
            break;
          case "apply":
            done.push((await s.apply(r)).resource);
            break;
          case "replace":
            done.push(await s.replace(r));
            break;
          case "delete": {
            const md = r.metadata;
            done.push(
              await s.delete({
                kind: r.kind,
                name: md.name,
                ...(md.namespace !== undefined ? { namespace: md.namespace } : {}),
                ...(md.resourceVersion !== undefined ? { resourceVersion: md.resourceVersion } : {}),
              }),
            );
            break;
          }
        }
      } catch (e) {
        if (
          (action === "create" && o.skipExists === true && isResourceExists(e)) ||
          (action === "delete" && o.skipNotExists === true && isResourceNotFound(e))
        ) {
          skipped++;
          continue;
        }
        if (done.length > 0) {
          err(`Partial success: ${PAST[action]} the first ${done.length} out of ${items.length} resources:`);
        }
        throw new CalicoErrorWithPrefix(e, `Failed to ${action} ${describeItem(item)}`);
      }
    }
    const skippedNote =
      skipped > 0 ? ` (${skipped} skipped: ${action === "create" ? "already exist" : "do not exist"})` : "";
    out(`Successfully ${PAST[action]} ${countPhrase(done)}${skippedNote}`);
  };

  const fileOpts = (cmd: Command, verb: string) =>
    cmd
      .option("-f, --filename <path>", `file, directory or "-" (stdin) with the resources to ${verb}`)
      .option("-R, --recursive", "process the directory given with -f recursively")
      .option("-n, --namespace <ns>", "namespace for namespaced resources that do not name one")
      .option("--skip-empty", "do not fail when the input holds no resources");

  for (const action of ["create", "apply", "replace"] as const) {
    const cmd = program.command(action).description(
      {
        create: "Create resources from a file; fails for a resource that already exists",
        apply: "Create or replace resources from a file",
        replace: "Replace existing resources from a file; fails for a resource that does not exist",
      }[action],
    );
    fileOpts(cmd, action);
    if (action === "create")
      cmd.option("--skip-exists", "skip resources that already exist instead of failing");
    cmd.action(
      async (o: {
        filename?: string;
        recursive?: boolean;
        namespace?: string;
        skipExists?: boolean;
        skipEmpty?: boolean;
      }) => {
        if (o.filename === undefined) throw new UsageError(`${action}: -f/--filename is required`);
        await writeFromFile(action, { ...o, filename: o.filename });
      },
    );
  }

  fileOpts(
    program
      .command("delete")
      .description("Delete resources named in a file (-f) or by KIND NAME...")
      .argument("[kind]", "resource kind (when not using -f)")
      .argument("[names...]", "resource names")
      .option("-s, --skip-not-exists", "do not fail for resources that do not exist"),
    "delete",
  ).action(
    async (
      kindName: string | undefined,
      names: string[],
      o: {
        filename?: string;
        recursive?: boolean;
        namespace?: string;
        skipNotExists?: boolean;
        skipEmpty?: boolean;
      },
    ) => {
      if (o.filename !== undefined) {
        if (kindName !== undefined) throw new UsageError("delete: give either -f or KIND NAME..., not both");
        await writeFromFile("delete", { ...o, filename: o.filename });
        return;
      }
      if (kindName === undefined || names.length === 0) {
        throw new UsageError("delete: give -f <file> or a KIND and at least one NAME");
      }
      const kind = kindOrUsage(kindName);
      const s = await getStore();
      let deleted = 0;
      for (const name of names) {
        try {
          await s.delete({
            kind: kind.kind,
            name,
            ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
          });
          deleted++;
        } catch (e) {
          if (o.skipNotExists === true && isResourceNotFound(e)) continue;
          if (deleted > 0)
            err(`Partial success: deleted the first ${deleted} out of ${names.length} resources:`);
          throw e;
        }
      }
      out(`Successfully deleted ${deleted} '${kind.kind}' resource(s)`);
    },
  );

  program
    .command("validate")
    .description("Validate resources in a file without writing them")
    .option("-f, --filename <path>", 'file, directory or "-" (stdin)')
    .option("-R, --recursive", "process the directory recursively")
    .action(async (o: { filename?: string; recursive?: boolean }) => {
      if (o.filename === undefined) throw new UsageError("validate: -f/--filename is required");
      const items = await loadAll(o.filename, o.recursive === true);
      out(`Successfully validated ${countPhrase(items.map((i) => i.resource))}`);
    });

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
    .action(
      async (
        kindName: string,
        names: string[],
        o: { output: string; namespace?: string; allNamespaces?: boolean; export?: boolean },
      ) => {
        const kind = kindOrUsage(kindName);
        const format = o.output === "table" ? "ps" : o.output;
        let custom: Column[] | undefined;
        if (format.startsWith("custom-columns=")) {
          const names = format
            .slice("custom-columns=".length)
            .split(",")
            .filter((n) => n !== "");
          const cols = customColumns(kind.kind, names);
          if (!Array.isArray(cols)) {
            throw new UsageError(
              `get: unknown column(s) ${cols.unknown.join(", ")} for ${kind.kind}; available: ${cols.known.join(", ")}`,
            );
          }
          custom = cols;
        } else if (!["ps", "wide", "yaml", "json"].includes(format)) {
          throw new UsageError(
            `get: unknown output format "${o.output}"; use ps (or table), wide, yaml, json or custom-columns=...`,
          );
        }
        if (o.allNamespaces === true && o.namespace !== undefined) {
          throw new UsageError("get: give -n or -A, not both");
        }
        const s = await getStore();
        const ns = kind.namespaced
          ? o.allNamespaces === true
            ? undefined
            : (o.namespace ?? "default")
          : undefined;
        let items: AnyResource[];
        let revision: number | undefined;
        if (names.length > 0) {
          items = [];
          for (const name of names) items.push(await s.get(kind.kind, name, ns ?? o.namespace));
        } else {
          const res = await s.list(kind.kind, ns);
          items = res.items;
          revision = res.revision;
        }
        if (o.export === true) items = items.map(exportView);
        if (custom !== undefined) {
          out(renderTable(custom, items));
          return;
        }
        if (format === "ps" || format === "wide") {
          out(
            renderTable(
              columnsFor(kind.kind, kind.namespaced, format === "wide", o.allNamespaces === true),
              items,
            ),
          );
          return;
        }
        const single = names.length === 1 && items.length === 1;
        const doc: unknown = single
          ? items[0]
          : {
              apiVersion: API_VERSION,
              kind: `${kind.kind}List`,
              metadata: revision !== undefined ? { resourceVersion: String(revision) } : {},
              items,
            };
        out(format === "json" ? JSON.stringify(doc, null, 2) : toYaml(doc, { lineWidth: 0 }));
      },
    );

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
        const kind = kindOrUsage(kindName);
        if (!["merge", "json", "strategic"].includes(o.type)) {
          throw new UsageError(`patch: unknown --type "${o.type}"; use merge, json or strategic`);
        }
        let patch: unknown;
        try {
          patch = parseYaml(o.patch);
        } catch (e) {
          throw new PatchError(`patch is not valid JSON/YAML: ${(e as Error).message}`);
        }
        const s = await getStore();
        await s.update(kind.kind, name, o.namespace, (current) => {
          const next = o.type === "json" ? jsonPatch(current, patch) : mergePatch(current, patch);
          return checkIdentity(kind, current, next);
        });
        out(`Successfully patched 1 '${kind.kind}' resource`);
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
        const kind = kindOrUsage(kindName);
        const eq = label.indexOf("=");
        const key = eq >= 0 ? label.slice(0, eq) : label;
        const value = eq >= 0 ? label.slice(eq + 1) : undefined;
        if (o.remove === true && value !== undefined)
          throw new UsageError("label: with --remove give only the key");
        if (o.remove !== true && value === undefined)
          throw new UsageError("label: give key=value (or key with --remove)");
        const keyProblem = labelKeyProblem(key);
        if (keyProblem !== undefined) throw new PatchError(`label key ${JSON.stringify(key)}: ${keyProblem}`);
        if (value !== undefined) {
          const valueProblem = labelValueProblem(value);
          if (valueProblem !== undefined)
            throw new PatchError(`label value ${JSON.stringify(value)}: ${valueProblem}`);
        }
        const s = await getStore();
        await s.update(kind.kind, name, o.namespace, (current) => {
          const labels = { ...(current.metadata.labels ?? {}) };
          if (o.remove === true) {
            if (!(key in labels))
              throw new PatchError(
                `${resourceId(kind.kind, name, current.metadata.namespace)} has no label "${key}"`,
              );
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
        out(
          o.remove === true
            ? `Successfully removed label ${key} from ${kind.kind.toLowerCase()} ${name}`
            : `Successfully set label ${key} on ${kind.kind.toLowerCase()} ${name}`,
        );
      },
    );

  program
    .command("version")
    .description("Show client and cluster versions")
    .action(async () => {
      let cluster = "unknown";
      let clusterType = "unknown";
      try {
        const info = await (await getStore()).get("ClusterInformation", "default");
        if (typeof info.spec.calicoVersion === "string") cluster = info.spec.calicoVersion;
        if (typeof info.spec.clusterType === "string") clusterType = info.spec.clusterType;
      } catch (e) {
        if (!isResourceNotFound(e)) throw e;
      }
      out(
        [
          `Client Version:    v${CALICO_TS_VERSION}`,
          `Git commit:        ${gitCommit()}`,
          `Cluster Version:   ${cluster}`,
          `Cluster Type:      ${clusterType}`,
        ].join("\n"),
      );
    });

  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version requests end here with code 0; parse errors were already printed.
      exit = e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    } else {
      exit = exitCodeFor(e instanceof CalicoErrorWithPrefix ? e.original : e);
      err(formatError(e));
    }
  } finally {
    await store?.datastore.close();
  }
  return exit;
}

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

function exportView(r: AnyResource): AnyResource {
  const metadata = { ...r.metadata };
  delete metadata.resourceVersion;
  delete metadata.uid;
  delete metadata.creationTimestamp;
  return { ...r, metadata };
}

function describeItem(item: SourcedResource): string {
  const md = item.resource.metadata;
  const id = resourceId(item.kind.kind, md.name, item.kind.namespaced ? md.namespace : undefined);
  const where = [item.ref.source, item.ref.index !== undefined ? `document ${item.ref.index}` : undefined]
    .filter((x) => x !== undefined)
    .join(" ");
  return where === "" ? id : `${id} (${where})`;
}

/** An error from a write of one resource, with the resource named in front. */
class CalicoErrorWithPrefix extends Error {
  constructor(
    readonly original: unknown,
    prefix: string,
  ) {
    super(`${prefix}: ${original instanceof Error ? original.message : String(original)}`);
  }
}

function formatError(e: unknown): string {
  if (e instanceof Error) return `Error: ${e.message}`;
  return `Error: ${String(e)}`;
}
