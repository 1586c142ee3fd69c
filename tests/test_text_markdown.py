"""index/text.py `to_text` skips the patterns a body cannot match and strips markup in two
passes; the plain text is the one the single-pattern version made (kept here as the oracle), so
an index build's faster text changes no word that gets indexed or shown in a snippet."""

from __future__ import annotations

import html
import random
import re

from index.text import (
    _IMAGE_RE,
    _LINK_RE,
    _REF_DEF_RE,
    _SCRIPT_RE,
    _TAG_RE,
    _TASK_RE,
    to_text,
)

_MARKUP = re.compile(
    r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)|[*_`~|]+|^[-=:| ]{3,}$", re.MULTILINE
)


def oracle(markdown: str) -> str:
    """to_text as it was: every pattern run, markup in one pass (the patterns it shares with
    to_text imported)."""
    text = _SCRIPT_RE.sub(" ", markdown)
    text = _TASK_RE.sub(" ", text)
    text = _IMAGE_RE.sub(r"\1", text)
    text = _LINK_RE.sub(r"\1", text)
    text = _REF_DEF_RE.sub(" ", text)
    text = _TAG_RE.sub(" ", text)
    text = _MARKUP.sub(" ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


ATOMS = [
    "#",
    "## ",
    "> ",
    ">",
    "- ",
    "* ",
    "+ ",
    "1. ",
    "2) ",
    "**",
    "__",
    "`",
    "~~",
    "|",
    "---",
    "===",
    ":--",
    "| --- |",
    "\n",
    "\n\n",
    " ",
    "   ",
    "    ",
    "\t",
    "Approve",
    "the",
    "claim",
    "_a_",
    "*b*",
    "9.",
    "-",
    "[ ] ",
    "- [x] ",
    "[link](https://x.example/a)",
    "![img](i.png)",
    "[ref]: https://x.example",
    "<b>",
    "</b>",
    "<script>alert(1)</script>",
    "&amp;",
    "&nbsp;",
    "&lt;",
    "[",
    "]",
    "(",
    ")",
    "](",
    "<",
    "\u00a0",
    "Straße",
    "W-2",
]


def test_to_text_is_the_single_pattern_text() -> None:
    rng = random.Random(2026)
    for _ in range(60_000):
        markdown = "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, 18)))
        assert to_text(markdown) == oracle(markdown), repr(markdown)


def test_a_plain_body_and_a_marked_up_one_give_their_words() -> None:
    assert to_text("Approve the claim.\n\nThen pay it.") == "Approve the claim. Then pay it."
    marked = "## Approve\n\n- [ ] **Check** the [claim](https://x.example) &amp; pay\n---"
    assert to_text(marked) == "Approve Check the claim & pay"
