/**
 * The installed bundle (bundle.ts): which modules it holds, that its loader runs the plugins'
 * protocol (VERSION, errors), that a module left out of it (the general datastore opener) is
 * still reached as an ES module, and that the warm-up cache is replaced after the first run.
 * The full ADD/DEL through the installed wrappers is test/cni-install.test.ts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE_FILES, moduleGraph, writeBundle } from "./bundle.js";

describe("the CNI bundle", () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "cts-cni-bundle-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const runLoader = (env: Record<string, string>, input: string) =>
    spawnSync(process.execPath, [join(dir, BUNDLE_FILES.loader), "calico"], {
      env: { PATH: process.env.PATH ?? "", ...env },
      input,
      encoding: "utf8",
    });

  it("holds the plugins, IPAM and the sqlite driver, not the etcd/HTTP opener", () => {
    const ids = moduleGraph();
    for (const id of [
      "src/cni/entry.js",
      "src/cni/calico.js",
      "src/ipam/allocator.js",
      "src/datastore/sqlite.js",
    ])
      assert.ok(ids.includes(id), id);
    assert.ok(!ids.includes("src/datastore/open.js"));
    assert.ok(!ids.some((id) => id.startsWith("src/agent/") || id.startsWith("src/cli/")), ids.join(" "));
  });

  it("is written with a warm code cache, and its loader answers VERSION", () => {
    const r = writeBundle(dir);
    assert.ok(r !== undefined, "typescript is a dev dependency here");
    assert.ok(r.modules > 10);
    assert.ok(statSync(join(dir, BUNDLE_FILES.cache)).size > 0);
    assert.ok(existsSync(join(dir, BUNDLE_FILES.warmMarker)));
    const v = runLoader({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"0.4.0"}');
    assert.equal(v.status, 0, v.stderr);
    assert.deepEqual(JSON.parse(v.stdout), {
      cniVersion: "0.4.0",
      supportedVersions: ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
    // A successful run replaces the warm-up-only cache with what it compiled.
    assert.equal(existsSync(join(dir, BUNDLE_FILES.warmMarker)), false);
  });

  it("prints the spec's errors, and reaches the opener left out of it as an ES module", () => {
    const bad = runLoader(
      { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: "/x", CNI_IFNAME: "eth0" },
      "[]",
    );
    assert.equal(bad.status, 1);
    assert.equal((JSON.parse(bad.stdout) as { code: number }).code, 6);
    const conf = {
      cniVersion: "1.1.0",
      name: "n",
      type: "calico",
      nodename: "n1",
      datastore: "nosuch://x",
      ipam: { type: "calico-ipam" },
    };
    const status = runLoader({ CNI_COMMAND: "STATUS" }, JSON.stringify(conf));
    assert.equal(status.status, 1, status.stderr);
    const err = JSON.parse(status.stdout) as { code: number; msg: string };
    assert.equal(err.code, 50, err.msg);
    assert.match(err.msg, /nosuch:\/\/x/);
  });

  it("runs the checkout's ES modules, with a warning, when a bundled module changed since install", () => {
    const loader = join(dir, BUNDLE_FILES.loader);
    const text = readFileSync(loader, "utf8");
    // As if src/cni/types.js had been rebuilt: its recorded size no longer matches.
    const edited = text.replace(
      /(\["src\/cni\/types\.js",[\d.]+,)(\d+)\]/,
      (_, a: string, n: string) => `${a}${Number(n) + 1}]`,
    );
    assert.notEqual(edited, text);
    writeFileSync(loader, edited);
    try {
      const v = runLoader({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.0.0"}');
      assert.equal(v.status, 0, v.stderr);
      assert.equal((JSON.parse(v.stdout) as { cniVersion: string }).cniVersion, "1.0.0");
      assert.match(
        v.stderr,
        /src\/cni\/types\.js changed since `calicoctl cni install`; running the ES modules/,
      );
    } finally {
      writeFileSync(loader, text);
    }
  });
});
