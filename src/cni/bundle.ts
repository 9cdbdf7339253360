/**
 * The installed form of the plugins: one script holding every module the plugins run, loaded
 * through V8's code cache. A runtime starts a plugin process per container, and most of an ADD
 * was Node's ES-module loader, not the work: ~60 files resolved, read, compiled and linked one
 * by one, plus the `yaml` package the resource codec imports and the plugins never call
 * (docs/cni.md, "Latency"). Node 20 has no compile cache for ES modules
 * (`module.enableCompileCache` is Node 22), so `calicoctl cni install` turns the compiled
 * modules reachable from entry.js into CommonJS functions in one file (TypeScript's
 * `transpileModule`, per file, no type-check), writes a small loader that compiles that file
 * with `vm.Script` and its cached data, and warms the cache. Packages stay outside (`yaml`
 * loads on first use only); modules reached only by a dynamic import of something left out
 * (the general datastore opener, which pulls in the etcd and HTTP clients) are imported as
 * ES modules from the checkout when needed.
 *
 * Like an installed binary, the bundle is the code as it was at install time: rebuilding the
 * checkout needs `calicoctl cni install` again. Without `typescript` the install falls back to
 * wrappers that run the ES-module executables.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, posix, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type * as TypeScript from "typescript";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The `dist/` directory this module was compiled into. */
export const DIST_ROOT = resolve(HERE, "..", "..");
const ENTRY_ID = "src/cni/entry.js";
/** Modules the warm-up runs, so their top-level code is in the cache from the first ADD. */
const WARM_IDS = [ENTRY_ID, "src/cni/calico.js", "src/datastore/sqlite.js"];
/** Reached only by dynamic imports and heavy (etcd3, gRPC, HTTP client): left as ES modules. */
const LEFT_OUT = new Set(["src/datastore/open.js"]);
/** Packages loaded on first property access rather than at require time. */
const LAZY_PACKAGES = ["yaml"];

export const BUNDLE_FILES = {
  loader: "calico-ts-cni.cjs",
  modules: "calico-ts-cni.modules.js",
  cache: "calico-ts-cni.v8cache",
  /** Present while the cache holds only what the warm-up compiled; the first run replaces it. */
  warmMarker: "calico-ts-cni.v8cache.warm",
} as const;

type TS = typeof TypeScript;

function loadTypeScript(): TS | undefined {
  try {
    return createRequire(join(DIST_ROOT, "package.json"))("typescript") as TS;
  } catch {
    return undefined;
  }
}

const STATIC_RE = /\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']/gm;
const DYNAMIC_RE = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** Every compiled module reachable from the entry (relative imports only), as dist-relative ids. */
export function moduleGraph(entry = ENTRY_ID): string[] {
  const seen = new Set<string>();
  const visit = (id: string): void => {
    if (seen.has(id) || LEFT_OUT.has(id)) return;
    const file = join(DIST_ROOT, id);
    if (!existsSync(file)) return;
    seen.add(id);
    const src = readFileSync(file, "utf8");
    for (const re of [STATIC_RE, DYNAMIC_RE]) {
      for (const m of src.matchAll(re)) {
        const spec = m[1] ?? m[2];
        if (spec?.startsWith(".") === true) visit(posix.normalize(posix.join(posix.dirname(id), spec)));
      }
    }
  };
  visit(entry);
  return [...seen].sort();
}

