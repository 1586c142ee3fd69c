"""Build Whoosh queries from user text and page signals, without a query parser.

User text never reaches a query parser: it is tokenized with the index's own analyzers and turned
into term queries over a fixed set of fields. Scope (apps, audience, status, type) is a separate
filter the user's text cannot widen.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from whoosh import query as wq

from index import synonyms
from index.schema import EVERYONE, FIELD_BOOSTS, GLOBAL_APP, PAGE_ANALYZER, TEXT_ANALYZER
from index.transcripts import Cue

_WORD_RE = re.compile(r"[\w][\w'.-]*", re.UNICODE)
_QUOTED_RE = re.compile(r'"([^"]*)"')
SYNONYM_WEIGHT = 0.5
PAGE_SYNONYM_WEIGHT = 0.35  # page text is long: its own words should rank first
APP_NAME_WEIGHT = 0.3  # the app's name is on all its pages: it says little about this one
COMPOUND_WEIGHT = 0.9  # "time sheet" typed, "timesheet" in the aid (or the other way round)
CORRECTED_WEIGHT = 0.8  # a misspelled selection word, as the corrector read it
MAX_SELECTION_TERMS = 6  # the selection's stems always get (up to) these of the `max_terms` slots
# The relevance cut-off for related aids: a hit is kept when its score is at least this share of
# the best hit's and its support (below) reaches MIN_SUPPORT.
RELATIVE_CUT = 0.4
MIN_SUPPORT = 1.5
# Where a page word matched in the aid, for its support: in the title or a tag it says what the
# aid is about; in the body it may be a passing mention.
# A transcript's words were said in a video, maybe in passing: less than a body's.
FIELD_SUPPORT = {"title": 1.0, "tags": 1.0, "summary": 0.85, "body": 0.7, "transcript": 0.5}
TELLING_SHARE = 0.5  # a word in more than this share of the app's aids tells nothing...
TELLING_MIN_DOCS = 6  # ...once the app has this many
COMMON_FRACTION = 0.25  # page words in more than this share of aids are skipped...
COMMON_MIN_DOCS = 500  # ...once the index is this large (small corpora: every word counts)
NEAR_WORDS = 12  # two page words this close in a body are one sentence's topic


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
    """The stems of consecutive words, without the compounds the index also makes of them."""
    return [
        t.text
        for t in TEXT_ANALYZER(" ".join(words), keeporiginal=True)
        if not _is_compound(t.original)
    ]


def _is_compound(original: str) -> bool:
    return " " in original or "\t" in original


def _word_stems(word: str) -> list[str]:
    """The stems of one typed word: "e-mail" gives "email" then "mail", "W-2" gives "w2"."""
    return list(dict.fromkeys(t.text for t in TEXT_ANALYZER(word)))


def _compound(first: str, second: str) -> str | None:
    """The stem of two adjacent words written as one ("code owners" -> "codeowners")."""
    if not (first.isalpha() and second.isalpha()):
        return None
    stems = _word_stems(first + second)
    return stems[0] if len(stems) == 1 else None


def _term_group(stem: str, boost: float = 1.0) -> wq.Query:
    return wq.Or([wq.Term(f, stem, boost=b * boost) for f, b in FIELD_BOOSTS.items()])


def _phrase_group(words: tuple[str, ...], boost: float = 1.0) -> wq.Query | None:
    stems = _stems(words)
    if not stems:
        return None
    if len(stems) == 1:
        return _term_group(stems[0], boost)
    return wq.Or([wq.Phrase(f, stems, boost=b * boost) for f, b in FIELD_BOOSTS.items()])


def _word_groups(words: list[str]) -> list[wq.Query]:
    """One query per user word (or synonym phrase), each an OR of its forms and synonyms.

    A word also matches its compound with a neighbour: "code owners" finds an aid that only
    says "CODEOWNERS" (both words' groups accept the joined form)."""
    groups: list[wq.Query] = []
    spans = {start: (end, alts) for start, end, alts in synonyms.expand(words)}
    compounds: dict[int, list[str]] = {}
    for i in range(len(words) - 1):
        if i in spans or i + 1 in spans:
            continue
        joined = _compound(words[i], words[i + 1])
        if joined and _stems([words[i]]) and _stems([words[i + 1]]):
            compounds.setdefault(i, []).append(joined)
            compounds.setdefault(i + 1, []).append(joined)
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
        stems = _word_stems(words[i])
        if stems:
            forms = [_term_group(stems[0])]
            forms += [_term_group(x, COMPOUND_WEIGHT) for x in stems[1:]]
            forms += [_term_group(c, COMPOUND_WEIGHT) for c in compounds.get(i, ())]
            groups.append(forms[0] if len(forms) == 1 else wq.Or(forms))
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


@dataclass(frozen=True)
class PageText:
    """One page signal: its text, its weight, and whether the user selected it (the strongest
    signal: they highlighted what they are stuck on)."""

    text: str
    weight: float
    selection: bool = False


@dataclass(frozen=True)
class RelatedQuery:
    """The query for a page's related aids, and what is needed to explain and cut its hits."""

    query: wq.Query
    weights: Mapping[str, float]  # stem -> its weight in the query
    support: Mapping[str, float]  # stem -> what a match on it supports (a synonym: its source's)
    words: Mapping[str, str]  # stem -> the page's own word(s) it stands for
    selection: frozenset[str]  # stems of the selection (they always count)
    telling: frozenset[str]  # stems rare enough in the app's aids to count towards support
    # stem -> which page texts (title, one heading, ...) it came from, by position: two words
    # of one text found in a body are that text's topic; two words of different texts, chance.
    sources: Mapping[str, frozenset[int]] = dataclasses.field(default_factory=dict)
    # stems only a synonym expansion put there (the page never says them): "create" for "New"
    expanded: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RelatedHit:
    id: str
    score: float
    terms: tuple[str, ...]  # the page's words it matched, most telling first
    cue: Cue | None = None  # a video whose transcript matched: where the page's words are said


def page_terms(
    texts: Iterable[PageText],
) -> tuple[
    dict[str, float], dict[str, float], dict[str, str], set[str], list[str], dict[str, set[int]]
]:
    """The stems of the page signals: weights, support weights (a synonym supports as much as
    the page word it stands for), display words, selection stems, the selection's words as
    typed (for spelling correction), and the positions of the texts each stem came from."""
    weights: dict[str, float] = {}
    support: dict[str, float] = {}
    words: dict[str, str] = {}
    selection: set[str] = set()
    typed: list[str] = []
    sources: dict[str, set[int]] = {}

    def add(
        at: int, stem: str, weight: float, word: str, selected: bool, supports: float = 0
    ) -> None:
        if stem.isdigit() or len(stem) < 2:
            return
        sources.setdefault(stem, set()).add(at)
        support[stem] = max(support.get(stem, 0.0), supports or weight)
        if weights.get(stem, 0.0) < weight:
            weights[stem] = weight
            words.setdefault(stem, word)
        if selected:
            selection.add(stem)

    for position, page_text in enumerate(texts):
        selected = page_text.selection
        for token in PAGE_ANALYZER(page_text.text, keeporiginal=True):
            compound = _is_compound(token.original)
            weight = page_text.weight * (COMPOUND_WEIGHT if compound else 1.0)
            add(position, token.text, weight, token.original, selected and not compound)
            if selected and not compound:
                typed.append(token.original)
        # Workplace synonyms ("time off" on the page also finds aids that say "vacation"),
        # single words only, at a lower weight so the page's own words rank first.
        plain = words_of(page_text.text)
        for start, end, alternatives in synonyms.expand(plain):
            phrase = " ".join(plain[start:end])
            for alt in alternatives:
                if len(alt) == 1:
                    for stem in _stems(alt):
                        weight = page_text.weight * PAGE_SYNONYM_WEIGHT
                        add(position, stem, weight, phrase, False, page_text.weight)
    return weights, support, words, selection, list(dict.fromkeys(typed)), sources


def related_query(
    texts: Iterable[PageText],
    *,
    doc_frequency: Callable[[str], int],
    doc_count: int,
    correct: Callable[[list[str]], Mapping[str, str]] | None = None,
    max_terms: int = 10,
    ignore: str = "",
    index_frequency: Callable[[str], int] | None = None,
    index_count: int = 0,
) -> RelatedQuery | None:
    """An OR query from page signals (title, headings, selection, URL words), each weighted.

    `doc_frequency` and `doc_count` count the aids the page may be shown (its app's and the
    global ones), over every text field: a word common in this app tells little here, whatever
    other apps say. Terms are ranked by weight x inverse document frequency; the `max_terms`
    best are kept (page text is noisy, and a union over dozens of common terms would score most
    of the index), the selection's stems first: they always get slots. Selection words in
    no aid go to `correct` (a bounded spelling corrector): "scorcard" is searched as "scorecard".
    Words of `ignore` (the app's name, on every one of its pages) weigh little, never make an aid
    relevant on their own and are not quoted as reasons (unless selected).
    """
    texts = list(texts)
    ignored = {t.text for t in PAGE_ANALYZER(ignore)} | record_names(texts)
    own = {t.text for page_text in texts for t in PAGE_ANALYZER(page_text.text)}
    weights, support, words, selection, typed, sources = page_terms(texts)
    for stem in ignored - selection:
        if stem in weights:
            weights[stem] *= APP_NAME_WEIGHT
    if not weights:
        return None
    df = {stem: doc_frequency(stem) for stem in weights}
    unknown = [w for w in typed if all(df.get(s, 0) == 0 for s in _word_stems(w))]
    if correct is not None and unknown:
        for wrong, right in correct(unknown).items():
            base = max((weights.get(s, 0.0) for s in _word_stems(wrong)), default=0.0)
            for stem in _word_stems(right):
                if stem not in df:
                    df[stem] = doc_frequency(stem)
                if df[stem] and weights.get(stem, 0.0) < base * CORRECTED_WEIGHT:
                    weights[stem] = support[stem] = base * CORRECTED_WEIGHT
                    words[stem] = right
                    selection.add(stem)
                    sources[stem] = {-1}
    n = max(doc_count, 1)
    rank: dict[str, float] = {}
    for stem, weight in weights.items():
        count = df.get(stem, 0)
        if count == 0:
            continue  # in no aid the page may show: costs a lookup per field, finds nothing
        if (
            stem not in selection
            and index_frequency is not None
            and index_count >= COMMON_MIN_DOCS
            and index_frequency(stem) > COMMON_FRACTION * index_count
        ):
            # In a large share of a large index (`index_frequency`: its longest posting list,
            # over every app): a corpus stop word. It barely changes the ranking but costs a
            # score for every posting (tens of ms at 10k aids): the search scores postings of
            # the whole index before narrowing to the app.
            continue
        rank[stem] = weight * math.log(1 + n / count)
    chosen = sorted((s for s in rank if s in selection), key=lambda s: -rank[s])
    chosen = chosen[:MAX_SELECTION_TERMS]
    others = sorted((s for s in rank if s not in selection), key=lambda s: -rank[s])
    chosen += others[: max(0, max_terms - len(chosen))]
    if not chosen:
        return None
    telling = frozenset(
        s
        for s in chosen
        if s in selection
        or (s not in ignored and (n < TELLING_MIN_DOCS or df[s] <= TELLING_SHARE * n))
    )
    return RelatedQuery(
        query=wq.Or([_term_group(s, weights[s]) for s in chosen]),
        weights={s: weights[s] for s in chosen},
        support={s: support[s] for s in chosen},
        words={s: words[s] for s in chosen},
        selection=frozenset(s for s in chosen if s in selection),
        telling=telling,
        sources={s: frozenset(sources.get(s, ())) for s in chosen},
        expanded=frozenset(s for s in chosen if s not in own),
    )


def _is_capitalized(word: str) -> bool:
    """ "Acme", "Freight": a capital then lowercase letters (not "CRM", "PTO": codes are words
    of the app's vocabulary, not names)."""
    return len(word) > 1 and word[0].isupper() and word[1:].isalpha() and word[1:].islower()


def _name_runs(text: str) -> set[str]:
    """Runs of two or more capitalized words in a sentence-case text (one with a lowercase
    word): "Acme Freight" in "Acme Freight - 2027 renewal". A title-case text ("New
    Opportunity") says nothing: every word of it is capitalized."""
    tokens = text.split()
    if not any(t.isalpha() and t.islower() for t in tokens):
        return set()
    runs: set[str] = set()
    run: list[str] = []
    for token in [*tokens, ""]:
        word = token.rstrip(",.:;!?")
        if _is_capitalized(word):
            run.append(word)
            if word == token:
                continue
        if len(run) >= 2:
            runs.add(" ".join(run))
        run = []
    return runs


def record_names(texts: Sequence[PageText]) -> set[str]:
    """Stems of the names of the record a page shows: a run of capitalized words in one text
    (sentence case) repeated in another (the title). "Acme Freight" in the heading "Acme Freight
    - 2027 renewal" and the title "Opportunity #1042 · Acme Freight - 2027 renewal" is the
    customer: page data, not what the page is about. An aid quoting it as an example is not about
    this page. A selected name is what the learner asks about: it still counts (selection)."""
    stems: set[str] = set()
    plain = [t.text for t in texts if not t.selection]
    for i, text in enumerate(plain):
        for name in _name_runs(text):
            if any(name in other for j, other in enumerate(plain) if j != i):
                stems |= {t.text for t in PAGE_ANALYZER(name)}
    return stems


def relevant(
    hits: Sequence[tuple[str, float, Collection[tuple[str, str]]]],
    rq: RelatedQuery,
    near: Callable[[str, str, str], bool] | None = None,
) -> list[RelatedHit]:
    """The hits worth showing, each with the page's words it matched.

    A hit is kept when (1) its score is at least RELATIVE_CUT of the best one's and (2) its
    support reaches MIN_SUPPORT: the sum, over the telling page words it matched, of the word's
    weight times where it matched (FIELD_SUPPORT; a selected word counts in full anywhere). So a
    title word found in an aid's title or tags is enough, a single URL word or a passing mention
    in a body is not. (3) The aid is about the page (`_about`): scattered words in its body are
    not. Nothing is kept when nothing fits: the panel says so instead of filling. `near(aid id,
    stem, stem)` tells whether two words are close together in the aid's body (NEAR_WORDS)."""
    if not hits:
        return []
    best = max(score for _, score, _ in hits)
    out: list[RelatedHit] = []
    for aid_id, score, matched in hits:
        if score < RELATIVE_CUT * best:
            continue
        where: dict[str, float] = {}
        for field, stem in matched:
            if stem in rq.weights:
                factor = 1.0 if stem in rq.selection else FIELD_SUPPORT.get(field, 0.5)
                where[stem] = max(where.get(stem, 0.0), factor)
        support = sum(rq.support[s] * f for s, f in where.items() if s in rq.telling)
        if support < MIN_SUPPORT:
            continue
        if not _about(where, rq, None if near is None else functools.partial(near, aid_id)):
            continue
        shown = [s for s in where if s in rq.telling]  # the app's name is no reason
        ordered = sorted(shown, key=lambda s: -rq.weights[s] * where[s])
        terms = tuple(dict.fromkeys(rq.words[s] for s in ordered))
        out.append(RelatedHit(aid_id, score, terms))
    return out


def _about(
    where: Mapping[str, float],
    rq: RelatedQuery,
    near: Callable[[str, str], bool] | None = None,
) -> bool:
    """Whether an aid's matches say it is about the page: a telling page word selected or in its
    title or tags; two in its summary; one in its summary and a word of the same page text
    anywhere; or, in its body only, two telling words of one page text (one
    heading, the title...): "salary" and "paid" of "When is salary paid?" in "Salaries are paid
    on the 25th". Words of different texts matched in a body are passing mentions: "morning"
    of a "Good morning, Alex" greeting and "tasks" of a "My tasks" heading, found in a time-off
    aid's steps ("choose Morning only", "your manager gets a task"), say nothing."""
    telling = [s for s in where if s in rq.telling]
    if any(s in rq.selection for s in telling):
        return True
    # A synonym the page never says ("create" for its "New") is weak evidence: it names the
    # aid's topic only in its title or tags; in a summary or body it is no reason on its own.
    telling = [s for s in telling if s not in rq.expanded or where[s] >= FIELD_SUPPORT["title"]]
    if any(where[s] >= FIELD_SUPPORT["title"] for s in telling):
        return True
    # One page word in a summary ("territory reports" in passing) needs a second: another page
    # word in the summary, or a word of the same page text anywhere in the aid.
    in_summary = [s for s in telling if where[s] > FIELD_SUPPORT["body"]]
    if len(in_summary) >= 2:
        return True
    # Two words of one page text, both found only in the body, count when they are close
    # together there (one sentence): "Recently viewed" and "Report subscriptions", paragraphs
    # apart, do not make an aid about a "Recent reports" heading.
    body = FIELD_SUPPORT["body"]
    for i, first in enumerate(telling):
        for second in telling[i + 1 :]:
            if not rq.sources.get(first, frozenset()) & rq.sources.get(second, frozenset()):
                continue
            if near is None or where[first] > body or where[second] > body:
                return True
            if near(first, second):
                return True
    return False


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
