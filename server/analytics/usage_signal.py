"""The usage signal: what colleagues on a page found helpful, as a bounded ranking signal.

Helpful votes and opens of an aid on a page context (the extension reports both with the
context's id) become a score in (-1, 1) per (context, aid), which suggest uses to reorder the
*related* aids only (server.suggest.RelatedSignal): pins stay first and in their order, and a
related aid's relevance (normalized to the best one) moves by at most `SIGNAL_WEIGHT` x score,
so usage moves an aid among aids that fit the page, never lifts an unrelated one in.

Carefully, from aggregates only:
- the rows are the daily distinct-people rollup (`users`, dims `sig_open`, `sig_up`,
  `sig_down`, key `<context>/<aid>`), written by ingestion in the same transaction as the
  other rollups; one person is one row per day however often they voted, and each person counts
  once per (context, aid): their latest vote wins and weighs by its age;
- a (context, aid) counts only when at least `analytics_min_group` distinct people opened or
  rated it there; below that its score is 0 and nothing about it is shown;
- the weight of a person halves every `HALF_LIFE_DAYS` days; days older than
  `WINDOW_HALF_LIVES` half-lives are not read at all;
- a reset (admin) deletes the aid's rows and records the time: events from before it, even ones
  that arrive late, never count again.

The signal is computed in a thread of its own (its own read-only connection), cached per context
in memory and refreshed by a background task when the events database changed (at most every
`REFRESH_SECONDS`), when the day changed, after a reset, or by `refresh()`; suggest only reads
the cache (bench/bench_usage_signal.py: what a refresh costs).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa

from server.analytics.events import Event
from server.db import events_tables as t
from server.db.errors import DatabaseUnavailable, describe, is_unavailable
from server.suggest import SignalPart

if TYPE_CHECKING:
    from server.analytics.store import EventStore

log = logging.getLogger("inflow.analytics.usage")
T = TypeVar("T")

OPEN, UP, DOWN = "sig_open", "sig_up", "sig_down"
DIMS = (OPEN, UP, DOWN)
HALF_LIFE_DAYS = 30.0
WINDOW_HALF_LIVES = 4  # 120 days: a vote that old weighs 1/16
OPEN_WEIGHT = 0.1  # an open says less than a vote
DOWN_WEIGHT = 2.0  # a "not helpful" says more than a "helpful"
PRIOR = 2.0  # pulls small groups towards 0
REFRESH_SECONDS = 300.0
RESET_PREFIX = "usage_reset:"


def key_of(context: str, aid: str) -> str:
    return f"{context}/{aid}"  # context and aid ids are slugs: no '/' in either


@dataclass(frozen=True)
class Usage:
    """The signal of one aid on one page context."""

    context: str
    aid: str
    people: int  # distinct people who opened or rated it there (in the window)
    helpful: int  # people whose latest vote was "helpful"
    not_helpful: int  # people whose latest vote was "not helpful"
    opened: int  # people who opened it
    score: float  # in (-1, 1); 0 below the minimum group
    counts: bool  # at or above the minimum group

    def as_json(self) -> dict[str, object]:
        return {
            "context": self.context,
            "people": self.people,
            "helpful": self.helpful,
            "not_helpful": self.not_helpful,
            "opened": self.opened,
            "score": round(self.score, 4),
            "counts": self.counts,
        }


# -- ingestion (writer thread, inside the batch's transaction) -----------------------------------

_ADD_USER = t.Prepared(lambda d: t.insert_ignore(d, t.users), ("dim", "day", "key", "app", "user"))


def signal_rows(
    events: Iterable[Event], user: str, resets: Mapping[str, str]
) -> list[tuple[str, str, str, str, str]]:
    """The (dim, day, key, app, user) rows of the events that feed the signal: opens and votes
    on a page context, not from before the aid's last reset (`resets`: aid -> ISO time)."""
    rows = []
    for e in events:
        if not e.context or not e.aid:
            continue
        if e.type == "aid_opened":
            dim = OPEN
        elif e.type == "aid_rated":
            dim = UP if e.helpful else DOWN
        else:
            continue
        reset = resets.get(e.aid)
        if reset and e.at_iso < reset:
            continue
        rows.append((dim, e.day, key_of(e.context, e.aid), e.app, user))
    return rows


