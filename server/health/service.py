"""Link and rule health for the API and the console: who sees what, the reports, the job.

Who sees what: callers the permission table gives `health.read` (authors, reviewers, admins) see
every app; an app's owners (their token's e-mail in the app's `owners`, server/peer/people.py)
see the links of the aids mapped to their apps and the rule health of those apps, whatever their
roles; anyone else sees nothing. `health.check` (start a check now) is the table's alone.

The link check is the job `link-check` (server/jobs.py), every `INFLOW_LINK_CHECK_HOURS` hours
(0: only when started by hand).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from server import keys
from server.db.content_tables import aids as aids_table
from server.health.models import LINK_STATUSES, LinkCheck
from server.health.rules import rule_health, since_day
from server.peer.people import owned_apps
from server.peer.store import PeerTx, table_of
from server.permissions import may

if TYPE_CHECKING:
    from aiohttp import web

    from auth.identity import Identity
    from server.catalog import Catalog
    from server.peer.store import PeerStore

JOB = "link-check"
REPORT_MAX = 5000  # rows in one links report (the failing ones come first)
# failing first, then redirects (to update), then the ones that work
ORDER = {"broken": 0, "refused": 1, "error": 2, "redirected": 3, "ok": 4}


def scope(identity: Identity | None, catalog: Catalog) -> frozenset[str] | None:
    """The apps whose health the caller sees: None = every app (`health.read`), else the ids of
    the apps they own (empty: none)."""
    if identity is None:
        return frozenset()
    if may(identity.roles, "health.read"):
        return None
    return owned_apps(identity, catalog)


def _joined(*columns: Any) -> Any:
    """A select of link rows joined with their aid, published aids only."""
    links, a = table_of(LinkCheck), aids_table
    return (
        sa.select(*columns)
        .select_from(links.join(a, a.c.id == links.c.aid_id))
        .where(a.c.status == "published")
    )


def _rows_tx(tx: PeerTx, statuses: Collection[str]) -> list[tuple[LinkCheck, dict[str, Any]]]:
    """Link rows (of these statuses; () = all) with their aid's title, owner and apps."""
    links, a = table_of(LinkCheck), aids_table
    stmt = _joined(links, a.c.title, a.c.owner.label("aid_owner"), a.c.apps.label("aid_apps"))
    if statuses:
        stmt = stmt.where(links.c.status.in_(list(statuses)))
    out = []
    names = [c.name for c in links.columns]
    apps = _AppsMemo()
    for row in tx.execute(stmt).mappings():
        check = LinkCheck(
            **{n: (bool(row[n]) if n == "primary" else row[n]) for n in names}  # type: ignore[arg-type]
        )
        aid = {"title": row["title"], "owner": row["aid_owner"], "apps": apps(row["aid_apps"])}
        out.append((check, aid))
    return out


def _statuses_tx(tx: PeerTx) -> list[tuple[str, str, list[str]]]:
    """(status, aid owner, aid apps) of every link row: what the counts are made of."""
    links, a = table_of(LinkCheck), aids_table
    apps = _AppsMemo()
    stmt = _joined(links.c.status, a.c.owner, a.c.apps)
    return [(r["status"], r["owner"], apps(r["apps"])) for r in tx.execute(stmt).mappings()]


class _AppsMemo(dict[str, list[str]]):
    """An aid's `apps` JSON as a list, each distinct text parsed once."""

    def __call__(self, text: str | None) -> list[str]:
        key = text or "[]"
        if key not in self:
            self[key] = list(json.loads(key))
        return self[key]


def link_json(check: LinkCheck, aid: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "aid": {
            "id": check.aid_id,
            "title": aid["title"],
            "owner": aid["owner"],
            "apps": aid["apps"],
        },
        "url": check.url,
        "primary": check.primary,
        "status": check.status,
        "http_status": check.http_status,
        "final_url": check.final_url,
        "detail": check.detail,
        "checked_at": check.checked_at,
        "failing_since": check.failing_since,
    }


