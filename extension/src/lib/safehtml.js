// Safe insertion of server HTML (aid bodies, search snippets). The server already sanitizes it;
// we still never assign an untrusted string to innerHTML. Instead the string is parsed into an
// inert document (DOMParser: no scripts run, nothing loads) and an allowlisted copy is rebuilt
// node by node with createElement/createTextNode/setAttribute. The walker only uses standard DOM
// properties, so unit tests feed it plain objects instead of a browser DOM.

/** Allowed elements and, for each, its allowed attributes. */
export const ALLOWED = Object.freeze({
  a: ["href", "title"],
  abbr: ["title"],
  b: ["class"],
  blockquote: [],
  br: [],
  caption: [],
  code: ["class"],
  dd: [],
  del: [],
  details: [],
  div: ["class"],
  dl: [],
  dt: [],
  em: [],
  figcaption: [],
  figure: [],
  h1: ["id"],
  h2: ["id"],
  h3: ["id"],
  h4: ["id"],
  h5: ["id"],
  h6: ["id"],
  hr: [],
  i: [],
  img: ["src", "alt", "title", "width", "height"],
  kbd: [],
  li: ["class"],
  mark: [],
  ol: ["start", "class"],
  p: [],
  pre: [],
  s: [],
  small: [],
  span: ["class"],
  strong: [],
  sub: [],
  summary: [],
  sup: [],
  table: [],
  tbody: [],
  td: ["colspan", "rowspan"],
  tfoot: [],
  th: ["colspan", "rowspan", "scope"],
  thead: [],
  tr: [],
  u: [],
  ul: ["class"],
});

/** Dropped together with everything inside them. Anything else unknown is unwrapped (text kept). */
export const DROP = new Set([
  "script",
  "style",
  "iframe",
  "frame",
  "frameset",
  "object",
  "embed",
  "applet",
  "template",
  "noscript",
  "svg",
  "math",
  "form",
  "input",
  "button",
  "textarea",
  "select",
  "option",
  "link",
  "meta",
  "base",
  "title",
  "head",
  "audio",
  "video",
  "source",
  "track",
  "canvas",
  "portal",
  "dialog",
]);

const MAX_DEPTH = 64;
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
const NUMBER = /^\d{1,5}$/;

/** "host" or "host:port" from settings as URL.host would spell it, or null when invalid. */
function hostKey(entry) {
  try {
    return new URL(`https://${String(entry).trim()}/`).host;
  } catch {
    return null;
  }
}

/**
 * Where an image would really load from, decided by the browser's own parser (the same rule
 * as server/render.py, checked by tests/vectors/image_urls.json): this server's origin, or https
 * on one of `imageHosts` ("host" or "host:port"). Returns {url, src}: `url` the resolved URL (null
 * when not http(s)), `src` the value to set, or null to drop it. `/\evil.example/x` is
 * https://evil.example/x to a browser, so it is judged (and refused) as that.
 */
export function imageSrc(value, baseUrl, imageHosts = []) {
  let url;
  let base;
  try {
    base = new URL(baseUrl);
    url = new URL(String(value), base);
  } catch {
    return { url: null, src: null };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { url: null, src: null };
  const sameOrigin = url.origin === base.origin;
  const allowedHost = url.protocol === "https:" && imageHosts.some((h) => hostKey(h) === url.host);
  return { url, src: sameOrigin || allowedHost ? url.href : null };
}

/** A safe value for an allowed attribute, or null to drop it. */
export function safeAttr(tag, name, value, baseUrl, imageHosts = []) {
  const v = String(value);
  if (tag === "img" && name === "src") return imageSrc(v, baseUrl, imageHosts).src;
  switch (name) {
    case "href":
    case "src": {
      let u;
      try {
        u = new URL(v, baseUrl);
      } catch {
        return null;
      }
      const ok = name === "href" ? ["http:", "https:", "mailto:"] : ["http:", "https:"];
      return ok.includes(u.protocol) ? u.href : null;
    }
    case "class": {
      const tokens = v.split(/\s+/).filter((t) => TOKEN.test(t));
      return tokens.length ? tokens.join(" ") : null;
    }
    case "id":
      return TOKEN.test(v) ? `aid-${v}` : null; // prefixed: can't clobber the panel's own ids
    case "width":
    case "height":
    case "start":
    case "colspan":
    case "rowspan":
      return NUMBER.test(v) ? v : null;
    case "scope":
      return ["row", "col", "rowgroup", "colgroup"].includes(v) ? v : null;
    default:
      return v.slice(0, 500); // title, alt: plain text
  }
}

/**
 * Copy the allowed part of `src`'s children into `dest` (a DOM node of the live document).
 * @param doc an object with createElement(tag) and createTextNode(text) (the live document)
 */
export function rebuildInto(dest, src, doc, { baseUrl, imageHosts = [] }, depth = 0) {
  if (depth > MAX_DEPTH) return;
  for (const node of Array.from(src.childNodes ?? [])) {
    if (node.nodeType === 3) {
      dest.appendChild(doc.createTextNode(node.nodeValue ?? ""));
      continue;
    }
    if (node.nodeType !== 1) continue; // comments, processing instructions, doctypes
    const tag = String(node.localName ?? node.nodeName ?? "").toLowerCase();
    if (DROP.has(tag)) continue;
    if (!Object.hasOwn(ALLOWED, tag)) {
      rebuildInto(dest, node, doc, { baseUrl, imageHosts }, depth + 1); // unknown wrapper: keep its content
      continue;
    }
    const el = doc.createElement(tag);
    for (const attr of Array.from(node.attributes ?? [])) {
      const name = String(attr.name).toLowerCase();
      if (!ALLOWED[tag].includes(name)) continue; // drops on*, style, srcdoc, formaction, ...
      const value = safeAttr(tag, name, attr.value, baseUrl, imageHosts);
      if (value !== null) el.setAttribute(name, value);
    }
    if (tag === "a" && el.getAttribute?.("href")) {
      el.setAttribute("target", "_blank");
      el.setAttribute("rel", "noopener noreferrer");
    }
    if (tag === "img") el.setAttribute("referrerpolicy", "no-referrer");
    dest.appendChild(el);
    rebuildInto(el, node, doc, { baseUrl, imageHosts }, depth + 1);
  }
}

/**
 * Parse `html` inertly and return a DocumentFragment of its allowlisted copy. Browser only.
 * Images load only from `baseUrl`'s origin (the Inflow server) or https `imageHosts`.
 */
export function safeFragment(html, { baseUrl = "about:blank", imageHosts = [] } = {}) {
  const inert = new DOMParser().parseFromString(String(html ?? ""), "text/html");
  const frag = document.createDocumentFragment();
  rebuildInto(frag, inert.body, document, { baseUrl, imageHosts });
  return frag;
}
