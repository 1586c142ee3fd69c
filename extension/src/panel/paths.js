// Learning paths in the side panel (docs/extension.md "Learning paths"): the strip under the
// search box ("Your path: Sales onboarding — 3 of 7 — next: …"), the "Part of your path" mark on
// aid cards, and the "Done" box on an aid that is a step of one of the learner's paths. The list
// comes from GET /api/v1/paths/mine through the worker (cached there for a minute); every title
// goes in as text.

import {
  doneMessages,
  learnUrl,
  localDay,
  markFor,
  pathsError,
  stepsForAid,
  stripModel,
} from "../lib/paths.js";
import { h } from "./dom.js";

const isWebUrl = (u) => {
  try {
    return ["http:", "https:"].includes(new URL(u).protocol);
  } catch {
    return false;
  }
};

/**
 * @param {{send: (msg) => Promise<any>, serverUrl: () => string, openAid: (id: string) => void,
 *          changed: () => void, strip: HTMLElement}} deps  `changed` re-renders the home list
 *          (its aid cards carry the marks); `strip` is the element the strip is drawn in.
 */
export function createPaths({ send, serverUrl, openAid, changed, strip }) {
  const st = {
    key: null, // who and which page the list was last asked for
    status: "idle", // idle | loading | ready | none | error
    list: null,
    stale: false,
    error: "",
    seq: 0,
    box: null, // {aidId, el, line, status} of the aid on screen
    sending: false,
  };

  // ---- loading -----------------------------------------------------------------------------
  /** The worker's view changed: (re)load when someone signed in or the page changed (the worker
   * answers from its one-minute cache, so this is cheap); forget everything at sign-out. */
  function sync(view) {
    const inSession = Boolean(view) && !["signed-out", "expired"].includes(view.state);
    if (!inSession || !view.user) {
      if (st.key !== null || st.list) {
        st.key = null;
        st.list = null;
        st.status = "idle";
        st.seq++;
        paint();
      }
      return;
    }
    // Asked again on a new page, and when the server is back after being away or busy.
    const away = ["offline", "busy"].includes(view.state) ? "away" : "";
    const key = `${view.user}\n${view.pageKey ?? ""}\n${away}`;
    if (key === st.key) return;
    const userChanged = !st.key || st.key.split("\n")[0] !== view.user;
    st.key = key;
    if (userChanged) st.list = null;
    void load();
  }

  async function load(force = false) {
    const seq = ++st.seq;
    if (!st.list) st.status = "loading";
    paint();
    try {
      const res = await send({ type: "paths", op: "mine", ...(force ? { force: true } : {}) });
      if (seq !== st.seq) return;
      const before = JSON.stringify(st.list);
      st.list = Array.isArray(res?.paths) ? res.paths : [];
      st.stale = Boolean(res?.stale);
      st.status = st.list.length ? "ready" : "none";
      st.error = "";
      paint();
      if (JSON.stringify(st.list) !== before) changed();
    } catch (err) {
      if (seq !== st.seq) return;
      // No paths API, not allowed, or unreachable with nothing saved: no strip at all (the
      // main view already says the server is unreachable; most people have no path).
      const away = ["offline", "busy"].includes(err?.kind) && !st.list?.length;
      const text = away ? null : pathsError(err);
      st.error = text ?? "";
      st.status = text === null ? "none" : st.list?.length ? "ready" : "error";
      if (text === null) st.list = null;
      paint();
    }
  }

  // ---- the strip ---------------------------------------------------------------------------
  function paint() {
    paintStrip();
    paintBox();
  }

  function paintStrip() {
    strip.setAttribute("aria-busy", String(st.status === "loading"));
    if (st.status === "loading") {
      strip.hidden = false;
      strip.dataset.state = "loading";
      strip.replaceChildren(
        h("p", { className: "path-line muted", id: "path-loading" }, "Loading your learning path…"),
      );
      return;
    }
    if (st.status === "error") {
      strip.hidden = false;
      strip.dataset.state = "error";
      strip.replaceChildren(
        h(
          "p",
          { className: "path-line", id: "path-error" },
          st.error,
          " ",
          h(
            "button",
            { type: "button", className: "link", id: "path-retry", onclick: () => load(true) },
            "Retry",
          ),
        ),
      );
      return;
    }
    const model = st.status === "ready" ? stripModel(st.list, localDay(new Date())) : null;
    if (!model) {
      strip.hidden = true;
      strip.dataset.state = "none";
      strip.replaceChildren();
      return;
    }
    strip.hidden = false;
    strip.dataset.state = model.complete ? "complete" : "ready";
    const line = h(
      "p",
      { className: "path-line", id: "path-line" },
      h("span", { className: "path-label" }, "Your path: "),
      h(
        "a",
        {
          href: learnUrl(serverUrl(), model.id),
          target: "_blank",
          rel: "noopener",
          id: "path-link",
          title: "Open the path in the Inflow web app",
        },
        model.title,
      ),
      " — ",
      h("strong", { id: "path-progress" }, model.progress),
      model.complete ? h("span", { id: "path-complete" }, " — complete ✓") : null,
      model.next ? [" — next: ", nextLink(model)] : null,
      model.due
        ? h(
            "span",
            { className: model.overdue ? "path-due overdue" : "path-due", id: "path-due" },
            ` · ${model.due}`,
          )
        : null,
      model.more
        ? [
            " ",
            h(
              "a",
              {
                href: learnUrl(serverUrl()),
                target: "_blank",
                rel: "noopener",
                className: "path-more",
                id: "path-more",
                title: "All your paths in the Inflow web app",
              },
              model.more,
            ),
          ]
        : null,
      st.stale || st.error ? h("span", { className: "muted" }, " (saved copy)") : null,
    );
    const meter = h("progress", {
      className: "path-meter",
      id: "path-meter",
      max: String(Math.max(model.total, 1)),
      value: String(model.done),
      "aria-label": `${model.progress} steps done`,
    });
    strip.replaceChildren(line, meter);
  }

  /** The next step: an aid opens in the panel, a course at its address, anything else is text
   * (the web app's path page has the rest). */
  function nextLink(model) {
    const picked = st.list && stepOf(model.id, model.next);
    if (picked?.kind === "aid" && picked.aid_id) {
      return h(
        "button",
        {
          type: "button",
          className: "link",
          id: "path-next",
          onclick: () => openAid(picked.aid_id),
        },
        model.next,
      );
    }
    if (picked?.kind === "course" && isWebUrl(picked.url)) {
      return h(
        "a",
        { href: picked.url, target: "_blank", rel: "noopener noreferrer", id: "path-next" },
        model.next,
      );
    }
    return h("span", { id: "path-next" }, model.next);
  }

  function stepOf(pathId, title) {
    const entry = st.list.find((e) => e?.path?.id === pathId);
    if (!entry) return null;
    if (entry.next && entry.next.title === title) {
      const full = entry.steps.find((s) => s.id === entry.next.id);
      return { ...full, ...entry.next };
    }
    return entry.steps.find((s) => !s.done && s.title === title) ?? null;
  }

  // ---- marks on aid cards --------------------------------------------------------------------
  /** "Part of your path" inside an aid card (its accessible name says which path and step). */
  function mark(aidId) {
    if (!st.list?.length) return null;
    const m = markFor(st.list, aidId);
    if (!m) return null;
    return h(
      "span",
      {
        className: m.done ? "path-mark done" : "path-mark",
        dataset: { pathMark: aidId },
        title: m.detail,
      },
      h("span", { className: "path-mark-label" }, m.label),
      h("span", { className: "sr-only" }, `: ${m.detail}`),
    );
  }

  // ---- the Done box on an aid ----------------------------------------------------------------
  /** The box under an aid that is a step of the learner's paths ("Done"); empty (hidden) for
   * other aids, and filled in when the list arrives after the aid. */
  function doneBox(aidId) {
    const line = h("span", { className: "path-step" });
    const status = h("span", {
      className: "muted",
      role: "status",
      id: "path-done-status",
      tabindex: "-1",
    });
    const el = h(
      "div",
      { className: "path-done", id: "path-done-box", role: "group", "aria-label": "Your path" },
      line,
      status,
    );
    st.box = { aidId, el, line, status };
    st.sending = false;
    paintBox();
    return el;
  }

  function paintBox() {
    const box = st.box;
    if (!box) return;
    const steps = st.list?.length ? stepsForAid(st.list, box.aidId) : [];
    box.el.hidden = !steps.length;
    if (!steps.length) {
      box.line.replaceChildren();
      return;
    }
    const open = steps.filter((s) => !s.done);
    const where = (s) => `step ${s.position} of ${s.total} of your path “${s.pathTitle}”`;
    if (open.length) {
      const first = open[0];
      box.line.replaceChildren(
        h("span", {}, `This aid is ${where(first)}.`),
        " ",
        h(
          "button",
          {
            type: "button",
            className: "primary",
            id: "path-done",
            disabled: st.sending,
            onclick: () => finished(box.aidId),
          },
          "Done",
        ),
      );
    } else {
      box.line.replaceChildren(
        h("span", { id: "path-done-text" }, `✓ Done: ${steps.map(where).join("; ")}.`),
      );
    }
  }

  /** Done pressed (or the last checklist box ticked): complete every open step with this aid,
   * then show the worker's fresh list. */
  async function finished(aidId) {
    const box = st.box;
    if (!st.list?.length || st.sending) return;
    const messages = doneMessages(st.list, aidId);
    if (!messages.length) return;
    st.sending = true;
    const say = (text) => {
      if (box && box.aidId === aidId) box.status.textContent = text;
    };
    say("Saving…");
    paintBox();
    try {
      let res = null;
      for (const msg of messages) res = await send(msg);
      st.seq++; // an older "mine" answer must not overwrite this one
      if (Array.isArray(res?.paths)) st.list = res.paths;
      st.status = st.list?.length ? "ready" : "none";
      st.sending = false;
      say(doneSentence(messages[0].path));
      paint();
      if (box && box.aidId === aidId && box.el.isConnected) box.status.focus();
      changed();
    } catch (err) {
      st.sending = false;
      say(err?.kind === "http" ? err.message : (pathsError(err) ?? err.message));
      paintBox();
      // Refused (the path was unassigned or changed meanwhile): show what is true now.
      if (err?.kind === "http") void load(true);
    }
  }

  /** After a Done: "Marked done. Next: <step>." or "… You finished “<path>”." */
  function doneSentence(pathId) {
    const entry = st.list?.find((e) => e?.path?.id === pathId);
    const model = entry ? stripModel([entry], localDay(new Date())) : null;
    if (model?.complete) return `Marked done. You finished “${model.title}”.`;
    return model?.next ? `Marked done. Next: ${model.next}.` : "Marked done.";
  }

  return { sync, load, mark, doneBox, finished };
}
