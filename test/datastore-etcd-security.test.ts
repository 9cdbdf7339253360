/**
 * The etcd driver against a real etcd with TLS client-certificate auth, and one with
 * user/password auth: the right credentials work (reads, writes, watches); wrong ones fail
 * with a clear DATASTORE_UNAVAILABLE naming the endpoint and what was refused.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { openEtcdDatastore } from "../src/datastore/etcd.js";
import { openDatastore } from "../src/datastore/open.js";
import { EtcdServer, etcdSkipReason } from "../src/datastore/testing/etcd-server.js";
import { isUnavailable, type Datastore, type WatchEvent } from "../src/datastore/types.js";

const skip = etcdSkipReason();

/** Create, read back and watch one key: the store works end to end. */
async function roundTrip(s: Datastore, key: string): Promise<void> {
  const r0 = await s.revision();
  const got: WatchEvent[] = [];
  const errors: Error[] = [];
  const w = s.watch(key, r0, { onEvents: (es) => got.push(...es), onError: (e) => errors.push(e) });
  try {
    const kv = await s.create(key, '{"ok":true}');
    assert.deepEqual(await s.get(key), kv);
    const deadline = Date.now() + 5_000;
    while (got.length === 0 && errors.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(errors, []);
    assert.equal(got.length, 1);
  } finally {
    w.close();
  }
}

async function refused(
  s: Datastore,
  why: RegExp,
  endpoint: string,
  { key = "/calico/x", watch = true }: { key?: string; watch?: boolean } = {},
): Promise<void> {
  try {
    for (const op of [() => s.get(key), () => s.create(key, "1")]) {
      await assert.rejects(op(), (e: unknown) => {
        assert.ok(isUnavailable(e), `expected UNAVAILABLE, got ${String(e)}`);
        const msg = (e as Error).message;
        assert.ok(msg.includes(endpoint), `${msg} names ${endpoint}`);
        assert.match(msg, why);
        return true;
      });
    }
    if (!watch) return;
    const err = await new Promise<Error>((resolve) => {
      const w = s.watch(key, 0, { onEvents: () => {}, onError: resolve });
      setTimeout(() => {
        w.close();
        resolve(new Error("no watch error within 10 s"));
      }, 10_000).unref();
    });
    assert.ok(isUnavailable(err), `watch: expected UNAVAILABLE, got ${String(err)}`);
    assert.match(err.message, why);
  } finally {
    await s.close();
  }
}

describe("etcd with TLS client certificates", { skip }, () => {
  let server: EtcdServer | undefined;
  before(async () => {
    server = await EtcdServer.start({ tls: true });
  });
  after(async () => {
    await server?.remove();
  });
  const srv = () => {
    assert.ok(server?.tls !== undefined, "etcd did not start");
    return { server, tls: server.tls };
  };

  test("the right CA, certificate and key work (etcds:// URL)", async () => {
    const { server } = srv();
    assert.match(server.url(), /^etcds:\/\/127\.0\.0\.1:\d+\?ca=/);
    const s = await openDatastore(server.url());
    try {
      await roundTrip(s, `/calico/tls/${process.pid}/a`);
    } finally {
      await s.close();
    }
  });

  test("TLS files can come from ETCD_CA_CERT_FILE / ETCD_CERT_FILE / ETCD_KEY_FILE", async () => {
    const { server, tls } = srv();
    const s = openEtcdDatastore(`etcds://${server.endpoint}`, {
      env: { ETCD_CA_CERT_FILE: tls.ca, ETCD_CERT_FILE: tls.cert, ETCD_KEY_FILE: tls.key },
    });
    try {
      await roundTrip(s, `/calico/tls/${process.pid}/env`);
    } finally {
      await s.close();
    }
  });

  test("no client certificate: refused, UNAVAILABLE naming the endpoint", async () => {
    const { server, tls } = srv();
    const s = openEtcdDatastore(`etcds://${server.endpoint}?ca=${encodeURIComponent(tls.ca)}`, { env: {} });
    await refused(s, /TLS handshake failed/, server.endpoint);
  });

  test("a client certificate from another CA: refused", async () => {
    const { server, tls } = srv();
    const q = `ca=${encodeURIComponent(tls.ca)}&cert=${encodeURIComponent(tls.otherCert)}&key=${encodeURIComponent(tls.otherKey)}`;
    await refused(
      openEtcdDatastore(`etcds://${server.endpoint}?${q}`, { env: {} }),
      /TLS handshake failed/,
      server.endpoint,
    );
  });

  test("a server certificate the given CA did not sign: refused", async () => {
    const { server, tls } = srv();
    const q = `ca=${encodeURIComponent(tls.otherCa)}&cert=${encodeURIComponent(tls.cert)}&key=${encodeURIComponent(tls.key)}`;
    await refused(
      openEtcdDatastore(`etcds://${server.endpoint}?${q}`, { env: {} }),
      /TLS handshake failed/,
      server.endpoint,
    );
  });

  test("plain etcd:// to a TLS etcd: refused", async () => {
    const { server } = srv();
    // Indistinguishable from a connection failure: reads fail at once, a watch keeps retrying.
    await refused(openEtcdDatastore(`etcd://${server.endpoint}`, { env: {} }), /etcd at/, server.endpoint, {
      watch: false,
    });
  });
});

describe("etcd with user/password auth", { skip }, () => {
  let server: EtcdServer | undefined;
  before(async () => {
    server = await EtcdServer.start({ auth: true });
  });
  after(async () => {
    await server?.remove();
  });
  const srv = () => {
    assert.ok(server !== undefined, "etcd did not start");
    return server;
  };

  test("the calico user with its password works under /calico/", async () => {
    const s = await openDatastore(srv().url());
    try {
      assert.equal(s.url, `etcd://calico@${srv().endpoint}`);
      await roundTrip(s, `/calico/auth/${process.pid}/a`);
    } finally {
      await s.close();
    }
  });

  test("credentials can come from ETCD_USERNAME / ETCD_PASSWORD", async () => {
    const s = openEtcdDatastore(`etcd://${srv().endpoint}`, {
      env: { ETCD_USERNAME: "calico", ETCD_PASSWORD: srv().users.calico },
    });
    try {
      await roundTrip(s, `/calico/auth/${process.pid}/env`);
    } finally {
      await s.close();
    }
  });

  test("a wrong password: UNAVAILABLE saying authentication failed for the user", async () => {
    const s = await openDatastore(srv().url({ user: "calico", password: "wrong" }));
    await refused(s, /authentication failed for user "calico"/, srv().endpoint);
  });

  test("an unknown user: UNAVAILABLE saying authentication failed", async () => {
    const s = await openDatastore(srv().url({ user: "mallory", password: "x" }));
    await refused(s, /authentication failed for user "mallory"/, srv().endpoint);
  });

  test("no credentials: UNAVAILABLE asking for a user and password", async () => {
    const s = openEtcdDatastore(`etcd://${srv().endpoint}`, { env: {} });
    await refused(s, /give a user and password/, srv().endpoint);
  });

  test("a key outside the user's role: UNAVAILABLE saying permission denied", async () => {
    const s = await openDatastore(srv().url());
    await refused(s, /permission denied for user "calico"/, srv().endpoint, { key: "/elsewhere/x" });
  });
});
