/**
 * Installing the plugins for a container runtime (what calico-node's install step does in
 * Calico): a small executable per plugin in the runtime's plugin directory and a
 * `10-calico.conflist` in its configuration directory. The executable is a shell script: it
 * hands the invocation to calico-node's CNI daemon when one serves its network namespace
 * (daemon.ts), and otherwise execs this Node on the compiled plugin (the bundle), so it works
 * wherever the checkout is and whether or not calico-node runs.
 */
import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNDLE_FILES, writeBundle } from "./bundle.js";
import { CNI_DAEMON_DIR, WIRE_MAGIC } from "./daemon.js";
import { PLUGIN_MAIN } from "./plugin-paths.js";

export interface InstallOptions {
  binDir: string;
  confDir: string;
  datastore: string;
  nodename?: string;
  networkName: string;
  cniVersion: string;
  ipv6: boolean;
  /** `big_tcp` in the plugin's configuration (config.ts). */
  bigTcp?: boolean;
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

/**
 * The plugin executable: POSIX sh, `readlink`, `env -0` and OpenBSD `nc -U` (netcat-openbsd).
 * The request is sent only when the daemon's socket is there; an answer without the daemon's
 * greeting means it never took the request, so running the plugin here is safe; a greeting
 * with no exit code means it stopped mid-request, which is reported as "try again later"
 * rather than risking a second ADD.
 */
export function pluginScript(name: string, runHere: string, socketDir = CNI_DAEMON_DIR): string {
  return `#!/bin/sh
# calico-ts CNI plugin ${name}: answered by calico-node's CNI daemon when one serves this
# network namespace, else run in this process (src/cni/install.ts, src/cni/daemon.ts).
ns=$(readlink /proc/self/ns/net 2>/dev/null) || ns=
ns=\${ns#net:[}
ns=\${ns%]}
sock=${shQuote(socketDir)}/net-$ns.sock
if [ -n "$ns" ] && [ -S "$sock" ] && [ -z "\${CALICO_CNI_NO_DAEMON-}" ] && command -v nc >/dev/null 2>&1; then
  conf=$(cat; printf .)
  conf=\${conf%.}
  out=$( { printf '${WIRE_MAGIC}\\0%s\\0' ${shQuote(name)}; env -0; printf '\\0%s' "$conf"; } | nc -NU "$sock" 2>/dev/null; printf .)
  out=\${out%.}
  nl='
'
  case $out in
  "${WIRE_MAGIC}$nl"*)
    rest=\${out#"${WIRE_MAGIC}$nl"}
    code=\${rest%%"$nl"*}
    case $rest in
    *"$nl"*) ;;
    *) code=x ;;
    esac
    case $code in
    '' | *[!0-9]*)
      printf '{"cniVersion":"1.0.0","code":11,"msg":"calico-node stopped answering the CNI request; try again later"}\\n'
      exit 1
      ;;
    esac
    printf '%s' "\${rest#*"$nl"}"
    exit "$code"
    ;;
  esac
  printf '%s' "$conf" | ${runHere}
  exit $?
fi
exec ${runHere}
`;
}

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
        ...(o.bigTcp === true ? { big_tcp: true } : {}),
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
    writeAtomic(path, pluginScript(name, `${shQuote(node)} ${target} "$@"`), 0o755);
    files.push(path);
  }
  const conf = join(o.confDir, "10-calico.conflist");
  writeAtomic(conf, `${JSON.stringify(conflist(o), null, 2)}\n`, 0o644);
  files.push(conf);
  return { files, ...(bundle !== undefined ? { bundledModules: bundle.modules } : {}) };
}