def add_signal_rows(conn: sa.Connection, events: Sequence[Event], user: str) -> None:
    """Ingestion's part: the signal's daily distinct-people rows (not in the period rollups:
    nothing reads weeks or months of them)."""
    aids = {e.aid for e in events if e.context and e.aid and e.type in {"aid_opened", "aid_rated"}}
    if not aids:
        return
    rows = signal_rows(events, user, _resets(conn, aids))
    if rows:
        _ADD_USER.many(conn, rows)


def _resets(conn: sa.Connection, aids: Iterable[str]) -> dict[str, str]:
    m = t.meta.c
    names = [RESET_PREFIX + a for a in aids]
    rows = conn.execute(sa.select(m.name, m.value).where(m.name.in_(names)))
    return {name[len(RESET_PREFIX) :]: value for name, value in rows}


def reset_sync(conn: sa.Connection, aid: str, at_iso: str) -> int:
    """Forget the aid's signal (every context) up to `at_iso`: its rows are deleted and the time
    recorded, so late events from before it are not counted either. Inside a transaction."""
    u = t.users.c
    removed = 0
    for dim in DIMS:
        removed += conn.execute(
            sa.delete(t.users).where(u.dim == dim, u.key.like(f"%/{aid}"))
        ).rowcount
    conn.execute(t.upsert(conn.dialect, t.meta), {"name": RESET_PREFIX + aid, "value": at_iso})
    return removed


def reset_time_sync(conn: sa.Connection, aid: str) -> str:
    return _resets(conn, [aid]).get(aid, "")


# -- computing (reader thread) --------------------------------------------------------------------


def load_sync(
    conn: sqlite3.Connection,
    today: dt.date,
    min_group: int,
    half_life_days: float = HALF_LIFE_DAYS,
    aid: str = "",
) -> dict[str, dict[str, Usage]]:
    """Every (context, aid) with rows in the window (or one aid's): context -> aid -> Usage.

    One primary-key range per dim, in day order, streamed into a dict: a person's later day
    overwrites the earlier one (no GROUP BY: its temporary B-tree over every row was slower)."""
    since = (today - dt.timedelta(days=int(WINDOW_HALF_LIVES * half_life_days))).isoformat()
    sql = 'SELECT key, "user", day FROM users WHERE dim = ? AND day >= ?'  # PostgreSQL: user
    if aid:
        sql += " AND key LIKE ?"
    sql += " ORDER BY day"  # the primary key's order: no sort
    latest: list[dict[tuple[str, str], str]] = []  # per dim: (key, person) -> latest day
    for dim in DIMS:
        cur = conn.execute(sql, (dim, since, f"%/{aid}") if aid else (dim, since))
        latest.append({(key, user): day for key, user, day in cur})
    opened, up, down = latest

    @functools.cache
    def weight(day: str) -> float:
        age = max(0, (today - dt.date.fromisoformat(day)).days)
        return float(0.5 ** (age / half_life_days))

    people = Counter(key for key, _ in opened.keys() | up.keys() | down.keys())
    n_open: Counter[str] = Counter()
    n_up: Counter[str] = Counter()
    n_down: Counter[str] = Counter()
    w_open: dict[str, float] = defaultdict(float)
    w_up: dict[str, float] = defaultdict(float)
    w_down: dict[str, float] = defaultdict(float)
    for (key, _), day in opened.items():
        n_open[key] += 1
        w_open[key] += weight(day)
    for ku, day in up.items():  # the latest vote wins; both on one day cancel out
        if day > down.get(ku, ""):
            n_up[ku[0]] += 1
            w_up[ku[0]] += weight(day)
    for ku, day in down.items():
        if day > up.get(ku, ""):
            n_down[ku[0]] += 1
            w_down[ku[0]] += weight(day)
    out: dict[str, dict[str, Usage]] = {}
    group = max(1, min_group)
    for key, n in people.items():
        context, _, aid_id = key.partition("/")
        counts = n >= group
        score = 0.0
        if counts:
            plus, minus = w_up[key] + OPEN_WEIGHT * w_open[key], DOWN_WEIGHT * w_down[key]
            score = (plus - minus) / (plus + minus + PRIOR)
        out.setdefault(context, {})[aid_id] = Usage(
            context, aid_id, n, n_up[key], n_down[key], n_open[key], score, counts
        )
    return out


# -- the cache suggest reads ----------------------------------------------------------------------


