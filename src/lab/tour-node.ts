/**
 * The README's node-agent tour (`bash scripts/tour-node.sh`): one host namespace running a
 * real calico-node, three workloads wired as the CNI plugin wires them, an outside host — all
 * in namespaces this tour makes and removes. It measures connectivity with real packets,
 * applies a policy with calicoctl, measures again, and shows what the agent programmed.
 * Needs root (network namespaces, nftables).
 */
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runOk } from "../dataplane/netns.js";
import { waitForAgent } from "./agent-status.js";
import { OneHostFabric } from "./one-host-fabric.js";
import type { ProbeAgent } from "./probe.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "cli", "main.js");

const PROFILES = `apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.shop}
spec:
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
  labelsToApply: {pcns.projectcalico.org/name: shop}
`;

const POLICY = `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db-from-api, namespace: shop}
spec:
  selector: app == 'db'
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'api'}
    destination: {ports: [5432]}
`;

function calicoctl(f: OneHostFabric, args: string[], input?: string): void {
  process.stdout.write(`$ calicoctl ${args.join(" ")}\n`);
  const out = execFileSync(process.execPath, [CLI, "--datastore", f.dbUrl, ...args], {
    encoding: "utf8",
    ...(input !== undefined ? { input } : {}),
  });
  process.stdout.write(`${out}\n`);
}

async function matrix(f: OneHostFabric, names: string[]): Promise<void> {
  const targets = names.map((n) => f.workloads.get(`shop.${n}`)!);
  const from: [string, ProbeAgent][] = [
    ...targets.map((w) => [w.name, w.probe] as [string, ProbeAgent]),
    ["outside", f.extProbe!],
  ];
  const header = ["from \\ to (tcp/5432, ping)", ...targets.map((t) => `${t.name} ${t.v4}`)];
  const rows: string[][] = [];
  for (const [name, probe] of from) {
    const row = [name];
    for (const t of targets) {
      if (t.name === name) {
        row.push("-");
        continue;
      }
      const tcp = await probe.probe({ proto: "tcp", addr: t.v4, port: 5432, timeoutMs: 500 });
      const ping = await probe.probe({ proto: "icmp", addr: t.v4, timeoutMs: 1000 });
      const mark = (ok: boolean) => (ok ? "ok" : "blocked");
      row.push(`${mark(tcp.ok || tcp.error === "refused")}, ${mark(ping.ok)}`);
    }
    rows.push(row);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${line(header)}\n${rows.map(line).join("\n")}\n\n`);
}

async function main(): Promise<void> {
  const f = new OneHostFabric();
  try {
    process.stdout.write(
      "Building: host namespace h1 (198.18.0.1), an outside host (198.18.0.2), three workloads.\n\n",
    );
    await f.start();
    calicoctl(f, ["apply", "-f", "-"], PROFILES);
    const wl = [
      { name: "web", labels: { app: "web" }, v4: "198.19.1.1", v6: "fd00:19:0:1::1" },
      { name: "api", labels: { app: "api" }, v4: "198.19.1.2", v6: "fd00:19:0:1::2" },
      { name: "db", labels: { app: "db" }, v4: "198.19.1.3", v6: "fd00:19:0:1::3" },
    ];
    for (const w of wl) await f.addWorkload({ namespace: "shop", ...w, ports: [] });
    calicoctl(f, ["get", "workloadendpoints", "-n", "shop"]);
    process.stdout.write(
      "$ calico-node --datastore sqlite:… --nodename h1 --netns <host>   (in the background)\n\n",
    );
    f.startAgent();
    await waitForAgent(f, await f.revision());
    process.stdout.write(
      "Connectivity, measured with real packets (no policy: the namespace profile allows all):\n",
    );
    await matrix(f, ["web", "api", "db"]);
    calicoctl(f, ["apply", "-f", "-"], POLICY);
    await waitForAgent(f, await f.revision());
    process.stdout.write("Connectivity after the policy (only api may reach db, on TCP 5432):\n");
    await matrix(f, ["web", "api", "db"]);
    const db = f.workloads.get("shop.db")!;
    process.stdout.write(`What the agent programmed for db's interface ${db.iface} (ingress chain):\n`);
    const chain = await runOk("nft", ["list", "chain", "inet", "calico", `filter-cali-tw-${db.iface}`], {
      netns: f.host,
    });
    process.stdout.write(`${chain}\n`);
    const routes = await runOk("ip", ["route", "show", "proto", "83"], { netns: f.host });
    process.stdout.write(`Routes the agent wrote (proto 83):\n${routes}\n`);
  } finally {
    await f.stop();
    process.stdout.write("Cleaned up: namespaces, processes and files removed.\n");
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`tour-node: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
