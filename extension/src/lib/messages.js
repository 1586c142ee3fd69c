// Message shapes and sender checks for the worker's one dispatcher. Pure, unit-tested.

import { isPathsMessage } from "./paths.js";
import { isPeerMessage } from "./peer.js";

const MAX_URL = 8 * 1024;
const SLUG = /^[a-z0-9][a-z0-9-]{0,127}$/;

const FEEDBACK_MODES = new Set(["hold", "release"]);

const isStr = (v, max) => typeof v === "string" && v.length <= max;
const isOptStr = (v, max) => v === undefined || v === null || isStr(v, max);
const isHttpUrl = (v) => isStr(v, MAX_URL) && /^https?:\/\//i.test(v);

export function isPage(p) {
  return (
    Boolean(p) &&
    typeof p === "object" &&
    isHttpUrl(p.url) &&
    isStr(p.title, 1024) &&
    Array.isArray(p.headings) &&
    p.headings.length <= 20 &&
    p.headings.every((h) => isStr(h, 300)) &&
    isStr(p.selection, 500)
  );
}

/** Messages content scripts may send. */
const CONTENT = {
  "page-changed": (m) => isPage(m.page),
  "selection-changed": (m) => isStr(m.selection, 500),
};

/** Messages the extension's own pages (side panel, options) may send. */
const PANEL = {
  "panel-hello": (m) => m.tabId === null || Number.isInteger(m.tabId),
  "sign-in": () => true,
  "sign-out": () => true,
  retry: () => true,
  search: (m) => isStr(m.q, 256) && isOptStr(m.app, 64) && isOptStr(m.cursor, 512),
  "get-aid": (m) => isStr(m.id, 128) && SLUG.test(m.id),
  // mode "hold": a vote, held while the panel offers a comment; "release": send the held vote
  // (if still held) without a comment; none: send now, with the comment if given.
  feedback: (m) =>
    isStr(m.aid_id, 128) &&
    SLUG.test(m.aid_id) &&
    typeof m.helpful === "boolean" &&
    isOptStr(m.comment, 1000) &&
    (m.mode === undefined || FEEDBACK_MODES.has(m.mode)) &&
    (m.mode === undefined || !m.comment),
  // The panel displayed the mapped page `pageKey` (analytics: panel_opened, suggestions_shown).
  shown: (m) => isStr(m.pageKey, 2 * MAX_URL),
  // "Open in a new tab" of an aid (analytics: link_followed; only the host is recorded).
  "link-followed": (m) => isStr(m.aid_id, 128) && SLUG.test(m.aid_id) && isHttpUrl(m.url),
  // Peer learning (src/lib/peer.js): {type: "peer", op, ...}; page operations name the page on
  // screen by its pageKey, and the worker sends that page's URL, never one from the message.
  peer: isPeerMessage,
  // Learning paths (src/lib/paths.js): {type: "paths", op: "mine"} and {op: "done", path, step}.
  paths: isPathsMessage,
};

export const CONTENT_TYPES = Object.freeze(Object.keys(CONTENT));
export const PANEL_TYPES = Object.freeze(Object.keys(PANEL));

/**
 * Decide whether a message may be handled.
 * @returns {{ok: true, from: "content"|"panel"} | {ok: false, reason: string}}
 */
export function checkMessage(msg, sender, { runtimeId, extOrigin }) {
  if (!msg || typeof msg !== "object" || typeof msg.type !== "string") {
    return { ok: false, reason: "malformed" };
  }
  if (!sender || sender.id !== runtimeId) return { ok: false, reason: "foreign sender" };
  const senderUrl = typeof sender.url === "string" ? sender.url : "";
  const fromOwnPage = sender.origin === extOrigin || senderUrl.startsWith(`${extOrigin}/`);
  if (Object.hasOwn(CONTENT, msg.type)) {
    // A content script: runs in a web page's tab, top frame only, never in our own pages.
    if (!sender.tab || !Number.isInteger(sender.tab.id) || sender.frameId !== 0 || fromOwnPage) {
      return { ok: false, reason: "content message not from a tab" };
    }
    return CONTENT[msg.type](msg)
      ? { ok: true, from: "content" }
      : { ok: false, reason: "bad shape" };
  }
  if (Object.hasOwn(PANEL, msg.type)) {
    if (!fromOwnPage) return { ok: false, reason: "panel message not from an extension page" };
    return PANEL[msg.type](msg) ? { ok: true, from: "panel" } : { ok: false, reason: "bad shape" };
  }
  return { ok: false, reason: "unknown type" };
}
