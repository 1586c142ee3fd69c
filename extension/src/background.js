// Inflow service worker. Every listener is registered synchronously at the top level; work waits
// on one init promise; all state lives in chrome.storage (the worker can be stopped at any time).

import {
  FLUSH_DELAY_MS,
  PENDING_SEARCH_KEY,
  nextDue,
  scopeOf,
  searchAnswered,
  searchSettle,
  shownEvents,
} from "./lib/analytics.js";
import { api, ApiError, busyGate } from "./lib/api.js";
import {
  AuthError,
  Offline,
  SessionExpired,
  SignedOut,
  getAccessToken,
  loadSettings,
  refresh,
  signIn,
  signOut,
  userName,
} from "./lib/auth.js";
import { Busy } from "./lib/backoff.js";
import { openPanelOnActionClick } from "./lib/browser.js";
import { chromeLocal, createEventQueue, hostOf } from "./lib/events.js";
import { checkMessage } from "./lib/messages.js";
import {
  PATHS_KEY,
  cacheEntry,
  cachedMine,
  normalise,
  ownerOf,
  pathsRequest,
  withStepDone,
} from "./lib/paths.js";
import { needsPage, peerRequest } from "./lib/peer.js";
import {
  VOTE_HOLD_MS,
  dueVotes,
  enqueue,
  holdVote,
  prune,
  takeVote,
  without,
} from "./lib/queue.js";
import { compileRules, matchPage } from "./lib/rules.js";
import {
  K,
  getLocal,
  getSession,
  removeSession,
  restrictSession,
  setLocal,
  setSession,
  updateKey,
} from "./lib/storage.js";
import { jwtClaims } from "./lib/tokens.js";
import { INITIAL, keptSuggestion, recall, reduce, remember } from "./lib/viewmodel.js";

const EXT_ORIGIN = new URL(chrome.runtime.getURL("")).origin;
const RULES_TTL_MS = 5 * 60 * 1000;
const DYNAMIC_SCRIPT_ID = "inflow-mapped-apps";
const STATIC_ORIGINS = new Set(["http://127.0.0.1/*", "http://localhost/*"]);
const EVENTS_TIMEOUT_MS = 10_000;
const TOKEN_RETRY_MS = 30_000;

// ---- analytics queue (state in storage.local; see src/lib/events.js) --------------------------
let lastEventToken = null; // the token of the last batch sent, for a refresh after a 401
const events = createEventQueue({
  storage: chromeLocal(),
  fetch: (url, init) =>
    fetch(url, {
      ...init,
      credentials: "omit",
      cache: "no-store",
      signal: AbortSignal.timeout(EVENTS_TIMEOUT_MS),
    }),
  getToken: eventToken,
  // Read at each send: the server URL is a setting (tests set it per run, after start-up).
  apiBase: async () => (await loadSettings()).values.serverUrl,
  gate: busyGate(), // a 429 on any call holds the batches too (and the reverse)
});

// ---- listeners (top level, synchronous) ----------------------------------------------------
chrome.runtime.onInstalled.addListener(() => void run(syncContentScripts));
chrome.runtime.onStartup.addListener(() => void run(syncContentScripts));
chrome.runtime.onMessage.addListener(dispatch);
// The toolbar button (and its _execute_action shortcut) opens the side panel or sidebar.
openPanelOnActionClick();
chrome.tabs.onActivated.addListener(({ tabId }) => void run(() => followTab(tabId)));
chrome.tabs.onRemoved.addListener((tabId) => void run(() => forgetTab(tabId)));
chrome.windows.onFocusChanged.addListener((windowId) => void run(() => followWindow(windowId)));
chrome.permissions.onAdded.addListener(() => void run(syncContentScripts));
chrome.permissions.onRemoved.addListener(() => void run(syncContentScripts));
chrome.storage.onChanged.addListener((changes, area) => {
  const c = changes[K.settings];
  const changed = c && JSON.stringify(c.oldValue ?? {}) !== JSON.stringify(c.newValue ?? {});
  if ((area === "local" && changed) || area === "managed") void run(onSettingsChanged);
  // Signed in or tokens refreshed: send what waited for a token.
  if (area === "session" && changes[K.tokens]?.newValue) scheduleFlush(0);
});

// ---- init ----------------------------------------------------------------------------------
const ready = init();
void run(resumeAnalytics); // a (re)started worker sends what an earlier one left queued

