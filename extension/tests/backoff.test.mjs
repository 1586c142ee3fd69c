// Backing off on 429: Retry-After (seconds or HTTP date) honoured by every API call and by the
// analytics queue, no retry loop, events kept, and a calm "busy" view. Fake timers and a fake
// chrome.storage; the real api() and event queue modules.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import {
  BUSY_KEY,
  Busy,
  DEFAULT_RETRY_MS,
  MAX_RETRY_MS,
  MIN_RETRY_MS,
  createBusyGate,
  parseRetryAfter,
  retryDelayMs,
} from "../src/lib/backoff.js";
import { QUEUE_KEY, createEventQueue } from "../src/lib/events.js";
import { INITIAL, busyNote, reduce } from "../src/lib/viewmodel.js";

const T0 = Date.UTC(2026, 11, 1, 4, 0, 0);

function memoryArea(initial = {}) {
  const data = { ...initial };
  return {
    data,
    async get(keys) {
      if (keys === null || keys === undefined) return { ...data };
      const list = Array.isArray(keys) ? keys : [keys];
      return Object.fromEntries(list.filter((k) => k in data).map((k) => [k, data[k]]));
    },
    async set(items) {
      Object.assign(data, items);
    },
    async remove(keys) {
      for (const k of Array.isArray(keys) ? keys : [keys]) delete data[k];
    },
  };
}

function response(status, headers = {}, body = "") {
  return new Response(status === 204 ? null : body, { status, headers });
}

let calls;
let answers;
beforeEach(() => {
  mock.timers.enable({ apis: ["Date", "setTimeout"], now: T0 });
  calls = [];
  answers = [];
  globalThis.chrome = {
    storage: {
      local: memoryArea({ settings: { serverUrl: "http://inflow.test" } }),
      session: memoryArea({ tokens: { access_token: "tok", expires_at: T0 + 3600_000 } }),
      managed: memoryArea(),
      onChanged: { addListener() {}, removeListener() {} },
    },
  };
  globalThis.fetch = async (url, init) => {
    calls.push({ url: String(url), init });
    const next = answers.shift();
    if (!next) throw new Error(`unexpected request to ${url}`);
    return next;
  };
});
afterEach(() => {
  mock.timers.reset();
  delete globalThis.chrome;
});

// api.js keeps one gate per worker; import it once the fake chrome exists.
const apiModule = () => import("../src/lib/api.js");

test("Retry-After: seconds, HTTP date, garbage, and the clamp", () => {
  assert.equal(parseRetryAfter("120", T0), 120_000);
  assert.equal(parseRetryAfter(" 7 ", T0), 7000);
  assert.equal(parseRetryAfter(new Date(T0 + 45_000).toUTCString(), T0), 45_000);
  assert.equal(parseRetryAfter("Tue, 01 Dec 2026 04:00:30 GMT", T0), 30_000);
  assert.equal(parseRetryAfter(new Date(T0 - 60_000).toUTCString(), T0), 0); // in the past
  for (const bad of [null, undefined, "", "soon", "-5", "1.5", "12abc"]) {
    assert.equal(parseRetryAfter(bad, T0), null, String(bad));
  }
  assert.equal(retryDelayMs("0", T0), MIN_RETRY_MS); // "0" must not make a busy loop
  assert.equal(retryDelayMs(null, T0), DEFAULT_RETRY_MS);
  assert.equal(retryDelayMs("999999", T0), MAX_RETRY_MS);
  assert.equal(retryDelayMs("Fri, 01 Jan 2100 00:00:00 GMT", T0), MAX_RETRY_MS);
});

test("a 429 makes every API call wait for Retry-After, without sending (no retry loop)", async () => {
  const { api } = await apiModule();
  answers.push(response(429, { "Retry-After": "5", "Content-Type": "application/problem+json" }));
  await assert.rejects(api("/search?q=x"), (err) => {
    assert.ok(err instanceof Busy);
    assert.equal(err.retryInMs, 5000);
    assert.equal(err.message, "Inflow is busy, trying again in 5 s");
    return true;
  });
  assert.equal(calls.length, 1, "a 429 is not retried by api() itself");
  assert.equal(globalThis.chrome.storage.local.data[BUSY_KEY], T0 + 5000);

  mock.timers.tick(3000);
  await assert.rejects(api("/aids/x"), (err) => err instanceof Busy && err.retryInMs === 2000);
  await assert.rejects(api("/suggest", { method: "POST", body: {} }), Busy);
  assert.equal(calls.length, 1, "nothing is sent while the server said to wait");

  mock.timers.tick(2001);
  answers.push(response(200, { "Content-Type": "application/json" }, '{"ok":true}'));
  assert.deepEqual(await api("/search?q=x"), { ok: true });
  assert.equal(calls.length, 2);
});

