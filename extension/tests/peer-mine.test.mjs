// The panel's second pass of peer learning (src/lib/peer.js): your tips (status in words, edit,
// delete), deleting your question, and the mentor's Endorse, Flag and Your mentees.
import assert from "node:assert/strict";
import { test } from "node:test";

import { checkMessage } from "../src/lib/messages.js";
import {
  PEER_LIMITS,
  isPeerMessage,
  needsPage,
  peerCan,
  peerRequest,
  pickMentees,
  pickMyTips,
  pickTips,
  tipStatus,
} from "../src/lib/peer.js";

const ctx = { runtimeId: "ext", extOrigin: "chrome-extension://ext" };
const panelSender = {
  id: "ext",
  url: "chrome-extension://ext/src/panel/panel.html",
  origin: "chrome-extension://ext",
};
const tabSender = { id: "ext", tab: { id: 7 }, frameId: 0, url: "http://127.0.0.1/demo/crm/" };

test("your tips: the status in words, the reason a reviewer gave, the text to edit", () => {
  const mine = pickMyTips({
    tips: [
      { id: "t1", status: "pending", body: "Use **Tab**", body_html: "<p>Use <b>Tab</b></p>" },
      { id: "t2", status: "approved", body: "b", body_html: "<p>b</p>" },
      { id: "t3", status: "rejected", reject_reason: "Duplicates the aid", body: "c" },
      { id: "t4", status: "hidden", body: "d", app: { name: "CRM" }, context: { name: "Deals" } },
      { id: "bad id!", status: "pending" },
      null,
    ],
  });
  assert.deepEqual(
    mine.map((t) => t.statusText),
    [
      "Waiting for review",
      "Shown to colleagues",
      "Not published: Duplicates the aid",
      "Hidden by a moderator",
    ],
  );
  assert.equal(mine[0].body, "Use **Tab**", "the editor starts from the Markdown, not the HTML");
  assert.equal(mine[2].rejected, true);
  assert.equal(mine[3].where, "CRM · Deals");
  assert.equal(tipStatus("rejected", ""), "Not published");
  assert.deepEqual(pickMyTips(null), []);
  assert.equal(pickMyTips([{ id: "x", status: "pending" }]).length, 1, "a bare list too");
});

test("edit, delete, endorse, flag, mentees: the requests, from the panel only", () => {
  const msgs = [
    [{ op: "mytips" }, { path: "/peer/tips/mine", method: "GET" }],
    [
      { op: "edittip", id: "t1", body: "  New text " },
      { path: "/peer/tips/t1", method: "PUT", body: { body: "New text" } },
    ],
    [
      { op: "deletetip", id: "t1" },
      { path: "/peer/tips/t1", method: "DELETE" },
    ],
    [
      { op: "deletequestion", id: "q1" },
      { path: "/peer/questions/q1", method: "DELETE" },
    ],
    [
      { op: "endorse", id: "t1" },
      { path: "/peer/tips/t1/endorse", method: "POST", body: {} },
    ],
    [
      { op: "flag", id: "aid-1", kind: "outdated", comment: " The menu moved " },
      {
        path: "/peer/aids/aid-1/flag",
        method: "POST",
        body: { kind: "outdated", comment: "The menu moved" },
      },
    ],
    [{ op: "mentees" }, { path: "/peer/mentees", method: "GET" }],
  ];
  for (const [m, req] of msgs) {
    const msg = { type: "peer", ...m };
    assert.ok(isPeerMessage(msg), m.op);
    assert.equal(needsPage(m.op), false, `${m.op} is not about the page on screen`);
    assert.deepEqual(peerRequest(msg), req);
    assert.deepEqual(checkMessage(msg, panelSender, ctx), { ok: true, from: "panel" });
    assert.equal(checkMessage(msg, tabSender, ctx).ok, false, `a web page cannot ${m.op}`);
  }
  const bad = [
    { op: "edittip", id: "t1", body: "   " },
    { op: "edittip", id: "t1", body: "x".repeat(PEER_LIMITS.tip + 1) },
    { op: "deletetip", id: "../admin" },
    { op: "deletequestion" },
    { op: "endorse", id: "" },
    { op: "flag", id: "a", kind: "rude", comment: "x" },
    { op: "flag", id: "a", kind: "wrong", comment: "" },
    { op: "flag", id: "a", kind: "wrong", comment: "x".repeat(PEER_LIMITS.flag + 1) },
  ];
  for (const m of bad) assert.equal(isPeerMessage({ type: "peer", ...m }), false, m.op);
});

test("endorse: a tip the mentor endorsed says 'Endorsed by you'; others the mentor's name", () => {
  const tips = [
    { id: "a", body_html: "<p>a</p>", endorsed_by: { id: "mlopez", name: "María López" } },
    { id: "b", body_html: "<p>b</p>", endorsed_by: { id: "ken", name: "Ken" } },
    { id: "c", body_html: "<p>c</p>", endorsed_by: null },
  ];
  const shown = pickTips(tips, "mlopez");
  assert.deepEqual(
    shown.map((t) => [t.endorsed, t.endorsedByMe]),
    [
      ["Endorsed by you", true],
      ["Endorsed by Ken", false],
      ["", false],
    ],
  );
  assert.equal(pickTips(tips)[0].endorsed, "Endorsed by María López", "a learner sees the name");
  assert.deepEqual(peerCan({ can: { endorse: true, flag: true, mentees: true } }), {
    tip: false,
    ask: false,
    answer: false,
    moderate: false,
    recommend: false,
    endorse: true,
    flag: true,
    mentees: true,
  });
});

test("your mentees: who, which app, until when, and their open questions", () => {
  const mentees = pickMentees({
    mentor: { id: "mlopez", name: "María López" },
    mentees: [
      {
        pairing_id: "p1",
        learner_username: "newhire",
        app_id: "crm",
        app_name: "Northwind CRM",
        until: "2027-01-30",
        open_questions: [{ id: "q1", body_html: "<p>How?</p>" }, { id: "no good" }],
      },
      { pairing_id: "p2", learner_username: "", app_id: "crm" },
    ],
  });
  assert.equal(mentees.length, 1);
  assert.equal(mentees[0].username, "newhire");
  assert.equal(mentees[0].line, "Northwind CRM · until 2027-01-30");
  assert.deepEqual(mentees[0].questions, [{ id: "q1", html: "<p>How?</p>" }]);
  assert.deepEqual(pickMentees({ mentor: null, mentees: [] }), []);
});
