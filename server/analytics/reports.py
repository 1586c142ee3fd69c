"""Dashboard figures, read from the rollups only (never a scan of raw events).

A range is read as blocks (`periods.plan`): whole months, whole weeks at the edges, single days.
Counts are sums of blocks; distinct people are unions of the blocks' bitmaps: exact, any range.

Every row that aggregates people is checked against the minimum group size: a row with fewer
distinct pseudonyms than `min_group` is merged into an "other" row, or its figures are withheld
(None, `suppressed: true`) when merging is not meaningful (a day) or the "other" row is itself too
small. Groups with no people at all have nothing to hide and show zeros.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.analytics.periods import Plan, decode, get_meta, plan

OTHER = "(other)"


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date  # inclusive
    app: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        sql = "day BETWEEN ? AND ?"
        args: list[Any] = [self.start.isoformat(), self.end.isoformat()]
        if self.app is not None:
            sql += " AND app = ?"
            args.append(self.app)
        return sql, args

    def days(self) -> list[str]:
        n = (self.end - self.start).days + 1
        return [(self.start + dt.timedelta(days=i)).isoformat() for i in range(n)]


@dataclass(frozen=True)
class AidInfo:
    id: str
    title: str
    apps: tuple[str, ...]
    published: bool
    owner: str = ""
    verified_at: str | None = None
    review_interval_days: int = 180
    stale: bool = False


@dataclass(frozen=True)
class ContextInfo:
    id: str
    app: str
    name: str
    pinned: int


@dataclass(frozen=True)
class CatalogView:
    """What the reports need from the content catalog, copied on the event loop."""

    apps: dict[str, str]  # id -> name
    aids: dict[str, AidInfo]
    contexts: dict[str, ContextInfo]


@dataclass
class Table:
    title: str
    columns: list[tuple[str, str]]  # (key, label)
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": [{"key": k, "label": label} for k, label in self.columns],
            "rows": self.rows,
            "note": self.note,
        }


# how a query groups its rows: a column (or two) of the rollups
BY_SQL = {"key": "key", "app": "app", "day": "day", "app/key": "app || '/' || key"}


def _plan(conn: sqlite3.Connection, f: Filters) -> Plan:
    return plan(f.start, f.end, get_meta(conn, "blocks_from"))


def _counts(conn: sqlite3.Connection, dim: str, f: Filters, by: str) -> dict[str, dict[str, int]]:
    """{group: {metric: n}} where group is `by` (key, app, day or app/key); sums of blocks."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if by == "day":  # one figure per day: the daily rows are the ones to read
        where, args = f.where()
        sql = (
            f"SELECT day, metric, SUM(n) FROM counts WHERE dim = ? AND {where} GROUP BY day, metric"
        )
        rows = conn.execute(sql, [dim, *args])
    else:
        app_sql = " AND app = ?" if f.app is not None else ""
        app_arg = [f.app] if f.app is not None else []
        parts: list[str] = []
        params: list[Any] = []
        for level, periods in _plan(conn, f).levels():
            marks = ",".join("?" * len(periods))
            if level == "d":
                parts.append(
                    f"SELECT key, app, metric, n FROM counts WHERE dim = ? AND day IN ({marks})"
                    + app_sql
                )
                params += [dim, *periods, *app_arg]
            else:
                parts.append(
                    "SELECT key, app, metric, n FROM period_counts WHERE dim = ? AND level = ? "
                    f"AND period IN ({marks}){app_sql}"
                )
                params += [dim, level, *periods, *app_arg]
        g = BY_SQL[by]
        rows = conn.execute(
            # (the alias: PostgreSQL before 16 wants one on a subquery in FROM)
            f"SELECT {g}, metric, SUM(n) FROM ({' UNION ALL '.join(parts)}) AS u "
            f"GROUP BY {g}, metric",
            params,
        )
    for group, metric, n in rows:
        out[group][metric] += int(n)
    return out


def _people(conn: sqlite3.Connection, dim: str, f: Filters, by: str) -> dict[str, int]:
    """{group: bitmap of its distinct people in the range}: the OR of the blocks' bitmaps.

    Exact for any range; `bits.bit_count()` is the number of people, the OR of several groups'
    bitmaps the people of their union (what an "(other)" row shows)."""
    app_sql = " AND app = ?" if f.app is not None else ""
    app_arg = [f.app] if f.app is not None else []
    out: dict[str, int] = defaultdict(int)
    if by == "day":
        sql = (
            "SELECT period, bits FROM people WHERE dim = ? AND level = 'd' "
            "AND period BETWEEN ? AND ?" + app_sql
        )
        queries = [(sql, [dim, f.start.isoformat(), f.end.isoformat(), *app_arg])]
    else:
        queries = []
        for level, periods in _plan(conn, f).levels():
            marks = ",".join("?" * len(periods))
            sql = (
                f"SELECT {BY_SQL[by]}, bits FROM people WHERE dim = ? AND level = ? "
                f"AND period IN ({marks}){app_sql}"
            )
            queries.append((sql, [dim, level, *periods, *app_arg]))
    for sql, params in queries:
        for group, bits in conn.execute(sql, params):
            out[group] |= decode(bits)
    return dict(out)


