// Behaviour of parseSelector beyond the upstream vectors: precedence, absent labels, quoting,
// whitespace, limits, error columns, compiled vs reference evaluation, caching.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  MAX_NESTING,
  MAX_SELECTOR_LENGTH,
  parseSelector,
  parseSelectorUncached,
  selectorUniqueId,
  SelectorSyntaxError,
  type SelectorNode,
} from "./index.js";
import { interpret } from "./interpret.js";
import { selectorCacheSize } from "./selector.js";

type Labels = Readonly<Record<string, string>>;

function matches(text: string, labels: Labels): boolean {
  const sel = parseSelector(text);
  const compiled = sel.evaluate(labels);
  assert.equal(compiled, interpret(sel.root, labels), `compiled and interpreted disagree on ${text}`);
  return compiled;
}

function rejectAt(text: string): SelectorSyntaxError {
  try {
    parseSelector(text);
  } catch (err) {
    assert.ok(err instanceof SelectorSyntaxError, String(err));
    return err;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be rejected`);
}

void describe("precedence: ! binds tighter than &&, && tighter than ||", () => {
  const CASES: readonly [string, string][] = [
    ['!a == "1" && b == "2"', '(!a == "1" && b == "2")'],
    ['!(a == "1" && b == "2")', '!(a == "1" && b == "2")'],
    ['a == "1" && b == "2" || c == "3"', '((a == "1" && b == "2") || c == "3")'],
    ['a == "1" || b == "2" && c == "3" || d == "4"', '(a == "1" || (b == "2" && c == "3") || d == "4")'],
    ['a == "1" && (b == "2" || c == "3")', '(a == "1" && (b == "2" || c == "3"))'],
    ['!!(a == "1" || b == "2")', '(a == "1" || b == "2")'],
    // Like upstream, "!" runs collapse only when adjacent; through parentheses they nest, and
    // the printed form then collapses on the next parse (canonical form is not always a fixed point).
    ['!(!(a == "1"))', '!!a == "1"'],
    ['!!a == "1"', 'a == "1"'],
    ['a == "1" && b == "2" && c == "3"', '(a == "1" && b == "2" && c == "3")'],
    // Upstream keeps parenthesised chains as children: no flattening across parentheses.
    ['a == "1" && (b == "2" && c == "3")', '(a == "1" && (b == "2" && c == "3"))'],
    ['((((a == "1"))))', 'a == "1"'],
    ["!has(a) || !has(b)", "(!has(a) || !has(b))"],
  ];
  for (const [text, canonical] of CASES) {
    void test(`${text} groups as ${canonical}`, () =>
      assert.equal(parseSelector(text).toString(), canonical));
  }
  void test("! applies to one operation only", () => {
    const sel = '!a == "1" && b == "2"';
    assert.equal(matches(sel, { a: "2", b: "2" }), true);
    assert.equal(matches(sel, { a: "1", b: "2" }), false);
    assert.equal(matches(sel, { b: "3" }), false);
  });
  void test("|| has the lowest precedence", () => {
    const sel = 'a == "1" || b == "2" && c == "3"';
    assert.equal(matches(sel, { a: "1" }), true);
    assert.equal(matches(sel, { b: "2" }), false);
    assert.equal(matches(sel, { b: "2", c: "3" }), true);
  });
});

void describe("absent labels", () => {
  const CASES: readonly [string, Labels, boolean][] = [
    ['a != "x"', {}, true],
    ['a != "x"', { a: "x" }, false],
    ['a != "x"', { a: "" }, true],
    ['a not in {"x"}', {}, true],
    ['a not in {"x"}', { a: "x" }, false],
    ["a not in {}", {}, true],
    ["a in {}", { a: "" }, false],
    ["!has(a)", {}, true],
    ["!has(a)", { a: "" }, false],
    ["has(a)", { a: "" }, true],
    ['a == ""', {}, false],
    ['a contains ""', {}, false],
    ['a contains ""', { a: "" }, true],
    ['a starts with ""', { a: "x" }, true],
    ['a ends with ""', {}, false],
    ['!a == "x"', {}, true],
    ['a in {"", "y"}', { a: "" }, true],
    ['a in {"", "y"}', {}, false],
  ];
  for (const [text, labels, want] of CASES) {
    void test(`${text} on ${JSON.stringify(labels)} is ${want}`, () =>
      assert.equal(matches(text, labels), want));
  }
  void test("labels named like Object.prototype members count as absent unless set", () => {
    for (const key of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]) {
      assert.equal(matches(`has(${key})`, {}), false, key);
      assert.equal(matches(`${key} != "x"`, {}), true, key);
      assert.equal(matches(`${key} not in {"x", "y", "z", "w"}`, {}), true, key);
      assert.equal(matches(`${key} contains ""`, {}), false, key);
      assert.equal(matches(`${key} in {"x", "y", "z", "w"}`, {}), false, key);
      const own = JSON.parse(`{${JSON.stringify(key)}: "x"}`) as Labels;
      assert.equal(matches(`has(${key})`, own), true, key);
      assert.equal(matches(`${key} == "x"`, own), true, key);
    }
  });
  void test("comparisons are byte-exact: no case folding, no numbers", () => {
    assert.equal(matches('a == "Web"', { a: "web" }), false);
    assert.equal(matches('a == "1"', { a: "01" }), false);
    assert.equal(matches('a contains "EB"', { a: "web" }), false);
  });
});

void describe("string literals and quoting", () => {
  const CASES: readonly [string, string][] = [
    ["a == 'x'", 'a == "x"'],
    ['a == "x"', 'a == "x"'],
    ['a == "it\'s"', 'a == "it\'s"'],
    ["a == '\"'", "a == '\"'"],
    ["a == 'a\"b'", "a == 'a\"b'"],
    ['a == ""', 'a == ""'],
    ["a == ''", 'a == ""'],
    ["a == '\\'", 'a == "\\"'], // no escape sequences: a lone backslash is the value
    ['a == " spaced  out "', 'a == " spaced  out "'],
    ["a in {'x', \"y\", 'q\"', \"it's\"}", 'a in {"it\'s", \'q"\', "x", "y"}'],
    ['a == "&& || ! ( )"', 'a == "&& || ! ( )"'],
    ['a == "ü日本"', 'a == "ü日本"'],
  ];
  for (const [text, canonical] of CASES) {
    void test(`${text} prints as ${canonical}`, () =>
      assert.equal(parseSelector(text).toString(), canonical));
  }
  void test("set values sort by UTF-8 bytes like Go, not by UTF-16 units", () => {
    // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in bytes, after it in UTF-16.
    assert.equal(parseSelector('a in {"😀", "～", "b", "B"}').toString(), 'a in {"B", "b", "～", "😀"}');
  });
  void test("the literal value is compared verbatim", () => {
    assert.equal(matches("a == 'say \"hi\"'", { a: 'say "hi"' }), true);
    assert.equal(matches('a == "it\'s"', { a: "it's" }), true);
  });
});

void describe("whitespace", () => {
  const SAME: readonly string[] = [
    'a=="x"&&b!="y"',
    'a == "x" && b != "y"',
    '\ta\t==\t"x"\t&&\tb\t!=\t"y"\t',
    '   a   ==   "x"   &&   b   !=   "y"   ',
    '(a=="x")&&(b!="y")',
  ];
  for (const text of SAME) {
    void test(`${JSON.stringify(text)} parses like the spaced form`, () =>
      assert.equal(parseSelector(text).toString(), '(a == "x" && b != "y")'));
  }
  void test("whitespace-only is all()", () => {
    for (const text of ["", " ", "\t", " \t \t"]) assert.equal(parseSelector(text).toString(), "all()");
  });
  void test("newline, CR, form feed and NBSP are not whitespace", () => {
    for (const ws of ["\n", "\r", "\f", "\v", "\u00a0"]) {
      const err = rejectAt(`a ==${ws}"x"`);
      assert.equal(err.position, 4, JSON.stringify(ws));
    }
  });
  void test("whitespace inside has( and all( and between operator words", () => {
    assert.equal(parseSelector("has(\t a \t)").toString(), "has(a)");
    assert.equal(parseSelector("global(  )").toString(), "global()");
    assert.equal(parseSelector('a starts\twith "x"').toString(), 'a starts with "x"');
    assert.equal(parseSelector('a ends   with "x"').toString(), 'a ends with "x"');
    assert.equal(parseSelector('a not\tin {"x"}').toString(), 'a not in {"x"}');
  });
});

void describe("labels", () => {
  void test("a 512-character label is accepted, 513 is rejected at the 513th character", () => {
    const k512 = "k".repeat(512);
    assert.equal(parseSelector(`${k512} == "x"`).toString(), `${k512} == "x"`);
    assert.equal(parseSelector(`has(${k512})`).toString(), `has(${k512})`);
    const err = rejectAt(`${"k".repeat(513)} == "x"`);
    assert.equal(err.position, 512);
    assert.equal(rejectAt(`has(${"k".repeat(513)})`).position, 4 + 512);
  });
  const KEYWORDS = ["in", "not", "has", "all", "global", "contains", "starts", "with", "ends", "notin"];
  for (const kw of KEYWORDS) {
    void test(`keyword-named label ${kw} works on the left of every operator`, () => {
      assert.equal(parseSelector(`${kw} == "x"`).toString(), `${kw} == "x"`);
      assert.equal(parseSelector(`${kw} in {"x"}`).toString(), `${kw} in {"x"}`);
      assert.equal(parseSelector(`${kw} not in {"x"}`).toString(), `${kw} not in {"x"}`);
      assert.equal(parseSelector(`${kw} contains "x"`).toString(), `${kw} contains "x"`);
      assert.equal(parseSelector(`has(${kw}) && ${kw} != "y"`).toString(), `(has(${kw}) && ${kw} != "y")`);
      assert.equal(matches(`${kw} == "x"`, { [kw]: "x" }), true);
    });
  }
  void test("contains contains / in in / not not in", () => {
    assert.equal(parseSelector('contains contains "x"').toString(), 'contains contains "x"');
    assert.equal(parseSelector('in in {"x"}').toString(), 'in in {"x"}');
    assert.equal(parseSelector('not not in {"x"}').toString(), 'not not in {"x"}');
    assert.equal(parseSelector('has == "x"').toString(), 'has == "x"');
    assert.equal(parseSelector('all == "x"').toString(), 'all == "x"');
  });
  void test("label characters: digits first, dots, slashes, dashes, underscores", () => {
    for (const k of ["0", "-", "/", ".", "_", "a/b/c", "x.y-z_0", "projectcalico.org/namespace"]) {
      assert.equal(parseSelector(`${k} == "v"`).toString(), `${k} == "v"`);
    }
  });
});

void describe("rejects report the column of the problem", () => {
  const CASES: readonly [string, number, RegExp][] = [
    ["a == b", 5, /expected string after "==" but found label "b"/],
    ['a == "x" || ', 12, /expected a label.*but found end of selector/],
    ['a == "x" && && b == "y"', 12, /found "&&"/],
    ['a in {"x", "y"', 14, /expected "," or "}" in set but found end of selector/],
    ['a in {"x",, "y"}', 10, /expected string or "}"|expected "," or "}"/],
    ['a in {"x"} b', 11, /expected "&&", "\|\|" or end of selector/],
    ['a in ("x")', 5, /expected set literal "\{" after "in"/],
    ['a == "x" == "y"', 9, /expected "&&", "\|\|" or end of selector but found "=="/],
    ['a != "x" )', 9, /unmatched "\)"/],
    ["all(x)", 4, /expected "\)" after "all\("/],
    ["global(", 7, /expected "\)" after "global\("/],
    ['a startswithx "x"', 2, /expected operator/],
    ['a starts "x"', 2, /expected operator/],
    ['a not "x"', 2, /expected operator/],
    ['a innocent {"x"}', 2, /expected operator/],
    ["has(a b)", 6, /expected "\)" to close "has\(a"/],
    ["has(", 4, /expected label name in "has\("/],
    ['"x"', 0, /literal cannot be on the left/],
    ["{}", 0, /expected a label/],
    ['a == "x" ! b == "y"', 9, /found "!"/],
    ["!!", 2, /found end of selector/],
    ["has(a) &| has(b)", 7, /expected "&&"/],
    ["a === 'x'", 4, /expected "=="/],
    ['a == "x" || (b == "y"', 21, /expected "\)" matching the "\(" at column 13/],
    ["a == 'x", 5, /unterminated string literal/],
  ];
  for (const [text, position, message] of CASES) {
    void test(`${JSON.stringify(text)} fails at column ${position + 1}`, () => {
      const err = rejectAt(text);
      assert.equal(err.position, position, err.message);
      assert.match(err.message, message);
      assert.match(err.message, new RegExp(`at column ${position + 1} in selector '`));
      assert.equal(err.name, "SelectorSyntaxError");
      assert.equal(err.code, "SELECTOR_SYNTAX");
    });
  }
});

