import assert from "node:assert/strict";
import { test } from "node:test";

import {
  accessTokenFresh,
  canRefresh,
  jwtClaims,
  lockedByOther,
  newLock,
  tokensFromResponse,
} from "../src/lib/tokens.js";

const NOW = 1_700_000_000_000;

test("token response becomes absolute expiry times", () => {
  const t = tokensFromResponse(
    {
      access_token: "A",
      refresh_token: "R",
      id_token: "I",
      expires_in: 60,
      refresh_expires_in: 1800,
    },
    NOW,
  );
  assert.equal(t.expires_at, NOW + 60_000);
  assert.equal(t.refresh_expires_at, NOW + 1_800_000);
  assert.throws(() => tokensFromResponse({}, NOW));
  assert.equal(
    tokensFromResponse({ access_token: "A", refresh_expires_in: 0 }, NOW).refresh_expires_at,
    0,
  );
});

test("access token is refreshed shortly before it expires", () => {
  const t = { access_token: "A", expires_at: NOW + 60_000 };
  assert.equal(accessTokenFresh(t, NOW), true);
  assert.equal(accessTokenFresh(t, NOW + 45_000), false); // inside the 20 s skew
  assert.equal(accessTokenFresh(null, NOW), false);
});

test("refresh is possible while the refresh token lives", () => {
  assert.equal(canRefresh({ refresh_token: "R", refresh_expires_at: NOW + 1 }, NOW), true);
  assert.equal(canRefresh({ refresh_token: "R", refresh_expires_at: NOW - 1 }, NOW), false);
  assert.equal(canRefresh({ refresh_token: "R", refresh_expires_at: 0 }, NOW), true);
  assert.equal(canRefresh({ refresh_token: null }, NOW), false);
});

test("a live lock held by someone else blocks; an expired one does not", () => {
  const lock = newLock("a", NOW, 15_000);
  assert.equal(lockedByOther(lock, "b", NOW + 1000), true);
  assert.equal(lockedByOther(lock, "a", NOW + 1000), false);
  assert.equal(lockedByOther(lock, "b", NOW + 16_000), false);
  assert.equal(lockedByOther(null, "b", NOW), false);
});

test("JWT claims decode (display only), garbage gives {}", () => {
  const payload = Buffer.from(JSON.stringify({ preferred_username: "léa" })).toString("base64url");
  assert.deepEqual(jwtClaims(`x.${payload}.y`), { preferred_username: "léa" });
  assert.deepEqual(jwtClaims("garbage"), {});
});
