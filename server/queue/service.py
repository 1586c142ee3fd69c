"""The authoring queue: refresh (signals -> items), list with filters, and a person's change.

Refresh (`QueueService.refresh`, run by the job `queue-refresh` every
`settings.queue_refresh_minutes` and by `POST /api/v1/admin/queue/refresh`): the signals
(server/queue/signals.py) read the analytics rollups, the feedback, the peer questions, the aids and
the link checks; then one transaction upserts the items by (kind, key):

- a new candidate is a new `open` item;
- an item still found gets its sentence and figures updated; a `done` or `dismissed` one is left
  alone **unless** its figures got notably worse (counted kinds: `severity` at least
  `WORSE_FACTOR` times what it was when it was closed) or it had gone away and came back: then it
  opens again (`assigned` when it still has an assignee);
- an item no longer found gets `figures.cleared_at`; an unassigned `open` one becomes `done` by
  itself (nobody was working on it), an assigned one keeps its status (its author decides).

Who changes what (`change`): `queue.write` (reviewers, admins) sets status, assignee and note; an
author (only `queue.read`) may set the status (`assigned`, `in_progress`, `done`) and the note of
an item assigned to them, nothing else. Each change is in the audit log (`queue.change`).

One refresh at a time (a lock): the job and the route share it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from auth.identity import Identity
from server import keys
from server.admin.common import who
from server.analytics.reports import Filters
from server.api.validation import known_query
from server.db.peer_tables import questions as questions_t
from server.db.queue_tables import queue_items
from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import SLUG_RE, Aid
from server.peer.models import Question
from server.peer.store import PeerStore, PeerTx, codec_of, register
from server.permissions import may
from server.queue.models import CLOSED, KINDS, STATUSES, QueueChange, QueueItem
from server.queue.signals import (
    COUNTED_KINDS,
    WORSE_FACTOR,
    BrokenLink,
    Candidate,
    Thresholds,
    Usage,
    Votes,
    broken_link_signals,
    context_signals,
    question_signals,
    read_usage,
    read_votes,
    review_signals,
    zero_result_signals,
)

log = logging.getLogger("inflow.queue")

register(QueueItem, queue_items)

ACTIVE = ("open", "assigned", "in_progress")
# what an assignee without queue.write may set
ASSIGNEE_STATUSES = frozenset({"assigned", "in_progress", "done"})
LIST_LIMIT = 1000
FILTERS = ("status", "kind", "assignee", "app")


def figures_of(item: QueueItem) -> dict[str, Any]:
    try:
        data = json.loads(item.figures or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def item_json(item: QueueItem) -> dict[str, Any]:
    """An item as served: its declared fields (figures as JSON text), and `link`, where to act
    on it in the console (the context in the rule tester, the aid, the question)."""
    data = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    data["link"] = str(figures_of(item).get("link", ""))
    return data


def validate_filters(query: Mapping[str, str]) -> dict[str, str]:
    """`status` (a status, `active` = open, assigned or in progress, or `all`; default all),
    `kind`, `assignee` (a username; `-` = nobody), `app`: 422 on anything else."""
    known_query(query, FILTERS)
    out = {k: query.get(k, "").strip() for k in FILTERS if query.get(k, "").strip()}
    status = out.get("status", "all")
    if status not in (*STATUSES, "active", "all"):
        raise ValidationFailed(
            f"'status' must be one of {', '.join(STATUSES)}, active or all.", fields=["status"]
        )
    if out.get("kind", "") and out["kind"] not in KINDS:
        raise ValidationFailed(f"'kind' must be one of {', '.join(KINDS)}.", fields=["kind"])
    if out.get("app", "") and not SLUG_RE.match(out["app"]):
        raise ValidationFailed("'app' must be an app id.", fields=["app"])
    if len(out.get("assignee", "")) > 255:
        raise ValidationFailed("'assignee' is too long.", fields=["assignee"])
    return out


def _severity(figures: Mapping[str, Any]) -> float:
    value = figures.get("severity", 0)
    return float(value) if isinstance(value, int | float) else 0.0


def _worse(kind: str, now: float, closed: float) -> bool:
    return kind in COUNTED_KINDS and now >= max(closed * WORSE_FACTOR, closed + 1)


class QueueService:
    """The authoring queue on the app's stores (see the module docstring)."""

    def __init__(self, config: Mapping[Any, Any], thresholds: Thresholds | None = None) -> None:
        self.config = config
        settings = config[keys.SETTINGS]
        self.thresholds = thresholds or Thresholds(min_group=settings.analytics_min_group)
        self._lock = asyncio.Lock()
        self.last_refresh: dict[str, Any] = {}

    @property
    def store(self) -> PeerStore:
        store: PeerStore = self.config[keys.PEER]
        return store

    # -- refresh ----------------------------------------------------------------------------------
    async def candidates(self, now: dt.datetime) -> list[Candidate]:
        t = self.thresholds
        today = now.date()
        since = today - dt.timedelta(days=t.period_days - 1)
        library = self.config[keys.LIBRARY]
        catalog = library.catalog
        usage = Usage({}, {})
        analytics = self.config.get(keys.ANALYTICS)
        if analytics is not None:
            f = Filters(since, today)
            store = analytics.store
            usage = await store.read(lambda: read_usage(store.rconn, f))
        storage = library.storage

        def read_content() -> tuple[dict[str, Votes], list[Aid], list[Any], list[BrokenLink]]:
            conn = storage.conn
            votes = read_votes(conn, since.isoformat())
            aids = storage.all_aid_metas_sync()
            codec = codec_of(Question)
            waiting = [
                codec.from_row(r)
                for r in conn.execute(
                    sa.select(questions_t).where(
                        questions_t.c.status.in_(("open", "answered")),
                        questions_t.c.accepted_answer_id == "",
                    )
                ).mappings()
            ]
            return votes, aids, waiting, _broken_links(conn)

        votes, aids, waiting, broken = await storage.call(read_content)
        by_id = {a.id: a for a in aids}
        return [
            *context_signals(catalog, usage, votes, t),
            *zero_result_signals(catalog, usage, t),
            *question_signals(catalog, waiting, today, t),
            *review_signals(catalog, aids, today),
            *broken_link_signals(catalog, by_id, broken),
        ]

    async def refresh(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """Compute the candidates and upsert the items; returns what changed (counts)."""
        async with self._lock:
            now = now or dt.datetime.now(dt.UTC)
            found = await self.candidates(now)
            stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
            summary = await self.store.transaction(lambda tx: _upsert(tx, found, stamp))
            self.last_refresh = {"at": stamp, **summary}
            log.info("authoring queue refreshed: %s", summary)
            return self.last_refresh

    # -- reads ------------------------------------------------------------------------------------
    async def list(self, filters: Mapping[str, str]) -> list[QueueItem]:
        status = filters.get("status", "all")
        where: dict[str, Any] = {}
        if status == "active":
            where["status"] = ACTIVE
        elif status != "all":
            where["status"] = status
        if filters.get("kind"):
            where["kind"] = filters["kind"]
        if filters.get("app"):
            where["app_id"] = filters["app"]
        if filters.get("assignee"):
            where["assignee"] = "" if filters["assignee"] == "-" else filters["assignee"].lower()
        items = await self.store.list(QueueItem, order_by="-updated_at", limit=LIST_LIMIT, **where)
        rank = {s: i for i, s in enumerate(STATUSES)}
        kinds = {k: i for i, k in enumerate(KINDS)}
        items.sort(key=lambda i: (rank[i.status], kinds.get(i.kind, 99), -_severity(figures_of(i))))
        return items

    async def get(self, item_id: str) -> QueueItem:
        return await self.store.get(QueueItem, item_id)

    # -- a person's change -------------------------------------------------------------------------
    async def change(self, identity: Identity, item_id: str, body: QueueChange) -> QueueItem:
        manager = may(identity.roles, "queue.write")
        me = (identity.username or "").lower()

        def op(tx: PeerTx) -> QueueItem:
            item = tx.find(QueueItem, item_id)
            if item is None:
                raise NotFound(f"No queue item with id {item_id!r}.")
            if not manager:
                _check_assignee_change(item, body, me)
            updated = _apply(item, body, identity)
            if updated == item:
                return item
            stored = tx.update(updated)
            changed = {
                k: getattr(stored, k)
                for k in ("status", "assignee", "note")
                if getattr(stored, k) != getattr(item, k)
            }
            self.config[keys.LIBRARY].storage.audit_add_tx(
                who(identity),
                "queue.change",
                "queue_item",
                item.id,
                {"kind": item.kind, "key": item.key, **changed},
            )
            return stored

        result: QueueItem = await self.store.transaction(op)
        return result


def _broken_links(conn: sa.Connection) -> list[BrokenLink]:
    """Primary links the last link check found broken (server/health)."""
    from server.db.health_tables import link_checks as lc

    rows = conn.execute(
        sa.select(lc.c.aid_id, lc.c.url, lc.c.http_status, lc.c.detail, lc.c.failing_since).where(
            lc.c.primary == 1, lc.c.status == "broken"
        )
    )
    return [BrokenLink(a, u, int(h or 0), d or "", f or "") for a, u, h, d, f in rows]


def _check_assignee_change(item: QueueItem, body: QueueChange, me: str) -> None:
    """An author without queue.write: only the status (and note) of an item assigned to them."""
    if not me or item.assignee.lower() != me:
        raise Forbidden(
            "Only reviewers and admins change queue items; an author may move an item "
            "assigned to them.",
            operation="queue.write",
        )
    if body.assignee is not None and body.assignee.lower() != item.assignee.lower():
        raise Forbidden("Only reviewers and admins assign queue items.", operation="queue.write")
    if body.status not in (None, item.status, *ASSIGNEE_STATUSES):
        raise Forbidden(
            f"An author may set an item to {', '.join(sorted(ASSIGNEE_STATUSES))}; "
            f"'{body.status}' is for reviewers and admins.",
            operation="queue.write",
        )


def _apply(item: QueueItem, body: QueueChange, identity: Identity) -> QueueItem:
    status = item.status
    assignee = item.assignee
    assigned_by = item.assigned_by
    if body.assignee is not None and body.assignee.lower() != item.assignee.lower():
        assignee = body.assignee.lower()
        assigned_by = (identity.username or identity.subject) if assignee else ""
        if body.status is None:  # assigning moves an open item on; unassigning moves it back
            if assignee and status == "open":
                status = "assigned"
            elif not assignee and status in ("assigned", "in_progress"):
                status = "open"
    if body.status is not None:
        status = body.status
    if status in ("assigned", "in_progress") and not assignee:
        raise ValidationFailed(
            f"An item {status.replace('_', ' ')} needs an assignee: assign it to an author.",
            fields=["assignee"],
        )
    figures = figures_of(item)
    if status in CLOSED and item.status not in CLOSED:
        # what it was when closed: the refresh opens it again only when it gets notably worse
        figures["closed_severity"] = _severity(figures)
    elif status not in CLOSED:
        figures.pop("closed_severity", None)
    note = body.note if body.note is not None else item.note
    return dataclasses.replace(
        item,
        status=status,
        assignee=assignee,
        assigned_by=assigned_by,
        note=note,
        figures=json.dumps(figures, sort_keys=True),
    )


def _upsert(tx: PeerTx, found: list[Candidate], stamp: str) -> dict[str, int]:
    existing = {(i.kind, i.key): i for i in tx.list(QueueItem)}
    counts = {"found": len(found), "added": 0, "updated": 0, "reopened": 0, "cleared": 0}
    seen: set[tuple[str, str]] = set()
    for c in found:
        ident = (c.kind, c.key)
        if ident in seen:
            continue
        seen.add(ident)
        figures = {**c.figures, "severity": c.severity}
        item = existing.get(ident)
        if item is None:
            tx.add(
                QueueItem(
                    kind=c.kind,
                    key=c.key,
                    app_id=c.app_id,
                    title=c.title,
                    detail=c.detail,
                    figures=json.dumps(figures, sort_keys=True),
                    status="open",
                )
            )
            counts["added"] += 1
            continue
        old = figures_of(item)
        status = item.status
        if item.status in CLOSED:
            closed = float(old.get("closed_severity", _severity(old)))
            # gone and found again: a new occurrence (an undone fix, an aid due again), except
            # a dismissed count that only hovers around its threshold
            came_back = "cleared_at" in old and not (
                item.status == "dismissed" and c.kind in COUNTED_KINDS
            )
            if not (came_back or _worse(c.kind, c.severity, closed)):
                continue  # settled: left alone
            status = "assigned" if item.assignee else "open"
            figures["reopened_at"] = stamp
            figures["severity_when_closed"] = closed
            counts["reopened"] += 1
        updated = dataclasses.replace(
            item,
            app_id=c.app_id,
            title=c.title,
            detail=c.detail,
            status=status,
            figures=json.dumps(figures, sort_keys=True),
        )
        if updated != item:
            tx.update(updated)
            if status == item.status:
                counts["updated"] += 1
    for ident, item in existing.items():
        if ident in seen:
            continue
        old = figures_of(item)
        if "cleared_at" in old:
            continue
        old["cleared_at"] = stamp
        status = "done" if item.status == "open" and not item.assignee else item.status
        tx.update(dataclasses.replace(item, status=status, figures=json.dumps(old, sort_keys=True)))
        counts["cleared"] += 1
    return counts


__all__ = ["QueueService", "figures_of", "item_json", "validate_filters"]
