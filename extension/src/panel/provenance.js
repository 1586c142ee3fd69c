// "From <source>, updated <when>" on an aid a source made (the aid JSON's `provenance`:
// {source_id, source_name, kind, url, updated_at} or null; docs/sources.md). Pure, so Node tests
// it; the panel builds its DOM with text nodes only.

import { DAY_MS, monthYear } from "../lib/viewmodel.js";

/** An http(s) URL as it is, else null (a javascript: or data: link is never followed). */
export function webUrl(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}

/** "today", "yesterday", "3 days ago", else "14 November 2026" (UTC days); "" when unknown. */
export function updatedWords(iso, now = Date.now()) {
  const at = typeof iso === "string" ? Date.parse(iso) : NaN;
  if (Number.isNaN(at)) return "";
  const day = (t) => Math.floor(t / DAY_MS);
  const days = day(now) - day(at);
  if (days <= 0) return "today";
  if (days === 1) return "yesterday";
  if (days < 7) return `${days} days ago`;
  return `${new Date(at).getUTCDate()} ${monthYear(at)}`;
}

/**
 * What the panel says about where an aid comes from: {name, href, updated} or null (an aid
 * written in Inflow). `href` is the item's http(s) address or null; `updated` words or "".
 */
export function provenanceLine(provenance, now = Date.now()) {
  if (!provenance || typeof provenance !== "object") return null;
  const name = typeof provenance.source_name === "string" ? provenance.source_name.trim() : "";
  if (!name) return null;
  return {
    name,
    href: webUrl(provenance.url),
    updated: updatedWords(provenance.updated_at, now),
  };
}
