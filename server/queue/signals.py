"""Where the authoring queue's items come from: each signal reads one source of truth and returns
candidates (`Candidate`: kind, key, app, a sentence, figures). The refresh (server/queue/service.py)
upserts them; nothing here writes.

- `unpinned_context`: a context (a mapped page) with at least `min_panel_opens` panel openings in
  the last `period_days` days (the analytics rollups, dim 'ctx') and no aid pinned to it;
- `low_helpful`: such a context whose pinned aids are *all* found unhelpful: each has at least
  `min_votes` "was this helpful?" votes in the period (the content database's feedback table) and
  a helpful rate below `low_helpful_rate`;
- `zero_results`: a search (normalized query) of an app that found nothing at least
  `min_zero_results` times in the period (rollups, dim 'query', metric 'zero_results');
- `unanswered_question`: a peer question open (or answered, none accepted) for more than
  `question_days` days (the peer tables);
- `review_due`: a published aid past its review date (`Aid.is_stale`);
- `broken_link`: a published aid whose primary link (its `source`) the link check found broken
  (server/health, LinkCheck rows with `primary` and status `broken`).

Privacy (docs/analytics.md): figures that count people are shown only for groups of at least
`analytics_min_group` distinct people, like the dashboard: a context or query seen by fewer people
makes no item at all (its figures would single someone out). The same holds for the voters behind
a helpful rate.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa

from server.analytics.reports import Filters, _count, _counts, _people
from server.catalog import Catalog
from server.db.content_tables import feedback
from server.models import Aid, Context
from server.urlrules import InvalidRule, Rule, compile_rule, sample_url


@dataclass(frozen=True)
class Thresholds:
    """When a figure is worth an author's time. Defaults are sane for a few hundred users; they
    are named here, once (docs/queue.md lists them)."""

    period_days: int = 30  # the analytics window the counts are taken over
    min_panel_opens: int = 10  # a page needs this many panel openings in the period
    low_helpful_rate: float = 0.5  # pinned aids helpful to fewer than half of the voters...
    min_votes: int = 5  # ...with at least this many votes each
    min_zero_results: int = 3  # searches without results for one query of one app
    question_days: int = 7  # a question waiting longer than this without an accepted answer
    min_group: int = 5  # distinct people behind a figure (settings.analytics_min_group)


# A closed (done or dismissed) item comes back only when its `severity` reaches this many times
# what it was when it was closed (and at least one more): "notably worse".
WORSE_FACTOR = 1.5
# Kinds whose severity is a count that can grow (the others are states: a question waits, an aid
# is due, a link is broken; those come back only after they were cleared and found again).
COUNTED_KINDS = frozenset({"unpinned_context", "low_helpful", "zero_results"})


@dataclass(frozen=True)
class Candidate:
    kind: str
    key: str
    app_id: str
    title: str
    detail: str
    severity: float
    figures: dict[str, Any] = field(default_factory=dict)


def _app_name(catalog: Catalog, app_id: str) -> str:
    app = catalog.apps.get(app_id)
    return app.name if app else (app_id or "no app")


def context_link(ctx: Context) -> str:
    """The context in the rule tester (a URL its first rule matches), else its editor."""
    for i, spec in enumerate(ctx.rules):
        try:
            compiled = compile_rule(Rule(f"{ctx.id}#{i}", spec.pattern, ctx.id, spec.priority))
        except InvalidRule:
            continue
        url = sample_url(compiled)
        if url:
            return "/admin/tester?" + urlencode({"url": url})
    return f"/admin/contexts/{quote(ctx.id)}"


# -- analytics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What the rollups say about the period: panel openings per context, searches without results
    per (app, query), each with its distinct people."""

    opens: dict[str, tuple[str, int, int]]  # context id -> (app, openings, people)
    zero: dict[tuple[str, str], tuple[int, int, int]]  # (app, query) -> (zero, searches, people)