async function init() {
  await restrictSession(); // content scripts must never read the tokens
}

async function run(fn) {
  try {
    await ready;
    return await fn();
  } catch (err) {
    console.warn("inflow:", err);
    return undefined;
  }
}

// ---- the one message dispatcher ------------------------------------------------------------
const HANDLERS = {
  "page-changed": onPageChanged,
  "selection-changed": onSelectionChanged,
  "panel-hello": onPanelHello,
  "sign-in": onSignIn,
  "sign-out": onSignOut,
  retry: () => refreshView({ forceRules: true }).then(() => ({})),
  search: onSearch,
  "get-aid": onGetAid,
  feedback: onFeedback,
  shown: onShown,
  "link-followed": onLinkFollowed,
  peer: onPeer,
  paths: onPaths,
};

function dispatch(msg, sender, sendResponse) {
  const verdict = checkMessage(msg, sender, {
    runtimeId: chrome.runtime.id,
    extOrigin: EXT_ORIGIN,
  });
  if (!verdict.ok) {
    console.warn("inflow: dropped message:", verdict.reason, msg?.type);
    return false;
  }
  ready
    .then(() => HANDLERS[msg.type](msg, sender))
    .then(
      (data) => sendResponse({ ok: true, data: data ?? null }),
      async (err) => {
        if (err instanceof SessionExpired) await emitView({ type: "expired" }).catch(() => {});
        sendResponse({ ok: false, error: describe(err) });
      },
    );
  return true; // respond asynchronously
}

function describe(err) {
  if (err instanceof SignedOut) return { kind: "signed-out", message: "Sign in to see job aids." };
  if (err instanceof Busy)
    return { kind: "busy", retryAt: err.retryAt, retryInMs: err.retryInMs, message: err.message };
  if (err instanceof SessionExpired)
    return { kind: "expired", message: "Your session expired. Sign in again." };
  if (err instanceof Offline)
    return { kind: "offline", message: "The Inflow server is unreachable." };
  if (err instanceof AuthError) return { kind: "auth", message: err.message };
  if (err instanceof ApiError) return { kind: "http", status: err.status, message: err.message };
  return { kind: "error", message: String(err?.message ?? err) };
}

// ---- view (storage.session "view", rendered by the panel) -----------------------------------
function emitView(event) {
  return updateKey("session", K.view, (prev) =>
    reduce(prev ?? INITIAL, { at: Date.now(), ...event }),
  );
}

// ---- tabs: the panel follows the last active web tab ----------------------------------------
const tabKey = (tabId) => `${K.tabPrefix}${tabId}`;
const pageKeyOf = (tabId, page) => `${tabId}\n${page.url}\n${page.title}`;

async function onPageChanged(msg, sender) {
  const tab = sender.tab;
  const page = { ...msg.page, windowId: tab.windowId, at: Date.now() };
  // Speed: one storage read and one write before the request (each is an IPC hop of a few ms).
  const got = await chrome.storage.session.get([K.focus, K.panelTabs]);
  const focus = got[K.focus] ?? null;
  const panelTabs = got[K.panelTabs] ?? [];
  if (tab.active || !focus || focus.tabId === tab.id || panelTabs.includes(focus.tabId)) {
    const next = { tabId: tab.id, windowId: tab.windowId };
    await setSession({ [tabKey(tab.id)]: page, [K.focus]: next, [K.lastWeb]: next });
    await refreshView({ focus: next, page });
  } else await setSession({ [tabKey(tab.id)]: page });
  return {};
}

async function onSelectionChanged(msg, sender) {
  const key = tabKey(sender.tab.id);
  const known = await getSession(key);
  if (known) await setSession({ [key]: { ...known, selection: msg.selection } });
  const focus = await getSession(K.focus);
  if (focus?.tabId === sender.tab.id)
    await emitView({ type: "selection", selection: msg.selection });
  return {};
}

async function collect(tabId) {
  try {
    const res = await chrome.tabs.sendMessage(tabId, { type: "collect" }, { frameId: 0 });
    return res?.page ?? null;
  } catch {
    return null; // no content script there: a site Inflow may not read, or a browser page
  }
}

/** A tab became active. Web pages with our content script become the panel's page; our own
 * pages (the panel opened in a tab) are ignored; any other tab shows "nothing here". */