def _count(people: dict[str, int]) -> dict[str, int]:
    return {g: bits.bit_count() for g, bits in people.items()}


def _people_among(people: dict[str, int], groups: Iterable[str]) -> int:
    """Distinct people of the union of `groups` (each person once, however many groups)."""
    bits = 0
    for g in groups:
        bits |= people.get(g, 0)
    return bits.bit_count()


def _merge(
    rows: list[dict[str, Any]],
    min_group: int,
    label_key: str,
    figures: Sequence[str],
    other_people: int,
    other_label: str,
    others: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Append one "other" row for the groups too small to show (if any)."""
    if not others:
        return rows
    row: dict[str, Any] = {label_key: f"{other_label} ({len(others)})", "people": other_people}
    if other_people >= min_group:
        for fig in figures:
            row[fig] = sum(o.get(fig) or 0 for o in others)
        row["suppressed"] = False
    else:
        for fig in figures:
            row[fig] = None
        row["people"] = None
        row["suppressed"] = True
    rows.append(row)
    return rows


def adoption(
    conn: sqlite3.Connection, f: Filters, min_group: int, cat: CatalogView
) -> dict[str, Table]:
    figures = ["active_learners", "panel_opens", "aids_opened", "searches", "ratings"]
    metric_of = {
        "panel_opens": "panel_opened",
        "aids_opened": "aid_opened",
        "searches": "search",
        "ratings": "aid_rated",
    }
    people = _count(_people(conn, "app", f, "day"))
    counts = _counts(conn, "app", f, "day")
    daily = Table(
        "Adoption by day",
        [
            ("day", "Day"),
            ("active_learners", "Active learners"),
            ("panel_opens", "Panel opens"),
            ("aids_opened", "Aids opened"),
            ("searches", "Searches"),
            ("ratings", "Ratings"),
        ],
    )
    for day in f.days():
        n = people.get(day, 0)
        row: dict[str, Any] = {"day": day}
        if 0 < n < min_group:
            row.update({fig: None for fig in figures})
            row["suppressed"] = True
        else:
            row["active_learners"] = n
            for fig, metric in metric_of.items():
                row[fig] = counts.get(day, {}).get(metric, 0)
            row["suppressed"] = False
        daily.rows.append(row)

    app_sets = _people(conn, "app", f, "app")
    app_people = _count(app_sets)
    app_counts = _counts(conn, "app", f, "app")
    by_app = Table(
        "Adoption by app",
        [
            ("app", "App"),
            ("name", "Name"),
            ("active_learners", "Active learners"),
            ("panel_opens", "Panel opens"),
            ("aids_opened", "Aids opened"),
            ("searches", "Searches"),
            ("ratings", "Ratings"),
        ],
    )
    small: list[dict[str, Any]] = []
    small_keys: list[str] = []
    # ties by app id: the order rows come back in differs by database
    for app_id in sorted(app_people, key=lambda a: (-app_people[a], a)):
        row = {
            "app": app_id,
            "name": cat.apps.get(app_id, app_id or "(no app)"),
            "active_learners": app_people[app_id],
            **{fig: app_counts.get(app_id, {}).get(m, 0) for fig, m in metric_of.items()},
        }
        if app_people[app_id] < min_group:
            small.append(row)
            small_keys.append(app_id)
        else:
            row["suppressed"] = False
            by_app.rows.append(row)
    if small:
        other_people = _people_among(app_sets, small_keys)
        _merge(by_app.rows, min_group, "app", figures[1:], other_people, OTHER, small)
        by_app.rows[-1]["name"] = ""
        by_app.rows[-1]["active_learners"] = by_app.rows[-1].pop("people")

    total_people = _people_among(app_sets, app_sets)
    totals = Table("Totals", [("figure", "Figure"), ("value", "Value")])
    hide = 0 < total_people < min_group
    sums = {fig: sum(c.get(m, 0) for c in app_counts.values()) for fig, m in metric_of.items()}
    totals.rows = [
        {"figure": "active_learners", "value": None if hide else total_people},
        *({"figure": fig, "value": None if hide else v} for fig, v in sums.items()),
    ]
    if hide:
        totals.note = f"Fewer than {min_group} people in this selection: figures withheld."
    return {"totals": totals, "daily": daily, "by_app": by_app}


def _aid_rows(
    conn: sqlite3.Connection, f: Filters, cat: CatalogView
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    counts = _counts(conn, "aid", f, "key")
    sets = _people(conn, "aid", f, "key")
    people = _count(sets)
    rows: dict[str, dict[str, Any]] = {}
    for aid, c in counts.items():
        helpful, not_helpful = c.get("helpful", 0), c.get("not_helpful", 0)
        rated = helpful + not_helpful
        info = cat.aids.get(aid)
        rows[aid] = {
            "aid": aid,
            "title": info.title if info else "(deleted aid)",
            "opened": c.get("aid_opened", 0),
            "shown": c.get("shown", 0),
            "links": c.get("link_followed", 0),
            "helpful": helpful,
            "not_helpful": not_helpful,
            "helpful_ratio": round(helpful / rated, 3) if rated else None,
            "people": people.get(aid, 0),
        }
    return rows, sets


def content(
    conn: sqlite3.Connection, f: Filters, min_group: int, cat: CatalogView, limit: int = 25
) -> dict[str, Table]:
    rows, sets = _aid_rows(conn, f, cat)
    engaged = [r for r in rows.values() if r["people"] > 0]
    big = [r for r in engaged if r["people"] >= min_group]
    small = [r for r in engaged if r["people"] < min_group]
    figures = ["opened", "links", "helpful", "not_helpful"]
    top = Table(
        "Top aids",
        [
            ("aid", "Aid"),
            ("title", "Title"),
            ("opened", "Opened"),
            ("people", "People"),
            ("shown", "Shown"),
            ("links", "Links followed"),
            ("helpful", "Helpful"),
            ("not_helpful", "Not helpful"),
            ("helpful_ratio", "Helpful ratio"),
        ],
    )
    top.rows = [
        dict(r, suppressed=False) for r in sorted(big, key=lambda r: (-r["opened"], r["aid"]))
    ]
    top.rows = top.rows[:limit]
    if small:
        other_people = _people_among(sets, (r["aid"] for r in small))
        _merge(top.rows, min_group, "aid", figures, other_people, OTHER, small)
        top.rows[-1].update({"title": "", "shown": None, "helpful_ratio": None})

    helpfulness = Table(
        "Helpfulness",
        [
            ("aid", "Aid"),
            ("title", "Title"),
            ("helpful", "Helpful"),
            ("not_helpful", "Not helpful"),
            ("helpful_ratio", "Helpful ratio"),
            ("comments", "Comments"),
        ],
    )
    rated = [r for r in big if r["helpful"] + r["not_helpful"] > 0]
    rated.sort(key=lambda r: (-(r["helpful"] + r["not_helpful"]), r["aid"]))
    comments = _comments(conn, f, [r["aid"] for r in rated])
    for r in rated:
        helpfulness.rows.append(
            {k: r[k] for k in ("aid", "title", "helpful", "not_helpful", "helpful_ratio")}
            | {"comments": comments.get(r["aid"], [])}
        )
    helpfulness.note = f"Aids with fewer than {min_group} people are left out, with their comments."

    never = Table(
        "Aids never opened",
        [("aid", "Aid"), ("title", "Title"), ("apps", "Apps"), ("shown", "Times suggested")],
    )
    for info in sorted(cat.aids.values(), key=lambda a: a.id):
        if not info.published or (f.app is not None and f.app not in info.apps):
            continue
        got = rows.get(info.id)
        if got is None or got["opened"] == 0:
            never.rows.append(
                {
                    "aid": info.id,
                    "title": info.title,
                    "apps": " ".join(info.apps),
                    "shown": got["shown"] if got else 0,
                }
            )
    never.rows.sort(key=lambda r: (-r["shown"], r["aid"]))

    stale = Table(
        "Stale aids",
        [
            ("aid", "Aid"),
            ("title", "Title"),
            ("owner", "Owner"),
            ("verified_at", "Last verified"),
            ("review_interval_days", "Review every (days)"),
            ("opened", "Opened in range"),
        ],
    )
    for info in sorted(cat.aids.values(), key=lambda a: (a.verified_at or "", a.id)):
        if not info.stale or not info.published:
            continue
        if f.app is not None and f.app not in info.apps:
            continue
        got = rows.get(info.id)
        opened: int | None = got["opened"] if got else 0
        if got and 0 < got["people"] < min_group:
            opened = None
        stale.rows.append(
            {
                "aid": info.id,
                "title": info.title,
                "owner": info.owner,
                "verified_at": info.verified_at,
                "review_interval_days": info.review_interval_days,
                "opened": opened,
            }
        )
    return {"top_aids": top, "helpfulness": helpfulness, "never_opened": never, "stale": stale}


def _comments(
    conn: sqlite3.Connection, f: Filters, aids: Sequence[str], per_aid: int = 5
) -> dict[str, list[dict[str, Any]]]:
    if not aids:
        return {}
    where, args = f.where()
    marks = ",".join("?" * len(aids))
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for aid, day, helpful, text in conn.execute(
        f"SELECT aid, day, helpful, comment FROM comments WHERE {where} AND aid IN ({marks}) "
        "ORDER BY day DESC",
        [*args, *aids],
    ):
        if len(out[aid]) < per_aid:
            out[aid].append({"day": day, "helpful": bool(helpful), "comment": text})
    return out


def gaps(
    conn: sqlite3.Connection, f: Filters, min_group: int, cat: CatalogView, limit: int = 50
) -> dict[str, Table]:
    qcounts = _counts(conn, "query", f, "key")
    qsets = _people(conn, "zero", f, "key")
    qpeople = _count(qsets)
    zero = Table(
        "Searches with no results",
        [
            ("query", "Query (normalized)"),
            ("zero_results", "Searches without results"),
            ("searches", "Searches"),
            ("people", "People"),
        ],
    )
    small: list[dict[str, Any]] = []
    for q, c in qcounts.items():
        if not c.get("zero_results"):
            continue
        row: dict[str, Any] = {
            "query": q,
            "zero_results": c["zero_results"],
            "searches": c.get("search", 0),
            "people": qpeople.get(q, 0),
        }
        (zero.rows if row["people"] >= min_group else small).append(row)
    zero.rows.sort(key=lambda r: (-r["zero_results"], r["query"]))
    zero.rows = [dict(r, suppressed=False) for r in zero.rows[:limit]]
    if small:
        other = _people_among(qsets, (r["query"] for r in small))
        _merge(zero.rows, min_group, "query", ["zero_results", "searches"], other, OTHER, small)

    ccounts = _counts(conn, "ctx", f, "app/key")
    csets = _people(conn, "ctx", f, "app/key")
    cpeople = _count(csets)
    unpinned = Table(
        "Mapped pages with no pinned aids",
        [
            ("app", "App"),
            ("context", "Context"),
            ("name", "Page"),
            ("panel_opens", "Panel opens"),
            ("people", "People"),
        ],
    )
    small = []
    for group, c in ccounts.items():
        app_id, _, ctx_id = group.partition("/")
        info = cat.contexts.get(ctx_id)
        if ctx_id and (info is None or info.pinned > 0):
            continue  # a context with pinned aids (or gone from the catalog)
        row = {
            "app": app_id,
            "context": ctx_id,
            "name": info.name if info else "(pages of the app outside any context)",
            "panel_opens": c.get("panel_opened", 0),
            "people": cpeople.get(group, 0),
        }
        (unpinned.rows if row["people"] >= min_group else small).append(row)
    unpinned.rows.sort(key=lambda r: (-r["panel_opens"], r["app"], r["context"]))
    unpinned.rows = [dict(r, suppressed=False) for r in unpinned.rows[:limit]]
    if small:
        other = _people_among(csets, (f"{r['app']}/{r['context']}" for r in small))
        _merge(unpinned.rows, min_group, "app", ["panel_opens"], other, OTHER, small)
        unpinned.rows[-1].update({"context": "", "name": ""})

    rows, _ = _aid_rows(conn, f, cat)
    bad = Table(
        'Aids with many "not helpful" votes',
        [
            ("aid", "Aid"),
            ("title", "Title"),
            ("not_helpful", "Not helpful"),
            ("helpful", "Helpful"),
            ("helpful_ratio", "Helpful ratio"),
            ("people", "People"),
        ],
    )
    cand = [r for r in rows.values() if r["not_helpful"] > 0 and r["people"] >= min_group]
    cand.sort(key=lambda r: (-r["not_helpful"], r["aid"]))
    bad.rows = [
        {k: r[k] for k in ("aid", "title", "not_helpful", "helpful", "helpful_ratio", "people")}
        for r in cand[:limit]
    ]
    return {"no_results": zero, "unpinned_pages": unpinned, "not_helpful": bad}


REPORTS = {"adoption": adoption, "content": content, "gaps": gaps}
