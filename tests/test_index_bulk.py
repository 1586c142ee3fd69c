"""Index builds that write whole posting lists (index/bulk.py) write what Whoosh's own writer
writes, byte for byte; a share that fails in its process fails the build and leaves the live
index as it was. The library is an HR portal's, not the demo's."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from whoosh.filedb.filestore import FileStorage
from whoosh.writing import SegmentWriter

from index import bulk
from index.analysis import FastAnalyzer
from index.documents import aid_document
from index.errors import IndexUnavailable
from index.schema import BODY_ANALYZER, PAGE_ANALYZER, TEXT_ANALYZER, WORD_ANALYZER, build_schema
from index.service import IndexService
from tests.index_aids import PlainAid

SENTENCES = (
    "Request parental leave in the HR portal: open Time off, choose the leave type and attach "
    "the birth certificate. Your manager approves; payroll sees it the next day. A W-2 or an "
    "e-mail from the co-op can't replace the form. Straße İstanbul naïve ΟΔΟΣ 2026-10 3.5 U.S.A"
)
WORDS = SENTENCES.split()
TRANSCRIPT = "00:00:01.000 --> 00:00:04.000\nOpen the time off page\n\n" * 2


def hr_library(n: int, seed: int = 7) -> list[PlainAid]:
    """`n` aids of varied shapes: long and short bodies, hyphens, other scripts, tags,
    restricted and draft aids, videos with a transcript, aids of no app."""
    rng = random.Random(seed)
    aids = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.choice((0, 3, 40, 400)))]
        aids.append(
            PlainAid(
                id=f"hr-{i}",
                title=" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))),
                summary=" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 14))),
                body=" ".join(words),
                type="video" if i % 5 == 0 else "howto",
                status="draft" if i % 11 == 0 else "published",
                tags=tuple(rng.sample(("Leave", "Payroll", "Time off", "W-2"), rng.randint(0, 3))),
                apps=() if i % 9 == 0 else (f"hr{i % 3}",),
                audience=("managers",) if i % 7 == 0 else (),
                transcript=TRANSCRIPT if i % 10 == 0 else "",
            )
        )
    return aids


def _segment(folder: Path, writer_class: type, docs: list[dict[str, Any]]) -> tuple[Any, str]:
    folder.mkdir()
    ix = FileStorage(str(folder)).create_index(build_schema())
    writer = writer_class(ix, compound=False)
    for doc in docs:
        writer.add_document(**doc)
    segment_id = writer.newsegment.segment_id()
    writer.commit(merge=False)
    return ix, segment_id


def _postings(reader: Any, field: str, text: bytes) -> list[tuple[Any, ...]]:
    """Every posting with what its block says of itself (the block statistics a search skips
    by), so block boundaries are compared too."""
    m = reader.postings(field, text)
    out = []
    while m.is_active():
        out.append(
            (
                m.id(),
                m.weight(),
                m.value(),
                m.block_max_weight(),
                m.block_min_length(),
                m.block_max_length(),
            )
        )
        m.next()
    return out


def _term_stats(info: Any) -> tuple[Any, ...]:
    return (
        info.weight(),
        info.doc_frequency(),
        info.min_length(),
        info.max_length(),
        info.max_weight(),
        info.min_id(),
        info.max_id(),
    )


def _same_index(a_ix: Any, b_ix: Any) -> None:
    """Every term of every field, with its statistics, postings (ids, weights, positions) and
    block statistics (field lengths as the column rounds them); field lengths; stored fields."""
    with a_ix.reader() as a, b_ix.reader() as b:
        assert a.doc_count() == b.doc_count() and not b.has_deletions()
        terms = list(a.all_terms())
        assert terms == list(b.all_terms())
        assert len({field for field, _ in terms}) >= 8
        for field, text in terms:
            assert _term_stats(a.term_info(field, text)) == _term_stats(b.term_info(field, text))
            assert _postings(a, field, text) == _postings(b, field, text), (field, text)
        for field in ("title", "summary", "body", "tags", "words", "transcript"):
            assert a.field_length(field) == b.field_length(field) > 0
        assert list(a.all_stored_fields()) == list(b.all_stored_fields())


def test_a_bulk_segment_holds_what_whoosh_writes(tmp_path: Path) -> None:
    """The same index (`_same_index`), and stored fields and columns byte for byte. (The
    posting files differ in bytes where a word's single position is one shared value, which a
    block's pickle writes once.)"""
    docs = [aid_document(a) for a in hr_library(700)]
    whoosh_ix, whoosh_id = _segment(tmp_path / "whoosh", SegmentWriter, docs)
    bulk_ix, bulk_id = _segment(tmp_path / "bulk", bulk.BulkWriter, docs)
    _same_index(whoosh_ix, bulk_ix)
    per_document = {".pst", ".trm"}  # the rest: stored fields, lengths, columns
    for path in (tmp_path / "whoosh").iterdir():
        if whoosh_id in path.name and path.suffix not in per_document:
            ours = tmp_path / "bulk" / path.name.replace(whoosh_id, bulk_id)
            assert ours.read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize(
    "analyzer", [TEXT_ANALYZER, BODY_ANALYZER, WORD_ANALYZER, PAGE_ANALYZER], ids=repr
)
def test_positions_are_the_tokens_positions(analyzer: FastAnalyzer) -> None:
    rng = random.Random(11)
    for _ in range(1500):
        gaps = (" ", " ", " ", "  ", "\t", "-", ", ", " - ", "--", "\n")
        text = "".join(rng.choice(WORDS) + rng.choice(gaps) for _ in range(rng.randint(0, 30)))
        tokens: dict[str, list[int]] = {}
        for t in analyzer(text, positions=True):
            tokens.setdefault(t.text, []).append(t.pos)
        assert analyzer.positions(text) == tokens, text


def test_encoded_positions_are_whooshs() -> None:
    fmt = build_schema()["body"].format
    for seen in ([0], [7], [300], [70_000], [1, 2, 3], [0, 255, 256, 70_000, 2**31]):
        assert bulk.encode_positions(seen) == fmt.encode(seen)


async def test_a_build_in_two_processes_is_the_build_in_one(tmp_path: Path) -> None:
    aids = hr_library(900)
    one = IndexService(tmp_path / "one", search_threads=1, build_procs=1, merge_delay=-1)
    two = IndexService(tmp_path / "two", search_threads=1, build_procs=2, merge_delay=-1)
    two.build_procs_min_docs = 0
    seen: list[tuple[int, int]] = []
    try:
        await one.rebuild(aids, 1)
        await two.rebuild(aids, 1, progress=lambda done, total: seen.append((done, total)))
        assert two.segments == 2 and one.segments == 1
        assert seen[-1] == (900, 900)  # progress counts both processes' aids
        with one._ix.searcher() as a, two._ix.searcher() as b:
            assert [d["id"] for d in a.all_stored_fields()] == [
                d["id"] for d in b.all_stored_fields()
            ]
            for field in ("title", "body", "tags", "words", "apps"):
                assert sorted(a.lexicon(field)) == sorted(b.lexicon(field))
                for term in list(a.lexicon(field))[:40]:
                    assert a.doc_frequency(field, term) == b.doc_frequency(field, term)
                    assert list(a.postings(field, term).all_ids()) == list(
                        b.postings(field, term).all_ids()
                    )
    finally:
        await one.close()
        await two.close()


@pytest.mark.parametrize(
    ("failure", "problem"),
    [("raises", r"process \d failed: .*RuntimeError"), ("dies", r"process \d ended without")],
)
async def test_a_share_that_fails_fails_the_build_and_keeps_the_live_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, problem: str
) -> None:
    """A document that cannot be made, or a build process killed (out of memory): the build
    fails with a message that says which, the live index stays, nothing is left behind."""
    index = IndexService(tmp_path / "index", search_threads=1, build_procs=2, merge_delay=-1)
    index.build_procs_min_docs = 0
    try:
        await index.rebuild(hr_library(50), 1)
        live = index.state

        def broken(aid: Any) -> dict[str, Any]:
            if aid.id == "hr-420":
                if failure == "dies":
                    os._exit(9)
                raise RuntimeError("a transcript the parser chokes on")
            return aid_document(aid)

        monkeypatch.setattr("index.service.aid_document", broken)
        with pytest.raises(IndexUnavailable, match=problem):
            await index.rebuild(hr_library(500), 2)
        assert index.state == live
        with index._ix.searcher() as s:
            assert s.doc_count() == 50
        assert not list((tmp_path / "index").glob(".building-*"))
    finally:
        await index.close()


