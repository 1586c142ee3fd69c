"""Scoring without Whoosh's matcher tree (index/scoped.py) and skipping by block directory
(index/postings.py) give the learner the same aids, scores, snippets and matched words as
Whoosh's own search, over several segments, with deleted documents, and in every scope; the
search total counts only the aids the caller may see. The library is a warehouse company's own
(not the demo's): several apps, restricted and draft aids, words common and rare."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from index import postings, scoped
from index.query import PageText, Scope, any_of, parse_user_query, scope_filter
from index.service import IndexService
from tests.index_aids import PlainAid

APPS = ("pickpack", "dockyard", "stockroom")
COMMON = ["pallet", "scanner", "shift", "order", "label", "forklift", "bin", "count"]
RARE = ["hazmat", "reefer", "cycle", "rma", "kitting", "crossdock", "putaway", "tote"]


def library(n: int, rng: random.Random) -> list[PlainAid]:
    out = []
    for i in range(n):
        words = [rng.choice(COMMON if rng.random() < 0.97 else RARE) for _ in range(60)]
        title = " ".join(rng.choice(COMMON + RARE) for _ in range(3)).capitalize()
        out.append(
            PlainAid(
                id=f"wh-{i}",
                title=title,
                summary=" ".join(words[:8]).capitalize() + ".",
                body=" ".join(words) + ".",
                tags=(rng.choice(RARE),),
                apps=(APPS[i % len(APPS)],) if i % 11 else (),  # some global aids
                audience=("supervisors",) if i % 7 == 0 else (),
                status="draft" if i % 13 == 0 else "published",
            )
        )
    return out


@pytest.fixture
async def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[IndexService]:
    """1,200 aids in two segments, a few updated (deleted documents in the first segment)."""
    monkeypatch.setattr(postings, "MIN_BYTES", 0)  # every list through the block directory
    rng = random.Random(5)
    aids = library(1200, rng)
    index = IndexService(tmp_path / "index", search_threads=1, build_procs=1, merge_delay=-1)
    await index.open()
    await index.rebuild(aids[:1000], 1)
    changed = [replace(a, title=f"{a.title} kitting") for a in aids[::40]]
    await index.apply(changed + aids[1000:], content_version=2)
    assert index.segments >= 2
    yield index
    await index.close()


PAGES = [
    ["Pallet scanner shift", "Count the bin", "forklift order"],
    ["Hazmat label", "reefer tote"],
    ["Cycle count", "Putaway by bin"],
    ["Kitting order", "label printer"],
    ["Crossdock", "RMA returns"],
]
SCOPES = [
    scope_filter(apps=[app], audience=audience, include_global=True)
    for app in APPS
    for audience in (frozenset(), frozenset({"supervisors"}), None)
]


def _whoosh_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoped, "leaves_of", lambda q: None)
    monkeypatch.setattr(scoped, "groups_of", lambda q: None)


def _related(
    index: IndexService, texts: list[str], scope: Scope, exclude: frozenset[str]
) -> list[tuple[str, float, list[tuple[str, str]]]]:
    page = [PageText(t, 1.0 if i == 0 else 0.6) for i, t in enumerate(texts)]
    rq = index.related_query_sync(page, scope)
    if rq is None:  # nothing telling on the page
        return []
    hits, _ = index._related_hits(rq, scope, 10, exclude)
    return [(i, round(s, 6), sorted(m)) for i, s, m in hits]


async def test_related_aids_are_whooshs_own(
    warehouse: IndexService, monkeypatch: pytest.MonkeyPatch
) -> None:
    exclude = frozenset({"wh-3", "wh-40"})
    ours = [_related(warehouse, p, s, exclude) for p in PAGES for s in SCOPES]
    assert sum(len(r) for r in ours) > 100  # the pages find aids: the comparison means something
    assert all("wh-3" not in [h[0] for h in r] for r in ours)
    _whoosh_only(monkeypatch)
    theirs = [_related(warehouse, p, s, exclude) for p in PAGES for s in SCOPES]
    assert ours == theirs


def _page(
    index: IndexService, text: str, scope: Scope, offset: int
) -> tuple[list[tuple[str, float, str, object]], int]:
    q = parse_user_query(text, max_chars=100, max_terms=8).query
    assert q is not None
    page = index._page_sync(q, scope, offset, 10, None)
    return [(h.id, round(h.score, 6), h.snippet_html, h.cue) for h in page.hits], page.total


SEARCHES = [
    "pallet scanner",
    "hazmat",
    "cycle count bin",
    '"forklift order"',
    "kitting tote",
    '"pallet scanner shift" bin',
    '"bin bin"',
    '"label count" "order pallet"',
]
SEARCH_SCOPES = [
    scope_filter(apps=None, audience=frozenset()),
    scope_filter(apps=None, audience=None, statuses=("published", "draft")),
    scope_filter(apps=["dockyard"], audience=frozenset({"supervisors"})),
]


def _whoosh_page(
    index: IndexService, text: str, scope: Scope, offset: int
) -> list[tuple[str, float]]:
    """Whoosh's ranking of every match of the same query and filter, then the page. (Its
    top-N search is not exact over several segments: pruning by the best score a branch could
    reach dropped an aid that ranks second here.)"""
    q = parse_user_query(text, max_chars=100, max_terms=8).query
    s = index._searcher()
    results = s.search(scope.narrow(q), filter=index._filter(scope), limit=None)
    return [(r["id"], round(r.score, 6)) for r in results[offset : offset + 10]]


async def test_search_pages_are_whooshs_own(warehouse: IndexService) -> None:
    cases = [(t, s, o) for t in SEARCHES for s in SEARCH_SCOPES for o in (0, 10)]
    ours = [_page(warehouse, *c) for c in cases]
    assert all(hits for hits, _ in ours[:2])
    assert any('class="match"' in snippet for hits, _ in ours for _, _, snippet, _ in hits)
    theirs = [_whoosh_page(warehouse, *c) for c in cases]
    assert [[h[:2] for h in hits] for hits, _ in ours] == theirs


async def test_search_total_counts_only_what_the_caller_may_see(
    warehouse: IndexService,
) -> None:
    """A learner's total is the number of published, unrestricted aids with the word; an
    admin's (drafts, every audience), all of them."""
    aids = library(1200, random.Random(5))

    def says(a: PlainAid) -> bool:
        return "hazmat" in f"{a.title} {a.summary} {a.body} {' '.join(a.tags)}".lower()

    everyone = [a for a in aids if says(a) and a.status == "published" and not a.audience]
    q = parse_user_query("hazmat", max_chars=100, max_terms=8).query
    learner = warehouse._page_sync(q, scope_filter(apps=None, audience=frozenset()), 0, 5, None)
    admin_scope = scope_filter(apps=None, audience=None, statuses=("published", "draft"))
    admin = warehouse._page_sync(q, admin_scope, 0, 5, None)
    assert learner.total == len(everyone) > 0
    assert admin.total == len([a for a in aids if says(a)]) > learner.total


