#!/usr/bin/env node
// Runs every compiled benchmark (dist/bench/*.bench.js), or those whose name contains an
// argument: `npm run bench -- selector`.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const dir = join(root, "dist", "bench");
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.js"))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
let failed = 0;
for (const f of files) {
  const res = spawnSync(process.execPath, ["--expose-gc", join(dir, f)], { stdio: "inherit", cwd: root });
  if (res.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
