"""Rule health from real analytics: panel openings posted through POST /api/v1/events, rolled up
by the real event store, read back as "which apps and contexts nobody opened the panel on", with
the rule warnings of server/admin/rules.py, each app's to its owners only.

Fabrikam's library (tests/test_health_links.py), not the demo's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import Settings
from tests.test_health_links import LENA, RAJ, health_settings, owner, staff  # noqa: F401
from tests.tokens import TokenMaker


def event(app: str, context: str = "", days_ago: int = 0) -> dict[str, Any]:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago, minutes=1)
    return {
        "id": str(uuid.uuid4()),
        "type": "panel_opened",
        "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "app": app,
        **({"context": context} if context else {}),
    }


@pytest.fixture
async def rc(aiohttp_client: Any, health_settings: Callable[..., Settings]) -> TestClient:  # noqa: F811
    return await aiohttp_client(create_app(health_settings()))


async def opened(client: TestClient, tokens: TokenMaker, events: list[dict[str, Any]]) -> None:
    headers = tokens.auth(sub="clerk-1", roles=("learner",))
    resp = await client.post("/api/v1/events", json={"events": events}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["accepted"] == len(events)


async def rules(client: TestClient, headers: dict[str, str], **query: str) -> dict[str, Any]:
    resp = await client.get("/api/v1/admin/health/rules", params=query, headers=headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


def by_app(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["app"]["id"]: item for item in data["apps"]}


async def test_unused_apps_and_contexts_come_from_the_panel_openings(
    rc: TestClient, tokens: TokenMaker
) -> None:
    await opened(
        rc,
        tokens,
        [
            event("ledger", "ledger-invoices"),
            event("ledger", "ledger-invoices"),
            event("roster", "roster-shifts", days_ago=5),
        ],
    )
    found = by_app(await rules(rc, staff(tokens)))
    assert found["ledger"]["unused"] is False
    assert [c["id"] for c in found["ledger"]["unused_contexts"]] == [
        "ledger-vendors",
        "ledger-void",
    ]
    assert found["ledger"]["contexts"] == 3
    assert found["ledger"]["unused_contexts"][0]["rules"] == [
        "*://ledger.fabrikam.example/vendors/*"
    ]
    # the roster was last opened five days ago: used in 30 days, unused in the last 3
    assert found["roster"]["unused"] is False and found["roster"]["unused_contexts"] == []
    recent = by_app(await rules(rc, staff(tokens), days="3"))
    assert recent["roster"]["unused"] is True
    assert [c["id"] for c in recent["roster"]["unused_contexts"]] == ["roster-shifts"]
    assert recent["ledger"]["unused"] is False
    # only used-or-not, never how often (numbers about people live in the dashboards)
    assert "panel_opens" not in str(found)


async def test_a_rule_that_can_never_match_is_listed_with_its_fix(
    rc: TestClient, tokens: TokenMaker
) -> None:
    ledger = by_app(await rules(rc, staff(tokens)))["ledger"]
    never = [w for w in ledger["warnings"] if w["code"] == "never_matches"]
    assert [w["context"] for w in never] == ["ledger-void"]
    assert never[0]["fix"]
    # the roster's rules are sound
    assert by_app(await rules(rc, staff(tokens)))["roster"]["warnings"] == []


async def test_an_owner_sees_the_rule_health_of_their_app_only(
    rc: TestClient, tokens: TokenMaker
) -> None:
    await opened(rc, tokens, [event("ledger", "ledger-invoices")])
    lena = await rules(rc, owner(tokens, LENA))
    assert [a["app"]["id"] for a in lena["apps"]] == ["ledger"]
    raj = await rules(rc, owner(tokens, RAJ))
    assert [a["app"]["id"] for a in raj["apps"]] == ["roster"]
    assert (await rules(rc, owner(tokens, "someone@fabrikam.example")))["apps"] == []
    assert len((await rules(rc, staff(tokens)))["apps"]) == 2


@pytest.mark.parametrize("days", ["0", "367", "x", "-1", "1.5"])
async def test_a_bad_window_is_a_problem(rc: TestClient, tokens: TokenMaker, days: str) -> None:
    resp = await rc.get("/api/v1/admin/health/rules", params={"days": days}, headers=staff(tokens))
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    resp = await rc.get("/api/v1/admin/health/rules", params={"app": "x"}, headers=staff(tokens))
    assert resp.status == 422