async def test_block_directory_skips_to_the_same_postings(tmp_path: Path) -> None:
    """skip_to through the directory lands where walking the list does, for every target."""
    index = IndexService(tmp_path / "index", search_threads=1, build_procs=1, merge_delay=-1)
    await index.open()
    try:
        await index.rebuild(library(1500, random.Random(9)), 1)
        reader = index._searcher().reader()
        every = list(reader.postings("body", "pallet").all_ids())
        assert len(every) > 1000
        m = reader.postings("body", "pallet")
        assert isinstance(m, postings.BlockMatcher)
        assert postings._directory(m) is not None  # long enough to have one
        for target in sorted(random.Random(1).sample(range(1500), 60)):
            if not m.is_active():
                break
            m.skip_to(target)
            expected = next((d for d in every if d >= target), None)
            assert (m.id() if m.is_active() else None) == expected
        assert postings.all_ids(reader.postings("body", "pallet")) == every
    finally:
        await index.close()


async def test_an_empty_index_finds_nothing_without_failing(tmp_path: Path) -> None:
    """A library with no aid yet (Whoosh's reader of no segment): search and related aids
    answer empty, as a new node before its first import does."""
    index = IndexService(tmp_path / "index", search_threads=1, build_procs=1, merge_delay=-1)
    await index.open()
    try:
        await index.rebuild([], 1)
        q = parse_user_query("deposit", max_chars=100, max_terms=8).query
        assert q is not None
        page = await index.page(q, scope_filter(apps=None, audience=frozenset()), 0, 10)
        assert (page.hits, page.total) == ([], 0)
        scope = scope_filter(apps=["dockyard"], audience=frozenset(), include_global=True)
        assert await index.related([PageText("Deposit form", 1.0)], scope, 5) == []
    finally:
        await index.close()


