/**
 * A real client no one here wrote: kubectl against the Kubernetes-convention API handler, in
 * process on 127.0.0.1 over plain HTTP, with a generated kubeconfig. Covers discovery
 * (api-resources, short names), Table output, -o yaml, client-side apply (create, then
 * update through a merge patch), delete, and get -w.
 *
 * Outside CI the suite skips with a reason when kubectl is not installed; under CI it runs.
 */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { READER, startTestServer, type TestServer } from "../src/apiserver/k8s/test-server.js";
import { ApiServer } from "../src/apiserver/server.js";
import { TokenAuthenticator } from "../src/apiserver/auth.js";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { ResourceStore } from "../src/datastore/resources.js";
import { makeCert } from "./apiserver-fixture.js";

const KUBECTL = process.env.KUBECTL ?? "/usr/bin/kubectl";
const haveKubectl = existsSync(KUBECTL);
const inCI = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false";
const skip = !haveKubectl && !inCI ? `kubectl not found at ${KUBECTL} (install kubernetes-client)` : false;

/** Every kubectl run is bounded; whatever is still running at the end is killed in after(). */
const RUN_TIMEOUT_MS = 30_000;
const children = new Set<ChildProcess>();

let s: TestServer;
let ro: TestServer | undefined;
let dir: string;
let kubeconfig: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function writeKubeconfig(path: string, url: string): void {
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: calico
  cluster: {server: "${url}"}
users:
- name: admin
  user: {token: test-token}
contexts:
- name: calico
  context: {cluster: calico, user: admin}
current-context: calico
`,
  );
}

function kubectl(args: string[], config = kubeconfig): Promise<Run> {
  return new Promise((resolve, reject) => {
    // HOME and the discovery cache live beside the kubeconfig, in the suite's temp dir.
    const home = dirname(config);
    const child = spawn(KUBECTL, ["--kubeconfig", config, "--cache-dir", join(home, "cache"), ...args], {
      env: { ...process.env, HOME: home, KUBECONFIG: config },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function manifest(order: number): string {
  return `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 198.19.0.0/20
  natOutgoing: true
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: allow-dns
spec:
  selector: all()
  order: ${order}
  egress:
  - action: Allow
    protocol: UDP
    destination:
      ports: [53]
`;
}

describe("kubectl against the Kubernetes-convention API", { skip }, () => {
  before(async () => {
    if (!haveKubectl) throw new Error(`CI requires kubectl at ${KUBECTL} (Debian kubernetes-client)`);
    dir = mkdtempSync(join(tmpdir(), "calico-ts-kubectl-"));
    s = await startTestServer();
    kubeconfig = join(dir, "kubeconfig");
    writeKubeconfig(kubeconfig, s.url);
  });

  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    children.clear();
    if (s !== undefined) await s.close();
    if (ro !== undefined) await ro.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test("api-resources lists every Calico kind with its short names", async () => {
    const r = await kubectl(["api-resources"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+SHORTNAMES\s+APIVERSION\s+NAMESPACED\s+KIND$/m);
    assert.match(
      r.stdout,
      /^globalnetworkpolicies\s+gnp,gnps\s+projectcalico\.org\/v3\s+false\s+GlobalNetworkPolicy$/m,
    );
    assert.match(r.stdout, /^networkpolicies\s+\S+\s+projectcalico\.org\/v3\s+true\s+NetworkPolicy$/m);
    assert.match(r.stdout, /^ippools\s+\S+\s+projectcalico\.org\/v3\s+false\s+IPPool$/m);
  });

  test("apply -f creates, get ippools prints calicoctl's columns as a Table", async () => {
    const file = join(dir, "manifest.yaml");
    writeFileSync(file, manifest(100));
    const apply = await kubectl(["apply", "-f", file]);
    assert.equal(apply.code, 0, apply.stderr);
    assert.match(apply.stdout, /^ippool\.projectcalico\.org\/pool-a created$/m);
    assert.match(apply.stdout, /^globalnetworkpolicy\.projectcalico\.org\/allow-dns created$/m);

    const get = await kubectl(["get", "ippools"]);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^NAME\s+CIDR\s+SELECTOR\s+AGE\npool-a\s+198\.19\.0\.0\/20\s+all\(\)\s+\d+s\n$/);
    const wide = await kubectl(["get", "ippools", "-o", "wide"]);
    assert.match(wide.stdout, /^NAME\s+CIDR\s+SELECTOR\s+AGE\s+NAT\s+IPIPMODE/);
    assert.ok(s.requests.some((r) => r.startsWith("GET /apis/projectcalico.org/v3/ippools")));
  });

  test("get gnp -o yaml prints the plain objects", async () => {
    const r = await kubectl(["get", "gnp", "-o", "yaml"]);
    assert.equal(r.code, 0, r.stderr);
    const doc = parseYaml(r.stdout);
    assert.equal(doc.kind, "List");
    assert.equal(doc.items.length, 1);
    const p = doc.items[0];
    assert.equal(p.apiVersion, "projectcalico.org/v3");
    assert.equal(p.kind, "GlobalNetworkPolicy");
    assert.equal(p.metadata.name, "allow-dns");
    assert.equal(p.spec.order, 100);
    assert.match(p.metadata.resourceVersion, /^\d+$/);
    assert.ok(p.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]);
  });

  test("apply -f again updates through a patch; unchanged objects stay unchanged", async () => {
    const before = (await s.store.get("GlobalNetworkPolicy", "allow-dns")).metadata;
    const file = join(dir, "manifest.yaml");
    writeFileSync(file, manifest(200));
    const apply = await kubectl(["apply", "-f", file]);
    assert.equal(apply.code, 0, apply.stderr);
    assert.match(apply.stdout, /^ippool\.projectcalico\.org\/pool-a unchanged$/m);
    assert.match(apply.stdout, /^globalnetworkpolicy\.projectcalico\.org\/allow-dns configured$/m);
    assert.ok(
      s.requests.some((r) =>
        r.startsWith("PATCH /apis/projectcalico.org/v3/globalnetworkpolicies/allow-dns"),
      ),
    );
    const after = await s.store.get("GlobalNetworkPolicy", "allow-dns");
    assert.equal(after.spec.order, 200);
    assert.equal(after.metadata.uid, before.uid);
    assert.notEqual(after.metadata.resourceVersion, before.resourceVersion);
  });

  test("diff shows what apply would change (server-side dry run), changing nothing", async () => {
    const rev = await s.datastore.revision();
    const file = join(dir, "manifest-next.yaml");
    writeFileSync(file, manifest(250));
    const diff = await kubectl(["diff", "-f", file]);
    assert.equal(diff.code, 1, diff.stderr); // 1: differences found
    assert.match(diff.stdout, /^- {2}order: 200$/m);
    assert.match(diff.stdout, /^\+ {2}order: 250$/m);
    assert.equal(await s.datastore.revision(), rev);
  });

  test("an invalid manifest is refused with the server's field errors", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: bad}
spec:
  selector: "app =="
  ingress: [{action: Maybe}]
`,
    );
    const r = await kubectl(["apply", "-f", file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /GlobalNetworkPolicy "bad" is invalid/);
    assert.match(r.stderr, /spec\.ingress\[0\]\.action: Invalid value: "Maybe"/);
    assert.equal((await s.store.list("GlobalNetworkPolicy")).items.length, 1);
  });

  test("get gnp -w prints a change as it happens", async () => {
    const child = spawn(
      KUBECTL,
      [
        "--kubeconfig",
        kubeconfig,
        "--cache-dir",
        join(dir, "cache"),
        "get",
        "gnp",
        "-w",
        "--request-timeout=20s",
      ],
      { env: { ...process.env, HOME: dir }, stdio: ["ignore", "pipe", "pipe"] },
    );
    children.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    try {
      await until("the watch request", () =>
        s.requests.some((r) => /globalnetworkpolicies\?.*watch=true/.test(r)),
      );
      await until("the initial listing", () => out.includes("allow-dns"));
      await s.store.create({
        apiVersion: "projectcalico.org/v3",
        kind: "GlobalNetworkPolicy",
        metadata: { name: "watched" },
        spec: { selector: "all()", ingress: [{ action: "Allow" }] },
      });
      await until(`"watched" in kubectl's output (got ${JSON.stringify(out)}, ${JSON.stringify(err)})`, () =>
        /^watched\s+default\s+\d+s$/m.test(out),
      );
      assert.match(out, /^NAME\s+TIER\s+AGE$/m);
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
      children.delete(child);
    }
  });

  test("delete removes it; get then reports NotFound", async () => {
    const del = await kubectl(["delete", "gnp", "watched", "allow-dns"]);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /globalnetworkpolicy\.projectcalico\.org "allow-dns" deleted/);
    const get = await kubectl(["get", "gnp", "allow-dns"]);
    assert.notEqual(get.code, 0);
    assert.match(
      get.stderr,
      /Error from server \(NotFound\): globalnetworkpolicies\.projectcalico\.org "allow-dns" not found/,
    );
    const list = await kubectl(["get", "gnp"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stderr, /No resources found/);
  });

  test("namespaced kinds: -n and -A", async () => {
    const file = join(dir, "np.yaml");
    writeFileSync(
      file,
      `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: prod}
spec: {selector: "app == 'web'", ingress: [{action: Allow}]}
`,
    );
    assert.equal((await kubectl(["apply", "-f", file])).code, 0);
    const all = await kubectl(["get", "networkpolicies", "-A"]);
    assert.match(all.stdout, /^NAMESPACE\s+NAME\s+TIER\s+AGE\nprod\s+allow-web\s+default\s+\d+s\n$/);
    const prod = await kubectl(["get", "np", "-n", "prod", "-l", "projectcalico.org/tier=default"]);
    assert.match(prod.stdout, /^allow-web\s+default/m);
    const dev = await kubectl(["get", "np", "-n", "dev"]);
    assert.match(dev.stderr, /No resources found in dev namespace/);
  });

  test("a read-only identity can get but its writes are Forbidden", async () => {
    ro = await startTestServer(READER);
    const config = join(dir, "kubeconfig-ro");
    writeKubeconfig(config, ro.url);
    const get = await kubectl(["get", "tiers"], config);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^default\s+1000000\s/m);
    const del = await kubectl(["delete", "tier", "default"], config);
    assert.notEqual(del.code, 0);
    assert.match(
      del.stderr,
      /Error from server \(Forbidden\): tiers\.projectcalico\.org "default" is forbidden: User "viewer" cannot delete/,
    );
  });
});

