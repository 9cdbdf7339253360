import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CALICO_TS_VERSION } from "../src/version.js";

test("the version constant matches package.json", () => {
  const root = new URL("../../", import.meta.url);
  const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { version: string };
  assert.equal(CALICO_TS_VERSION, pkg.version);
});
