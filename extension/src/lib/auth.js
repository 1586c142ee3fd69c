// Sign-in (authorization code + PKCE through chrome.identity.launchWebAuthFlow), token refresh
// serialized by a lock in storage.session, and sign-out. Runs in the service worker only.

import {
  AuthError,
  authorizeUrl,
  challengeS256,
  codeFromRedirect,
  randomString,
  refreshRequestBody,
  tokenRequestBody,
} from "./pkce.js";
import { effectiveSettings, endpoints } from "./settings.js";
import { K, getLocal, getManaged, getSession, removeSession, setSession } from "./storage.js";
import {
  accessTokenFresh,
  canRefresh,
  jwtClaims,
  lockedByOther,
  newLock,
  tokensFromResponse,
} from "./tokens.js";

export { AuthError };
export class SignedOut extends Error {}
export class SessionExpired extends Error {}
export class Offline extends Error {}

const TIMEOUT_MS = 10_000;

export async function loadSettings() {
  const [local, managed] = await Promise.all([getLocal(K.settings, {}), getManaged()]);
  const { values, locked } = effectiveSettings(local, managed);
  return { values, locked, ep: endpoints(values) };
}

async function postForm(url, body) {
  try {
    return await fetch(url, { method: "POST", body, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch {
    throw new Offline(`Cannot reach ${new URL(url).origin}`);
  }
}

/** Interactive sign-in. Resolves with the user name. */
export async function signIn() {
  const { values, ep } = await loadSettings();
  const redirectUri = chrome.identity.getRedirectURL();
  const verifier = randomString(32);
  const state = randomString(16);
  const nonce = randomString(16);
  const url = authorizeUrl({
    authorize: ep.authorize,
    clientId: values.clientId,
    redirectUri,
    state,
    nonce,
    challenge: await challengeS256(verifier),
  });
  let redirected;
  try {
    redirected = await chrome.identity.launchWebAuthFlow({ url, interactive: true });
  } catch (err) {
    throw new AuthError(`Sign-in was not completed (${err?.message ?? err}).`);
  }
  const code = codeFromRedirect(redirected, { redirectUri, state });
  const res = await postForm(
    ep.token,
    tokenRequestBody({ code, verifier, redirectUri, clientId: values.clientId }),
  );
  if (!res.ok) throw new AuthError(`Sign-in failed at the token endpoint (${res.status}).`);
  const tokens = tokensFromResponse(await res.json(), Date.now());
  if (tokens.id_token && jwtClaims(tokens.id_token).nonce !== nonce) {
    throw new AuthError("Sign-in answer does not match the request (nonce).");
  }
  await setSession({ [K.tokens]: tokens, [K.expired]: false });
  return userName(tokens);
}

export function userName(tokens) {
  const c = jwtClaims(tokens?.id_token || tokens?.access_token || "");
  return c.preferred_username || c.name || c.sub || null;
}

/** Forget the tokens and remember that the session expired (the panel says so). */
export async function expireSession() {
  await removeSession([K.tokens, K.refreshLock]);
  await setSession({ [K.expired]: true });
}

/** Current access token, refreshed first when it is (nearly) expired. */
export async function getAccessToken() {
  const tokens = await getSession(K.tokens);
  if (!tokens) throw (await getSession(K.expired)) ? new SessionExpired() : new SignedOut();
  if (accessTokenFresh(tokens, Date.now())) return tokens.access_token;
  return (await refresh(tokens.access_token)).access_token;
}

// De-duplicates concurrent callers inside this worker instance. It is only a shortcut: the
// persisted lock below is what stops a second refresh after the worker was restarted.
let inflight = null;

/** Refresh the tokens unless someone already replaced `staleAccess`. Serialized. */
export function refresh(staleAccess) {
  inflight ??= doRefresh(staleAccess).finally(() => {
    inflight = null;
  });
  return inflight;
}

function waitForKeyChange(key, ms) {
  return new Promise((resolve) => {
    const done = () => {
      chrome.storage.onChanged.removeListener(listener);
      clearTimeout(timer);
      resolve();
    };
    const listener = (changes, area) => {
      if (area === "session" && key in changes) done();
    };
    const timer = setTimeout(done, Math.max(50, ms));
    chrome.storage.onChanged.addListener(listener);
  });
}

async function doRefresh(staleAccess) {
  const owner = randomString(8);
  for (let lock = await getSession(K.refreshLock); lockedByOther(lock, owner, Date.now());) {
    await waitForKeyChange(K.refreshLock, lock.until - Date.now());
    lock = await getSession(K.refreshLock);
  }
  const tokens = await getSession(K.tokens);
  if (!tokens) throw (await getSession(K.expired)) ? new SessionExpired() : new SignedOut();
  // Someone refreshed while we waited: use theirs (refresh tokens rotate; ours may be spent).
  if (tokens.access_token !== staleAccess && accessTokenFresh(tokens, Date.now())) return tokens;
  if (!canRefresh(tokens, Date.now())) {
    await expireSession();
    throw new SessionExpired();
  }
  await setSession({ [K.refreshLock]: newLock(owner, Date.now()) });
  try {
    const { values, ep } = await loadSettings();
    const res = await postForm(
      ep.token,
      refreshRequestBody({ refreshToken: tokens.refresh_token, clientId: values.clientId }),
    );
    if (res.status === 400 || res.status === 401) {
      await expireSession(); // invalid_grant: refresh token expired, revoked or already used
      throw new SessionExpired();
    }
    if (!res.ok) throw new Offline(`Token endpoint answered ${res.status}`);
    const next = tokensFromResponse(await res.json(), Date.now());
    next.refresh_token ??= tokens.refresh_token;
    next.id_token ??= tokens.id_token;
    await setSession({ [K.tokens]: next });
    return next;
  } finally {
    const lock = await getSession(K.refreshLock);
    if (lock?.owner === owner) await removeSession(K.refreshLock);
  }
}

/** End the Keycloak session (back-channel POST with the refresh token) and forget the tokens. */
export async function signOut() {
  const tokens = await getSession(K.tokens);
  await removeSession([K.tokens, K.refreshLock]);
  await setSession({ [K.expired]: false });
  if (!tokens?.refresh_token) return;
  const { values, ep } = await loadSettings();
  try {
    await postForm(
      ep.logout,
      new URLSearchParams({ client_id: values.clientId, refresh_token: tokens.refresh_token }),
    );
  } catch {
    // Offline: the tokens are gone locally; Keycloak's session ends at its idle timeout.
  }
}
