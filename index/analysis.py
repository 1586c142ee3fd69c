"""One-pass analyzers: the same tokens as Whoosh's StemmingAnalyzer / StandardAnalyzer, faster.

Whoosh's composable analyzers chain five generators per token (tokenizer, lowercase, stop filter,
stemmer...), which dominated index build time (~2 ms per 300-word aid). These do the same work in
one loop with a memo of stems: tokens are `\\w+(\\.?\\w+)*` runs, lowercased, stop words and words
shorter than `minsize` dropped (positions renumbered, as StopFilter does), then Porter-stemmed and
normalised across derivational forms (`derive`: "urgency" ~ "urgent", "accrual" ~ "accrue").

Compounds (`join=True`): two words written apart are also indexed as one ("time sheet" also gives
"timesheet", "code owners" "codeowners", "W-2" "w2", "e-mail" "email"), at the second word's
position. A query then finds "timesheet" in an aid that says "time sheet"; the other way round,
queries join adjacent words themselves (index/query.py). Joined tokens keep, as `original`, the
words they were made of ("time sheet"), which is how reasons quote the page's own words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from whoosh.analysis import Analyzer, Token
from whoosh.analysis.filters import STOP_WORDS
from whoosh.lang.porter import stem as porter_stem

WORD_RE = re.compile(r"\w+(?:\.?\w+)*", re.UNICODE)
_MAX_MEMO = 200_000
_SPACE_GAP = re.compile(r"[ \t]+")

# Derivational endings Porter leaves apart when the stem is short (its rules need a "measure" of
# 2): "urgenc"/"urgent", "pregnanc"/"pregnant", "accrual"/"accru", "denial"/"deni",
# "essenti"/"essenc". Applied to Porter's output, at index and query time alike, in this order.
_DERIVATIONS: tuple[tuple[str, str, int], ...] = (
    ("ual", "u", 6),  # accrual -> accru (accrue), manual -> manu
    ("ial", "i", 6),  # denial -> deni (deny), initial -> initi (initiate)
    ("ci", "c", 6),  # financi (financial) -> financ (finance)
    ("ti", "t", 6),  # essenti (essential) -> essent, potenti -> potent
    ("anc", "ant", 5),  # pregnanc (pregnancy) -> pregnant, absenc -> absent
    ("enc", "ent", 5),  # urgenc (urgency) -> urgent, frequenc -> frequent
)


_WORDS_AND_GAPS = re.compile(f"({WORD_RE.pattern})")
_ASCII_SEPARATORS = {i: " " for i in range(128) if not (chr(i).isalnum() or chr(i) in "_.")}


def _dotted(chunk: str) -> list[str] | tuple[str]:
    """The words of an ASCII chunk of word characters and dots."""
    return WORD_RE.findall(chunk) if "." in chunk else (chunk,)


def derive(stem: str) -> str:
    """One form for a Porter stem and its derivational relatives (see _DERIVATIONS)."""
    for suffix, replacement, min_len in _DERIVATIONS:
        if len(stem) >= min_len and stem.endswith(suffix):
            stem = stem[: -len(suffix)] + replacement
    return stem


class FastAnalyzer(Analyzer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        stem: bool,
        stoplist: frozenset[str] = frozenset(STOP_WORDS),
        minsize: int = 2,
        maxsize: int = 40,
        join: bool | str = False,
        short_codes_only: bool = False,
    ) -> None:
        self.stem = stem
        self.stoplist = frozenset(stoplist)
        self.minsize = minsize
        self.maxsize = maxsize
        # Also emit each pair of adjacent words joined into one token (compounds); "hyphen": only
        # words joined by a hyphen ("W-2"): a long body's every word pair would cost a Porter
        # stem each (index build time) and double its postings.
        self.join = join
        # Page text: a two-character word counts only as a code ("P1", "2FA") or an acronym
        # written in capitals ("HR"); "go", "ok" and the like are noise there.
        self.short_codes_only = short_codes_only
        self._memo: dict[str, str] = {}

    # The schema (with its analyzers) is pickled into the index: keep the memo out of it.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._memo = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FastAnalyzer) and self.__getstate__() == other.__getstate__()

    def __hash__(self) -> int:
        return hash((self.stem, self.minsize, self.maxsize, self.join))

    def _stemmed(self, word: str) -> str:
        memo = self._memo
        out = memo.get(word)
        if out is None:
            out = derive(porter_stem(word))
            if len(memo) < _MAX_MEMO:
                memo[word] = out
        return out

    def positions(self, value: str) -> dict[str, list[int]]:
        """Each token of `value` with its positions (ascending; tokens in no particular
        order): what iterating `self(value, positions=True)` gives, grouped by text. Index
        builds call it (index/bulk.py).

        Text with no compound to join (join off; a body without a hyphen) takes a path of
        list comprehensions and a sort, several times faster than a Token per word; text with
        compounds a loop over the words and the gaps between them (`_joined` decides, as for
        `__call__`)."""
        if self.short_codes_only:  # page text (queries): the tokens themselves
            out: dict[str, list[int]] = {}
            for t in self(value, positions=True):
                out.setdefault(t.text, []).append(t.pos)
            return out
        if self.join is True or (self.join and "-" in value):
            return self._joined_positions(value)
        if value.isascii():
            # ASCII: every character but a letter, digit, "_" or "." is a separator, and a
            # "." joins words only between two word characters ("3.5", "U.S.A")
            words = value.lower().translate(_ASCII_SEPARATORS).split()
            if "." in value:
                words = [w for chunk in words for w in _dotted(chunk)]
        else:
            words = [w.lower() for w in WORD_RE.findall(value)]
        lo, hi, stoplist = self.minsize, self.maxsize, self.stoplist
        # stopped words are dropped and the positions renumbered, as in __call__
        kept = [w for w in words if lo <= len(w) <= hi and w not in stoplist]
        texts: list[str] = kept
        if self.stem:
            texts = list(map(self._memo.get, kept))  # type: ignore[arg-type]
            if None in texts:
                stemmed = self._stemmed
                pairs = zip(texts, kept, strict=True)
                texts = [t if t is not None else stemmed(w) for t, w in pairs]
        order = sorted(range(len(texts)), key=texts.__getitem__)  # stable: positions ascend
        return {text: list(group) for text, group in groupby(order, texts.__getitem__)}

    def _joined_positions(self, value: str) -> dict[str, list[int]]:
        parts = _WORDS_AND_GAPS.split(value)  # gap, word, gap, word, ..., gap
        lo, hi, stoplist, stem = self.minsize, self.maxsize, self.stoplist, self.stem
        stemmed = self._stemmed
        out: dict[str, list[int]] = {}
        pos = 0
        before, before_stopped = "", True
        for i in range(1, len(parts), 2):
            word = parts[i].lower()
            stopped = len(word) < lo or len(word) > hi or word in stoplist
            if i > 1:
                joined = self._joined(before, before_stopped, parts[i - 1], word, stopped)
                if joined:
                    out.setdefault(stemmed(joined) if stem else joined, []).append(pos)
            before, before_stopped = word, stopped
            if stopped:
                continue
            out.setdefault(stemmed(word) if stem else word, []).append(pos)
            pos += 1
        return out

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            t.original = t.text = value
            t.boost = 1.0
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar, t.endchar = start_char, start_char + len(value)
            yield t
            return
        stoplist, minsize, maxsize, stem = self.stoplist, self.minsize, self.maxsize, self.stem
        join, codes_only = self.join, self.short_codes_only
        pos = start_pos
        prev: tuple[str, int, int, bool] | None = None  # word, start, end, stopped
        for m in WORD_RE.finditer(value):
            raw = m.group()
            word = raw.lower()
            stopped = len(word) < minsize or len(word) > maxsize or word in stoplist
            if not stopped and codes_only and len(word) == 2:
                stopped = not (raw.isupper() or any(c.isdigit() for c in raw))
            if join and prev is not None:
                gap = value[prev[2] : m.start()]
                joined = self._joined(prev[0], prev[3], gap, word, stopped)
                if joined:
                    t.stopped = False
                    t.boost = 1.0
                    if keeporiginal:
                        t.original = value[prev[1] : m.end()].lower()
                    t.text = self._stemmed(joined) if stem else joined
                    if positions:
                        t.pos = pos
                    if chars:
                        t.startchar = start_char + prev[1]
                        t.endchar = start_char + m.end()
                    yield t
            prev = (word, m.start(), m.end(), stopped)
            if stopped and removestops:
                continue
            t.stopped = stopped
            t.boost = 1.0
            if keeporiginal:
                t.original = word
            t.text = self._stemmed(word) if stem and not stopped else word
            if positions:
                t.pos = pos
                pos += 1
            if chars:
                t.startchar = start_char + m.start()
                t.endchar = start_char + m.end()
            yield t

    def _joined(self, before: str, prev_stopped: bool, gap: str, word: str, stopped: bool) -> str:
        """The compound of the previous word and this one (lowercased; `gap`: the text between
        them), or "" when they do not make one."""
        if gap == "-":  # "W-2", "e-mail", "follow-up": joined whatever the parts' lengths
            if not any(c.isalpha() for c in before + word):
                return ""  # "2026-10": a date or number, not a word
            joined = before + word
        elif self.join is True and not (stopped or prev_stopped) and _SPACE_GAP.fullmatch(gap):
            if not (before.isalpha() and word.isalpha()):
                return ""
            joined = before + word
        else:
            return ""
        return joined if self.minsize <= len(joined) <= self.maxsize else ""
