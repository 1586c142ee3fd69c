"""Segment merges in a child process, and index builds in several processes (index/merge.py,
index/service.py). The library is a small one of a shipping company's own apps, not the demo's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from index import service as service_module
from index.query import parse_user_query, scope_filter
from index.service import MAX_SEGMENTS, IndexService
from tests.index_aids import PlainAid

TOPICS = [
    ("Book a container slot", "Reserve a container slot at the terminal before the cut-off."),
    ("Print a bill of lading", "Print the bill of lading once the customs hold is released."),
    ("Report damaged cargo", "Photograph the damaged pallets and report them within 24 hours."),
    ("Change a delivery window", "Move the delivery window up to two days before arrival."),
    ("Request a reefer plug", "Ask the yard for a reefer plug for temperature-controlled goods."),
    ("Weigh a container (VGM)", "Declare the verified gross mass before loading."),
]


def ShippingAid(
    id: str, title: str, summary: str, body: str, tags: tuple[str, ...] = ()
) -> PlainAid:
    """An aid of Portside, the shipping company's booking app."""
    return PlainAid(id, title, summary, body, tags=tags, apps=("portside",))


def library(n: int) -> list[PlainAid]:
    """`n` aids: the topics above, then filler steps about the yard (no topic words)."""
    aids = []
    for i in range(n):
        if i < len(TOPICS):
            title, summary = TOPICS[i]
        else:
            title, summary = f"Yard routine {i}", f"Routine number {i} for the gate crew."
        body = f"{summary} Open Portside, choose the booking, then confirm. Step {i}."
        aids.append(ShippingAid(f"ship-{i}", title, summary, body, tags=(f"crew{i % 7}",)))
    return aids


def query(text: str) -> object:
    q = parse_user_query(text, max_chars=100, max_terms=8).query
    assert q is not None
    return q


EVERYONE = scope_filter(apps=None, audience=frozenset())


async def ids(index: IndexService, text: str, limit: int = 5) -> list[str]:
    return [h.id for h in await index.top(query(text), EVERYONE, limit)]  # type: ignore[arg-type]