async def test_a_bulk_merge_holds_what_whooshs_merge_writes(tmp_path: Path) -> None:
    """Three segments, some documents updated (deleted in their old segment) and a term left
    only in deleted documents: merged into one, the same terms, postings, statistics and
    stored fields as Whoosh's own merge, the deleted documents gone."""
    from dataclasses import replace

    from index.merge import merge_copy

    aids = hr_library(600)
    index = IndexService(tmp_path / "live", search_threads=1, build_procs=1, merge_delay=-1)
    await index.open()
    await index.rebuild(aids[:400], 1)
    await index.apply(aids[400:500], content_version=2)
    changed = [replace(a, title="Zzvanishing word", body=a.body + " again") for a in aids[::50]]
    await index.apply(changed + aids[500:], content_version=3)
    await index.apply([replace(a, title="Renamed") for a in changed], content_version=4)
    assert index.segments >= 3
    source = index._current_dir()
    assert source is not None
    await index.close()

    merged = tmp_path / "bulk"
    merged.mkdir()
    assert merge_copy(source, merged) == 600
    whoosh = tmp_path / "whoosh"
    whoosh.mkdir()
    src = FileStorage(str(source)).open_index()
    dst = FileStorage(str(whoosh)).create_index(src.schema)
    with src.reader() as reader:
        writer = dst.writer()
        for leaf, _ in reader.leaf_readers():
            writer.add_reader(leaf)
        writer.commit()
    ours = FileStorage(str(merged)).open_index()
    assert len(ours._segments()) == 1
    with ours.reader() as r:
        assert b"zzvanish" not in set(r.lexicon("title"))  # only deleted documents said it
    _same_index(dst, ours)