async function followTab(tabId) {
  const panelTabs = await getSession(K.panelTabs, []);
  if (panelTabs.includes(tabId)) return;
  const page = await collect(tabId);
  let tab;
  try {
    tab = await chrome.tabs.get(tabId);
  } catch {
    return;
  }
  const url = tab.url || tab.pendingUrl || "";
  if (url.startsWith(`${EXT_ORIGIN}/`)) return;
  // Only tabs of normal windows: not the sign-in popup of launchWebAuthFlow, not devtools.
  const win = await chrome.windows.get(tab.windowId).catch(() => null);
  if (win?.type !== "normal") return;
  if (page)
    await setSession({ [tabKey(tabId)]: { ...page, windowId: tab.windowId, at: Date.now() } });
  else await removeSession(tabKey(tabId));
  await setFocus(tabId, tab.windowId, Boolean(page));
  await refreshView();
}

/** `focus` is the tab the panel shows; `lastWeb` the last one that had a readable page. */
async function setFocus(tabId, windowId, hasPage) {
  const focus = { tabId, windowId };
  await setSession(hasPage ? { [K.focus]: focus, [K.lastWeb]: focus } : { [K.focus]: focus });
}

async function followWindow(windowId) {
  if (windowId === chrome.windows.WINDOW_ID_NONE) return;
  const [tab] = await chrome.tabs.query({ active: true, windowId });
  if (tab?.id !== undefined) await followTab(tab.id);
}

async function forgetTab(tabId) {
  await removeSession(tabKey(tabId));
  await updateKey("session", K.panelTabs, (list) => (list ?? []).filter((id) => id !== tabId), []);
  const [focus, lastWeb] = [await getSession(K.focus), await getSession(K.lastWeb)];
  if (focus?.tabId === tabId) {
    await setSession({ [K.focus]: lastWeb?.tabId === tabId ? null : lastWeb });
    await refreshView();
  }
}

async function onPanelHello(msg) {
  if (msg.tabId !== null) {
    await updateKey(
      "session",
      K.panelTabs,
      (list) => [...new Set([...(list ?? []), msg.tabId])],
      [],
    );
  }
  const focus = await getSession(K.focus);
  if (!focus || focus.tabId === msg.tabId) {
    // No page yet, or this panel tab got activated before it said hello: show the last web page
    // seen (or, on a fresh start, the active tab of the last focused window).
    const fallback = (await getSession(K.lastWeb)) ?? (await newestPageTab());
    if (fallback) await setSession({ [K.focus]: fallback });
    else {
      const [tab] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
      if (tab?.id !== undefined && tab.id !== msg.tabId) await followTab(tab.id);
    }
  }
  await refreshView();
  return {};
}

/** The tab whose content script reported most recently. */
async function newestPageTab() {
  const all = await chrome.storage.session.get(null);
  let best = null;
  for (const [key, value] of Object.entries(all)) {
    if (!key.startsWith(K.tabPrefix) || !value) continue;
    if (!best || (value.at ?? 0) > best.at) {
      best = {
        tabId: Number(key.slice(K.tabPrefix.length)),
        windowId: value.windowId,
        at: value.at ?? 0,
      };
    }
  }
  return best && { tabId: best.tabId, windowId: best.windowId };
}

// ---- rules ---------------------------------------------------------------------------------
let compiled = null; // cache of the compiled rules, keyed by version (rebuilt after a restart)
let rulesMem = null; // what storage.local holds under K.rules (read once per worker life)

async function loadRules({ force = false } = {}) {
  let cached = rulesMem ?? (await getLocal(K.rules));
  const stale = !cached || Date.now() - cached.fetchedAt > RULES_TTL_MS;
  if (force || stale) {
    try {
      const doc = await api("/rules");
      cached = { version: doc.version, fetchedAt: Date.now(), doc };
      await setLocal({ [K.rules]: cached });
      rulesMem = cached;
    } catch (err) {
      if (!(err instanceof Offline) || !cached) throw err; // offline: keep using the cache
    }
  }
  rulesMem = cached;
  if (!compiled || compiled.version !== cached.version) compiled = compileRules(cached.doc);
  return compiled;
}

// ---- the panel's page: match locally, ask the server only for mapped pages ------------------
// The page the latest refresh is for: an answer for an older page is dropped. Memory is enough:
// every change of the panel's page goes through refreshView, and a stopped worker's requests die
// with it.
let currentKey = null;

