// The manifest is the extension's security boundary: permissions, CSP, fixed id.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const EXT = join(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = join(EXT, "..");
const manifest = JSON.parse(readFileSync(join(EXT, "manifest.json"), "utf8"));

function idFromKey(b64) {
  const hex = createHash("sha256").update(Buffer.from(b64, "base64")).digest("hex").slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join("");
}

test("key is auth/extension-key.txt and gives the id in auth/extension-id.txt", (t) => {
  const keyFile = join(ROOT, "auth", "extension-key.txt");
  if (!existsSync(keyFile)) return t.skip("auth/extension-key.txt not there yet");
  const key = readFileSync(keyFile, "utf8").trim();
  assert.equal(manifest.key, key);
  const id = readFileSync(join(ROOT, "auth", "extension-id.txt"), "utf8").trim();
  assert.equal(idFromKey(manifest.key), id);
});

test("least privilege: exactly these permissions", () => {
  assert.deepEqual([...manifest.permissions].sort(), [
    "identity",
    "scripting",
    "sidePanel",
    "storage",
  ]);
  assert.deepEqual(manifest.host_permissions, ["http://127.0.0.1/*", "http://localhost/*"]);
  assert.deepEqual(manifest.optional_host_permissions, ["https://*/*", "http://*/*"]);
  assert.equal(manifest.permissions.includes("tabs"), false);
  for (const cs of manifest.content_scripts) {
    for (const m of cs.matches) assert.match(m, /^http:\/\/(127\.0\.0\.1|localhost)\/demo\/\*$/);
  }
});

test("CSP allows only the extension's own scripts", () => {
  assert.equal(
    manifest.content_security_policy.extension_pages,
    "script-src 'self'; object-src 'self'",
  );
});

test("managed storage schema is shipped and declares the settings", () => {
  const schema = JSON.parse(readFileSync(join(EXT, manifest.storage.managed_schema), "utf8"));
  assert.deepEqual(Object.keys(schema.properties).sort(), [
    "clientId",
    "imageHosts",
    "keycloakUrl",
    "realm",
    "serverUrl",
  ]);
});

test("every file the manifest names exists; service worker is a module", () => {
  const files = [
    manifest.background.service_worker,
    manifest.side_panel.default_path,
    manifest.options_ui.page,
    ...manifest.content_scripts.flatMap((c) => c.js),
    ...Object.values(manifest.icons),
  ];
  for (const f of files) assert.ok(existsSync(join(EXT, f)), f);
  assert.equal(manifest.background.type, "module");
});

function* walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

test("no remote code, no inline scripts, no eval, no innerHTML", () => {
  for (const f of walk(join(EXT, "src"))) {
    const text = readFileSync(f, "utf8");
    if (f.endsWith(".html")) {
      for (const m of text.matchAll(/<script\b[^>]*>/g)) {
        assert.match(m[0], /src="[^":]+\.js"/, `${f}: only local script files`);
      }
      assert.doesNotMatch(text, /<script\b[^>]*>\s*[^<\s]/, `${f}: inline script`);
      assert.doesNotMatch(text, /\son[a-z]+=/i, `${f}: inline handler`);
    }
    if (f.endsWith(".js")) {
      assert.doesNotMatch(text, /\beval\(|new Function\(|\.innerHTML\s*=|insertAdjacentHTML/, f);
      assert.doesNotMatch(text, /import\s*\(?\s*["']https?:/, `${f}: remote import`);
    }
  }
});
