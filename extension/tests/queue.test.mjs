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