def read_usage(conn: sqlite3.Connection, f: Filters) -> Usage:
    """In the analytics store's read thread (`EventStore.read`)."""
    ctx_counts = _counts(conn, "ctx", f, "app/key")
    ctx_people = _count(_people(conn, "ctx", f, "app/key"))
    opens: dict[str, tuple[str, int, int]] = {}
    for group, metrics in ctx_counts.items():
        app_id, _, ctx_id = group.partition("/")
        if ctx_id:  # '' = the app's pages outside any context: no page to pin to
            opens[ctx_id] = (app_id, metrics.get("panel_opened", 0), ctx_people.get(group, 0))
    q_counts = _counts(conn, "query", f, "app/key")
    q_people = _count(_people(conn, "zero", f, "app/key"))
    zero: dict[tuple[str, str], tuple[int, int, int]] = {}
    for group, metrics in q_counts.items():
        if metrics.get("zero_results"):
            app_id, _, query = group.partition("/")
            zero[(app_id, query)] = (
                metrics["zero_results"],
                metrics.get("search", 0),
                q_people.get(group, 0),
            )
    return Usage(opens, zero)


@dataclass(frozen=True)
class Votes:
    helpful: int
    not_helpful: int
    people: int

    @property
    def total(self) -> int:
        return self.helpful + self.not_helpful

    @property
    def rate(self) -> float:
        return self.helpful / self.total if self.total else 1.0


def read_votes(conn: sa.Connection, since: str) -> dict[str, Votes]:
    """Helpful votes per aid since the day `since` (content database, storage thread)."""
    stmt = (
        sa.select(
            feedback.c.aid_id,
            sa.func.sum(feedback.c.helpful),
            sa.func.count(),
            sa.func.count(sa.distinct(feedback.c.user_key)),
        )
        .where(feedback.c.created_at >= since)
        .group_by(feedback.c.aid_id)
    )
    return {
        aid: Votes(int(up or 0), int(n) - int(up or 0), int(people))
        for aid, up, n, people in conn.execute(stmt)
    }


def context_signals(
    catalog: Catalog, usage: Usage, votes: Mapping[str, Votes], t: Thresholds
) -> list[Candidate]:
    out: list[Candidate] = []
    for ctx_id, (_app, opens, people) in sorted(usage.opens.items()):
        ctx = catalog.contexts.get(ctx_id)
        if ctx is None or opens < t.min_panel_opens or people < t.min_group:
            continue
        where = f'"{ctx.name}" ({_app_name(catalog, ctx.app_id)})'
        base = {"panel_opens": opens, "people": people, "days": t.period_days}
        link = context_link(ctx)
        if not ctx.aids:
            out.append(
                Candidate(
                    "unpinned_context",
                    ctx_id,
                    ctx.app_id,
                    f"People opened the panel {opens} times on {where} in {t.period_days} days, "
                    "and no aid is pinned there.",
                    "Write or pin an aid for this page.",
                    opens,
                    {**base, "link": link},
                )
            )
            continue
        pinned = {a: votes.get(a, Votes(0, 0, 0)) for a in ctx.aids}
        low = all(
            v.total >= t.min_votes and v.people >= t.min_group and v.rate < t.low_helpful_rate
            for v in pinned.values()
        )
        if not low:
            continue
        not_helpful = sum(v.not_helpful for v in pinned.values())
        total = sum(v.total for v in pinned.values())
        rate = round(1 - not_helpful / total, 2) if total else 0.0
        names = ", ".join(
            (catalog.aids[a].title if a in catalog.aids else a) for a in sorted(pinned)
        )
        out.append(
            Candidate(
                "low_helpful",
                ctx_id,
                ctx.app_id,
                f"People opened the panel {opens} times on {where}, and its pinned aids helped "
                f"only {round(rate * 100)}% of {total} voters.",
                f"Pinned: {names}. Rework them or pin a better one.",
                not_helpful,
                {
                    **base,
                    "link": link,
                    "votes": total,
                    "not_helpful": not_helpful,
                    "helpful_rate": rate,
                    "aids": {
                        a: {"helpful": v.helpful, "not_helpful": v.not_helpful}
                        for a, v in sorted(pinned.items())
                    },
                },
            )
        )
    return out


