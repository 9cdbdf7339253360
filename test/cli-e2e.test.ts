/**
 * calicoctl as a newcomer runs it: the real executable, a real sqlite file, several
 * processes at once. Follows the README tour.
 */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = join(root, "dist", "src", "cli", "main.js");
const examples = join(root, "examples");
let dir: string;
let datastore: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "calico-ts-e2e-"));
  datastore = `sqlite:${join(dir, "calico-ts.db")}`;
});
after(() => rmSync(dir, { recursive: true, force: true }));

function calicoctl(
  args: string[],
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, CALICO_DATASTORE: datastore },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(stdin ?? "");
  });
}

describe("calicoctl end to end on the embedded sqlite datastore", () => {
  test("applies the quickstart, reads it back as table and YAML", async () => {
    const apply = await calicoctl(["apply", "-f", join(examples, "quickstart.yaml")]);
    assert.equal(apply.code, 0, apply.stderr);
    assert.match(apply.stdout, /^Successfully applied 10 resource\(s\)\n$/);

    const pools = await calicoctl(["get", "ippools"]);
    assert.equal(pools.code, 0);
    assert.match(
      pools.stdout,
      /^NAME\s+CIDR\s+SELECTOR\npool-a\s+198\.19\.0\.0\/20\s+all\(\)\npool-v6\s+fd00:19::\/48\s+all\(\)\n$/,
    );

    const knp = await calicoctl([
      "get",
      "networkpolicy",
      "knp.default.web-ingress",
      "-n",
      "shop",
      "-o",
      "yaml",
    ]);
    assert.equal(knp.code, 0, knp.stderr);
    const doc = parseYaml(knp.stdout) as { spec: { order: number; selector: string; types: string[] } };
    assert.equal(doc.spec.order, 1000);
    assert.deepEqual(doc.spec.types, ["Ingress"]);
    assert.match(doc.spec.selector, /projectcalico\.org\/orchestrator == 'k8s'/);
  });

  test("the broken example fails precisely and writes nothing", async () => {
    const r = await calicoctl(["apply", "-f", join(examples, "broken.yaml")]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /broken\.yaml: document 1 \(line \d+\), IPPool "pool-b"/);
    assert.match(r.stderr, /broken\.yaml: document 2 \(line \d+\), NetworkPolicy "shop\/web-egress"/);
    const sets = await calicoctl(["get", "globalnetworksets"]);
    assert.doesNotMatch(sets.stdout, /fine/, "the valid third document was not written either");
  });

  test("several calicoctl processes write one sqlite file at once", async () => {
    const n = 6;
    const runs = Array.from({ length: n }, (_, i) =>
      calicoctl(
        ["create", "-f", "-"],
        `apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: concurrent-${i}\nspec:\n  nets: [198.18.${i}.0/24]\n`,
      ),
    );
    const results = await Promise.all(runs);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const list = await calicoctl(["get", "globalnetworksets", "-o", "json"]);
    const names = (JSON.parse(list.stdout) as { items: { metadata: { name: string } }[] }).items.map(
      (i) => i.metadata.name,
    );
    for (let i = 0; i < n; i++) assert.ok(names.includes(`concurrent-${i}`), `concurrent-${i} missing`);
  });

  test("a bad datastore setting is exit code 4 with the accepted forms", async () => {
    const child = spawn(process.execPath, [bin, "get", "ippools"], {
      env: { ...process.env, CALICO_DATASTORE: "mysql://nope" },
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? -1)));
    assert.equal(code, 4);
    assert.match(stderr, /mysql:\/\/nope/);
    assert.match(stderr, /sqlite:/);
  });
});