/** Speed (docs/extension.md): a navigation reaches the panel within ~150 ms, so nothing waits
 * here that need not: callers pass the focus and page they just wrote, storage reads are batched,
 * the "loading" view and the offline copy of the results are written beside the request. */
async function refreshView({ forceRules = false, focus: knownFocus, page: knownPage } = {}) {
  const keys = [K.tokens, K.expired, ...(knownFocus ? [] : [K.focus])];
  const got = await chrome.storage.session.get(keys);
  const tokens = got[K.tokens];
  const focus = knownFocus ?? got[K.focus] ?? null;
  const page =
    knownPage ??
    (focus
      ? ((await chrome.storage.session.get(tabKey(focus.tabId)))[tabKey(focus.tabId)] ?? null)
      : null);
  const pageKey = tokens && page ? pageKeyOf(focus.tabId, page) : null;
  currentKey = pageKey;
  if (!tokens) return emitView({ type: got[K.expired] ? "expired" : "signed-out" });
  const emit = (event) => emitView({ user: userName(tokens), ...event });
  if (!page) return emit({ type: "no-page" });
  try {
    const rules = await loadRules({ force: forceRules });
    const present = await probeSelectors(focus.tabId, rules, page);
    const local = matchPage(rules, page, present);
    if (!local.app) {
      // Not a mapped page: its URL, title and text never leave the browser.
      return emit({ type: "unmapped", pageKey, page });
    }
    const loading = emit({ type: "loading", pageKey, page }); // updateKey keeps the order
    loading.catch(() => {}); // awaited below; not an unhandled rejection if the request fails
    const suggestion = await api("/suggest", {
      method: "POST",
      body: {
        url: page.url,
        title: page.title,
        headings: page.headings,
        selection: page.selection || undefined,
        ...(present ? { selectors: present } : {}),
      },
    });
    await loading;
    if (currentKey !== pageKey) return undefined;
    await emit({ type: "loaded", pageKey, page, suggestion });
    await updateKey("local", K.lastResults, (list) =>
      remember(list, { url: page.url, at: Date.now(), suggestion: keptSuggestion(suggestion) }),
    );
    await sendHeldVotes();
    await flushQueue();
  } catch (err) {
    if (err instanceof Busy) {
      // Told to wait (429): say so calmly, keep what is shown, try once more when the time is up.
      retryViewAt(err.retryAt);
      const last = recall(await getLocal(K.lastResults), page.url);
      return emit({ type: "busy", pageKey, page, last, retryAt: err.retryAt });
    }
    if (err instanceof Offline) {
      const last = recall(await getLocal(K.lastResults), page.url);
      return emit({ type: "offline", pageKey, page, last });
    }
    if (err instanceof SessionExpired) return emit({ type: "expired" });
    if (err instanceof SignedOut) return emit({ type: "signed-out" });
    throw err;
  }
  return undefined;
}

// One timer: a later 429 replaces it, so there is never more than one retry waiting. Lost when
// the worker stops; the next page event refreshes the view anyway (and waits if still busy).
let viewRetryTimer = 0;
function retryViewAt(at) {
  clearTimeout(viewRetryTimer);
  viewRetryTimer = setTimeout(() => void run(refreshView), Math.max(0, at - Date.now()) + 50);
}

/** Which context selectors are present in the tab (asked only for contexts whose URL rule
 * matched); null when there are none to ask about or the tab did not answer. */
async function probeSelectors(tabId, rules, page) {
  const selectors = rules.selectorsFor(page.url);
  if (!selectors.length) return null;
  try {
    const res = await chrome.tabs.sendMessage(tabId, { type: "probe", selectors }, { frameId: 0 });
    if (res?.url !== page.url) return null;
    return selectors.filter((s) => res.present?.[s] === true);
  } catch {
    return null;
  }
}

// ---- panel requests ------------------------------------------------------------------------
async function onSignIn() {
  const user = await signIn();
  await track("signed_in");
  scheduleFlush(0);
  await loadRules({ force: true });
  await refreshView();
  return { user };
}

async function onSignOut() {
  // Best effort: what this user did leaves with this user's token (a short wait at most).
  const leave = async () => {
    await sendHeldVotes({ holdMs: 0 }); // a vote waiting for a comment goes now, without one
    await flushEvents();
  };
  await Promise.race([leave(), new Promise((resolve) => setTimeout(resolve, 3000))]);
  await signOut();
  await removeSession(PATHS_KEY); // the learner's paths leave with the learner
  await setLocal({ [K.lastResults]: null });
  await emitView({ type: "signed-out" });
  return {};
}

