#!/usr/bin/env node
/** The `calico-ipam` CNI IPAM plugin executable. */
import { readAll, runPlugin } from "./skel.js";

process.exitCode = await runPlugin(
  "calico-ipam",
  async () => (await import("./calico.js")).calicoIpamPlugin,
  {
    env: process.env,
    stdin: () => readAll(process.stdin),
    stdout: (s) => process.stdout.write(s),
  },
);
