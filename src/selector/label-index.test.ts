// The label index: exact transitions, parent label inheritance, pruning, and a model check
// against brute force over random operation sequences (also reversed and with deletes mixed in).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { LabelIndex, parseSelector } from "./index.js";
import { anchorsOf, anchorsSatisfied } from "./anchors.js";

type Labels = Record<string, string>;

/** A LabelIndex wired to a recorder that fails on any duplicated or unmatched transition. */
function recorded() {
  const events: string[] = [];
  const live = new Set<string>();
  const index = new LabelIndex<string, string>({
    onMatchStarted: (s, i) => {
      const key = `${s}|${i}`;
      assert.ok(!live.has(key), `duplicate start ${key}`);
      live.add(key);
      events.push(`+${key}`);
    },
    onMatchStopped: (s, i) => {
      const key = `${s}|${i}`;
      assert.ok(live.has(key), `stop without start ${key}`);
      live.delete(key);
      events.push(`-${key}`);
    },
  });
  const take = (): string[] => events.splice(0).sort();
  return { index, live, take };
}

void describe("LabelIndex transitions", () => {
  void test("a selector added after items starts matches for exactly the items it selects", () => {
    const { index, take } = recorded();
    index.updateItem("w1", { app: "web" });
    index.updateItem("w2", { app: "db" });
    index.updateSelector("s", 'app == "web"');
    assert.deepEqual(take(), ["+s|w1"]);
    assert.deepEqual([...index.itemsMatching("s")], ["w1"]);
    assert.deepEqual([...index.selectorsMatching("w1")], ["s"]);
  });

  void test("an item added after selectors starts matches for exactly the selectors that select it", () => {
    const { index, take } = recorded();
    index.updateSelector("web", 'app == "web"');
    index.updateSelector("notdb", 'app != "db"');
    index.updateSelector("all", "all()");
    index.updateSelector("none", "!all()");
    index.updateSelector("nothas", "!has(tier)");
    index.updateItem("w1", { app: "web" });
    assert.deepEqual(take(), ["+all|w1", "+notdb|w1", "+nothas|w1", "+web|w1"]);
  });

  void test("a label change fires only the transitions it causes", () => {
    const { index, take } = recorded();
    index.updateSelector("web", 'app == "web"');
    index.updateSelector("db", 'app == "db"');
    index.updateSelector("fe", 'app == "web" && tier == "fe"');
    index.updateItem("w", { app: "web", tier: "be" });
    assert.deepEqual(take(), ["+web|w"]);
    index.updateItem("w", { app: "web", tier: "fe" });
    assert.deepEqual(take(), ["+fe|w"]);
    index.updateItem("w", { app: "db", tier: "fe" });
    assert.deepEqual(take(), ["+db|w", "-fe|w", "-web|w"]);
    index.updateItem("w", { app: "db", tier: "fe" });
    assert.deepEqual(take(), []);
  });

  void test("removing a label starts matches of != / not in / !has selectors", () => {
    const { index, take } = recorded();
    index.updateSelector("ne", 'env != "prod"');
    index.updateSelector("notin", 'env not in {"prod", "stage"}');
    index.updateSelector("nothas", "!has(env)");
    index.updateItem("x", { env: "prod" });
    assert.deepEqual(take(), []);
    index.updateItem("x", {});
    assert.deepEqual(take(), ["+ne|x", "+nothas|x", "+notin|x"]);
    index.updateItem("x", { env: "dev" });
    assert.deepEqual(take(), ["-nothas|x"]);
  });

  void test("deleting an item or a selector stops every match it had", () => {
    const { index, live, take } = recorded();
    index.updateSelector("a", "has(app)");
    index.updateSelector("b", 'app == "web"');
    index.updateItem("w1", { app: "web" });
    index.updateItem("w2", { app: "web" });
    take();
    index.deleteItem("w1");
    assert.deepEqual(take(), ["-a|w1", "-b|w1"]);
    index.deleteSelector("a");
    assert.deepEqual(take(), ["-a|w2"]);
    index.deleteSelector("a");
    index.deleteItem("w1");
    assert.deepEqual(take(), []);
    assert.deepEqual([...live], ["b|w2"]);
  });

  void test("replacing a selector fires the difference; the same canonical form is a no-op", () => {
    const { index, take } = recorded();
    index.updateItem("w", { app: "web" });
    index.updateItem("d", { app: "db" });
    index.updateSelector("s", 'app == "web"');
    take();
    index.updateSelector("s", "app=='web'");
    assert.deepEqual(take(), []);
    index.updateSelector("s", 'app in {"web", "db"}');
    assert.deepEqual(take(), ["+s|d"]);
    index.updateSelector("s", 'app == "db"');
    assert.deepEqual(take(), ["-s|w"]);
  });

  void test("selector IDs with the same expression share evaluation but fire separately", () => {
    const { index, take } = recorded();
    index.updateSelector("s1", 'app == "web"');
    index.updateSelector("s2", "app == 'web'");
    assert.equal(index.stats().expressions, 1);
    index.updateItem("w", { app: "web" });
    assert.deepEqual(take(), ["+s1|w", "+s2|w"]);
    index.deleteSelector("s1");
    assert.deepEqual(take(), ["-s1|w"]);
    assert.deepEqual([...index.selectorsMatching("w")], ["s2"]);
    index.updateSelector("s2", "has(app)");
    assert.deepEqual(take(), []);
    assert.equal(index.stats().expressions, 1);
  });

  void test("an invalid selector string throws and leaves the index unchanged", () => {
    const { index, take } = recorded();
    index.updateItem("w", { app: "web" });
    index.updateSelector("s", 'app == "web"');
    take();
    assert.throws(() => index.updateSelector("s", "app =="), { name: "SelectorSyntaxError" });
    assert.deepEqual([...index.itemsMatching("s")], ["w"]);
    assert.deepEqual(take(), []);
  });

  void test("callbacks may query but not modify the index", () => {
    const index: LabelIndex<string, string> = new LabelIndex({
      onMatchStarted: (s) => {
        assert.equal(index.itemsMatching(s).size, 1);
        index.deleteSelector(s);
      },
    });
    index.updateSelector("s", "all()");
    assert.throws(() => index.updateItem("w", {}), /must not modify/);
  });

  void test("label keys named like Object.prototype members are ordinary labels", () => {
    const { index, take } = recorded();
    index.updateSelector("p", "has(__proto__)");
    index.updateSelector("c", 'constructor == "x"');
    index.updateItem("w", JSON.parse('{"__proto__": "y", "constructor": "x"}') as Labels);
    assert.deepEqual(take(), ["+c|w", "+p|w"]);
    index.updateItem("w", {});
    assert.deepEqual(take(), ["-c|w", "-p|w"]);
  });

  void test("frozen label maps (used as they are) and copied ones index the same", () => {
    for (const frozen of [true, false]) {
      const { index, take } = recorded();
      const labels = (l: Record<string, string>): Labels => (frozen ? Object.freeze(l) : l);
      index.updateSelector("a", 'app == "a"');
      index.updateSelector("c", 'constructor == "x"');
      index.updateParent("kns.x", labels({ constructor: "x", app: "parent" }));
      index.updateItem("w", labels({ app: "a" }), ["kns.x"]);
      assert.deepEqual(take(), ["+a|w", "+c|w"], `frozen ${frozen}`);
      index.updateItem("w", labels({ app: "b", constructor: "y" }), ["kns.x"]);
      assert.deepEqual(take(), ["-a|w", "-c|w"], `frozen ${frozen}`);
      index.updateItem("w", labels({ app: "a" }));
      assert.deepEqual(take(), ["+a|w"], `frozen ${frozen}`);
      assert.deepEqual({ ...index.effectiveLabels("w") }, { app: "a" });
    }
  });
});