test("Retry-After as an HTTP date is honoured, and the later deadline wins", async () => {
  const { api } = await apiModule();
  globalThis.chrome.storage.local.data[BUSY_KEY] = 0;
  mock.timers.tick(10_000);
  const now = Date.now();
  answers.push(response(429, { "Retry-After": new Date(now + 90_000).toUTCString() }));
  await assert.rejects(api("/rules"), (err) => err instanceof Busy && err.retryInMs === 90_000);
  const gate = createBusyGate({ storage: memoryArea() });
  const storage = {
    get: async (k) => globalThis.chrome.storage.local.data[k],
    set: async (k, v) => {
      globalThis.chrome.storage.local.data[k] = v;
    },
  };
  const shared = createBusyGate({ storage });
  await shared.hit(response(429, { "Retry-After": "3" })); // sooner: does not shorten the wait
  assert.equal(await shared.check(), 90_000);
  assert.equal(await gate.check(), 0);
});

test("analytics events are kept on 429 and sent after Retry-After, not before", async () => {
  const storage = {
    data: {},
    get: async (k) => storage.data[k],
    set: async (k, v) => {
      storage.data[k] = v;
    },
  };
  const gate = createBusyGate({ storage });
  let n = 0;
  const q = createEventQueue({
    storage,
    fetch: globalThis.fetch,
    getToken: async () => "tok",
    apiBase: "http://inflow.test",
    uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`,
    gate,
  });
  await q.record("panel_opened", { app: "crm" });
  await q.record("aid_opened", { app: "crm", aid: "a" });
  answers.push(response(429, { "Retry-After": "20" }));
  const first = await q.flush();
  assert.equal(first.status, 429);
  assert.equal(first.retryInMs, 20_000);
  assert.equal(first.pending, 2, "nothing dropped");
  assert.equal(storage.data[QUEUE_KEY].length, 2);

  await q.record("search", { query: "expenses", result_count: 3 });
  mock.timers.tick(19_000);
  const early = await q.flush();
  assert.equal(calls.length, 1, "no batch leaves before Retry-After");
  assert.equal(early.pending, 3);
  assert.ok(early.retryInMs > 0 && early.retryInMs <= 1000);

  mock.timers.tick(1001);
  answers.push(response(202, { "Content-Type": "application/json" }, '{"accepted":3}'));
  const done = await q.flush();
  assert.equal(calls.length, 2);
  assert.equal(done.sent, 3);
  assert.equal(done.pending, 0);
  assert.equal(JSON.parse(calls[1].init.body).events.length, 3);
});

test("a 429 on another API call holds the analytics batches too", async () => {
  const storage = {
    data: { [BUSY_KEY]: T0 + 15_000 },
    get: async (k) => storage.data[k],
    set: async (k, v) => {
      storage.data[k] = v;
    },
  };
  const q = createEventQueue({
    storage,
    fetch: globalThis.fetch,
    getToken: async () => "tok",
    apiBase: "http://inflow.test",
    gate: createBusyGate({ storage }),
  });
  await q.record("signed_in");
  const res = await q.flush();
  assert.equal(calls.length, 0);
  assert.equal(res.retryInMs, 15_000);
  assert.equal(res.pending, 1);
});

test("without a shared gate the queue still honours Retry-After (no failure counted)", async () => {
  const storage = {
    data: {},
    get: async (k) => storage.data[k],
    set: async (k, v) => {
      storage.data[k] = v;
    },
  };
  const q = createEventQueue({
    storage,
    fetch: globalThis.fetch,
    getToken: async () => "tok",
    apiBase: "http://inflow.test",
  });
  await q.record("signed_in");
  answers.push(response(429, { "Retry-After": new Date(T0 + 40_000).toUTCString() }));
  const res = await q.flush();
  assert.equal(res.retryInMs, 40_000);
  assert.equal(storage.data.analyticsBackoff.failures, 0);
});

test("the busy view is calm and keeps the aids the panel showed", () => {
  const page = { url: "https://crm.example/x", title: "Accounts" };
  const ready = reduce(INITIAL, {
    type: "loaded",
    pageKey: "k",
    page,
    suggestion: { app: { id: "crm" }, aids: [{ id: "a1", title: "A" }] },
  });
  const busy = reduce(ready, { type: "busy", pageKey: "k", page, retryAt: T0 + 12_000 });
  assert.equal(busy.state, "busy");
  assert.equal(busy.retryAt, T0 + 12_000);
  assert.deepEqual(
    busy.aids.map((a) => a.id),
    ["a1"],
  );
  assert.deepEqual(busy.app, { id: "crm" });
  const fresh = reduce(INITIAL, {
    type: "busy",
    pageKey: "other",
    page,
    retryAt: T0 + 5000,
    last: null,
  });
  assert.deepEqual(fresh.aids, []);
  assert.equal(busyNote(12_000), "Inflow is busy, trying again in 12 s");
  assert.equal(busyNote(1), "Inflow is busy, trying again in 1 s");
  assert.equal(busyNote(-50), "Inflow is busy, trying again in 1 s");
});
