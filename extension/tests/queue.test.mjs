import assert from "node:assert/strict";
import { test } from "node:test";

import { enqueue, prune, without } from "../src/lib/queue.js";

test("one queued vote per aid, latest wins, bounded", () => {
  let q = enqueue([], { kind: "feedback", key: "a", body: { helpful: true } }, 1);
  q = enqueue(q, { kind: "feedback", key: "b", body: { helpful: true } }, 2);
  q = enqueue(q, { kind: "feedback", key: "a", body: { helpful: false } }, 3);
  assert.deepEqual(
    q.map((e) => [e.key, e.body.helpful]),
    [
      ["b", true],
      ["a", false],
    ],
  );
  let big = [];
  for (let i = 0; i < 60; i++) big = enqueue(big, { kind: "feedback", key: `k${i}` }, i, 50);
  assert.equal(big.length, 50);
  assert.equal(big[0].key, "k10");
});

test("old events are pruned, sent ones removed", () => {
  const q = [
    { kind: "feedback", key: "a", queued_at: 0 },
    { kind: "feedback", key: "b", queued_at: 100 },
  ];
  assert.deepEqual(
    prune(q, 150, 100).map((e) => e.key),
    ["b"],
  );
  assert.deepEqual(
    without(q, [q[0]]).map((e) => e.key),
    ["b"],
  );
  assert.deepEqual(prune(undefined, 0), []);
});

test("held votes: one per aid, taken out once, due after the hold", async () => {
  const { VOTE_HOLD_MS, dueVotes, holdVote, takeVote } = await import("../src/lib/queue.js");
  let held = holdVote([], { aid_id: "a", helpful: true, url: "http://h/x", app: "crm" }, 1000);
  held = holdVote(held, { aid_id: "b", helpful: false }, 2000);
  held = holdVote(held, { aid_id: "a", helpful: false }, 3000); // changed their mind
  assert.deepEqual(
    held.map((v) => [v.aid_id, v.helpful, v.held_at]),
    [
      ["b", false, 2000],
      ["a", false, 3000],
    ],
  );
  const { vote, rest } = takeVote(held, "a");
  assert.equal(vote.helpful, false);
  assert.deepEqual(
    rest.map((v) => v.aid_id),
    ["b"],
  );
  assert.equal(takeVote(rest, "a").vote, null, "a vote is sent once");
  assert.equal(takeVote(undefined, "a").vote, null);

  const early = dueVotes(held, 2000 + VOTE_HOLD_MS - 1);
  assert.deepEqual(early.due, []);
  const later = dueVotes(held, 2000 + VOTE_HOLD_MS);
  assert.deepEqual(
    later.due.map((v) => v.aid_id),
    ["b"],
  );
  assert.deepEqual(
    later.rest.map((v) => v.aid_id),
    ["a"],
  );
  assert.equal(dueVotes(held, 0, 0).due.length, 2, "sign-out sends them all");
  assert.deepEqual(dueVotes(null, 0), { due: [], rest: [] });
  let big = [];
  for (let i = 0; i < 60; i++) big = holdVote(big, { aid_id: `k${i}` }, i, 50);
  assert.equal(big.length, 50);
});
