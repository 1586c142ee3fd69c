"""BM25F over a scope's documents, reading postings block by block.

A related query is an OR of up to 10 page words over 5 fields: some 50 term matchers. Whoosh
scores it through a tree of union matchers, where every candidate document costs a walk of the
tree in Python (`is_active`, `id`, `next` on each branch); at 100k aids that walk was most of a
suggestion's time, although the page's app holds only a few hundred aids. Here each term's
posting list is read only where the scope's documents are (index/postings.py jumps to the
block), a block's ids and weights at a time, and the documents' scores are summed in a dict:
the same BM25F as `WEIGHTING` (same idf, average lengths, per-field B), the same order
(score, then document number), and, for free, which (field, word) pairs each document matched.

Search-box queries (an AND of ORs, index/query.py) are scored the same way over the whole index:
two words found in nearly every aid ("expense approval" at 100k aids) took Whoosh 11 s, walking
its matcher tree for 90k documents. Leaves other than terms (phrases) are scored by their own
Whoosh matcher, and `groups_of` says None for shapes it does not know (the caller then runs the
query through Whoosh as before).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from whoosh import query as wq
from whoosh.codec import whoosh3
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.formats import Positions
from whoosh.matching import WrappingMatcher
from whoosh.reading import TermNotFound
from whoosh.scoring import BM25F
from whoosh.util.numeric import byte_to_length

RUN_GAP = 1024  # documents this far apart are read as two runs (skipping the postings between)


@dataclass(frozen=True)
class Leaf:
    query: wq.Query  # a Term (read block by block) or any query Whoosh scores (a Phrase)
    boost: float  # the boosts of the ORs above it (a Term's own boost included)

    @property
    def pair(self) -> tuple[str, str] | None:
        q = self.query
        return (q.fieldname, q.text) if isinstance(q, wq.Term) else None


@dataclass(frozen=True)
class ScoredDoc:
    docnum: int
    score: float
    matched: tuple[tuple[str, str], ...]  # (field, word) pairs of term leaves the document holds


_LENGTHS = [byte_to_length(i) for i in range(256)]


def _leaves(q: wq.Query, boost: float) -> list[Leaf] | None:
    if isinstance(q, wq.Term):
        return [Leaf(q, boost * q.boost)]
    if type(q) is wq.Or:
        if getattr(q, "scale", None) is not None or bool(getattr(q, "minmatch", None)):
            return None
        out: list[Leaf] = []
        for sub in q.subqueries:
            found = _leaves(sub, boost * q.boost)
            if found is None:
                return None
            out += found
        return out
    if isinstance(q, wq.Phrase):
        return [Leaf(q, boost)]
    return None


def coordination(q: wq.Query) -> float | None:
    """The scale of an OR's coordination bonus (index/query.py `any_of`), else None."""
    scale = getattr(q, "scale", None) if type(q) is wq.Or else None
    return float(scale) if scale else None


def groups_of(q: wq.Query) -> list[list[Leaf]] | None:
    """An AND of ORs as groups of leaves (a document must match a leaf of every group); a
    single OR is one group, and so is an OR with a coordination bonus (score it with
    `coord=coordination(q)`). None for any other shape."""
    if coordination(q) is not None and q.boost == 1.0 and not getattr(q, "minmatch", None):
        leaves: list[Leaf] = []
        for sub in q.subqueries:
            found = _leaves(sub, 1.0)
            if found is None:
                return None
            leaves += found
        return [leaves]
    subs = list(q.subqueries) if type(q) is wq.And and q.boost == 1.0 else [q]
    groups = [_leaves(sub, 1.0) for sub in subs]
    if not groups or any(g is None for g in groups):
        return None
    return [g for g in groups if g is not None]


def leaves_of(q: wq.Query) -> list[Leaf] | None:
    """The leaves of an OR query (a related query); None for other shapes."""
    groups = groups_of(q)
    return groups[0] if groups is not None and len(groups) == 1 else None


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


def _plain_phrase(q: wq.Phrase, searcher: Any) -> bool:
    """A phrase `_phrase_hits` scores as Whoosh does: its words next to each other, in order
    (Whoosh's slop 1), in a field with positions."""
    if q.fieldname not in searcher.schema:
        return False
    field = searcher.schema[q.fieldname]
    return (
        q.slop == 1
        and not q.char_ranges
        and isinstance(field.format, Positions)
        and len(q.words) > 1
    )


