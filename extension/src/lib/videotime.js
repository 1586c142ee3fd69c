/**
 * Links into a video at a moment: where a search or suggest hit's transcript cue is said.
 * Pure: no DOM, no extension APIs (node tests in tests/videotime.test.mjs).
 *
 * - YouTube (youtube.com, youtu.be, youtube-nocookie.com): `?t=83` (an embed URL: `?start=83`)
 * - Vimeo (vimeo.com, player.vimeo.com): `#t=83s`
 * - anything else, a media file above all (.mp4, .webm): the W3C media fragment `#t=83`
 */
import { clock } from "./viewmodel.js";

const CUE_CHARS = 120;

function onHost(host, domain) {
  return host === domain || host.endsWith(`.${domain}`);
}

/** The `source` URL opened at `seconds` (whole seconds), or null when it is no http(s) URL. */
export function videoAt(source, seconds) {
  let u;
  try {
    u = new URL(String(source ?? ""));
  } catch {
    return null;
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return null;
  const sec = Math.max(0, Math.floor(Number(seconds) || 0));
  const host = u.hostname.toLowerCase();
  if (onHost(host, "youtube.com") || host === "youtu.be" || onHost(host, "youtube-nocookie.com")) {
    const embed = u.pathname.startsWith("/embed/");
    u.searchParams.delete(embed ? "t" : "start");
    u.searchParams.set(embed ? "start" : "t", String(sec));
    if (/^#?t=/.test(u.hash)) u.hash = "";
    return u.href;
  }
  if (onHost(host, "vimeo.com")) {
    u.hash = `t=${sec}s`;
    return u.href;
  }
  u.hash = `t=${sec}`;
  return u.href;
}

/** The words of a cue as the panel quotes them: one line, at most CUE_CHARS, cut at a word. */
export function cueQuote(text) {
  const s = String(text ?? "")
    .replace(/\s+/g, " ")
    .trim();
  if (s.length <= CUE_CHARS) return s;
  const cut = s.slice(0, CUE_CHARS);
  const space = cut.lastIndexOf(" ");
  return `${(space > CUE_CHARS / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:]+$/, "")}…`;
}

/**
 * What a hit's cue line shows and where it leads: {href, time: "1:23", label: "▶ 1:23 “…”"},
 * or null when the hit has no cue or its video no http(s) source. The label is plain text
 * (the panel sets it as textContent).
 */
export function cueLink(cue) {
  if (!cue || typeof cue !== "object" || !Number.isFinite(Number(cue.start))) return null;
  const href = videoAt(cue.source, cue.start);
  if (!href) return null;
  const time = clock(Math.max(0, Math.floor(Number(cue.start))));
  const quote = cueQuote(cue.text);
  return { href, time, label: quote ? `▶ ${time} “${quote}”` : `▶ ${time}` };
}
