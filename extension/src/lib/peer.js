// Peer learning in the panel (docs/peer.md): the messages the panel sends the worker, the API
// request each becomes, and what the panel shows from the answer of POST /api/v1/peer/page.
// Pure, unit-tested (tests/peer*.test.mjs). Text from people is never HTML here: bodies arrive
// as `body_html`, sanitised by the server, and the panel inserts them through safeFragment().

/** The server's limits (server/peer/models.py): the panel counts and cuts to these. */
export const PEER_LIMITS = Object.freeze({
  tip: 1000,
  question: 1000,
  answer: 3000,
  reason: 300,
  flag: 1000,
});
/** Ask: similar questions are looked up once typing pauses this long, from this many characters. */
export const SIMILAR_DEBOUNCE_MS = 400;
export const SIMILAR_MIN_CHARS = 12;
const TITLE_MAX = 500;
const ID = /^[A-Za-z0-9_-]{1,128}$/;

const isStr = (v, max) => typeof v === "string" && v.length <= max;
const isText = (v, max) => isStr(v, max) && v.trim().length > 0;
const isId = (v) => typeof v === "string" && ID.test(v);
/** What a mentor may flag an aid as (POST /api/v1/peer/aids/{id}/flag). */
export const FLAG_KINDS = Object.freeze(["wrong", "outdated"]);

/** Operations of the one "peer" message: its shape check, and whether it is about the page on
 * screen (`pageKey`: the worker sends that page's URL and title, never the panel). */
const OPS = {
  page: { page: true, ok: () => true },
  tip: {
    page: true,
    ok: (m) => isText(m.body, PEER_LIMITS.tip) && typeof m.show_name === "boolean",
  },
  ask: {
    page: true,
    ok: (m) => isText(m.body, PEER_LIMITS.question) && typeof m.show_name === "boolean",
  },
  similar: { page: true, ok: (m) => isText(m.q, PEER_LIMITS.question) },
  report: { page: false, ok: (m) => isId(m.id) && isStr(m.reason ?? "", PEER_LIMITS.reason) },
  read: { page: false, ok: (m) => isId(m.id) },
  accept: { page: false, ok: (m) => isId(m.id) && isId(m.answer_id) },
  inbox: { page: false, ok: () => true },
  answer: { page: false, ok: (m) => isId(m.id) && isText(m.body, PEER_LIMITS.answer) },
  contact: { page: false, ok: (m) => isId(m.id) },
  mytips: { page: false, ok: () => true },
  edittip: { page: false, ok: (m) => isId(m.id) && isText(m.body, PEER_LIMITS.tip) },
  deletetip: { page: false, ok: (m) => isId(m.id) },
  deletequestion: { page: false, ok: (m) => isId(m.id) },
  endorse: { page: false, ok: (m) => isId(m.id) },
  flag: {
    page: false,
    ok: (m) => isId(m.id) && FLAG_KINDS.includes(m.kind) && isText(m.comment, PEER_LIMITS.flag),
  },
  mentees: { page: false, ok: () => true },
};
export const PEER_OPS = Object.freeze(Object.keys(OPS));

/** Is `m` a well-formed {type: "peer", op, ...} message from the panel? */
export function isPeerMessage(m) {
  if (!m || typeof m !== "object" || typeof m.op !== "string" || !Object.hasOwn(OPS, m.op))
    return false;
  const op = OPS[m.op];
  if (op.page && !isStr(m.pageKey, 20_000)) return false;
  return op.ok(m);
}

/** Does this operation need the page on screen? */
export const needsPage = (op) => Boolean(OPS[op]?.page);

/**
 * The API request for a checked peer message: {path, method, body}. `page` ({url, title}) is
 * the page the worker has for `msg.pageKey` (required when needsPage(msg.op)).
 */
