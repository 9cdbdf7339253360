import assert from "node:assert/strict";
import { test } from "node:test";
import { demoExpect } from "./lab-demo.js";
import { columns, formatMatrix } from "./lab-format.js";
import { parseLabels } from "./lab.js";
import { torBirdConfig, torResources } from "./lab-tor.js";
import type { LabState } from "./lab-state.js";

test("columns pads every column but the last", () => {
  assert.equal(
    columns(
      ["A", "LONGER"],
      [
        ["xyz", "1"],
        ["q", ""],
      ],
      "",
    ),
    "A    LONGER\nxyz  1\nq",
  );
});

test("the matrix marks cells that differ from the demo policy and names them", () => {
  const cells = [
    { from: "frontend", to: "backend", ok: true, detail: "backend" },
    { from: "backend", to: "frontend", ok: true, detail: "frontend" },
    { from: "client", to: "backend", ok: true, detail: "backend" }, // the policy says deny
    { from: "backend", to: "client", ok: false, detail: "timeout" }, // the policy says allow
    { from: "frontend", to: "client", ok: false, detail: "timeout" },
    { from: "client", to: "frontend", ok: true, detail: "frontend" },
  ].map((c) => ({ ...c, expected: demoExpect(c.from, c.to) }));
  const text = formatMatrix({ family: 4, proto: "tcp", port: 80, cells });
  const rows = text.split("\n");
  assert.match(rows[0]!, /^Connectivity, IPv4 TCP port 80/);
  assert.deepEqual(
    rows.slice(1, 5).map((r) => r.trim().split(/\s+/)),
    [
      ["FROM", "\\", "TO", "frontend", "backend", "client"],
      ["frontend", "-", "✓", "✗!"],
      ["backend", "✓", "-", "✗!"],
      ["client", "✓", "✓!", "-"],
    ],
  );
  assert.match(
    rows[5]!,
    /differs from the demo policy: client → backend answered; backend → client timeout; frontend → client timeout/,
  );
});

test("demoExpect: backend only from frontend, db only from backend, the rest open; unknown workloads have no expectation", () => {
  const table: [string, string, boolean | undefined][] = [
    ["frontend", "backend", true],
    ["client", "backend", false],
    ["ext", "backend", false],
    ["backend", "db", true],
    ["frontend", "db", false],
    ["db", "frontend", true],
    ["ext", "client", true],
    ["web2", "backend", undefined],
  ];
  for (const [from, to, want] of table) assert.equal(demoExpect(from, to), want, `${from} → ${to}`);
});

test("parseLabels reads k=v,k=v and refuses what is not a Kubernetes label", () => {
  assert.deepEqual(parseLabels("app=web, tier=front,projectcalico.org/x=1,flag"), {
    app: "web",
    tier: "front",
    "projectcalico.org/x": "1",
    flag: "",
  });
  assert.deepEqual(parseLabels(""), {});
  for (const bad of ["a b=1", "=v", "k=v w", "k=-x-"])
    assert.throws(() => parseLabels(bad), /Invalid label/, bad);
});

test("--tor: BIRD has one route-reflector client per host and family; the datastore turns the mesh off", () => {
  const s = {
    ipv6: true,
    hosts: [
      { name: "h1", v4: "198.18.0.1", v6: "fd00::1" },
      { name: "h2", v4: "198.18.0.2", v6: "fd00::2" },
    ],
  } as unknown as LabState;
  const conf = torBirdConfig(s);
  assert.match(conf, /router id 198\.18\.0\.253;/);
  assert.match(
    conf,
    /protocol bgp h1 from hosts_ipv4 \{\s+local 198\.18\.0\.253 as 64512;\s+neighbor 198\.18\.0\.1 as 64512;/,
  );
  assert.match(
    conf,
    /protocol bgp h2_v6 from hosts_ipv6 \{\s+local fd00::fd as 64512;\s+neighbor fd00::2 as 64512;/,
  );
  assert.equal(conf.match(/rr client;/g)?.length, 2);
  assert.deepEqual(
    torResources(false).map((r) => (r as { kind: string; spec: unknown }).spec),
    [
      { nodeToNodeMeshEnabled: false, asNumber: 64512 },
      { peerIP: "198.18.0.253", asNumber: 64512 },
    ],
  );
});
