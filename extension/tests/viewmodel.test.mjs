import assert from "node:assert/strict";
import { test } from "node:test";

import {
  INITIAL,
  offlineNote,
  orderAids,
  reduce,
  selectionChip,
  typeLabel,
} from "../src/lib/viewmodel.js";

const page = { url: "http://h/demo/crm/", title: "Pipeline", selection: "" };
const suggestion = {
  app: { id: "crm", name: "Northwind CRM" },
  contexts: [{ id: "crm-dashboard", name: "Pipeline dashboard" }],
  match: { rule: "*://127.0.0.1/demo/crm/**", reason: "r" },
  aids: [
    { id: "r1", reason_code: "related", reason: "Related" },
    { id: "p1", reason_code: "pinned", reason: "Pinned" },
    { id: "a1", reason_code: "app", reason: "App" },
    { id: "p2", reason_code: "pinned", reason: "Pinned" },
  ],
};

test("pinned first, stable within a group", () => {
  assert.deepEqual(
    orderAids(suggestion.aids).map((a) => a.id),
    ["p1", "p2", "a1", "r1"],
  );
  assert.deepEqual(orderAids(undefined), []);
});

test("first load shows a skeleton, then results", () => {
  let v = reduce(INITIAL, { type: "loading", pageKey: "k1", page, user: "learner" });
  assert.equal(v.state, "loading");
  v = reduce(v, { type: "loaded", pageKey: "k1", page, suggestion });
  assert.equal(v.state, "ready");
  assert.equal(v.user, "learner");
  assert.equal(v.app.name, "Northwind CRM");
  assert.equal(v.aids[0].id, "p1");
  assert.equal("url" in v.page, false, "the view never holds the page URL");
});

test("navigating keeps old results until new ones arrive (no flicker)", () => {
  let v = reduce(INITIAL, { type: "loaded", pageKey: "k1", page, suggestion });
  v = reduce(v, { type: "loading", pageKey: "k2", page: { ...page, title: "Accounts" } });
  assert.equal(v.state, "ready");
  assert.equal(v.loading, true);
  assert.equal(v.aids.length, 4);
});

test("offline shows the last results with their time", () => {
  const at = new Date(2026, 0, 1, 9, 5).getTime();
  const v = reduce(INITIAL, { type: "offline", pageKey: "k", page, last: { at, suggestion } });
  assert.equal(v.state, "offline");
  assert.equal(v.offlineSince, at);
  assert.equal(offlineNote(v.offlineSince), "Offline — showing results from 09:05");
  const none = reduce(INITIAL, { type: "offline", pageKey: "k", page, last: null });
  assert.deepEqual(none.aids, []);
  assert.match(offlineNote(none.offlineSince), /no saved results/);
});

test("signed out, expired, unmapped and no page drop aids", () => {
  const loaded = reduce(
    { ...INITIAL, user: "u" },
    { type: "loaded", pageKey: "k", page, suggestion },
  );
  for (const type of ["signed-out", "expired", "unmapped", "no-page"]) {
    const v = reduce(loaded, { type, pageKey: "k", page });
    assert.equal(v.state, type);
    assert.deepEqual(v.aids, []);
  }
  assert.equal(reduce(loaded, { type: "expired" }).user, null);
});

test("selection updates only the selection", () => {
  const loaded = reduce(INITIAL, { type: "loaded", pageKey: "k", page, suggestion });
  const v = reduce(loaded, { type: "selection", selection: "forecast" });
  assert.equal(v.page.selection, "forecast");
  assert.equal(v.aids, loaded.aids);
  assert.equal(reduce(INITIAL, { type: "selection", selection: "x" }), INITIAL);
});

test("selection chip and type labels", () => {
  assert.equal(selectionChip(" "), null);
  assert.deepEqual(selectionChip("  net   terms "), { query: "net terms", label: "net terms" });
  assert.equal(selectionChip("x".repeat(100)).label.length, 60);
  assert.equal(typeLabel("howto"), "How-to");
  assert.equal(typeLabel("weird"), "Aid");
});

test("last results are remembered per URL, newest first, bounded", async () => {
  const { remember, recall } = await import("../src/lib/viewmodel.js");
  let list = remember([], { url: "a", at: 1 });
  list = remember(list, { url: "b", at: 2 });
  list = remember(list, { url: "a", at: 3 });
  assert.deepEqual(
    list.map((e) => [e.url, e.at]),
    [
      ["a", 3],
      ["b", 2],
    ],
  );
  assert.equal(recall(list, "b").at, 2);
  assert.equal(recall(list, "zzz"), null);
  assert.equal(remember(list, { url: "c" }, 2).length, 2);
});
