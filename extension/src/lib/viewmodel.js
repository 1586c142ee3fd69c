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

// ---- fewer, better aids: groups, reasons in words -------------------------------------------

/** Related aids shown before "More". */
export const RELATED_SHOWN = 3;

/** The home list in groups: pinned aids (all), then related ones: the first RELATED_SHOWN
 * shown, the rest behind "More". Server order is kept within each group. */
export function groupAids(aids) {
  const ordered = orderAids(aids);
  const pinned = ordered.filter((a) => a.reason_code === "pinned");
  const related = ordered.filter((a) => a.reason_code !== "pinned");
  return {
    pinned,
    related: related.slice(0, RELATED_SHOWN),
    more: related.slice(RELATED_SHOWN),
  };
}

/** "sales-enablement@example.com" → "Sales Enablement"; a name stays as it is. */
export function ownerName(owner) {
  const s = typeof owner === "string" ? owner.trim() : "";
  if (!s.includes("@")) return s;
  const local = s
    .slice(0, s.indexOf("@"))
    .replace(/[._+-]+/g, " ")
    .trim();
  return local.replace(/\b\p{L}/gu, (c) => c.toUpperCase());
}

/** ["a"] → "a"; ["a", "b"] → "a and b"; ["a", "b", "c"] → "a, b and c". */
export function wordList(words) {
  const w = words.filter((x) => typeof x === "string" && x.trim()).map((x) => x.trim());
  if (w.length <= 1) return w.join("");
  return `${w.slice(0, -1).join(", ")} and ${w.at(-1)}`;
}

const TERMS_MAX = 3;

/**
 * Why an aid is shown, in words, from the API's structured `why` ({kind, terms, pinned_by:
 * {context, owner}, signals: [{kind: "helpful", count} | {kind: "used"}]}); an answer without it (an older
 * server) keeps its `reason` text. Lines, most important first.
 */
export function reasonLines(aid) {
  const why = aid?.why && typeof aid.why === "object" ? aid.why : null;
  const lines = [];
  const by = why?.pinned_by && typeof why.pinned_by === "object" ? why.pinned_by : null;
  const context = typeof by?.context === "string" ? by.context.trim() : "";
  const owner = ownerName(by?.owner);
  if (aid?.reason_code === "pinned" || why?.kind === "pinned") {
    if (owner && context) lines.push(`Pinned by ${owner} for ${context}`);
    else if (context) lines.push(`Pinned for ${context}`);
    else if (owner) lines.push(`Pinned by ${owner}`);
  }
  const terms = Array.isArray(why?.terms) ? wordList(why.terms.slice(0, TERMS_MAX)) : "";
  if (terms && !lines.length) lines.push(`Mentions ${terms}`);
  for (const s of Array.isArray(why?.signals) ? why.signals : []) {
    if (s?.kind === "helpful" && Number.isInteger(s.count) && s.count > 0)
      lines.push(`Colleagues on this page found it helpful (${s.count})`);
    else if (s?.kind === "used") lines.push("Colleagues on this page open it");
    // "not_helpful" only sinks an aid: it is not a reason to show it.
  }
  if (!lines.length && typeof aid?.reason === "string" && aid.reason.trim())
    lines.push(aid.reason.trim());
  return lines;
}

export const reasonText = (aid) => reasonLines(aid).join(" · ");

// ---- one aid: verified line, out-of-date warning, video -------------------------------------

export const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
export const DAY_MS = 86_400_000;

