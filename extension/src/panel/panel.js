// Side panel: renders the view the worker keeps in storage.session, plus its own search and aid
// screens. No innerHTML anywhere: text goes in as text, server HTML through safeFragment().

import { safeFragment } from "../lib/safehtml.js";
import { effectiveSettings, imageHostsFrom } from "../lib/settings.js";
import { K, getLocal, getManaged, getSession, setSession } from "../lib/storage.js";
import {
  busyNote,
  contactOf,
  freshness,
  groupAids,
  offlineNote,
  parseTime,
  reasonLines,
  searchHeading,
  selectionChip,
  shouldRunCorrection,
  typeLabel,
  videoFacts,
} from "../lib/viewmodel.js";
import { cueLink } from "../lib/videotime.js";
import { h } from "./dom.js";
import { provenanceLine, webUrl } from "./provenance.js";
import { createPaths } from "./paths.js";
import { createPeer } from "./peer.js";

const SEARCH_DEBOUNCE_MS = 250;
const SHOWN_MAX = 200;
const COMMENT_MAX = 1000;
const $ = (id) => document.getElementById(id);

// Panel-local UI state (this page lives as long as the panel is open; the worker owns the rest).
const ui = {
  mode: "home", // home | search | aid
  view: null,
  query: "",
  searchSeq: 0,
  searchTimer: 0,
  busyTimer: 0,
  lastSearch: null,
  aidFrom: "home",
  aidOpener: null,
  heldVote: null, // {aid_id, helpful}: voted, comment box open, not sent yet (the worker holds it)
  authError: "",
  serverUrl: "",
  imageHosts: [],
  shown: new Set(), // mapped pages (pageKey) this panel reported as displayed, for analytics
  moreFor: null, // the pageKey whose "More" related aids are revealed
  exact: "", // a query the user asked to run as typed ("Search instead for …")
};

async function send(msg) {
  const res = await chrome.runtime.sendMessage(msg);
  if (!res) throw Object.assign(new Error("No answer from the extension."), { kind: "error" });
  if (!res.ok) throw Object.assign(new Error(res.error.message), res.error);
  return res.data;
}

// Peer learning (panel/peer.js): its section sits under the aids; it also adds "Recommended by"
// lines to aids and "Your mentor for <app>" to the people list.
const peer = createPeer({
  send,
  html: (s) => safeFragment(s, { baseUrl: ui.serverUrl, imageHosts: ui.imageHosts }),
  changed: () => ui.mode === "home" && render(),
});

// Learning paths (panel/paths.js): the strip under the search box, "Part of your path" on aid
// cards, and "Done" on an aid that is a step of the learner's paths.
const paths = createPaths({
  send,
  serverUrl: () => ui.serverUrl,
  openAid: (id) => openAid(id),
  changed: () => ui.mode === "home" && render(),
  strip: $("path-strip"),
});

// ---- top bar, search box, selection chip ----------------------------------------------------
function signedIn(view) {
  return Boolean(view) && view.state !== "signed-out" && view.state !== "expired";
}

function renderChrome() {
  const view = ui.view;
  const inSession = signedIn(view);
  $("user").textContent = inSession && view.user ? view.user : "";
  $("sign-out").hidden = !inSession;
  $("search-form").hidden = !inSession;
  renderWhere();
  const chipRow = $("chip");
  const chip = inSession ? selectionChip(view.page?.selection) : null;
  chipRow.replaceChildren();
  chipRow.hidden = !chip;
  if (chip) {
    chipRow.append(
      h(
        "button",
        {
          type: "button",
          className: "chip",
          title: chip.query,
          onclick: () => searchNow(chip.query),
        },
        `Search for “${chip.label}”`,
      ),
    );
  }
}

function renderWhere() {
  const where = $("where");
  const view = ui.view;
  where.replaceChildren();
  if (!view || !["ready", "offline", "busy"].includes(view.state) || !view.app) {
    where.hidden = true;
    return;
  }
  where.hidden = false;
  const ctx = view.contexts
    ?.map((c) => c.name)
    .filter(Boolean)
    .join(", ");
  where.append(h("span", { className: "sr-only" }, "Recognised: "), h("strong", {}, view.app.name));
  if (ctx) where.append(" · ", ctx);
  if (view.reason) where.title = view.reason;
}

