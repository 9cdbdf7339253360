/**
 * `calicoctl node status`: the local calico-node's BGP sessions, laid out as Calico prints
 * them (reference/calico.md §8). Calico asks BIRD over its control socket; our speaker lives in
 * calico-node, which writes its state to a status file (`calico-node --status-file`), so this
 * reads that file — `--status-file`, else $CALICO_NODE_STATUS_FILE, else the default below.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { BgpPeerRow, BgpRunStatus } from "../../agent/bgp-runner.js";
import { renderBoxed } from "../boxed-table.js";
import type { CliContext } from "../context.js";

export const DEFAULT_NODE_STATUS_FILE = "/var/run/calico/node-status.json";

/** The part of calico-node's status file this command reads. */
export interface NodeStatusFile {
  node?: string;
  pid?: number;
  bgp?: BgpRunStatus;
}

const pad = (n: number): string => String(n).padStart(2, "0");

/** BIRD's SINCE column: the time of day when it is today, else the date. */
export function formatSince(iso: string, now: Date): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return "";
  const sameDay =
    t.getFullYear() === now.getFullYear() && t.getMonth() === now.getMonth() && t.getDate() === now.getDate();
  return sameDay
    ? `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`
    : `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
}

/** STATE is `up` once Established, `start` otherwise; INFO is the FSM state plus the last error. */
function row(p: BgpPeerRow, now: Date): string[] {
  const up = p.state === "Established";
  const info = up ? "Established" : [p.state, p.info].filter((x) => x !== undefined && x !== "").join(" ");
  return [p.address, p.type, up ? "up" : "start", formatSince(p.since, now), info];
}

const HEADERS = ["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"];

function table(title: string, family: 4 | 6, peers: readonly BgpPeerRow[], now: Date): string {
  const mine = peers.filter((p) => p.address.includes(":") === (family === 6));
  if (mine.length === 0) return `${title}\nNo IPv${family} peers found.\n`;
  return `${title}\n${renderBoxed(
    HEADERS,
    mine.map((p) => row(p, now)),
  )}\n`;
}

/** The whole output for a status file read from a running calico-node. */
export function formatNodeStatus(s: NodeStatusFile, now: Date = new Date()): string {
  const lines = ["Calico process is running.", ""];
  const bgp = s.bgp;
  if (bgp === undefined || !bgp.enabled) {
    lines.push(
      `The BGP backend process is not running${bgp?.reason !== undefined ? ` (${bgp.reason})` : ""}.`,
    );
    return `${lines.join("\n")}\n`;
  }
  if (bgp.reason !== undefined) lines.push(`BGP speaker not running: ${bgp.reason}`, "");
  lines.push(table("IPv4 BGP status", 4, bgp.peers, now));
  lines.push(table("IPv6 BGP status", 6, bgp.peers, now));
  return lines.join("\n");
}

const alive = (pid: number | undefined): boolean => {
  if (pid === undefined) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

export function registerNodeCommands(program: Command, ctx: CliContext): void {
  const node = program.command("node").description("Calico node commands");
  node
    .command("status")
    .description("Show the status of this host's calico-node and its BGP sessions")
    .option(
      "--status-file <path>",
      `calico-node's --status-file (default: $CALICO_NODE_STATUS_FILE or ${DEFAULT_NODE_STATUS_FILE})`,
    )
    .action((opts: { statusFile?: string }) => {
      const path = opts.statusFile ?? process.env.CALICO_NODE_STATUS_FILE ?? DEFAULT_NODE_STATUS_FILE;
      let s: NodeStatusFile;
      try {
        s = JSON.parse(readFileSync(path, "utf8")) as NodeStatusFile;
      } catch (err) {
        ctx.out("Calico process is not running.");
        throw new Error(
          (err as NodeJS.ErrnoException).code === "ENOENT"
            ? `No status file "${path}" (run calico-node with --status-file ${path}, or pass --status-file)`
            : `Cannot read the status file "${path}": ${(err as Error).message}`,
        );
      }
      if (!alive(s.pid)) {
        ctx.out("Calico process is not running.");
        throw new Error(`The status file "${path}" was written by process ${s.pid}, which has exited`);
      }
      ctx.out(formatNodeStatus(s));
    });
}
