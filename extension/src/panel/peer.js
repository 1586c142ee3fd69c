// Peer learning in the side panel (docs/peer.md): tips from colleagues, share a tip, ask (with
// accepted answers to similar questions while typing), your questions (badge, accept), answer
// (mentors and owners), and what aids and people lists borrow: "Recommended by <mentor>" and
// "Your mentor for <app>". One request per page (POST /api/v1/peer/page through the worker).
//
// People's text arrives as sanitised `body_html` and goes in through safeFragment(); names and
// labels go in as text. The section is one element kept across the panel's re-renders, so what
// someone types survives a view update; its lists are rebuilt when the data changes.

import {
  FLAG_KINDS,
  PEER_LIMITS,
  SIMILAR_DEBOUNCE_MS,
  countText,
  extraRecommended,
  inboxForPage,
  otherMentors,
  peerCan,
  peerError,
  pickAnswered,
  pickMentees,
  pickMyMentors,
  pickMyTips,
  pickMyQuestions,
  pickTips,
  recommendedBy,
  similarQuery,
  unreadBadge,
  unreadCount,
} from "../lib/peer.js";
import { h } from "./dom.js";
import { sendWrite, submitForm } from "./submit.js";

/**
 * @param {{send: (msg) => Promise<any>, html: (s: string) => DocumentFragment,
 *          changed: () => void}} deps  `changed` re-renders the home list (recommendations and
 *          mentors shown there come from the peer answer).
 */
