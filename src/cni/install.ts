/**
 * Installing the plugins for a container runtime (what calico-node's install step does in
 * Calico): a small executable per plugin in the runtime's plugin directory (a shell wrapper
 * that execs this Node on the compiled plugin, so it works wherever the checkout is) and a
 * `10-calico.conflist` in its configuration directory.
 */
import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNDLE_FILES, writeBundle } from "./bundle.js";
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
  /** false: wrappers run the ES-module executables instead of the bundle (bundle.ts). */
  bundle?: boolean;
}

export interface InstallResult {
  files: string[];
  /** How many modules the bundle holds; undefined when the wrappers run the ES modules. */
  bundledModules?: number;
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
  // The bundle first: the wrappers must never point at a loader that is not there yet.
  const bundle = o.bundle === false ? undefined : writeBundle(o.binDir, node);
  if (bundle !== undefined) files.push(...bundle.files);
  for (const [name, main] of Object.entries(PLUGIN_MAIN)) {
    const path = join(o.binDir, name);
    const target =
      bundle !== undefined ? `${shQuote(join(o.binDir, BUNDLE_FILES.loader))} ${name}` : shQuote(main);
    writeAtomic(
      path,
      `#!/bin/sh\n# calico-ts CNI plugin ${name}\nexec ${shQuote(node)} ${target} "$@"\n`,
      0o755,
    );
    files.push(path);
  }
  const conf = join(o.confDir, "10-calico.conflist");
  writeAtomic(conf, `${JSON.stringify(conflist(o), null, 2)}\n`, 0o644);
  files.push(conf);
  return { files, ...(bundle !== undefined ? { bundledModules: bundle.modules } : {}) };
}
