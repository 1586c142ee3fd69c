import assert from "node:assert/strict";
import { test } from "node:test";

import { PAGE_LIMITS, clampPageRequest } from "../src/lib/limits.js";
import {
  RELATED_SHOWN,
  freshness,
  groupAids,
  ownerName,
  parseTime,
  reasonLines,
  reasonText,
  searchHeading,
  shouldRunCorrection,
  startTime,
  videoFacts,
  wordList,
} from "../src/lib/viewmodel.js";

const aid = (id, reason_code, why) => ({ id, reason_code, reason: `old ${id}`, why });

test("pinned aids, then at most three related, the rest behind More", () => {
  const aids = [
    aid("r1", "related"),
    aid("p1", "pinned"),
    aid("r2", "related"),
    aid("r3", "related"),
    aid("r4", "related"),
    aid("r5", "related"),
    aid("p2", "pinned"),
  ];
  const g = groupAids(aids);
  assert.equal(RELATED_SHOWN, 3);
  assert.deepEqual(
    g.pinned.map((a) => a.id),
    ["p1", "p2"],
  );
  assert.deepEqual(
    g.related.map((a) => a.id),
    ["r1", "r2", "r3"],
  );
  assert.deepEqual(
    g.more.map((a) => a.id),
    ["r4", "r5"],
  );
  assert.deepEqual(groupAids([]), { pinned: [], related: [], more: [] });
  assert.deepEqual(groupAids(undefined), { pinned: [], related: [], more: [] });
});

test("reasons in words: pinned by owner for a context", () => {
  const why = {
    kind: "pinned",
    terms: [],
    pinned_by: { context: "New opportunity", owner: "sales-enablement@example.com" },
    signals: [],
  };
  assert.deepEqual(reasonLines(aid("p", "pinned", why)), [
    "Pinned by Sales Enablement for New opportunity",
  ]);
  assert.equal(
    reasonText(aid("p", "pinned", { ...why, pinned_by: { context: "Quotes", owner: "" } })),
    "Pinned for Quotes",
  );
});

test("reasons in words: the matched terms, and colleagues' votes", () => {
  const why = { kind: "related", terms: ["discount", "quote"], pinned_by: null, signals: [] };
  assert.equal(reasonText(aid("r", "related", why)), "Mentions discount and quote");
  const three = { ...why, terms: ["a", "b", "c", "d"] };
  assert.equal(reasonText(aid("r", "related", three)), "Mentions a, b and c");
  const helpful = { ...why, signals: [{ kind: "helpful", count: 12 }] };
  assert.deepEqual(reasonLines(aid("r", "related", helpful)), [
    "Mentions discount and quote",
    "Colleagues on this page found it helpful (12)",
  ]);
  const used = { ...why, signals: [{ kind: "used" }, { kind: "not_helpful", count: 5 }] };
  assert.deepEqual(reasonLines(aid("r", "related", used)), [
    "Mentions discount and quote",
    "Colleagues on this page open it",
  ]);
  // Unknown signal kinds and bad counts are not worded.
  const odd = {
    ...why,
    signals: [
      { kind: "x", count: 3 },
      { kind: "helpful", count: "9" },
    ],
  };
  assert.deepEqual(reasonLines(aid("r", "related", odd)), ["Mentions discount and quote"]);
});

test("reasons without structured data keep the server's text (older servers)", () => {
  assert.equal(reasonText(aid("r", "related")), "old r");
  assert.equal(reasonText(aid("r", "related", { terms: [] })), "old r");
  assert.equal(reasonText({}), "");
});

test("owner names and word lists", () => {
  assert.equal(ownerName("finance-ap@example.com"), "Finance Ap");
  assert.equal(ownerName("Sales Enablement"), "Sales Enablement");
  assert.equal(ownerName(undefined), "");
  assert.equal(wordList(["x"]), "x");
  assert.equal(wordList([]), "");
});