export function createPeer({ send, html, changed }) {
  const st = {
    pageKey: null,
    status: "idle", // idle | loading | ready | error
    data: null,
    error: "",
    inbox: null, // questions for me (mentors, owners), or null before loaded
    inboxError: "",
    myTips: null, // GET /peer/tips/mine, or null before loaded
    myTipsError: "",
    tipNotes: new Map(), // tip id → what the author's last edit did (kept across re-renders)
    focusAfter: "", // data-focus key to focus once "Your tips" is drawn again
    mentees: null, // GET /peer/mentees (mentors), or null before loaded
    menteesError: "",
    view: null,
    el: null,
    parts: null,
    seq: 0,
  };

  const body = (s) => h("div", { className: "peer-body" }, html(s));

  // ---- loading -----------------------------------------------------------------------------
  function sync(view) {
    st.view = view;
    const ok = view?.state === "ready" && view.pageKey && view.app;
    if (!ok) return;
    if (view.pageKey !== st.pageKey) {
      st.pageKey = view.pageKey;
      st.data = null;
      st.inbox = null;
      st.myTips = null;
      st.mentees = null;
      st.el = build();
      void load();
    }
  }

  async function load() {
    const seq = ++st.seq;
    const pageKey = st.pageKey;
    st.status = st.data ? "ready" : "loading";
    st.el?.setAttribute("aria-busy", "true");
    paint();
    try {
      const data = await send({ type: "peer", op: "page", pageKey });
      if (seq !== st.seq || pageKey !== st.pageKey) return;
      st.data = data;
      st.status = "ready";
      st.error = "";
      const can = peerCan(data);
      if (can.answer) void loadInbox();
      if (can.tip) void loadMyTips();
      if (can.mentees) void loadMentees();
    } catch (err) {
      if (seq !== st.seq) return;
      st.status = "error";
      st.error = peerError(err);
    }
    st.el?.setAttribute("aria-busy", "false");
    paint();
    changed();
  }

  /** Reads one of the lists (`op`) into st[key], or why not into st[`${key}Error`], and paints
   * it. */
  async function loadList(key, op, paintIt) {
    try {
      st[key] = await send({ type: "peer", op });
      st[`${key}Error`] = "";
    } catch (err) {
      st[`${key}Error`] = peerError(err);
    }
    paintIt();
  }

  const loadInbox = () => loadList("inbox", "inbox", paintInbox);
  const loadMyTips = (force = false) => loadList("myTips", "mytips", () => paintMyTips(force));
  const loadMentees = () => loadList("mentees", "mentees", paintMentees);

  /**
   * A destructive button that asks first, in place: "<question> [Delete] [Keep]" (focus on
   * Keep). `run` does it and throws to say why it could not.
   */
  function confirmButton({ label, ariaLabel, question, focusKey, run }) {
    const box = h("span", { className: "confirm" });
    const status = h("span", { className: "muted", role: "status" });
    const open = h(
      "button",
      {
        type: "button",
        className: "link small danger",
        "aria-label": ariaLabel,
        dataset: { focus: focusKey },
        onclick: () => {
          open.hidden = true;
          ask.hidden = false;
          keep.focus();
        },
      },
      label,
    );
    const yes = h(
      "button",
      {
        type: "button",
        className: "secondary small danger confirm-yes",
        onclick: () =>
          sendWrite({
            lock: [yes, keep],
            status,
            pending: "Deleting…",
            send: run,
            onSaved: () => (status.textContent = "Deleted."),
            keepLocked: true,
          }),
      },
      label,
    );
    const keep = h(
      "button",
      {
        type: "button",
        className: "link small confirm-no",
        onclick: () => {
          ask.hidden = true;
          open.hidden = false;
          open.focus();
        },
      },
      "Keep",
    );
    const ask = h("span", { hidden: true, role: "group" }, `${question} `, yes, " ", keep);
    box.append(open, ask, " ", status);
    return box;
  }

  // ---- the section: built once per page ------------------------------------------------------
  function build() {
    const parts = {
      state: h("div", { className: "peer-state" }),
      tips: h("div", { id: "peer-tips" }),
      answered: h("div", { id: "peer-answered" }),
      share: shareForm(),
      ask: askForm(),
      mine: h("div", { id: "peer-mine" }),
      myTips: h("div", { id: "peer-my-tips" }),
      mentees: h("div", { id: "peer-mentees" }),
      inbox: h("div", { id: "peer-inbox" }),
    };
    st.parts = parts;
    return h(
      "section",
      { className: "peer", id: "peer", "aria-label": "From colleagues", "aria-busy": "true" },
      parts.state,
      parts.mine,
      parts.tips,
      parts.answered,
      parts.share.el,
      parts.ask.el,
      parts.myTips,
      parts.mentees,
      parts.inbox,
    );
  }

  function paint() {
    const p = st.parts;
    if (!p) return;
    if (st.status === "loading") {
      p.state.replaceChildren(
        h("div", { className: "skeleton", "aria-label": "Loading tips and questions" }),
      );
    } else if (st.status === "error") {
      p.state.replaceChildren(
        h(
          "div",
          { className: "note", id: "peer-error" },
          h("p", { className: "error", role: "alert" }, st.error),
          h(
            "button",
            { type: "button", className: "secondary", id: "peer-retry", onclick: () => load() },
            "Retry",
          ),
        ),
      );
    } else {
      p.state.replaceChildren();
    }
    const ready = st.status === "ready" && st.data;
    const can = peerCan(ready ? st.data : null);
    p.share.el.hidden = !ready || !can.tip;
    p.ask.el.hidden = !ready || !can.ask;
    p.tips.replaceChildren(...(ready ? tipsList(st.data.tips, can) : []));
    p.answered.replaceChildren(...(ready ? answeredList(st.data.answers) : []));
    p.mine.replaceChildren(...(ready ? mineList(st.data.my_questions) : []));
    paintInbox();
    paintMyTips();
    paintMentees();
  }

  // ---- list sections -----------------------------------------------------------------------------
  /** The children of one list section: `heading`, then the `error` (with a Retry button when
   * `retry` is given), a loading skeleton while `items` is null, the empty note (`emptyId`,
   * `emptyText`; without `emptyText` an empty list shows nothing, heading included) or the list
   * (`list`: tag, default "ul", className, id, labelledBy, default the heading's id) of
   * `render(item)`. */
  function listSection(
    heading,
    { error, retry, items, loadingLabel, emptyId, emptyText, list, render },
  ) {
    if (error) {
      return [
        heading,
        h("p", { className: "error", role: "alert" }, error),
        retry
          ? h("button", { type: "button", className: "secondary small", onclick: retry }, "Retry")
          : null,
      ].filter(Boolean);
    }
    if (items === null) {
      return [heading, h("div", { className: "skeleton", "aria-label": loadingLabel })];
    }
    if (!items.length) {
      return emptyText
        ? [heading, h("p", { className: "muted calm", id: emptyId }, emptyText)]
        : [];
    }
    const { tag = "ul", className, id, labelledBy = heading.id } = list;
    return [heading, h(tag, { className, id, "aria-labelledby": labelledBy }, items.map(render))];
  }

  /** Paints listSection(heading, opts) into `box`; true when the list itself was drawn. */
  function paintList(box, heading, opts) {
    box.replaceChildren(...listSection(heading, opts));
    return !opts.error && opts.items !== null && opts.items.length > 0;
  }

  // ---- tips from colleagues ------------------------------------------------------------------
  function tipsList(raw, can) {
    return listSection(
      h("h2", { className: "group", id: "tips-heading" }, "Tips from colleagues"),
      {
        items: pickTips(raw, st.data?.me?.mentor_id),
        emptyId: "no-tips",
        emptyText: "No tips for this page yet.",
        list: { className: "tips", id: "tips" },
        render: (t) => tipItem(t, can),
      },
    );
  }

  /** A mentor's Endorse button on an approved tip of their app; "Endorsed by you" once done. */
  function endorseButton(t, status) {
    const btn = h(
      "button",
      {
        type: "button",
        className: "secondary small endorse",
        dataset: { focus: `endorse:${t.id}` },
        "aria-label": `Endorse this tip by ${t.author}`,
        onclick: () =>
          sendWrite({
            lock: [btn],
            status,
            send: () => send({ type: "peer", op: "endorse", id: t.id }),
            onSaved: () => {
              btn.textContent = "Endorsed by you";
              btn.removeAttribute("aria-label");
              btn.setAttribute("aria-disabled", "true");
              status.textContent = "Endorsed. Colleagues see your name on this tip.";
            },
            keepLocked: true,
          }),
      },
      "Endorse",
    );
    return btn;
  }

  function tipItem(t, can) {
    const status = h("span", { className: "muted", role: "status" });
    const reason = h("input", {
      type: "text",
      id: `report-reason-${t.id}`,
      maxlength: String(PEER_LIMITS.reason),
      placeholder: "What is wrong with it? (optional)",
    });
    const form = h(
      "form",
      { className: "report", hidden: true },
      h("label", { for: `report-reason-${t.id}`, className: "sr-only" }, "Reason"),
      reason,
      h("button", { type: "submit", className: "secondary small" }, "Send report"),
      h(
        "button",
        {
          type: "button",
          className: "link",
          onclick: () => {
            form.hidden = true;
            reportBtn.focus();
          },
        },
        "Cancel",
      ),
    );
    // The reason is optional: no `field`, it goes as typed.
    submitForm(form, {
      lock: form.elements,
      status,
      send: () => send({ type: "peer", op: "report", id: t.id, reason: reason.value }),
      onSaved: () => {
        status.textContent = "Reported. You will not see this tip again.";
        li.classList.add("reported");
        form.hidden = true;
        reportBtn.hidden = true;
      },
      keepLocked: true,
    });
    const reportBtn = h(
      "button",
      {
        type: "button",
        className: "link small report-open",
        dataset: { focus: `report:${t.id}` },
        "aria-label": `Report this tip by ${t.author}`,
        onclick: () => {
          form.hidden = false;
          reason.focus();
        },
      },
      "Report",
    );
    const li = h(
      "li",
      { className: "tip", dataset: { tip: t.id } },
      body(t.html),
      h(
        "p",
        { className: "tip-meta muted" },
        h("span", { className: "author" }, t.mine ? `${t.author} (you)` : t.author),
        t.endorsed ? [" · ", h("span", { className: "endorsed" }, t.endorsed)] : null,
        " ",
        t.mine ? null : reportBtn,
        can?.endorse && !t.endorsedByMe ? [" ", endorseButton(t, status)] : null,
      ),
      form,
      status,
    );
    return li;
  }

  // ---- accepted answers on this page ---------------------------------------------------------
  function answeredItem(a) {
    return h(
      "li",
      { className: "answered", dataset: { question: a.id } },
      a.questionHtml
        ? h("div", { className: "q" }, h("strong", {}, "Q:"), body(a.questionHtml))
        : null,
      h("div", { className: "a" }, h("strong", {}, "A:"), body(a.answerHtml)),
      h("p", { className: "muted small" }, `Answered by ${a.author}`),
    );
  }

  function answeredList(raw) {
    return listSection(
      h("h2", { className: "group", id: "answered-heading" }, "Answered on this page"),
      {
        items: pickAnswered(raw),
        list: { className: "answers", id: "answered" },
        render: answeredItem,
      },
    );
  }

  // ---- forms: share a tip, ask a question -----------------------------------------------------
  /** A textarea with a counter, "show my name", a submit button and a status line. */
  function writeForm({ id, label, hint, max, submit, op, done }) {
    const count = h("span", { className: "muted count", id: `${id}-count` }, countText("", max));
    const text = h("textarea", {
      id: `${id}-body`,
      rows: "3",
      maxlength: String(max),
      "aria-describedby": `${id}-count ${id}-hint`,
      oninput: () => {
        count.textContent = countText(text.value, max);
        onInput?.(text.value);
      },
      onkeydown: (ev) => {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
      },
    });
    const showName = h("input", { type: "checkbox", id: `${id}-show-name` });
    const nameLabel = h("span", {}, "Show my name");
    const status = h("p", { className: "muted", role: "status", id: `${id}-status` });
    const btn = h("button", { type: "submit", className: "primary", id: `${id}-send` }, submit);
    let onInput = null;
    const form = h(
      "form",
      { className: "peer-form", id: `${id}-form` },
      // The summary above says it; the label names the box for screen readers.
      h("label", { for: `${id}-body`, className: "sr-only" }, label),
      h("p", { className: "muted small", id: `${id}-hint` }, hint),
      text,
      h(
        "div",
        { className: "comment-actions" },
        h("label", { className: "check" }, showName, " ", nameLabel),
        count,
        btn,
      ),
      status,
    );
    submitForm(form, {
      field: text,
      empty: "Write something first.",
      lock: [btn, text],
      status,
      pending: "Sending…",
      send: (value) =>
        send({ type: "peer", op, pageKey: st.pageKey, body: value, show_name: showName.checked }),
      onSaved: () => {
        text.value = "";
        count.textContent = countText("", max);
        status.textContent = done;
        onInput?.("");
        void load();
      },
    });
    const el = h(
      "details",
      { className: "peer-write", id, hidden: true },
      h("summary", {}, label),
      form,
    );
    return {
      el,
      form,
      text,
      setName: (name) => (nameLabel.textContent = name ? `Show my name (${name})` : "Show my name"),
      onInput: (fn) => (onInput = fn),
    };
  }

  function shareForm() {
    const f = writeForm({
      id: "share-tip",
      label: "Share a tip",
      hint: "A short tip about this page for colleagues (Markdown). A reviewer checks it first.",
      max: PEER_LIMITS.tip,
      submit: "Send for review",
      op: "tip",
      done: "Thanks! Your tip shows here once a reviewer approves it.",
    });
    return f;
  }

  function askForm() {
    const f = writeForm({
      id: "ask",
      label: "Ask a question",
      hint: "Mentors and the app's owners get it; the answer comes back here.",
      max: PEER_LIMITS.question,
      submit: "Ask",
      op: "ask",
      done: "Sent. You will see the answer here under Your questions.",
    });
    const similar = h("div", { className: "similar", id: "similar", "aria-live": "polite" });
    f.form.insertBefore(similar, f.form.querySelector(".comment-actions"));
    let timer = 0;
    let seq = 0;
    let last = "";
    f.onInput((value) => {
      clearTimeout(timer);
      const q = similarQuery(value);
      if (!q) {
        last = "";
        seq++;
        similar.replaceChildren();
        return;
      }
      timer = setTimeout(async () => {
        if (q === last) return;
        last = q;
        const mine = ++seq;
        try {
          const res = await send({ type: "peer", op: "similar", pageKey: st.pageKey, q });
          if (mine !== seq) return;
          const items = pickAnswered(Array.isArray(res) ? res : (res?.results ?? res?.answers));
          similar.replaceChildren(
            ...(items.length
              ? [
                  h("p", { className: "small" }, "Answered before — does one of these help?"),
                  h("ul", { className: "answers", id: "similar-list" }, items.map(answeredItem)),
                ]
              : []),
          );
        } catch {
          if (mine === seq) similar.replaceChildren(); // a hint only: asking still works
        }
      }, SIMILAR_DEBOUNCE_MS);
    });
    return f;
  }

  // ---- your questions --------------------------------------------------------------------------
  function mineList(raw) {
    const badge = unreadBadge(unreadCount(raw));
    return listSection(
      h(
        "h2",
        { className: "group", id: "mine-heading" },
        "Your questions",
        badge ? [" ", h("span", { className: "badge unread", id: "unread-badge" }, badge)] : null,
      ),
      {
        items: pickMyQuestions(raw),
        list: { className: "questions", id: "my-questions" },
        render: myQuestion,
      },
    );
  }

  function myQuestion(q) {
    const answers = h(
      "ul",
      { className: "answers", hidden: q.unread },
      q.answers.map((a) => answerItem(q, a)),
    );
    const li = h(
      "li",
      { className: `question${q.unread ? " unread" : ""}`, dataset: { question: q.id } },
      body(q.html),
      h(
        "p",
        { className: "muted small q-status" },
        q.unread ? [h("span", { className: "badge unread" }, "New answer"), " "] : null,
        q.statusText,
      ),
      q.unread
        ? h(
            "button",
            {
              type: "button",
              className: "secondary small",
              dataset: { focus: `read:${q.id}` },
              onclick: async (ev) => {
                answers.hidden = false;
                ev.currentTarget.remove();
                answers.querySelector("button, a")?.focus();
                await send({ type: "peer", op: "read", id: q.id }).catch(() => {});
                void load();
              },
            },
            q.answers.length === 1 ? "Show the answer" : `Show the answers (${q.answers.length})`,
          )
        : null,
      answers,
      h(
        "p",
        { className: "small q-actions" },
        confirmButton({
          label: "Delete",
          ariaLabel: "Delete this question",
          question: "Delete this question and its answers?",
          focusKey: `delete-question:${q.id}`,
          run: async () => {
            await send({ type: "peer", op: "deletequestion", id: q.id });
            li.classList.add("deleted");
            void load();
          },
        }),
      ),
    );
    return li;
  }

  function answerItem(q, a) {
    const status = h("span", { className: "muted", role: "status" });
    return h(
      "li",
      { className: `answer${a.accepted ? " accepted" : ""}`, dataset: { answer: a.id } },
      body(a.html),
      h(
        "p",
        { className: "muted small" },
        `${a.author}${a.byMentor ? " (mentor)" : ""}`,
        a.accepted ? [" · ", h("strong", { className: "accepted-mark" }, "Accepted")] : null,
        " ",
        !q.accepted && a.id && q.status !== "hidden" && q.status !== "closed"
          ? h(
              "button",
              {
                type: "button",
                className: "secondary small accept",
                dataset: { focus: `accept:${a.id}` },
                // The button by reference: the event's currentTarget is null once it awaits
                // (it left a failed Accept disabled, with no way to try again).
                onclick: (ev) =>
                  sendWrite({
                    lock: [ev.currentTarget],
                    status,
                    send: () => send({ type: "peer", op: "accept", id: q.id, answer_id: a.id }),
                    onSaved: () => void load(),
                    keepLocked: true,
                  }),
              },
              "Accept this answer",
            )
          : null,
        status,
      ),
    );
  }

  // ---- your tips ---------------------------------------------------------------------------------
  /** Draws "Your tips" again; not while the author edits one (what they type stays) unless
   * `force` (their own save or delete). */
  function paintMyTips(force = false) {
    const box = st.parts?.myTips;
    if (!box) return;
    if (!force && box.querySelector("form.edit-tip:not([hidden])")) return;
    if (!(st.status === "ready" && peerCan(st.data).tip)) {
      box.replaceChildren();
      return;
    }
    const drawn = paintList(
      box,
      h("h2", { className: "group", id: "my-tips-heading" }, "Your tips"),
      {
        error: st.myTipsError,
        retry: () => loadMyTips(),
        items: st.myTips === null ? null : pickMyTips(st.myTips),
        loadingLabel: "Loading your tips",
        emptyId: "no-my-tips",
        emptyText: "You have not shared a tip yet.",
        list: { className: "tips", id: "my-tips" },
        render: myTipItem,
      },
    );
    if (drawn && st.focusAfter) {
      box.querySelector(`[data-focus="${CSS.escape(st.focusAfter)}"]`)?.focus();
      st.focusAfter = "";
    }
  }

  function myTipItem(t) {
    const status = h("p", { className: "muted", role: "status" }, st.tipNotes.get(t.id) ?? "");
    const view = body(t.html);
    const id = `edit-tip-${t.id}`;
    const text = h("textarea", {
      id,
      rows: "3",
      maxlength: String(PEER_LIMITS.tip),
      onkeydown: (ev) => {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
        if (ev.key === "Escape") {
          ev.stopPropagation();
          closeEdit();
        }
      },
    });
    const save = h(
      "button",
      { type: "submit", className: "primary small" },
      "Save and send for review",
    );
    const form = h(
      "form",
      { className: "peer-form edit-tip", hidden: true },
      h("label", { for: id }, "Your tip"),
      h(
        "p",
        { className: "muted small" },
        "An edited tip goes back to review: colleagues see it again once a reviewer approves it.",
      ),
      text,
      h(
        "div",
        { className: "comment-actions" },
        save,
        h(
          "button",
          { type: "button", className: "link small", onclick: () => closeEdit() },
          "Cancel",
        ),
      ),
    );
    submitForm(form, {
      field: text,
      empty: "Write something first.",
      lock: [save],
      status,
      pending: "Sending…",
      send: (value) => send({ type: "peer", op: "edittip", id: t.id, body: value }),
      onSaved: async () => {
        st.tipNotes.set(
          t.id,
          "Saved. It goes back to review and shows once a reviewer approves it.",
        );
        st.focusAfter = `edit-tip:${t.id}`;
        await loadMyTips(true);
        void load();
      },
    });
    const edit = h(
      "button",
      {
        type: "button",
        className: "link small edit",
        dataset: { focus: `edit-tip:${t.id}` },
        "aria-label": "Edit this tip",
        onclick: () => {
          text.value = t.body;
          form.hidden = false;
          edit.hidden = true;
          text.focus();
        },
      },
      "Edit",
    );
    function closeEdit() {
      form.hidden = true;
      edit.hidden = false;
      edit.focus();
    }
    return h(
      "li",
      { className: `tip my-tip ${t.status}`, dataset: { myTip: t.id } },
      view,
      h(
        "p",
        { className: "muted small tip-status" },
        h("span", { className: t.rejected ? "status rejected" : "status" }, t.statusText),
        t.where ? [" · ", t.where] : null,
        t.endorsed ? [" · ", h("span", { className: "endorsed" }, t.endorsed)] : null,
      ),
      h(
        "p",
        { className: "small tip-actions" },
        edit,
        " ",
        confirmButton({
          label: "Delete",
          ariaLabel: "Delete this tip",
          question: "Delete this tip?",
          focusKey: `delete-tip:${t.id}`,
          run: async () => {
            await send({ type: "peer", op: "deletetip", id: t.id });
            st.tipNotes.delete(t.id);
            await loadMyTips(true);
            void load();
          },
        }),
      ),
      form,
      status,
    );
  }

  // ---- your mentees (mentors) --------------------------------------------------------------------
  function paintMentees() {
    const box = st.parts?.mentees;
    if (!box) return;
    if (!(st.status === "ready" && peerCan(st.data).mentees)) {
      box.replaceChildren();
      return;
    }
    // Shown when the mentor has mentees; nothing to say otherwise (no emptyText).
    paintList(box, h("h2", { className: "group", id: "mentees-heading" }, "Your mentees"), {
      error: st.menteesError,
      items: st.mentees === null ? null : pickMentees(st.mentees),
      list: { className: "mentees", id: "mentees" },
      render: (m) =>
        h(
          "li",
          { className: "mentee", dataset: { mentee: m.id } },
          h("strong", { className: "name" }, m.username),
          h("p", { className: "muted small" }, m.line),
          m.questions.length
            ? h(
                "ul",
                { className: "questions", "aria-label": `Open questions of ${m.username}` },
                m.questions.map((q) =>
                  h("li", { className: "question", dataset: { question: q.id } }, body(q.html)),
                ),
              )
            : h("p", { className: "muted small" }, "No open questions."),
        ),
    });
  }

  /** A mentor's "Flag as wrong/outdated" on an aid of the app on screen: a small form with a
   * kind and a comment for the aid's owner (POST /api/v1/peer/aids/{id}/flag). */
  function flagBox(aidId) {
    const status = h("p", { className: "muted", role: "status", id: "flag-status" });
    const kind = h(
      "select",
      { id: "flag-kind" },
      FLAG_KINDS.map((k) => h("option", { value: k }, k === "wrong" ? "Wrong" : "Outdated")),
    );
    const comment = h("textarea", {
      id: "flag-comment",
      rows: "3",
      maxlength: String(PEER_LIMITS.flag),
      placeholder: "What is wrong or out of date? The aid's owner reads this.",
    });
    const btn = h("button", { type: "submit", className: "secondary small" }, "Send flag");
    const form = h(
      "form",
      { className: "peer-form", id: "flag-form" },
      h("label", { for: "flag-kind" }, "It is"),
      " ",
      kind,
      h("label", { for: "flag-comment", className: "sr-only" }, "Comment"),
      comment,
      h("div", { className: "comment-actions" }, btn),
    );
    submitForm(form, {
      field: comment,
      empty: "Say what is wrong first.",
      lock: [btn],
      status,
      pending: "Sending…",
      send: (value) =>
        send({ type: "peer", op: "flag", id: aidId, kind: kind.value, comment: value }),
      onSaved: () => {
        comment.value = "";
        status.textContent = "Flagged. The aid's owner has been told.";
      },
    });
    return h(
      "details",
      { className: "peer-write flag", id: "flag-aid" },
      h("summary", {}, "Flag as wrong/outdated"),
      form,
      status,
    );
  }

  // ---- answer (mentors and owners, from their own panel) ---------------------------------------
  function paintInbox() {
    const box = st.parts?.inbox;
    if (!box) return;
    const can = peerCan(st.status === "ready" ? st.data : null);
    if (!can.answer) {
      box.replaceChildren();
      return;
    }
    const ctx = st.data?.context?.id ?? st.view?.contexts?.[0]?.id ?? "";
    paintList(box, h("h2", { className: "group", id: "inbox-heading" }, "Questions to answer"), {
      error: st.inboxError,
      items:
        st.inbox === null
          ? null
          : inboxForPage(st.inbox, st.data?.app?.id ?? st.view?.app?.id, ctx),
      emptyId: "no-inbox",
      emptyText: "No open questions about this app.",
      list: { className: "questions", id: "inbox" },
      render: inboxItem,
    });
  }

  function inboxItem(q) {
    const id = `answer-${q.id}`;
    const status = h("p", { className: "muted", role: "status" });
    const text = h("textarea", {
      id,
      rows: "3",
      maxlength: String(PEER_LIMITS.answer),
      onkeydown: (ev) => {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
      },
    });
    const btn = h("button", { type: "submit", className: "primary small" }, "Send answer");
    const form = h(
      "form",
      { className: "peer-form" },
      h("label", { for: id }, "Your answer"),
      text,
      h("div", { className: "comment-actions" }, btn),
      status,
    );
    // An empty answer only takes the focus back to the box (no `empty` text).
    submitForm(form, {
      field: text,
      lock: [btn],
      status,
      pending: "Sending…",
      send: (value) => send({ type: "peer", op: "answer", id: q.id, body: value }),
      onSaved: () => {
        // The question stays here with this note (it leaves the list on the next read).
        status.textContent = "Answer sent. The asker sees it in their panel.";
        form.replaceWith(status);
        status.tabIndex = -1;
        status.focus();
      },
    });
    return h(
      "li",
      { className: "question", dataset: { inbox: q.id } },
      body(q.html),
      h("p", { className: "muted small" }, `${q.asker}${q.here ? " · on this page" : ""}`),
      form,
    );
  }

  // ---- what the rest of the panel borrows ------------------------------------------------------
  const current = (view) =>
    st.status === "ready" && view?.pageKey === st.pageKey ? st.data : null;

  return {
    sync,
    /** Read the page's peer learning again (the panel shows again: answers may have come). */
    refresh() {
      if (st.pageKey && st.status !== "loading") void load();
    },
    /** The section to place under the aids (the same element each time), or null. */
    section(view) {
      if (!st.el || view?.pageKey !== st.pageKey) return null;
      // The name the server shows when "show my name" is ticked (else the account name).
      const me = st.data?.me?.name;
      const name = typeof me === "string" && me.trim() ? me.trim() : (view?.user ?? "");
      st.parts.share.setName(name);
      st.parts.ask.setName(name);
      return st.el;
    },
    /** aid id → "Recommended by <mentor>". */
    recommended: (view) => recommendedBy(current(view)?.recommendations),
    /** Recommended aids not in the page's list. */
    extraRecommended: (view, aids) => extraRecommended(current(view)?.recommendations, aids),
    /** My paired mentors for this app (shown first under people), and the other people. */
    people(view, mentors) {
      const mine = pickMyMentors(current(view)?.my_mentors, view?.app?.name);
      return { mine, others: otherMentors(mentors, mine) };
    },
    contact: (id) => send({ type: "peer", op: "contact", id }).catch(() => {}),
    /** A mentor's Flag action for an aid opened on this page, or null when not offered. */
    flagBox: (view, aidId) => (peerCan(current(view)).flag ? flagBox(aidId) : null),
    /** Does focus sit in the section (the panel restores it after re-rendering)? */
    holds: (el) => Boolean(st.el && el && st.el.contains(el)),
  };
}
