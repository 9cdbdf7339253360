/**
 * calicoctl: calicoctl-compatible resource commands over the datastore client. It reaches
 * the system only through `ResourceStore` (STYLE.md: the CLI never touches internals).
 * One file per command group under `commands/`.
 */
import { Command, CommanderError, Option } from "commander";
import {
  DATASTORE_ENV,
  datastoreUrlForms,
  defaultDatastoreUrl,
  openDatastore as openDatastoreDefault,
} from "../datastore/open.js";
import { ResourceStore } from "../datastore/resources.js";
import type { Datastore } from "../datastore/types.js";
import { registerCniCommands } from "./commands/cni.js";
import { registerDatastoreCommands } from "./commands/datastore.js";
import { registerGetCommand } from "./commands/get.js";
import { registerIpamCommands } from "./commands/ipam.js";
import { registerLabCommands } from "./commands/lab.js";
import { registerNodeCommands } from "./commands/node.js";
import { registerPatchCommands } from "./commands/patch.js";
import { registerVersionCommand } from "./commands/version.js";
import { registerWriteCommands } from "./commands/write.js";
import { kindList, type CliContext, type CliIO } from "./context.js";
import { DEFAULT_CONFIG_FILE, resolveDatastoreSetting, type DatastoreFlags } from "./datastore-setting.js";
import { ChildExitStatus, exitCodeFor, formatError } from "./errors.js";
import { EXIT_CODE_HELP, ExitCode } from "./exit-codes.js";

export type { CliIO } from "./context.js";

export interface CliDeps {
  io: CliIO;
  env?: NodeJS.ProcessEnv;
  /** Injected in tests to share one in-memory store across invocations. */
  openDatastore?: (url?: string) => Promise<Datastore>;
}

const line = (s: string) => (s.endsWith("\n") ? s : `${s}\n`);

/** Run one calicoctl invocation; returns its exit code (docs/cli.md). */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  const { io } = deps;
  const env = deps.env ?? process.env;
  const open = deps.openDatastore ?? openDatastoreDefault;
  let store: ResourceStore | undefined;

  const program = new Command("calicoctl");
  const ctx: CliContext = {
    out: (s) => io.stdout(line(s)),
    err: (s) => io.stderr(line(s)),
    readStdin: () => io.readStdin(),
    store: async () => {
      store ??= new ResourceStore(await open(resolveDatastoreSetting(program.opts<DatastoreFlags>(), env)));
      return store;
    },
  };

  program
    .description("calico-ts: manage Calico projectcalico.org/v3 resources")
    .option(
      "--datastore <url>",
      "datastore URL: sqlite:<path>, etcd://host:port[,host:port], http(s)://host:port",
    )
    .option("-c, --config <file>", `calicoctl config file (default ${DEFAULT_CONFIG_FILE} if present)`)
    .addOption(new Option("-l, --log-level <level>", "accepted for calicoctl compatibility").hideHelp())
    .addOption(new Option("--allow-version-mismatch", "accepted for calicoctl compatibility").hideHelp())
    .addOption(new Option("--context <name>", "accepted for calicoctl compatibility").hideHelp())
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) })
    .addHelpText(
      "after",
      `\nDatastore: --datastore, else $${DATASTORE_ENV}, else the config file, else ${defaultDatastoreUrl(env)}.\nForms: ${datastoreUrlForms().join(", ")}.\n\nResource kinds (and the other names accepted):\n${kindList()}\n\n${EXIT_CODE_HELP}\n`,
    );
  registerWriteCommands(program, ctx);
  registerGetCommand(program, ctx);
  registerPatchCommands(program, ctx);
  registerVersionCommand(program, ctx);
  registerIpamCommands(program, ctx);
  registerDatastoreCommands(program, ctx);
  registerCniCommands(program, ctx);
  registerNodeCommands(program, ctx);
  registerLabCommands(program, ctx);

  let exit: number = ExitCode.OK;
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help ends here with code 0; parse errors were already printed by commander.
      exit = e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    } else if (e instanceof ChildExitStatus) {
      exit = e.status;
    } else {
      exit = exitCodeFor(e);
      ctx.err(formatError(e));
    }
  } finally {
    await store?.datastore.close();
  }
  return exit;
}
