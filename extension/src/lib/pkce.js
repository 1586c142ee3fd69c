// OAuth 2.0 authorization code flow with PKCE (RFC 7636, S256): pure helpers, no chrome.* calls.

function base64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A random URL-safe string from `bytes` random bytes (32 bytes -> 43 chars, as RFC 7636 asks). */
export function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** BASE64URL(SHA256(ASCII(verifier))) */
export async function challengeS256(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Authorization request URL. */
export function authorizeUrl({ authorize, clientId, redirectUri, state, challenge, nonce }) {
  const u = new URL(authorize);
  u.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: "openid",
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  return u.toString();
}

export class AuthError extends Error {}

/** The code from the redirect URL, after checking it is our redirect and `state` matches. */
export function codeFromRedirect(redirected, { redirectUri, state }) {
  let u;
  try {
    u = new URL(redirected);
  } catch {
    throw new AuthError("Sign-in returned no usable address.");
  }
  if (!redirected.startsWith(redirectUri))
    throw new AuthError("Sign-in returned to an unknown address.");
  // Keycloak answers in the query (response_mode=query, the default for the code flow).
  const p = u.searchParams;
  if (p.get("state") !== state) throw new AuthError("Sign-in state mismatch; try again.");
  if (p.get("error")) throw new AuthError(p.get("error_description") || p.get("error"));
  const code = p.get("code");
  if (!code) throw new AuthError("Sign-in returned no code.");
  return code;
}

/** Form body for the token request that redeems `code`. */
export function tokenRequestBody({ code, verifier, redirectUri, clientId }) {
  return new URLSearchParams({
    grant_type: "authorization_code",
    code,
    code_verifier: verifier,
    redirect_uri: redirectUri,
    client_id: clientId,
  });
}

/** Form body for a refresh-token grant. */
export function refreshRequestBody({ refreshToken, clientId }) {
  return new URLSearchParams({
    grant_type: "refresh_token",
    refresh_token: refreshToken,
    client_id: clientId,
  });
}
