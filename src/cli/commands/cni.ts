/**
 * `calicoctl cni install`: put the `calico` and `calico-ipam` executables in the runtime's CNI
 * plugin directory and write `10-calico.conflist` (docs/cni.md). The datastore written into the
 * conflist is the one calicoctl itself would use (--datastore, $CALICO_DATASTORE, config file,
 * default).
 */
import { hostname } from "node:os";
import type { Command } from "commander";
import { defaultDatastoreUrl } from "../../datastore/open.js";
import { installCni } from "../../cni/install.js";
import type { CliContext } from "../context.js";
import { resolveDatastoreSetting, type DatastoreFlags } from "../datastore-setting.js";
import { UsageError } from "../usage-error.js";

interface InstallFlags {
  binDir: string;
  confDir: string;
  nodename?: string;
  network: string;
  cniVersion: string;
  ipv6?: boolean;
  bigTcp?: boolean;
}

export function registerCniCommands(program: Command, ctx: CliContext): void {
  program
    .command("cni")
    .description("Container runtime (CNI) integration")
    .command("install")
    .description("Install the calico and calico-ipam CNI plugins and write 10-calico.conflist")
    .option("--bin-dir <dir>", "CNI plugin directory", "/opt/cni/bin")
    .option("--conf-dir <dir>", "CNI configuration directory", "/etc/cni/net.d")
    .option("--nodename <name>", "node name written into the conflist (default: the plugin's hostname)")
    .option("--network <name>", "network name", "k8s-pod-network")
    .option("--cni-version <version>", "cniVersion of the conflist", "1.0.0")
    .option("--ipv6", "also assign an IPv6 address to every workload")
    .option(
      "--big-tcp",
      "BIG TCP: 192 KiB GSO/GRO packets on both ends of each workload's veth (Linux ≥ 6.3)",
    )
    .action((flags: InstallFlags, cmd: Command) => {
      const datastore =
        resolveDatastoreSetting(cmd.optsWithGlobals<DatastoreFlags>(), process.env) ?? defaultDatastoreUrl();
      if (!["0.3.1", "0.4.0", "1.0.0", "1.1.0"].includes(flags.cniVersion)) {
        throw new UsageError(`--cni-version ${flags.cniVersion}: expected 0.3.1, 0.4.0, 1.0.0 or 1.1.0`);
      }
      const { files } = installCni({
        binDir: flags.binDir,
        confDir: flags.confDir,
        datastore,
        networkName: flags.network,
        cniVersion: flags.cniVersion,
        ipv6: flags.ipv6 === true,
        bigTcp: flags.bigTcp === true,
        ...(flags.nodename !== undefined ? { nodename: flags.nodename } : {}),
      });
      for (const f of files) ctx.out(`Installed ${f}`);
      ctx.out(
        `Datastore: ${datastore}; node name: ${flags.nodename ?? `the host's name (${hostname()}) unless /var/lib/calico/nodename exists`}`,
      );
    });
}
