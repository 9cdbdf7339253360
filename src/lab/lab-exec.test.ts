import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { exitStatus, runForeground } from "./lab-exec.js";

describe("lab exec: the command's exit status", () => {
  const rows: [code: number | null, signal: NodeJS.Signals | null, status: number][] = [
    [0, null, 0],
    [3, null, 3],
    [255, null, 255],
    [null, "SIGKILL", 137],
    [null, "SIGTERM", 143],
    [null, "SIGINT", 130],
  ];
  for (const [code, signal, status] of rows) {
    it(`code ${code}, signal ${signal} → ${status}`, () => assert.equal(exitStatus(code, signal), status));
  }

  it("a command exiting 3 gives 3; one killed by SIGTERM gives 143", async () => {
    assert.equal(await runForeground(["sh", "-c", "exit 3"], "ignore"), 3);
    assert.equal(await runForeground(["sh", "-c", "kill -TERM $$"], "ignore"), 143);
    assert.equal(await runForeground(["true"], "ignore"), 0);
  });

  it("a command that cannot start is an error naming it", async () => {
    await assert.rejects(
      runForeground(["/nonexistent/cmd"], "ignore"),
      /Cannot run \/nonexistent\/cmd: .*ENOENT/,
    );
  });
});