def _phrase_hits(
    searcher: Any,
    reader: Any,
    weighting: BM25F,
    q: wq.Phrase,
    count: int,
    spans: list[tuple[int, int]],
) -> Iterator[tuple[int, float]]:
    """(segment document, score) of the documents of one segment where the phrase's words
    stand next to each other in order, within `spans`. Whoosh's phrase matcher walked an
    intersection of its words' matchers and built span objects for every candidate (23 s for
    two common words at 100k aids); here the words' postings are read a block at a time, the
    rarest word first, and only documents holding every word have their positions decoded.
    The score is Whoosh's: the sum of each word's BM25F in the document, times the phrase's
    boost."""
    field = q.fieldname
    fmt = searcher.schema[field].format
    words = [searcher.schema[field].to_bytes(w) for w in q.words]
    matchers = []
    for w in words:
        try:
            matchers.append(_leaf_matcher(reader.postings(field, w)))
        except TermNotFound:
            return  # a word the segment lacks: no phrase here
    k1 = weighting.K1
    b = weighting._field_B.get(field, weighting.B)
    norm = _norms(k1, b, searcher.avg_field_length(field) or 1)
    lengths = length_bytes(reader, field, count)
    idfs = [searcher.idf(field, w) for w in words]
    order = sorted(range(len(words)), key=lambda i: searcher.doc_frequency(field, words[i]))
    for lo, hi in spans:
        found: dict[int, list[tuple[float, bytes]]] | None = None
        for i in order:
            here: dict[int, tuple[float, bytes]] = {}
            for ids, weights, values in _postings_with_values(matchers[i], lo, hi):
                for d, tf, value in zip(ids, weights, values, strict=True):
                    if d > hi:
                        break
                    if found is None or d in found:
                        here[d] = (tf, value)
            if found is None:
                found = {d: [hit] for d, hit in here.items()}
            else:
                found = {d: [*found[d], here[d]] for d in found if d in here}
            if not found:
                break
        for d, hits in (found or {}).items():
            by_word = dict(zip(order, hits, strict=True))
            positions = [fmt.decode_positions(by_word[i][1]) for i in range(len(words))]
            starts = set(positions[0])
            for shift, later in enumerate(positions[1:], 1):
                starts &= {p - shift for p in later}
            if not starts:
                continue
            n = norm[lengths[d]]
            score = 0.0
            for i, idf in enumerate(idfs):
                tf = by_word[i][0]
                score += idf * (tf * (k1 + 1)) / (tf + n)
            yield d, score * q.boost


def _postings_with_values(
    m: Any, lo: int, hi: int
) -> Iterator[tuple[Sequence[int], Sequence[float], Sequence[bytes]]]:
    """`postings_between` with each posting's value (positions) too."""
    if not m.is_active():
        return
    if m.id() < lo:
        m.skip_to(lo)
    if not isinstance(m, whoosh3.W3LeafMatcher):
        ids, weights, values = [], [], []
        while m.is_active() and m.id() <= hi:
            ids.append(m.id())
            weights.append(m.weight())
            values.append(m.value())
            m.next()
        if ids:
            yield ids, weights, values
        return
    while m.is_active():
        if m._ids is None:
            m._read_ids()
        if m._weights is None:
            m._read_weights()
        if m._values is None:
            m._read_values()
        start = m._i
        ids = m._ids
        if ids[start] > hi:
            return
        yield ids[start:], m._weights[start:], m._values[start:]
        if ids[-1] > hi:
            m._i = bisect_right(ids, hi, start)
            return
        m._next_block()


_length_cache: dict[tuple[str, str, int], bytes] = {}


def forget() -> None:
    """Drop the cached lengths: a new generation replaced the segments they belong to."""
    _length_cache.clear()


_norm_cache: dict[tuple[float, float, float], list[float]] = {}


def _norms(k1: float, b: float, avgfl: float) -> list[float]:
    """BM25's length normalisation, K1 * (1 - B + B * length / average), for each length byte."""
    key = (k1, b, avgfl)
    found = _norm_cache.get(key)
    if found is None:
        if len(_norm_cache) >= 1024:
            _norm_cache.clear()
        found = _norm_cache[key] = [k1 * ((1 - b) + b * n / avgfl) for n in _LENGTHS]
    return found


def length_bytes(reader: Any, field: str, count: int) -> bytes:
    """A segment's length bytes of `field`, one per document of its `count` (Whoosh reads one
    per call), kept per segment: a segment's lengths never change (deletions live apart)."""
    segment = getattr(reader, "_segment", None)  # an empty index's reader has none
    if segment is None:
        return bytes(count)
    key = (str(segment.segment_id()), field, count)
    found = _length_cache.get(key)
    if found is None:
        column = reader._perdoc._cached_reader(_lenfield(field), LENGTHS_COLUMN)
        raw = b"" if column is None else bytes(column._dbfile.get(column._basepos, column._count))
        found = raw + bytes(max(0, count - len(raw)))
        if len(_length_cache) >= 256:
            _length_cache.clear()
        _length_cache[key] = found
    return found


