import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DEFAULTS,
  effectiveSettings,
  endpoints,
  originPattern,
  validateField,
} from "../src/lib/settings.js";

test("defaults are the dev servers", () => {
  assert.deepEqual(effectiveSettings().values, {
    serverUrl: "http://127.0.0.1:8080",
    keycloakUrl: "http://127.0.0.1:8081",
    realm: "inflow",
    clientId: "inflow-extension",
  });
});

test("user values override defaults, managed values override both and are locked", () => {
  const { values, locked } = effectiveSettings(
    { serverUrl: "http://127.0.0.1:9999/", realm: "other" },
    { realm: "corp", keycloakUrl: "https://sso.example.com" },
  );
  assert.equal(values.serverUrl, "http://127.0.0.1:9999"); // trailing slash trimmed
  assert.equal(values.realm, "corp");
  assert.equal(values.keycloakUrl, "https://sso.example.com");
  assert.equal(values.clientId, DEFAULTS.clientId);
  assert.deepEqual(locked.sort(), ["keycloakUrl", "realm"]);
});

test("invalid values are ignored", () => {
  const { values } = effectiveSettings(
    { serverUrl: "javascript:alert(1)", realm: "a b" },
    { clientId: 42 },
  );
  assert.equal(values.serverUrl, DEFAULTS.serverUrl);
  assert.equal(values.realm, DEFAULTS.realm);
  assert.equal(values.clientId, DEFAULTS.clientId);
});

test("field validation", () => {
  assert.equal(validateField("serverUrl", "https://x.example"), "");
  assert.notEqual(validateField("serverUrl", "ftp://x"), "");
  assert.notEqual(validateField("serverUrl", "https://x.example/?a=1"), "");
  assert.notEqual(validateField("realm", ""), "");
  assert.equal(validateField("clientId", "inflow-extension"), "");
});

test("endpoints and origin patterns", () => {
  const ep = endpoints(DEFAULTS);
  assert.equal(ep.api, "http://127.0.0.1:8080/api/v1");
  assert.equal(ep.token, "http://127.0.0.1:8081/realms/inflow/protocol/openid-connect/token");
  assert.equal(ep.logout, "http://127.0.0.1:8081/realms/inflow/protocol/openid-connect/logout");
  assert.equal(ep.authorize, "http://127.0.0.1:8081/realms/inflow/protocol/openid-connect/auth");
  assert.equal(originPattern("https://sso.example.com:8443/x"), "https://sso.example.com/*");
});
