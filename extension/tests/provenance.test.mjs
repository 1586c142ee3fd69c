import assert from "node:assert/strict";
import { test } from "node:test";

import { provenanceLine, updatedWords } from "../src/panel/provenance.js";

const NOW = Date.parse("2026-12-01T10:00:00Z");

test("an aid from a source names it, links to the item and says when it changed", () => {
  const line = provenanceLine(
    {
      source_id: "fabrikam-notes",
      source_name: "Fabrikam release notes",
      kind: "feed",
      url: "https://fabrikam.example/releases/42",
      updated_at: "2026-11-14T08:30:00Z",
    },
    NOW,
  );
  assert.deepEqual(line, {
    name: "Fabrikam release notes",
    href: "https://fabrikam.example/releases/42",
    updated: "14 November 2026",
  });
});

test("an aid written in Inflow has no line", () => {
  assert.equal(provenanceLine(null, NOW), null);
  assert.equal(provenanceLine(undefined, NOW), null);
  assert.equal(provenanceLine({ source_name: "  " }, NOW), null);
});

test("only http(s) links are followed", () => {
  for (const url of ["javascript:alert(1)", "data:text/html,x", "not a url", "", null]) {
    const line = provenanceLine({ source_name: "Wiki", url, updated_at: "" }, NOW);
    assert.equal(line.href, null, String(url));
    assert.equal(line.updated, "");
  }
});

test("recent changes in words, older ones as a date", () => {
  assert.equal(updatedWords("2026-12-01T01:00:00Z", NOW), "today");
  assert.equal(updatedWords("2026-11-30T23:00:00Z", NOW), "yesterday");
  assert.equal(updatedWords("2026-11-27T12:00:00Z", NOW), "4 days ago");
  assert.equal(updatedWords("2026-11-24", NOW), "24 November 2026");
  assert.equal(updatedWords("2027-01-01T00:00:00Z", NOW), "today"); // a clock ahead: not "in…"
  assert.equal(updatedWords("garbage", NOW), "");
});
