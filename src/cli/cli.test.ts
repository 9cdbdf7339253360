import { describe, test, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { runCli } from "./cli.js";
import { ExitCode } from "./exit-codes.js";
import { MemoryDatastore } from "../datastore/memory.js";
import type { Datastore } from "../datastore/types.js";

const dir = mkdtempSync(join(tmpdir(), "calico-ts-cli-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let store: MemoryDatastore;
beforeEach(() => {
  store = new MemoryDatastore();
});

/** Run calicoctl in-process against the shared memory store; capture output. */
async function ctl(args: string[], stdin = "") {
  let stdout = "";
  let stderr = "";
  // runCli closes the store it opened; share one across runs by making close a no-op.
  const shared = new Proxy(store, {
    get(target, prop) {
      if (prop === "close") return () => Promise.resolve();
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Datastore;
  const code = await runCli(args, {
    io: {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
      readStdin: () => Promise.resolve(stdin),
    },
    env: {},
    openDatastore: () => Promise.resolve(shared),
  });
  return { code, stdout, stderr };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const POOLS = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 198.19.0.0/20
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-b
spec:
  cidr: 198.19.16.0/20
  natOutgoing: true
`;

const POLICY = (ns: string, name: string) => `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  selector: app == 'db'
  ingress:
    - action: Allow
      protocol: TCP
      destination:
        ports: [5432]
`;

describe("calicoctl apply/get", () => {
  test("applies a multi-document file and lists it as a table", async () => {
    const r = await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.equal(r.stdout, "Successfully applied 2 'IPPool' resource(s)\n");
    const g = await ctl(["get", "ippools"]);
    assert.equal(g.code, ExitCode.OK);
    assert.deepEqual(
      g.stdout.split("\n").map((l) => l.split(/\s{3,}/)),
      [
        ["NAME", "CIDR", "SELECTOR"],
        ["pool-a", "198.19.0.0/20", "all()"],
        ["pool-b", "198.19.16.0/20", "all()"],
        [""],
      ],
    );
  });

  test("wide output shows the defaults Calico stores", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    const g = await ctl(["get", "ippool", "-o", "wide"]);
    const [header, a, b] = g.stdout.split("\n").map((l) => l.split(/\s{3,}/));
    assert.deepEqual(header, [
      "NAME",
      "CIDR",
      "NAT",
      "IPIPMODE",
      "VXLANMODE",
      "DISABLED",
      "DISABLEBGPEXPORT",
      "SELECTOR",
      "ASSIGNMENTMODE",
    ]);
    assert.deepEqual(a, [
      "pool-a",
      "198.19.0.0/20",
      "false",
      "Never",
      "Never",
      "false",
      "false",
      "all()",
      "Automatic",
    ]);
    assert.equal(b?.[2], "true");
  });

  test("custom-columns picks any table column", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    const g = await ctl(["get", "ippools", "-o", "custom-columns=NAME,NAT,cidr"]);
    assert.equal(g.code, ExitCode.OK, g.stderr);
    assert.match(g.stdout, /^NAME\s+NAT\s+CIDR\npool-a\s+false\s+198\.19\.0\.0\/20\n/);
    const bad = await ctl(["get", "ippools", "-o", "custom-columns=NAME,COLOUR"]);
    assert.equal(bad.code, ExitCode.USAGE);
    assert.match(bad.stderr, /unknown column\(s\) COLOUR for IPPool; available: NAME, NAMESPACE, CIDR/);
  });

  test("every alias of a kind works", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    for (const alias of ["ippool", "ippools", "ipp", "ipps", "pool", "pools", "IPPool", "IPPools"]) {
      const g = await ctl(["get", alias]);
      assert.equal(g.code, ExitCode.OK, `${alias}: ${g.stderr}`);
      assert.match(g.stdout, /pool-a/);
    }
  });

  test("yaml and json output round-trip through apply", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    const one = await ctl(["get", "ippool", "pool-b", "-o", "yaml"]);
    const doc = parseYaml(one.stdout) as Record<string, any>;
    assert.equal(doc.kind, "IPPool");
    assert.equal(doc.spec.natOutgoing, true);
    assert.equal(doc.spec.blockSize, 26);
    assert.match(doc.metadata.resourceVersion, /^\d+$/);
    assert.match(doc.metadata.uid, /^[0-9a-f-]{36}$/);
    const list = JSON.parse((await ctl(["get", "ippools", "-o", "json"])).stdout) as Record<string, any>;
    assert.equal(list.kind, "IPPoolList");
    assert.equal(list.items.length, 2);
    // Re-applying what get printed (with its resourceVersion) succeeds: it is current.
    const again = await ctl(["apply", "-f", file("again.yaml", one.stdout)]);
    assert.equal(again.code, ExitCode.OK, again.stderr);
  });

  test("a stale resourceVersion is a conflict", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    const one = (await ctl(["get", "ippool", "pool-a", "-o", "yaml"])).stdout;
    await ctl(["label", "ippool", "pool-a", "x=y"]);
    const r = await ctl(["replace", "-f", file("stale.yaml", one)]);
    assert.equal(r.code, ExitCode.FAILED);
    assert.match(r.stderr, /update conflict: IPPool\(pool-a\)/);
  });

  test("namespaced kinds: -n, default namespace and -A", async () => {
    await ctl(["apply", "-f", file("np1.yaml", POLICY("shop", "db"))]);
    await ctl(["apply", "-f", file("np2.yaml", POLICY("default", "db2"))]);
    assert.doesNotMatch((await ctl(["get", "networkpolicy"])).stdout, /shop/);
    assert.match((await ctl(["get", "networkpolicy"])).stdout, /default\s+db2\s+default/);
    assert.match((await ctl(["get", "np", "-n", "shop"])).stdout, /shop\s+db\s+default/);
    const all = (await ctl(["get", "policies", "-A"])).stdout.trim().split("\n");
    assert.equal(all.length, 3);
    const y = parseYaml(
      (await ctl(["get", "networkpolicy", "db", "-n", "shop", "-o", "yaml"])).stdout,
    ) as Record<string, any>;
    assert.deepEqual(y.spec.types, ["Ingress"], "types inferred");
    assert.equal(y.spec.tier, "default");
  });

  test("reads from stdin with -f -", async () => {
    const r = await ctl(["create", "-f", "-"], POOLS);
    assert.equal(r.code, ExitCode.OK, r.stderr);
    assert.equal(r.stdout, "Successfully created 2 'IPPool' resource(s)\n");
  });
});

describe("calicoctl bad input", () => {
  const BROKEN = `${POOLS}---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  selector: app == 'web
  ingress:
    - action: allow
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-c
spec:
  cidr: 198.19.32.1/20
`;

  test("names document, kind, name, field path, value and what is allowed; writes nothing", async () => {
    const r = await ctl(["apply", "-f", file("broken.yaml", BROKEN)]);
    assert.equal(r.code, ExitCode.INVALID_INPUT);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /2 of 4 document\(s\) are invalid; nothing was written/);
    assert.match(r.stderr, /broken\.yaml: document 3 \(line \d+\), NetworkPolicy "shop\/web"/);
    assert.match(r.stderr, /spec\.selector = "app == 'web": invalid selector/);
    assert.match(r.stderr, /spec\.ingress\[0\]\.action = "allow": must be one of Allow, Deny, Log, Pass/);
    assert.match(r.stderr, /document 4 \(line \d+\), IPPool "pool-c"/);
    assert.match(r.stderr, /spec\.cidr = "198\.19\.32\.1\/20": .*no host bits set/);
    assert.match(
      (await ctl(["get", "ippools"])).stdout,
      /^NAME\s+CIDR\s+SELECTOR\n$/,
      "valid documents not written either",
    );
  });

  test("YAML syntax errors give the line", async () => {
    const r = await ctl(["apply", "-f", file("syntax.yaml", "kind: IPPool\nmetadata: [a,\n")]);
    assert.equal(r.code, ExitCode.INVALID_INPUT);
    assert.match(r.stderr, /syntax\.yaml: document 1 .*\n\s+line \d+, column \d+: YAML\/JSON syntax error/);
  });

  test("unknown kind, apiVersion and fields are reported", async () => {
    const r = await ctl([
      "apply",
      "-f",
      file(
        "kinds.yaml",
        `apiVersion: projectcalico.org/v3\nkind: IpPool\nmetadata: {name: x}\n---\napiVersion: v1\nkind: IPPool\nmetadata: {name: y}\nspec: {cidr: 198.19.0.0/24}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: z}\nspec: {cidr: 198.19.0.0/24, natOutgoin: true}\n`,
      ),
    ]);
    assert.equal(r.code, ExitCode.INVALID_INPUT);
    assert.match(r.stderr, /kind = "IpPool": must be one of .*; did you mean IPPool\?/);
    assert.match(r.stderr, /apiVersion = "v1": must be projectcalico\.org\/v3/);
    assert.match(r.stderr, /spec\.natOutgoin = true: unknown field/);
  });

  test("unknown kinds on the command line are usage errors", async () => {
    const r = await ctl(["get", "ippoolz"]);
    assert.equal(r.code, ExitCode.USAGE);
    assert.match(r.stderr, /Unknown resource type "ippoolz"/);
    assert.equal((await ctl(["frobnicate"])).code, ExitCode.USAGE);
    assert.equal((await ctl(["get"])).code, ExitCode.USAGE);
    assert.equal((await ctl(["apply"])).code, ExitCode.USAGE);
  });

  test("a missing file is a usage error", async () => {
    const r = await ctl(["apply", "-f", join(dir, "nope.yaml")]);
    assert.equal(r.code, ExitCode.USAGE);
    assert.match(r.stderr, /Cannot read ".*nope\.yaml": no such file/);
  });
});

describe("calicoctl create/replace/delete semantics", () => {
  test("create fails on an existing resource unless --skip-exists", async () => {
    const p = file("pools.yaml", POOLS);
    assert.equal((await ctl(["create", "-f", p])).code, ExitCode.OK);
    const again = await ctl(["create", "-f", p]);
    assert.equal(again.code, ExitCode.FAILED);
    assert.match(again.stderr, /resource already exists: IPPool\(pool-a\)/);
    const skip = await ctl(["create", "-f", p, "--skip-exists"]);
    assert.equal(skip.code, ExitCode.OK);
    assert.match(skip.stdout, /2 skipped/);
  });

  test("replace needs the resource to exist", async () => {
    const r = await ctl(["replace", "-f", file("pools.yaml", POOLS)]);
    assert.equal(r.code, ExitCode.FAILED);
    assert.match(r.stderr, /resource does not exist: IPPool\(pool-a\)/);
  });

  test("delete by kind and name, by file, and --skip-not-exists", async () => {
    const p = file("pools.yaml", POOLS);
    await ctl(["apply", "-f", p]);
    assert.equal(
      (await ctl(["delete", "ippool", "pool-a"])).stdout,
      "Successfully deleted 1 'IPPool' resource(s)\n",
    );
    const missing = await ctl(["delete", "ippool", "pool-a"]);
    assert.equal(missing.code, ExitCode.FAILED);
    assert.match(missing.stderr, /resource does not exist: IPPool\(pool-a\)/);
    assert.equal((await ctl(["delete", "ippool", "pool-a", "-s"])).code, ExitCode.OK);
    const byFile = await ctl(["delete", "-f", p, "--skip-not-exists"]);
    assert.equal(byFile.code, ExitCode.OK, byFile.stderr);
    assert.match((await ctl(["get", "ippools"])).stdout, /^NAME\s+CIDR\s+SELECTOR\n$/);
  });

  test("overlapping pools are rejected", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    const r = await ctl([
      "create",
      "-f",
      file(
        "overlap.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: big}\nspec: {cidr: 198.19.0.0/16}\n",
      ),
    ]);
    assert.equal(r.code, ExitCode.FAILED);
    assert.match(r.stderr, /CIDR 198\.19\.0\.0\/16 overlaps with IPPool\(pool-a\)/);
  });

  test("policies need their tier; tiers with policies and the default tier cannot be deleted", async () => {
    const pol = `apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: sec.p1}\nspec: {tier: sec, selector: all()}\n`;
    const noTier = await ctl(["apply", "-f", file("p.yaml", pol)]);
    assert.equal(noTier.code, ExitCode.FAILED);
    assert.match(noTier.stderr, /tier "sec" does not exist/);
    await ctl([
      "apply",
      "-f",
      file(
        "t.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: sec}\nspec: {order: 10}\n",
      ),
    ]);
    assert.equal((await ctl(["apply", "-f", file("p.yaml", pol)])).code, ExitCode.OK);
    const del = await ctl(["delete", "tier", "sec"]);
    assert.equal(del.code, ExitCode.FAILED);
    assert.match(del.stderr, /still contains GlobalNetworkPolicy\(sec\.p1\)/);
    assert.match((await ctl(["delete", "tier", "default"])).stderr, /built in/);
    assert.match((await ctl(["get", "tiers"])).stdout, /default\s+1000000/);
  });
});

describe("calicoctl patch, label, version", () => {
  test("merge and JSON patches are validated like any write", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    const ok = await ctl(["patch", "ippool", "pool-a", "-p", '{"spec":{"disabled":true}}']);
    assert.equal(ok.code, ExitCode.OK, ok.stderr);
    assert.match(
      (await ctl(["get", "ippool", "-o", "wide"])).stdout,
      /pool-a\s+198\.19\.0\.0\/20\s+false\s+Never\s+Never\s+true/,
    );
    const json = await ctl([
      "patch",
      "ippool",
      "pool-a",
      "--type",
      "json",
      "-p",
      '[{"op":"replace","path":"/spec/disabled","value":false}]',
    ]);
    assert.equal(json.code, ExitCode.OK, json.stderr);
    const bad = await ctl(["patch", "ippool", "pool-a", "-p", '{"spec":{"ipipMode":"Sometimes"}}']);
    assert.equal(bad.code, ExitCode.INVALID_INPUT);
    assert.match(bad.stderr, /spec\.ipipMode = "Sometimes": must be one of/);
    const immut = await ctl(["patch", "ippool", "pool-a", "-p", '{"spec":{"cidr":"198.19.64.0/20"}}']);
    assert.equal(immut.code, ExitCode.FAILED);
    assert.match(immut.stderr, /spec\.cidr may not be changed/);
    const rename = await ctl(["patch", "ippool", "pool-a", "-p", '{"metadata":{"name":"other"}}']);
    assert.equal(rename.code, ExitCode.INVALID_INPUT);
  });

  test("label sets, refuses to overwrite without --overwrite, and removes", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    assert.equal((await ctl(["label", "ippool", "pool-a", "env=prod"])).code, ExitCode.OK);
    const clash = await ctl(["label", "ippool", "pool-a", "env=dev"]);
    assert.equal(clash.code, ExitCode.INVALID_INPUT);
    assert.match(clash.stderr, /already set to "prod"; use --overwrite/);
    assert.equal((await ctl(["label", "ippool", "pool-a", "env=dev", "--overwrite"])).code, ExitCode.OK);
    let doc = parseYaml((await ctl(["get", "ippool", "pool-a", "-o", "yaml"])).stdout) as Record<string, any>;
    assert.equal(doc.metadata.labels.env, "dev");
    assert.equal((await ctl(["label", "ippool", "pool-a", "env", "--remove"])).code, ExitCode.OK);
    doc = parseYaml((await ctl(["get", "ippool", "pool-a", "-o", "yaml"])).stdout) as Record<string, any>;
    assert.equal(doc.metadata.labels?.env, undefined);
    assert.equal((await ctl(["label", "ippool", "pool-a", "bad key=x"])).code, ExitCode.INVALID_INPUT);
  });

  test("version prints client and cluster versions", async () => {
    await ctl(["apply", "-f", file("pools.yaml", POOLS)]);
    const v = await ctl(["version"]);
    assert.equal(v.code, ExitCode.OK);
    assert.match(
      v.stdout,
      /^Client Version:\s+v\d+\.\d+\.\d+\nGit commit:\s+\S+\nCluster Version:\s+v\d+\.\d+\.\d+\nCluster Type:\s+calico-ts\n$/,
    );
  });

  test("--help lists kinds and exit codes", async () => {
    const h = await ctl(["--help"]);
    assert.equal(h.code, ExitCode.OK);
    assert.match(h.stdout, /GlobalNetworkPolicy\s+globalnetworkpolicies, gnp/);
    assert.match(h.stdout, /Exit codes:/);
    for (const cmd of [
      "create",
      "apply",
      "replace",
      "delete",
      "get",
      "patch",
      "label",
      "version",
      "validate",
    ]) {
      const c = await ctl([cmd, "--help"]);
      assert.equal(c.code, ExitCode.OK, cmd);
      assert.match(c.stdout, new RegExp(`Usage: calicoctl ${cmd}`));
    }
  });
});
