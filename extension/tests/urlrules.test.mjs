// The shared URL rule vectors (also run by tests/test_urlrules.py) against the JS twin.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  InvalidRule,
  InvalidUrl,
  RuleSet,
  compileRule,
  naiveMatch,
  parseUrl,
} from "../src/lib/urlrules.js";

const VECTORS = JSON.parse(
  readFileSync(new URL("../../tests/vectors/url_rules.json", import.meta.url), "utf8"),
);

const rulesOf = (c) =>
  c.rules.map((r) => ({
    id: r.id,
    pattern: r.pattern,
    target: `target-${r.id}`,
    priority: r.priority ?? 0,
  }));

test("vectors file is big enough", () => {
  assert.ok(VECTORS.cases.length >= 80);
  assert.ok(VECTORS.invalid.length >= 30);
});

for (const c of VECTORS.cases) {
  test(`case: ${c.name}`, () => {
    const rules = rulesOf(c);
    const matches = new RuleSet(rules).match(c.url);
    assert.deepEqual(
      matches.map((m) => m.rule_id),
      c.expect,
    );
    assert.deepEqual(naiveMatch(rules.map(compileRule), c.url), matches);
    for (const m of matches) {
      assert.equal(m.target, `target-${m.rule_id}`);
      assert.equal(m.pattern, rules.find((r) => r.id === m.rule_id).pattern);
    }
    const reasons = Object.fromEntries(matches.map((m) => [m.rule_id, m.reason]));
    for (const [id, reason] of Object.entries(c.reasons ?? {})) assert.equal(reasons[id], reason);
  });
}

for (const item of VECTORS.invalid) {
  test(`invalid: ${item.pattern.slice(0, 60)}`, () => {
    assert.throws(
      () => compileRule({ id: "bad", pattern: item.pattern, target: "t" }),
      (e) => e instanceof InvalidRule && e.message.includes(item.error),
    );
  });
}

for (const item of VECTORS.urls) {
  test(`url: ${item.url.slice(0, 60)}`, () => {
    if (item.normalized === null) {
      assert.throws(() => parseUrl(item.url), InvalidUrl);
      assert.deepEqual(
        new RuleSet([{ id: "any", pattern: "*://*/**", target: "t" }]).match(item.url),
        [],
      );
    } else {
      assert.equal(parseUrl(item.url).normalized, item.normalized);
      assert.equal(parseUrl(item.normalized).normalized, item.normalized);
    }
  });
}

test("RuleSet names the failing rule", () => {
  assert.throws(
    () => new RuleSet([{ id: "crm#3", pattern: "https://*x.com/", target: "t" }]),
    (e) =>
      e instanceof InvalidRule &&
      e.ruleId === "crm#3" &&
      e.message === "rule 'crm#3': host wildcard only allowed as a leading '*.'",
  );
  assert.throws(
    () =>
      new RuleSet([
        { id: "a", pattern: "https://a.example/", target: "t" },
        { id: "a", pattern: "https://b.example/", target: "t" },
      ]),
    /duplicate rule id/,
  );
});

test("URL over 8 KiB matches nothing", () => {
  const rs = new RuleSet([{ id: "any", pattern: "*://*/**", target: "t" }]);
  const base = "https://a.example/";
  const ok = base + "a".repeat(8192 - base.length);
  assert.deepEqual(
    rs.match(ok).map((m) => m.rule_id),
    ["any"],
  );
  assert.deepEqual(rs.match(ok + "a"), []);
  assert.deepEqual(rs.match(base + "\u20ac".repeat(2800)), []);
  assert.deepEqual(rs.match(undefined), []);
});

test("pathological paths stay fast", () => {
  const rs = new RuleSet([
    { id: "deep", pattern: "https://a.example/**/x/**/y/**/z/**/never", target: "t" },
    { id: "glob", pattern: "https://a.example/*a*a*a*a*a*b", target: "t" },
  ]);
  const start = performance.now();
  assert.deepEqual(rs.match("https://a.example/" + Array(900).fill("x/y/z").join("/")), []);
  assert.deepEqual(rs.match("https://a.example/" + "a".repeat(8000)), []);
  assert.ok(performance.now() - start < 500);
});

test("ties on rule id compare by code point like Python", () => {
  // U+FF5E (BMP) sorts before U+1F600 by code point, but after it by UTF-16 unit.
  const rules = [
    { id: "\u{1F600}", pattern: "https://a.example/*", target: "t" },
    { id: "\uFF5E", pattern: "https://a.example/*", target: "t" },
  ];
  assert.deepEqual(
    new RuleSet(rules).match("https://a.example/x").map((m) => m.rule_id),
    ["\uFF5E", "\u{1F600}"],
  );
});

test("typed segments on hostile URLs finish (no backtracking)", () => {
  // A regex translation such as [0-9]+[0-9]+.*[0-9]+.+y.* is cubic on a long run of digits.
  const rs = new RuleSet([
    { id: "d", pattern: "https://a.example/{digits}{digits}*{digits}{any}y*", target: "t" },
    { id: "g", pattern: "https://a.example/*{guid}*{guid}*{guid}*z", target: "t" },
  ]);
  assert.deepEqual(rs.match("https://a.example/" + "1".repeat(8000) + "x"), []);
  const guid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
  assert.deepEqual(rs.match("https://a.example/" + guid.repeat(200) + "q"), []);
});

test("placeholder lengths count code points, as in Python", () => {
  const rs = new RuleSet([{ id: "r", pattern: "https://a.example/s?n={any:2}", target: "t" }]);
  // One emoji is two UTF-16 units but one character.
  assert.deepEqual(rs.match("https://a.example/s?n=%F0%9F%98%80"), []);
  assert.deepEqual(
    rs.match("https://a.example/s?n=%F0%9F%98%80x").map((m) => m.rule_id),
    ["r"],
  );
});