async function onSearch(msg) {
  const q = new URLSearchParams({ q: msg.q });
  if (msg.app) q.set("app", msg.app);
  if (msg.cursor) q.set("cursor", msg.cursor);
  const scope = scopeOf(await getSession(K.view)); // the page the user searched from
  const res = await api(`/search?${q}`);
  const query = msg.q.trim();
  if (!msg.cursor && query) {
    // One event per settled query, not one per keystroke (see src/lib/analytics.js).
    const count = Number.isInteger(res?.total) ? res.total : (res?.results?.length ?? 0);
    await noteSearch({ query, result_count: count, ...(scope ? { app: scope.app } : {}) });
  }
  return res;
}

/** Peer learning (src/lib/peer.js). A page operation goes out with the URL and title of the
 * page the panel shows (`pageKey`), read here from storage.session; a page that changed since,
 * or one that is not mapped, is refused without a request (its URL never leaves the browser). */
async function onPeer(msg) {
  let page = null;
  if (needsPage(msg.op)) {
    const got = await chrome.storage.session.get([K.focus, K.view]);
    const focus = got[K.focus];
    const view = got[K.view];
    const tabPage = focus ? await getSession(tabKey(focus.tabId)) : null;
    const mapped = view && ["ready", "busy", "offline"].includes(view.state) && view.app;
    if (!tabPage || !mapped || view.pageKey !== msg.pageKey)
      throw new Error("The page changed. Try again on this page.");
    if (pageKeyOf(focus.tabId, tabPage) !== msg.pageKey)
      throw new Error("The page changed. Try again on this page.");
    page = tabPage;
  }
  const req = peerRequest(msg, page);
  return api(req.path, { method: req.method, body: req.body });
}

/** Learning paths (src/lib/paths.js). "mine" answers from storage.session while the cached list
 * is this person's and under a minute old (offline or busy: any age); "done" posts the step, then
 * reads the list afresh (or, failing that, ticks the step in the cached one) and caches it. */
async function onPaths(msg) {
  const [tokens, { values }] = await Promise.all([getSession(K.tokens), loadSettings()]);
  const owner = ownerOf(jwtClaims(tokens?.access_token ?? ""), values.serverUrl);
  const saved = () => getSession(PATHS_KEY);
  if (msg.op === "mine") {
    const fresh = msg.force ? null : cachedMine(await saved(), owner, Date.now());
    if (fresh) return { paths: fresh };
    try {
      const entry = cacheEntry(owner, await api("/paths/mine"), Date.now());
      await setSession({ [PATHS_KEY]: entry });
      return { paths: entry.data };
    } catch (err) {
      const old = cachedMine(await saved(), owner, Date.now(), { stale: true });
      if ((err instanceof Offline || err instanceof Busy) && old)
        return { paths: old, stale: true };
      throw err;
    }
  }
  const req = pathsRequest(msg);
  await api(req.path, { method: req.method, body: req.body });
  let list;
  try {
    list = normalise(await api("/paths/mine"));
  } catch {
    const old = cachedMine(await saved(), owner, Date.now(), { stale: true }) ?? [];
    list = withStepDone(old, msg.path, msg.step, new Date().toISOString());
  }
  await setSession({ [PATHS_KEY]: cacheEntry(owner, list, Date.now()) });
  return { paths: list };
}

async function onGetAid(msg) {
  const aid = await api(`/aids/${encodeURIComponent(msg.id)}`);
  await settleSearch({ force: true }); // an aid opened from the results: that search settled
  await track("aid_opened", { aid: msg.id, ...scopeOf(await getSession(K.view)) });
  return aid;
}

/** A vote: held while the panel offers a comment (`mode: "hold"`), sent with the comment (no
 * mode), or sent as it is if still held (`mode: "release"`: Skip, leaving the aid, panel closed).
 * One vote makes one feedback row and one `aid_rated` event, comment or not. */
