/** Text rendering of the lab's status: hosts, BGP sessions, workloads, connectivity matrices. */
import type { LabMatrix, LabStatus } from "./lab.js";

/** Left-aligned columns separated by two spaces, headers in capitals. */
export function columns(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  indent = "  ",
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `${indent}${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")}`.trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** An ISO time as HH:MM:SS local time (BIRD's SINCE column for today). */
function since(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
}

const YES = "✓";
const NO = "✗";

export function formatMatrix(m: LabMatrix): string {
  const names = [...new Set(m.cells.flatMap((c) => [c.from, c.to]))];
  const cell = (from: string, to: string): string => {
    if (from === to) return "-";
    const c = m.cells.find((x) => x.from === from && x.to === to);
    if (c === undefined) return "?";
    const mark = c.ok ? YES : NO;
    return c.expected === undefined || c.expected === c.ok ? mark : `${mark}!`;
  };
  const rows = names.map((from) => [from, ...names.map((to) => cell(from, to))]);
  const bad = m.cells.filter((c) => c.expected !== undefined && c.expected !== c.ok);
  const out = [
    `Connectivity, IPv${m.family} ${m.proto.toUpperCase()} port ${m.port} (row → column, real packets; ${YES} answered, ${NO} no answer):`,
    columns(["FROM \\ TO", ...names], rows),
  ];
  if (bad.length > 0)
    out.push(
      `  ! differs from the demo policy: ${bad.map((c) => `${c.from} → ${c.to} ${c.ok ? "answered" : c.detail}`).join("; ")}`,
    );
  return out.join("\n");
}

export function formatStatus(st: LabStatus): string {
  const out: string[] = [];
  out.push(
    `Lab "${st.name}" (${st.phase}): datastore ${st.datastore}, state in ${st.stateDir}${st.bigTcp ? "; BIG TCP (192 KiB packets)" : ""}`,
  );
  if (st.apiserver !== undefined)
    out.push(`calico-apiserver: ${st.apiserver.url} (${st.apiserver.state}; reachable from every host)`);
  out.push("");
  out.push("Hosts:");
  out.push(
    columns(
      ["HOST", "NETNS", "ADDRESSES", "CALICO-NODE", "APPLIED REV"],
      st.hosts.map((h) => [
        h.name,
        h.netns,
        [h.v4, h.v6].filter((x) => x !== undefined).join(" "),
        h.agent === "stopped" ? "stopped" : `${h.ready ? "ready" : "starting"} (pid ${h.pid})`,
        h.appliedRevision === undefined ? "-" : String(h.appliedRevision),
      ]),
    ),
  );
  out.push("", "BGP sessions:");
  const sessions = st.hosts.flatMap((h) =>
    h.bgp.map((p) => [h.name, p.peer, p.type, p.state, since(p.since)]),
  );
  out.push(
    sessions.length === 0 ? "  (none)" : columns(["HOST", "PEER", "TYPE", "STATE", "SINCE"], sessions),
  );
  if (st.tor !== undefined) {
    out.push(
      "",
      `ToR router ${st.tor.address} (BIRD, ${st.tor.bird}, route reflector; plain host behind it: ext ${st.tor.ext}):`,
    );
    out.push(
      st.tor.sessions.length === 0
        ? "  (BIRD does not answer)"
        : columns(
            ["PROTOCOL", "STATE", "INFO"],
            st.tor.sessions.map((p) => [p.name, p.state, p.info]),
          ),
    );
  }
  out.push("", "Workloads:");
  out.push(
    st.workloads.length === 0
      ? "  (none)"
      : columns(
          ["NAME", "HOST", "NAMESPACE", "ADDRESSES", "LABELS", "INTERFACE", "PROBE"],
          st.workloads.map((w) => [
            w.name,
            w.host,
            w.namespace,
            [...w.ipv4, ...w.ipv6].join(" "),
            Object.entries(w.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(","),
            w.iface,
            w.probe,
          ]),
        ),
  );
  for (const m of st.matrices) out.push("", formatMatrix(m));
  return out.join("\n");
}

export function nextSteps(st: LabStatus, cli = "calicoctl", flags = ""): string {
  const a = st.workloads.find((w) => w.name === "frontend") ?? st.workloads[0];
  // A peer the demo policy leaves open to everything (ping included).
  const open = st.workloads.find((w) => w.name === "client" && w !== a) ?? st.workloads.find((w) => w !== a);
  const ds = `--datastore ${st.datastore}`;
  const dsPrefix = st.datastore.startsWith("etcd:") ? `lab exec${flags} h1 -- ${cli} ` : "";
  const steps: [string, string][] = [
    [`lab status${flags}`, "hosts, BGP, workloads and a fresh matrix"],
    ...(a !== undefined
      ? ([[`lab exec${flags} ${a.name} -- ip addr`, "any command inside a workload's namespace"]] as [
          string,
          string,
        ][])
      : []),
    ...(a !== undefined && open?.ipv4[0] !== undefined
      ? ([
          [
            `lab exec${flags} ${a.name} -- ping -c1 ${open.ipv4[0]}`,
            `${a.name} to ${open.name} on another host`,
          ],
        ] as [string, string][])
      : []),
    ...(st.tor !== undefined && a?.ipv4[0] !== undefined
      ? ([
          [
            `lab exec${flags} ext -- ping -c1 ${a.ipv4[0]}`,
            "the plain host behind the ToR reaches a workload",
          ],
          [`lab exec${flags} tor -- ip route`, "the ToR's kernel: every block via its host (proto bird)"],
        ] as [string, string][])
      : []),
    [`lab add-workload${flags} h1 web2 --labels app=frontend`, "attached by the calico CNI plugin"],
    [`lab del-workload${flags} web2`, ""],
    // etcd listens in the lab's fabric namespace: calicoctl reaches it from a host's.
    [`${dsPrefix}${ds} get networkpolicy -n demo -o yaml`, "the demo policies"],
    [`${dsPrefix}${ds} ipam show --show-blocks`, "blocks affine to each host"],
    [`node status --status-file ${st.stateDir}/h1-status.json`, "h1's BGP sessions"],
    ...(st.apiserver !== undefined
      ? ([
          [
            `lab exec${flags} h1 -- ${cli} --datastore ${st.apiserver.url} get workloadendpoints -A`,
            "through calico-apiserver, from a host",
          ],
        ] as [string, string][])
      : []),
    [`lab down${flags}`, "removes every namespace and process"],
  ];
  return [
    "Try next:",
    ...steps.flatMap(([c, why]) => [...(why === "" ? [] : [`  # ${why}`]), `  ${cli} ${c}`]),
  ].join("\n");
}
