// Wrapped targets: the page an app shows inside its own frame (docs/apps.md). The twin of
// server/wrapped.py; tests/vectors/wrapped_targets.json keeps the two in step.
//
// `/nav_to.do?uri={target}`: on exactly that path, the (form-decoded) value of `uri` is the page.
// `/now/nav/ui/classic/params/target/{target}`: under those segments, the rest of the path,
// percent-decoded once, is the page. A value still encoded where a path or URL starts is decoded
// once more; a relative target is a path from the outer origin's root; another origin, or another
// scheme (javascript:), is ignored.

import { InvalidUrl, parseUrl, percentDecode } from "./urlrules.js";

const PLACEHOLDER = "{target}";
const PARAM_RE = /^[A-Za-z0-9._~!$'()*,;:@%-]+$/;
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const STILL_ENCODED_RE = /^(%2f|https?%3a)/i;
const DEFAULT_PORTS = { http: 80, https: 443 };
const EXAMPLE = "e.g. '/nav_to.do?uri={target}' or '/now/nav/ui/classic/params/target/{target}'";

export class InvalidWrappedTarget extends Error {}

function segmentsOf(path) {
  try {
    return parseUrl(`http://wrapped.invalid${path}`).segments;
  } catch (err) {
    throw new InvalidWrappedTarget(`not a valid path: ${err.message}`);
  }
}

/** Check and compile a declared wrapped target: {source, segments, param|null}. */
export function parseWrappedTarget(text) {
  if (text.split(PLACEHOLDER).length !== 2) {
    throw new InvalidWrappedTarget(`needs exactly one ${PLACEHOLDER} (${EXAMPLE})`);
  }
  if (!text.startsWith("/")) {
    throw new InvalidWrappedTarget(`must be a path starting with '/' (${EXAMPLE})`);
  }
  if (text.includes("#")) throw new InvalidWrappedTarget("a wrapped target has no '#' fragment");
  if (!text.endsWith(PLACEHOLDER)) {
    throw new InvalidWrappedTarget(
      `${PLACEHOLDER} must end it: as a query value ('?param={target}') or as the last path ` +
        "segment ('/path/{target}')",
    );
  }
  const head = text.slice(0, -PLACEHOLDER.length);
  if (head.includes("{") || head.includes("}")) {
    throw new InvalidWrappedTarget(`only ${PLACEHOLDER} may use braces`);
  }
  const q = head.indexOf("?");
  if (q >= 0) {
    const path = head.slice(0, q);
    const query = head.slice(q + 1);
    if (!query.endsWith("=") || query.includes("&") || query.includes("?")) {
      throw new InvalidWrappedTarget(
        `the query form is '?param={target}', one parameter (${EXAMPLE})`,
      );
    }
    const param = query.slice(0, -1);
    if (!PARAM_RE.test(param)) {
      throw new InvalidWrappedTarget(`'${param}' is not a query parameter name`);
    }
    return { source: text, segments: segmentsOf(path), param };
  }
  if (!head.endsWith("/")) {
    throw new InvalidWrappedTarget(
      `${PLACEHOLDER} must be a whole path segment ('/path/{target}')`,
    );
  }
  const segments = segmentsOf(head);
  if (segments.length === 0) {
    throw new InvalidWrappedTarget("the path form needs a path before /{target}");
  }
  return { source: text, segments, param: null };
}

function originOf(url) {
  const port = DEFAULT_PORTS[url.scheme] === url.port ? "" : `:${url.port}`;
  return `${url.scheme}://${url.host}${port}`;
}

const sameSegments = (a, b) => a.length === b.length && a.every((s, i) => s === b[i]);

function innerValue(url, target) {
  const n = target.segments.length;
  if (target.param !== null) {
    if (!sameSegments(url.segments, target.segments)) return null;
    const values = url.params.get(target.param);
    return values && values.length ? values[0] : null;
  }
  if (url.segments.length <= n || !sameSegments(url.segments.slice(0, n), target.segments)) {
    return null;
  }
  const prefix = "/" + target.segments.join("/") + "/";
  return url.path.startsWith(prefix) ? percentDecode(url.path.slice(prefix.length)) : null;
}

function resolveTarget(url, value) {
  value = value.trim();
  if (STILL_ENCODED_RE.test(value)) value = percentDecode(value);
  if (!value) return null;
  const origin = originOf(url);
  let absolute;
  if (SCHEME_RE.test(value)) absolute = value;
  else if (["//", "\\\\", "/\\", "\\/"].includes(value.slice(0, 2)))
    absolute = `${url.scheme}:${value}`;
  else if (value.startsWith("/") || value.startsWith("\\")) absolute = origin + value;
  else absolute = `${origin}/${value}`;
  let inner;
  try {
    inner = parseUrl(absolute);
  } catch (err) {
    if (err instanceof InvalidUrl) return null; // javascript:, mailto:, a broken URL
    throw err;
  }
  return originOf(inner) === origin ? inner : null;
}

/** The page (a ParsedUrl) that the parsed `url` wraps under the first target that applies. */
export function unwrap(url, targets) {
  for (const target of targets) {
    const value = innerValue(url, target);
    if (value !== null) {
      const inner = resolveTarget(url, value);
      if (inner !== null) return inner;
    }
  }
  return null;
}

/** The normalized URL of the page that `url` wraps (declared `targets`), or null. */
export function targetUrl(url, targets) {
  let parsed;
  try {
    parsed = parseUrl(url);
  } catch {
    return null;
  }
  const inner = unwrap(
    parsed,
    targets.map((t) => parseWrappedTarget(t)),
  );
  return inner === null ? null : inner.normalized;
}