export function peerRequest(msg, page = null) {
  const where = page ? { url: page.url, title: String(page.title ?? "").slice(0, TITLE_MAX) } : {};
  const id = encodeURIComponent(msg.id ?? "");
  switch (msg.op) {
    case "page":
      return { path: "/peer/page", method: "POST", body: where };
    case "tip":
      return {
        path: "/peer/tips",
        method: "POST",
        body: { ...where, body: msg.body.trim(), show_name: msg.show_name },
      };
    case "ask":
      return {
        path: "/peer/questions",
        method: "POST",
        body: { ...where, body: msg.body.trim(), show_name: msg.show_name },
      };
    case "similar":
      return {
        path: "/peer/questions/similar",
        method: "POST",
        body: { ...where, q: msg.q.trim() },
      };
    case "report":
      return {
        path: `/peer/tips/${id}/report`,
        method: "POST",
        body: { reason: (msg.reason ?? "").trim() },
      };
    case "read":
      return { path: `/peer/questions/${id}/read`, method: "POST", body: {} };
    case "accept":
      return {
        path: `/peer/questions/${id}/accept`,
        method: "POST",
        body: { answer_id: msg.answer_id },
      };
    case "inbox":
      return { path: "/peer/inbox", method: "GET" };
    case "answer":
      return {
        path: `/peer/questions/${id}/answers`,
        method: "POST",
        body: { body: msg.body.trim() },
      };
    case "contact":
      return { path: `/peer/mentors/${id}/contact`, method: "POST", body: {} };
    case "mytips":
      return { path: "/peer/tips/mine", method: "GET" };
    case "edittip":
      return { path: `/peer/tips/${id}`, method: "PUT", body: { body: msg.body.trim() } };
    case "deletetip":
      return { path: `/peer/tips/${id}`, method: "DELETE" };
    case "deletequestion":
      return { path: `/peer/questions/${id}`, method: "DELETE" };
    case "endorse":
      return { path: `/peer/tips/${id}/endorse`, method: "POST", body: {} };
    case "flag":
      return {
        path: `/peer/aids/${id}/flag`,
        method: "POST",
        body: { kind: msg.kind, comment: msg.comment.trim() },
      };
    case "mentees":
      return { path: "/peer/mentees", method: "GET" };
    default:
      throw new Error(`unknown peer operation ${msg.op}`);
  }
}

// ---- what the panel shows -----------------------------------------------------------------------

const str = (v) => (typeof v === "string" ? v.trim() : "");
const list = (v) => (Array.isArray(v) ? v.filter((x) => x && typeof x === "object") : []);

/** The author as shown: their name when they chose to show it, else "A colleague". */
export function authorLabel(item) {
  const name = str(item?.author_name ?? item?.asker_name);
  return item?.show_name === false || !name ? "A colleague" : name;
}

/** A mentor's name from the shapes the API may use: "name", {name}, or the mentor id. */
function mentorName(v) {
  if (typeof v === "string") return v.trim();
  if (v && typeof v === "object") return str(v.name) || str(v.id);
  return "";
}

/** "Endorsed by <mentor>", or "" when no vetted mentor endorsed the tip. */
export function endorsedLine(tip) {
  const name =
    str(tip?.endorsed_by_name) || mentorName(tip?.endorser) || mentorName(tip?.endorsed_by);
  return name ? `Endorsed by ${name}` : "";
}

/** Tips to show: those with an id and sanitised HTML, in the server's order (endorsed first).
 * `myMentorId` (the caller's mentor id, "" for none) marks the tips they endorsed. */
export function pickTips(tips, myMentorId = "") {
  const me = str(myMentorId);
  return list(tips)
    .filter((t) => isId(t.id) && typeof t.body_html === "string")
    .map((t) => {
      const byMe = Boolean(me) && str(t.endorsed_by?.id ?? t.endorsed_by) === me;
      return {
        id: t.id,
        html: t.body_html,
        author: authorLabel(t),
        endorsed: byMe ? "Endorsed by you" : endorsedLine(t),
        endorsedByMe: byMe,
        mine: t.mine === true, // my own tip: no Report button
      };
    });
}

/** A tip's status as its author reads it. */
export function tipStatus(status, reason) {
  if (status === "pending") return "Waiting for review";
  if (status === "approved") return "Shown to colleagues";
  if (status === "rejected") {
    const why = str(reason);
    return why ? `Not published: ${why}` : "Not published";
  }
  if (status === "hidden") return "Hidden by a moderator";
  return "";
}

/** My tips (GET /api/v1/peer/tips/mine: {tips} or a list): status in words, the raw text to
 * edit, where it was written. */
