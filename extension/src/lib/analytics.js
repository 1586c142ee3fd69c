// Which analytics events the worker records, and when. Pure functions over plain objects (the
// worker keeps their state in chrome.storage and does the I/O); unit-tested in Node.
//
// - scopeOf(view): the app (and best context) an event may name. Only a mapped page has one, so
//   nothing recorded ever names an unmapped page.
// - Search events are "settled": the panel searches as you type, so "a", "ab", "abc" are three
//   requests; only the query the user stopped at (no newer search for SEARCH_SETTLE_MS, or an aid
//   opened from its results) becomes one `search` event.
// - nextDue(): the flush timer keeps the earliest deadline, so a steady stream of events still
//   leaves within FLUSH_DELAY_MS (batching, not an ever-moving debounce).

export const SEARCH_SETTLE_MS = 1500;
/** The same query searched again this soon after it was recorded (Enter after typing, "Did you
 * mean" back and forth) is the same search. */
export const SEARCH_REPEAT_MS = 30_000;
export const FLUSH_DELAY_MS = 2000;
export const PENDING_SEARCH_KEY = "analyticsSearch";

/** `{app, context}` of the page the panel shows, or null when it shows no mapped page. */
export function scopeOf(view) {
  if (!view || !["ready", "offline", "busy"].includes(view.state)) return null;
  const app = typeof view.app?.id === "string" ? view.app.id : "";
  if (!app) return null;
  const context = Array.isArray(view.contexts) ? view.contexts[0]?.id : undefined;
  return typeof context === "string" && context ? { app, context } : { app };
}

/** What `panel_opened` and `suggestions_shown` carry for a view the panel displayed; null when
 * the view is not (or no longer) the mapped page the panel says it showed. */
export function shownEvents(view, pageKey) {
  if (!view || view.state !== "ready" || view.loading || view.pageKey !== pageKey) return [];
  const scope = scopeOf(view);
  if (!scope) return [];
  const out = [["panel_opened", { ...scope }]];
  const aids = (Array.isArray(view.aids) ? view.aids : [])
    .map((a) => a?.id)
    .filter((id) => typeof id === "string")
    .slice(0, 50);
  if (aids.length) out.push(["suggestions_shown", { ...scope, aids }]);
  return out;
}

const searchKey = (query) => String(query).normalize("NFKC").toLowerCase().replace(/\s+/g, " ");

/**
 * A search answered. `state` is `{pending, last}` as kept in storage; `search` is
 * `{query, result_count, app?}`. Returns `{state, commit}`: `commit` is the earlier search to
 * record now (it had settled before this one came), or null.
 */
export function searchAnswered(state, search, now, settleMs = SEARCH_SETTLE_MS) {
  const { pending, last } = state ?? {};
  const key = searchKey(search.query);
  let commit = null;
  let nextLast = last ?? null;
  if (pending && pending.due <= now && searchKey(pending.query) !== key) {
    commit = fields(pending);
    nextLast = { key: searchKey(pending.query), at: pending.due };
  }
  if (nextLast && nextLast.key === key && now - nextLast.at < SEARCH_REPEAT_MS) {
    // Same query as the one just recorded: nothing new (a pending one in between is dropped).
    return { state: { pending: null, last: nextLast }, commit };
  }
  const next = { ...search, due: now + settleMs };
  return { state: { pending: next, last: nextLast }, commit };
}

/** Time passed (or an aid was opened: `force`): the pending search, if settled, is recorded. */
export function searchSettle(state, now, { force = false } = {}) {
  const { pending, last } = state ?? {};
  if (!pending || (!force && pending.due > now)) {
    return { state: { pending: pending ?? null, last: last ?? null }, commit: null };
  }
  return {
    state: { pending: null, last: { key: searchKey(pending.query), at: now } },
    commit: fields(pending),
  };
}

function fields(pending) {
  const { query, result_count, app } = pending;
  return app ? { query, result_count, app } : { query, result_count };
}

/** Deadline of the flush timer: keep the current one when it comes sooner. */
export function nextDue(currentDue, now, delayMs) {
  const wanted = now + Math.max(0, delayMs);
  return currentDue !== null && currentDue !== undefined && currentDue <= wanted
    ? currentDue
    : wanted;
}