// ---- home (the worker's view) ----------------------------------------------------------------
function stateBox(...children) {
  return h("div", { className: "state" }, ...children);
}

function signInBox(text) {
  return stateBox(
    h("p", {}, text),
    h(
      "button",
      { type: "button", className: "primary", id: "sign-in", onclick: doSignIn },
      "Sign in",
    ),
    ui.authError ? h("p", { className: "error", role: "alert" }, ui.authError) : null,
  );
}

/** A video hit's cue: "▶ 1:23 “…”", a link that opens the video where the words are said.
 * Beside the card's button, not in it (a link inside a button is no link). */
function cueLine(aid) {
  const cue = cueLink(aid.cue);
  if (!cue) return null;
  return h(
    "a",
    {
      className: "cue",
      href: cue.href,
      target: "_blank",
      rel: "noopener noreferrer",
      dataset: { cue: aid.id },
      title: `Watch from ${cue.time}`,
      onclick: () => linkFollowed(aid.id, cue.href),
      onauxclick: (ev) => ev.button === 1 && linkFollowed(aid.id, cue.href),
    },
    cue.label,
  );
}

function aidCard(aid, why = []) {
  const lines = Array.isArray(why) ? why : why ? [why] : [];
  return h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        className: "card",
        dataset: { aid: aid.id },
        onclick: () => openAid(aid.id),
      },
      h(
        "span",
        { className: "title" },
        h("span", { className: "badge" }, typeLabel(aid.type)),
        aid.title,
      ),
      aid.summary ? h("span", { className: "summary" }, aid.summary) : null,
      paths.mark(aid.id),
      lines.length ? h("span", { className: "why" }, lines.join(" · ")) : null,
    ),
    cueLine(aid),
  );
}

/** Pinned aids, then at most three related aids (the rest behind "More"), then the people who
 * can help. No related aid is better than filler: an empty related list says so calmly. */
function aidList(view) {
  const { pinned, related, more } = groupAids(view.aids);
  const recs = peer.recommended(view);
  // The mentors' line once, whether the peer answer or the aid's own reasons bring it.
  const why = (a) => {
    const lines = reasonLines(a);
    const rec = recs.get(a.id);
    return rec && !lines.some((l) => l.startsWith("Recommended by")) ? [...lines, rec] : lines;
  };
  const extra = peer.extraRecommended(view, view.aids);
  const people = peer.people(view, view.mentors);
  const out = [];
  if (pinned.length) {
    out.push(h("h2", { className: "group", id: "pinned-heading" }, "For this page"));
    out.push(
      h(
        "ul",
        { className: "aids", id: "pinned", "aria-labelledby": "pinned-heading" },
        pinned.map((a) => aidCard(a, why(a))),
      ),
    );
  }
  if (!pinned.length && !related.length && !extra.length && !view.mentors?.length) {
    if (!people.mine.length)
      return [stateBox(h("p", {}, "No job aids for this page yet. Try the search."))];
    return mentorList(people);
  }
  out.push(h("h2", { className: "group", id: "related-heading" }, "Related"));
  if (!related.length) {
    out.push(
      h("p", { className: "muted calm", id: "no-related" }, "Nothing else here matches this page."),
    );
  } else {
    const open = more.length > 0 && ui.moreFor === view.pageKey;
    out.push(
      h(
        "ul",
        { className: "aids", id: "related", "aria-labelledby": "related-heading" },
        (open ? [...related, ...more] : related).map((a) => aidCard(a, why(a))),
      ),
    );
    if (more.length && !open) out.push(moreButton(view.pageKey, more));
  }
  if (extra.length) {
    out.push(h("h2", { className: "group", id: "recommended-heading" }, "Recommended by mentors"));
    out.push(
      h(
        "ul",
        { className: "aids", id: "recommended", "aria-labelledby": "recommended-heading" },
        extra.map((a) => aidCard(a, [recs.get(a.id), a.note].filter(Boolean))),
      ),
    );
  }
  out.push(...mentorList(people));
  return out;
}

