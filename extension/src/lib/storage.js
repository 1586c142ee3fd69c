// Small wrappers around chrome.storage. Where each thing lives:
//   session (memory only, cleared when the browser closes, trusted contexts only): tokens, the
//     refresh lock, per-tab page facts, the tab the panel follows, the panel's view;
//   local (disk): user settings, cached rules, last results (offline fallback), queued events,
//     votes held for a comment;
//   managed (read-only, pushed by enterprise policy): presets that override settings.
// The service worker can be stopped at any moment, so every piece of state goes through here.

export const K = Object.freeze({
  // session
  tokens: "tokens",
  refreshLock: "refreshLock",
  pendingAuth: "pendingAuth",
  focus: "focus",
  lastWeb: "lastWeb",
  view: "view",
  panelTabs: "panelTabs",
  expired: "expired",
  tabPrefix: "tab:",
  // local
  settings: "settings",
  rules: "rules",
  lastResults: "lastResults",
  queue: "queue",
  heldVotes: "heldVotes",
});

/** Make chrome.storage.session unreadable from content scripts (tokens live there). */
export async function restrictSession() {
  // Firefox keeps storage.session from content scripts by default; older ones lack setAccessLevel.
  if (typeof chrome.storage.session.setAccessLevel !== "function") return;
  await chrome.storage.session.setAccessLevel({ accessLevel: "TRUSTED_CONTEXTS" });
}

async function getFrom(area, key, fallback) {
  const got = await chrome.storage[area].get(key);
  return got[key] === undefined ? fallback : got[key];
}

export const getSession = (key, fallback = null) => getFrom("session", key, fallback);
export const getLocal = (key, fallback = null) => getFrom("local", key, fallback);
export const setSession = (items) => chrome.storage.session.set(items);
export const setLocal = (items) => chrome.storage.local.set(items);
export const removeSession = (keys) => chrome.storage.session.remove(keys);
export const removeLocal = (keys) => chrome.storage.local.remove(keys);

/** Managed storage (enterprise policy); `{}` where none is set or the platform has none. */
export async function getManaged() {
  try {
    return (await chrome.storage.managed.get(null)) ?? {};
  } catch {
    return {};
  }
}

/** Read-modify-write of one key. Callers in one worker are serialized per key, so two quick
 * updates (e.g. two pages reporting at once) never drop each other's change. */
const chains = new Map();
export function updateKey(area, key, fn, fallback = null) {
  const run = async () => {
    const next = await fn(await getFrom(area, key, fallback));
    await chrome.storage[area].set({ [key]: next });
    return next;
  };
  const prev = chains.get(`${area}:${key}`) ?? Promise.resolve();
  const p = prev.then(run, run);
  chains.set(
    `${area}:${key}`,
    p.catch(() => {}),
  );
  return p;
}
