// Settings page. For learners: the server, who is signed in, Sign out. The sign-in coordinates
// (Keycloak URL, realm, client id) sit in a closed "Advanced" section; values an administrator
// pushes by policy (storage.managed) are read-only, and the Advanced section is not shown at all
// when policy sets every one of them. Also the optional host permissions for mapped work apps.

import { originsForRules } from "../lib/rules.js";
import {
  DEFAULTS,
  FIELDS,
  effectiveSettings,
  originPattern,
  validateField,
} from "../lib/settings.js";
import { K, getLocal, getManaged, getSession, setLocal } from "../lib/storage.js";

const ADVANCED = ["keycloakUrl", "realm", "clientId"];

const $ = (id) => document.getElementById(id);

async function load() {
  const user = await getLocal(K.settings, {});
  const { values, locked } = effectiveSettings(user, await getManaged());
  for (const name of FIELDS) {
    const input = $(name);
    input.value = values[name];
    input.readOnly = locked.includes(name);
    input.title = input.readOnly ? "Set by your organisation" : "";
  }
  $("managed-note").hidden = locked.length === 0;
  $("advanced").hidden = ADVANCED.every((name) => locked.includes(name));
  await showOrigins(values);
  await showAccount();
}

/** Who is signed in (the worker's view in storage.session), with Sign out. */
async function showAccount() {
  const view = await getSession(K.view);
  const user = view && !["signed-out", "expired"].includes(view.state) ? view.user : null;
  $("signed-in").hidden = !user;
  $("signed-out").hidden = Boolean(user);
  $("account-user").textContent = user ?? "";
}

async function signOut(ev) {
  ev.currentTarget.disabled = true;
  try {
    await chrome.runtime.sendMessage({ type: "sign-out" });
    $("account-status").textContent = "Signed out.";
  } catch {
    $("account-status").textContent = "Could not sign out. Try again from the side panel.";
  }
  ev.currentTarget.disabled = false;
  await showAccount();
}

async function save(ev) {
  ev.preventDefault();
  const { locked } = effectiveSettings({}, await getManaged());
  const next = {};
  let ok = true;
  for (const name of FIELDS) {
    if (locked.includes(name)) continue;
    const value = $(name).value.trim();
    const err = validateField(name, value);
    $(`${name}-err`).textContent = err;
    if (err && ADVANCED.includes(name)) $("advanced").open = true;
    ok &&= !err;
    next[name] = value;
  }
  if (!ok) return;
  // Servers off the loopback need a host permission; ask now (this click is the user gesture).
  const origins = [next.serverUrl, next.keycloakUrl]
    .filter(Boolean)
    .map(originPattern)
    .filter((o) => !o.startsWith("http://127.0.0.1/") && !o.startsWith("http://localhost/"));
  if (origins.length && !(await chrome.permissions.request({ origins }))) {
    $("status").textContent = "Inflow needs access to the server to work.";
    return;
  }
  await setLocal({ [K.settings]: next });
  $("status").textContent = "Saved. Sign in again from the side panel.";
}

async function reset() {
  await setLocal({ [K.settings]: { ...DEFAULTS } });
  await load();
  $("status").textContent = "Defaults restored.";
}

async function wantedOrigins() {
  const rules = await getLocal(K.rules);
  return rules?.doc ? originsForRules(rules.doc) : [];
}

async function showOrigins() {
  const list = $("origins");
  const origins = await wantedOrigins();
  list.replaceChildren();
  for (const o of origins) {
    const li = document.createElement("li");
    const granted = await chrome.permissions.contains({ origins: [o] });
    li.textContent = `${o} — ${granted ? "allowed" : "not allowed"}`;
    list.append(li);
  }
  if (!origins.length) {
    const li = document.createElement("li");
    li.textContent = "No work apps known yet (sign in from the side panel first).";
    list.append(li);
  }
}

async function grant() {
  const origins = await wantedOrigins();
  if (!origins.length) return;
  const ok = await chrome.permissions.request({ origins });
  $("perm-status").textContent = ok ? "Allowed. Reload open work-app tabs." : "Not allowed.";
  await showOrigins();
}

async function revoke() {
  const origins = await wantedOrigins();
  const optional = origins.filter(
    (o) => !o.startsWith("http://127.0.0.1/") && !o.startsWith("http://localhost/"),
  );
  if (optional.length) await chrome.permissions.remove({ origins: optional });
  $("perm-status").textContent = "Access removed.";
  await showOrigins();
}

$("form").addEventListener("submit", save);
$("reset").addEventListener("click", reset);
$("grant").addEventListener("click", grant);
$("revoke").addEventListener("click", revoke);
$("account-sign-out").addEventListener("click", signOut);
chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "session" && K.view in changes) void showAccount();
});
load();
