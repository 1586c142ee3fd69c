// Settings: defaults, then what the user saved (storage.local), then what policy pushes
// (storage.managed), which wins and is shown read-only. Pure functions; callers do the I/O.

export const DEFAULTS = Object.freeze({
  serverUrl: "http://127.0.0.1:8080",
  keycloakUrl: "http://127.0.0.1:8081",
  realm: "inflow",
  clientId: "inflow-extension",
});

export const FIELDS = Object.freeze(Object.keys(DEFAULTS));

const URL_FIELDS = new Set(["serverUrl", "keycloakUrl"]);
const SLUG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Returns an error message for one field's value, or "" when it is valid. */
export function validateField(name, value) {
  if (typeof value !== "string" || value.trim() === "") return "Required.";
  if (URL_FIELDS.has(name)) {
    let u;
    try {
      u = new URL(value);
    } catch {
      return "Not a URL.";
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") return "Use an http(s) URL.";
    if (u.search || u.hash || u.username || u.password) return "Base URL only (no query, login).";
    return "";
  }
  return SLUG.test(value) ? "" : "Letters, digits, dot, dash and underscore only.";
}

function clean(name, value) {
  const v = String(value).trim();
  return URL_FIELDS.has(name) ? v.replace(/\/+$/, "") : v;
}

/** Merge defaults < user < managed. Returns {values, locked: [field names set by policy]}. */
export function effectiveSettings(user = {}, managed = {}) {
  const values = { ...DEFAULTS };
  const locked = [];
  for (const name of FIELDS) {
    if (user && typeof user[name] === "string" && !validateField(name, user[name])) {
      values[name] = clean(name, user[name]);
    }
    if (managed && typeof managed[name] === "string" && !validateField(name, managed[name])) {
      values[name] = clean(name, managed[name]);
      locked.push(name);
    }
  }
  return { values, locked };
}

/**
 * Image hosts besides the Inflow server, from enterprise policy only (`imageHosts`: the same list
 * as the server's INFLOW_IMAGE_HOSTS). Each "host" or "host:port"; anything else is ignored.
 */
export function imageHostsFrom(managed = {}) {
  const list = Array.isArray(managed?.imageHosts) ? managed.imageHosts : [];
  return list.filter((h) => {
    if (typeof h !== "string" || !h.trim() || /[/?#@\\\s]/.test(h.trim())) return false;
    try {
      return Boolean(new URL(`https://${h.trim()}/`).host);
    } catch {
      return false;
    }
  });
}

/** The OpenID Connect endpoints and the API base for a settings object. */
export function endpoints(values) {
  const oidc = `${values.keycloakUrl}/realms/${encodeURIComponent(values.realm)}/protocol/openid-connect`;
  return {
    api: `${values.serverUrl}/api/v1`,
    authorize: `${oidc}/auth`,
    token: `${oidc}/token`,
    logout: `${oidc}/logout`,
  };
}

/** Host match pattern ("https://host/*") for an origin the extension must reach. */
export function originPattern(url) {
  const u = new URL(url);
  return `${u.protocol}//${u.hostname}/*`;
}
