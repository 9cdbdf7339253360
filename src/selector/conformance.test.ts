// Conformance with upstream Calico: every row and vector of reference/calico.md §3.4–3.5.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseSelector, SelectorSyntaxError } from "./index.js";

const LABEL_SETS: readonly Readonly<Record<string, string>>[] = [
  {}, // L1
  { app: "web" }, // L2
  { app: "web", tier: "frontend" }, // L3
  { app: "db", tier: "backend" }, // L4
  { app: "" }, // L5
  { env: "prod" }, // L6
  { app: "web-canary", env: "prod" }, // L7
];

// [selector, canonical, matches on L1..L7 ("M" match, "." no match)]
const TABLE: readonly [string, string, string][] = [
  ['app == "web"', 'app == "web"', ".MM...."],
  ['app != "web"', 'app != "web"', "M..MMMM"],
  ["has(app)", "has(app)", ".MMMM.M"],
  ["!has(app)", "!has(app)", "M....M."],
  ['app in {"web", "db"}', 'app in {"db", "web"}', ".MMM..."],
  ['app not in {"web", "db"}', 'app not in {"db", "web"}', "M...MMM"],
  ['app starts with "web"', 'app starts with "web"', ".MM...M"],
  ['app ends with "canary"', 'app ends with "canary"', "......M"],
  ['app contains "eb"', 'app contains "eb"', ".MM...M"],
  ['app == "web" && tier == "frontend"', '(app == "web" && tier == "frontend")', "..M...."],
  ['app == "db" || env == "prod"', '(app == "db" || env == "prod")', "...M.MM"],
  [
    'app == "web" || app == "db" && tier == "backend"',
    '(app == "web" || (app == "db" && tier == "backend"))',
    ".MMM...",
  ],
  [
    '(app == "web" || app == "db") && tier == "backend"',
    '((app == "web" || app == "db") && tier == "backend")',
    "...M...",
  ],
  ['!(app == "web")', '!app == "web"', "M..MMMM"],
  ['!app == "web"', '!app == "web"', "M..MMMM"],
  ["all()", "all()", "MMMMMMM"],
  ["", "all()", "MMMMMMM"],
  ["global()", "global()", "MMMMMMM"],
  ["!all()", "!all()", "......."],
  ['app == ""', 'app == ""', "....M.."],
  ['has(app) && app != ""', '(has(app) && app != "")', ".MMM..M"],
  ["tier not in {}", "tier not in {}", "MMMMMMM"],
  ["app in {}", "app in {}", "......."],
  ['!has(tier) && env == "prod"', '(!has(tier) && env == "prod")', ".....MM"],
  ['app in {"web"} && !(env == "prod")', '(app in {"web"} && !env == "prod")', ".MM...."],
];

void describe("conformance table (§3.5)", () => {
  for (const [text, canonical, expected] of TABLE) {
    void test(`${JSON.stringify(text)} prints as ${canonical} and matches ${expected}`, () => {
      const sel = parseSelector(text);
      assert.equal(sel.toString(), canonical);
      const got = LABEL_SETS.map((l) => (sel.evaluate(l) ? "M" : ".")).join("");
      assert.equal(got, expected);
      // The canonical form is itself a selector with the same meaning and the same form.
      const again = parseSelector(canonical);
      assert.equal(again.toString(), canonical);
      assert.equal(LABEL_SETS.map((l) => (again.evaluate(l) ? "M" : ".")).join(""), expected);
    });
  }
});

