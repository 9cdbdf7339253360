/**
 * What both executables do, as one function: the bundled form of the plugins (bundle.ts), the
 * plain ES-module executables (main-calico.ts, main-calico-ipam.ts) and calico-node's CNI daemon
 * (daemon.ts, with its own `io`) all start here. Handlers load lazily (skel.ts), so VERSION and
 * configuration errors never load IPAM.
 */
import { readStdin, runPlugin, type PluginIO } from "./skel.js";

export type PluginName = "calico" | "calico-ipam";

const processIO = (): PluginIO => ({
  env: process.env,
  stdin: readStdin,
  stdout: (s) => process.stdout.write(s),
});

export function runExecutable(plugin: PluginName, io: PluginIO = processIO()): Promise<number> {
  return runPlugin(
    plugin,
    async () => {
      const m = await import("./calico.js");
      return plugin === "calico" ? m.calicoPlugin : m.calicoIpamPlugin;
    },
    io,
  );
}