/** "More (n)": reveals the rest of the related aids for this page; focus moves to the first. */
function moreButton(pageKey, more) {
  return h(
    "button",
    {
      type: "button",
      className: "secondary more",
      id: "more",
      "aria-expanded": "false",
      "aria-controls": "related",
      onclick: () => {
        ui.moreFor = pageKey;
        render();
        $("main")
          .querySelector(`[data-aid="${CSS.escape(more[0].id)}"]`)
          ?.focus();
      },
    },
    `More (${more.length})`,
  );
}

// ---- people who can help (vetted peer mentors) --------------------------------------------------
/** Every mentor field is plain text from the server: it goes in as text nodes, never as HTML. */
function mentorCard(m, paired = false) {
  const contact = contactOf(m.contact);
  // "Contact" of a paired mentor records an event (no content) for the mentoring loop.
  const contacted = paired ? () => peer.contact(m.id) : undefined;
  const nameId = `mentor-${m.id}-name`;
  const status = h("span", { className: "copied muted", role: "status" });
  let how;
  if (contact.kind === "email") {
    how = h(
      "a",
      {
        className: "link",
        href: contact.href,
        dataset: { focus: `mail:${m.id}` },
        "aria-describedby": nameId,
        onclick: contacted,
      },
      contact.text,
    );
  } else {
    const text = h("code", { className: "handle" }, contact.text);
    how = [
      text,
      h(
        "button",
        {
          type: "button",
          className: "secondary small",
          dataset: { focus: `copy:${m.id}` },
          "aria-label": `Copy ${contact.text} (${m.name})`,
          onclick: () => {
            contacted?.();
            return copyText(contact.text, text, status);
          },
        },
        "Copy",
      ),
      status,
    ];
  }
  return h(
    "li",
    {
      className: paired ? "mentor paired" : "mentor",
      dataset: { mentor: m.id, ...(paired ? { paired: "true" } : {}) },
      "aria-labelledby": nameId,
    },
    paired ? h("p", { className: "paired-label" }, m.heading) : null,
    h("h3", { className: "name", id: nameId }, m.name),
    m.can_help_with ? h("p", { className: "helps" }, m.can_help_with) : null,
    m.reason ? h("p", { className: "why" }, m.reason) : null,
    h("p", { className: "contact" }, h("span", { className: "sr-only" }, "Contact: "), how),
  );
}

/** People who can help: my paired mentors first ("Your mentor for <app>"), then the others. */
function mentorList({ mine, others }) {
  if (!mine.length && !others?.length) return [];
  return [
    h("h2", { className: "group", id: "mentors-heading" }, "People who can help"),
    h(
      "ul",
      { className: "mentors", id: "mentors", "aria-labelledby": "mentors-heading" },
      mine.map((m) => mentorCard(m, true)),
      (others ?? []).map((m) => mentorCard(m)),
    ),
  ];
}

/** Copy to the clipboard; where that is refused, select the text so Ctrl+C copies it. */
async function copyText(text, el, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
  } catch {
    const range = document.createRange();
    range.selectNodeContents(el);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    status.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
  }
}

function homeContent(view) {
  switch (view?.state) {
    case "signed-out":
      return [signInBox("Sign in to see the job aids for the page you are working on.")];
    case "expired":
      return [signInBox("Your session expired. Sign in again.")];
    case "no-page":
      return [
        stateBox(h("p", {}, "Open a page of a work app to see its job aids, or search above.")),
      ];
    case "unmapped":
      return [
        stateBox(
          h("p", { id: "unmapped" }, "Nothing mapped here."),
          h(
            "p",
            { className: "muted" },
            "Inflow has no job aids for this page. Search all job aids instead.",
          ),
          h(
            "button",
            { type: "button", className: "secondary", onclick: () => $("q").focus() },
            "Search job aids",
          ),
        ),
      ];
    case "ready":
      return [
        view.loading
          ? h("div", { className: "loading-bar", role: "progressbar", "aria-label": "Updating" })
          : null,
        ...aidList(view),
        peer.section(view),
      ];
    case "busy":
      tickBusy();
      return [
        h(
          "div",
          { className: "note", role: "status", id: "busy-note" },
          h("span", { id: "busy-text" }, busyNote(view.retryAt - Date.now())),
        ),
        ...(view.aids?.length || view.mentors?.length ? aidList(view) : []),
      ];
    case "offline":
      return [
        h(
          "div",
          { className: "note", role: "status", id: "offline-note" },
          h("span", {}, offlineNote(view.offlineSince)),
          h(
            "button",
            { type: "button", className: "secondary", id: "retry", onclick: retry },
            "Retry",
          ),
        ),
        ...(view.aids?.length || view.mentors?.length ? aidList(view) : []),
      ];
    default:
      return [
        h(
          "div",
          { className: "skeletons", "aria-label": "Loading" },
          h("div", { className: "skeleton" }),
          h("div", { className: "skeleton" }),
          h("div", { className: "skeleton" }),
        ),
      ];
  }
}

