import assert from "node:assert/strict";
import { test } from "node:test";

import { checkMessage } from "../src/lib/messages.js";
import {
  AID_FINISHED,
  PATHS_TTL_MS,
  cacheEntry,
  cachedMine,
  doneMessages,
  dueText,
  isPathsMessage,
  learnUrl,
  localDay,
  markFor,
  ownerOf,
  pathsError,
  pathsRequest,
  pickPath,
  stepsForAid,
  stripModel,
  withStepDone,
} from "../src/lib/paths.js";

const ctx = { runtimeId: "ext", extOrigin: "chrome-extension://ext" };
const panelSender = {
  id: "ext",
  url: "chrome-extension://ext/src/panel/panel.html",
  origin: "chrome-extension://ext",
};
const tabSender = { id: "ext", tab: { id: 7 }, frameId: 0, url: "https://shop.example/" };

// Another company's paths (not the demo's): a warehouse onboarding and a safety refresher.
const step = (id, kind, title, extra = {}) => ({
  id,
  kind,
  title,
  aid_id: "",
  url: "",
  done: false,
  done_at: null,
  how: null,
  ...extra,
});
const picking = {
  path: { id: "picking-basics", title: "Picking basics", description_html: "<p>x</p>" },
  due_on: "2026-12-20",
  done: 1,
  total: 3,
  next: step("scan", "aid", "Scan a pick list", { aid_id: "scan-pick-list" }),
  steps: [
    step("login", "aid", "Sign in to the handheld", {
      aid_id: "handheld-login",
      done: true,
      done_at: "2026-12-01T08:00:00Z",
      how: "aid_finished",
    }),
    step("scan", "aid", "Scan a pick list", { aid_id: "scan-pick-list" }),
    step("forklift", "course", "Forklift licence", { url: "https://lms.example/forklift" }),
  ],
};
const safety = {
  path: { id: "safety-refresher", title: "Safety refresher", description_html: "" },
  due_on: "2026-12-05",
  done: 0,
  total: 2,
  next: step("ppe", "practice", "Check your PPE"),
  steps: [
    step("ppe", "practice", "Check your PPE"),
    step("scan-again", "aid", "Scan a pick list safely", { aid_id: "scan-pick-list" }),
  ],
};

test("paths messages: only from the panel, only in their shapes", () => {
  const done = {
    type: "paths",
    op: "done",
    path: "picking-basics",
    step: "scan",
    how: "aid_finished",
  };
  assert.deepEqual(checkMessage(done, panelSender, ctx), { ok: true, from: "panel" });
  assert.equal(checkMessage(done, tabSender, ctx).ok, false, "a web page cannot tick steps");
  assert.ok(isPathsMessage({ type: "paths", op: "mine" }));
  assert.ok(isPathsMessage({ type: "paths", op: "mine", force: true }));
  const bad = [
    { ...done, how: "lrs" }, // only the server's LRS sync ticks course steps
    { ...done, how: "practice_confirmed" },
    { ...done, path: "../admin" },
    { ...done, step: "" },
    { ...done, step: undefined },
    { type: "paths", op: "mine", force: "yes" },
    { type: "paths", op: "sync" },
    { type: "paths" },
  ];
  for (const m of bad) assert.equal(isPathsMessage(m), false, JSON.stringify(m));
});

test("each message becomes its API request", () => {
  assert.deepEqual(pathsRequest({ op: "mine" }), { path: "/paths/mine", method: "GET" });
  assert.deepEqual(
    pathsRequest({ op: "done", path: "picking-basics", step: "scan", how: AID_FINISHED }),
    {
      path: "/paths/picking-basics/steps/scan/done",
      method: "POST",
      body: { how: "aid_finished" },
    },
  );
});

test("the cached list is used for a minute, and only by the person it was read for", () => {
  const me = ownerOf({ iss: "https://kc/realms/x", sub: "u-1" }, "https://inflow.example");
  const other = ownerOf({ iss: "https://kc/realms/x", sub: "u-2" }, "https://inflow.example");
  const elsewhere = ownerOf({ iss: "https://kc/realms/x", sub: "u-1" }, "https://other.example");
  assert.equal(ownerOf({}, "https://inflow.example"), null);
  const entry = cacheEntry(me, [picking, { junk: true }], 1000);
  assert.deepEqual(entry.data, [picking], "an unexpected shape is dropped, not shown");
  assert.deepEqual(cachedMine(entry, me, 1000 + PATHS_TTL_MS - 1), [picking]);
  assert.equal(cachedMine(entry, me, 1000 + PATHS_TTL_MS), null, "a minute old: ask again");
  assert.equal(cachedMine(entry, other, 1001), null, "another person never sees my paths");
  assert.equal(cachedMine(entry, elsewhere, 1001), null, "another server's list is not mine");
  assert.equal(cachedMine(entry, null, 1001), null);
  assert.deepEqual(cachedMine(entry, me, 1000 + 10 * PATHS_TTL_MS, { stale: true }), [picking]);
  assert.equal(cachedMine(entry, me, 500), null, "a clock set back does not keep it forever");
});

