"""The peer loop in figures, computed from the peer tables (the source of truth), never from events.

- Tips submitted in the range and what became of them (approved, rejected, pending, hidden), and
  the median time from submission to the moderator's decision.
- Questions asked in the range: answered, unanswered, accepted, turned into aids, and the median
  time to the first answer; the questions still unanswered by app and page.
- Mentor load now: open questions on the mentor's apps, current mentees and their open questions,
  and answers given in the range.
- Accepted answers that became aids (the aids, with their status today).

Privacy, as the dashboards (docs/analytics.md): people are pseudonymous (person keys), and no row
describes fewer than `min_group` distinct people: such rows are merged into one "(other)" row,
itself withheld (figures None, `suppressed: true`) when still too small; the totals are withheld
when the whole selection has fewer people. Mentors are named only to admins; other viewers see a
keyed pseudonym. The list of aids made from answers names aids, never people.

`peer_report(tx, ...)` runs in the storage thread (`PeerStore.read`); what it needs from the
catalog is copied on the event loop first (`PeerView`).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.helpers import ChainMapProxy

from server import keys
from server.analytics.reports import OTHER, Filters, Table
from server.db import peer_tables as pt
from server.peer.store import PeerTx

# the app, or a request's `config_dict` (the dashboard is a sub-app): both give the app's keys
Keyed = web.Application | ChainMapProxy
# the tables of the report, in the order the dashboard shows them
TABLES = ("summary", "tips_by_app", "questions_by_app", "unanswered", "mentor_load", "to_aids")
WHOLE_APP = "(whole app)"


@dataclass(frozen=True)
class MentorInfo:
    id: str
    name: str
    apps: tuple[str, ...]
    active: bool = True


@dataclass(frozen=True)
class PeerView:
    """What the figures need from the catalog, copied on the event loop."""

    apps: dict[str, str]  # id -> name
    contexts: dict[str, tuple[str, str]]  # id -> (app id, name)
    mentors: dict[str, MentorInfo]
    aids: dict[str, tuple[str, str]]  # id -> (title, status)
    # the name a viewer may see for a mentor: the name for admins, a pseudonym otherwise
    mentor_label: Callable[[MentorInfo], str] = field(default=lambda m: m.name)


def _day_bounds(f: Filters) -> tuple[str, str]:
    """[start, end) as ISO text: stored times are ISO-8601 UTC, so text order is time order."""
    return f.start.isoformat(), (f.end + dt.timedelta(days=1)).isoformat()


def _time(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _hours(start: str, end: str) -> float | None:
    a, b = _time(start), _time(end)
    if a is None or b is None or b < a:
        return None
    return (b - a).total_seconds() / 3600


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


@dataclass
class _Group:
    """One row's raw material: counts, durations and the distinct people it describes."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hours: list[float | None] = field(default_factory=list)
    people: set[str] = field(default_factory=set)

    def add(self, other: _Group) -> None:
        for k, v in other.counts.items():
            self.counts[k] += v
        self.hours.extend(other.hours)
        self.people |= other.people


def _rows(
    groups: dict[Any, _Group],
    min_group: int,
    figures: Sequence[str],
    median_key: str,
    label: Callable[[Any], dict[str, Any]],
    other_label: dict[str, Any],
    order: Callable[[Any, _Group], Any],
) -> list[dict[str, Any]]:
    """A row per group with at least `min_group` people (groups with nobody show too: nothing to
    hide); the rest merged into one "(other)" row, withheld when it is still too small."""
    rows: list[dict[str, Any]] = []
    small: list[_Group] = []
    for key, g in sorted(groups.items(), key=lambda kv: order(*kv)):
        if 0 < len(g.people) < min_group:
            small.append(g)
            continue
        row = {**label(key), **{fig: g.counts.get(fig, 0) for fig in figures}}
        if median_key:
            row[median_key] = _median(g.hours)
        row["people"] = len(g.people)
        row["suppressed"] = False
        rows.append(row)
    if small:
        merged = _Group()
        for g in small:
            merged.add(g)
        row = {k: (f"{v} ({len(small)})" if v == OTHER else v) for k, v in other_label.items()}
        if len(merged.people) >= min_group:
            row.update({fig: merged.counts.get(fig, 0) for fig in figures})
            if median_key:
                row[median_key] = _median(merged.hours)
            row["people"] = len(merged.people)
            row["suppressed"] = False
        else:
            row.update({fig: None for fig in figures})
            if median_key:
                row[median_key] = None
            row["people"] = None
            row["suppressed"] = True
        rows.append(row)
    return rows


