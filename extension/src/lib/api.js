// Calls to the Inflow API with the bearer token; one silent refresh on 401. A 429 (or 503 with
// Retry-After) makes every call wait until the time the server named (src/lib/backoff.js).

import {
  Offline,
  SessionExpired,
  expireSession,
  getAccessToken,
  loadSettings,
  refresh,
} from "./auth.js";
import { createBusyGate, isBusyAnswer } from "./backoff.js";
import { clampPageRequest } from "./limits.js";

const gate = createBusyGate({
  storage: {
    get: async (key) => (await chrome.storage.local.get(key))[key],
    set: (key, value) => chrome.storage.local.set({ [key]: value }),
  },
});
/** The extension-wide "server is busy until" (storage.local, shared with the analytics queue). */
export function busyGate() {
  return gate;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `Server answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

const TIMEOUT_MS = 10_000;

async function send(url, token, { method, body }) {
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new Offline("The Inflow server cannot be reached.");
  }
}

/**
 * `path` relative to /api/v1, e.g. "/search?q=x". Resolves with the parsed JSON (or null).
 * Throws Busy (no request sent) while the server's Retry-After runs, and on a 429.
 */
export async function api(path, { method = "GET", body: raw } = {}) {
  // Page signals go out within the server's limits (a long title is cut, not refused with 422).
  const body = path === "/suggest" ? clampPageRequest(raw) : raw;
  // Three storage reads at once, not one after the other (speed: docs/extension.md).
  const [, { ep }, firstToken] = await Promise.all([
    busyGate().guard(),
    loadSettings(),
    getAccessToken(),
  ]);
  const url = `${ep.api}${path}`;
  let token = firstToken;
  let res = await send(url, token, { method, body });
  if (isBusyAnswer(res)) throw await busyGate().hit(res);
  if (res.status === 401) {
    token = (await refresh(token)).access_token;
    res = await send(url, token, { method, body });
    if (isBusyAnswer(res)) throw await busyGate().hit(res);
    if (res.status === 401) {
      await expireSession();
      throw new SessionExpired();
    }
  }
  if (res.status >= 500 && res.status !== 501) throw new Offline(`Server error ${res.status}`);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}