void describe("LabelIndex parents (profile labels)", () => {
  void test("items inherit parent labels and their own labels win", () => {
    const { index, take } = recorded();
    index.updateSelector("ns", 'pcns.team == "a"');
    index.updateSelector("own", 'team == "mine"');
    index.updateParent("kns.a", { "pcns.team": "a", team: "parent" });
    index.updateItem("w", { team: "mine" }, ["kns.a"]);
    assert.deepEqual(take(), ["+ns|w", "+own|w"]);
    assert.deepEqual({ ...index.effectiveLabels("w") }, { team: "mine", "pcns.team": "a" });
  });

  void test("an earlier parent wins over a later one", () => {
    const { index } = recorded();
    index.updateParent("p1", { k: "1" });
    index.updateParent("p2", { k: "2", j: "2" });
    index.updateItem("w", {}, ["p1", "p2"]);
    assert.deepEqual({ ...index.effectiveLabels("w") }, { k: "1", j: "2" });
    index.updateItem("w", {}, ["p2", "p1"]);
    assert.deepEqual({ ...index.effectiveLabels("w") }, { k: "2", j: "2" });
  });

  void test("defining, changing and deleting a parent re-labels its items", () => {
    const { index, take } = recorded();
    index.updateSelector("s", 'role == "fe"');
    index.updateItem("w1", {}, ["prof"]);
    index.updateItem("w2", { role: "be" }, ["prof"]);
    assert.deepEqual(take(), []);
    index.updateParent("prof", { role: "fe" });
    assert.deepEqual(take(), ["+s|w1"]);
    index.updateParent("prof", { role: "db" });
    assert.deepEqual(take(), ["-s|w1"]);
    index.updateParent("prof", { role: "fe" });
    index.deleteParent("prof");
    assert.deepEqual(take(), ["+s|w1", "-s|w1"]);
    index.updateParent("prof", { role: "fe" });
    assert.deepEqual(take(), ["+s|w1"]);
  });

  void test("changing an item's parent list re-labels it", () => {
    const { index, take } = recorded();
    index.updateSelector("s", "has(x)");
    index.updateParent("a", { x: "1" });
    index.updateItem("w", {}, ["a"]);
    assert.deepEqual(take(), ["+s|w"]);
    index.updateItem("w", {}, []);
    assert.deepEqual(take(), ["-s|w"]);
    index.deleteItem("w");
    index.deleteParent("a");
    assert.equal(index.stats().parents, 0);
  });
});