def score(
    searcher: Any,
    weighting: BM25F,
    groups: list[list[Leaf]],
    docs: Container[int],
    limit: int,
    *,
    within: Sequence[int] | None = None,
    base: float = 0.0,
    coord: float | None = None,
) -> tuple[list[ScoredDoc], int]:
    """The `limit` best documents matching a leaf of every group, among `docs` (top-level
    document numbers, a set or a Whoosh id set), and how many match. Scored as Whoosh scores
    the same query with `weighting` (plus `base` each). `within`: the sorted documents of a
    small scope, whose postings alone are read (None: every posting of each leaf).

    `coord`: Whoosh's coordination bonus for an OR with a scale (its "SQR": a document that
    matches more of the query's leaves gains). Whoosh counts the leaves per segment, and fewer
    as its matcher tree drops exhausted branches, so the same document scored differently by
    segment and by how far the search had gone; here every document is scored against all the
    query's leaves."""
    scores: dict[int, float] = {}
    masks: dict[int, int] = {}
    counts: dict[int, int] = {}  # phrase words each document matched (for `coord`)
    matched: dict[int, list[tuple[str, str]]] = {}
    full = (1 << len(groups)) - 1
    k1 = weighting.K1
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        count = reader.doc_count_all()
        if within is not None:
            local = [d - offset for d in within if offset <= d < offset + count]
            if not local:
                continue
            spans = runs(local)
        else:
            spans = [(0, count - 1)]
        for bit, group in enumerate(groups):
            flag = 1 << bit
            for leaf in group:
                pair = leaf.pair
                if isinstance(leaf.query, wq.Phrase) and _plain_phrase(leaf.query, searcher):
                    for d, phrase_score in _phrase_hits(
                        searcher, reader, weighting, leaf.query, count, spans
                    ):
                        g = d + offset
                        if g in docs:
                            s = leaf.boost * phrase_score
                            scores[g] = scores.get(g, base) + s
                            masks[g] = masks.get(g, 0) | flag
                            counts[g] = counts.get(g, 0) + len(leaf.query.words)
                    continue
                if pair is None:  # another leaf: its own matcher scores it
                    m = leaf.query.matcher(sub)
                    for lo, hi in spans:
                        if m.is_active() and m.id() < lo:
                            m.skip_to(lo)
                        while m.is_active() and m.id() <= hi:
                            g = m.id() + offset
                            if g in docs:
                                scores[g] = scores.get(g, base) + leaf.boost * m.score()
                                masks[g] = masks.get(g, 0) | flag
                                # Whoosh counts a phrase's words as its terms
                                counts[g] = counts.get(g, 0) + len(leaf.query.words)
                            m.next()
                    continue
                field, text = pair
                try:
                    m = _leaf_matcher(reader.postings(field, text))
                except TermNotFound:
                    continue
                idf = searcher.idf(field, text)
                avgfl = searcher.avg_field_length(field) or 1
                b = weighting._field_B.get(field, weighting.B)
                boost = leaf.boost
                lengths = length_bytes(reader, field, count)
                norm = _norms(k1, b, avgfl)
                for lo, hi in spans:
                    for ids, weights in postings_between(m, lo, hi):
                        for d, tf in zip(ids, weights, strict=True):
                            if d > hi:
                                break
                            g = d + offset
                            if g not in docs:
                                continue
                            s = boost * idf * (tf * (k1 + 1)) / (tf + norm[lengths[d]])
                            scores[g] = scores.get(g, base) + s
                            masks[g] = masks.get(g, 0) | flag
                            matched.setdefault(g, []).append(pair)
    if coord is not None:
        n = sum(_coord_terms(searcher, leaf) for group in groups for leaf in group)
        for g, s in scores.items():
            leaves_matched = len(matched.get(g, ())) + counts.get(g, 0)
            # `base` (a narrowed query's app clause) sits outside the OR, so outside its bonus
            scores[g] = base + _coordinated(s - base, leaves_matched, n, coord)
    hits = [(g, s) for g, s in scores.items() if masks[g] == full]
    best = heapq.nsmallest(limit, hits, key=lambda kv: (-kv[1], kv[0]))
    return [ScoredDoc(d, s, tuple(matched.get(d, ()))) for d, s in best], len(hits)


def _coord_terms(searcher: Any, leaf: Leaf) -> int:
    """The terms a leaf adds to the coordination count: as Whoosh counts its term matchers, a
    word the index has (here: anywhere in the index, so every segment counts alike) and each
    word of a phrase whose words it all has."""
    q = leaf.query
    if isinstance(q, wq.Term):
        return 1 if searcher.doc_frequency(q.fieldname, q.text) > 0 else 0
    words = list(getattr(q, "words", ()))
    field = getattr(q, "fieldname", "")
    return len(words) if all(searcher.doc_frequency(field, w) > 0 for w in words) else 0


def _coordinated(score: float, matching: int, leaves: int, scale: float) -> float:
    """Whoosh's `CoordMatcher._sqr` (Short Query Ranking) with a fixed count of leaves."""
    if leaves == 0 or leaves == scale:
        return 0.0
    return (score + (matching - 1) / (leaves - scale) ** 2) * ((leaves - 1) / leaves)