/** The busy note counts down each second (text only: no re-render, focus stays put). The worker
 * retries by itself when the time is up; the view then changes and the countdown stops. */
function tickBusy() {
  clearTimeout(ui.busyTimer);
  ui.busyTimer = setTimeout(() => {
    const text = document.getElementById("busy-text");
    if (!text || ui.view?.state !== "busy") return;
    text.textContent = busyNote(ui.view.retryAt - Date.now());
    tickBusy();
  }, 1000);
}

function render() {
  renderChrome();
  const main = $("main");
  main.dataset.state = ui.mode === "home" ? (ui.view?.state ?? "loading") : ui.mode;
  main.setAttribute("aria-busy", String(ui.mode === "home" && (ui.view?.loading || !ui.view)));
  // The page whose results are on screen ("" while loading): what the speed benchmark waits for.
  const shown = ui.view?.state === "ready" && !ui.view.loading ? ui.view.pageKey : "";
  main.dataset.shown = ui.mode === "home" ? (shown ?? "") : "";
  if (ui.mode !== "home") return; // search and aid screens render themselves
  peer.sync(ui.view);
  const active = document.activeElement;
  const focusedAid = active?.dataset?.aid;
  const focusedKey = active?.dataset?.focus;
  // The peer section is the same element after re-rendering: focus (a half-written tip) returns.
  const inPeer = peer.holds(active) ? active : null;
  main.replaceChildren(...homeContent(ui.view).filter(Boolean));
  if (inPeer?.isConnected) inPeer.focus({ preventScroll: true });
  else if (focusedAid) main.querySelector(`[data-aid="${CSS.escape(focusedAid)}"]`)?.focus();
  else if (focusedKey) main.querySelector(`[data-focus="${CSS.escape(focusedKey)}"]`)?.focus();
  reportShown(ui.view);
}

/** Tell the worker the first time this panel displays a mapped page (it records panel_opened
 * and suggestions_shown, after checking the page is still the one it has). Only the panel knows
 * it is open and showing the list. Once per page while the panel stays open: switching tabs back
 * and forth, a retry or a reload of the same results count once. */
function reportShown(view) {
  if (view?.state !== "ready" || view.loading || !view.pageKey) return;
  if (ui.shown.has(view.pageKey)) return;
  ui.shown.add(view.pageKey);
  if (ui.shown.size > SHOWN_MAX) ui.shown.delete(ui.shown.values().next().value);
  send({ type: "shown", pageKey: view.pageKey }).catch(() => {});
}

function onView(view) {
  ui.view = view ?? null;
  paths.sync(ui.view);
  if (!signedIn(ui.view)) {
    ui.heldVote = null; // the worker sent it at sign-out
    ui.mode = "home";
    ui.query = "";
    $("q").value = "";
  }
  render();
}

// ---- actions -----------------------------------------------------------------------------------
async function doSignIn(ev) {
  ev.currentTarget.disabled = true;
  ui.authError = "";
  try {
    await send({ type: "sign-in" });
  } catch (err) {
    ui.authError = err.message;
  }
  render();
}

async function doSignOut() {
  await send({ type: "sign-out" }).catch(() => {});
}

async function retry(ev) {
  ev.currentTarget.disabled = true;
  await send({ type: "retry" }).catch(() => {});
}