ANY_WORDS = ["hazmat zzunknown", "pallet reefer", "kitting putaway tote", '"forklift order" rma']


def _any(text: str) -> Any:
    q = any_of(parse_user_query(text, max_chars=100, max_terms=8))
    assert q is not None
    return q


async def test_any_word_totals_count_only_what_the_caller_may_see(
    warehouse: IndexService,
) -> None:
    """The "any word" retry (when no aid has every word): a learner's total is the number of
    published, unrestricted aids with one of the words; hidden aids used to be counted."""
    aids = library(1200, random.Random(5))

    def says_one(a: PlainAid) -> bool:
        text = f"{a.title} {a.summary} {a.body} {' '.join(a.tags)}".lower()
        return "hazmat" in text or "reefer" in text

    visible = [a for a in aids if says_one(a) and a.status == "published" and not a.audience]
    learner = scope_filter(apps=None, audience=frozenset())
    page = warehouse._page_sync(_any("hazmat reefer"), learner, 0, 10, None)
    assert page.total == len(visible) > 10
    assert [h.score for h in page.hits] == sorted((h.score for h in page.hits), reverse=True)


async def test_any_word_ranking_is_the_same_however_the_index_is_split(tmp_path: Path) -> None:
    """One library in one segment or in two: the same aids, scores and totals for the "any
    word" retry. Whoosh counted the query's terms per segment (a word missing from one segment
    changed every score there) and added no bonus at all for matching more of them."""
    aids = library(900, random.Random(8))
    one = IndexService(tmp_path / "one", search_threads=1, build_procs=1, merge_delay=-1)
    two = IndexService(tmp_path / "two", search_threads=1, build_procs=1, merge_delay=-1)
    for index in (one, two):
        await index.open()
    await one.rebuild(aids, 1)
    await two.rebuild(aids[:450], 1)
    await two.apply(aids[450:], content_version=2)  # no update: the same statistics
    try:
        assert two.segments == 2
        for text in ANY_WORDS:
            for scope in SEARCH_SCOPES:
                # every hit (ties fall in document order, which a rebuild sets by app)
                a, b = (index._page_sync(_any(text), scope, 0, 1000, None) for index in (one, two))
                assert a.total == b.total == len(a.hits) > 0, (text, scope)
                assert sorted((-round(h.score, 6), h.id) for h in a.hits) == sorted(
                    (-round(h.score, 6), h.id) for h in b.hits
                )
    finally:
        await one.close()
        await two.close()


def test_matching_more_of_the_words_earns_the_coordination_bonus() -> None:
    """Whoosh's Short Query Ranking, with the count of matched terms it never passed."""
    assert scoped._coordinated(10.0, 3, 8, 0.9) > scoped._coordinated(10.0, 1, 8, 0.9)
    assert scoped._coordinated(10.0, 1, 8, 0.9) == pytest.approx(10.0 * 7 / 8)
