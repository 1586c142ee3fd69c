// Token bookkeeping: pure functions over plain objects, so they are unit-tested in Node.

/** Refresh this many ms before the access token expires. */
export const EXPIRY_SKEW_MS = 20_000;
/** A refresh that has not finished after this long is considered dead (its worker was stopped). */
export const LOCK_TTL_MS = 15_000;

/** What we keep of a token endpoint response, with absolute expiry times. */
export function tokensFromResponse(json, now) {
  if (!json || typeof json.access_token !== "string")
    throw new Error("No access token in response.");
  const exp = Number(json.expires_in);
  const rexp = Number(json.refresh_expires_in);
  return {
    access_token: json.access_token,
    refresh_token: typeof json.refresh_token === "string" ? json.refresh_token : null,
    id_token: typeof json.id_token === "string" ? json.id_token : null,
    expires_at: now + (Number.isFinite(exp) ? exp : 60) * 1000,
    // 0 = no expiry announced (offline tokens); otherwise absolute ms.
    refresh_expires_at: Number.isFinite(rexp) && rexp > 0 ? now + rexp * 1000 : 0,
    obtained_at: now,
  };
}

export function accessTokenFresh(tokens, now, skew = EXPIRY_SKEW_MS) {
  return Boolean(tokens?.access_token) && tokens.expires_at - skew > now;
}

export function canRefresh(tokens, now) {
  return (
    Boolean(tokens?.refresh_token) &&
    (!tokens.refresh_expires_at || tokens.refresh_expires_at > now)
  );
}

/** The lock object a refresher writes before it spends the (rotating) refresh token. */
export function newLock(owner, now, ttl = LOCK_TTL_MS) {
  return { owner, until: now + ttl };
}

/** True when someone else holds a live lock. */
export function lockedByOther(lock, owner, now) {
  return Boolean(lock) && lock.owner !== owner && lock.until > now;
}

/** Claims of a JWT payload, without verifying it (display only: user name in the panel). */
export function jwtClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    return JSON.parse(json);
  } catch {
    return {};
  }
}