void describe("limits", () => {
  void test(`input longer than ${MAX_SELECTOR_LENGTH} characters is rejected`, () => {
    const long = `a == "${"x".repeat(MAX_SELECTOR_LENGTH)}"`;
    assert.equal(rejectAt(long).position, MAX_SELECTOR_LENGTH);
    const fits = `a == "${"x".repeat(MAX_SELECTOR_LENGTH - 7)}"`;
    assert.equal(fits.length, MAX_SELECTOR_LENGTH);
    assert.ok(parseSelector(fits));
  });
  void test(`parentheses nested ${MAX_NESTING} deep parse, one more is rejected without blowing the stack`, () => {
    const nest = (n: number): string => `${"(".repeat(n)}a == "x"${")".repeat(n)}`;
    assert.equal(parseSelector(nest(MAX_NESTING)).toString(), 'a == "x"');
    assert.equal(rejectAt(nest(MAX_NESTING + 1)).position, MAX_NESTING);
    assert.equal(rejectAt("(".repeat(MAX_SELECTOR_LENGTH)).position, MAX_NESTING);
    assert.equal(rejectAt("!(".repeat(MAX_SELECTOR_LENGTH / 2)).position, 2 * MAX_NESTING + 1);
  });
  void test("long runs of ! and long chains are fine", () => {
    assert.equal(parseSelector(`${"!".repeat(4000)}has(a)`).toString(), "has(a)");
    assert.equal(parseSelector(`${"!".repeat(4001)}has(a)`).toString(), "!has(a)");
    const chain = Array.from({ length: 300 }, (_, i) => `has(k${i})`).join("&&");
    const sel = parseSelector(chain);
    assert.equal(sel.labelKeys.length, 300);
    assert.equal(sel.evaluate({}), false);
  });
});