async function onFeedback(msg) {
  if (msg.mode === "hold") {
    const vote = await voteHere(msg.aid_id, msg.helpful);
    await updateKey("local", K.heldVotes, (list) => holdVote(list, vote, Date.now()), []);
    void armVoteTimer();
    return { held: true };
  }
  let held = null;
  await updateKey(
    "local",
    K.heldVotes,
    (list) => {
      const taken = takeVote(list, msg.aid_id);
      held = taken.vote;
      return taken.rest;
    },
    [],
  );
  if (msg.mode === "release") return held ? sendVote(held) : { sent: false };
  // Sent with a comment: the URL and app are those of the page the vote was made on.
  const vote = held ?? (await voteHere(msg.aid_id, msg.helpful));
  return sendVote({ ...vote, helpful: msg.helpful }, msg.comment);
}

/** The vote's facts as of now. Feedback carries the page URL only when the page is mapped (the
 * server already knows it); `app` only from a mapped page's view (never an unmapped one). */
async function voteHere(aidId, helpful) {
  const view = await getSession(K.view);
  const focus = await getSession(K.focus);
  const page = focus ? await getSession(tabKey(focus.tabId)) : null;
  const mapped = view?.state === "ready" && page && view.pageKey === pageKeyOf(focus.tabId, page);
  const scope = scopeOf(view);
  return {
    aid_id: aidId,
    helpful,
    ...(mapped ? { url: page.url } : {}),
    ...(scope ? { app: scope.app } : {}),
    // the page context too: colleagues' votes rank aids per context (usage signal)
    ...(scope?.context ? { context: scope.context } : {}),
  };
}

async function sendVote(vote, rawComment) {
  const comment = rawComment?.trim() || undefined;
  const body = {
    aid_id: vote.aid_id,
    helpful: vote.helpful,
    ...(vote.url ? { url: vote.url } : {}),
    ...(comment ? { comment } : {}),
  };
  await track("aid_rated", {
    aid: vote.aid_id,
    helpful: vote.helpful,
    comment,
    ...(vote.app ? { app: vote.app } : {}),
    ...(vote.context ? { context: vote.context } : {}),
  });
  try {
    await api("/feedback", { method: "POST", body });
    return { queued: false };
  } catch (err) {
    if (!(err instanceof Offline)) throw err;
    await updateKey("local", K.queue, (q) =>
      enqueue(prune(q, Date.now()), { kind: "feedback", key: vote.aid_id, body }, Date.now()),
    );
    return { queued: true };
  }
}

/** Send the votes held for VOTE_HOLD_MS (or all, `holdMs: 0`) without a comment: the panel that
 * held them closed, or the worker stopped before their timer. Needs a signed-in user. */
async function sendHeldVotes({ holdMs = VOTE_HOLD_MS } = {}) {
  if (!(await getSession(K.tokens))) return;
  let due = [];
  await updateKey(
    "local",
    K.heldVotes,
    (list) => {
      const split = dueVotes(list, Date.now(), holdMs);
      due = split.due;
      return split.rest;
    },
    [],
  );
  for (const vote of due) {
    try {
      await sendVote(vote);
    } catch (err) {
      console.warn("inflow: held vote dropped:", err); // e.g. the aid is gone (404)
    }
  }
  await armVoteTimer();
}

let voteTimer = 0;
async function armVoteTimer() {
  clearTimeout(voteTimer);
  const held = await getLocal(K.heldVotes, []);
  if (!held.length) return;
  const first = Math.min(...held.map((v) => v.held_at));
  const wait = Math.max(0, first + VOTE_HOLD_MS - Date.now()) + 50;
  voteTimer = setTimeout(() => void run(sendHeldVotes), wait);
}

async function flushQueue() {
  const queue = prune(await getLocal(K.queue, []), Date.now());
  if (!queue.length) return;
  const sent = [];
  for (const ev of queue) {
    try {
      if (ev.kind === "feedback") await api("/feedback", { method: "POST", body: ev.body });
      sent.push(ev);
    } catch (err) {
      if (err instanceof Offline) break;
      sent.push(ev); // rejected for good (e.g. aid gone): drop it
    }
  }
  await updateKey("local", K.queue, (q) => without(q ?? [], sent), []);
}

// ---- analytics: what is recorded, and sending it ----------------------------------------------
/** Record one event (never about an unmapped page: callers pass only `scopeOf(view)`) and send
 * it with whatever else comes within FLUSH_DELAY_MS. Never fails the user's action. */
async function track(type, fields = {}) {
  try {
    await events.record(type, fields);
    scheduleFlush(FLUSH_DELAY_MS);
  } catch (err) {
    console.warn("inflow: analytics:", err);
  }
}

