import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AuthError,
  authorizeUrl,
  challengeS256,
  codeFromRedirect,
  randomString,
  refreshRequestBody,
  tokenRequestBody,
} from "../src/lib/pkce.js";

test("S256 challenge matches RFC 7636 appendix B", async () => {
  assert.equal(
    await challengeS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  );
});

test("random strings are URL-safe, long enough and differ", () => {
  const a = randomString(32);
  const b = randomString(32);
  assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, b);
});

test("authorize URL carries the PKCE and OIDC parameters", () => {
  const url = new URL(
    authorizeUrl({
      authorize: "http://127.0.0.1:8081/realms/inflow/protocol/openid-connect/auth",
      clientId: "inflow-extension",
      redirectUri: "https://abc.chromiumapp.org/",
      state: "st",
      nonce: "no",
      challenge: "ch",
    }),
  );
  const p = Object.fromEntries(url.searchParams);
  assert.deepEqual(p, {
    response_type: "code",
    client_id: "inflow-extension",
    redirect_uri: "https://abc.chromiumapp.org/",
    scope: "openid",
    state: "st",
    nonce: "no",
    code_challenge: "ch",
    code_challenge_method: "S256",
  });
});

test("the redirect is checked: address, state, error, code", () => {
  const opts = { redirectUri: "https://abc.chromiumapp.org/", state: "s1" };
  assert.equal(codeFromRedirect("https://abc.chromiumapp.org/?state=s1&code=C", opts), "C");
  assert.throws(
    () => codeFromRedirect("https://abc.chromiumapp.org/?state=s2&code=C", opts),
    AuthError,
  );
  assert.throws(() => codeFromRedirect("https://evil.example/?state=s1&code=C", opts), AuthError);
  assert.throws(
    () => codeFromRedirect("https://abc.chromiumapp.org/?state=s1&error=access_denied", opts),
    /access_denied/,
  );
  assert.throws(() => codeFromRedirect("https://abc.chromiumapp.org/?state=s1", opts), /no code/);
  assert.throws(() => codeFromRedirect("not a url", opts), AuthError);
});

test("token request bodies", () => {
  const t = tokenRequestBody({ code: "C", verifier: "V", redirectUri: "R", clientId: "X" });
  assert.equal(t.get("grant_type"), "authorization_code");
  assert.equal(t.get("code_verifier"), "V");
  const r = refreshRequestBody({ refreshToken: "RT", clientId: "X" });
  assert.equal(r.toString(), "grant_type=refresh_token&refresh_token=RT&client_id=X");
});
