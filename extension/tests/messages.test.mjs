import assert from "node:assert/strict";
import { test } from "node:test";

import { checkMessage } from "../src/lib/messages.js";

const ctx = { runtimeId: "ext", extOrigin: "chrome-extension://ext" };
const tabSender = { id: "ext", tab: { id: 7 }, frameId: 0, url: "http://127.0.0.1:8080/demo/crm/" };
const panelSender = {
  id: "ext",
  url: "chrome-extension://ext/src/panel/panel.html",
  origin: "chrome-extension://ext",
};
const page = {
  url: "http://127.0.0.1:8080/demo/crm/",
  title: "CRM",
  headings: ["Pipeline"],
  selection: "",
};

test("content messages only from a tab's top frame", () => {
  assert.deepEqual(checkMessage({ type: "page-changed", page }, tabSender, ctx), {
    ok: true,
    from: "content",
  });
  assert.equal(
    checkMessage({ type: "page-changed", page }, { ...tabSender, frameId: 3 }, ctx).ok,
    false,
  );
  assert.equal(
    checkMessage({ type: "page-changed", page }, { id: "ext", url: "x" }, ctx).ok,
    false,
  );
  assert.equal(checkMessage({ type: "page-changed", page }, panelSender, ctx).ok, false);
});

test("panel messages only from the extension's own pages", () => {
  assert.deepEqual(checkMessage({ type: "sign-in" }, panelSender, ctx), {
    ok: true,
    from: "panel",
  });
  // a panel opened in a tab still comes from our origin
  assert.equal(checkMessage({ type: "retry" }, { ...panelSender, tab: { id: 3 } }, ctx).ok, true);
  // a content script (web page) can't sign in, search or vote
  assert.equal(checkMessage({ type: "sign-in" }, tabSender, ctx).ok, false);
  assert.equal(
    checkMessage({ type: "feedback", aid_id: "a", helpful: true }, tabSender, ctx).ok,
    false,
  );
});

test("other extensions and malformed messages are dropped", () => {
  assert.equal(checkMessage({ type: "sign-in" }, { ...panelSender, id: "other" }, ctx).ok, false);
  assert.equal(checkMessage(null, panelSender, ctx).ok, false);
  assert.equal(checkMessage({ type: "nope" }, panelSender, ctx).ok, false);
  assert.equal(checkMessage({ type: "toString" }, panelSender, ctx).ok, false);
});

test("shapes are validated", () => {
  const bad = [
    { type: "page-changed", page: { ...page, url: "javascript:alert(1)" } },
    { type: "page-changed", page: { ...page, headings: Array(21).fill("h") } },
    { type: "page-changed", page: { ...page, selection: "x".repeat(501) } },
    { type: "search", q: "x".repeat(257) },
  ];
  for (const m of bad)
    assert.equal(checkMessage(m, tabSender, ctx).ok && checkMessage(m, panelSender, ctx).ok, false);
  assert.equal(checkMessage({ type: "get-aid", id: "../admin" }, panelSender, ctx).ok, false);
  assert.equal(
    checkMessage({ type: "get-aid", id: "crm-create-opportunity" }, panelSender, ctx).ok,
    true,
  );
  assert.equal(
    checkMessage({ type: "feedback", aid_id: "a", helpful: "yes" }, panelSender, ctx).ok,
    false,
  );
  assert.equal(checkMessage({ type: "panel-hello", tabId: null }, panelSender, ctx).ok, true);
});

test("analytics messages: panel only, shapes checked", () => {
  const ok = (m, s = panelSender) => checkMessage(m, s, ctx).ok;
  assert.equal(ok({ type: "shown", pageKey: "7\nhttp://127.0.0.1/demo/crm/\nCRM" }), true);
  assert.equal(ok({ type: "shown", pageKey: 7 }), false);
  assert.equal(ok({ type: "shown", pageKey: "k" }, tabSender), false);
  const link = { type: "link-followed", aid_id: "crm-x", url: "https://wiki.example.com/a?b=1" };
  assert.equal(ok(link), true);
  assert.equal(ok(link, tabSender), false);
  assert.equal(ok({ ...link, url: "javascript:alert(1)" }), false);
  assert.equal(ok({ ...link, aid_id: "../x" }), false);
  const vote = { type: "feedback", aid_id: "a", helpful: false };
  assert.equal(ok({ ...vote, comment: "Step 3 is out of date." }), true);
  assert.equal(ok({ ...vote, comment: "x".repeat(1001) }), false);
  assert.equal(ok({ ...vote, comment: 5 }), false);
  // a vote held for its comment, then sent with the comment or released without one
  assert.equal(ok({ ...vote, mode: "hold" }), true);
  assert.equal(ok({ ...vote, mode: "release" }), true);
  assert.equal(ok({ ...vote, mode: "hold", comment: "x" }), false, "a held vote has no comment");
  assert.equal(ok({ ...vote, mode: "now" }), false);
  assert.equal(ok({ ...vote, mode: "hold" }, tabSender), false);
});
