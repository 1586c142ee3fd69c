"""The usage signal: what colleagues on a page found helpful, as a bounded ranking signal.

Helpful votes and opens of an aid on a page context (the extension reports both with the
context's id) become a score in (-1, 1) per (context, aid), which suggest uses to reorder the
*related* aids only: pins stay first and in their order, and the related aids' relevance is
multiplied by at most `1 + BOOST` and at least `1 - BOOST`, so usage moves an aid among aids
that fit the page, never lifts an unrelated one in.

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

The signal is computed in the events store's reader thread, cached per context in memory and
refreshed by a background task when the events database changed (at most every
`REFRESH_SECONDS`), after a reset, or by `refresh()`; suggest only reads the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from server.analytics.events import Event
from server.db import events_tables as t
from server.suggest import SignalPart

if TYPE_CHECKING:
    from server.analytics.store import EventStore

log = logging.getLogger("inflow.analytics.usage")

OPEN, UP, DOWN = "sig_open", "sig_up", "sig_down"
DIMS = (OPEN, UP, DOWN)
HALF_LIFE_DAYS = 30.0
WINDOW_HALF_LIVES = 4  # 120 days: a vote that old weighs 1/16
BOOST = 0.5  # relevance x (1 + BOOST * score): at most x1.5, at least x0.5
OPEN_WEIGHT = 0.1  # an open says less than a vote
DOWN_WEIGHT = 2.0  # a "not helpful" says more than a "helpful"
PRIOR = 2.0  # pulls small groups towards 0
REFRESH_SECONDS = 30.0
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


@dataclass
class _Person:
    opened: str = ""  # latest day of each, '' = never
    up: str = ""
    down: str = ""


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
    conn: sa.Connection,
    today: dt.date,
    min_group: int,
    half_life_days: float = HALF_LIFE_DAYS,
    aid: str = "",
) -> dict[str, dict[str, Usage]]:
    """Every (context, aid) with rows in the window (or one aid's): context -> aid -> Usage."""
    since = (today - dt.timedelta(days=int(WINDOW_HALF_LIVES * half_life_days))).isoformat()
    u = t.users.c
    latest = sa.func.max(u.day)
    people: dict[str, dict[str, _Person]] = defaultdict(lambda: defaultdict(_Person))
    for dim in DIMS:  # one range of the primary key each
        query = (
            sa.select(u.key, u.user, latest)
            .where(u.dim == dim, u.day >= since)
            .group_by(u.key, u.user)
        )
        if aid:
            query = query.where(u.key.like(f"%/{aid}"))
        attr = {OPEN: "opened", UP: "up", DOWN: "down"}[dim]
        for key, user, day in conn.execute(query):
            setattr(people[key][user], attr, day)
    out: dict[str, dict[str, Usage]] = defaultdict(dict)
    for key, persons in people.items():
        context, _, aid = key.partition("/")
        out[context][aid] = summarize(
            context, aid, persons.values(), today, min_group, half_life_days
        )
    return dict(out)


def summarize(
    context: str,
    aid: str,
    persons: Iterable[_Person],
    today: dt.date,
    min_group: int,
    half_life_days: float = HALF_LIFE_DAYS,
) -> Usage:
    def weight(day: str) -> float:
        age = max(0, (today - dt.date.fromisoformat(day)).days)
        return float(0.5 ** (age / half_life_days))

    n = helpful = not_helpful = opened = 0
    h = d = o = 0.0
    for p in persons:
        n += 1
        if p.opened:
            opened += 1
            o += weight(p.opened)
        if p.up > p.down:  # the latest vote wins; both on one day cancel out
            helpful += 1
            h += weight(p.up)
        elif p.down > p.up:
            not_helpful += 1
            d += weight(p.down)
    counts = n >= max(1, min_group)
    score = 0.0
    if counts:
        plus, minus = h + OPEN_WEIGHT * o, DOWN_WEIGHT * d
        score = (plus - minus) / (plus + minus + PRIOR)
    return Usage(context, aid, n, helpful, not_helpful, opened, score, counts)


# -- the cache suggest reads ----------------------------------------------------------------------


@dataclass
class UsageSignal:
    """The signal per context, in memory; `refresh` recomputes it in the store's reader thread."""

    store: EventStore
    min_group: int
    half_life_days: float = HALF_LIFE_DAYS
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    by_context: dict[str, dict[str, Usage]] = field(default_factory=dict)
    version: int = 0  # moves on with every refresh that changed something
    _data_version: int = -1
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

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

    async def refresh(self) -> None:
        store = self.store
        today, min_group, half_life = self.today(), self.min_group, self.half_life_days

        def load() -> tuple[int, dict[str, dict[str, Usage]]]:
            conn = store.reader
            version = int(conn.exec_driver_sql("PRAGMA data_version").scalar() or 0)
            return version, load_sync(conn, today, min_group, half_life)

        version, data = await store.read(load)
        self._data_version = version
        if data != self.by_context:
            self.by_context = data
            self.version += 1

    async def _changed(self) -> bool:
        store = self.store

        def probe() -> int:
            return int(store.reader.exec_driver_sql("PRAGMA data_version").scalar() or 0)

        return await store.read(probe) != self._data_version

    def wake(self) -> None:
        """Refresh soon (after a reset)."""
        self._wake.set()

    async def run(self, interval: float = REFRESH_SECONDS) -> None:
        """The background task: refresh when the events database changed, or when woken; a new
        day also counts as a change (the weights age)."""
        day = self.today()
        while True:
            try:
                if self._wake.is_set() or self.today() != day or await self._changed():
                    self._wake.clear()
                    day = self.today()
                    await self.refresh()
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