async def wait_until(check: object, seconds: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_searches_during_a_merge_find_every_aid_and_writes_made_meanwhile_survive(
    tmp_path: Path,
) -> None:
    """Incident guarded: above 25k aids segments were never merged (a merge in the writer
    thread took minutes and stalled every search), so they piled up. Merges now run in a child
    process while the server keeps searching and writing: searches stay right throughout, and
    writes committed while the child worked are in the merged index it swaps in."""
    aids = library(300)
    index = IndexService(tmp_path / "index", search_threads=1, merge_delay=0.05)
    await index.open()
    await index.rebuild(aids, 1)
    version = 1
    for aid in aids[:12]:  # small commits: a segment each, then a merge starts
        version += 1
        await index.apply([aid], content_version=version)
    results: list[list[str]] = []
    checked_during_merge = 0
    version += 1
    await index.apply(
        [ShippingAid("ship-new", "Cancel a reefer booking", "Undo it.", "x")],
        content_version=version,
    )
    version += 1
    await index.apply(deletes=["ship-2"], content_version=version)
    deadline = asyncio.get_running_loop().time() + 300  # a generous wait on a loaded machine
    while index.merges == 0:
        if index._merge is not None:
            checked_during_merge += 1
            if checked_during_merge == 1:  # a write while the child merges: replayed after
                version += 1
                await index.apply(
                    [ShippingAid("ship-late", "Late bill of lading fix", "Fix it.", "y")],
                    content_version=version,
                )
        results.append(await ids(index, "bill of lading"))
        assert asyncio.get_running_loop().time() < deadline, "no merge happened"
        await asyncio.sleep(0.01)
    assert index.merges >= 1
    assert checked_during_merge > 0
    assert all("ship-1" in r for r in results)  # never a missing answer
    await wait_until(lambda: index._merge is None and index.segments == 1)
    assert "ship-late" in await ids(index, "bill of lading")  # written during the merge
    assert await ids(index, "cancel reefer booking") == ["ship-new"]
    assert await ids(index, "damaged cargo") == []  # deleted before the merge: still gone
    assert index.state.doc_count == 300 + 2 - 1
    assert index.agrees_with(version, 301)
    await index.close()
    reopened = IndexService(tmp_path / "index", search_threads=1)
    assert (await reopened.open()).doc_count == 301  # the swapped-in generation is the live one
    assert await ids(reopened, "late bill of lading") == ["ship-late"]
    await reopened.close()
    left = sorted(p.name for p in (tmp_path / "index").iterdir() if p.is_dir())
    assert len(left) == 1 and left[0].startswith("gen-")  # no copies left behind


async def test_segments_stay_bounded_under_many_small_writes(tmp_path: Path) -> None:
    """Incident guarded: segments piled up (one per publish) and every search paid for each;
    writes that never pause for the quiet period still get merged once segments reach
    MAX_SEGMENTS."""
    aids = library(200)
    index = IndexService(tmp_path / "index", search_threads=1, merge_delay=3600)
    await index.open()
    await index.rebuild(aids, 1)
    most = 0
    for n, aid in enumerate(aids[:60], start=2):
        await index.apply([aid], content_version=n)
        most = max(most, index.segments)
    assert most <= MAX_SEGMENTS + 1
    await wait_until(lambda: index._merge is None and index.segments < MAX_SEGMENTS)
    assert await ids(index, "reefer plug") == ["ship-4"]
    assert index.state.doc_count == 200
    await index.close()


async def test_a_build_in_two_processes_finds_what_a_build_in_one_finds(tmp_path: Path) -> None:
    """Incident guarded: an index build used one core (about 250 aids/s, so a 100k rebuild
    took minutes); with two writer processes every aid must still be indexed and found."""
    aids = library(400)
    one = IndexService(tmp_path / "one", search_threads=1, build_procs=1, merge_delay=-1)
    two = IndexService(tmp_path / "two", search_threads=1, build_procs=2, merge_delay=0.05)
    two.build_procs_min_docs = 0
    await one.open()
    await two.open()
    assert (await one.rebuild(aids, 1)).doc_count == 400
    assert (await two.rebuild(aids, 1)).doc_count == 400
    assert two.segments == 2  # one per writer process, merged afterwards
    for text in ("bill of lading", "reefer plug", "routine 217", "gate crew confirm"):
        q = query(text)
        # every hit, not a top 10: equal scores are cut in build order, which the processes
        # interleave differently from run to run
        first = await one.top(q, EVERYONE, 500)  # type: ignore[arg-type]
        second = await two.top(q, EVERYONE, 500)  # type: ignore[arg-type]
        assert sorted((round(h.score, 6), h.id) for h in first) == sorted(
            (round(h.score, 6), h.id) for h in second
        ), text
    await wait_until(lambda: two.segments == 1)  # then merged in a child process
    assert await ids(two, "reefer plug") == await ids(one, "reefer plug") == ["ship-4"]
    await one.close()
    await two.close()
    assert service_module.BUILD_PROCS_MIN_DOCS > 0  # small libraries build in-process


async def test_an_aid_changed_twice_in_one_commit_ends_as_its_last_change(tmp_path: Path) -> None:
    """Incident guarded: writes waiting together are committed in one Whoosh writer, whose
    deletes only reach committed segments: an aid published then deleted in the same batch
    stayed searchable, and one saved twice was indexed twice (the same writes replayed onto a
    merged index hit it every time)."""
    aids = library(20)
    index = IndexService(tmp_path / "index", search_threads=1, merge_delay=-1)
    await index.open()
    await index.rebuild(aids, 1)
    gone = ShippingAid("ship-gone", "Book a barge slot", "Barge slots.", "Barge.")
    twice = ShippingAid("ship-twice", "Reserve crane time", "Crane.", "Crane time.")
    again = ShippingAid("ship-twice", "Reserve crane hours", "Crane.", "Crane hours.")
    await asyncio.gather(
        index.apply([gone, twice], content_version=2),
        index.apply([again], deletes=["ship-gone"], content_version=3),
    )
    assert await ids(index, "barge slot") == []
    assert await ids(index, "crane") == ["ship-twice"]
    assert await ids(index, "crane hours") == ["ship-twice"]
    assert index.state.doc_count == 21
    assert index.doc_count_sync() == 21
    await index.close()


async def test_a_merge_cut_short_by_a_crash_leaves_nothing_behind(tmp_path: Path) -> None:
    """Incident guarded: a server killed while its child merged left the frozen copy and the
    half-merged directory in the index folder, a full index's size each, for good."""
    index = IndexService(tmp_path / "index", search_threads=1, merge_delay=-1)
    await index.open()
    await index.rebuild(library(30), 1)
    await index.close()
    for name in (".merge-source-3-4242", ".merging-3-4242"):
        (tmp_path / "index" / name).mkdir()
        (tmp_path / "index" / name / "MAIN_x.seg").write_bytes(b"half")
    reopened = IndexService(tmp_path / "index", search_threads=1, merge_delay=-1)
    assert (await reopened.open()).doc_count == 30
    assert await ids(reopened, "reefer plug") == ["ship-4"]
    left = sorted(p.name for p in (tmp_path / "index").iterdir() if p.is_dir())
    assert left == ["gen-1"]
    await reopened.close()
