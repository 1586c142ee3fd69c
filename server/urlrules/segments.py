"""Segment patterns: `*` (one non-empty segment), `**` (any number), globs like `INV-*`.

Matching never backtracks more than a plain wildcard matcher: a glob splits at its `*`s and
finds its middle pieces left to right with `str.find`; a path splits at its `**`s and places its
middle groups left to right at the first position where they fit. Both are correct because a
wildcard can absorb whatever the greedy placement skips, and both run in O(input x pattern).
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


class _Deep:
    """The `**` token (one shared instance)."""

    def __repr__(self) -> str:
        return "DEEP"


DEEP = _Deep()
ANY_SEGMENT = Glob("", (), "", 1)
Token = str | Glob | _Deep
Group = tuple[str | Glob, ...]


def _token_matches(token: str | Glob, seg: str) -> bool:
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

    def __post_init__(self) -> None:
        groups: list[list[str | Glob]] = [[]]
        for t in self.tokens:
            if isinstance(t, _Deep):
                groups.append([])
            else:
                groups[-1].append(t)
        object.__setattr__(self, "head", tuple(groups[0]))
        object.__setattr__(self, "deep", len(groups) > 1)
        object.__setattr__(self, "tail", tuple(groups[-1]) if len(groups) > 1 else ())
        object.__setattr__(self, "middles", tuple(tuple(g) for g in groups[1:-1] if g))
        object.__setattr__(self, "min_len", sum(len(g) for g in groups))

    @property
    def literal_count(self) -> int:
        return sum(1 for t in self.tokens if type(t) is str)

    @property
    def wildcard_count(self) -> int:
        """`*` and `**` segments count one each; a glob counts each of its `*`s."""
        count = 0
        for t in self.tokens:
            if isinstance(t, Glob):
                count += 1 if t is ANY_SEGMENT else len(t.middles) + 1
            elif isinstance(t, _Deep):
                count += 1
        return count

    def literal_prefix(self) -> tuple[str, ...]:
        prefix: list[str] = []
        for t in self.tokens:
            if type(t) is not str:
                break
            prefix.append(t)
        return tuple(prefix)

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
