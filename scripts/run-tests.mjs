#!/usr/bin/env node
// Runs every compiled test (dist/**/*.test.js) with node's test runner. Node 20's
// `node --test` takes no globs, so we find the files ourselves. Extra args are passed on
// (e.g. a path filter: `npm run test:unit -- selector`).
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const dist = join(root, "dist");
const filters = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const passOn = process.argv.slice(2).filter((a) => a.startsWith("-"));

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const files = walk(dist, [])
  .filter((f) => filters.length === 0 || filters.some((s) => relative(dist, f).includes(s)))
  .sort();
if (files.length === 0) {
  console.error("run-tests: no compiled test files found under dist/ (did the build run?)");
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", "--test-timeout=300000", ...passOn, ...files],
  { stdio: "inherit", cwd: root },
);
process.exit(res.status ?? 1);
