// What the server accepts from a page (POST /api/v1/suggest, the PageRequest declaration in
// server/models.py): the one place the extension reads these limits from. tests/test_page_limits.py
// checks them against the server's OpenAPI document.

export const PAGE_LIMITS = Object.freeze({
  title: 500,
  selection: 2000,
  headings: 50,
  heading: 300,
  selectors: 100,
  selector: 300,
});

/** Cut a string to `max` characters without splitting a surrogate pair. */
export function clampText(s, max) {
  const str = typeof s === "string" ? s : "";
  if (str.length <= max) return str;
  let cut = str.slice(0, max);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut;
}

function clampList(list, count, each) {
  return Array.isArray(list)
    ? list
        .filter((x) => typeof x === "string")
        .slice(0, count)
        .map((x) => clampText(x, each))
    : undefined;
}

/** A suggest body within the server's limits: long titles, selections and heading lists are cut,
 * never refused (a page with a 1,000-character title still gets its aids). Other fields pass. */
export function clampPageRequest(body) {
  if (!body || typeof body !== "object") return body;
  const out = { ...body };
  if (typeof out.title === "string") out.title = clampText(out.title, PAGE_LIMITS.title);
  if (typeof out.selection === "string")
    out.selection = clampText(out.selection, PAGE_LIMITS.selection);
  if (out.headings !== undefined)
    out.headings = clampList(out.headings, PAGE_LIMITS.headings, PAGE_LIMITS.heading);
  if (out.selectors !== undefined && out.selectors !== null)
    out.selectors = clampList(out.selectors, PAGE_LIMITS.selectors, PAGE_LIMITS.selector);
  return out;
}
