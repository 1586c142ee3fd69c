"""Period rollups: what makes a dashboard over a long range cheap, and still exact.

The daily rollups (`counts`, `users`) cost one row per day; a year of them is millions of rows,
and distinct people cannot be added up across days. So, in the same transaction as the daily
rows, ingestion also keeps:

- `period_counts(dim, level, period, key, app, metric, n)`: the daily counts summed per ISO week
  (`level` 'w', `period` = its Monday) and per calendar month ('m', `period` = its first day);
- `people(dim, level, period, key, app, n, bits)`: the distinct people of each group per day
  ('d'), week ('w') and month ('m') as a **bitmap** over small person numbers (`person_ids`),
  and its population count `n`.

A range is cut into blocks (`plan`): the whole months inside it, then the whole weeks inside what
is left at either edge, then single days. Counts are sums over the blocks; distinct people are the
population count of the OR of the blocks' bitmaps, so they are exact for any range, any group and
any union of groups (the "(other)" rows), with no scan of per-person rows.

Bitmaps are stored sparse (a tag byte 0, then the person numbers as little-endian uint32) when that
is smaller, else dense (tag byte 1, then the bits little-endian). Person numbers are given in order
of first appearance and deleted by the retention purge with the last day the person was seen.

A week or month block that began before the last purge's cutoff lost its early days' people
(they are deleted with it): `blocks_from` in `meta` says from which date on blocks are complete,
and `plan` uses single days before it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from server.db.events_tables import Prepared, meta, people, period_counts, person_ids, upsert
from server.db.events_tables import counts as counts_t
from server.db.events_tables import users as users_t

# 2: period_counts, people and person_ids exist (built from the daily rollups when missing)
ROLLUP_VERSION = "2"
LEVELS = ("w", "m")
# the daily dims that have period rollups (the usage signal's `sig_*` rows have none)
PERIOD_DIMS = ("app", "aid", "ctx", "query", "zero")
SPARSE, DENSE = 0, 1

Key = tuple[str, str, str, str, str]  # (dim, day, key, app, metric | user)


def week_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(m: dt.date) -> dt.date:
    return (m.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def periods_of(day: str) -> tuple[str, str]:
    """The (week, month) periods of a day, as the dates they start on."""
    d = dt.date.fromisoformat(day)
    return week_of(d).isoformat(), month_of(d).isoformat()


# -- bitmaps -------------------------------------------------------------------------------------


def encode(bits: int) -> bytes:
    n = bits.bit_count()
    dense = (bits.bit_length() + 7) // 8
    if 4 * n < dense:
        out = array("I")
        b, i = bits, 0
        while b:
            low = b & -b
            i = low.bit_length() - 1
            out.append(i)
            b ^= low
        if sys.byteorder != "little":  # pragma: no cover - stored little-endian everywhere
            out.byteswap()
        return bytes([SPARSE]) + out.tobytes()
    return bytes([DENSE]) + bits.to_bytes(dense, "little")


def decode(blob: bytes) -> int:
    if blob[0] == DENSE:
        return int.from_bytes(memoryview(blob)[1:], "little")
    idx = array("I")
    idx.frombytes(memoryview(blob)[1:])
    if sys.byteorder != "little":  # pragma: no cover
        idx.byteswap()
    return sum(1 << i for i in idx)


# -- maintenance (inside the caller's transaction) ----------------------------------------------


def person_numbers(conn: sa.Connection, last_days: dict[str, str]) -> dict[str, int]:
    """The number of each pseudonym (new ones get the next free number); records last days."""
    out: dict[str, int] = {}
    t = person_ids
    for user, day in last_days.items():
        row = conn.execute(sa.select(t.c.idx, t.c.last_day).where(t.c.user == user)).first()
        if row is None:
            nxt = conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.idx), -1) + 1)).scalar()
            conn.execute(sa.insert(t).values(user=user, idx=nxt, last_day=day))
            out[user] = int(nxt or 0)
        else:
            out[user] = int(row.idx)
            if day > row.last_day:
                conn.execute(sa.update(t).where(t.c.user == user).values(last_day=day))
    return out


def add_period_rollups(conn: sa.Connection, counts: Counter[Key], users: Iterable[Key]) -> None:
    """Add daily rollup rows to the week and month counts and the day/week/month bitmaps."""
    periods: dict[str, tuple[str, str]] = {}

    def per(day: str) -> tuple[str, str]:
        p = periods.get(day)
        if p is None:
            p = periods[day] = periods_of(day)
        return p

    pc: Counter[tuple[str, str, str, str, str, str]] = Counter()
    for (dim, day, key, app, metric), n in counts.items():
        w, m = per(day)
        pc[(dim, "w", w, key, app, metric)] += n
        pc[(dim, "m", m, key, app, metric)] += n
    # in key order: fewer page visits
    _ADD_PERIOD_COUNTS.many(conn, [(*k, n) for k, n in sorted(pc.items())])
    users = list(users)
    if not users:
        return
    last: dict[str, str] = {}
    for _, day, _, _, user in users:
        if day > last.get(user, ""):
            last[user] = day
    ids = person_numbers(conn, last)
    masks: dict[tuple[str, str, str, str, str], int] = defaultdict(int)
    for dim, day, key, app, user in users:
        bit = 1 << ids[user]
        w, m = per(day)
        masks[(dim, "d", day, key, app)] |= bit
        masks[(dim, "w", w, key, app)] |= bit
        masks[(dim, "m", m, key, app)] |= bit
    merge_bitmaps(conn, masks)


_KEY = ("dim", "level", "period", "key", "app")
_ADD_PERIOD_COUNTS = Prepared(lambda d: upsert(d, period_counts, add="n"), (*_KEY, "metric", "n"))
_SELECT_BITS = Prepared(
    lambda d: sa.select(people.c.bits).where(*(people.c[k] == sa.bindparam(k) for k in _KEY)),
    _KEY,
)
_PUT_PEOPLE = Prepared(lambda d: upsert(d, people), (*_KEY, "n", "bits"))


def merge_bitmaps(conn: sa.Connection, masks: dict[tuple[str, str, str, str, str], int]) -> None:
    writes = []
    select_bits = _SELECT_BITS.on(conn)
    for k, bits in sorted(masks.items()):
        row = select_bits(k).fetchone()
        if row is not None:
            old = decode(row[0])
            if old | bits == old:
                continue  # already counted: the common case for an active person
            bits |= old
        writes.append((*k, bits.bit_count(), encode(bits)))
    _PUT_PEOPLE.many(conn, writes)


def rebuild(conn: sa.Connection, chunk_days: int = 7) -> None:
    """(Re)build the period rollups from the daily ones (inside the caller's transaction)."""
    for table in (period_counts, people, person_ids):
        conn.execute(sa.delete(table))
    days = list(conn.scalars(sa.select(counts_t.c.day).distinct().order_by(counts_t.c.day)))
    for i in range(0, len(days), chunk_days):
        group = days[i : i + chunk_days]
        c = counts_t.c
        counts = Counter(
            {
                (dim, day, key, app, metric): n
                for dim, day, key, app, metric, n in conn.execute(
                    sa.select(c.dim, c.day, c.key, c.app, c.metric, c.n).where(
                        c.day.in_(group), c.dim.in_(PERIOD_DIMS)
                    )
                )
            }
        )
        u = users_t.c
        users = [
            (dim, day, key, app, user)
            for dim, day, key, app, user in conn.execute(
                sa.select(u.dim, u.day, u.key, u.app, u.user).where(
                    u.day.in_(group), u.dim.in_(PERIOD_DIMS)
                )
            )
        ]
        add_period_rollups(conn, counts, users)
    set_meta(conn, "blocks_from", "")
    set_meta(conn, "rollup_version", ROLLUP_VERSION)


def get_meta(conn: sa.Connection | sqlite3.Connection, name: str, default: str = "") -> str:
    """A `meta` value, through the store's connections or the DBAPI connection the dashboard
    reports read with (`EventStore.rconn`)."""
    if isinstance(conn, sa.Connection):
        row = conn.execute(sa.select(meta.c.value).where(meta.c.name == name)).first()
    else:
        row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return str(row[0]) if row else default


def set_meta(conn: sa.Connection, name: str, value: str) -> None:
    conn.execute(upsert(conn.dialect, meta), {"name": name, "value": value})


def purge(conn: sa.Connection, before_day: str) -> dict[str, int]:
    """Delete period rollups of blocks that began before `before_day`, and the numbers of people
    not seen since; from then on `plan` uses single days for the blocks cut by the cutoff."""
    removed: dict[str, int] = {}
    total = 0
    # one statement per (dim, level): each uses the primary key's prefix
    for level in ("d", "w", "m"):
        for dim in ("app", "aid", "ctx", "zero"):
            total += conn.execute(
                sa.delete(people).where(
                    people.c.dim == dim, people.c.level == level, people.c.period < before_day
                )
            ).rowcount
    removed["people"] = total
    total = 0
    pc = period_counts.c
    for level in LEVELS:
        for dim in ("app", "aid", "ctx", "query"):
            total += conn.execute(
                sa.delete(period_counts).where(
                    pc.dim == dim, pc.level == level, pc.period < before_day
                )
            ).rowcount
    removed["period_counts"] = total
    removed["person_ids"] = conn.execute(
        sa.delete(person_ids).where(person_ids.c.last_day < before_day)
    ).rowcount
    if before_day > get_meta(conn, "blocks_from"):
        set_meta(conn, "blocks_from", before_day)
    return removed


# -- reading: a range as blocks ------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A date range as disjoint blocks: single days, whole ISO weeks, whole months."""

    days: tuple[str, ...]
    weeks: tuple[str, ...]  # Mondays
    months: tuple[str, ...]  # first days

    def levels(self) -> list[tuple[str, Sequence[str]]]:
        return [(lv, p) for lv, p in (("d", self.days), ("w", self.weeks), ("m", self.months)) if p]


def plan(start: dt.date, end: dt.date, blocks_from: str = "") -> Plan:
    """Whole months inside [start, end], then whole weeks in the edges left, then days.

    Blocks that begin before `blocks_from` are incomplete (purged in part) and not used."""
    floor = dt.date.fromisoformat(blocks_from) if blocks_from else dt.date.min
    months: list[str] = []
    edges: list[tuple[dt.date, dt.date]] = []
    m = month_of(start)
    if m < start:
        m = _next_month(m)
    cursor = start
    while _next_month(m) - dt.timedelta(days=1) <= end:
        if m >= floor:
            if cursor < m:
                edges.append((cursor, m - dt.timedelta(days=1)))
            months.append(m.isoformat())
            cursor = _next_month(m)
        m = _next_month(m)
    if cursor <= end:
        edges.append((cursor, end))
    weeks: list[str] = []
    days: list[str] = []
    for a, b in edges:
        w = week_of(a)
        if w < a:
            w += dt.timedelta(days=7)
        c = a
        while w + dt.timedelta(days=6) <= b:
            if w >= floor:
                days.extend(_days(c, w - dt.timedelta(days=1)))
                weeks.append(w.isoformat())
                c = w + dt.timedelta(days=7)
            w += dt.timedelta(days=7)
        days.extend(_days(c, b))
    return Plan(tuple(days), tuple(weeks), tuple(months))


def _days(a: dt.date, b: dt.date) -> list[str]:
    return [(a + dt.timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]