/** "March 2026": the UTC month and year of a time in milliseconds. */
export function monthYear(ms) {
  const d = new Date(ms);
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

function isoDay(s) {
  const m = typeof s === "string" ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(s) : null;
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
}

/**
 * What the panel says about an aid's freshness: {verified: "Verified March 2026 by Finance AP"
 * | null, stale: "past its review date…" | null}. Stale when `verified_at` + review interval
 * lies before `now` (the server's own rule); never verified says so, without alarm.
 */
export function freshness(aid, now = Date.now()) {
  const at = isoDay(aid?.verified_at);
  const owner = ownerName(aid?.owner);
  if (at === null) return { verified: owner ? `Owned by ${owner}` : null, stale: null };
  const verified = `Verified ${monthYear(at)}${owner ? ` by ${owner}` : ""}`;
  const days = Number.isInteger(aid?.review_interval_days) ? aid.review_interval_days : null;
  const stale =
    days !== null && now - at > days * DAY_MS
      ? `This aid may be out of date: it was due for review ${monthYear(at + days * DAY_MS)}. Check with ${owner || "its owner"} if something looks wrong.`
      : null;
  return { verified, stale };
}

/** Seconds from a media fragment time: "90", "90s", "1:55", "1:02:03", "1m55s", "1h2m3s". */
export function parseTime(t) {
  const s = String(t ?? "").trim();
  let m = /^(\d+)(?:\.\d+)?s?$/.exec(s);
  if (m) return Number(m[1]);
  m = /^(?:(\d+):)?(\d{1,2}):(\d{2})$/.exec(s);
  if (m) return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(s);
  if (m && (m[1] || m[2] || m[3]))
    return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  return null;
}

/** 115 → "1:55"; 3723 → "1:02:03". */
export function clock(sec) {
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = String(sec % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** The start time a video link carries (`#t=…` or `?t=…`), in seconds, or null. */
export function startTime(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const frag = new URLSearchParams(u.hash.replace(/^#/, ""));
  const t = frag.get("t") ?? u.searchParams.get("t");
  if (t === null) return null;
  return parseTime(t.split(",")[0]); // media fragments: t=start,end
}

/**
 * The video block of a video aid: {href, title, duration: "5:12" | null, start: "1:55" | null,
 * poster: src | null}. The link keeps its `#t=` so the player opens at that moment. Duration
 * from `aid.duration` (seconds or "m:ss") when the server sends it, else the first "(m:ss)" in
 * the summary or body text. Null when the aid has no http(s) source.
 */
export function videoFacts(aid, bodyText = "", poster = null) {
  let href;
  try {
    href = new URL(aid?.source ?? "");
  } catch {
    return null;
  }
  if (href.protocol !== "https:" && href.protocol !== "http:") return null;
  let duration = null;
  const given = aid?.duration;
  if (Number.isInteger(given) && given > 0) duration = clock(given);
  else if (typeof given === "string" && parseTime(given)) duration = clock(parseTime(given));
  else {
    const m = /\((\d{1,2}:\d{2}(?::\d{2})?)\)/.exec(`${aid?.summary ?? ""} ${bodyText}`);
    if (m) duration = clock(parseTime(m[1]));
  }
  const start = startTime(href.href);
  return {
    href: href.href,
    title: typeof aid?.title === "string" ? aid.title : "",
    duration,
    start: start ? clock(start) : null,
    poster: poster || null,
  };
}

// ---- search: corrected queries ---------------------------------------------------------------

/**
 * What heads a search answer. `res.corrected_from` (the server ran the corrected query because
 * the original found nothing) → {kind: "corrected", shown: res.query, original}. A plain answer
 * with a suggestion → {kind: "plain", didYouMean} (shown below the count, never above "0 results").
 * `asked` is what the user typed; when they chose "Search instead for …" (`exact`), a corrected
 * answer means the original found nothing: {kind: "none-exact", didYouMean}.
 */
export function searchHeading(res, { exact = false } = {}) {
  const corrected = typeof res?.corrected_from === "string" && res.corrected_from.trim();
  if (corrected && exact)
    return { kind: "none-exact", query: res.corrected_from, didYouMean: res.query };
  if (corrected) return { kind: "corrected", shown: res.query, original: res.corrected_from };
  return { kind: "plain", query: res?.query ?? "", didYouMean: res?.did_you_mean || null };
}

/** Should the panel run the suggested spelling itself? (An older server that only suggests.) */
export const shouldRunCorrection = (res) =>
  !res?.corrected_from &&
  res?.total === 0 &&
  typeof res?.did_you_mean === "string" &&
  res.did_you_mean.trim() !== "";
