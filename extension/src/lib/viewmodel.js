// The panel's state machine. The worker feeds it events and stores the result (storage.session
// "view"); the panel only renders it. Pure, unit-tested.
//
// States: signed-out | expired | loading | no-page | unmapped | ready | offline | busy
// `ready`, `offline` and `busy` (the server said 429: wait until `retryAt`) carry aids and mentors; while new results load the old ones stay
// (loading: true), so a tab switch or SPA navigation never flashes an empty panel.

export const STATES = Object.freeze([
  "signed-out",
  "expired",
  "loading",
  "no-page",
  "unmapped",
  "ready",
  "offline",
  "busy",
]);

const REASON_ORDER = { pinned: 0, app: 1, related: 2 };

/** Pinned aids first (in the order the server gave), then app-wide, then related. Stable. */
export function orderAids(aids) {
  return (Array.isArray(aids) ? aids : [])
    .map((a, i) => ({ a, i }))
    .sort(
      (x, y) =>
        (REASON_ORDER[x.a.reason_code] ?? 3) - (REASON_ORDER[y.a.reason_code] ?? 3) || x.i - y.i,
    )
    .map(({ a }) => a);
}

/** What the panel needs from a page: never the URL (the panel doesn't show it). */
function pageFacts(page) {
  return page ? { title: page.title || "", selection: page.selection || "" } : null;
}

export const MENTORS_MAX = 3;
const MENTOR_FIELDS = { id: 128, name: 200, contact: 320, can_help_with: 500, reason: 300 };

/** The mentors the panel shows: at most three, in the server's order (best fit first), each with
 * only the five plain-text fields (anything else the server adds is dropped). Entries without a
 * name or contact, or with a field that is not a string, are skipped. Render as text only. */
export function pickMentors(mentors) {
  const out = [];
  for (const m of Array.isArray(mentors) ? mentors : []) {
    if (!m || typeof m !== "object") continue;
    const picked = {};
    let ok = true;
    for (const [key, max] of Object.entries(MENTOR_FIELDS)) {
      const v = m[key] ?? "";
      if (typeof v !== "string") ok = false;
      else picked[key] = v.trim().slice(0, max);
    }
    if (!ok || !picked.name || !picked.contact) continue;
    out.push(picked);
    if (out.length === MENTORS_MAX) break;
  }
  return out;
}

// Deliberately narrow: ASCII addresses only, so the mailto: link needs no guessing. Anything
// else is shown as plain text (with Copy), never turned into a link.
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$/;

/**
 * How to offer a mentor's contact:
 *   {kind: "email", text, href: "mailto:…"} for an address (local part and domain percent-encoded,
 *     so `?`, `&`, `#` cannot add headers or a body to the mail);
 *   {kind: "handle", text} for a chat handle starting with "@" (shown, with a Copy button);
 *   {kind: "text", text} for anything else (shown as is, with Copy; never a link).
 */
export function contactOf(contact) {
  const text = typeof contact === "string" ? contact.trim() : "";
  if (text.length <= 254 && EMAIL.test(text) && !text.includes("..")) {
    const at = text.lastIndexOf("@");
    const href = `mailto:${encodeURIComponent(text.slice(0, at))}@${text.slice(at + 1).toLowerCase()}`;
    return { kind: "email", text, href };
  }
  if (/^@[^\s@]+$/.test(text)) return { kind: "handle", text };
  return { kind: "text", text };
}

function fromSuggestion(s) {
  return {
    app: s?.app ?? null,
    contexts: Array.isArray(s?.contexts) ? s.contexts : [],
    reason: s?.match?.reason ?? "",
    aids: orderAids(s?.aids),
    mentors: pickMentors(s?.mentors),
  };
}

export const INITIAL = Object.freeze({
  state: "loading",
  loading: true,
  pageKey: null,
  aids: [],
  mentors: [],
});

/**
 * Next view for an event.
 * Events: {type: "signed-out"} | {type: "expired"} | {type: "no-page"}
 *   | {type: "unmapped", pageKey, page} | {type: "loading", pageKey, page}
 *   | {type: "loaded", pageKey, page, suggestion, at} | {type: "offline", pageKey, page, last, at}
 *   | {type: "busy", pageKey, page, last, retryAt, at}
 *   | {type: "selection", selection}
 */