/** One module as a CommonJS function body. */
function transpile(ts: TS, id: string): string {
  const src = readFileSync(join(DIST_ROOT, id), "utf8")
    .replace(/^#!.*\n/, "")
    .replace(/^\/\/# sourceMappingURL=.*$/m, "")
    // Dynamic imports and import.meta go through the bundle's own functions.
    .replace(/\bimport\((?=\s*["'])/g, "__ctsImport(")
    .replace(/\bimport\.meta\.url\b/g, "__ctsMetaUrl");
  return ts.transpileModule(src, {
    fileName: id,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      sourceMap: false,
    },
  }).outputText;
}

/**
 * The bundle: an expression evaluating to `(host) => ({ load(id) })`. Module ids are paths
 * relative to dist/; `require` and `__ctsImport` resolve relative specifiers against them.
 */
function bundleSource(ts: TS, ids: string[]): string {
  const packages = new Set<string>();
  const defs = ids.map((id) => {
    const code = transpile(ts, id);
    // Packages required, and imported dynamically (koffi, for rtnetlink: big-tcp.ts).
    for (const m of code.matchAll(/\b(?:require|__ctsImport)\("([^"]+)"\)/g))
      if (!m[1]!.startsWith(".") && !m[1]!.startsWith("node:")) packages.add(m[1]!);
    return `${JSON.stringify(id)}: function (exports, require, module, __filename, __dirname, __ctsImport, __ctsMetaUrl) {\n${code}\n}`;
  });
  // Packages resolved now, so a run does not walk node_modules for them (~5–10 ms profiled).
  const nodeRequire = createRequire(join(DIST_ROOT, ENTRY_ID));
  const resolved: Record<string, string> = {};
  for (const p of packages) resolved[p] = nodeRequire.resolve(p);
  return `(function (host) {
"use strict";
const defs = {
${defs.join(",\n")}
};
const cache = Object.create(null);
const lazy = new Set(${JSON.stringify(LAZY_PACKAGES)});
const resolved = ${JSON.stringify(resolved)};
const P = host.path.posix;
const rel = (from, spec) => (spec.startsWith(".") ? P.normalize(P.join(P.dirname(from), spec)) : undefined);
function load(id) {
  const hit = cache[id];
  if (hit !== undefined) return hit.exports;
  const m = { exports: {} };
  cache[id] = m;
  const file = host.distRoot + "/" + id;
  defs[id].call(m.exports, m.exports, (s) => req(id, s), m, file, P.dirname(file), (s) => dynImport(id, s), host.fileUrl(file));
  return m.exports;
}
function external(spec) {
  const path = resolved[spec] ?? spec;
  if (!lazy.has(spec)) return host.nodeRequire(path);
  let real;
  const get = () => (real ??= host.nodeRequire(path));
  return new Proxy({}, { get: (_, k) => get()[k], has: (_, k) => k in get() });
}
function req(from, spec) {
  const id = rel(from, spec);
  if (id === undefined) return external(spec);
  if (id in defs) return load(id);
  throw new Error("calico-ts CNI bundle: " + spec + " (imported by " + id + ") is not in the bundle");
}
function dynImport(from, spec) {
  const id = rel(from, spec);
  if (id !== undefined && id in defs) return Promise.resolve().then(() => load(id));
  // A package by the path resolved at bundle time: the loader lives outside our node_modules.
  if (id === undefined) return host.dynImport(resolved[spec] === undefined ? spec : host.fileUrl(resolved[spec]));
  return host.dynImport(host.fileUrl(host.distRoot + "/" + id));
}
return { load };
})`;
}

/** The loader the wrappers run: `node calico-ts-cni.cjs <calico|calico-ipam>`, or `--warm`. */
function loaderSource(stamps: [string, number, number][]): string {
  return `#!/usr/bin/env node
"use strict";
// calico-ts CNI plugins, bundled by \`calicoctl cni install\` from ${JSON.stringify(DIST_ROOT)}.
// Reinstall after rebuilding calico-ts. See src/cni/bundle.ts.
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const { createRequire } = require("node:module");
const { pathToFileURL } = require("node:url");
const DIST = ${JSON.stringify(DIST_ROOT)};
const MODULES = path.join(__dirname, ${JSON.stringify(BUNDLE_FILES.modules)});
const CACHE = path.join(__dirname, ${JSON.stringify(BUNDLE_FILES.cache)});
const WARM = path.join(__dirname, ${JSON.stringify(BUNDLE_FILES.warmMarker)});
// The compiled modules as they were at install ([id, mtimeMs, size]). If the checkout was rebuilt
// since, the bundle is stale: run the ES modules of the checkout (correct, slower) and say so.
const STAMPS = ${JSON.stringify(stamps)};
const stale = STAMPS.find(([id, mtime, size]) => {
  try {
    const st = fs.statSync(path.join(DIST, id));
    return st.mtimeMs !== mtime || st.size !== size;
  } catch {
    return true;
  }
});
if (stale !== undefined && process.argv[2] !== "--warm") {
  process.stderr.write(
    "calico-ts CNI: " + stale[0] + " changed since \`calicoctl cni install\`; running the ES modules (reinstall for the fast path)\\n",
  );
  import(pathToFileURL(path.join(DIST, ${JSON.stringify(ENTRY_ID)})).href)
    .then((m) => m.runExecutable(process.argv[2]))
    .then((code) => {
      process.exitCode = code;
    });
  return;
}
let cachedData;
try {
  cachedData = fs.readFileSync(CACHE);
} catch {}
const script = new vm.Script(fs.readFileSync(MODULES, "utf8"), { filename: MODULES, cachedData });
const bundle = script.runInThisContext()({
  nodeRequire: createRequire(path.join(DIST, ${JSON.stringify(ENTRY_ID)})),
  dynImport: (u) => import(u),
  distRoot: DIST,
  path,
  fileUrl: (f) => pathToFileURL(f).href,
});
// A missing, rejected (another Node) or warm-up-only cache is rewritten with what this run
// compiled; written beside and renamed, so concurrent plugins never read half a file.
function saveCache(force) {
  if (!force && cachedData !== undefined && !script.cachedDataRejected && !fs.existsSync(WARM)) return;
  try {
    const tmp = CACHE + "." + process.pid;
    fs.writeFileSync(tmp, script.createCachedData());
    fs.renameSync(tmp, CACHE);
    if (!force) fs.rmSync(WARM, { force: true });
  } catch {}
}
const arg = process.argv[2];
if (arg === "--warm") {
  for (const id of ${JSON.stringify(WARM_IDS)}) bundle.load(id);
  saveCache(true);
  fs.writeFileSync(WARM, "");
} else {
  bundle
    .load(${JSON.stringify(ENTRY_ID)})
    .runExecutable(arg)
    .then((code) => {
      process.exitCode = code;
      if (code === 0) saveCache(false);
    });
}
`;
}

export interface BundleResult {
  files: string[];
  modules: number;
}

/**
 * Write the bundle, its loader and a warm code cache into `dir`; undefined (and nothing
 * written) when TypeScript is not installed.
 */
export function writeBundle(dir: string, node = process.execPath): BundleResult | undefined {
  const ts = loadTypeScript();
  if (ts === undefined) return undefined;
  const ids = moduleGraph();
  const stamps = ids.map((id): [string, number, number] => {
    const st = statSync(join(DIST_ROOT, id));
    return [id, st.mtimeMs, st.size];
  });
  const write = (name: string, text: string, mode: number): string => {
    const path = join(dir, name);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, path);
    return path;
  };
  const files = [
    write(BUNDLE_FILES.modules, bundleSource(ts, ids), 0o644),
    write(BUNDLE_FILES.loader, loaderSource(stamps), 0o755),
  ];
  rmSync(join(dir, BUNDLE_FILES.cache), { force: true });
  const warm = spawnSync(node, [join(dir, BUNDLE_FILES.loader), "--warm"], { encoding: "utf8" });
  if (warm.status !== 0) {
    throw new Error(
      `The bundled CNI plugins in ${dir} do not load (${relative(DIST_ROOT, dir)}): ${warm.stderr.trim()}`,
    );
  }
  files.push(join(dir, BUNDLE_FILES.cache));
  return { files, modules: ids.length };
}
