import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { labLocation, removeStateDir, withLabLock } from "./lab-state.js";

test("lab names make the namespace prefix; anything else is refused", () => {
  assert.deepEqual(labLocation("lab", "/x"), { name: "lab", stateDir: "/x", prefix: "ctslab-" });
  assert.equal(labLocation("t1").stateDir, "/run/calico-ts-lab/t1");
  for (const bad of ["", "Lab", "a-b", "a/b", "thirteen1234x", "..", "a b"])
    assert.throws(() => labLocation(bad), /Invalid lab name/, bad);
});

test("removeStateDir deletes what the lab wrote and keeps anyone else's files", () => {
  const dir = mkdtempSync(join(tmpdir(), "cts-labstate-"));
  try {
    const own = [
      "state.json",
      "state.json.123.tmp",
      "lock",
      "calico.db",
      "calico.db-wal",
      "h1-status.json",
      "h12-status.json.bgp",
      "h1-status.json.99.tmp",
      "tor-bird.conf",
    ];
    for (const f of [...own, "notes.txt", "h1-status.json.bak"]) writeFileSync(join(dir, f), "x");
    for (const d of ["logs", "w", "etcd"]) {
      mkdirSync(join(dir, d));
      writeFileSync(join(dir, d, "f"), "x");
    }
    removeStateDir(dir);
    assert.deepEqual(readdirSync(dir).sort(), ["h1-status.json.bak", "notes.txt"]);
    rmSync(join(dir, "notes.txt"));
    rmSync(join(dir, "h1-status.json.bak"));
    removeStateDir(dir);
    assert.equal(existsSync(dir), false, "an emptied directory goes too");
    removeStateDir(dir); // gone already: no error
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("withLabLock runs holders one at a time, takes over a dead holder's lock, releases on throw", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cts-labstate-"));
  const loc = labLocation("t", dir);
  try {
    const order: string[] = [];
    const hold = (tag: string) =>
      withLabLock(loc, async () => {
        order.push(`${tag}+`);
        await new Promise((r) => setTimeout(r, 50));
        order.push(`${tag}-`);
      });
    await Promise.all([hold("a"), hold("b"), hold("c")]);
    for (let i = 0; i < order.length; i += 2)
      assert.equal(order[i]!.slice(0, 1), order[i + 1]!.slice(0, 1), order.join(" "));
    // A lock left by a dead process (PID 2^22 + 1 is above pid_max's default) is taken over.
    writeFileSync(join(dir, "lock"), String(4194305));
    assert.equal(await withLabLock(loc, () => Promise.resolve(7), 1000), 7);
    await assert.rejects(
      withLabLock(loc, () => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(existsSync(join(dir, "lock")), false, "released after a throw");
    // A live holder (this process) is waited for, then LAB_BUSY.
    writeFileSync(join(dir, "lock"), String(process.pid));
    await assert.rejects(
      withLabLock(loc, () => Promise.resolve(), 300),
      /is busy: process \d+ holds/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
