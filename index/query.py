"""Build Whoosh queries from user text and page signals, without a query parser.

User text never reaches a query parser: it is tokenized with the index's own analyzers and turned
into term queries over a fixed set of fields. Scope (apps, audience, status, type) is a separate
filter the user's text cannot widen.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from whoosh import query as wq

from index import synonyms
from index.schema import EVERYONE, FIELD_BOOSTS, GLOBAL_APP, TEXT_ANALYZER

_WORD_RE = re.compile(r"[\w][\w'.-]*", re.UNICODE)
_QUOTED_RE = re.compile(r'"([^"]*)"')
SYNONYM_WEIGHT = 0.5
COMMON_FRACTION = 0.25  # page words in more than this share of aids are skipped...
COMMON_MIN_DOCS = 2000  # ...once the index is this large (small corpora: every word counts)


class QueryRejected(ValueError):
    """The user's query cannot be run; the message says why."""


@dataclass(frozen=True)
class ParsedQuery:
    words: tuple[str, ...]  # lowercase, unstemmed user words (for spelling suggestions)
    phrases: tuple[tuple[str, ...], ...]
    query: wq.Query | None  # None when nothing searchable remains (all stop words)


def words_of(text: str) -> list[str]:
    return [w.strip(".'-").lower() for w in _WORD_RE.findall(text) if w.strip(".'-")]


def _stems(words: Iterable[str]) -> list[str]:
    return [t.text for t in TEXT_ANALYZER(" ".join(words))]


def _term_group(stem: str, boost: float = 1.0) -> wq.Query:
    return wq.Or([wq.Term(f, stem, boost=b * boost) for f, b in FIELD_BOOSTS.items()])


def _phrase_group(words: tuple[str, ...], boost: float = 1.0) -> wq.Query | None:
    stems = _stems(words)
    if not stems:
        return None
    if len(stems) == 1:
        return _term_group(stems[0], boost)
    return wq.Or(
        [wq.Phrase(f, stems, boost=b * boost) for f, b in FIELD_BOOSTS.items() if f != "tags"]
    )


def _word_groups(words: list[str]) -> list[wq.Query]:
    """One query per user word (or synonym phrase), each an OR of its forms and synonyms."""
    groups: list[wq.Query] = []
    spans = {start: (end, alts) for start, end, alts in synonyms.expand(words)}
    i = 0
    while i < len(words):
        if i in spans:
            end, alts = spans[i]
            own = _phrase_group(tuple(words[i:end]))
            options = [q for q in [own] if q is not None]
            options += [q for a in alts if (q := _phrase_group(a, SYNONYM_WEIGHT)) is not None]
            if options:
                groups.append(wq.Or(options) if len(options) > 1 else options[0])
            i = end
            continue
        stems = _stems([words[i]])
        if stems:
            groups.append(_term_group(stems[0]))
        i += 1
    return groups


def parse_user_query(
    text: str, *, max_chars: int, max_terms: int, require_all: bool = True
) -> ParsedQuery:
    """Turn search-box text into a query. Refuses wildcards and over-long input clearly."""
    text = text.strip()
    if not text:
        raise QueryRejected("The query is empty: type a word or two.")
    if len(text) > max_chars:
        raise QueryRejected(f"The query is {len(text)} characters long; the limit is {max_chars}.")
    if re.search(r"(^|\s)[*?]", text) or text.replace("*", "").strip() == "":
        raise QueryRejected(
            "Wildcards are not supported; type whole words (word endings are "
            "matched automatically)."
        )
    phrases = tuple(tuple(words_of(p)) for p in _QUOTED_RE.findall(text) if words_of(p))
    rest = _QUOTED_RE.sub(" ", text)
    words = words_of(rest.replace("*", " ").replace("?", " "))
    total_terms = len(words) + sum(len(p) for p in phrases)
    if total_terms > max_terms:
        raise QueryRejected(f"The query has {total_terms} words; the limit is {max_terms}.")
    parts = _word_groups(words)
    parts += [q for p in phrases if (q := _phrase_group(p)) is not None]
    all_words = tuple(words) + tuple(w for p in phrases for w in p)
    if not parts:
        return ParsedQuery(all_words, phrases, None)
    combined: wq.Query = (
        parts[0] if len(parts) == 1 else (wq.And(parts) if require_all else wq.Or(parts))
    )
    return ParsedQuery(all_words, phrases, combined)