export function pickMyTips(res) {
  return list(Array.isArray(res) ? res : res?.tips)
    .filter((t) => isId(t.id))
    .map((t) => ({
      id: t.id,
      html: typeof t.body_html === "string" ? t.body_html : "",
      body: typeof t.body === "string" ? t.body : "",
      status: str(t.status),
      statusText: tipStatus(str(t.status), t.reject_reason),
      rejected: t.status === "rejected",
      where: [str(t.app?.name), str(t.context?.name)].filter(Boolean).join(" · "),
      endorsed: endorsedLine(t),
    }));
}

/** A mentor's mentees (GET /api/v1/peer/mentees): who, which app, until when, open questions. */
export function pickMentees(res) {
  return list(Array.isArray(res) ? res : res?.mentees)
    .filter((m) => str(m.learner_username))
    .map((m) => ({
      id: str(m.pairing_id) || `${str(m.learner_username)}:${str(m.app_id)}`,
      username: str(m.learner_username),
      app: str(m.app_name) || str(m.app_id),
      until: str(m.until ?? m.ends_on),
      line: `${str(m.app_name) || str(m.app_id)}${str(m.until ?? m.ends_on) ? ` · until ${str(m.until ?? m.ends_on)}` : ""}`,
      questions: list(m.open_questions)
        .filter((q) => isId(q.id))
        .map((q) => ({
          id: q.id,
          html: typeof q.body_html === "string" ? q.body_html : "",
        })),
    }));
}

/** An answer's fields the panel uses (the question's, when nested, too). */
function pickAnswer(a) {
  return {
    id: isId(a.id) ? a.id : "",
    html: typeof a.body_html === "string" ? a.body_html : "",
    author: authorLabel(a),
    byMentor: Boolean(str(a.mentor_id) || str(a.mentor_name)),
    accepted: a.accepted === true,
  };
}

/** A question of mine: status in words, answers (accepted first), unread. */
export function pickMyQuestions(qs) {
  return list(qs)
    .filter((q) => isId(q.id))
    .map((q) => {
      const answers = list(q.answers).map(pickAnswer);
      answers.sort((x, y) => Number(y.accepted) - Number(x.accepted));
      const accepted = answers.some((a) => a.accepted) || Boolean(str(q.accepted_answer_id));
      return {
        id: q.id,
        html: typeof q.body_html === "string" ? q.body_html : "",
        status: q.status,
        unread: q.unread === true,
        answers,
        accepted,
        statusText: questionStatus(q.status, answers.length, accepted),
      };
    });
}

export function questionStatus(status, answerCount, accepted) {
  if (status === "hidden") return "Hidden by a moderator";
  if (status === "closed") return "Closed";
  if (accepted) return "Answered · you accepted an answer";
  if (answerCount) return `${answerCount} answer${answerCount === 1 ? "" : "s"}`;
  return "Waiting for an answer";
}

/** How many of my questions have an answer I have not seen (the badge; 0 = no badge). */
export const unreadCount = (qs) => list(qs).filter((q) => q.unread === true).length;

export function unreadBadge(n) {
  return n > 0 ? `${n} new` : "";
}

/** Accepted answers to questions like this page's (or like what is typed): question + answer. */
export function pickAnswered(items) {
  return list(items)
    .map((it) => {
      const q = it.question && typeof it.question === "object" ? it.question : it;
      const a =
        it.answer && typeof it.answer === "object"
          ? it.answer
          : { body_html: it.answer_html, author_name: it.answer_author_name };
      const qHtml = typeof q.body_html === "string" ? q.body_html : str(it.question_html);
      const aHtml = typeof a.body_html === "string" ? a.body_html : "";
      return {
        id: str(it.question_id) || str(q.id) || str(it.id),
        questionHtml: qHtml,
        answerHtml: aHtml,
        author: authorLabel(a),
      };
    })
    .filter((x) => x.answerHtml);
}

/** Is the text worth looking up similar questions for? */
export function similarQuery(text) {
  const q = typeof text === "string" ? text.trim().replace(/\s+/g, " ") : "";
  return q.length >= SIMILAR_MIN_CHARS ? q.slice(0, PEER_LIMITS.question) : "";
}

