#!/usr/bin/env node
/** The `calico` CNI plugin executable: a runtime runs it with CNI_* set and the config on stdin. */
import { readAll, runPlugin } from "./skel.js";

process.exitCode = await runPlugin("calico", async () => (await import("./calico.js")).calicoPlugin, {
  env: process.env,
  stdin: () => readAll(process.stdin),
  stdout: (s) => process.stdout.write(s),
});