def _page_name(view: PeerView, context_id: str) -> str:
    ctx = view.contexts.get(context_id)
    if ctx is not None:
        return ctx[1]
    return context_id or WHOLE_APP


def _select(tx: PeerTx, stmt: sa.Select[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in tx.execute(stmt)]


def _in_app(f: Filters, column: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
    return [column == f.app] if f.app is not None else []


def peer_report(
    tx: PeerTx, f: Filters, min_group: int, view: PeerView, today: dt.date | None = None
) -> dict[str, Table]:
    """Every table of the peer report for the filters (storage thread)."""
    today = today or dt.datetime.now(dt.UTC).date()
    start, end = _day_bounds(f)
    T, Q, A = pt.tips.c, pt.questions.c, pt.answers.c

    # -- tips submitted in the range ---------------------------------------------------------
    tip_groups: dict[str, _Group] = defaultdict(_Group)
    everyone: set[str] = set()
    tips = _select(
        tx,
        sa.select(T.app_id, T.status, T.author_key, T.created_at, T.moderated_at).where(
            T.created_at >= start, T.created_at < end, *_in_app(f, T.app_id)
        ),
    )
    for app_id, status, author, created, moderated in tips:
        g = tip_groups[app_id]
        g.counts["submitted"] += 1
        g.counts[status] += 1
        if moderated and status != "pending":
            g.hours.append(_hours(created, moderated))
        g.people.add(author)
        everyone.add(author)

    # -- questions asked in the range --------------------------------------------------------
    q_groups: dict[str, _Group] = defaultdict(_Group)
    page_groups: dict[tuple[str, str], _Group] = defaultdict(_Group)
    questions = _select(
        tx,
        sa.select(
            Q.app_id,
            Q.context_id,
            Q.status,
            Q.asker_key,
            Q.created_at,
            Q.first_answer_at,
            Q.accepted_answer_id,
            Q.aid_id,
        ).where(Q.created_at >= start, Q.created_at < end, *_in_app(f, Q.app_id)),
    )
    for app_id, context_id, status, asker, created, first, accepted, aid_id in questions:
        g = q_groups[app_id]
        g.counts["asked"] += 1
        if first:
            g.counts["answered"] += 1
            g.hours.append(_hours(created, first))
        elif status == "open":
            g.counts["unanswered"] += 1
            page = page_groups[(app_id, context_id)]
            page.counts["unanswered"] += 1
            age = _hours(created, f"{today.isoformat()}T23:59:59Z")
            page.hours.append(age / 24 if age is not None else None)
            page.people.add(asker)
        if accepted:
            g.counts["accepted"] += 1
        if aid_id:
            g.counts["to_aids"] += 1
        g.people.add(asker)
        everyone.add(asker)

    tables: dict[str, Table] = {}
    tables["summary"] = _summary(tip_groups, q_groups, everyone, min_group)

    def app_label(app_id: str) -> dict[str, Any]:
        return {"app": app_id, "name": view.apps.get(app_id, app_id or "(no app)")}

    by_count: Callable[[Any, _Group], Any] = lambda k, g: (-len(g.people), str(k))  # noqa: E731
    tables["tips_by_app"] = Table(
        "Tips by app",
        [
            ("name", "App"),
            ("submitted", "Tips submitted"),
            ("approved", "Approved"),
            ("rejected", "Rejected"),
            ("pending", "Waiting for moderation"),
            ("hidden", "Hidden"),
            ("median_hours_to_moderate", "Median hours to moderate"),
            ("people", "People"),
        ],
        _rows(
            tip_groups,
            min_group,
            ("submitted", "approved", "rejected", "pending", "hidden"),
            "median_hours_to_moderate",
            app_label,
            {"app": "", "name": OTHER},
            by_count,
        ),
        "Tips written in the range and what became of them; hours from submission to the "
        "moderator's decision.",
    )
    tables["questions_by_app"] = Table(
        "Questions by app",
        [
            ("name", "App"),
            ("asked", "Questions asked"),
            ("answered", "Answered"),
            ("unanswered", "Unanswered"),
            ("accepted", "Accepted answers"),
            ("to_aids", "Answers turned into aids"),
            ("median_hours_to_first_answer", "Median hours to first answer"),
            ("people", "People"),
        ],
        _rows(
            q_groups,
            min_group,
            ("asked", "answered", "unanswered", "accepted", "to_aids"),
            "median_hours_to_first_answer",
            app_label,
            {"app": "", "name": OTHER},
            by_count,
        ),
        "Questions asked in the range; hours from the question to its first answer.",
    )

    def page_label(key: tuple[str, str]) -> dict[str, Any]:
        app_id, context_id = key
        return {
            "app": app_id,
            "name": view.apps.get(app_id, app_id),
            "context": context_id,
            "page": _page_name(view, context_id),
        }

    unanswered = _rows(
        page_groups,
        min_group,
        ("unanswered",),
        "median_days_waiting",
        page_label,
        {"app": "", "name": "", "context": "", "page": OTHER},
        lambda k, g: (-g.counts["unanswered"], str(k)),
    )
    tables["unanswered"] = Table(
        "Unanswered questions by app and page",
        [
            ("name", "App"),
            ("page", "Page"),
            ("unanswered", "Unanswered"),
            ("median_days_waiting", "Median days waiting"),
            ("people", "People"),
        ],
        unanswered,
        "Questions asked in the range with no answer yet, where they were asked.",
    )
    tables["mentor_load"] = _mentor_load(tx, f, min_group, view, today, start, end, A, Q)
    tables["to_aids"] = _to_aids(tx, f, view, start, end)
    return tables


def _summary(
    tip_groups: dict[str, _Group],
    q_groups: dict[str, _Group],
    everyone: set[str],
    min_group: int,
) -> Table:
    tips, qs = _Group(), _Group()
    for g in tip_groups.values():
        tips.add(g)
    for g in q_groups.values():
        qs.add(g)
    hide = 0 < len(everyone) < min_group
    figures: list[tuple[str, float | int | None]] = [
        ("tips_submitted", tips.counts["submitted"]),
        ("tips_approved", tips.counts["approved"]),
        ("tips_rejected", tips.counts["rejected"]),
        ("tips_pending", tips.counts["pending"]),
        ("median_hours_to_moderate", _median(tips.hours)),
        ("questions_asked", qs.counts["asked"]),
        ("questions_answered", qs.counts["answered"]),
        ("questions_unanswered", qs.counts["unanswered"]),
        ("median_hours_to_first_answer", _median(qs.hours)),
        ("answers_accepted", qs.counts["accepted"]),
        ("answers_to_aids", qs.counts["to_aids"]),
        ("peer_people", len(everyone)),
    ]
    table = Table(
        "Peer learning totals",
        [("figure", "Figure"), ("value", "Value")],
        [{"figure": k, "value": None if hide else v} for k, v in figures],
    )
    if hide:
        table.note = f"Fewer than {min_group} people in this selection: figures withheld."
    return table


def _mentor_load(
    tx: PeerTx,
    f: Filters,
    min_group: int,
    view: PeerView,
    today: dt.date,
    start: str,
    end: str,
    A: Any,
    Q: Any,
) -> Table:
    """Per vetted mentor: open questions on their apps and of their mentees, mentees now, and
    answers in the range. The people of a row are the learners it counts (askers, mentees)."""
    P = pt.pairings.c
    day = today.isoformat()
    # open, unanswered questions now (whenever asked): who asked, on which app
    open_rows = _select(
        tx,
        sa.select(Q.app_id, Q.asker_key).where(
            Q.status == "open", Q.first_answer_at == "", *_in_app(f, Q.app_id)
        ),
    )
    open_by_app: dict[str, list[str]] = defaultdict(list)
    open_by_asker: dict[str, int] = defaultdict(int)
    for app_id, asker in open_rows:
        open_by_app[app_id].append(asker)
        open_by_asker[asker] += 1
    pairings = _select(
        tx,
        sa.select(P.mentor_id, P.app_id, P.learner_key, P.learner_username).where(
            sa.or_(P.starts_on.is_(None), P.starts_on <= day),
            sa.or_(P.ends_on.is_(None), P.ends_on >= day),
            *_in_app(f, P.app_id),
        ),
    )
    answers = _select(
        tx,
        sa.select(A.mentor_id, Q.asker_key)
        .select_from(pt.answers.join(pt.questions, A.question_id == Q.id))
        .where(A.created_at >= start, A.created_at < end, A.mentor_id != "", *_in_app(f, Q.app_id)),
    )

    groups: dict[str, _Group] = {}
    mentors = [
        m
        for m in view.mentors.values()
        if (m.active and (f.app is None or f.app in m.apps)) or _paired(m, pairings)
    ]  # the mentors learners can reach now, and any with current mentees
    for m in mentors:
        g = groups[m.id] = _Group()
        for app_id in m.apps:
            if f.app is None or app_id == f.app:
                g.counts["open_questions"] += len(open_by_app.get(app_id, ()))
                g.people.update(open_by_app.get(app_id, ()))
    mentees: dict[str, dict[str, str]] = defaultdict(dict)  # mentor -> learner -> key
    for mentor_id, _app, key, username in pairings:
        # a learner not seen yet has no key: known by the username the admin entered
        mentees[mentor_id][key or f"user:{username}"] = key
    for mentor_id, learners in mentees.items():
        g = groups.setdefault(mentor_id, _Group())
        g.counts["mentees"] = len(learners)
        g.counts["mentee_open_questions"] = sum(
            open_by_asker.get(k, 0) for k in learners.values() if k
        )
        g.people.update(learners)
    for mentor_id, asker in answers:
        g = groups.setdefault(mentor_id, _Group())
        g.counts["answers"] += 1
        g.people.add(asker)

    def label(mentor_id: str) -> dict[str, Any]:
        m = view.mentors.get(mentor_id) or MentorInfo(mentor_id, mentor_id, ())
        return {
            "mentor": view.mentor_label(m),
            "apps": ", ".join(view.apps.get(a, a) for a in m.apps),
        }

    rows = _rows(
        groups,
        min_group,
        ("open_questions", "mentees", "mentee_open_questions", "answers"),
        "",
        label,
        {"mentor": OTHER, "apps": ""},
        lambda k, g: (-g.counts["open_questions"] - g.counts["mentees"], label(k)["mentor"]),
    )
    return Table(
        "Mentor load",
        [
            ("mentor", "Mentor"),
            ("apps", "Apps"),
            ("open_questions", "Open questions on their apps"),
            ("mentees", "Mentees now"),
            ("mentee_open_questions", "Mentees' open questions"),
            ("answers", "Answers in the range"),
            ("people", "People"),
        ],
        rows,
        "Now, whatever the range (answers: in the range). People: the learners a row counts.",
    )


def _paired(m: MentorInfo, pairings: Sequence[Any]) -> bool:
    return any(row[0] == m.id for row in pairings)


def _to_aids(tx: PeerTx, f: Filters, view: PeerView, start: str, end: str) -> Table:
    Q = pt.questions.c
    rows = _select(
        tx,
        sa.select(Q.aid_id, Q.app_id, Q.context_id, Q.created_at)
        .where(
            Q.aid_id != "",
            Q.created_at >= start,
            Q.created_at < end,
            *_in_app(f, Q.app_id),
        )
        .order_by(Q.created_at.desc()),
    )
    out = []
    for aid_id, app_id, context_id, created in rows:
        title, status = view.aids.get(aid_id, ("(deleted aid)", "deleted"))
        out.append(
            {
                "aid": aid_id,
                "title": title,
                "aid_status": status,
                "name": view.apps.get(app_id, app_id),
                "page": _page_name(view, context_id),
                "asked_on": created[:10],
            }
        )
    return Table(
        "Accepted answers that became aids",
        [
            ("title", "Aid"),
            ("aid_status", "Aid status"),
            ("name", "App"),
            ("page", "Page"),
            ("asked_on", "Asked on"),
        ],
        out,
        "Aids drafted from an accepted answer to a question asked in the range.",
    )


def peer_view(app: Keyed, show_mentor_names: bool) -> PeerView:
    """Copy what the report needs from the catalog (on the event loop). Mentors are named when
    `show_mentor_names` (admins); otherwise a keyed pseudonym, stable, not reversible."""
    catalog = app[keys.LIBRARY].catalog
    pseudonym = app[keys.ANALYTICS].pseudonym

    def label(m: MentorInfo) -> str:
        return m.name if show_mentor_names else f"Mentor {pseudonym('mentor', m.id)[:8]}"

    return PeerView(
        apps={a.id: a.name for a in catalog.apps.values()},
        contexts={c.id: (c.app_id, c.name) for c in catalog.contexts.values()},
        mentors={
            m.id: MentorInfo(m.id, m.name, tuple(m.apps), m.active)
            for m in catalog.mentors
            if m.vetted
        },
        aids={a.id: (a.title, a.status) for a in catalog.aids.values()},
        mentor_label=label,
    )


async def compute(
    app: Keyed, f: Filters, show_mentor_names: bool, today: dt.date | None = None
) -> dict[str, Table]:
    """The peer report for the filters, read in the storage thread."""
    view = peer_view(app, show_mentor_names)
    k = app[keys.SETTINGS].analytics_min_group
    return await app[keys.PEER].read(lambda tx: peer_report(tx, f, k, view, today))