/** aid id → "Recommended by María" (several mentors: "María and Ken"). */
export function recommendedBy(recs) {
  const names = new Map();
  for (const r of list(recs)) {
    const aid = str(r.aid_id);
    if (!aid) continue;
    const who = [str(r.mentor_name) || mentorName(r.mentor), ...list(r.mentors).map(mentorName)];
    for (const name of who.filter(Boolean)) {
      if (!names.has(aid)) names.set(aid, []);
      if (!names.get(aid).includes(name)) names.get(aid).push(name);
    }
  }
  const out = new Map();
  for (const [aid, who] of names) {
    const words =
      who.length <= 1 ? who.join("") : `${who.slice(0, -1).join(", ")} and ${who.at(-1)}`;
    out.set(aid, `Recommended by ${words}`);
  }
  return out;
}

/** Recommended aids not already in the page's list (shown under "Recommended by mentors"). */
export function extraRecommended(recs, shownAids) {
  const shown = new Set(list(shownAids).map((a) => a.id));
  const seen = new Set();
  const out = [];
  for (const r of list(recs)) {
    const id = str(r.aid_id);
    if (!id || shown.has(id) || seen.has(id)) continue;
    seen.add(id);
    out.push({
      id,
      type: str(r.type) || str(r.aid_type),
      title: str(r.title) || str(r.aid_title) || id,
      summary: str(r.summary) || str(r.aid_summary),
      note:
        str(r.note) ||
        list(r.mentors)
          .map((m) => str(m.note))
          .find(Boolean) ||
        "",
    });
  }
  return out;
}

/** My paired mentors for this app: each with a heading "Your mentor for <app>". */
export function pickMyMentors(mentors, appName) {
  return list(mentors)
    .filter((m) => str(m.name) && (isId(m.id) || isId(m.mentor_id)))
    .map((m) => ({
      id: isId(m.mentor_id) ? m.mentor_id : m.id,
      name: str(m.name),
      contact: str(m.contact),
      can_help_with: str(m.can_help_with),
      reason: str(m.until ?? m.ends_on) ? `Paired with you until ${str(m.until ?? m.ends_on)}` : "",
      heading: `Your mentor for ${str(m.app_name) || appName || "this app"}`,
    }));
}

/** The other people who can help, without those already shown as my mentors. */
export function otherMentors(mentors, mine) {
  const ids = new Set(list(mine).map((m) => m.id));
  return list(mentors).filter((m) => !ids.has(m.id));
}

/** Questions from the mentor's inbox for this page: this page's context first, then the rest of
 * the app; answered or hidden ones left out. */
export function inboxForPage(inbox, appId, contextId) {
  // The API serves a question's place as {app: {id, name}, context: {id, name} | null}.
  const appOf = (q) => str(q.app?.id) || str(q.app_id);
  const ctxOf = (q) => str(q.context?.id) || str(q.context_id);
  const qs = list(Array.isArray(inbox) ? inbox : (inbox?.questions ?? inbox?.items)).filter(
    (q) => isId(q.id) && appOf(q) === appId && (q.status ?? "open") === "open",
  );
  const isHere = (q) => Boolean(contextId) && ctxOf(q) === contextId;
  return [...qs.filter(isHere), ...qs.filter((q) => !isHere(q))].map((q) => ({
    id: q.id,
    html: typeof q.body_html === "string" ? q.body_html : "",
    asker: authorLabel(q),
    here: isHere(q),
  }));
}

/** "123/1000" for a text box. */
export const countText = (text, max) => `${String(text ?? "").length}/${max}`;

/** What the peer answer offers this caller (missing flags are false). */
export function peerCan(data) {
  const can = data?.can && typeof data.can === "object" ? data.can : {};
  const flag = (k) => can[k] === true;
  return {
    tip: flag("tip"),
    ask: flag("ask"),
    answer: flag("answer"),
    moderate: flag("moderate"),
    recommend: flag("recommend"),
    endorse: flag("endorse"),
    flag: flag("flag"),
    mentees: flag("mentees"),
  };
}

/** An error from a peer request in words for the panel. */
export function peerError(err) {
  if (err?.kind === "offline") return "The Inflow server is unreachable. Try again in a moment.";
  if (err?.kind === "busy") return "You have written a lot in a short time. Try again later.";
  if (err?.status === 429) return "You have written a lot in a short time. Try again later.";
  return str(err?.message) || "Something went wrong. Try again.";
}