test("several paths: the unfinished one due first is shown, with +N more", () => {
  assert.equal(pickPath([]), null);
  assert.equal(pickPath(null), null);
  const picked = pickPath([picking, safety]);
  assert.equal(picked.entry.path.id, "safety-refresher");
  assert.equal(picked.more, 1);
  // An undated path comes after dated ones; a finished one after every unfinished one.
  const undated = { ...safety, due_on: null };
  assert.equal(pickPath([undated, picking]).entry.path.id, "picking-basics");
  const finished = { ...safety, done: 2, total: 2 };
  assert.deepEqual(
    [pickPath([finished, picking]).entry.path.id, pickPath([finished, picking]).more],
    ["picking-basics", 0],
  );
  assert.equal(pickPath([finished]).entry.path.id, "safety-refresher");
});

test("the strip says which path, how far and what is next", () => {
  const model = stripModel([picking], "2026-12-01");
  assert.deepEqual(model, {
    id: "picking-basics",
    title: "Picking basics",
    progress: "1 of 3",
    done: 1,
    total: 3,
    next: "Scan a pick list",
    due: "due 20 Dec",
    overdue: false,
    complete: false,
    more: "",
  });
  assert.equal(stripModel([picking, safety], "2026-12-01").more, "+1 more");
  assert.equal(stripModel([], "2026-12-01"), null);
  // No `next` from the server: the first step not done.
  assert.equal(stripModel([{ ...safety, next: null }], "2026-12-01").next, "Check your PPE");
  const all = withStepDone(
    withStepDone([safety], "safety-refresher", "ppe", "t"),
    "safety-refresher",
    "scan-again",
    "t",
  );
  const done = stripModel(all, "2026-12-30");
  assert.equal(done.progress, "2 of 2");
  assert.equal(done.complete, true);
  assert.equal(done.next, "");
  assert.equal(done.due, "", "a finished path is not overdue");
});

test("due dates in words", () => {
  assert.equal(dueText(safety, "2026-12-05"), "due today");
  assert.equal(dueText(safety, "2026-12-07"), "overdue since 5 Dec");
  assert.equal(dueText(safety, "2025-11-07"), "due 5 Dec 2026");
  assert.equal(dueText({ ...safety, due_on: null }, "2026-12-01"), "");
  assert.equal(dueText({ ...safety, due_on: "soon" }, "2026-12-01"), "");
  assert.equal(stripModel([safety], "2026-12-07").overdue, true);
  assert.equal(localDay(new Date(2026, 0, 9)), "2026-01-09");
});

test("the web app's address of a path", () => {
  assert.equal(
    learnUrl("https://inflow.example/", "picking-basics"),
    "https://inflow.example/learn/paths/picking-basics",
  );
  assert.equal(learnUrl("https://inflow.example", ""), "https://inflow.example/learn/paths");
  assert.equal(learnUrl("https://i.example", "a/b"), "https://i.example/learn/paths/a%2Fb");
});

test("an aid that is a step of my paths carries a mark; other aids none", () => {
  const list = [picking, safety];
  assert.equal(markFor(list, "not-a-step"), null);
  assert.equal(markFor(list, "forklift"), null, "a course step is no aid");
  assert.deepEqual(markFor(list, "handheld-login"), {
    label: "Part of your path · done",
    detail: "Picking basics, step 1 of 3 (done)",
    done: true,
  });
  const scan = markFor(list, "scan-pick-list");
  assert.equal(scan.label, "Part of your path");
  assert.equal(scan.done, false);
  assert.equal(scan.detail, "Picking basics, step 2 of 3; Safety refresher, step 2 of 2");
});

test("Done on an aid completes each of its open steps, in every path", () => {
  const list = [picking, safety];
  assert.deepEqual(doneMessages(list, "scan-pick-list"), [
    { type: "paths", op: "done", path: "picking-basics", step: "scan", how: "aid_finished" },
    {
      type: "paths",
      op: "done",
      path: "safety-refresher",
      step: "scan-again",
      how: "aid_finished",
    },
  ]);
  for (const m of doneMessages(list, "scan-pick-list")) assert.ok(isPathsMessage(m));
  assert.deepEqual(doneMessages(list, "handheld-login"), [], "a done step is not sent again");
  assert.deepEqual(doneMessages(list, "nothing"), []);
  assert.equal(stepsForAid(list, "scan-pick-list").length, 2);
});

test("a step ticked locally moves the count and the next step", () => {
  const after = withStepDone([picking, safety], "picking-basics", "scan", "2026-12-01T09:00:00Z");
  assert.equal(after[0].done, 2);
  assert.equal(after[0].next.id, "forklift");
  assert.equal(after[0].steps[1].how, "aid_finished");
  assert.equal(after[1], safety, "other paths untouched");
  assert.equal(stripModel(after, "2026-12-01").progress, "0 of 2", "the one due first still");
  assert.equal(stripModel([after[0]], "2026-12-01").progress, "2 of 3");
  assert.equal(markFor(after, "scan-pick-list").done, false, "still open in the other path");
});

test("errors: a server without paths shows nothing; others say so", () => {
  assert.equal(pathsError({ kind: "http", status: 404, message: "Not found" }), null);
  assert.equal(pathsError({ kind: "http", status: 403, message: "Forbidden" }), null);
  assert.equal(pathsError({ kind: "signed-out" }), null);
  assert.match(pathsError({ kind: "offline" }), /could not be loaded/);
  assert.match(pathsError({ kind: "http", status: 500 }), /could not be loaded/);
  assert.match(pathsError({ kind: "busy" }), /in a moment/);
});