function showError(err, where) {
  if (err.kind === "expired" || err.kind === "signed-out") return; // the view switches by itself
  if (err.kind === "busy") {
    // Not an error: the server asked us to wait (429). A calm note, no alert.
    const note = busyNote((err.retryAt ?? Date.now() + (err.retryInMs ?? 0)) - Date.now());
    where.replaceChildren(h("p", { className: "note", role: "status", id: "busy-note" }, note));
    return;
  }
  const text =
    err.kind === "offline"
      ? "The Inflow server is unreachable. Try again in a moment."
      : err.message;
  where.replaceChildren(h("p", { className: "error", role: "alert" }, text));
}

// ---- search ------------------------------------------------------------------------------------
function onQueryInput() {
  clearTimeout(ui.searchTimer);
  ui.exact = "";
  ui.searchTimer = setTimeout(() => runSearch($("q").value), SEARCH_DEBOUNCE_MS);
}

function searchNow(q) {
  $("q").value = q;
  clearTimeout(ui.searchTimer);
  runSearch(q);
}

async function runSearch(raw) {
  const q = raw.trim();
  ui.query = q;
  const seq = ++ui.searchSeq;
  if (!q) {
    ui.mode = "home";
    render();
    return;
  }
  const main = $("main");
  if (ui.mode !== "search") {
    releaseVote(); // typing a search while on an aid leaves it
    ui.mode = "search";
    main.replaceChildren(h("div", { className: "skeleton" }));
  }
  main.setAttribute("aria-busy", "true");
  const exact = q === ui.exact;
  try {
    let res = await send({ type: "search", q });
    if (!exact && shouldRunCorrection(res)) {
      // An older server only suggests a spelling: run it, as the server does when it can.
      const fixed = await send({ type: "search", q: res.did_you_mean });
      if (fixed?.total > 0) res = { ...fixed, corrected_from: q };
    }
    if (seq !== ui.searchSeq || ui.mode !== "search") return;
    ui.lastSearch = { ...res, exact };
    renderSearch(ui.lastSearch);
  } catch (err) {
    if (seq !== ui.searchSeq) return;
    showError(err, main);
  } finally {
    if (seq === ui.searchSeq) main.setAttribute("aria-busy", "false");
  }
}

function didYouMean(suggestion) {
  return h(
    "p",
    { className: "muted", id: "did-you-mean" },
    "Did you mean ",
    h(
      "button",
      { type: "button", className: "link", onclick: () => searchNow(suggestion) },
      suggestion,
    ),
    "?",
  );
}

/** The answer to a search. A corrected answer says so above its results ("Showing results for
 * X. Search instead for Y"); a spelling suggestion only ever comes after the count. */
function renderSearch(res) {
  const main = $("main");
  main.dataset.state = "search";
  const head = searchHeading(res, { exact: res.exact });
  const out = [];
  if (head.kind === "corrected") {
    out.push(
      h(
        "p",
        { className: "corrected", id: "corrected" },
        "Showing results for ",
        h("strong", {}, head.shown),
        ". Search instead for ",
        h(
          "button",
          {
            type: "button",
            className: "link",
            id: "search-instead",
            onclick: () => {
              ui.exact = head.original;
              searchNow(head.original);
            },
          },
          head.original,
        ),
      ),
    );
  }
  const none = head.kind === "none-exact";
  const total = none ? 0 : res.total;
  const shownQuery = none ? head.query : res.query;
  out.push(
    h(
      "h2",
      { className: "group", id: "result-count" },
      `${total} result${total === 1 ? "" : "s"} for “${shownQuery}”`,
    ),
  );
  if (none || !res.results.length) {
    out.push(stateBox(h("p", {}, "No job aids match. Try other words.")));
  } else {
    out.push(
      h(
        "ul",
        { className: "aids", id: "results" },
        res.results.map((r) => {
          const li = aidCard(r, null);
          if (r.snippet_html) {
            const snip = h("span", { className: "snippet" });
            snip.append(
              safeFragment(r.snippet_html, { baseUrl: ui.serverUrl, imageHosts: ui.imageHosts }),
            );
            li.firstChild.append(snip);
          }
          return li;
        }),
      ),
    );
  }
  if (head.didYouMean && (none || head.kind === "plain")) out.push(didYouMean(head.didYouMean));
  main.replaceChildren(...out);
}

