import assert from "node:assert/strict";
import { test } from "node:test";

import {
  BACKOFF_KEY,
  QUEUE_KEY,
  backoffMs,
  createEventQueue,
  hostOf,
  makeEvent,
} from "../src/lib/events.js";

function memoryStorage() {
  const data = new Map();
  return {
    data,
    async get(key) {
      return structuredClone(data.get(key));
    },
    async set(key, value) {
      data.set(key, structuredClone(value));
    },
  };
}

function fakeServer(script) {
  const calls = [];
  const fetch = async (url, init) => {
    const body = JSON.parse(init.body);
    calls.push({ url, init, body });
    const next = script.length ? script.shift() : { status: 200 };
    if (next.throws) throw new TypeError("Failed to fetch");
    return {
      ok: next.status >= 200 && next.status < 300,
      status: next.status,
      json: async () => next.json ?? {},
    };
  };
  return { fetch, calls };
}

function setup(script = [], opts = {}) {
  const storage = opts.storage ?? memoryStorage();
  const server = fakeServer(script);
  let clock = opts.clock ?? Date.parse("2026-03-02T10:00:00Z");
  let n = 0;
  const q = createEventQueue({
    storage,
    fetch: server.fetch,
    getToken: async () => (opts.signedOut ? null : "tok"),
    apiBase: "http://127.0.0.1:8080/",
    now: () => new Date(clock),
    uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`,
    random: () => 0.5,
    batchSize: opts.batchSize ?? 3,
  });
  return { q, storage, server, tick: (ms) => (clock += ms) };
}

test("events get a UUID and an ISO timestamp; empty fields are left out", () => {
  const e = makeEvent("panel_opened", { app: "crm", context: undefined, comment: "" });
  assert.match(e.id, /^[0-9a-f-]{36}$/);
  assert.ok(!Number.isNaN(Date.parse(e.at)) && e.at.endsWith("Z"));
  assert.deepEqual(Object.keys(e).sort(), ["app", "at", "id", "type"]);
  assert.throws(() => makeEvent("clicked_everything"));
  assert.equal(hostOf("https://Wiki.Example.com/a/b?c=d#e"), "wiki.example.com");
  assert.equal(hostOf("not a url"), "");
});

test("queued in storage, sent in batches, removed only after a 2xx", async () => {
  const { q, storage, server } = setup([{ status: 200 }, { status: 200 }]);
  for (let i = 0; i < 5; i++) await q.record("aid_opened", { aid: `a${i}` });
  assert.equal(storage.data.get(QUEUE_KEY).length, 5);
  const res = await q.flush();
  assert.deepEqual(res, { sent: 5, pending: 0, retryInMs: null });
  assert.deepEqual(
    server.calls.map((c) => c.body.events.length),
    [3, 2],
  );
  assert.equal(server.calls[0].url, "http://127.0.0.1:8080/api/v1/events");
  assert.equal(server.calls[0].init.headers.Authorization, "Bearer tok");
  assert.deepEqual(storage.data.get(QUEUE_KEY), []);
});

test("a failure keeps the batch and backs off; the retry sends the same ids", async () => {
  const { q, storage, server, tick } = setup([{ throws: true }, { status: 503 }, { status: 200 }]);
  await q.record("signed_in");
  await q.record("search", { query: "pto", result_count: 0 });
  let res = await q.flush();
  assert.equal(res.sent, 0);
  assert.equal(
    res.retryInMs,
    backoffMs(1, () => 0.5),
  );
  assert.equal(storage.data.get(QUEUE_KEY).length, 2);
  // during the backoff nothing is sent, even by a new worker reading the same storage
  res = await q.flush();
  assert.equal(server.calls.length, 1);
  tick(res.retryInMs);
  res = await q.flush(); // 503
  assert.equal(res.status, 503);
  assert.equal(
    res.retryInMs,
    backoffMs(2, () => 0.5),
  );
  assert.ok(res.retryInMs > backoffMs(1, () => 0.5));
  tick(res.retryInMs);
  res = await q.flush(); // 200
  assert.equal(res.sent, 2);
  const ids = server.calls.map((c) => c.body.events.map((e) => e.id).join());
  assert.equal(ids[0], ids[2]); // the very same events (and UUIDs) were retried
  assert.equal(storage.data.get(BACKOFF_KEY), null);
  assert.deepEqual(storage.data.get(QUEUE_KEY), []);
});

test("a browser restart loses nothing: a new queue on the same storage sends it", async () => {
  const storage = memoryStorage();
  const first = setup([{ throws: true }], { storage });
  await first.q.record("panel_opened", { app: "crm" });
  await first.q.flush();
  // ten minutes later: past the stored backoff
  const second = setup([{ status: 200 }], { storage, clock: Date.parse("2026-03-02T10:10:00Z") });
  const res = await second.q.flush();
  assert.equal(res.sent, 1);
  assert.equal(second.server.calls[0].body.events[0].type, "panel_opened");
});

test("events the server names as invalid are dropped, the rest still go", async () => {
  const { q, storage, server } = setup([
    { status: 422, json: { errors: [{ index: 1, id: "00000000-0000-4000-8000-000000000002" }] } },
    { status: 200 },
  ]);
  await q.record("panel_opened", { app: "crm" });
  await q.record("panel_opened", { app: "gone-app" });
  await q.record("signed_in");
  const res = await q.flush();
  assert.equal(res.sent, 2);
  assert.deepEqual(
    server.calls[1].body.events.map((e) => e.id.slice(-1)),
    ["1", "3"],
  );
  assert.deepEqual(storage.data.get(QUEUE_KEY), []);
});

test("401 keeps everything; signed out sends nothing; events too old are pruned", async () => {
  const { q, storage, tick } = setup([{ status: 401 }]);
  await q.record("signed_in");
  const res = await q.flush();
  assert.equal(res.status, 401);
  assert.equal(storage.data.get(QUEUE_KEY).length, 1);
  const out = setup([], { signedOut: true });
  await out.q.record("signed_in");
  assert.equal((await out.q.flush()).reason, "signed-out");
  assert.equal(out.server.calls.length, 0);
  tick(8 * 24 * 3600 * 1000);
  assert.deepEqual(await q.flush(), { sent: 0, pending: 0, retryInMs: null });
});

test("concurrent flushes share one run; records during a flush are kept", async () => {
  const { q, storage, server } = setup([{ status: 200 }, { status: 200 }], { batchSize: 10 });
  await q.record("signed_in");
  const a = q.flush();
  const b = q.flush();
  await q.record("panel_opened", { app: "crm" });
  assert.equal(a, b);
  await a;
  await q.flush();
  assert.equal(
    server.calls.reduce((n, c) => n + c.body.events.length, 0),
    2,
  );
  assert.deepEqual(storage.data.get(QUEUE_KEY), []);
});

test("apiBase may be a function, read at each send (the server URL is a setting)", async () => {
  const storage = memoryStorage();
  const server = fakeServer([]);
  let base = "http://127.0.0.1:1111";
  const q = createEventQueue({
    storage,
    fetch: server.fetch,
    getToken: async () => "tok",
    apiBase: async () => base,
  });
  await q.record("signed_in");
  await q.flush();
  base = "http://127.0.0.1:2222/";
  await q.record("signed_in");
  await q.flush();
  assert.deepEqual(
    server.calls.map((c) => c.url),
    ["http://127.0.0.1:1111/api/v1/events", "http://127.0.0.1:2222/api/v1/events"],
  );
});