export function reduce(prev, ev) {
  const base = { user: ev.user ?? prev?.user ?? null, updatedAt: ev.at ?? prev?.updatedAt ?? 0 };
  switch (ev.type) {
    case "signed-out":
      return { ...base, user: null, state: "signed-out", pageKey: null, aids: [], mentors: [] };
    case "expired":
      return { ...base, user: null, state: "expired", pageKey: null, aids: [], mentors: [] };
    case "no-page":
      return { ...base, state: "no-page", pageKey: null, page: null, aids: [], mentors: [] };
    case "unmapped":
      return {
        ...base,
        state: "unmapped",
        pageKey: ev.pageKey,
        page: pageFacts(ev.page),
        aids: [],
        mentors: [],
      };
    case "loading": {
      const hasContent = prev && ["ready", "offline", "busy"].includes(prev.state) && prev.aids;
      if (hasContent)
        return { ...prev, ...base, loading: true, page: pageFacts(ev.page) ?? prev.page };
      return {
        ...base,
        state: "loading",
        loading: true,
        pageKey: ev.pageKey,
        page: pageFacts(ev.page),
        aids: [],
        mentors: [],
      };
    }
    case "loaded":
      return {
        ...base,
        state: "ready",
        loading: false,
        pageKey: ev.pageKey,
        page: pageFacts(ev.page),
        ...fromSuggestion(ev.suggestion),
        offlineSince: null,
      };
    case "offline":
      return {
        ...base,
        state: "offline",
        loading: false,
        pageKey: ev.pageKey,
        page: pageFacts(ev.page),
        ...fromSuggestion(ev.last?.suggestion),
        offlineSince: ev.last?.at ?? null,
      };
    case "busy": {
      // Keep what the panel shows for this page; else the saved results for it, if any.
      const same = prev && prev.pageKey === ev.pageKey && prev.aids?.length;
      const shown = same
        ? { app: prev.app, contexts: prev.contexts, reason: prev.reason }
        : fromSuggestion(ev.last?.suggestion);
      return {
        ...base,
        ...shown,
        state: "busy",
        loading: false,
        pageKey: ev.pageKey,
        page: pageFacts(ev.page),
        aids: same ? prev.aids : shown.aids,
        mentors: same ? (prev.mentors ?? []) : shown.mentors,
        retryAt: ev.retryAt,
      };
    }
    case "selection":
      if (!prev?.page) return prev;
      return { ...prev, page: { ...prev.page, selection: ev.selection } };
    default:
      return prev;
  }
}

/** "14:05" in the user's locale-independent 24h form (tests run anywhere). */
export function hhmm(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** What the panel says while the server asked it to wait (429): calm, with a countdown. */
export function busyNote(retryInMs) {
  const s = Math.max(1, Math.ceil(retryInMs / 1000));
  return `Inflow is busy, trying again in ${s} s`;
}

export function offlineNote(at) {
  return at
    ? `Offline — showing results from ${hhmm(at)}`
    : "Offline — no saved results for this page";
}

const TYPE_LABELS = {
  howto: "How-to",
  checklist: "Checklist",
  video: "Video",
  link: "Link",
  faq: "FAQ",
  policy: "Policy",
};
export const typeLabel = (t) => TYPE_LABELS[t] ?? "Aid";

/** A selection worth offering as a search chip: trimmed, collapsed, at most 60 characters shown. */
export function selectionChip(selection) {
  const s = (selection || "").replace(/\s+/g, " ").trim();
  if (s.length < 2) return null;
  const query = s.slice(0, 256);
  const label = s.length > 60 ? `${s.slice(0, 59)}…` : s;
  return { query, label };
}

/** What of a suggest answer is kept for the offline view: the fields the view is built from
 * (mentors included), not whatever else the server sends. */
export function keptSuggestion(s) {
  return {
    app: s?.app ?? null,
    contexts: Array.isArray(s?.contexts) ? s.contexts : [],
    match: { reason: s?.match?.reason ?? "" },
    aids: Array.isArray(s?.aids) ? s.aids : [],
    mentors: pickMentors(s?.mentors),
  };
}

/** Last results per page URL (offline fallback), newest first, at most `max`. */
export function remember(list, entry, max = 20) {
  const rest = (Array.isArray(list) ? list : []).filter((e) => e.url !== entry.url);
  return [entry, ...rest].slice(0, max);
}

export function recall(list, url) {
  return (Array.isArray(list) ? list : []).find((e) => e.url === url) ?? null;
}