/** Random selector texts over the given keys and values, covering every construct. */
function randomSelector(key: fc.Arbitrary<string>, val: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const set = fc.array(val, { maxLength: 3 }).map((vs) => `{${vs.map((v) => `"${v}"`).join(",")}}`);
  const atom = fc.oneof(
    fc.tuple(key, val).map(([k, v]) => `${k} == "${v}"`),
    fc.tuple(key, val).map(([k, v]) => `${k} != "${v}"`),
    fc.tuple(key, set).map(([k, vs]) => `${k} in ${vs}`),
    fc.tuple(key, set).map(([k, vs]) => `${k} not in ${vs}`),
    key.map((k) => `has(${k})`),
    fc.tuple(key, val).map(([k, v]) => `${k} contains "${v}"`),
    fc.tuple(key, val).map(([k, v]) => `${k} starts with "${v}"`),
    fc.tuple(key, val).map(([k, v]) => `${k} ends with "${v}"`),
    fc.constantFrom("all()", "global()"),
  );
  return fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: "small" },
      atom,
      tie("e").map((e) => `!(${e})`),
      tie("e").map((e) => `!!(${e})`),
      fc.array(tie("e"), { minLength: 2, maxLength: 3 }).map((es) => `(${es.join(" && ")})`),
      fc.array(tie("e"), { minLength: 2, maxLength: 3 }).map((es) => `(${es.join(" || ")})`),
    ),
  })).e;
}

