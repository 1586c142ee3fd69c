// Inflow content script (classic script, self-contained). It only reads the page and posts
// messages to the service worker: URL, title, h1-h3 headings, the selection, and whether given
// CSS selectors are present. It writes nothing to the DOM.
(() => {
  "use strict";
  if (globalThis.__inflowContent) return; // injected twice (static + dynamic): run once
  globalThis.__inflowContent = true;

  const MAX_HEADINGS = 20;
  const MAX_HEADING = 300;
  const MAX_SELECTION = 500;
  // How a navigation is noticed: hashchange/popstate; the Navigation API's currententrychange
  // (pushState/replaceState, which fire no event an extension sees otherwise); a change of
  // <title>; and, where none of these fire (no Navigation API), a cheap poll.
  const POLL_MS = 250;
  // Once noticed, the page is read when it has been quiet for SETTLE_MS (an SPA renders its new
  // title and headings right after pushState), but never later than MAX_WAIT_MS after the first
  // change: the panel must follow within ~150 ms of a navigation.
  const SETTLE_MS = 25;
  const MAX_WAIT_MS = 100;
  const SELECTION_MS = 250;

  const clean = (s, max) =>
    String(s || "")
      .replace(/\s+/g, " ")
      .trim()
      .slice(0, max);

  function selectionText() {
    return clean(String(getSelection() || ""), MAX_SELECTION);
  }

  function page() {
    const headings = [];
    for (const h of document.querySelectorAll("h1, h2, h3")) {
      const t = clean(h.textContent, MAX_HEADING);
      if (t) headings.push(t);
      if (headings.length >= MAX_HEADINGS) break;
    }
    return {
      url: location.href,
      title: clean(document.title, 1024),
      headings,
      selection: selectionText(),
    };
  }

  function post(msg) {
    try {
      chrome.runtime.sendMessage(msg).catch(() => {});
    } catch {
      // Extension reloaded or updated: this orphaned script stops reporting.
      stop();
    }
  }

  let last = ""; // the signature last reported
  let pending = ""; // the signature waiting to be reported ("" = none)
  let firstChangeAt = 0;
  let timer = 0;
  function signature() {
    return `${location.href}\n${document.title}`;
  }
  function send() {
    clearTimeout(timer);
    timer = 0;
    pending = "";
    last = signature();
    post({ type: "page-changed", page: page() });
  }
  /** Something may have changed: report once the page is quiet (or MAX_WAIT_MS passed). A check
   * that finds the same pending change does not push the report back (a poll tick used to). */
  function check() {
    const sig = signature();
    if (sig === last && !pending) return;
    if (sig === pending) return;
    const now = Date.now();
    if (!pending) firstChangeAt = now;
    pending = sig;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(SETTLE_MS, firstChangeAt + MAX_WAIT_MS - now));
    timer = setTimeout(() => {
      if (signature() === last) {
        pending = ""; // changed and changed back: nothing to report
        timer = 0;
      } else send();
    }, wait);
  }

  let lastSelection = "";
  let selTimer = 0;
  function onSelection() {
    clearTimeout(selTimer);
    selTimer = setTimeout(() => {
      const s = selectionText();
      if (s === lastSelection) return;
      lastSelection = s;
      post({ type: "selection-changed", selection: s });
    }, SELECTION_MS);
  }

  // The worker asks: "what page is this?" (tab switch) and "are these selectors present?"
  chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
    if (sender.id !== chrome.runtime.id || !msg || typeof msg !== "object") return false;
    if (msg.type === "collect") {
      sendResponse({ page: page() });
    } else if (msg.type === "probe" && Array.isArray(msg.selectors)) {
      const present = {};
      for (const sel of msg.selectors.slice(0, 50)) {
        try {
          present[sel] = typeof sel === "string" && document.querySelector(sel) !== null;
        } catch {
          present[sel] = false; // invalid selector
        }
      }
      sendResponse({ present, url: location.href });
    }
    return false;
  });

  // A navigate event comes before the URL changes: look again once the page has had its turn.
  const onNavigate = () => check();
  const onNavigateStart = () => setTimeout(check, 0);
  // Back to this tab (visibilitychange and focus both fire): report it again, once.
  const onVisible = () => {
    if (document.visibilityState !== "visible") return;
    if (!pending) last = ""; // unchanged, but the worker may be following another tab
    check();
  };
  const poll = setInterval(check, POLL_MS);
  const titles =
    typeof MutationObserver === "function" ? new MutationObserver(() => check()) : null;
  titles?.observe(document.head ?? document.documentElement, {
    subtree: true,
    childList: true,
    characterData: true,
  });
  const nav = globalThis.navigation;
  addEventListener("popstate", onNavigate);
  addEventListener("hashchange", onNavigate);
  nav?.addEventListener?.("currententrychange", onNavigate);
  nav?.addEventListener?.("navigate", onNavigateStart);
  document.addEventListener("visibilitychange", onVisible);
  addEventListener("focus", onVisible);
  document.addEventListener("selectionchange", onSelection);

  function stop() {
    clearInterval(poll);
    clearTimeout(timer);
    clearTimeout(selTimer);
    titles?.disconnect();
    removeEventListener("popstate", onNavigate);
    removeEventListener("hashchange", onNavigate);
    nav?.removeEventListener?.("currententrychange", onNavigate);
    nav?.removeEventListener?.("navigate", onNavigateStart);
    document.removeEventListener("visibilitychange", onVisible);
    removeEventListener("focus", onVisible);
    document.removeEventListener("selectionchange", onSelection);
  }

  send(); // at document_end (after DOMContentLoaded handlers): the page is there, report it now
})();
