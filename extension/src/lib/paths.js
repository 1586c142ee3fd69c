// Learning paths in the panel (docs/extension.md "Learning paths"): the messages the panel sends
// the worker, the API request each becomes, the cache of GET /api/v1/paths/mine, and what the
// panel shows from that answer: the strip ("Your path: … — 3 of 7 — next: …"), the "Part of your
// path" marks on aids, and the path steps an aid completes. Pure, unit-tested
// (tests/paths.test.mjs). Titles are plain text: the panel puts them in as text nodes.

/** storage.session key of the cached answer of GET /paths/mine (one per signed-in person). */
export const PATHS_KEY = "paths";
/** How long the cached answer is used before asking the server again. */
export const PATHS_TTL_MS = 60_000;
/** The one way the panel completes a step (the server accepts it for steps of kind aid). */
export const AID_FINISHED = "aid_finished";

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const isId = (v) => typeof v === "string" && ID.test(v);

const OPS = {
  // GET /paths/mine, from the cache when fresh; `force` asks the server (Retry).
  mine: (m) => m.force === undefined || typeof m.force === "boolean",
  // POST /paths/{path}/steps/{step}/done {how: aid_finished}
  done: (m) => isId(m.path) && isId(m.step) && m.how === AID_FINISHED,
};
export const PATHS_OPS = Object.freeze(Object.keys(OPS));

/** Is `m` a well-formed {type: "paths", op, ...} message from the panel? */
export function isPathsMessage(m) {
  if (!m || typeof m !== "object" || typeof m.op !== "string" || !Object.hasOwn(OPS, m.op))
    return false;
  return OPS[m.op](m);
}

/** The API request (relative to /api/v1) for a checked paths message. */
export function pathsRequest(msg) {
  if (msg.op === "mine") return { path: "/paths/mine", method: "GET" };
  if (msg.op === "done") {
    const p = encodeURIComponent(msg.path);
    const s = encodeURIComponent(msg.step);
    return { path: `/paths/${p}/steps/${s}/done`, method: "POST", body: { how: msg.how } };
  }
  throw new Error(`unknown paths op ${msg.op}`);
}

// ---- the cache (storage.session) ----------------------------------------------------------
/** Who a cache entry belongs to: the token's issuer and subject (never the display name). */
export function ownerOf(claims, serverUrl) {
  if (!claims?.sub) return null;
  return `${serverUrl}\n${claims.iss ?? ""}\n${claims.sub}`;
}

/** The cached list if it is this person's and younger than the TTL (else null). With
 * `stale: true` any age will do (offline, or the server asked us to wait). */
export function cachedMine(entry, owner, now, { stale = false } = {}) {
  if (!entry || !owner || entry.owner !== owner || !Array.isArray(entry.data)) return null;
  if (!stale && !(now - entry.at < PATHS_TTL_MS && now >= entry.at)) return null;
  return entry.data;
}

export const cacheEntry = (owner, data, now) => ({ owner, at: now, data: normalise(data) });

/** Keep only well-formed entries of the answer (an unexpected shape shows nothing). */
export function normalise(data) {
  if (!Array.isArray(data)) return [];
  return data.filter(
    (e) =>
      e &&
      typeof e === "object" &&
      e.path &&
      typeof e.path.id === "string" &&
      typeof e.path.title === "string" &&
      Array.isArray(e.steps),
  );
}

// ---- what the panel shows -----------------------------------------------------------------
const doneCount = (e) => (Number.isInteger(e.done) ? e.done : e.steps.filter((s) => s.done).length);
const totalCount = (e) => (Number.isInteger(e.total) ? e.total : e.steps.length);
const complete = (e) => totalCount(e) > 0 && doneCount(e) >= totalCount(e);

/**
 * The path the strip shows: unfinished paths before finished ones; among them the one due first
 * (undated after dated), then the server's order. `more` counts the other unfinished paths.
 * @returns {{entry: object, more: number} | null}
 */
export function pickPath(list) {
  const items = normalise(list);
  if (!items.length) return null;
  const ranked = items
    .map((entry, i) => ({ entry, i }))
    .sort((a, b) => {
      const ca = complete(a.entry) ? 1 : 0;
      const cb = complete(b.entry) ? 1 : 0;
      if (ca !== cb) return ca - cb;
      const da = a.entry.due_on || "9999-12-31";
      const db = b.entry.due_on || "9999-12-31";
      if (da !== db) return da < db ? -1 : 1;
      return a.i - b.i;
    });
  const entry = ranked[0].entry;
  const open = items.filter((e) => !complete(e)).length;
  const more = complete(entry) ? 0 : open - 1;
  return { entry, more };
}

/** The step to do next: the server's `next`, else the first step not done. */
export function nextStep(entry) {
  if (entry.next && typeof entry.next.title === "string") return entry.next;
  return entry.steps.find((s) => !s.done) ?? null;
}

const MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");

/** "due 5 Dec", "due today", "overdue since 3 Dec" ("" when undated or finished). `today` is the
 * learner's local date as YYYY-MM-DD. */
export function dueText(entry, today) {
  const due = entry.due_on;
  if (!due || complete(entry) || !/^\d{4}-\d{2}-\d{2}$/.test(due)) return "";
  const [y, m, d] = due.split("-").map(Number);
  const sameYear = today.slice(0, 4) === String(y);
  const label = `${d} ${MONTHS[m - 1]}${sameYear ? "" : ` ${y}`}`;
  if (due === today) return "due today";
  return due < today ? `overdue since ${label}` : `due ${label}`;
}

/** A local date as YYYY-MM-DD. */
export function localDay(date) {
  const p = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}`;
}

/**
 * The strip's words: {id, title, progress: "3 of 7", next: "<step title>" | "", due, complete,
 * more: "+1 more" | ""}, or null when there is no path to show.
 */
export function stripModel(list, today) {
  const picked = pickPath(list);
  if (!picked) return null;
  const { entry, more } = picked;
  const next = complete(entry) ? null : nextStep(entry);
  return {
    id: entry.path.id,
    title: entry.path.title,
    progress: `${doneCount(entry)} of ${totalCount(entry)}`,
    done: doneCount(entry),
    total: totalCount(entry),
    next: next?.title ?? "",
    due: dueText(entry, today),
    overdue: dueText(entry, today).startsWith("overdue"),
    complete: complete(entry),
    more: more > 0 ? `+${more} more` : "",
  };
}

/** The web app's page of a path (or of all paths): `{server}/learn/paths/{id}`. */
export function learnUrl(serverUrl, pathId = "") {
  const base = String(serverUrl ?? "").replace(/\/+$/, "");
  return pathId ? `${base}/learn/paths/${encodeURIComponent(pathId)}` : `${base}/learn/paths`;
}

/**
 * The path steps of kind aid that this aid is: [{pathId, pathTitle, stepId, stepTitle, position,
 * total, done}] in the list's order (an aid may be a step of several paths, or twice in one).
 */
export function stepsForAid(list, aidId) {
  const out = [];
  for (const e of normalise(list)) {
    e.steps.forEach((s, i) => {
      if (s && s.kind === "aid" && s.aid_id === aidId && isId(s.id)) {
        out.push({
          pathId: e.path.id,
          pathTitle: e.path.title,
          stepId: s.id,
          stepTitle: s.title ?? "",
          position: i + 1,
          total: e.steps.length,
          done: Boolean(s.done),
        });
      }
    });
  }
  return out;
}

/** The "Part of your path" mark of an aid card: {label, detail, done}, or null when the aid is
 * no step of the learner's paths. `detail` names the path and step ("Sales onboarding, step 2
 * of 3"); `done` when every such step is done. */
export function markFor(list, aidId) {
  const steps = stepsForAid(list, aidId);
  if (!steps.length) return null;
  const done = steps.every((s) => s.done);
  const detail = steps
    .map((s) => `${s.pathTitle}, step ${s.position} of ${s.total}${s.done ? " (done)" : ""}`)
    .join("; ");
  return { label: done ? "Part of your path · done" : "Part of your path", detail, done };
}

/** The messages that complete this aid's open steps (Done pressed, last checklist box ticked). */
export function doneMessages(list, aidId) {
  return stepsForAid(list, aidId)
    .filter((s) => !s.done)
    .map((s) => ({ type: "paths", op: "done", path: s.pathId, step: s.stepId, how: AID_FINISHED }));
}

/** The list with one step done (what the strip shows until the server's answer arrives, or
 * when the server could not be asked again after a successful POST). */
export function withStepDone(list, pathId, stepId, at) {
  return normalise(list).map((e) => {
    if (e.path.id !== pathId) return e;
    const steps = e.steps.map((s) =>
      s.id === stepId && !s.done ? { ...s, done: true, done_at: at, how: AID_FINISHED } : s,
    );
    const done = steps.filter((s) => s.done).length;
    const next = steps.find((s) => !s.done) ?? null;
    return { ...e, steps, done, total: steps.length, next };
  });
}

/** What the panel says when paths cannot be shown: null means "show nothing" (no paths API on
 * this server, or the person may not learn from paths); otherwise a short sentence. */
export function pathsError(err) {
  if (err?.kind === "http" && [401, 403, 404, 405, 501].includes(err.status)) return null;
  if (err?.kind === "signed-out" || err?.kind === "expired") return null;
  if (err?.kind === "offline") return "Your learning path could not be loaded (offline).";
  if (err?.kind === "busy") return "Your learning path will load in a moment.";
  return "Your learning path could not be loaded.";
}
