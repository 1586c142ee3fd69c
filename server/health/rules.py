"""Rule health: which apps and pages (contexts) the panel has not been opened on lately, and which
rules can never do what they were written for.

- Unused: an app, or a context of it, with no `panel_opened` event in the last `days` days, read
  from the analytics rollups (the events database's `counts` table: dim `app` and dim `ctx`,
  metric `panel_opened`; server/analytics/store.py). A context that matched nothing for a month
  is a rule that no longer fits the app's pages (a changed URL), or a page nobody needs help on.
  Only "used or not" is reported, never how often: the dashboards are where numbers about people
  live, with their minimum group size.
- Warnings: the checks the console runs when an app is saved (server/admin/rules.py
  `rule_warnings`): rules that never match, are shadowed by another app's or an exclusive
  context, lie outside the app's hosts, or repeat another rule.

Events older than the analytics retention are purged, so a window longer than it sees less.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from server.admin.rules import rule_warnings
from server.db.events_tables import counts

if TYPE_CHECKING:
    from server.analytics.store import EventStore
    from server.catalog import Catalog

DAYS_MAX = 366


def since_day(days: int, today: dt.date | None = None) -> str:
    """The first day of a window of `days` days ending today (events' days are UTC dates)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return (today - dt.timedelta(days=days - 1)).isoformat()


def _used_sync(store: EventStore, since: str) -> tuple[set[str], set[str]]:
    """(apps, contexts) with at least one panel opening since `since` (reader thread)."""
    conn = store.reader
    opened = sa.and_(counts.c.metric == "panel_opened", counts.c.day >= since, counts.c.n > 0)
    apps = {
        r[0] for r in conn.execute(sa.select(counts.c.app).where(counts.c.dim == "app", opened))
    }
    contexts = {
        r[0]
        for r in conn.execute(
            sa.select(counts.c.key).where(counts.c.dim == "ctx", counts.c.key != "", opened)
        )
    }
    return apps, contexts


async def used(
    store: EventStore, days: int, today: dt.date | None = None
) -> tuple[set[str], set[str]]:
    """(apps, contexts) on which the panel was opened in the last `days` days."""
    found: tuple[set[str], set[str]] = await store.read(_used_sync, store, since_day(days, today))
    return found


def _report_sync(
    catalog: Catalog,
    app_ids: Collection[str] | None,
    used_apps: set[str],
    used_contexts: set[str],
) -> list[dict[str, Any]]:
    apps = sorted(catalog.apps.values(), key=lambda a: a.name.lower())
    everyone = list(catalog.apps.values())
    out = []
    for app in apps:
        if app_ids is not None and app.id not in app_ids:
            continue
        contexts = list(app.contexts)
        unused = [
            {
                "id": c.id,
                "name": c.name,
                "rules": [r.pattern for r in c.rules],
            }
            for c in contexts
            if c.id not in used_contexts
        ]
        warnings = rule_warnings(app, everyone, catalog=catalog)
        out.append(
            {
                "app": {"id": app.id, "name": app.name, "owners": list(app.owners)},
                "unused": app.id not in used_apps,
                "contexts": len(contexts),
                "unused_contexts": unused,
                "warnings": warnings,
            }
        )
    return out


async def rule_health(
    catalog: Catalog,
    store: EventStore,
    days: int,
    app_ids: Collection[str] | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Per app (all, or `app_ids`): unused in the last `days` days, its unused contexts, its rule
    warnings. The warnings are computed off the event loop (they resolve sample URLs)."""
    used_apps, used_contexts = await used(store, days, today)
    apps = await asyncio.get_running_loop().run_in_executor(
        None, _report_sync, catalog, app_ids, used_apps, used_contexts
    )
    return {"days": days, "since": since_day(days, today), "apps": apps}


__all__ = ["DAYS_MAX", "rule_health", "since_day", "used"]