void describe("LabelIndex pruning", () => {
  void test("a label change evaluates far fewer selectors than exist", () => {
    const index = new LabelIndex<number, number>();
    for (let s = 0; s < 1000; s++) index.updateSelector(s, `app == "a${s}" && tier == "t${s % 7}"`);
    index.updateSelector(-1, "!has(quarantine)");
    for (let i = 0; i < 200; i++) index.updateItem(i, { app: `a${i}`, tier: `t${i % 7}`, v: "1" });
    const before = index.stats().evaluations;
    index.updateItem(5, { app: "a5", tier: "t5", v: "2" }); // no selector reads v
    assert.equal(index.stats().evaluations - before, 0);
    index.updateItem(5, { app: "a6", tier: "t6", v: "2" });
    assert.ok(index.stats().evaluations - before <= 4, `${index.stats().evaluations - before} evaluations`);
    assert.deepEqual([...index.selectorsMatching(5)].sort(), [-1, 6]);
  });

  void test("a new selector evaluates only the items its anchor admits", () => {
    const index = new LabelIndex<string, number>();
    for (let i = 0; i < 1000; i++) index.updateItem(i, { app: `a${i % 100}`, role: i % 2 === 0 ? "x" : "y" });
    const before = index.stats().evaluations;
    index.updateSelector("s", 'role == "x" && app in {"a1", "a2"}');
    assert.equal(index.stats().evaluations - before, 20);
    assert.equal(index.itemsMatching("s").size, 10);
  });

  const ANCHORS: readonly [string, string | undefined][] = [
    ['a == "1"', "a∈{1}"],
    ['a in {"1", "2"}', "a∈{1,2}"],
    ["a in {}", ""],
    ["has(a)", "a∈*"],
    ['a contains "x"', "a∈*"],
    ['a != "1"', undefined],
    ["!has(a)", undefined],
    ["all()", undefined],
    ['!a != "1"', "a∈{1}"],
    ['has(a) && b == "1"', "b∈{1}"],
    ['a == "1" || a == "2"', "a∈{1,2}"],
    ['a == "1" || has(a)', "a∈*"],
    ['a == "1" || b == "2"', "a∈{1} b∈{2}"],
    ['a == "1" || !has(b)', undefined],
    ['(a == "1" || b == "2") && c in {"1", "2", "3"}', "a∈{1} b∈{2}"],
    ['a == "1" && b in {}', ""],
  ];
  for (const [text, want] of ANCHORS) {
    void test(`anchors of ${text}: ${want ?? "none"}`, () => {
      const a = anchorsOf(parseSelector(text).root);
      const shown = a
        ?.map((x) => `${x.key}∈${x.values === null ? "*" : `{${x.values.join(",")}}`}`)
        .join(" ");
      assert.equal(shown, want);
    });
  }

  void test("anchors are necessary conditions (property)", () => {
    const key = fc.constantFrom("a", "b", "c");
    const val = fc.constantFrom("1", "2", "");
    const expr = randomSelector(key, val);
    const labels = fc.dictionary(key, val, { maxKeys: 3 });
    fc.assert(
      fc.property(expr, labels, (text, l) => {
        const sel = parseSelector(text);
        const anchors = anchorsOf(sel.root);
        if (anchors !== undefined && sel.evaluate(l)) assert.ok(anchorsSatisfied(anchors, l), text);
      }),
      { numRuns: 5000 },
    );
  });
});

// ---- model check ------------------------------------------------------------------------------

type Op =
  | { op: "sel"; id: string; text: string }
  | { op: "delSel"; id: string }
  | { op: "item"; id: string; labels: Labels; parents: string[] }
  | { op: "delItem"; id: string }
  | { op: "parent"; id: string; labels: Labels }
  | { op: "delParent"; id: string };

const KEYS = ["app", "tier", "role", "env"];
const VALS = ["a", "b", "c", ""];
const SEL_IDS = ["s0", "s1", "s2", "s3", "s4", "s5"];
const ITEM_IDS = ["i0", "i1", "i2", "i3", "i4"];
const PARENT_IDS = ["p0", "p1", "p2"];

const labelsArb = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALS), { maxKeys: 4 });
const fixedSelText = fc.constantFrom(
  'app == "a"',
  'app == "b" && tier == "a"',
  'role in {"a", "b"}',
  'role not in {"a"}',
  "has(env)",
  "!has(env)",
  "all()",
  "!all()",
  'app != "a"',
  'app == "a" || tier == "b"',
  '(app == "a" || app == "b") && !has(role)',
  'env starts with "a" || env == ""',
  'tier in {} || role == "c"',
  'has(app) && app not in {"a", "b"}',
  'app == "a" && env == "a"',
  'tier contains "" && role == "a"',
);
const selText = fc.oneof(fixedSelText, randomSelector(fc.constantFrom(...KEYS), fc.constantFrom(...VALS)));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("sel" as const), id: fc.constantFrom(...SEL_IDS), text: selText }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("delSel" as const), id: fc.constantFrom(...SEL_IDS) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("item" as const),
      id: fc.constantFrom(...ITEM_IDS),
      labels: labelsArb,
      parents: fc.subarray(PARENT_IDS).chain((ps) => fc.shuffledSubarray(ps, { minLength: ps.length })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("delItem" as const), id: fc.constantFrom(...ITEM_IDS) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("parent" as const),
      id: fc.constantFrom(...PARENT_IDS),
      labels: labelsArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("delParent" as const), id: fc.constantFrom(...PARENT_IDS) }),
  },
);