def zero_result_signals(catalog: Catalog, usage: Usage, t: Thresholds) -> list[Candidate]:
    out: list[Candidate] = []
    for (app_id, query), (zero, searches, people) in sorted(usage.zero.items()):
        if zero < t.min_zero_results or people < t.min_group:
            continue
        where = f"in {_app_name(catalog, app_id)}" if app_id else "outside any app"
        out.append(
            Candidate(
                "zero_results",
                f"{app_id}/{query}",
                app_id,
                f'Searching "{query}" {where} found nothing {zero} times in {t.period_days} days.',
                "Write an aid that answers it, or add the words people use to an existing one.",
                zero,
                {
                    "query": query,
                    "zero_results": zero,
                    "searches": searches,
                    "people": people,
                    "days": t.period_days,
                    "link": "/admin/aids?" + urlencode({"q": query}),
                },
            )
        )
    return out


# -- the content database ------------------------------------------------------------------------


def question_signals(
    catalog: Catalog, questions: list[Any], today: dt.date, t: Thresholds
) -> list[Candidate]:
    """`questions`: peer Question objects (open or answered, none accepted)."""
    out: list[Candidate] = []
    for q in questions:
        if q.status not in ("open", "answered") or q.accepted_answer_id or not q.created_at:
            continue
        asked = dt.date.fromisoformat(q.created_at[:10])
        days = (today - asked).days
        if days <= t.question_days:
            continue
        ctx = catalog.contexts.get(q.context_id) if q.context_id else None
        where = f'"{ctx.name}"' if ctx else "a page"
        # not the question's text: authors read the queue, and open questions are only for the
        # app's mentors, owners and moderators (the link shows it to those who may read it)
        out.append(
            Candidate(
                "unanswered_question",
                q.id,
                q.app_id,
                f"A question about {where} ({_app_name(catalog, q.app_id)}) has waited {days} "
                "days without an accepted answer.",
                "Have it answered (its app's mentors and owners see it); what people ask is "
                "often what an aid should say.",
                days,
                {
                    "days": days,
                    "asked_at": q.created_at,
                    "answered": q.status == "answered",
                    "link": f"/admin/questions/{quote(q.id)}",
                },
            )
        )
    return out


def review_signals(catalog: Catalog, aids: list[Aid], today: dt.date) -> list[Candidate]:
    out: list[Candidate] = []
    for aid in aids:
        if aid.status != "published" or not aid.is_stale(today):
            continue
        due = aid.review_due()
        days = (today - dt.date.fromisoformat(due)).days if due else None
        when = f"{days} days past its review date" if days is not None else "never verified"
        out.append(
            Candidate(
                "review_due",
                aid.id,
                aid.apps[0] if aid.apps else "",
                f'"{aid.title}" is {when}.',
                f"Owner: {aid.owner or 'nobody'}. Check it still holds, then mark it verified.",
                float(days or 0),
                {
                    "due": due,
                    "days_overdue": days,
                    "owner": aid.owner,
                    "link": f"/admin/aids/{quote(aid.id)}",
                },
            )
        )
    return out


@dataclass(frozen=True)
class BrokenLink:
    aid_id: str
    url: str
    http_status: int  # 0: no answer
    detail: str
    failing_since: str


def broken_link_signals(
    catalog: Catalog, aids: Mapping[str, Aid], broken: list[BrokenLink]
) -> list[Candidate]:
    out: list[Candidate] = []
    for link in broken:
        aid = aids.get(link.aid_id)
        if aid is None or aid.status != "published":
            continue
        why = f"HTTP {link.http_status}" if link.http_status else (link.detail or "broken")
        out.append(
            Candidate(
                "broken_link",
                aid.id,
                aid.apps[0] if aid.apps else "",
                f'The page "{aid.title}" is made from is broken ({why}).',
                f"{link.url} fails since {link.failing_since[:10] or 'the last check'}. Fix the "
                "link or the aid.",
                1.0,
                {
                    "url": link.url,
                    "http_status": link.http_status,
                    "failing_since": link.failing_since,
                    "owner": aid.owner,
                    "link": f"/admin/aids/{quote(aid.id)}",
                },
            )
        )
    return out


__all__ = [
    "COUNTED_KINDS",
    "WORSE_FACTOR",
    "BrokenLink",
    "Candidate",
    "Thresholds",
    "Usage",
    "Votes",
    "broken_link_signals",
    "context_link",
    "context_signals",
    "question_signals",
    "read_usage",
    "read_votes",
    "review_signals",
    "zero_result_signals",
]
