/**
 * `calicoctl lab …`: the whole fabric on this machine (src/lab/lab.ts, docs/lab.md). Every
 * subcommand takes `--name` (default "lab", or $CALICO_LAB_NAME) and `--state-dir` (default
 * /run/calico-ts-lab/<name>, or $CALICO_LAB_DIR), so labs of tests never meet a user's lab.
 */
import { basename, relative } from "node:path";
import { Option, type Command } from "commander";
import {
  labAddWorkload,
  labDelWorkload,
  labDown,
  labExecArgv,
  labStatus,
  labUp,
  parseLabels,
  MAX_LAB_HOSTS,
} from "../../lab/lab.js";
import { runForeground } from "../../lab/lab-exec.js";
import { formatStatus, nextSteps } from "../../lab/lab-format.js";
import { DEFAULT_LAB_NAME, labLocation, type LabLocation } from "../../lab/lab-state.js";
import type { CliContext } from "../context.js";
import { ChildExitStatus } from "../errors.js";
import { UsageError } from "../usage-error.js";
import { CalicoError } from "../../errors.js";

interface LabFlags {
  name?: string;
  stateDir?: string;
}

function addLabFlags(cmd: Command): Command {
  return cmd
    .option(
      "--name <name>",
      `lab name: namespaces are cts<name>-* (default $CALICO_LAB_NAME or "${DEFAULT_LAB_NAME}")`,
    )
    .option("--state-dir <dir>", "state directory (default $CALICO_LAB_DIR or /run/calico-ts-lab/<name>)");
}

function location(flags: LabFlags): LabLocation {
  const name = flags.name ?? process.env.CALICO_LAB_NAME ?? DEFAULT_LAB_NAME;
  const dir = flags.stateDir ?? process.env.CALICO_LAB_DIR;
  return labLocation(name, dir !== undefined && dir !== "" ? dir : undefined);
}

const nameFlag = (loc: LabLocation, flags: LabFlags): string =>
  `${loc.name === DEFAULT_LAB_NAME ? "" : ` --name ${loc.name}`}${flags.stateDir !== undefined ? ` --state-dir ${flags.stateDir}` : ""}`;

/** How the user ran us, for the hints: `calicoctl` when linked, else `node <path>`. */
function cliName(): string {
  const main = process.argv[1] ?? "";
  if (process.env.CALICO_LAB_CLI !== undefined) return process.env.CALICO_LAB_CLI;
  if (basename(main) === "calicoctl" || main === "") return "calicoctl";
  const rel = relative(process.cwd(), main);
  return `node ${rel.startsWith("..") ? main : rel}`;
}

const int = (what: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new UsageError(`${what} must be a whole number, not "${v}"`);
  return Number(v);
};

