"""Plain text of a Markdown body, for indexing and snippets (never rendered as HTML).

It lives in the index layer because the index needs it and must not import server/; the renderer
(server/render.py) re-exports it.
"""

from __future__ import annotations

import html
import re

_TAG_RE = re.compile(r"<[^>]+>")
_SCRIPT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_IMAGE_RE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK_RE = re.compile(r"\[([^\]]*)\]\([^)]*\)")
# A task-list item's checkbox ("- [ ] Sign the form", "1. [x] Done"), at any nesting depth.
_TASK_RE = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+\[[ xX]\](?=\s|$)", re.MULTILINE)
_REF_DEF_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
# Markdown markup, in two passes: what starts a line (a heading's #, a quote's >, a list's
# bullet or number, a rule or table line), then emphasis and code marks anywhere. One pattern
# with both tried every alternative at every character (most of a build's text time). A line
# that starts with an emphasis mark is left to the second pass, as the one pattern did.
_LINE_MARKUP_RE = re.compile(
    r"^(?:\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)|(?![*_`~|])[-=:| ]{3,}$)", re.MULTILINE
)
_INLINE_MARKUP_RE = re.compile(r"[*_`~|]+")
_INLINE_MARKS = "*_`~|"


def to_text(markdown: str) -> str:
    """Plain text of a Markdown body, for indexing and snippets (never rendered as HTML).

    A handful of regexes rather than a full Markdown parse: about ten times faster, which
    matters for index builds, and the words that come out are the same. A pattern whose
    characters the text lacks is not run (most bodies have no link, tag or emphasis).
    """
    text = markdown
    if "<" in text:
        text = _SCRIPT_RE.sub(" ", text)
    if "[" in text:
        text = _TASK_RE.sub(" ", text)  # before links: "[ ]" is no link text, and no word
        if "](" in text:
            text = _IMAGE_RE.sub(r"\1", text)
            text = _LINK_RE.sub(r"\1", text)
        text = _REF_DEF_RE.sub(" ", text)
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    text = _LINE_MARKUP_RE.sub(" ", text)
    if any(mark in text for mark in _INLINE_MARKS):
        text = _INLINE_MARKUP_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())  # str.split's whitespace is re's \s
