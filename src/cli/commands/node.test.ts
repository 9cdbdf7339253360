import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../cli.js";
import { formatNodeStatus, formatSince, type NodeStatusFile } from "./node.js";

const NOW = new Date(2026, 11, 5, 12, 0, 0);
const at = (h: number, m: number, s: number, day = 5) => new Date(2026, 11, day, h, m, s).toISOString();

const STATUS: NodeStatusFile = {
  node: "h1",
  pid: process.pid,
  bgp: {
    enabled: true,
    peers: [
      {
        address: "198.18.0.2",
        type: "node-to-node mesh",
        name: "Mesh_198_18_0_2",
        asn: 64512,
        state: "Established",
        since: at(11, 30, 4),
        info: "Established",
        routesReceived: 1,
      },
      {
        address: "198.18.0.254",
        type: "global",
        name: "Global_198_18_0_254",
        asn: 65100,
        state: "Active",
        since: at(9, 1, 2, 4),
        info: "connect: Connection refused",
        routesReceived: 0,
      },
      {
        address: "fd00::fe",
        type: "node specific",
        name: "Node_fd00__fe",
        asn: 65100,
        state: "Idle",
        since: at(11, 59, 0),
        info: "peer sent NOTIFICATION: Cease / administrative shutdown",
        routesReceived: 0,
      },
    ],
    originated: [],
    problems: [],
    errors: [],
  },
};

test("Calico's layout: IPv4 and IPv6 tables, STATE up/start, SINCE time today or date, INFO state + last error", () => {
  assert.equal(
    formatNodeStatus(STATUS, NOW),
    [
      "Calico process is running.",
      "",
      "IPv4 BGP status",
      "+--------------+-------------------+-------+------------+------------------------------------+",
      "| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |                INFO                |",
      "+--------------+-------------------+-------+------------+------------------------------------+",
      "| 198.18.0.2   | node-to-node mesh | up    | 11:30:04   | Established                        |",
      "| 198.18.0.254 | global            | start | 2026-12-04 | Active connect: Connection refused |",
      "+--------------+-------------------+-------+------------+------------------------------------+",
      "",
      "IPv6 BGP status",
      "+--------------+---------------+-------+----------+--------------------------------------------------------------+",
      "| PEER ADDRESS |   PEER TYPE   | STATE |  SINCE   |                             INFO                             |",
      "+--------------+---------------+-------+----------+--------------------------------------------------------------+",
      "| fd00::fe     | node specific | start | 11:59:00 | Idle peer sent NOTIFICATION: Cease / administrative shutdown |",
      "+--------------+---------------+-------+----------+--------------------------------------------------------------+",
      "",
    ].join("\n"),
  );
});

test("no peers of a family, BGP off, and a bad time", () => {
  const v4only: NodeStatusFile = { ...STATUS, bgp: { ...STATUS.bgp!, peers: STATUS.bgp!.peers.slice(0, 1) } };
  assert.match(formatNodeStatus(v4only, NOW), /IPv6 BGP status\nNo IPv6 peers found\.\n$/);
  assert.equal(
    formatNodeStatus(
      {
        bgp: {
          enabled: false,
          reason: "disabled with --no-bgp",
          peers: [],
          originated: [],
          problems: [],
          errors: [],
        },
      },
      NOW,
    ),
    "Calico process is running.\n\nThe BGP backend process is not running (disabled with --no-bgp).\n",
  );
  assert.equal(formatSince("garbage", NOW), "");
});

test("calicoctl node status reads --status-file; a missing file or dead process: not running, exit 1", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cts-node-status-"));
  try {
    const file = join(dir, "status.json");
    const run = async (args: string[]) => {
      let out = "";
      let err = "";
      const code = await runCli(args, {
        io: { stdout: (s) => (out += s), stderr: (s) => (err += s), readStdin: () => Promise.resolve("") },
      });
      return { code, out, err };
    };
    let r = await run(["node", "status", "--status-file", file]);
    assert.equal(r.code, 1);
    assert.equal(r.out, "Calico process is not running.\n");
    assert.match(r.err, /No status file/);
    writeFileSync(file, JSON.stringify(STATUS));
    r = await run(["node", "status", "--status-file", file]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Calico process is running\.\n\nIPv4 BGP status\n/);
    writeFileSync(file, JSON.stringify({ ...STATUS, pid: 2 ** 22 + 12345 }));
    r = await run(["node", "status", "--status-file", file]);
    assert.equal(r.code, 1);
    assert.match(r.err, /which has exited/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