export function registerLabCommands(program: Command, ctx: CliContext): void {
  const lab = program
    .command("lab")
    .description("The whole fabric on this machine: hosts as network namespaces, real calico-node, CNI, BGP");

  addLabFlags(
    lab
      .command("up")
      .description("Create hosts, datastore, calico-node per host, demo workloads and policies; print status")
      .option("--nodes <n>", `number of hosts, 1-${MAX_LAB_HOSTS}`, int("--nodes"), 3)
      .option("--ipv6", "dual stack: IPv6 underlay, pool and BGP sessions too", false)
      .option("--tor", "mesh off: every host peers with a BIRD ToR router; a plain host behind it", false)
      .addOption(
        new Option("--datastore <kind>", "lab datastore").choices(["sqlite", "etcd"]).default("sqlite"),
      )
      .option("--no-demo", "no demo workloads or policies")
      .option("--no-apiserver", "do not start calico-apiserver")
      .option("--no-big-tcp", "64 KiB GSO/GRO packets (default: BIG TCP, 192 KiB, where the kernel can)"),
  ).action(
    async (
      o: LabFlags & {
        nodes: number;
        ipv6: boolean;
        tor: boolean;
        demo: boolean;
        apiserver: boolean;
        bigTcp: boolean;
      },
      cmd: Command,
    ) => {
      // calicoctl's global --datastore <url> takes `lab up --datastore etcd` before this
      // command sees it (commander reads program options anywhere): read the merged value.
      const datastore = cmd.optsWithGlobals<{ datastore?: string }>().datastore ?? "sqlite";
      if (datastore !== "sqlite" && datastore !== "etcd")
        throw new UsageError(`lab up --datastore takes sqlite or etcd, not ${JSON.stringify(datastore)}`);
      const loc = location(o);
      const r = await labUp(loc, {
        nodes: o.nodes,
        ipv6: o.ipv6,
        tor: o.tor,
        apiserver: o.apiserver,
        datastore,
        demo: o.demo,
        bigTcp: o.bigTcp,
        log: (l) => ctx.out(l),
      });
      const st = await labStatus(loc, { probe: true, settleMs: 15_000 });
      ctx.out("");
      ctx.out(formatStatus(st));
      ctx.out("");
      if (r.notConverged.length > 0) ctx.out(`Still converging: ${r.notConverged.join("; ")}\n`);
      ctx.out(`Lab "${loc.name}" up in ${(r.ms / 1000).toFixed(1)} s.`);
      ctx.out("");
      ctx.out(nextSteps(st, cliName(), nameFlag(loc, o)));
      // Up, but not as it should be: say so in the exit code too (scripts/main.sh stops there).
      const wrong = st.matrices.flatMap((m) =>
        m.cells.filter((c) => c.expected !== undefined && c.expected !== c.ok),
      );
      if (r.notConverged.length > 0 || wrong.length > 0)
        throw new CalicoError(
          "LAB_NOT_HEALTHY",
          `Lab "${loc.name}" is up but ${r.notConverged.length > 0 ? "did not converge" : `${wrong.length} probe(s) differ from the demo policy`}; it is left as it is for a look (lab status), lab down removes it`,
        );
    },
  );

  addLabFlags(
    lab
      .command("status")
      .description("Hosts, BGP sessions, workloads and a connectivity matrix measured now")
      .addOption(
        new Option("-o, --output <format>", "output format").choices(["table", "json"]).default("table"),
      )
      .option("--no-probe", "skip the connectivity matrix"),
  ).action(async (o: LabFlags & { output: "table" | "json"; probe: boolean }) => {
    // A failed probe the demo policy allows is re-sent for up to 3 s (a loaded machine).
    const st = await labStatus(location(o), { probe: o.probe, settleMs: 3000 });
    ctx.out(o.output === "json" ? JSON.stringify(st, null, 2) : formatStatus(st));
  });

  addLabFlags(
    lab
      .command("exec")
      .description("Run a command in a workload's (or host's) network namespace: lab exec WORKLOAD -- CMD …")
      .argument("<workload>", "workload or host name")
      .argument("<cmd...>", "the command and its arguments (after --)"),
  ).action(async (target: string, cmd: string[], o: LabFlags) => {
    // stdin, stdout and stderr are the command's own; we exit with its status (lab-exec.ts).
    const status = await runForeground(labExecArgv(location(o), target, cmd));
    if (status !== 0) throw new ChildExitStatus(status, cmd.join(" "));
  });

  addLabFlags(
    lab
      .command("add-workload")
      .description("Attach a new workload namespace to HOST through the calico CNI plugin")
      .argument("<host>", "host name, e.g. h1")
      .argument("<name>", "workload name")
      .option("--labels <k=v,…>", "labels", "")
      .option("-n, --namespace <ns>", "its Kubernetes namespace (profile kns.<ns>)", "demo"),
  ).action(async (host: string, name: string, o: LabFlags & { labels: string; namespace: string }) => {
    const w = await labAddWorkload(location(o), host, name, parseLabels(o.labels), o.namespace);
    ctx.out(`Workload ${w.name} on ${w.host}: ${[...w.ipv4, ...w.ipv6].join(" ")} (interface ${w.iface})`);
  });

  addLabFlags(
    lab
      .command("del-workload")
      .description("Detach a workload through the CNI plugin and delete its namespace")
      .argument("<name>", "workload name"),
  ).action(async (name: string, o: LabFlags) => {
    await labDelWorkload(location(o), name);
    ctx.out(`Workload ${name} deleted.`);
  });

  addLabFlags(
    lab.command("down").description("Remove every namespace, process and file the lab made (idempotent)"),
  ).action(async (o: LabFlags) => {
    const loc = location(o);
    const r = await labDown(loc);
    ctx.out(
      r.found
        ? `Lab "${loc.name}" removed: ${r.netns.length} namespaces, ${r.processes} processes.`
        : `No lab "${loc.name}" found; nothing to remove.`,
    );
  });
}
