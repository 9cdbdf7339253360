import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  defaultDatastorePath,
  defaultDatastoreUrl,
  describeDatastoreSetting,
  openDatastore,
  resolveDatastoreUrl,
  sqlitePathFromUrl,
} from "./open.js";
import { MemoryDatastore } from "./memory.js";
import { SqliteDatastore } from "./sqlite.js";
import { EtcdDatastore, parseEtcdUrl } from "./etcd.js";
import { HttpDatastore } from "./http.js";
import { DatastoreErrorCode, isBadUrl, isUnavailable } from "./types.js";

const dir = mkdtempSync(join(tmpdir(), `calico-ts-open-test-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;

describe("openDatastore", () => {
  test("argument > $CALICO_DATASTORE > default", () => {
    const env = { CALICO_DATASTORE: "memory:", XDG_DATA_HOME: "/xdg" };
    assert.deepEqual(resolveDatastoreUrl("sqlite:/a.db", env), { url: "sqlite:/a.db", source: "argument" });
    assert.deepEqual(resolveDatastoreUrl(undefined, env), { url: "memory:", source: "CALICO_DATASTORE" });
    assert.deepEqual(resolveDatastoreUrl("", env), { url: "memory:", source: "CALICO_DATASTORE" });
    assert.deepEqual(resolveDatastoreUrl(undefined, { XDG_DATA_HOME: "/xdg" }), {
      url: defaultDatastoreUrl({ XDG_DATA_HOME: "/xdg" }),
      source: "default",
    });
  });

  test("default file: /var/lib/calico for root, else XDG_DATA_HOME or ~/.local/share", () => {
    if (isRoot) {
      assert.equal(defaultDatastorePath({}), "/var/lib/calico/calico-ts.db");
      assert.equal(defaultDatastoreUrl({}), "sqlite:///var/lib/calico/calico-ts.db");
    } else {
      assert.equal(defaultDatastorePath({ XDG_DATA_HOME: "/xdg" }), "/xdg/calico-ts/calico-ts.db");
      assert.equal(
        defaultDatastorePath({ XDG_DATA_HOME: "relative" }),
        join(homedir(), ".local/share/calico-ts/calico-ts.db"),
      );
      assert.equal(defaultDatastorePath({}), join(homedir(), ".local/share/calico-ts/calico-ts.db"));
    }
    const help = describeDatastoreSetting({ XDG_DATA_HOME: "/xdg" });
    assert.match(help, /CALICO_DATASTORE/);
    assert.match(help, /sqlite:<path>/);
    assert.match(help, /etcd:\/\/host:port/);
  });

  test("sqlite URL forms", () => {
    const table: [string, string][] = [
      ["sqlite:/var/lib/x.db", "/var/lib/x.db"],
      ["sqlite:///var/lib/x.db", "/var/lib/x.db"],
      ["sqlite://localhost/var/lib/x.db", "/var/lib/x.db"],
      ["sqlite:rel/x.db", resolve("rel/x.db")],
      ["sqlite:~/x.db", join(homedir(), "x.db")],
      ["SQLITE:/X.db", "/X.db"],
    ];
    for (const [url, path] of table) assert.equal(sqlitePathFromUrl(url), path, url);
    assert.equal(sqlitePathFromUrl("memory:"), undefined);
  });

  test("opens sqlite and memory stores", async () => {
    const path = join(dir, "a", "b.db");
    for (const url of [`sqlite:${path}`, `sqlite://${path}`]) {
      const s = await openDatastore(url);
      try {
        assert.ok(s instanceof SqliteDatastore);
        assert.equal(s.url, `sqlite://${path}`);
      } finally {
        await s.close();
      }
    }
    assert.ok(existsSync(path));
    const m = await openDatastore("memory:");
    assert.ok(m instanceof MemoryDatastore);
    const n1 = await openDatastore("memory://open-test");
    const n2 = await openDatastore("memory://open-test");
    await n1.create("/a", "1");
    assert.equal((await n2.get("/a"))?.value, "1");
    await Promise.all([m.close(), n1.close(), n2.close()]);
    MemoryDatastore.forget("open-test");
  });

  test("uses $CALICO_DATASTORE when no argument is given", async () => {
    const s = await openDatastore(undefined, { env: { CALICO_DATASTORE: "memory:" } });
    assert.ok(s instanceof MemoryDatastore);
    await s.close();
  });

  test("http(s) URLs open an HTTP store (lazily) whose url hides the token", async () => {
    const cases: [string, string][] = [
      ["http://apiserver:5473", "http://apiserver:5473"],
      ["https://[fd00::1]:5473/", "https://[fd00::1]:5473"],
      ["http://s3cret@apiserver:5473", "http://apiserver:5473"],
      ["http://apiserver:5473?token=s3cret", "http://apiserver:5473"],
    ];
    for (const [url, shown] of cases) {
      const s = await openDatastore(url);
      try {
        assert.ok(s instanceof HttpDatastore, url);
        assert.equal(s.url, shown);
      } finally {
        await s.close();
      }
    }
    for (const url of ["http://apiserver", "http://s3cret@apiserver:1/path", "https://s3cret@h:1?bogus=1"]) {
      await assert.rejects(openDatastore(url), (e: unknown) => {
        assert.ok(isBadUrl(e), url);
        assert.doesNotMatch((e as Error).message, /s3cret/);
        return true;
      });
    }
  });

  test("etcd URLs open an etcd store (lazily) whose url hides the password", async () => {
    const cases: [string, string][] = [
      ["etcd://198.18.0.1:2379", "etcd://198.18.0.1:2379"],
      ["etcd://a:2379,b:2379", "etcd://a:2379,b:2379"],
      ["ETCD://u:p%40ss@[fd00::1]:2379", "etcd://u@[fd00::1]:2379"],
    ];
    for (const [url, shown] of cases) {
      const s = await openDatastore(url);
      try {
        assert.ok(s instanceof EtcdDatastore, url);
        assert.equal(s.url, shown);
      } finally {
        await s.close();
      }
    }
  });

  test("etcd URL forms: TLS only with etcds://, credentials and files from ETCD_* variables", () => {
    const env = {
      ETCD_USERNAME: "envuser",
      ETCD_PASSWORD: "envpw",
      ETCD_CA_CERT_FILE: "/e/ca.pem",
      ETCD_CERT_FILE: "/e/c.pem",
      ETCD_KEY_FILE: "/e/k.pem",
    };
    assert.deepEqual(parseEtcdUrl("etcd://h:1,h:2", {}), { endpoints: ["h:1", "h:2"], tls: false });
    assert.deepEqual(parseEtcdUrl("etcd://u:p@h:1", env), {
      endpoints: ["h:1"],
      tls: false,
      username: "u",
      password: "p",
    });
    assert.deepEqual(parseEtcdUrl("etcd://h:1", env), {
      endpoints: ["h:1"],
      tls: false,
      username: "envuser",
      password: "envpw",
    });
    assert.deepEqual(parseEtcdUrl("etcds://h:1?ca=%2Fp%2Fca.pem", env), {
      endpoints: ["h:1"],
      tls: true,
      username: "envuser",
      password: "envpw",
      ca: "/p/ca.pem",
      cert: "/e/c.pem",
      key: "/e/k.pem",
    });
    assert.match(parseEtcdUrl("etcd://h:1?ca=/x", {}) as string, /needs etcds:\/\//);
    assert.match(parseEtcdUrl("etcds://h:1?bogus=1", {}) as string, /unknown parameter "bogus"/);
    assert.match(parseEtcdUrl("etcds://h:1?cert=/c.pem", {}) as string, /both cert and key/);
    assert.match(parseEtcdUrl("etcd://:p@h:1", {}) as string, /user name/);
  });

  test("an etcds:// URL naming an unreadable file fails UNAVAILABLE naming the file", async () => {
    await assert.rejects(openDatastore("etcds://127.0.0.1:2379?ca=/nonexistent/ca.pem"), (e: unknown) => {
      assert.ok(isUnavailable(e));
      assert.match((e as Error).message, /CA certificate file "\/nonexistent\/ca.pem"/);
      return true;
    });
  });

  test("malformed settings fail BAD_URL naming the value and the accepted forms", async () => {
    const cases: [string, RegExp][] = [
      ["/var/lib/x.db", /a file path is written sqlite:\/var\/lib\/x.db/],
      ["postgres://db:5432", /unknown scheme "postgres:"/],
      ["sqlite:", /needs a file path/],
      ["sqlite://relative/x.db", /absolute path/],
      ["etcd://no-port", /expected etcd:\/\/host:port/],
      ["etcd:host:2379", /expected etcd:\/\/host:port/],
      ["memory:a/b", /memory:/],
      ["nonsense", /not a datastore URL/],
    ];
    for (const [url, why] of cases) {
      await assert.rejects(openDatastore(url), (e: unknown) => {
        assert.equal((e as { code?: string }).code, DatastoreErrorCode.BAD_URL, url);
        const msg = (e as Error).message;
        assert.ok(msg.includes(JSON.stringify(url)), `${msg} names ${url}`);
        assert.match(msg, why);
        if (!/not available/.test(msg))
          assert.match(msg, /Accepted forms: memory:, memory:\/\/<name>, sqlite:<path>/);
        return true;
      });
    }
  });
});