@dataclass
class UsageSignal:
    """The signal per context, in memory. `refresh` recomputes it in a thread of its own, on a
    read-only connection of its own (WAL: it never waits for ingestion, and the dashboards'
    reader thread never waits for it); `close` closes both."""

    store: EventStore
    min_group: int
    half_life_days: float = HALF_LIFE_DAYS
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    by_context: dict[str, dict[str, Usage]] = field(default_factory=dict)
    version: int = 0  # moves on with every refresh that changed something
    _data_version: int = -1
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="usage-signal")
    )
    _conn: sqlite3.Connection | None = None

    def today(self) -> dt.date:
        return self.clock().astimezone(dt.UTC).date()

    def for_contexts(self, contexts: Sequence[str]) -> dict[str, Usage]:
        """aid -> the Usage that counts for it on a page matching `contexts` (the context with
        the most people; the first on a tie). Only entries at or above the minimum group."""
        best: dict[str, Usage] = {}
        for ctx in contexts:
            for aid, usage in self.by_context.get(ctx, {}).items():
                if usage.counts and (aid not in best or usage.people > best[aid].people):
                    best[aid] = usage
        return best

    async def __call__(
        self, app_id: str, context_ids: tuple[str, ...], aid_ids: tuple[str, ...]
    ) -> dict[str, SignalPart]:
        """Suggest's extra signal among related aids (server.suggest.RelatedSignal): reads the
        cache only."""
        found = self.for_contexts(context_ids)
        out: dict[str, SignalPart] = {}
        for aid in aid_ids:
            usage = found.get(aid)
            if usage is not None and usage.score:
                out[aid] = SignalPart(usage.score, reason_part(usage, self.min_group))
        return out

    # -- its own thread and connection -----------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self.store.connect_reader()
        return self._conn

    def _data_version_sync(self) -> int:
        return self.store.data_version(self._connection())

    def _load_sync(self, today: dt.date) -> tuple[int, dict[str, dict[str, Usage]]]:
        version = self._data_version_sync()
        return version, load_sync(self._connection(), today, self.min_group, self.half_life_days)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self._guarded, fn, *args
        )

    def _guarded(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)`; when the events database went away, its connection is dropped (the next
        refresh connects again) and `DatabaseUnavailable` raised."""
        try:
            return fn(*args)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            raise DatabaseUnavailable("events", describe(exc)) from exc

    async def close(self) -> None:
        await self._run(self._close_sync)
        self._thread.shutdown(wait=True)

    async def report(self, aid: str) -> dict[str, dict[str, Usage]]:
        """One aid's signal, read now (the admin view)."""
        return await self._run(
            lambda: load_sync(
                self._connection(), self.today(), self.min_group, self.half_life_days, aid
            )
        )

    # -- refreshing --------------------------------------------------------------------------
    async def refresh(self) -> None:
        version, data = await self._run(self._load_sync, self.today())
        self._data_version = version
        if data != self.by_context:
            self.by_context = data
            self.version += 1

    async def _changed(self) -> bool:
        return await self._run(self._data_version_sync) != self._data_version

    def wake(self) -> None:
        """Refresh now (after a reset)."""
        self._wake.set()

    async def run(self, interval: float = REFRESH_SECONDS) -> None:
        """The background task: a first load, then a refresh at most every `interval` seconds
        when the events database changed, when the day changed (the weights age), or at once
        when woken."""
        day: dt.date | None = None
        while True:
            try:
                woken = self._wake.is_set()
                self._wake.clear()
                if woken or self.today() != day or await self._changed():
                    day = self.today()
                    await self.refresh()
            except DatabaseUnavailable as exc:  # one line; the next refresh tries again
                log.warning("usage signal not refreshed: %s", exc)
            except Exception:
                log.exception("usage signal refresh failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)


def reason_part(usage: Usage, min_group: int) -> dict[str, object]:
    """What the signal says about an aid, for the panel to word (`why.signals`): `kind`
    "helpful" with `count` (distinct people, only at or above the minimum group) and `text`;
    "used" (opened more than rated, or too few votes to show a number); "not_helpful" with a
    `count` only at or above the minimum group."""
    group = max(1, min_group)
    if usage.score > 0:
        if usage.helpful >= group:
            return {
                "kind": "helpful",
                "count": usage.helpful,
                "text": f"Colleagues on this page found it helpful ({usage.helpful})",
            }
        return {"kind": "used", "text": "Colleagues on this page open it"}
    if usage.not_helpful >= group:
        return {"kind": "not_helpful", "count": usage.not_helpful}
    return {"kind": "not_helpful"}