/** Brute force: the state as plain maps, matches recomputed from scratch. */
class Model {
  sels = new Map<string, string>();
  items = new Map<string, { labels: Labels; parents: string[] }>();
  parents = new Map<string, Labels>();
  apply(o: Op): void {
    switch (o.op) {
      case "sel":
        this.sels.set(o.id, o.text);
        break;
      case "delSel":
        this.sels.delete(o.id);
        break;
      case "item":
        this.items.set(o.id, { labels: o.labels, parents: o.parents });
        break;
      case "delItem":
        this.items.delete(o.id);
        break;
      case "parent":
        this.parents.set(o.id, o.labels);
        break;
      case "delParent":
        this.parents.delete(o.id);
        break;
    }
  }
  matches(): Set<string> {
    const out = new Set<string>();
    for (const [iid, item] of this.items) {
      const eff: Labels = {};
      for (const p of [...item.parents].reverse()) Object.assign(eff, this.parents.get(p) ?? {});
      Object.assign(eff, item.labels);
      for (const [sid, text] of this.sels) if (parseSelector(text).evaluate(eff)) out.add(`${sid}|${iid}`);
    }
    return out;
  }
}

function applyTo(index: LabelIndex<string, string>, o: Op): void {
  switch (o.op) {
    case "sel":
      index.updateSelector(o.id, o.text);
      break;
    case "delSel":
      index.deleteSelector(o.id);
      break;
    case "item":
      index.updateItem(o.id, o.labels, o.parents);
      break;
    case "delItem":
      index.deleteItem(o.id);
      break;
    case "parent":
      index.updateParent(o.id, o.labels);
      break;
    case "delParent":
      index.deleteParent(o.id);
      break;
  }
}

function queried(index: LabelIndex<string, string>): Set<string> {
  const a = new Set<string>();
  for (const sid of SEL_IDS) for (const iid of index.itemsMatching(sid)) a.add(`${sid}|${iid}`);
  const b = new Set<string>();
  for (const iid of ITEM_IDS) for (const sid of index.selectorsMatching(iid)) b.add(`${sid}|${iid}`);
  assert.deepEqual(a, b, "itemsMatching and selectorsMatching disagree");
  return a;
}

function checkSequence(ops: readonly Op[]): Set<string> {
  const { index, live } = recorded();
  const model = new Model();
  for (const o of ops) {
    applyTo(index, o);
    model.apply(o);
    const want = model.matches();
    assert.deepEqual(live, want, `callbacks diverged after ${JSON.stringify(o)}`);
    assert.deepEqual(queried(index), want, `queries diverged after ${JSON.stringify(o)}`);
  }
  return new Set(live);
}

void describe("LabelIndex against a brute-force model", () => {
  void test("random operation sequences: every transition fires once, none missed", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => void checkSequence(ops)),
      {
        numRuns: 600,
      },
    );
  });

  void test("the final state does not depend on the order of independent updates", () => {
    // Upserts of distinct objects commute: apply the last value of each object in both orders.
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const last = new Map<string, Op>();
        for (const o of ops) last.set(`${o.op.replace(/^del/, "").toLowerCase()}:${o.id}`, o);
        const finals = [...last.values()];
        const forward = checkSequence(finals);
        const reversed = checkSequence([...finals].reverse());
        assert.deepEqual(reversed, forward);
      }),
      { numRuns: 400 },
    );
  });

  void test("deleting everything, in any order, stops every match", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), fc.boolean(), (ops, itemsFirst) => {
        const dels: Op[] = [
          ...ITEM_IDS.map((id): Op => ({ op: "delItem", id })),
          ...SEL_IDS.map((id): Op => ({ op: "delSel", id })),
          ...PARENT_IDS.map((id): Op => ({ op: "delParent", id })),
        ];
        const live = checkSequence([...ops, ...(itemsFirst ? dels : [...dels].reverse())]);
        assert.equal(live.size, 0);
      }),
      { numRuns: 300 },
    );
  });
});
