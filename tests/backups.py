"""What the backup tests (tests/test_backup.py on SQLite, tests/pg/test_pg_backup.py on
PostgreSQL) write before a backup and read after a restore: an edited aid, analytics events,
feedback and a tip, and what an author, an admin and a learner see of them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aiohttp.test_utils import TestClient

A = "/api/v1/admin"
RATED = "crm-create-opportunity"  # a demo aid the learner opens and rates


def event(type_: str, **fields: Any) -> dict[str, Any]:
    at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"id": str(uuid.uuid4()), "type": type_, "at": at, **fields}


async def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def write_some(
    client: TestClient, author: dict[str, str], learner: dict[str, str], page: str
) -> int:
    """An aid `bk-edited` created and edited (two versions), events, feedback on RATED and a
    tip on `page`; returns the feedback's id."""
    aid = {"id": "bk-edited", "title": "First", "summary": "s", "body": "b", "apps": ["crm"]}
    await ok(await client.post(f"{A}/aids", json=aid, headers=author), 201)
    resp = await client.get(f"{A}/aids/bk-edited", headers=author)
    headers = {**author, "If-Match": resp.headers["ETag"]}
    await ok(await client.patch(f"{A}/aids/bk-edited", json={"title": "Second"}, headers=headers))
    events = [
        event("panel_opened", app="crm", context="crm-opportunity-new"),
        event("aid_opened", app="crm", aid=RATED),
        event("search", query="discount approval", result_count=0),
    ]
    await ok(await client.post("/api/v1/events", json={"events": events}, headers=learner))
    feedback = {"aid_id": RATED, "helpful": True, "url": page, "comment": "Clear"}
    body = await ok(await client.post("/api/v1/feedback", json=feedback, headers=learner), 201)
    tip = {"url": page, "title": "", "body": "Set the close date before the stage."}
    await ok(await client.post("/api/v1/peer/tips", json=tip, headers=learner), 201)
    return int(body["id"])


async def view(
    client: TestClient, author: dict[str, str], admin: dict[str, str], learner: dict[str, str]
) -> dict[str, Any]:
    """What an author, an admin and a learner see of what `write_some` wrote: the aid's
    history, the usage of RATED (events and feedback), the content report, the learner's tips."""
    return {
        "versions": await ok(await client.get(f"{A}/aids/bk-edited/versions", headers=author)),
        "usage": await ok(await client.get(f"{A}/aids/{RATED}/usage", headers=admin)),
        "content": await ok(await client.get(f"{A}/analytics/content", headers=admin)),
        "tips": await ok(await client.get("/api/v1/peer/tips/mine", headers=learner)),
    }