void describe("Selector object", () => {
  void test("labelKeys lists every referenced key once, sorted", () => {
    const sel = parseSelector('b == "1" || (a in {"x"} && !has(c)) || b != "2" || all()');
    assert.deepEqual(sel.labelKeys, ["a", "b", "c"]);
    assert.deepEqual(parseSelector("all()").labelKeys, []);
  });
  void test("root exposes the AST", () => {
    const root: SelectorNode = parseSelector('!a in {"y", "x", "y"}').root;
    assert.deepEqual(root, { kind: "not", operand: { kind: "in", label: "a", values: ["x", "y"] } });
  });
  void test("evaluate works when detached from the object", () => {
    const { evaluate } = parseSelector('a == "x"');
    assert.equal(evaluate({ a: "x" }), true);
  });
  void test("parses are cached by text and equal texts give one object", () => {
    assert.equal(parseSelector('cache == "1"'), parseSelector('cache == "1"'));
    assert.notEqual(parseSelectorUncached('cache == "1"'), parseSelector('cache == "1"'));
  });
  void test("the parse cache is bounded and evicts the least recently used", () => {
    const first = parseSelector('evict == "first"');
    const kept = parseSelector('evict == "kept"');
    for (let i = 0; i < 5000; i++) {
      parseSelector(`evict == "n${i}"`);
      if (i % 1000 === 0) parseSelector('evict == "kept"'); // keeps it recently used
    }
    assert.ok(selectorCacheSize() <= 4096, `cache holds ${selectorCacheSize()}`);
    assert.equal(parseSelector('evict == "kept"'), kept);
    assert.notEqual(parseSelector('evict == "first"'), first);
    assert.equal(parseSelector('evict == "first"').toString(), first.toString());
  });
  void test("selectorUniqueId hashes the canonical form", () => {
    assert.equal(selectorUniqueId("! (has( b)||! has(a ))"), "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q");
    assert.equal(selectorUniqueId("a=='x'"), parseSelector('a == "x"').uniqueId());
    assert.match(selectorUniqueId('a == "x"'), /^s:[A-Za-z0-9_-]{38}$/);
  });
  void test("String(selector) and template literals give the canonical form", () => {
    const sel = parseSelector("a=='x'");
    assert.equal(String(sel), 'a == "x"');
    assert.equal(`${sel.toString()}`, 'a == "x"');
  });
});
