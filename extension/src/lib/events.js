// Analytics events: queued in chrome.storage.local and sent in batches to POST /api/v1/events.
//
// A batch leaves the queue only after a 2xx, so a browser restart, a network failure or a server
// restart loses nothing; every event carries a client-made UUID, which the server stores once, so
// a retry doubles nothing. Failures back off exponentially (the state is kept in storage too, so a
// restarted service worker does not hammer a server that is down). Events the server refuses as
// invalid (422 naming them) are dropped: they would be refused forever. A 429 keeps every event
// and waits exactly what Retry-After says (through the shared busy gate, src/lib/backoff.js, when
// one is given: while any API call is told to wait, no batch leaves either).
//
// Storage and fetch are injected, so this module runs under `node --test` as well:
//   const q = createEventQueue({ storage: chromeLocal(), fetch, getToken, apiBase });
// `apiBase` is the server URL, or an (async) function returning it (read at each send).
//   await q.record("panel_opened", { app: "crm", context: "crm-accounts" });
//   const { retryInMs } = await q.flush();

export const QUEUE_KEY = "analyticsQueue";
import { isBusyAnswer, retryDelayMs } from "./backoff.js";

export const BACKOFF_KEY = "analyticsBackoff";
export const BATCH_MAX = 100; // the server takes up to 500
export const QUEUE_MAX = 5000; // oldest dropped past this (a week offline at a heavy user's pace)
// The server refuses events older than 7 days; drop them a little before that.
export const MAX_AGE_MS = 7 * 24 * 3600 * 1000 - 3600 * 1000;
export const BACKOFF_BASE_MS = 2000;
export const BACKOFF_MAX_MS = 5 * 60 * 1000;

export const EVENT_TYPES = Object.freeze([
  "panel_opened",
  "suggestions_shown",
  "aid_opened",
  "aid_rated",
  "search",
  "link_followed",
  "signed_in",
]);

/** chrome.storage.local behind the small interface the queue uses. */
export function chromeLocal(area = globalThis.chrome?.storage?.local) {
  return {
    async get(key) {
      return (await area.get(key))[key];
    },
    set(key, value) {
      return area.set({ [key]: value });
    },
  };
}

/** Host of a URL (link_followed events carry no full URLs). */
export function hostOf(url) {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return "";
  }
}

/** One event: UUID and ISO timestamp made here; `fields` as the server expects them. */
export function makeEvent(type, fields = {}, { now = () => new Date(), uuid } = {}) {
  if (!EVENT_TYPES.includes(type)) throw new Error(`unknown analytics event type: ${type}`);
  const id = uuid ? uuid() : globalThis.crypto.randomUUID();
  const event = { id, type, at: now().toISOString() };
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined && v !== null && v !== "") event[k] = v;
  }
  return event;
}

/** Exponential backoff with jitter (0.8x-1.2x), capped. */
export function backoffMs(failures, random = Math.random) {
  if (failures <= 0) return 0;
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export function createEventQueue({
  storage,
  fetch,
  getToken,
  apiBase,
  now = () => new Date(),
  uuid,
  random = Math.random,
  batchSize = BATCH_MAX,
  queueMax = QUEUE_MAX,
  gate = null,
}) {
  let chain = Promise.resolve();
  let flushing = null;

  // Read-modify-write of the queue, one at a time (record() and flush() interleave).
  function update(fn) {
    const run = async () => {
      const list = (await storage.get(QUEUE_KEY)) ?? [];
      const next = await fn(Array.isArray(list) ? list : []);
      await storage.set(QUEUE_KEY, next);
      return next;
    };
    const p = chain.then(run, run);
    chain = p.catch(() => {});
    return p;
  }

  function fresh(list) {
    const oldest = now().getTime() - MAX_AGE_MS;
    return list.filter((e) => Date.parse(e.at) >= oldest);
  }

  async function record(type, fields = {}) {
    const event = makeEvent(type, fields, { now, uuid });
    await update((list) => fresh([...list, event]).slice(-queueMax));
    return event;
  }

  async function pending() {
    return ((await storage.get(QUEUE_KEY)) ?? []).length;
  }

  async function remove(ids) {
    const gone = new Set(ids);
    await update((list) => list.filter((e) => !gone.has(e.id)));
  }

  async function failed(state) {
    const failures = (state?.failures ?? 0) + 1;
    const wait = backoffMs(failures, random);
    await storage.set(BACKOFF_KEY, { failures, notBefore: now().getTime() + wait });
    return wait;
  }

  async function flushOnce() {
    let sent = 0;
    let size = batchSize;
    for (;;) {
      const state = (await storage.get(BACKOFF_KEY)) ?? null;
      const waitLeft = state ? state.notBefore - now().getTime() : 0;
      if (waitLeft > 0) return { sent, pending: await pending(), retryInMs: waitLeft };
      const list = await update(fresh);
      if (list.length === 0) return { sent, pending: 0, retryInMs: null };
      const busyLeft = gate ? await gate.check() : 0;
      if (busyLeft > 0) return { sent, pending: list.length, retryInMs: busyLeft, status: 429 };
      const token = await getToken();
      if (!token) return { sent, pending: list.length, retryInMs: null, reason: "signed-out" };
      const batch = list.slice(0, size);
      let resp;
      try {
        // A function when the server URL is a setting that may change while the worker lives.
        const base = typeof apiBase === "function" ? await apiBase() : apiBase;
        resp = await fetch(`${String(base).replace(/\/$/, "")}/api/v1/events`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
          body: JSON.stringify({ events: batch }),
        });
      } catch {
        return { sent, pending: list.length, retryInMs: await failed(state) };
      }
      if (resp.ok) {
        await remove(batch.map((e) => e.id));
        await storage.set(BACKOFF_KEY, null);
        sent += batch.length;
        continue;
      }
      if (resp.status === 422) {
        let body;
        try {
          body = await resp.json();
        } catch {
          body = {};
        }
        const named = (body.errors ?? [])
          .map((err) => err.id ?? batch[err.index]?.id)
          .filter((id) => typeof id === "string");
        if (named.length) {
          await remove(named); // refused forever: drop them, send the rest
          continue;
        }
        if (size > 1) {
          size = Math.ceil(size / 2);
          continue;
        }
        await remove([batch[0].id]);
        continue;
      }
      if (isBusyAnswer(resp)) {
        // Told to slow down: keep everything, wait what the server said (no failure counted).
        const wait = gate
          ? (await gate.hit(resp)).retryInMs
          : retryDelayMs(resp.headers?.get?.("Retry-After"), now().getTime());
        const failures = state?.failures ?? 0;
        await storage.set(BACKOFF_KEY, { failures, notBefore: now().getTime() + wait });
        return { sent, pending: list.length, retryInMs: wait, status: resp.status };
      }
      if (resp.status === 413 && size > 1) {
        size = Math.ceil(size / 2);
        continue;
      }
      // 401 (token expired: the caller refreshes), 5xx, ...: keep everything, back off
      return {
        sent,
        pending: list.length,
        retryInMs: await failed(state),
        status: resp.status,
      };
    }
  }

  /** Send what is queued, batch after batch, until empty or a failure; never throws. */
  function flush() {
    if (!flushing) {
      flushing = flushOnce().finally(() => {
        flushing = null;
      });
    }
    return flushing;
  }

  return { record, flush, pending };
}
