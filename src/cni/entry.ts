/**
 * What both executables do, as one function: the bundled form of the plugins (bundle.ts) and
 * the plain ES-module executables (main-calico.ts, main-calico-ipam.ts) both start here.
 * Handlers load lazily (skel.ts), so VERSION and configuration errors never load IPAM.
 */
import { readStdin, runPlugin } from "./skel.js";

export type PluginName = "calico" | "calico-ipam";

export function runExecutable(plugin: PluginName): Promise<number> {
  return runPlugin(
    plugin,
    async () => {
      const m = await import("./calico.js");
      return plugin === "calico" ? m.calicoPlugin : m.calicoIpamPlugin;
    },
    {
      env: process.env,
      stdin: readStdin,
      stdout: (s) => process.stdout.write(s),
    },
  );
}
