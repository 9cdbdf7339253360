import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openDatastore } from "../src/datastore/open.js";
import { call, makeCert } from "./apiserver-fixture.js";

const MAIN = fileURLToPath(new URL("../src/apiserver/main.js", import.meta.url));
const CALICOCTL = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "calico-ts-apiserver-cli-"));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

function run(args: string[]): Proc {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, out: () => out, err: () => err, exited };
}

async function listening(p: Proc, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = /listening on (\S+)/.exec(p.out());
    if (m !== null) return m[1]!;
    if (Date.now() > deadline || p.child.exitCode !== null) {
      assert.fail(`calico-apiserver did not start: ${p.err()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: timed out`)), ms).unref()),
  ]);

describe("calico-apiserver executable", () => {
  test("serves a sqlite store over HTTPS with tokens; the http(s) datastore URL reaches it; SIGTERM exits 0", async () => {
    const certs = makeCert();
    try {
      const tokens = join(dir, "tokens.csv");
      writeFileSync(tokens, 'sekret,admin,1,"admins"\n');
      const p = run([
        "--datastore",
        `sqlite:${join(dir, "a.db")}`,
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        certs.certPath,
        "--tls-key",
        certs.keyPath,
        "--token-file",
        tokens,
      ]);
      const url = await listening(p);
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.doesNotMatch(p.err(), /WARNING: no --token-file/);
      const port = new URL(url).port;
      const ds = await openDatastore(
        `https://sekret@127.0.0.1:${port}?ca=${encodeURIComponent(certs.certPath)}`,
      );
      try {
        const kv = await ds.create("/calico/cli/a", "1");
        assert.equal((await ds.get("/calico/cli/a"))?.modRevision, kv.modRevision);
      } finally {
        await ds.close();
      }
      const ready = await call(url, "GET", "/readyz", { ca: certs.cert });
      assert.equal(ready.status, 200);
      p.child.kill("SIGTERM");
      assert.equal(await withTimeout(p.exited, 10_000, "exit after SIGTERM"), 0);
      assert.match(p.err(), /SIGTERM: shutting down/);
    } finally {
      certs.cleanup();
    }
  });

  test("without a token file it warns; SIGINT ends open watch streams and exits 0", async () => {
    const p = run(["--datastore", "memory:", "--listen", "127.0.0.1:0"]);
    const url = await listening(p);
    assert.match(p.err(), /WARNING: no --token-file: every request is allowed/);
    const ds = await openDatastore(url);
    const errors: Error[] = [];
    const w = ds.watch("/calico/", 0, { onEvents: () => {}, onError: (e) => errors.push(e) });
    try {
      await ds.create("/calico/x", "1");
      p.child.kill("SIGINT");
      assert.equal(await withTimeout(p.exited, 10_000, "exit after SIGINT"), 0);
    } finally {
      w.close();
      await ds.close();
    }
  });

  test("calicoctl reaches the datastore through the API server with --datastore http://token@…", async () => {
    const tokens = join(dir, "tokens-ctl.csv");
    writeFileSync(tokens, "ctl-token,ops,7\n");
    const p = run(["--datastore", "memory:", "--listen", "127.0.0.1:0", "--token-file", tokens]);
    const url = await listening(p);
    const pool = join(dir, "pool.yaml");
    writeFileSync(
      pool,
      "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-a\nspec:\n  cidr: 198.19.0.0/16\n",
    );
    const ds = url.replace("http://", "http://ctl-token@");
    const ctl = (args: string[]) =>
      execFileSync(process.execPath, [CALICOCTL, "--datastore", ds, ...args], { encoding: "utf8" });
    assert.match(ctl(["create", "-f", pool]), /Successfully created 1 'IPPool'/);
    assert.match(ctl(["get", "ippools"]), /pool-a\s+198\.19\.0\.0\/16/);
    const denied = spawnSync(process.execPath, [CALICOCTL, "--datastore", url, "get", "ippools"], {
      encoding: "utf8",
    });
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /401 Unauthorized/);
    p.child.kill("SIGTERM");
    assert.equal(await withTimeout(p.exited, 10_000, "exit after SIGTERM"), 0);
  });

  test("bad arguments exit 2 with a message naming the problem", async () => {
    const cases: [string[], RegExp][] = [
      [["--listen", "nonsense"], /expected ADDR:PORT/],
      [["--datastore", "memory:", "--tls-cert", "/x.pem"], /--tls-cert and --tls-key go together/],
      [["--datastore", "memory:", "--token-file", join(dir, "missing.csv")], /missing\.csv/],
    ];
    for (const [args, re] of cases) {
      const p = run(args);
      const code = await withTimeout(p.exited, 10_000, args.join(" "));
      assert.ok(code !== 0, `${args.join(" ")} exited 0`);
      assert.match(p.err(), re);
    }
  });
});