// ---- one aid -----------------------------------------------------------------------------------
async function openAid(id) {
  ui.aidFrom = ui.mode;
  ui.aidOpener = id;
  ui.mode = "aid";
  const main = $("main");
  main.dataset.state = "aid";
  main.setAttribute("aria-busy", "true");
  const back = h(
    "button",
    { type: "button", className: "secondary", id: "back", onclick: goBack },
    "← Back",
  );
  main.replaceChildren(
    h("div", { className: "toolbar" }, back),
    h("div", { className: "skeleton" }),
  );
  try {
    const aid = await send({ type: "get-aid", id });
    if (ui.mode !== "aid" || ui.aidOpener !== id) return;
    renderAid(aid, back);
  } catch (err) {
    showError(err, main);
    main.prepend(h("div", { className: "toolbar" }, back));
  } finally {
    main.setAttribute("aria-busy", "false");
  }
}

function renderAid(aid, back) {
  const main = $("main");
  const title = h("h1", { tabindex: "-1", id: "aid-title" }, aid.title);
  const source = webUrl(aid.source);
  const body = h("div", { className: "body", id: "aid-body" });
  body.append(safeFragment(aid.body_html, { baseUrl: ui.serverUrl, imageHosts: ui.imageHosts }));
  const video = aid.type === "video" ? videoBlock(aid, body) : null;
  const fresh = freshness(aid);
  const from = provenanceLine(aid.provenance);
  const vote = voteBox(aid.id);
  main.replaceChildren(
    h(
      "div",
      { className: "toolbar" },
      back,
      source && !video
        ? h(
            "a",
            {
              href: source,
              target: "_blank",
              rel: "noopener noreferrer",
              className: "link",
              id: "open-source",
              onclick: () => linkFollowed(aid.id, source),
              onauxclick: (ev) => ev.button === 1 && linkFollowed(aid.id, source),
            },
            "Open in a new tab",
          )
        : null,
    ),
    h(
      "article",
      { className: "aid", "aria-labelledby": "aid-title" },
      title,
      h(
        "div",
        { className: "meta" },
        h("span", { className: "badge" }, typeLabel(aid.type)),
        aid.summary ?? "",
      ),
      fresh.verified
        ? h("p", { className: "verified muted", id: "verified" }, fresh.verified)
        : null,
      fresh.stale
        ? h("p", { className: "note stale", role: "note", id: "stale" }, fresh.stale)
        : null,
      from ? provenanceNote(aid.id, from) : null,
      video,
      body,
    ),
    paths.doneBox(aid.id),
    ...vote,
    // A mentor of the page's app flags the aid as wrong or outdated to its owner.
    ...[peer.flagBox(ui.view, aid.id)].filter(Boolean),
  );
  title.focus();
  void makeChecklist(aid, body);
}

/** "From <source>, updated <when>" on an aid a source made; the name links to the item there. */
function provenanceNote(aidId, from) {
  const name = from.href
    ? h(
        "a",
        {
          href: from.href,
          target: "_blank",
          rel: "noopener noreferrer",
          id: "provenance-link",
          onclick: () => linkFollowed(aidId, from.href),
          onauxclick: (ev) => ev.button === 1 && linkFollowed(aidId, from.href),
        },
        from.name,
      )
    : from.name;
  return h(
    "p",
    { className: "provenance muted", id: "provenance" },
    "From ",
    name,
    from.updated ? `, updated ${from.updated}` : "",
  );
}

/** A video aid's block: poster (the body's first image, if any), title, duration and a Watch
 * link that keeps the source's `#t=` (the player opens at that moment). Times in the body's
 * tables ("1:55") become links into the video at that time. */