/** The panel rendered the mapped page `pageKey` (it says so once per page it shows). */
async function onShown(msg) {
  for (const [type, fields] of shownEvents(await getSession(K.view), msg.pageKey)) {
    await track(type, fields);
  }
  return {};
}

async function onLinkFollowed(msg) {
  const host = hostOf(msg.url); // the host only: no path, no query
  const scope = scopeOf(await getSession(K.view));
  if (host) {
    await track("link_followed", {
      url_host: host,
      aid: msg.aid_id,
      ...(scope ? { app: scope.app } : {}),
    });
  }
  return {};
}

async function eventToken() {
  try {
    lastEventToken = await getAccessToken(); // refreshes (serialized) when nearly expired
    return lastEventToken;
  } catch (err) {
    if (err instanceof SignedOut || err instanceof SessionExpired) return null; // after sign-in
    throw err;
  }
}

// One timer, earliest deadline wins; lost when the worker stops, so start-up flushes again.
let flushTimer = 0;
let flushDue = null;
function scheduleFlush(delayMs) {
  const due = nextDue(flushDue, Date.now(), delayMs);
  if (flushTimer && due === flushDue) return;
  clearTimeout(flushTimer);
  flushDue = due;
  flushTimer = setTimeout(
    () => {
      flushTimer = 0;
      flushDue = null;
      void run(flushEvents);
    },
    Math.max(0, due - Date.now()),
  );
}

async function flushEvents() {
  let res;
  try {
    res = await events.flush();
  } catch (err) {
    console.warn("inflow: analytics: no token:", err); // e.g. Keycloak unreachable for a refresh
    scheduleFlush(TOKEN_RETRY_MS);
    return;
  }
  if (res.status === 401 && lastEventToken) await refresh(lastEventToken).catch(() => {});
  if (typeof res.retryInMs === "number") scheduleFlush(res.retryInMs);
}

let searchTimer = 0;
function armSearchTimer(state) {
  clearTimeout(searchTimer);
  if (state?.pending) {
    const wait = Math.max(0, state.pending.due - Date.now()) + 20;
    searchTimer = setTimeout(() => void run(settleSearch), wait);
  }
}

async function noteSearch(search) {
  let commit = null;
  const state = await updateKey("local", PENDING_SEARCH_KEY, (prev) => {
    const step = searchAnswered(prev, search, Date.now());
    commit = step.commit;
    return step.state;
  });
  if (commit) await track("search", commit);
  armSearchTimer(state);
}

async function settleSearch({ force = false } = {}) {
  let commit = null;
  const state = await updateKey("local", PENDING_SEARCH_KEY, (prev) => {
    const step = searchSettle(prev, Date.now(), { force });
    commit = step.commit;
    return step.state;
  });
  if (commit) await track("search", commit);
  armSearchTimer(state);
}

async function resumeAnalytics() {
  await sendHeldVotes(); // votes a stopped worker held past their time
  await settleSearch();
  await flushEvents();
}

// ---- settings and content-script registration ------------------------------------------------
async function onSettingsChanged() {
  compiled = null;
  rulesMem = null;
  await removeSession([K.tokens, K.refreshLock, PATHS_KEY]);
  await setLocal({ [K.rules]: null, [K.lastResults]: null });
  await emitView({ type: "signed-out" });
}

/** Mapped apps outside the demo hosts get the content script only on origins the user granted
 * (optional host permissions requested from the settings page). Needs the `scripting` permission. */
async function syncContentScripts() {
  const granted = (await chrome.permissions.getAll()).origins ?? [];
  const wanted = granted.filter((o) => !STATIC_ORIGINS.has(o) && /^https?:\/\//.test(o));
  const existing = await chrome.scripting.getRegisteredContentScripts({ ids: [DYNAMIC_SCRIPT_ID] });
  if (!wanted.length) {
    if (existing.length)
      await chrome.scripting.unregisterContentScripts({ ids: [DYNAMIC_SCRIPT_ID] });
    return;
  }
  const script = {
    id: DYNAMIC_SCRIPT_ID,
    matches: wanted,
    js: ["src/content.js"],
    runAt: "document_end", // right after the page's DOMContentLoaded handlers (speed)
    allFrames: false,
    persistAcrossSessions: true,
  };
  if (existing.length) await chrome.scripting.updateContentScripts([script]);
  else await chrome.scripting.registerContentScripts([script]);
}
