// Backing off when the server says 429 Too Many Requests (or 503 with Retry-After).
//
// The server's rate limits answer 429 with `Retry-After` (seconds, or an HTTP date) and a
// problem+json body. Whatever call got it, the whole extension then waits: the time the server
// named is kept in storage.local ("apiBusyUntil", so a restarted worker waits too), every API call
// before it fails fast with `Busy` (no request leaves), nothing retries in a loop: the worker
// schedules one retry of the view when the time is up, analytics events and votes stay queued,
// and the panel shows a calm "Inflow is busy, trying again in N s" instead of an error.
//
// Pure functions plus a small gate over an injected storage and clock: tested under `node --test`.

import { Offline } from "./auth.js";
import { busyNote } from "./viewmodel.js";

export { busyNote };

export const BUSY_KEY = "apiBusyUntil";
/** Retry-After missing or unreadable: wait this long. */
export const DEFAULT_RETRY_MS = 30_000;
/** Never wait less (a "0" would make a loop) nor more (a bogus date far in the future). */
export const MIN_RETRY_MS = 1000;
export const MAX_RETRY_MS = 10 * 60 * 1000;

/** The server asked us to wait; `retryAt` is an epoch ms, `retryInMs` the wait from now. An
 * Offline of sorts: what handles Offline (cached rules, queued votes) handles it too. */
export class Busy extends Offline {
  constructor(retryAt, now = Date.now()) {
    const retryInMs = Math.max(0, retryAt - now);
    super(busyNote(retryInMs));
    this.name = "Busy";
    this.retryAt = retryAt;
    this.retryInMs = retryInMs;
  }
}

/**
 * Milliseconds to wait for a `Retry-After` value (RFC 9110 10.2.3: a number of seconds, or an
 * HTTP date), or null when there is none or it cannot be read.
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined) return null;
  const v = String(value).trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP date ("Tue, 01 Dec 2026 04:05:06 GMT"); Date.parse reads IMF-fixdate and the obsolete
  // forms. Anything with no day and month is not a date.
  if (!/[A-Za-z]{3}/.test(v)) return null;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : null;
}

/** The wait a response asks for, clamped to [MIN_RETRY_MS, MAX_RETRY_MS]. */
export function retryDelayMs(retryAfter, now = Date.now()) {
  const ms = parseRetryAfter(retryAfter, now) ?? DEFAULT_RETRY_MS;
  return Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, ms));
}

/** True for an answer that means "slow down": 429, or 503 with a Retry-After. */
export function isBusyAnswer(resp) {
  return (
    resp.status === 429 || (resp.status === 503 && Boolean(resp.headers?.get?.("Retry-After")))
  );
}

/**
 * The shared "wait until" over a storage with get(key)/set(key, value) (see chromeLocal() in
 * events.js). `check()` gives the ms still to wait (0: go ahead); `hit(resp)` records a busy
 * answer and returns the Busy error to throw. The later of two deadlines wins.
 */
export function createBusyGate({ storage, now = () => Date.now() }) {
  async function check() {
    const until = Number((await storage.get(BUSY_KEY)) ?? 0);
    const left = until - now();
    return left > 0 ? left : 0;
  }
  async function hit(resp) {
    const t = now();
    const until = t + retryDelayMs(resp.headers?.get?.("Retry-After"), t);
    const current = Number((await storage.get(BUSY_KEY)) ?? 0);
    const retryAt = Math.max(until, current);
    await storage.set(BUSY_KEY, retryAt);
    return new Busy(retryAt, t);
  }
  async function guard() {
    const left = await check();
    if (left > 0) throw new Busy(now() + left, now());
  }
  return { check, hit, guard };
}