void describe("canonicalisation examples and unique IDs (§3.4)", () => {
  const CANONICAL: readonly [string, string][] = [
    ["", "all()"],
    [" (all() )", "all()"],
    ["! (has( b)||! has(a ))", "!(has(b) || !has(a))"],
    ['! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")'],
    ["a startswith '\"'", "a starts with '\"'"],
    ['a in {"z","z","x","y","x","a"}', 'a in {"a", "x", "y", "z"}'],
    ["!(k == 'v')", '!k == "v"'],
    ['a == "1" || b == "2" && c == "3"', '(a == "1" || (b == "2" && c == "3"))'],
  ];
  for (const [text, canonical] of CANONICAL) {
    void test(`${JSON.stringify(text)} canonicalises to ${canonical}`, () => {
      assert.equal(parseSelector(text).toString(), canonical);
    });
  }
  const UIDS: readonly [string, string][] = [
    ["all()", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"],
    ["!(has(b) || !has(a))", "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q"],
    ['!(a == "b" && !c != "d")', "s:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w"],
  ];
  for (const [canonical, uid] of UIDS) {
    void test(`unique ID of ${canonical} is ${uid}`, () => {
      assert.equal(parseSelector(canonical).uniqueId(), uid);
      assert.equal(uid.length, 2 + 38);
    });
  }
  void test("unique ID depends only on the canonical form", () => {
    assert.equal(parseSelector("").uniqueId(), "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug");
    assert.equal(
      parseSelector("! (has( b)||! has(a ))").uniqueId(),
      "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q",
    );
  });
});

void describe("accept vectors (§3.5)", () => {
  // [input, canonical or undefined when only acceptance is specified]
  const ACCEPT: readonly [string, string | undefined][] = [
    ['a=="b"', 'a == "b"'],
    ["a == 'b'", 'a == "b"'],
    ['a ==\t"x"', 'a == "x"'],
    ['a == "x" ', 'a == "x"'],
    ['a notin {"x"}', 'a not in {"x"}'],
    ['a not   in {"x"}', 'a not in {"x"}'],
    ['a in {"x",}', 'a in {"x"}'],
    ['a in{"x"}', 'a in {"x"}'],
    ["has( a )", "has(a)"],
    ["!!has(a)", "has(a)"],
    ["! has(a)", "!has(a)"],
    ["!!! has(a)", "!has(a)"],
    ["all( )", "all()"],
    ['a contains"x"', 'a contains "x"'],
    ['a starts  with "x"', 'a starts with "x"'],
    ['a endswith "x"', 'a ends with "x"'],
    ['in == "x"', 'in == "x"'],
    ['1abc == "x"', '1abc == "x"'],
    ['a_b-c.d/e == "x"', 'a_b-c.d/e == "x"'],
    ['app.kubernetes.io/name == "web"', 'app.kubernetes.io/name == "web"'],
    ['a == "it\'s"', 'a == "it\'s"'],
    ["a == 'say \"hi\"'", "a == 'say \"hi\"'"],
  ];
  for (const [text, canonical] of ACCEPT) {
    void test(`accepts ${JSON.stringify(text)}`, () => {
      const sel = parseSelector(text);
      if (canonical !== undefined) assert.equal(sel.toString(), canonical);
    });
  }
});

void describe("reject vectors (§3.5)", () => {
  // [input, 0-based position of the reported problem]
  const REJECT: readonly [string, number][] = [
    ['a = "b"', 2],
    ["a == b", 5],
    ['"b" == a', 0],
    ["a", 1],
    ["a b", 2],
    ['a:b == "x"', 1],
    ['a@b == "x"', 1],
    ['a in "x"', 5],
    ['a in {,"x"}', 6],
    ['a in {"x" "y"}', 10],
    ['ain {"x"}', 4],
    ["has (a)", 4],
    ["has(a", 5],
    ["has()", 4],
    ['a containsx "x"', 2],
    ['a == "x" &', 9],
    ['a == "x" |', 9],
    ['a == "x" &&', 11],
    ['(a == "x"', 9],
    ['a == "x")', 8],
    ["()", 1],
    [")", 0],
    ["(", 1],
    ["%", 0],
    ["!", 1],
    ['"FOO', 0],
    ["'FOO", 0],
    ['a == "x"\n', 8],
  ];
  for (const [text, position] of REJECT) {
    void test(`rejects ${JSON.stringify(text)} at offset ${position}`, () => {
      assert.throws(
        () => parseSelector(text),
        (err: unknown) => {
          assert.ok(err instanceof SelectorSyntaxError, `not a SelectorSyntaxError: ${String(err)}`);
          assert.ok(err instanceof SyntaxError);
          assert.equal(err.position, position, err.message);
          assert.match(err.message, new RegExp(`at column ${position + 1} in selector '`));
          return true;
        },
      );
    });
  }
});