async def link_report(
    store: PeerStore,
    apps_seen: Collection[str] | None,
    *,
    owner: str = "",
    app: str = "",
    status: str = "",
    statuses: Collection[str] = (),
) -> dict[str, Any]:
    """The last check's results of published aids' links, filtered (owner: the aid's owner,
    case-insensitive; app: mapped to it; status, or any of `statuses`), limited to `apps_seen`
    (None: all). `counts` per status are of every status, with the same owner and app filters.
    Read, filtered and sorted in the storage thread (tens of thousands of rows stay off the
    event loop)."""
    empty = {s: 0 for s in LINK_STATUSES}
    if apps_seen is not None and not apps_seen:
        return {"links": [], "counts": empty, "truncated": False, "checked_at": ""}
    wanted = (status,) if status else tuple(statuses)
    seen = None if apps_seen is None else frozenset(apps_seen)
    wanted_owner = owner.strip().lower()

    def shown(aid_owner: str, aid_apps: list[str]) -> bool:
        if seen is not None and seen.isdisjoint(aid_apps):
            return False
        if app and app not in aid_apps:
            return False
        return not wanted_owner or str(aid_owner).strip().lower() == wanted_owner

    def report(tx: PeerTx) -> dict[str, Any]:
        kept = [(c, a) for c, a in _rows_tx(tx, wanted) if shown(a["owner"], a["apps"])]
        kept.sort(
            key=lambda r: (
                ORDER.get(r[0].status, 9),
                str(r[1]["owner"]).lower(),
                r[0].aid_id,
                r[0].url,
            )
        )
        counts = dict(empty)
        for link_status, aid_owner, aid_apps in _statuses_tx(tx):
            if shown(aid_owner, aid_apps):
                counts[link_status] = counts.get(link_status, 0) + 1
        return {
            "links": [link_json(c, a) for c, a in kept[:REPORT_MAX]],
            "counts": counts,
            "truncated": len(kept) > REPORT_MAX,
            # when the last check wrote its results ("" before the first)
            "checked_at": _last_checked_tx(tx),
        }

    found: dict[str, Any] = await store.read(report)
    return found


# what needs a look: failing links, and redirects to update
PROBLEMS = ("broken", "refused", "error", "redirected")


def by_owner(links: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Links grouped by their aid's owner ("(no owner)" for none), owners in order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for link in links:
        groups.setdefault(link["aid"]["owner"] or "(no owner)", []).append(link)
    return sorted(groups.items(), key=lambda g: g[0].lower())


async def problems_by_owner(
    store: PeerStore, apps_seen: Collection[str] | None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The links that need a look (failing or redirected), grouped by owner."""
    report = await link_report(store, apps_seen, statuses=PROBLEMS)
    return by_owner(report["links"])


async def rules_report(
    app: web.Application, apps_seen: Collection[str] | None, days: int
) -> dict[str, Any]:
    catalog = app[keys.LIBRARY].catalog
    if apps_seen is not None and not apps_seen:
        return {"days": days, "since": since_day(days), "apps": []}
    return await rule_health(catalog, app[keys.ANALYTICS].store, days, apps_seen)


def _last_checked_tx(tx: PeerTx) -> str:
    table = table_of(LinkCheck)
    return str(tx.execute(sa.select(sa.func.max(table.c.checked_at))).scalar() or "")


async def last_checked(store: PeerStore) -> float | None:
    """When the last check wrote its results (epoch seconds), or None before the first one."""
    stamp = await store.read(_last_checked_tx)
    try:
        parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def job_state(app: web.Application) -> dict[str, Any]:
    state: dict[str, Any] = app[keys.JOBS].state(JOB)
    return state


__all__ = [
    "JOB",
    "PROBLEMS",
    "by_owner",
    "job_state",
    "last_checked",
    "link_json",
    "link_report",
    "problems_by_owner",
    "rules_report",
    "scope",
]
