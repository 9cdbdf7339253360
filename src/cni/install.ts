/**
 * Installing the plugins for a container runtime (what calico-node's install step does in
 * Calico): a small executable per plugin in the runtime's plugin directory (a shell wrapper
 * that execs this Node on the compiled plugin, so it works wherever the checkout is) and a
 * `10-calico.conflist` in its configuration directory.
 */
import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PLUGIN_MAIN } from "./plugin-paths.js";

export interface InstallOptions {
  binDir: string;
  confDir: string;
  datastore: string;
  nodename?: string;
  networkName: string;
  cniVersion: string;
  ipv6: boolean;
  /** The node binary the wrappers exec (default: this process's). */
  node?: string;
}

export interface InstallResult {
  files: string[];
}

/** Write `path` atomically (a runtime may be reading the directory). */
function writeAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function conflist(o: InstallOptions): Record<string, unknown> {
  return {
    name: o.networkName,
    cniVersion: o.cniVersion,
    plugins: [
      {
        type: "calico",
        log_level: "info",
        datastore: o.datastore,
        ...(o.nodename !== undefined ? { nodename: o.nodename } : {}),
        mtu: 0,
        ipam: { type: "calico-ipam", assign_ipv4: "true", assign_ipv6: o.ipv6 ? "true" : "false" },
        policy: { type: "k8s" },
      },
    ],
  };
}

export function installCni(o: InstallOptions): InstallResult {
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  const node = o.node ?? process.execPath;
  const files: string[] = [];
  for (const [name, main] of Object.entries(PLUGIN_MAIN)) {
    const path = join(o.binDir, name);
    writeAtomic(
      path,
      `#!/bin/sh\n# calico-ts CNI plugin ${name}\nexec ${shQuote(node)} ${shQuote(main)} "$@"\n`,
      0o755,
    );
    files.push(path);
  }
  const conf = join(o.confDir, "10-calico.conflist");
  writeAtomic(conf, `${JSON.stringify(conflist(o), null, 2)}\n`, 0o644);
  files.push(conf);
  return { files };
}
