"""`re:` rules: the portable subset of regular expressions shared by Python `re` and JavaScript.

The same source runs in the extension (`new RegExp(src, "u")`), so constructs that only one side
understands, or that the two read differently, are refused here with the same messages as the JS
twin. The URL a regex sees is pure ASCII (see `ParsedUrl.normalized`), so `\\d`, `\\w`, `\\s`
and `.` mean the same on both sides.
"""

from __future__ import annotations

import re
import warnings

MAX_REGEX_CHARS = 512

_QUANTIFIER_END = "*+?}"
_PORTABLE_LETTER_ESCAPES = frozenset("bBdDfnrsStvwWxu")
_HEX_RE = re.compile(r"[0-9A-Fa-f]{2}|[0-9A-Fa-f]{4}")


class RegexError(ValueError):
    """The message says what is not portable or why the regex does not compile."""


def check_portable(src: str) -> None:
    """Raise RegexError for syntax outside the portable subset (see docs/url-rules.md)."""
    if not src:
        raise RegexError("empty regex after 're:'")
    if len(src) > MAX_REGEX_CHARS:
        raise RegexError(f"regex longer than {MAX_REGEX_CHARS} characters")
    i, n = 0, len(src)
    in_class = False
    while i < n:
        c = src[i]
        if c == "\\":
            if i + 1 >= n:
                raise RegexError("regex ends with a lone backslash")
            e = src[i + 1]
            if e in "AZz":
                raise RegexError(f"'\\{e}' is Python-only; use '^' or '$'")
            if e.isascii() and e.isalpha() and e not in _PORTABLE_LETTER_ESCAPES:
                raise RegexError(f"'\\{e}' escape is not portable")
            if e in "xu" and not _HEX_RE.fullmatch(src[i + 2 : i + (4 if e == "x" else 6)]):
                n_hex = 2 if e == "x" else 4
                raise RegexError(f"'\\{e}' must be followed by exactly {n_hex} hex digits")
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif c == "[":
                raise RegexError("'[' inside a character class is not portable; escape it as '\\['")
            elif c in "-&~|" and src[i + 1 : i + 2] == c:
                raise RegexError(f"'{c}{c}' inside a character class is not portable")
            i += 1
            continue
        if c == "[":
            in_class = True
            j = i + 1 + (src[i + 1 : i + 2] == "^")
            if src[j : j + 1] == "]":
                raise RegexError("']' right after '[' or '[^' is not portable; escape it as '\\]'")
            i = j
            continue
        if c == "(" and src[i + 1 : i + 2] == "?":
            _check_group(src[i + 2 : i + 4])
        elif c == "{" and src[i + 1 : i + 2] == ",":
            raise RegexError("'{,n}' quantifiers are not portable; write '{0,n}'")
        elif c in _QUANTIFIER_END and src[i + 1 : i + 2] == "+" and i > 0:
            raise RegexError("possessive quantifiers ('*+', '++', '?+', '}+') are not portable")
        i += 1


def _check_group(nxt: str) -> None:
    if nxt.startswith("P"):
        raise RegexError("named groups '(?P<name>...)' are Python-only; use a plain group")
    if nxt.startswith("<") and nxt[1:2] not in ("=", "!"):
        raise RegexError("named groups '(?<name>...)' are not portable; use a plain group")
    if nxt.startswith("#"):
        raise RegexError("comments '(?#...)' are not portable")
    if nxt.startswith(">"):
        raise RegexError("atomic groups '(?>...)' are not portable")
    if nxt.startswith("("):
        raise RegexError("conditional groups '(?(...)...)' are not portable")
    if nxt[:1] not in (":", "=", "!", "<"):
        raise RegexError("inline flags like '(?i)' are not portable")


def compile_portable(src: str) -> re.Pattern[str]:
    """Check the portable subset, then compile (warnings such as FutureWarning count as errors)."""
    check_portable(src)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(src, re.ASCII)
    except (re.error, Warning) as exc:
        raise RegexError(f"regex does not compile: {exc}") from exc
