import assert from "node:assert/strict";
import { test } from "node:test";

import {
  INITIAL,
  MENTORS_MAX,
  contactOf,
  keptSuggestion,
  pickMentors,
  recall,
  reduce,
  remember,
} from "../src/lib/viewmodel.js";

const dev = {
  id: "dev-patel",
  name: "Dev Patel",
  contact: "@dev.patel",
  can_help_with: "Discounts, quotes and getting a deal through the deal desk.",
  reason: "Knows about discount, quote, pricing",
};
const maria = {
  id: "maria-lopez",
  name: "María López",
  contact: "maria.lopez@example.com",
  can_help_with: "Forecast calls, pipeline hygiene and what each stage really means.",
  reason: "Knows about opportunity",
};
const page = { url: "http://h/demo/crm/opportunities/1042", title: "Opportunity", selection: "" };
const suggestion = {
  app: { id: "crm", name: "Northwind CRM" },
  contexts: [{ id: "crm-opportunity", name: "Opportunity record" }],
  match: { rule: "r", reason: "URL matches" },
  aids: [{ id: "p1", reason_code: "pinned", reason: "Pinned" }],
  mentors: [dev, maria],
  generation: 7,
};

test("mentors are picked in the server's order, with the five text fields only", () => {
  const v = reduce(INITIAL, { type: "loaded", pageKey: "k", page, suggestion });
  assert.deepEqual(v.mentors, [dev, maria]);
  const extra = pickMentors([{ ...dev, subject: "kc-uuid", audience: ["managers"] }]);
  assert.deepEqual(Object.keys(extra[0]).sort(), [
    "can_help_with",
    "contact",
    "id",
    "name",
    "reason",
  ]);
});

test("at most three mentors; malformed entries skipped; missing list means none", () => {
  const many = Array.from({ length: 5 }, (_, i) => ({ ...dev, id: `m${i}` }));
  assert.equal(pickMentors(many).length, MENTORS_MAX);
  assert.deepEqual(
    pickMentors([
      null,
      "dev",
      { ...dev, name: "" },
      { ...dev, contact: "  " },
      { ...dev, name: { toString: () => "x" } },
      { ...dev, reason: 5 },
      { ...dev, id: "ok", can_help_with: undefined },
    ]).map((m) => [m.id, m.can_help_with]),
    [["ok", ""]],
  );
  assert.deepEqual(pickMentors(undefined), []);
  assert.deepEqual(pickMentors({ length: 1, 0: dev }), []);
  const v = reduce(INITIAL, { type: "loaded", pageKey: "k", page, suggestion: { app: null } });
  assert.deepEqual(v.mentors, []);
});

test("names stay plain text (rendering uses textContent); long fields are cut", () => {
  const [m] = pickMentors([{ ...dev, name: "<script>alert(1)</script>", reason: "r".repeat(999) }]);
  assert.equal(m.name, "<script>alert(1)</script>");
  assert.equal(m.reason.length, 300);
});

test("mentors kept while loading, dropped on unmapped, no page, sign-out and expiry", () => {
  const loaded = reduce(INITIAL, { type: "loaded", pageKey: "k", page, suggestion });
  const loading = reduce(loaded, { type: "loading", pageKey: "k2", page });
  assert.equal(loading.mentors.length, 2);
  for (const type of ["unmapped", "no-page", "signed-out", "expired"]) {
    assert.deepEqual(reduce(loaded, { type, pageKey: "k", page }).mentors, [], type);
  }
  assert.deepEqual(INITIAL.mentors, []);
  const fresh = reduce(INITIAL, { type: "loading", pageKey: "k", page });
  assert.deepEqual(fresh.mentors, []);
});

test("the offline view keeps the mentors of the stored last results", () => {
  const kept = keptSuggestion(suggestion);
  assert.deepEqual(kept.mentors, [dev, maria]);
  assert.equal("generation" in kept, false);
  // Stored as JSON in storage.local, read back offline.
  const list = JSON.parse(JSON.stringify(remember([], { url: page.url, at: 5, suggestion: kept })));
  const v = reduce(INITIAL, { type: "offline", pageKey: "k", page, last: recall(list, page.url) });
  assert.equal(v.state, "offline");
  assert.deepEqual(v.mentors, [dev, maria]);
  assert.deepEqual(
    v.aids.map((a) => a.id),
    ["p1"],
  );
  assert.equal(v.reason, "URL matches");
  // Results remembered before mentors existed: no mentors, no crash.
  const old = reduce(INITIAL, {
    type: "offline",
    pageKey: "k",
    page,
    last: { at: 1, suggestion: { ...suggestion, mentors: undefined } },
  });
  assert.deepEqual(old.mentors, []);
  assert.deepEqual(keptSuggestion(null).mentors, []);
});

test("contact: an email becomes a mailto: link, a handle is shown, anything else is text", () => {
  assert.deepEqual(contactOf("maria.lopez@example.com"), {
    kind: "email",
    text: "maria.lopez@example.com",
    href: "mailto:maria.lopez@example.com",
  });
  assert.equal(contactOf(" Ana.Costa@Example.COM ").href, "mailto:Ana.Costa@example.com");
  assert.equal(contactOf("o'neil+crm@ex-ample.co.uk").href, "mailto:o'neil%2Bcrm@ex-ample.co.uk");
  // Characters that would add headers or a body to the mail are encoded, never passed through.
  assert.equal(contactOf("a%3f&b=c@example.com").href, "mailto:a%253f%26b%3Dc@example.com");
  assert.deepEqual(contactOf("@dev.patel"), { kind: "handle", text: "@dev.patel" });
  for (const bad of [
    "javascript:alert(1)//@example.com",
    "a@example.com?subject=hi",
    "a@example.com?cc=boss@example.com",
    "<script>@example.com",
    "a@b",
    "a@-example.com",
    "a..b@example.com",
    "a b@example.com",
    "maría@example.com",
    "mailto:a@example.com",
    "https://chat.example.com/u/dev",
    "",
    "@",
    "@dev patel",
  ]) {
    assert.equal(contactOf(bad).kind, "text", bad);
    assert.equal("href" in contactOf(bad), false, bad);
  }
  assert.deepEqual(contactOf(undefined), { kind: "text", text: "" });
  assert.equal(contactOf(`${"a".repeat(250)}@example.com`).kind, "text");
});
