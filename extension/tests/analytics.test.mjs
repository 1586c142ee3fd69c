import assert from "node:assert/strict";
import { test } from "node:test";

import {
  FLUSH_DELAY_MS,
  SEARCH_REPEAT_MS,
  SEARCH_SETTLE_MS,
  nextDue,
  scopeOf,
  searchAnswered,
  searchSettle,
  shownEvents,
} from "../src/lib/analytics.js";

const ready = {
  state: "ready",
  loading: false,
  pageKey: "7\nhttp://127.0.0.1:8080/demo/crm/\nCRM",
  app: { id: "crm", name: "Northwind CRM" },
  contexts: [{ id: "crm-dashboard", name: "Pipeline dashboard" }],
  aids: [{ id: "a1" }, { id: "a2" }],
};

test("scope: only a mapped page has one; its best context comes along", () => {
  assert.deepEqual(scopeOf(ready), { app: "crm", context: "crm-dashboard" });
  assert.deepEqual(scopeOf({ ...ready, contexts: [] }), { app: "crm" });
  assert.deepEqual(scopeOf({ ...ready, state: "offline" }), {
    app: "crm",
    context: "crm-dashboard",
  });
  for (const state of ["unmapped", "no-page", "signed-out", "expired", "loading"])
    assert.equal(scopeOf({ ...ready, state }), null, state);
  assert.equal(scopeOf({ ...ready, app: null }), null);
  assert.equal(scopeOf(null), null);
});

test("shown: panel_opened and suggestions_shown for the displayed mapped page only", () => {
  assert.deepEqual(shownEvents(ready, ready.pageKey), [
    ["panel_opened", { app: "crm", context: "crm-dashboard" }],
    ["suggestions_shown", { app: "crm", context: "crm-dashboard", aids: ["a1", "a2"] }],
  ]);
  // no aids: the panel was opened, no suggestions were shown
  assert.deepEqual(shownEvents({ ...ready, aids: [] }, ready.pageKey), [
    ["panel_opened", { app: "crm", context: "crm-dashboard" }],
  ]);
  // the view moved on meanwhile, is still loading, or is not a mapped page: nothing
  assert.deepEqual(shownEvents(ready, "other"), []);
  assert.deepEqual(shownEvents({ ...ready, loading: true }, ready.pageKey), []);
  assert.deepEqual(shownEvents({ ...ready, state: "unmapped" }, ready.pageKey), []);
  assert.deepEqual(shownEvents({ ...ready, app: null }, ready.pageKey), []);
  // at most 50 aid ids (the server's limit)
  const many = { ...ready, aids: Array.from({ length: 60 }, (_, i) => ({ id: `a${i}` })) };
  assert.equal(shownEvents(many, ready.pageKey)[1][1].aids.length, 50);
});

/** Drive the search steps the way the worker does: answers at given times, timers firing. */
function typeAndWait(steps) {
  let state = null;
  const recorded = [];
  for (const [at, what] of steps) {
    const step =
      what === "tick"
        ? searchSettle(state, at)
        : what === "open"
          ? searchSettle(state, at, { force: true })
          : searchAnswered(state, what, at);
    state = step.state;
    if (step.commit) recorded.push(step.commit);
  }
  return { state, recorded };
}

test('typing "abc" slowly gives one search event, for the settled query', () => {
  const { recorded } = typeAndWait([
    [0, { query: "a", result_count: 40, app: "crm" }],
    [400, { query: "ab", result_count: 3, app: "crm" }],
    [800, { query: "abc", result_count: 1, app: "crm" }],
    [800 + SEARCH_SETTLE_MS - 1, "tick"], // too early
    [800 + SEARCH_SETTLE_MS, "tick"],
    [800 + SEARCH_SETTLE_MS + 5000, "tick"], // nothing left
  ]);
  assert.deepEqual(recorded, [{ query: "abc", result_count: 1, app: "crm" }]);
});

test("an aid opened from the results settles the search at once", () => {
  const { recorded, state } = typeAndWait([
    [0, { query: "discount", result_count: 2 }],
    [300, "open"],
    [300 + SEARCH_SETTLE_MS, "tick"],
  ]);
  assert.deepEqual(recorded, [{ query: "discount", result_count: 2 }]);
  assert.equal(state.pending, null);
});

test("a later search commits a settled one whose timer was lost (worker stopped)", () => {
  const { recorded } = typeAndWait([
    [0, { query: "travel", result_count: 4 }],
    [10_000, { query: "receipts", result_count: 2 }], // no tick in between
    [10_000 + SEARCH_SETTLE_MS, "tick"],
  ]);
  assert.deepEqual(
    recorded.map((r) => r.query),
    ["travel", "receipts"],
  );
});

test("the same query again soon after (Enter, case, spaces) is the same search", () => {
  const { recorded } = typeAndWait([
    [0, { query: "expense report", result_count: 3 }],
    [SEARCH_SETTLE_MS, "tick"],
    [SEARCH_SETTLE_MS + 100, { query: "Expense  report", result_count: 3 }],
    [2 * SEARCH_SETTLE_MS + 200, "tick"],
    // much later it counts again
    [SEARCH_SETTLE_MS + SEARCH_REPEAT_MS + 1, { query: "expense report", result_count: 3 }],
    [2 * SEARCH_SETTLE_MS + SEARCH_REPEAT_MS + 1, "tick"],
  ]);
  assert.equal(recorded.length, 2);
});

test("two different settled searches are two events", () => {
  const { recorded } = typeAndWait([
    [0, { query: "benefits", result_count: 5 }],
    [SEARCH_SETTLE_MS, "tick"],
    [SEARCH_SETTLE_MS + 2000, { query: "holidays", result_count: 0 }],
    [2 * SEARCH_SETTLE_MS + 2000, "tick"],
  ]);
  assert.deepEqual(
    recorded.map((r) => [r.query, r.result_count]),
    [
      ["benefits", 5],
      ["holidays", 0],
    ],
  );
});

test("flush timer: the earliest deadline wins, so events batch but never wait forever", () => {
  assert.equal(nextDue(null, 1000, FLUSH_DELAY_MS), 1000 + FLUSH_DELAY_MS);
  assert.equal(nextDue(3000, 2000, FLUSH_DELAY_MS), 3000); // keep the sooner one
  assert.equal(nextDue(3000, 2000, 0), 2000); // "now" beats a later one
  assert.equal(nextDue(undefined, 0, -5), 0);
});