/**
 * The demonstration: kubectl with a kubeconfig and a bearer token against the real
 * calico-apiserver (TLS, static token file, watch cache). kubectl sends a token only over
 * HTTPS, so this is the setup an operator needs.
 */
describe("kubectl against calico-apiserver over TLS with bearer tokens", { skip }, () => {
  let server: ApiServer | undefined;
  let datastore: MemoryDatastore | undefined;
  let cert: ReturnType<typeof makeCert> | undefined;
  let tdir: string;
  const configs = { admin: "", viewer: "", stranger: "" };

  before(async () => {
    if (!haveKubectl) throw new Error(`CI requires kubectl at ${KUBECTL} (Debian kubernetes-client)`);
    tdir = mkdtempSync(join(tmpdir(), "calico-ts-kubectl-tls-"));
    cert = makeCert();
    const tokenFile = join(tdir, "tokens.csv");
    writeFileSync(tokenFile, 'admin-token,admin,1\nviewer-token,viewer,2,"read-only"\n');
    datastore = new MemoryDatastore();
    server = new ApiServer({
      store: datastore,
      tls: { cert: cert.cert, key: cert.key },
      tokens: TokenAuthenticator.fromFile(tokenFile),
    });
    await server.start();
    for (const [who, token] of [
      ["admin", "admin-token"],
      ["viewer", "viewer-token"],
      ["stranger", "no-such-token"],
    ] as const) {
      configs[who] = join(tdir, `kubeconfig-${who}`);
      writeFileSync(
        configs[who],
        `apiVersion: v1
kind: Config
clusters:
- name: calico
  cluster: {server: "${server.url}", certificate-authority: "${cert.certPath}"}
users:
- name: ${who}
  user: {token: ${token}}
contexts:
- name: calico
  context: {cluster: calico, user: ${who}}
current-context: calico
`,
      );
    }
  });

  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    children.clear();
    if (server !== undefined) await server.stop(500);
    if (datastore !== undefined) await datastore.close();
    cert?.cleanup();
    if (tdir !== undefined) rmSync(tdir, { recursive: true, force: true });
  });

  test("apply, get (table), get -w through the watch cache; read-only and unknown tokens refused", async () => {
    const file = join(tdir, "manifest.yaml");
    writeFileSync(file, manifest(100));
    const apply = await kubectl(["apply", "-f", file], configs.admin);
    assert.equal(apply.code, 0, apply.stderr);
    assert.match(apply.stdout, /globalnetworkpolicy\.projectcalico\.org\/allow-dns created/);
    const get = await kubectl(["get", "ippools"], configs.admin);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^pool-a\s+198\.19\.0\.0\/20\s+all\(\)\s+\d+s$/m);

    const child = spawn(
      KUBECTL,
      ["--kubeconfig", configs.viewer, "--cache-dir", join(tdir, "cache"), "get", "gnp", "-w"],
      { env: { ...process.env, HOME: tdir }, stdio: ["ignore", "pipe", "pipe"] },
    );
    children.add(child);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    try {
      await until("the initial listing", () => out.includes("allow-dns"));
      await new ResourceStore(datastore!).create({
        apiVersion: "projectcalico.org/v3",
        kind: "GlobalNetworkPolicy",
        metadata: { name: "late" },
        spec: { selector: "all()" },
      });
      await until(`"late" in kubectl's output (got ${JSON.stringify(out)})`, () =>
        /^late\s+default/m.test(out),
      );
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
      children.delete(child);
    }

    const del = await kubectl(["delete", "gnp", "allow-dns"], configs.viewer);
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /Forbidden/);
    const stranger = await kubectl(["get", "gnp"], configs.stranger);
    assert.notEqual(stranger.code, 0);
    assert.match(stranger.stderr, /Unauthorized|must be logged in/);
    assert.equal((await kubectl(["delete", "gnp", "allow-dns"], configs.admin)).code, 0);
  });
});