function videoBlock(aid, body) {
  const poster = body.querySelector("img");
  const v = videoFacts(aid, body.textContent ?? "", poster?.getAttribute("src"));
  if (!v) return null;
  const follow = (href) => ({
    onclick: () => linkFollowed(aid.id, href),
    onauxclick: (ev) => ev.button === 1 && linkFollowed(aid.id, href),
  });
  const facts = [
    v.duration ? `Duration ${v.duration}` : null,
    v.start ? `starts at ${v.start}` : null,
  ]
    .filter(Boolean)
    .join(" · ");
  for (const cell of body.querySelectorAll("td")) {
    const sec = /^\d{1,2}:\d{2}(?::\d{2})?$/.test(cell.textContent.trim())
      ? parseTime(cell.textContent.trim())
      : null;
    if (sec === null || cell.querySelector("a")) continue;
    const u = new URL(v.href);
    u.hash = `t=${sec}`;
    const a = h(
      "a",
      { href: u.href, target: "_blank", rel: "noopener noreferrer", ...follow(u.href) },
      cell.textContent.trim(),
    );
    cell.replaceChildren(a);
  }
  return h(
    "figure",
    { className: "video", id: "video" },
    v.poster ? h("img", { src: v.poster, alt: "", referrerpolicy: "no-referrer" }) : null,
    h(
      "figcaption",
      {},
      h(
        "a",
        {
          href: v.href,
          target: "_blank",
          rel: "noopener noreferrer",
          className: "watch",
          id: "watch-video",
          ...follow(v.href),
        },
        h("span", { "aria-hidden": "true" }, "▶ "),
        `Watch: ${v.title.replace(/^video:\s*/i, "")}`,
      ),
      facts ? h("span", { className: "muted facts", id: "video-facts" }, facts) : null,
    ),
  );
}

/** Task lists become checkboxes; ticks are kept for the session (storage.session), per aid and
 * version, so a new version of a checklist starts fresh. */
async function makeChecklist(aid, body) {
  const items = [...body.querySelectorAll("li.task")];
  if (!items.length) return;
  const key = `ticks:${aid.id}:${aid.version ?? 0}`;
  const saved = (await getSession(key)) ?? {};
  items.forEach((li, i) => {
    const box = h("input", { type: "checkbox", className: "tick", dataset: { task: String(i) } });
    box.checked = Object.hasOwn(saved, i) ? Boolean(saved[i]) : li.classList.contains("done");
    li.classList.toggle("ticked", box.checked);
    box.addEventListener("change", async () => {
      li.classList.toggle("ticked", box.checked);
      const now = (await getSession(key)) ?? {};
      now[i] = box.checked;
      await setSession({ [key]: now });
      // The last box ticked finishes the aid: its open path steps are done.
      if (box.checked && items.every((it) => it.querySelector("input.tick")?.checked))
        void paths.finished(aid.id);
    });
    const text = h("span", { className: "task-text" });
    text.append(...li.childNodes);
    li.replaceChildren(h("label", {}, box, text));
  });
}

/** "Was this helpful? Yes / No", then an optional "What was missing?" with Send and Skip. The
 * vote is held by the worker until Send or Skip (or leaving the aid, or closing the panel), so
 * vote and comment make one feedback row. */
