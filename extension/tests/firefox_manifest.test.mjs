// One manifest for Chromium and Firefox: the Firefox keys must point at the same files as the
// Chromium ones, and the realm must register the redirect URL Firefox derives from the fixed id.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const EXT = join(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = join(EXT, "..");
const manifest = JSON.parse(readFileSync(join(EXT, "manifest.json"), "utf8"));

test("Firefox sidebar shows the same page as the Chromium side panel", () => {
  assert.equal(manifest.sidebar_action.default_panel, manifest.side_panel.default_path);
  assert.ok(existsSync(join(EXT, manifest.sidebar_action.default_panel)));
});

test("Firefox runs the same background module as Chromium's service worker", () => {
  assert.deepEqual(manifest.background.scripts, [manifest.background.service_worker]);
  assert.equal(manifest.background.type, "module");
});

test("a fixed gecko id, and the realm registers the redirect URL Firefox derives from it", () => {
  const id = manifest.browser_specific_settings.gecko.id;
  assert.match(id, /^[a-z0-9.-]+@[a-z0-9.-]+$/);
  // identity.getRedirectURL() in Firefox: https://<sha1 hex of the add-on id>.extensions.allizom.org/
  const redirect = `https://${createHash("sha1").update(id).digest("hex")}.extensions.allizom.org/`;
  const realm = JSON.parse(readFileSync(join(ROOT, "auth", "realm-inflow.json"), "utf8"));
  const client = realm.clients.find((c) => c.clientId === "inflow-extension");
  assert.ok(client.redirectUris.includes(redirect), redirect);
  const logout = client.attributes["post.logout.redirect.uris"].split("##");
  assert.ok(logout.includes(redirect));
});

// Each of these is explained in docs/extension.md ("Firefox"); anything else fails.
const KNOWN_WEB_EXT_WARNINGS = new Set([
  'MANIFEST_PERMISSIONS /permissions: Invalid permissions "sidePanel" at 0.',
  'BACKGROUND_SERVICE_WORKER_IGNORED Unsupported "/background/service_worker" manifest property is ignored by Firefox.',
  "UNSUPPORTED_API sidePanel.setPanelBehavior is not supported",
]);

test("web-ext lint: no errors, and only the explained warnings", () => {
  const bin = join(EXT, "node_modules", ".bin", "web-ext");
  const run = spawnSync(
    bin,
    [
      "lint",
      "--source-dir",
      EXT,
      "--output",
      "json",
      "--no-config-discovery",
      "--ignore-files",
      "node_modules/**",
      "tests/**",
      "eslint.config.js",
      "package.json",
      "package-lock.json",
    ],
    { encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(run.error, undefined, String(run.error));
  const report = JSON.parse(run.stdout);
  assert.deepEqual(report.errors, []);
  assert.deepEqual(report.notices, []);
  for (const w of report.warnings) {
    assert.ok(KNOWN_WEB_EXT_WARNINGS.has(`${w.code} ${w.message}`), `${w.code} ${w.message}`);
  }
});
