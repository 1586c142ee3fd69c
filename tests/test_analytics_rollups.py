"""Period rollups (weeks, months, people bitmaps): long-range dashboard figures must equal what the
raw events say, for any range, app filter, purge and rebuild."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.analytics import periods
from server.analytics.events import Event
from server.analytics.reports import (
    AidInfo,
    CatalogView,
    ContextInfo,
    Filters,
    adoption,
    content,
    gaps,
)
from server.analytics.store import EventStore

APPS = ["crm", "hr", "ops"]
CONTEXTS = {"c1": "crm", "c2": "crm", "h1": "hr"}
AIDS = ["a1", "a2", "a3", "a4"]
QUERIES = ["pto", "leave", "vpn"]
FIRST = dt.date(2025, 1, 1)
LAST = dt.date(2026, 2, 15)  # 411 days: more than the longest range (366)
CAT = CatalogView(
    {a: a.upper() for a in APPS},
    {a: AidInfo(a, a, (APPS[i % 3],), True) for i, a in enumerate(AIDS)},
    {c: ContextInfo(c, app, c, 0) for c, app in CONTEXTS.items()},
)


def random_event(rng: random.Random, day: dt.date) -> Event:
    at = dt.datetime.combine(day, dt.time(rng.randrange(24)), dt.UTC)
    eid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    app = rng.choice(APPS)
    k = rng.randrange(7)
    if k == 0:
        ctx = rng.choice([c for c, a in CONTEXTS.items() if a == app] + [""])
        return Event(eid, "panel_opened", at, app=app, context=ctx)
    if k == 1:
        return Event(eid, "suggestions_shown", at, app=app, aids=tuple(rng.sample(AIDS, 2)))
    if k == 2:
        return Event(eid, "aid_opened", at, app=app, aid=rng.choice(AIDS))
    if k == 3:
        return Event(
            eid, "aid_rated", at, app=app, aid=rng.choice(AIDS), helpful=rng.random() < 0.6
        )
    if k == 4:
        q = rng.choice(QUERIES)
        return Event(eid, "search", at, app=app, query=q, result_count=rng.choice([0, 0, 2]))
    if k == 5:
        return Event(eid, "link_followed", at, app=app, aid=rng.choice(AIDS), url_host="x.example")
    return Event(eid, "signed_in", at)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    """~4,000 events of 60 people over 411 days, in batches of one person (as the API makes)."""
    path = tmp_path_factory.mktemp("rollups") / "events.sqlite3"
    rng = random.Random(11)
    users = [f"{rng.getrandbits(128):032x}" for _ in range(60)]
    store = EventStore(path)
    store.open_sync()
    days = (LAST - FIRST).days + 1
    for _ in range(900):
        day = FIRST + dt.timedelta(days=rng.randrange(days))
        batch = [random_event(rng, day) for _ in range(rng.randint(1, 8))]
        store.ingest_sync(batch, rng.choice(users))
    yield store
    store.close_sync()
    store._writer.shutdown()
    store._reader.shutdown()


def raw(conn: sqlite3.Connection, f: Filters) -> dict[str, Any]:
    """The figures straight from the raw events."""
    sql = "SELECT type, day, user, app, context, aid, data FROM events WHERE day BETWEEN ? AND ?"
    args: list[Any] = [f.start.isoformat(), f.end.isoformat()]
    if f.app is not None:
        sql += " AND app = ?"
        args.append(f.app)
    out: dict[str, Any] = {
        "people": set(),
        "by_type": defaultdict(int),
        "app_people": defaultdict(set),
        "app_type": defaultdict(lambda: defaultdict(int)),
        "day_people": defaultdict(set),
        "aid_people": defaultdict(set),
        "aid": defaultdict(lambda: defaultdict(int)),
        "zero_people": defaultdict(set),
        "query": defaultdict(lambda: defaultdict(int)),
        "ctx_people": defaultdict(set),
        "ctx_opens": defaultdict(int),
    }
    import json

    for type_, day, user, app, ctx, aid, data in conn.execute(sql, args):
        d = json.loads(data)
        out["people"].add(user)
        out["by_type"][type_] += 1
        out["app_people"][app].add(user)
        out["app_type"][app][type_] += 1
        out["day_people"][day].add(user)
        if type_ in {"aid_opened", "aid_rated", "link_followed"}:
            out["aid_people"][aid].add(user)
            out["aid"][aid][type_] += 1
            if type_ == "aid_rated":
                out["aid"][aid]["helpful" if d["helpful"] else "not_helpful"] += 1
        elif type_ == "suggestions_shown":
            for a in d["aids"]:
                out["aid"][a]["shown"] += 1
        elif type_ == "search":
            out["query"][d["query"]]["search"] += 1
            if d["result_count"] == 0:
                out["query"][d["query"]]["zero"] += 1
                out["zero_people"][d["query"]].add(user)
        elif type_ == "panel_opened":
            out["ctx_people"][(app, ctx)].add(user)
            out["ctx_opens"][(app, ctx)] += 1
    return out


def check(conn: sqlite3.Connection, f: Filters) -> None:
    """Every figure of the three reports (min group 1: nothing withheld) equals the raw one."""
    want = raw(conn, f)
    a = adoption(conn, f, 1, CAT)
    totals = {r["figure"]: r["value"] for r in a["totals"].rows}
    assert totals["active_learners"] == len(want["people"]), f
    assert totals["panel_opens"] == want["by_type"]["panel_opened"]
    assert totals["aids_opened"] == want["by_type"]["aid_opened"]
    assert totals["searches"] == want["by_type"]["search"]
    assert totals["ratings"] == want["by_type"]["aid_rated"]
    by_app = {r["app"]: r for r in a["by_app"].rows}
    assert set(by_app) == set(want["app_people"])
    for app, people in want["app_people"].items():
        assert by_app[app]["active_learners"] == len(people), (f, app)
        assert by_app[app]["panel_opens"] == want["app_type"][app]["panel_opened"]
        assert by_app[app]["aids_opened"] == want["app_type"][app]["aid_opened"]
    daily = {r["day"]: r["active_learners"] for r in a["daily"].rows}
    assert daily == {d: len(want["day_people"].get(d, ())) for d in f.days()}

    top = {r["aid"]: r for r in content(conn, f, 1, CAT, limit=1000)["top_aids"].rows}
    assert set(top) == set(want["aid_people"])
    for aid, people in want["aid_people"].items():
        c = want["aid"][aid]
        assert top[aid]["people"] == len(people), (f, aid)
        assert top[aid]["opened"] == c["aid_opened"]
        assert top[aid]["links"] == c["link_followed"]
        assert top[aid]["shown"] == c["shown"]
        assert (top[aid]["helpful"], top[aid]["not_helpful"]) == (c["helpful"], c["not_helpful"])

    g = gaps(conn, f, 1, CAT, limit=1000)
    zero = {r["query"]: r for r in g["no_results"].rows}
    assert set(zero) == set(want["zero_people"])
    for q, people in want["zero_people"].items():
        assert zero[q]["people"] == len(people)
        assert zero[q]["zero_results"] == want["query"][q]["zero"]
        assert zero[q]["searches"] == want["query"][q]["search"]
    pages = {(r["app"], r["context"]): r for r in g["unpinned_pages"].rows}
    assert set(pages) == set(want["ctx_people"])
    for group, people in want["ctx_people"].items():
        assert pages[group]["people"] == len(people)
        assert pages[group]["panel_opens"] == want["ctx_opens"][group]

    # "(other)" rows: the people of a union of small groups, each person once
    a5 = adoption(conn, f, 5, CAT)["by_app"].rows
    small = [app for app, p in want["app_people"].items() if len(p) < 5]
    if small:
        union = set().union(*(want["app_people"][s] for s in small))
        other = a5[-1]
        assert other["app"].startswith("(other)")
        assert (other["active_learners"] or 0) == (len(union) if len(union) >= 5 else 0)


RANGES = [
    (FIRST, FIRST),  # one day
    (dt.date(2025, 3, 1), dt.date(2025, 3, 31)),  # one whole month
    (dt.date(2025, 3, 3), dt.date(2025, 3, 9)),  # one whole week
    (dt.date(2025, 2, 14), dt.date(2026, 2, 14)),  # 366 days, edges on both sides
    (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),  # whole months only
    (dt.date(2025, 4, 29), dt.date(2025, 7, 27)),  # 90 days
    (dt.date(2025, 5, 30), dt.date(2025, 6, 2)),  # across a month boundary, no whole block
    (dt.date(2025, 12, 20), dt.date(2026, 1, 20)),  # across a year boundary
]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_long_range_figures_equal_the_raw_events(
    store: EventStore, start: dt.date, end: dt.date
) -> None:
    for app in (None, "crm"):
        check(store.rconn, Filters(start, end, app))


def test_random_ranges_equal_the_raw_events(store: EventStore) -> None:
    rng = random.Random(5)
    span = (LAST - FIRST).days
    for _ in range(12):
        start = FIRST + dt.timedelta(days=rng.randrange(span))
        end = min(LAST, start + dt.timedelta(days=rng.randrange(366)))
        check(store.rconn, Filters(start, end, rng.choice([None, *APPS])))


def test_plan_covers_each_day_once() -> None:
    rng = random.Random(3)
    for _ in range(500):
        start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(800))
        end = start + dt.timedelta(days=rng.randrange(400))
        floor = (
            "" if rng.random() < 0.5 else (start + dt.timedelta(days=rng.randrange(40))).isoformat()
        )
        p = periods.plan(start, end, floor)
        covered: list[dt.date] = [dt.date.fromisoformat(d) for d in p.days]
        for w in map(dt.date.fromisoformat, p.weeks):
            assert w.weekday() == 0 and (not floor or w.isoformat() >= floor)
            covered += [w + dt.timedelta(days=i) for i in range(7)]
        for m in map(dt.date.fromisoformat, p.months):
            assert m.day == 1 and (not floor or m.isoformat() >= floor)
            n = (m.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - m
            covered += [m + dt.timedelta(days=i) for i in range(n.days)]
        assert sorted(covered) == [
            start + dt.timedelta(days=i) for i in range((end - start).days + 1)
        ]
        if not floor and (end - start).days >= 365:
            # weeks take the edges: at most 6 single days before and after each run of weeks
            assert len(p.months) >= 11 and len(p.days) <= 24 and len(p.weeks) <= 10


def test_bitmaps_round_trip() -> None:
    for bits in (1, 1 << 5000, (1 << 5000) | 7, (1 << 4000) - 1, 0b1010 << 77):
        blob = periods.encode(bits)
        assert periods.decode(blob) == bits
    assert periods.encode(1 << 5000)[0] == periods.SPARSE  # 5 bytes, not 626
    assert periods.encode((1 << 4000) - 1)[0] == periods.DENSE


def _people_by_user(conn: sqlite3.Connection) -> dict[tuple[str, ...], frozenset[str]]:
    names = {idx: user for user, idx in conn.execute("SELECT user, idx FROM person_ids")}
    out = {}
    for dim, level, period, key, app, n, blob in conn.execute("SELECT * FROM people"):
        bits = periods.decode(blob)
        users = frozenset(names[i] for i in range(bits.bit_length()) if bits >> i & 1)
        assert len(users) == n
        out[(dim, level, period, key, app)] = users
    return out


def test_rebuild_from_the_daily_rollups_gives_the_same_blocks(
    store: EventStore, tmp_path: Path
) -> None:
    """A database from before the period rollups gets them built at start-up, equal to what
    ingestion would have made."""
    conn = store.rconn
    incremental = _people_by_user(conn)
    counts = conn.execute("SELECT * FROM period_counts ORDER BY 1, 2, 3, 4, 5, 6").fetchall()
    copy = tmp_path / "old.sqlite3"
    store.wconn.execute("VACUUM INTO ?", (str(copy),))
    with sqlite3.connect(copy) as db:  # as it was before: no period tables, no migrations
        db.executescript(
            "DROP TABLE people; DROP TABLE period_counts; DROP TABLE person_ids; DROP TABLE meta;"
            "DROP TABLE alembic_version;"
        )
    db.close()
    again = EventStore(copy)
    again.open_sync()
    try:
        assert _people_by_user(again.rconn) == incremental
        got = again.rconn.execute("SELECT * FROM period_counts ORDER BY 1, 2, 3, 4, 5, 6")
        assert got.fetchall() == counts
    finally:
        again.close_sync()
        again._writer.shutdown()
        again._reader.shutdown()


def test_purge_cuts_blocks_and_figures_stay_exact(store: EventStore, tmp_path: Path) -> None:
    copy = tmp_path / "purged.sqlite3"
    store.wconn.execute("VACUUM INTO ?", (str(copy),))
    s = EventStore(copy)
    s.open_sync()
    try:
        cutoff = "2025-06-18"  # a Wednesday in mid-month: its week and month are cut
        removed = s.purge_sync(cutoff)
        assert removed["people"] > 0 and removed["period_counts"] > 0
        conn = s.rconn
        assert periods.get_meta(conn, "blocks_from") == cutoff
        assert conn.execute("SELECT MIN(period) FROM people").fetchone()[0] >= cutoff
        assert conn.execute("SELECT MIN(period) FROM period_counts").fetchone()[0] >= cutoff
        # nobody keeps a number who has no day left
        left = {r[0] for r in conn.execute("SELECT DISTINCT user FROM users")}
        assert {r[0] for r in conn.execute("SELECT user FROM person_ids")} == left
        for start, end in [
            (dt.date(2025, 6, 18), dt.date(2026, 2, 15)),
            (dt.date(2025, 6, 1), dt.date(2025, 9, 30)),
        ]:
            check(conn, Filters(start, end))
            check(conn, Filters(start, end, "hr"))
        # a later event of a purged month-block goes to days only, and is counted once
        late = Event(
            str(uuid.uuid4()),
            "aid_opened",
            dt.datetime(2025, 6, 20, tzinfo=dt.UTC),
            app="hr",
            aid="a1",
        )
        s.ingest_sync([late], "f" * 32)
        check(s.rconn, Filters(dt.date(2025, 6, 18), dt.date(2025, 8, 31), "hr"))
    finally:
        s.close_sync()
        s._writer.shutdown()
        s._reader.shutdown()
