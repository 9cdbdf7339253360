/**
 * The CNI_* environment a runtime sets (CNI spec 1.1.0, "Parameters"): which variables each
 * command needs, their syntax, and `CNI_ARGS` (`K=V;K2=V2`, where Kubernetes runtimes put the
 * pod's namespace and name). A missing or malformed variable is the spec's code 4.
 */
import { CNI_COMMANDS, CniCode, CniError, type CniCommand } from "./types.js";

export interface CniEnv {
  command: CniCommand;
  containerID: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS, parsed. */
  args: Record<string, string>;
  /** CNI_PATH, split on ':' (empty entries dropped). */
  path: string[];
}

const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  STATUS: [],
  GC: [],
  VERSION: [],
};

const envError = (msg: string): CniError => new CniError(CniCode.INVALID_ENVIRONMENT, msg);

/** Linux interface names: 1–15 bytes, no '/', ':' or whitespace, not "." or "..". */
export function checkIfname(name: string): string | undefined {
  if (name.length === 0 || Buffer.byteLength(name) > 15) return "must be 1 to 15 bytes long";
  if (name === "." || name === "..") return `may not be "${name}"`;
  if (/[/:\s]/.test(name)) return "may not contain '/', ':' or whitespace";
  return undefined;
}

export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(";")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) throw envError(`Invalid CNI_ARGS entry ${JSON.stringify(part)}: expected KEY=VALUE`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

export function readCniEnv(env: NodeJS.ProcessEnv): CniEnv {
  const raw = env.CNI_COMMAND;
  if (raw === undefined || raw === "") throw envError("CNI_COMMAND is not set");
  const command = raw.toUpperCase() as CniCommand;
  if (!CNI_COMMANDS.includes(command)) {
    throw envError(`Unknown CNI_COMMAND ${JSON.stringify(raw)}: expected one of ${CNI_COMMANDS.join(", ")}`);
  }
  const missing = REQUIRED[command].filter((k) => (env[k] ?? "") === "");
  if (missing.length > 0)
    throw envError(
      `${command} needs ${missing.join(", ")}, which ${missing.length > 1 ? "are" : "is"} not set`,
    );
  const containerID = env.CNI_CONTAINERID ?? "";
  if (containerID !== "" && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerID)) {
    throw envError(
      `Invalid CNI_CONTAINERID ${JSON.stringify(containerID)}: must start with a letter or digit and hold only letters, digits, '_', '.', '-'`,
    );
  }
  const ifname = env.CNI_IFNAME ?? "";
  if (ifname !== "") {
    const why = checkIfname(ifname);
    if (why !== undefined) throw envError(`Invalid CNI_IFNAME ${JSON.stringify(ifname)}: ${why}`);
  }
  return {
    command,
    containerID,
    netns: env.CNI_NETNS ?? "",
    ifname,
    args: parseCniArgs(env.CNI_ARGS ?? ""),
    path: (env.CNI_PATH ?? "").split(":").filter((p) => p !== ""),
  };
}