function voteBox(aidId) {
  const status = h("span", { className: "muted", role: "status", id: "vote-status" });
  const thanks = (res) =>
    res?.queued ? "Saved — it will be sent when the server is back." : "Thanks for your feedback.";
  const count = h("span", { className: "muted count", id: "comment-count" }, `0/${COMMENT_MAX}`);
  const text = h("textarea", {
    id: "comment",
    rows: "3",
    maxlength: String(COMMENT_MAX),
    "aria-describedby": "comment-count",
    oninput: () => (count.textContent = `${text.value.length}/${COMMENT_MAX}`),
    onkeydown: (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
    },
  });
  const sendBtn = h("button", { type: "submit", className: "primary", id: "comment-send" }, "Send");
  const skip = h(
    "button",
    { type: "button", className: "secondary", id: "comment-skip", onclick: () => finish(null) },
    "Skip",
  );
  const form = h(
    "form",
    {
      className: "comment",
      id: "comment-form",
      hidden: true,
      onsubmit: (ev) => {
        ev.preventDefault();
        finish(text.value.trim().slice(0, COMMENT_MAX));
      },
    },
    h(
      "label",
      { for: "comment" },
      "What was missing? ",
      h("span", { className: "muted" }, "(optional)"),
    ),
    text,
    h("div", { className: "comment-actions" }, count, sendBtn, skip),
  );
  const buttons = [];
  const cast = (helpful) => async (ev) => {
    for (const b of buttons) b.disabled = true;
    ev.currentTarget.setAttribute("aria-pressed", "true");
    try {
      await send({ type: "feedback", aid_id: aidId, helpful, mode: "hold" });
      ui.heldVote = { aid_id: aidId, helpful };
      status.textContent = "Thanks!";
      form.hidden = false;
      text.focus();
    } catch (err) {
      status.textContent = err.message;
      for (const b of buttons) b.disabled = false;
    }
  };
  /** Send the held vote: with the comment (non-empty), or as it is (Skip, empty comment). */
  async function finish(comment) {
    const held = ui.heldVote;
    if (!held || held.aid_id !== aidId) return;
    for (const el of [text, sendBtn, skip]) el.disabled = true;
    status.textContent = "Sending…";
    try {
      const res = comment
        ? await send({ type: "feedback", aid_id: aidId, helpful: held.helpful, comment })
        : await send({ type: "feedback", aid_id: aidId, helpful: held.helpful, mode: "release" });
      ui.heldVote = null;
      form.hidden = true;
      status.textContent = thanks(res);
      status.focus();
    } catch (err) {
      status.textContent = err.message;
      for (const el of [text, sendBtn, skip]) el.disabled = false;
    }
  }
  status.tabIndex = -1;
  const yes = h("button", { type: "button", className: "secondary", id: "vote-yes" }, "Yes");
  const no = h("button", { type: "button", className: "secondary", id: "vote-no" }, "No");
  yes.addEventListener("click", cast(true));
  no.addEventListener("click", cast(false));
  buttons.push(yes, no);
  return [
    h(
      "div",
      { className: "vote", role: "group", "aria-label": "Was this helpful?" },
      h("span", {}, "Was this helpful?"),
      yes,
      no,
      status,
    ),
    form,
  ];
}

/** Leaving an aid (Back, a search, sign-out) or closing the panel: a vote still waiting for its
 * comment is sent as it is. Fire and forget; the worker sends it later anyway if this is lost. */
function releaseVote() {
  const held = ui.heldVote;
  if (!held) return;
  ui.heldVote = null;
  send({ type: "feedback", aid_id: held.aid_id, helpful: held.helpful, mode: "release" }).catch(
    () => {},
  );
}

function linkFollowed(aidId, url) {
  send({ type: "link-followed", aid_id: aidId, url }).catch(() => {});
}

function goBack() {
  releaseVote();
  const id = ui.aidOpener;
  ui.mode = ui.aidFrom === "search" && ui.lastSearch ? "search" : "home";
  if (ui.mode === "search") renderSearch(ui.lastSearch);
  render();
  $("main")
    .querySelector(`[data-aid="${CSS.escape(id ?? "")}"]`)
    ?.focus();
}

// ---- start -------------------------------------------------------------------------------------
async function start() {
  const managed = await getManaged();
  const { values } = effectiveSettings(await getLocal(K.settings, {}), managed);
  ui.serverUrl = values.serverUrl;
  ui.imageHosts = imageHostsFrom(managed);
  $("q").addEventListener("input", onQueryInput);
  $("q").addEventListener("keydown", (e) => {
    if (e.key === "Escape") searchNow("");
  });
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    searchNow($("q").value);
  });
  $("sign-out").addEventListener("click", doSignOut);
  $("settings").addEventListener("click", () => chrome.runtime.openOptionsPage());
  // The panel closes (or reloads): a vote still waiting for its comment goes now.
  window.addEventListener("pagehide", releaseVote);
  // The panel shows again (its window or tab comes back): answers may have arrived meanwhile.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && ui.mode === "home") peer.refresh();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && ui.mode === "aid") goBack();
  });
  chrome.storage.onChanged.addListener((changes, area) => {
    if (area === "session" && K.view in changes) onView(changes[K.view].newValue);
  });
  onView(await getSession(K.view));
  // In a tab (tests, or "open in tab"), tell the worker so it keeps following the web page.
  const tab = await chrome.tabs.getCurrent();
  await send({ type: "panel-hello", tabId: tab?.id ?? null }).catch(() => {});
}

start();
