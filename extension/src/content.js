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
  const POLL_MS = 500; // History API changes are invisible to the isolated world: poll cheaply
  const DEBOUNCE_MS = 250;

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

  let last = "";
  let timer = 0;
  function signature() {
    return `${location.href}\n${document.title}`;
  }
  function report(force) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const sig = signature();
      if (!force && sig === last) return;
      last = sig;
      post({ type: "page-changed", page: page() });
    }, DEBOUNCE_MS);
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
    }, DEBOUNCE_MS);
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

  const onNavigate = () => report(false);
  const onVisible = () => {
    if (document.visibilityState === "visible") report(true);
  };
  const poll = setInterval(() => {
    if (signature() !== last) report(false);
  }, POLL_MS);
  addEventListener("popstate", onNavigate);
  addEventListener("hashchange", onNavigate);
  globalThis.navigation?.addEventListener?.("navigatesuccess", onNavigate);
  document.addEventListener("visibilitychange", onVisible);
  addEventListener("focus", onVisible);
  document.addEventListener("selectionchange", onSelection);

  function stop() {
    clearInterval(poll);
    clearTimeout(timer);
    clearTimeout(selTimer);
    removeEventListener("popstate", onNavigate);
    removeEventListener("hashchange", onNavigate);
    globalThis.navigation?.removeEventListener?.("navigatesuccess", onNavigate);
    document.removeEventListener("visibilitychange", onVisible);
    removeEventListener("focus", onVisible);
    document.removeEventListener("selectionchange", onSelection);
  }

  report(true);
})();