test("verified line and out-of-date warning past the review date", () => {
  const now = Date.UTC(2026, 11, 1);
  const fresh = {
    verified_at: "2026-09-01",
    review_interval_days: 365,
    owner: "revops@example.com",
  };
  assert.deepEqual(freshness(fresh, now), {
    verified: "Verified September 2026 by Revops",
    stale: null,
  });
  const old = { verified_at: "2025-05-12", review_interval_days: 180, owner: "Payroll" };
  const f = freshness(old, now);
  assert.equal(f.verified, "Verified May 2025 by Payroll");
  assert.match(f.stale, /may be out of date/);
  assert.match(f.stale, /November 2025/);
  // No interval known (older server): no warning rather than a guess.
  assert.equal(freshness({ verified_at: "2020-01-01" }, now).stale, null);
  assert.deepEqual(freshness({ owner: "Payroll" }, now), {
    verified: "Owned by Payroll",
    stale: null,
  });
});

test("video: duration, start time from #t=, title", () => {
  assert.equal(parseTime("90"), 90);
  assert.equal(parseTime("1:55"), 115);
  assert.equal(parseTime("1m55s"), 115);
  assert.equal(parseTime("1:02:03"), 3723);
  assert.equal(parseTime("soon"), null);
  assert.equal(startTime("https://v.example.com/x#t=1:55"), 115);
  assert.equal(startTime("https://v.example.com/x?t=90"), 90);
  assert.equal(startTime("https://v.example.com/x#t=30,60"), 30);
  assert.equal(startTime("https://v.example.com/x"), null);
  const v = videoFacts(
    { title: "Video: quotes", source: "https://v.example.com/q#t=115", summary: "" },
    "This recording (5:12) shows...",
  );
  assert.deepEqual(v, {
    href: "https://v.example.com/q#t=115",
    title: "Video: quotes",
    duration: "5:12",
    start: "1:55",
    poster: null,
  });
  assert.equal(videoFacts({ source: "javascript:alert(1)" }), null);
  assert.equal(videoFacts({ source: "" }), null);
  assert.equal(videoFacts({ source: "https://v.example.com/", duration: 75 }).duration, "1:15");
});

test("search: a corrected answer is never shown as 0 results under 'Did you mean'", () => {
  const corrected = { query: "expense", corrected_from: "expnese", total: 4, results: [] };
  assert.deepEqual(searchHeading(corrected), {
    kind: "corrected",
    shown: "expense",
    original: "expnese",
  });
  assert.deepEqual(searchHeading(corrected, { exact: true }), {
    kind: "none-exact",
    query: "expnese",
    didYouMean: "expense",
  });
  const plain = { query: "x", total: 0, did_you_mean: "y", results: [] };
  assert.equal(searchHeading(plain).kind, "plain");
  assert.equal(shouldRunCorrection(plain), true);
  assert.equal(shouldRunCorrection(corrected), false);
  assert.equal(shouldRunCorrection({ ...plain, total: 2 }), false);
});

test("page signals are clamped to the server's limits (a 1,000-character title)", () => {
  const body = {
    url: "https://crm.example.com/x",
    title: "T".repeat(1000),
    selection: "s".repeat(5000),
    headings: Array.from({ length: 80 }, () => "h".repeat(400)),
    selectors: ["#a"],
  };
  const out = clampPageRequest(body);
  assert.equal(out.title.length, PAGE_LIMITS.title);
  assert.equal(out.selection.length, PAGE_LIMITS.selection);
  assert.equal(out.headings.length, PAGE_LIMITS.headings);
  assert.ok(out.headings.every((h) => h.length === PAGE_LIMITS.heading));
  assert.deepEqual(out.selectors, ["#a"]);
  assert.equal(out.url, body.url);
  assert.equal(body.title.length, 1000); // the caller's object is not changed
  // A surrogate pair is never split.
  const emoji = clampPageRequest({ title: `${"a".repeat(499)}😀` }).title;
  assert.equal(emoji, "a".repeat(499));
  assert.equal(clampPageRequest({ title: "short" }).title, "short");
});
