import assert from "node:assert/strict";
import { test } from "node:test";

import { checkMessage } from "../src/lib/messages.js";
import {
  PEER_LIMITS,
  authorLabel,
  endorsedLine,
  extraRecommended,
  inboxForPage,
  isPeerMessage,
  needsPage,
  otherMentors,
  peerCan,
  peerError,
  peerRequest,
  pickAnswered,
  pickMyMentors,
  pickMyQuestions,
  pickTips,
  recommendedBy,
  similarQuery,
  unreadBadge,
  unreadCount,
} from "../src/lib/peer.js";

const ctx = { runtimeId: "ext", extOrigin: "chrome-extension://ext" };
const panelSender = {
  id: "ext",
  url: "chrome-extension://ext/src/panel/panel.html",
  origin: "chrome-extension://ext",
};
const tabSender = { id: "ext", tab: { id: 7 }, frameId: 0, url: "http://127.0.0.1/demo/crm/" };
const pageKey = "7\nhttp://127.0.0.1/demo/crm/\nPipeline";

test("peer messages: only from the panel, only in their shapes", () => {
  const tip = { type: "peer", op: "tip", pageKey, body: "Use Ctrl+S", show_name: true };
  assert.deepEqual(checkMessage(tip, panelSender, ctx), { ok: true, from: "panel" });
  assert.equal(checkMessage(tip, tabSender, ctx).ok, false, "a web page cannot post tips");
  const bad = [
    { ...tip, body: "   " }, // nothing written
    { ...tip, body: "x".repeat(PEER_LIMITS.tip + 1) },
    { ...tip, show_name: "yes" },
    { ...tip, pageKey: undefined }, // a page operation names the page on screen
    { type: "peer", op: "nope" },
    { type: "peer", op: "report", id: "../admin" },
    { type: "peer", op: "accept", id: "q1" },
    { type: "peer", op: "answer", id: "q1", body: "x".repeat(PEER_LIMITS.answer + 1) },
  ];
  for (const m of bad) assert.equal(isPeerMessage(m), false, JSON.stringify(m).slice(0, 80));
  assert.ok(isPeerMessage({ type: "peer", op: "page", pageKey }));
  assert.ok(isPeerMessage({ type: "peer", op: "accept", id: "q_1-A", answer_id: "a2" }));
  assert.ok(isPeerMessage({ type: "peer", op: "inbox" }));
});

test("the panel never sends a URL: page operations take the worker's page", () => {
  const page = { url: "http://127.0.0.1/demo/crm/", title: "P".repeat(900) };
  assert.ok(needsPage("tip") && needsPage("ask") && needsPage("similar") && needsPage("page"));
  assert.ok(!needsPage("report") && !needsPage("accept") && !needsPage("inbox"));
  const req = peerRequest(
    {
      op: "ask",
      pageKey,
      body: "  How do I close a deal?  ",
      show_name: false,
      url: "http://evil/",
    },
    page,
  );
  assert.deepEqual(req, {
    path: "/peer/questions",
    method: "POST",
    body: {
      url: page.url,
      title: "P".repeat(500),
      body: "How do I close a deal?",
      show_name: false,
    },
  });
  assert.deepEqual(peerRequest({ op: "page", pageKey }, page).path, "/peer/page");
  assert.deepEqual(
    peerRequest({ op: "similar", pageKey, q: " discount " }, page).body.q,
    "discount",
  );
  assert.deepEqual(peerRequest({ op: "accept", id: "q1", answer_id: "a1" }), {
    path: "/peer/questions/q1/accept",
    method: "POST",
    body: { answer_id: "a1" },
  });
  assert.equal(peerRequest({ op: "inbox" }).method, "GET");
  assert.equal(peerRequest({ op: "report", id: "t1" }).path, "/peer/tips/t1/report");
  assert.equal(peerRequest({ op: "contact", id: "maria" }).path, "/peer/mentors/maria/contact");
});

test("tips: the author only when they chose to show their name; endorsed by a mentor", () => {
  const tips = pickTips([
    {
      id: "t1",
      body_html: "<p>a</p>",
      author_name: "Ana",
      show_name: true,
      endorsed_by_name: "María",
    },
    { id: "t2", body_html: "<p>b</p>", author_name: "", show_name: false },
    { id: "t3", body_html: "<p>c</p>", author_name: "Bo", show_name: false },
    { id: "t4", body: "no html: never rendered" },
    null,
  ]);
  assert.deepEqual(
    tips.map((t) => [t.id, t.author, t.endorsed]),
    [
      ["t1", "Ana", "Endorsed by María"],
      ["t2", "A colleague", ""],
      ["t3", "A colleague", ""],
    ],
  );
  assert.equal(
    endorsedLine({ endorsed_by: { id: "ken", name: "Ken Ito" } }),
    "Endorsed by Ken Ito",
  );
  assert.equal(endorsedLine({ endorsed_by: "" }), "");
  assert.equal(
    authorLabel({ asker_name: "Li", show_name: true }),
    "A colleague".replace("A colleague", "Li"),
  );
});

