"""BM25F over one scope's documents, reading postings block by block.

A related query is an OR of up to 10 page words over 5 fields: some 50 term matchers. Whoosh
scores it through a tree of union matchers, where every candidate document costs a walk of the
tree in Python (`is_active`, `id`, `next` on each branch); at 100k aids that walk was most of a
suggestion's time, although the page's app holds only a few hundred aids. Here each term's
posting list is read only where the scope's documents are (index/postings.py jumps to the
block), a block's ids and weights at a time, and the documents' scores are summed in a dict:
the same BM25F as `WEIGHTING` (same idf, average lengths, per-field B), the same order
(score, then document number), and, for free, which (field, word) pairs each document matched.

Only ORs of terms are scored here (`leaves_of` says None for anything else: phrases, ANDs); the
caller then runs the query through Whoosh as before.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from whoosh import query as wq
from whoosh.codec import whoosh3
from whoosh.matching import WrappingMatcher
from whoosh.reading import TermNotFound
from whoosh.scoring import BM25F

RUN_GAP = 1024  # documents this far apart are read as two runs (skipping the postings between)


@dataclass(frozen=True)
class Leaf:
    field: str
    text: str
    boost: float


@dataclass(frozen=True)
class ScoredDoc:
    docnum: int
    score: float
    matched: tuple[tuple[str, str], ...]  # (field, word) pairs the document holds


def leaves_of(q: wq.Query, boost: float = 1.0) -> list[Leaf] | None:
    """The terms of an OR-of-terms query with their effective boosts; None for other shapes."""
    if isinstance(q, wq.Term):
        return [Leaf(q.fieldname, q.text, boost * q.boost)]
    if type(q) is wq.Or and getattr(q, "scale", None) is None and not getattr(q, "minmatch", 0):
        out: list[Leaf] = []
        for sub in q.subqueries:
            found = leaves_of(sub, boost * q.boost)
            if found is None:
                return None
            out += found
        return out
    return None


def runs(docs: Sequence[int], gap: int = RUN_GAP) -> list[tuple[int, int]]:
    """Sorted document numbers as (first, last) runs with gaps under `gap` inside."""
    out: list[tuple[int, int]] = []
    for d in docs:
        if out and d - out[-1][1] < gap:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def _leaf_matcher(m: Any) -> Any:
    """The posting reader under Whoosh's wrappers (deletions are filtered by the caller)."""
    while isinstance(m, WrappingMatcher):
        m = m.child
    return m


def postings_between(m: Any, lo: int, hi: int) -> Iterator[tuple[Sequence[int], Sequence[float]]]:
    """(ids, weights) of matcher `m`'s postings from document `lo` to `hi`, a block at a time
    for on-disk posting lists (any other matcher, one posting at a time). `m` only moves on:
    call with increasing ranges."""
    if not m.is_active():
        return
    if m.id() < lo:
        m.skip_to(lo)
    if isinstance(m, whoosh3.W3LeafMatcher):
        while m.is_active():
            if m._ids is None:
                m._read_ids()
            if m._weights is None:
                m._read_weights()
            start = m._i
            ids, weights = m._ids, m._weights
            if ids[start] > hi:
                return
            yield ids[start:], weights[start:]
            if ids[-1] > hi:
                m._i = bisect_right(ids, hi, start)  # stay in this block: the next run may be here
                return
            m._next_block()
        return
    ids_out: list[int] = []
    weights_out: list[float] = []
    while m.is_active() and m.id() <= hi:
        ids_out.append(m.id())
        weights_out.append(m.weight())
        m.next()
    if ids_out:
        yield ids_out, weights_out


def score_scoped(
    searcher: Any,
    weighting: BM25F,
    leaves: Iterable[Leaf],
    docs: Iterable[int],
    limit: int,
    base: float = 0.0,
) -> list[ScoredDoc]:
    """The `limit` best of `docs` (top-level document numbers) for the OR of `leaves`, scored
    as Whoosh scores the same query with `weighting`, plus `base` each; documents matching no
    leaf are left out."""
    leaves = list(leaves)
    wanted_all = sorted(set(docs))
    scores: dict[int, float] = {}
    matched: dict[int, list[tuple[str, str]]] = {}
    k1 = weighting.K1
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        count = reader.doc_count_all()
        local = [d - offset for d in wanted_all if offset <= d < offset + count]
        if not local:
            continue
        wanted = set(local)
        spans = runs(local)
        lengths: dict[tuple[str, int], int] = {}
        for leaf in leaves:
            field, text = leaf.field, leaf.text
            try:
                m = _leaf_matcher(reader.postings(field, text))
            except TermNotFound:
                continue
            idf = searcher.idf(field, text)
            avgfl = searcher.avg_field_length(field) or 1
            b = weighting._field_B.get(field, weighting.B)
            boost = leaf.boost
            pair = (field, text)
            for lo, hi in spans:
                for ids, weights in postings_between(m, lo, hi):
                    for d, tf in zip(ids, weights, strict=True):
                        if d > hi:
                            break
                        if d not in wanted:
                            continue
                        key = (field, d)
                        fl = lengths.get(key)
                        if fl is None:
                            fl = lengths[key] = reader.doc_field_length(d, field, 1)
                        s = boost * (
                            idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))
                        )
                        g = d + offset
                        scores[g] = scores.get(g, base) + s
                        matched.setdefault(g, []).append(pair)
    best = heapq.nsmallest(limit, scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [ScoredDoc(d, s, tuple(matched[d])) for d, s in best]