def any_of(query: ParsedQuery) -> wq.Query | None:
    """The same words with OR semantics: the fallback when requiring every word finds nothing."""
    if query.query is None or not isinstance(query.query, wq.And):
        return None
    return wq.Or(list(query.query.subqueries), scale=0.9)


def signals_query(
    weighted_texts: Iterable[tuple[str, float]],
    max_terms: int = 10,
    doc_frequency: Callable[[str], int] | None = None,
    doc_count: int = 0,
) -> wq.Query | None:
    """An OR query from page signals (title, headings, selection, URL words), each weighted.

    Only the `max_terms` most telling stems are kept: weight x inverse document frequency when
    `doc_frequency` is given. Page text is noisy and a union over dozens of common terms would
    score most of the index (hundreds of milliseconds); ten good terms rank as well, fast.
    """
    weights: dict[str, float] = {}
    order: list[str] = []

    def add(stem: str, weight: float) -> None:
        if stem.isdigit() or len(stem) < 3:
            return
        if stem not in weights:
            order.append(stem)
            weights[stem] = 0.0
        weights[stem] = max(weights[stem], weight)

    for text, weight in weighted_texts:
        words = words_of(text)
        for stem in _stems(words):
            add(stem, weight)
        # Workplace synonyms ("time off" on the page also finds aids that say "vacation"),
        # single words only, at a lower weight so the page's own words rank first.
        for _, _, alternatives in synonyms.expand(words):
            for alt in alternatives:
                if len(alt) == 1:
                    for stem in _stems(alt):
                        add(stem, weight * SYNONYM_WEIGHT)
    if not order:
        return None
    rank = dict(weights)
    if doc_frequency is not None and doc_count > 0:
        for stem in order:
            df = doc_frequency(stem)
            if df == 0:
                del rank[stem]  # in no aid: costs a lookup per field, finds nothing
            elif doc_count >= COMMON_MIN_DOCS and df > COMMON_FRACTION * doc_count:
                # In a large share of a large index: a corpus stop word. It barely changes the
                # ranking but costs a score for every posting (tens of ms at 10k aids).
                del rank[stem]
            else:
                rank[stem] = weights[stem] * math.log(1 + doc_count / df)
    top = sorted(rank, key=lambda s: -rank[s])[:max_terms]
    if not top:
        return None
    return wq.Or([_term_group(s, weights[s]) for s in top])


@dataclass(frozen=True)
class Scope:
    """What a caller may see: never widened by the user's text.

    `apps` narrows the query itself (an AND with a zero-score clause, so Whoosh skips straight to
    the app's few aids instead of scoring the whole index); status, audience and type become a
    filter whose document set the searcher caches per generation.
    """

    apps: tuple[str, ...] | None
    audience: tuple[str, ...] | None  # None: every audience (admins)
    statuses: tuple[str, ...] = ("published",)
    types: tuple[str, ...] = ()

    def narrow(self, q: wq.Query) -> wq.Query:
        if self.apps is None:
            return q
        if not self.apps:
            return wq.NullQuery
        apps = wq.Or([wq.Term("apps", a) for a in self.apps])
        return wq.And([wq.ConstantScoreQuery(apps, 0.0), q])

    def filter_key(self) -> tuple[Any, ...]:
        """What the filter depends on (not the apps, which narrow the query instead)."""
        return (self.audience, self.statuses, self.types)

    def filter_query(self) -> wq.Query:
        parts: list[wq.Query] = [wq.Or([wq.Term("status", s) for s in self.statuses])]
        if self.audience is not None:
            parts.append(wq.Or([wq.Term("audience", t) for t in (EVERYONE, *self.audience)]))
        if self.types:
            parts.append(wq.Or([wq.Term("type", t) for t in self.types]))
        return wq.And(parts)


def scope_filter(
    *,
    apps: Iterable[str] | None,
    audience: frozenset[str] | None,
    statuses: Iterable[str] = ("published",),
    types: Iterable[str] = (),
    include_global: bool = False,
) -> Scope:
    """The scope a caller may see. audience=None means no audience restriction (admins)."""
    app_list = None if apps is None else tuple(apps) + ((GLOBAL_APP,) if include_global else ())
    return Scope(
        apps=app_list,
        audience=None if audience is None else tuple(sorted(audience)),
        statuses=tuple(statuses),
        types=tuple(types),
    )