test("your questions: unread badge, answers accepted first, status in words", () => {
  const qs = [
    {
      id: "q1",
      body_html: "<p>Q1</p>",
      status: "answered",
      unread: true,
      answers: [
        { id: "a1", body_html: "<p>x</p>", author_name: "Ken", mentor_id: "ken", accepted: false },
        { id: "a2", body_html: "<p>y</p>", author_name: "", accepted: true },
      ],
    },
    { id: "q2", body_html: "<p>Q2</p>", status: "open", unread: false, answers: [] },
  ];
  const mine = pickMyQuestions(qs);
  assert.deepEqual(
    mine[0].answers.map((a) => a.id),
    ["a2", "a1"],
  );
  assert.equal(mine[0].answers[1].byMentor, true);
  assert.equal(mine[0].statusText, "Answered · you accepted an answer");
  assert.equal(mine[1].statusText, "Waiting for an answer");
  assert.equal(unreadCount(qs), 1);
  assert.equal(unreadBadge(unreadCount(qs)), "1 new");
  assert.equal(unreadBadge(0), "");
});

test("ask: similar questions only once there is enough to go on", () => {
  assert.equal(similarQuery("how do I"), "");
  assert.equal(similarQuery("  how   do I apply a discount "), "how do I apply a discount");
  const items = pickAnswered([
    {
      question: { id: "q9", body_html: "<p>Q</p>" },
      answer: { body_html: "<p>A</p>", author_name: "Ken" },
    },
    { question_id: "q8", question_html: "<p>Q8</p>", answer_html: "" }, // no answer: not shown
  ]);
  assert.deepEqual(items, [
    { id: "q9", questionHtml: "<p>Q</p>", answerHtml: "<p>A</p>", author: "Ken" },
  ]);
});

test("recommended by mentors: a line per aid, extra aids not already listed", () => {
  const recs = [
    { aid_id: "a1", mentor_name: "María" },
    { aid_id: "a1", mentor_name: "Ken" },
    { aid_id: "a1", mentor_name: "María" },
    { aid_id: "a2", mentor: { name: "Ken" }, aid_title: "Quotes", note: "Start here" },
  ];
  const by = recommendedBy(recs);
  assert.equal(by.get("a1"), "Recommended by María and Ken");
  assert.equal(by.get("a2"), "Recommended by Ken");
  assert.deepEqual(
    extraRecommended(recs, [{ id: "a1" }]).map((a) => [a.id, a.title, a.note]),
    [["a2", "Quotes", "Start here"]],
  );
});

test("your mentor for the app comes first, and only once", () => {
  const mine = pickMyMentors(
    [{ id: "maria", name: "María", contact: "maria@example.com", ends_on: "2026-12-31" }],
    "Northwind CRM",
  );
  assert.equal(mine[0].heading, "Your mentor for Northwind CRM");
  assert.equal(mine[0].reason, "Paired with you until 2026-12-31");
  assert.deepEqual(
    otherMentors([{ id: "maria" }, { id: "ken" }], mine).map((m) => m.id),
    ["ken"],
  );
});

test("answer: the mentor's inbox for this page first, open questions of this app only", () => {
  const inbox = [
    { id: "q1", app_id: "crm", context_id: "other", status: "open", body_html: "1" },
    { id: "q2", app_id: "crm", context_id: "quotes", status: "open", body_html: "2" },
    { id: "q3", app_id: "hr", context_id: "quotes", status: "open", body_html: "3" },
    { id: "q4", app_id: "crm", context_id: "quotes", status: "answered", body_html: "4" },
  ];
  assert.deepEqual(
    inboxForPage(inbox, "crm", "quotes").map((q) => [q.id, q.here]),
    [
      ["q2", true],
      ["q1", false],
    ],
  );
  assert.deepEqual(
    inboxForPage({ questions: inbox }, "crm", "").map((q) => q.id),
    ["q1", "q2"],
  );
});

test("what the panel offers, and errors in words", () => {
  assert.deepEqual(peerCan({ can: { tip: true, ask: true, answer: "yes" } }), {
    tip: true,
    ask: true,
    answer: false,
    moderate: false,
    recommend: false,
    endorse: false,
    flag: false,
    mentees: false,
  });
  assert.deepEqual(peerCan(null).tip, false);
  assert.match(peerError({ status: 429, message: "x" }), /a lot in a short time/);
  assert.match(peerError({ kind: "offline" }), /unreachable/);
  assert.equal(peerError({ message: "not a mapped app" }), "not a mapped app");
});

test("the API's shapes: recommendations with their mentors, inbox questions with their place", () => {
  const recs = [
    {
      aid_id: "a3",
      title: "Discounts",
      summary: "When and how much",
      type: "howto",
      text: "María López and Ken recommend this",
      mentors: [
        { id: "maria", name: "María López", note: "" },
        { id: "ken", name: "Ken", note: "Read before quoting" },
      ],
    },
  ];
  assert.equal(recommendedBy(recs).get("a3"), "Recommended by María López and Ken");
  assert.deepEqual(extraRecommended(recs, []), [
    {
      id: "a3",
      type: "howto",
      title: "Discounts",
      summary: "When and how much",
      note: "Read before quoting",
    },
  ]);
  const inbox = {
    questions: [
      { id: "q1", app: { id: "crm", name: "CRM" }, context: null, status: "open", body_html: "" },
      {
        id: "q2",
        app: { id: "crm", name: "CRM" },
        context: { id: "quotes", name: "Quotes" },
        status: "open",
        body_html: "",
      },
    ],
  };
  assert.deepEqual(
    inboxForPage(inbox, "crm", "quotes").map((q) => q.id),
    ["q2", "q1"],
  );
  const mine = pickMyMentors(
    [{ id: "maria", name: "María", until: "2027-01-31", paired: true }],
    "CRM",
  );
  assert.equal(mine[0].reason, "Paired with you until 2027-01-31");
  assert.deepEqual(
    pickTips([{ id: "t1", body_html: "x", author: "A colleague", mine: true }]).map((t) => t.mine),
    [true],
  );
});
