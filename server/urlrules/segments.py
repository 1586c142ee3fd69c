"""Segment patterns: `*` (one non-empty segment), `**` (any number), globs like `INV-*`, and
typed segments like `006{alnum:12-15}` or `INV-{digits}`.

Matching never backtracks more than a plain wildcard matcher: a glob splits at its `*`s and
finds its middle pieces left to right with `str.find`; a path splits at its `**`s and places its
middle groups left to right at the first position where they fit. Both are correct because a
wildcard can absorb whatever the greedy placement skips, and both run in O(input x pattern).
A typed segment is a tiny matcher, not a regex: it keeps the set of positions its items can end
at (one pass per item over at most len(segment) + 1 positions), so it too runs in
O(segment x items) whatever the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Glob:
    """`*`-only glob over one string; `min_len` is 1 for a bare `*` path segment."""

    prefix: str
    middles: tuple[str, ...]
    suffix: str
    min_len: int = 0

    @classmethod
    def from_pieces(cls, pieces: Sequence[str], *, nonempty: bool = False) -> Glob:
        """Pieces are the literal text between the `*`s (so there are at least two)."""
        total = sum(len(p) for p in pieces)
        middles = tuple(p for p in pieces[1:-1] if p)
        return cls(pieces[0], middles, pieces[-1], max(total, 1 if nonempty else 0))

    def matches(self, text: str) -> bool:
        if len(text) < self.min_len:
            return False
        if not text.startswith(self.prefix) or not text.endswith(self.suffix):
            return False
        pos, end = len(self.prefix), len(text) - len(self.suffix)
        for piece in self.middles:
            i = text.find(piece, pos, end)
            if i < 0:
                return False
            pos = i + len(piece)
        return True


DIGITS = frozenset("0123456789")
HEX = frozenset("0123456789abcdefABCDEF")
ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Placeholder types with a character class; `guid` is the one shaped type. `None` = any character.
CLASSES: dict[str, frozenset[str] | None] = {
    "digits": DIGITS,
    "hex": HEX,
    "alnum": ALNUM,
    "any": None,
}
PLACEHOLDER_TYPES = ("digits", "hex", "alnum", "guid", "any")
_GUID_GROUPS = (8, 4, 4, 4, 12)


@dataclass(frozen=True, slots=True)
class Lit:
    """Literal text inside a typed segment."""

    text: str


@dataclass(frozen=True, slots=True)
class Run:
    """A run of `lo` to `hi` (None: no limit) characters of one class: `{digits:3}`, `*`."""

    type: str  # a CLASSES key; "*" for a `*` (any characters, possibly none)
    lo: int
    hi: int | None

    @property
    def chars(self) -> frozenset[str] | None:
        return None if self.type == "*" else CLASSES[self.type]


@dataclass(frozen=True, slots=True)
class Guid:
    """8-4-4-4-12 hex digits, bare or wrapped in `{}` (in a path: `%7B...%7D`)."""


Item = Lit | Run | Guid


def guid_ends(text: str, pos: int) -> list[int]:
    """Where a GUID starting at `pos` ends (at most one position)."""
    close = ""
    if text.startswith("{", pos):
        pos, close = pos + 1, "}"
    elif text.startswith("%7B", pos):
        pos, close = pos + 3, "%7D"
    for i, size in enumerate(_GUID_GROUPS):
        if i and not text.startswith("-", pos):
            return []
        pos += bool(i)
        chunk = text[pos : pos + size]
        if len(chunk) != size or not all(c in HEX for c in chunk):
            return []
        pos += size
    if close:
        if not text.startswith(close, pos):
            return []
        pos += len(close)
    return [pos]


@dataclass(frozen=True, slots=True)
class Typed:
    """A segment (or query value) with placeholders: literal text, `*`s and typed runs."""

    items: tuple[Item, ...]
    min_len: int = field(init=False)
    max_len: int | None = field(init=False)
    stars: int = field(init=False)

    def __post_init__(self) -> None:
        lo, hi, stars = 0, 0, 0
        for item in self.items:
            if isinstance(item, Lit):
                lo, hi = lo + len(item.text), hi if hi < 0 else hi + len(item.text)
            elif isinstance(item, Guid):
                lo, hi = lo + 36, hi if hi < 0 else hi + 42
            else:
                stars += item.type == "*"
                lo += item.lo
                hi = -1 if hi < 0 or item.hi is None else hi + item.hi
        object.__setattr__(self, "min_len", lo)
        object.__setattr__(self, "max_len", None if hi < 0 else hi)
        object.__setattr__(self, "stars", stars)

    def matches(self, text: str) -> bool:
        n = len(text)
        if n < self.min_len or (self.max_len is not None and n > self.max_len):
            return False
        items = self.items
        first, last = items[0], items[-1]
        if isinstance(first, Lit) and not text.startswith(first.text):
            return False
        if isinstance(last, Lit) and not text.endswith(last.text):
            return False
        positions = [0]  # ascending, distinct: where the items so far can end
        for item in items:
            if isinstance(item, Lit):
                size = len(item.text)
                positions = [p + size for p in positions if text.startswith(item.text, p)]
            elif isinstance(item, Guid):
                positions = sorted({e for p in positions for e in guid_ends(text, p)})
            else:
                positions = _run_ends(item, text, positions)
            if not positions:
                return False
        return positions[-1] == n


def _run_ends(run: Run, text: str, positions: list[int]) -> list[int]:
    """Every end of `run` starting at one of `positions`: a union of intervals, merged."""
    n = len(text)
    chars = run.chars
    span: list[int] | None = None
    if chars is not None:  # span[p]: how many class characters start at p
        span = [0] * (n + 1)
        for i in range(n - 1, -1, -1):
            if text[i] in chars:
                span[i] = span[i + 1] + 1
    out: list[int] = []
    top = -1  # the highest position already in `out`
    for p in positions:
        longest = n - p if span is None else span[p]
        if run.hi is not None and run.hi < longest:
            longest = run.hi
        if longest < run.lo:
            continue
        start, end = max(p + run.lo, top + 1), p + longest
        if start <= end:
            out.extend(range(start, end + 1))
            top = end
    return out


class _Deep:
    """The `**` token (one shared instance)."""

    def __repr__(self) -> str:
        return "DEEP"


DEEP = _Deep()
ANY_SEGMENT = Glob("", (), "", 1)
Token = str | Glob | Typed | _Deep
Group = tuple[str | Glob | Typed, ...]


def _token_matches(token: str | Glob | Typed, seg: str) -> bool:
    return token == seg if type(token) is str else token.matches(seg)  # type: ignore[union-attr]


def _group_at(group: Group, segs: Sequence[str], start: int) -> bool:
    return all(_token_matches(t, segs[start + i]) for i, t in enumerate(group))


@dataclass(frozen=True, slots=True)
class SegmentPattern:
    """A path (or fragment route) pattern: tokens split at their `**`s."""

    tokens: tuple[Token, ...]
    head: Group = field(init=False)
    middles: tuple[Group, ...] = field(init=False)
    tail: Group = field(init=False)
    deep: bool = field(init=False)
    min_len: int = field(init=False)
    # Counted once here (rule ranking reads them per rule; compiled routes are shared between
    # rules with the same path, see syntax.py `_parse_route`).
    literal_count: int = field(init=False)
    # Segments with a placeholder (`{digits}`...): more specific than `*`, less than text.
    typed_count: int = field(init=False)
    # `*` and `**` segments count one each; a glob or typed segment counts each `*`.
    wildcard_count: int = field(init=False)
    prefix: tuple[str, ...] = field(init=False)  # the literal segments before any pattern

    def __post_init__(self) -> None:
        groups: list[list[str | Glob | Typed]] = [[]]
        literal = typed = wildcards = 0
        prefix: list[str] = []
        open_prefix = True
        for t in self.tokens:
            if type(t) is str:
                literal += 1
                if open_prefix:
                    prefix.append(t)
            else:
                open_prefix = False
                if isinstance(t, Glob):
                    wildcards += 1 if t is ANY_SEGMENT else len(t.middles) + 1
                elif isinstance(t, Typed):
                    typed += 1
                    wildcards += t.stars
                elif isinstance(t, _Deep):
                    wildcards += 1
            if isinstance(t, _Deep):
                groups.append([])
            else:
                groups[-1].append(t)
        object.__setattr__(self, "head", tuple(groups[0]))
        object.__setattr__(self, "deep", len(groups) > 1)
        object.__setattr__(self, "tail", tuple(groups[-1]) if len(groups) > 1 else ())
        object.__setattr__(self, "middles", tuple(tuple(g) for g in groups[1:-1] if g))
        object.__setattr__(self, "min_len", sum(len(g) for g in groups))
        object.__setattr__(self, "literal_count", literal)
        object.__setattr__(self, "typed_count", typed)
        object.__setattr__(self, "wildcard_count", wildcards)
        object.__setattr__(self, "prefix", tuple(prefix))

    def literal_prefix(self) -> tuple[str, ...]:
        return self.prefix

    def matches(self, segs: Sequence[str]) -> bool:
        n = len(segs)
        if not self.deep:
            if n != len(self.head):
                return False
            for t, s in zip(self.head, segs, strict=True):
                if not (t == s if type(t) is str else t.matches(s)):  # type: ignore[union-attr]
                    return False
            return True
        if n < self.min_len or not _group_at(self.head, segs, 0):
            return False
        end = n - len(self.tail)
        if not _group_at(self.tail, segs, end):
            return False
        pos = len(self.head)
        for group in self.middles:
            last_start = end - len(group)
            while pos <= last_start and not _group_at(group, segs, pos):
                pos += 1
            if pos > last_start:
                return False
            pos += len(group)
        return True
