"""The panel learns from use, carefully: helpful votes and opens on a page context move an aid
among the related aids (server/analytics/usage_signal.py), through real event ingestion, the real
rollups, the real index and the real suggest route; admins see and reset it.

The content is a small library of another company (a warehouse app), not the demo's.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.analytics.events import Event
from server.analytics.store import EventStore
from server.app import create_app
from tests.test_admin_console import sign_in
from tests.tokens import TokenMaker

MIN_GROUP = 3

APP = """\
id: dockyard
name: Dockyard WMS
rules:
  - pattern: "https://wms.harbor.example/**"
contexts:
  - id: dock-receiving
    name: Receiving
    rule: "https://wms.harbor.example/receiving/*"
    aids: [receive-a-shipment]
  - id: dock-picking
    name: Picking
    rule: "https://wms.harbor.example/picking/*"
    aids: []
"""


def _aid(aid_id: str, title: str, body: str, tags: str = "[]") -> str:
    return f"""---
id: {aid_id}
title: {title}
summary: {title}
type: howto
tags: {tags}
apps: [dockyard]
audience: []
owner: ops@harbor.example
status: published
verified_at: 2026-09-01
---
{body}
"""


AIDS = {
    "receive-a-shipment": _aid(
        "receive-a-shipment",
        "Receive an inbound shipment",
        "Scan the delivery note, count the pallets and confirm the receipt.",
    ),
    "count-inbound-pallets": _aid(
        "count-inbound-pallets",
        "Count inbound pallets",
        "Count every inbound pallet against the delivery note before you sign for it.",
        "[pallets, inbound]",
    ),
    "damaged-inbound-pallets": _aid(
        "damaged-inbound-pallets",
        "Damaged inbound pallets",
        "Photograph a damaged inbound pallet and note the damage on the delivery note.",
        "[pallets, damage]",
    ),
    "label-inbound-pallets": _aid(
        "label-inbound-pallets",
        "Label inbound pallets",
        "Print a location label for each inbound pallet on the delivery note and stick it on two "
        "sides.",
        "[pallets, labels]",
    ),
    "chilled-inbound-pallets": _aid(
        "chilled-inbound-pallets",
        "Chilled inbound pallets",
        "Check the temperature log of chilled inbound pallets against the delivery note within "
        "ten minutes.",
        "[pallets, chilled]",
    ),
    "forklift-licence": _aid(
        "forklift-licence",
        "Renew your forklift licence",
        "Forklift licences are renewed every three years at the training centre.",
    ),
    "swap-a-shift": _aid(
        "swap-a-shift", "Swap a shift", "Ask your team lead to approve a shift swap in the rota."
    ),
    "safety-shoes": _aid(
        "safety-shoes", "Order safety shoes", "Safety shoes are ordered through the HR shop."
    ),
    "locker-keys": _aid(
        "locker-keys", "Lost locker keys", "Report a lost locker key at the gatehouse."
    ),
    "cycle-count": _aid(
        "cycle-count",
        "Run a cycle count",
        "Cycle counts of storage bins run every Monday on the handheld scanner.",
    ),
    "pick-by-voice": _aid(
        "pick-by-voice",
        "Pick by voice",
        "Put on the headset and confirm each bin by its check digits.",
    ),
}

PAGE = {
    "url": "https://wms.harbor.example/receiving/4711",
    "title": "Receiving: inbound pallets",
    "headings": ["Inbound pallets", "Delivery note"],
}


def write_content(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir(parents=True)
    (root / "apps" / "dockyard.yaml").write_text(APP, encoding="utf-8")
    for aid_id, text in AIDS.items():
        (root / "aids" / f"{aid_id}.md").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
async def wms(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> TestClient:
    content = write_content(tmp_path / "content")
    settings = make_settings(content_dir=content, analytics_min_group=MIN_GROUP)
    client: TestClient = await aiohttp_client(create_app(settings))
    return client


def _at(delta: dt.timedelta = dt.timedelta()) -> str:
    t = dt.datetime.now(dt.UTC) + delta
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def vote(
    client: TestClient,
    tokens: TokenMaker,
    person: str,
    aid: str,
    helpful: bool,
    context: str = "dock-receiving",
    times: int = 1,
) -> None:
    """`person` opens and rates `aid` on the page, through the events API."""
    events: list[dict[str, Any]] = [
        {
            "id": str(uuid.uuid4()),
            "type": "aid_opened",
            "at": _at(),
            "app": "dockyard",
            "context": context,
            "aid": aid,
        },
    ]
    events += [
        {
            "id": str(uuid.uuid4()),
            "type": "aid_rated",
            "at": _at(),
            "app": "dockyard",
            "context": context,
            "aid": aid,
            "helpful": helpful,
        }
        for _ in range(times)
    ]
    headers = tokens.auth(sub=person, roles=("learner",))
    resp = await client.post("/api/v1/events", json={"events": events}, headers=headers)
    assert resp.status == 200, await resp.text()


async def old_votes(client: TestClient, aid: str, people: int, days_ago: int) -> None:
    """Votes from `days_ago` days back, straight into the store (the API refuses old events)."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    store = client.server.app[keys.ANALYTICS].store
    for i in range(people):
        e = Event(
            str(uuid.uuid4()), "aid_rated", at, "dockyard", "dock-receiving", aid, helpful=True
        )
        await store.ingest([e], f"old-person-{days_ago}-{i}")


async def refreshed(client: TestClient) -> None:
    """What the background task does when the events database changed."""
    await client.server.app[keys.ANALYTICS].usage.refresh()


async def panel(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.post("/api/v1/suggest", json={**PAGE, "limit": 8}, headers=headers)
    assert resp.status == 200, await resp.text()
    aids: list[dict[str, Any]] = (await resp.json())["aids"]
    return aids


def related(aids: list[dict[str, Any]]) -> list[str]:
    return [a["id"] for a in aids if a["reason_code"] == "related"]


def helpful_signal(item: dict[str, Any]) -> dict[str, Any] | None:
    for part in (item.get("why") or {}).get("signals", []):
        if part.get("kind") == "helpful":
            return dict(part)
    return None


async def usage(client: TestClient, admin: dict[str, str], aid: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/admin/aids/{aid}/usage", headers=admin)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def baseline(client: TestClient, learner: dict[str, str]) -> list[str]:
    order = related(await panel(client, learner))
    assert len(order) >= 3, f"the fixture should give several related aids: {order}"
    return order


async def test_below_the_minimum_group_nothing_changes(
    wms: TestClient, tokens: TokenMaker, learner: dict[str, str], admin: dict[str, str]
) -> None:
    """Two people (the minimum is three) voting for the last related aid move nothing, say
    nothing in the reason, and the admin view shows no figures."""
    before = await panel(wms, learner)
    last = related(before)[-1]
    for person in ("p1", "p2"):
        await vote(wms, tokens, person, last, helpful=True)
    await refreshed(wms)
    after = await panel(wms, learner)
    assert [a["id"] for a in after] == [a["id"] for a in before]
    assert all(helpful_signal(a) is None for a in after)
    ctx = (await usage(wms, admin, last))["contexts"]
    assert [(c["context"], c["counts"], c["helpful"]) for c in ctx] == [
        ("dock-receiving", False, None)
    ]


async def test_helpful_aid_moves_up_among_related_but_never_above_a_pin(
    wms: TestClient, tokens: TokenMaker, learner: dict[str, str], admin: dict[str, str]
) -> None:
    order = await baseline(wms, learner)
    last = order[-1]
    for person in ("p1", "p2", "p3", "p4"):
        await vote(wms, tokens, person, last, helpful=True)
    await refreshed(wms)
    aids = await panel(wms, learner)
    assert aids[0]["id"] == "receive-a-shipment"
    assert aids[0]["reason_code"] == "pinned"
    now = related(aids)
    assert now.index(last) < order.index(last), (order, now)
    item = next(a for a in aids if a["id"] == last)
    assert item["reason_code"] == "related"
    signal = helpful_signal(item)
    assert signal is not None and signal["count"] == 4
    assert signal["text"] == "Colleagues on this page found it helpful (4)"
    ctx = (await usage(wms, admin, last))["contexts"][0]
    assert (ctx["helpful"], ctx["not_helpful"], ctx["people"]) == (4, 0, 4)
    assert 0 < ctx["score"] < 1
    # on another page context of the app the votes of this one say nothing
    other = {**PAGE, "url": "https://wms.harbor.example/picking/9"}
    resp = await wms.post("/api/v1/suggest", json=other, headers=learner)
    assert all(helpful_signal(a) is None for a in (await resp.json())["aids"])


async def test_a_downvoted_aid_sinks(
    wms: TestClient, tokens: TokenMaker, learner: dict[str, str]
) -> None:
    order = await baseline(wms, learner)
    first = order[0]
    for person in ("p1", "p2", "p3"):
        await vote(wms, tokens, person, first, helpful=False)
    await refreshed(wms)
    now = related(await panel(wms, learner))
    assert first not in now or now.index(first) > 0, (order, now)


async def test_one_person_voting_a_hundred_times_counts_once(
    wms: TestClient, tokens: TokenMaker, learner: dict[str, str], admin: dict[str, str]
) -> None:
    """Incident guarded against: a counter of votes would let one eager (or hostile) person
    push an aid up alone; people are counted, each once."""
    order = await baseline(wms, learner)
    last = order[-1]
    await vote(wms, tokens, "eager", last, helpful=True, times=100)
    await vote(wms, tokens, "p2", last, helpful=True)
    await refreshed(wms)
    assert related(await panel(wms, learner)) == order
    # with a third person the group counts, and the eager one is one of three
    await vote(wms, tokens, "p3", last, helpful=True)
    await refreshed(wms)
    ctx = (await usage(wms, admin, last))["contexts"][0]
    assert (ctx["helpful"], ctx["people"]) == (3, 3)


async def test_old_votes_decay(
    wms: TestClient, learner: dict[str, str], admin: dict[str, str]
) -> None:
    order = await baseline(wms, learner)
    last, other = order[-1], order[-2]
    await old_votes(wms, last, 5, days_ago=200)  # past the window: nothing
    await refreshed(wms)
    assert related(await panel(wms, learner)) == order
    assert (await usage(wms, admin, last))["contexts"] == []
    await old_votes(wms, last, 5, days_ago=60)  # two half-lives: a quarter of the weight
    await old_votes(wms, other, 5, days_ago=0)
    await refreshed(wms)
    old = (await usage(wms, admin, last))["contexts"][0]
    fresh = (await usage(wms, admin, other))["contexts"][0]
    assert old["helpful"] == fresh["helpful"] == 5
    assert 0 < old["score"] < fresh["score"]


async def test_reset_clears_the_signal_and_is_audited(
    wms: TestClient, tokens: TokenMaker, learner: dict[str, str], admin: dict[str, str]
) -> None:
    order = await baseline(wms, learner)
    last = order[-1]
    for person in ("p1", "p2", "p3", "p4"):
        await vote(wms, tokens, person, last, helpful=True)
    await refreshed(wms)
    assert related(await panel(wms, learner)) != order
    before_reset = _at(dt.timedelta(seconds=-5))
    resp = await wms.post(f"/api/v1/admin/aids/{last}/usage/reset", headers=admin, json={})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["contexts"] == [] and body["reset_at"]
    assert related(await panel(wms, learner)) == order
    # a vote made before the reset but delivered after it (the extension queues) stays out
    late = {
        "id": str(uuid.uuid4()),
        "type": "aid_rated",
        "at": before_reset,
        "app": "dockyard",
        "context": "dock-receiving",
        "aid": last,
        "helpful": True,
    }
    for person in ("p5", "p6", "p7"):
        late["id"] = str(uuid.uuid4())
        headers = tokens.auth(sub=person, roles=("learner",))
        resp = await wms.post("/api/v1/events", json={"events": [late]}, headers=headers)
        assert resp.status == 200
    await refreshed(wms)
    assert (await usage(wms, admin, last))["contexts"] == []
    audit = await wms.get(
        "/api/v1/admin/audit", params={"action": "aid.usage_reset"}, headers=admin
    )
    entries = (await audit.json())["entries"]
    assert [(e["action"], e["target_id"]) for e in entries] == [("aid.usage_reset", last)]


async def test_only_admins_reset_and_unknown_aids_are_404(
    wms: TestClient, tokens: TokenMaker
) -> None:
    author = tokens.auth(sub="author-1", roles=("author",))
    admin = tokens.auth(sub="admin-1", roles=("admin",))
    resp = await wms.post("/api/v1/admin/aids/forklift-licence/usage/reset", headers=author)
    assert resp.status == 403
    assert resp.content_type == "application/problem+json"
    resp = await wms.get("/api/v1/admin/aids/no-such-aid/usage", headers=admin)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"


async def test_console_shows_the_signal_and_resets_it(
    wms: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    last = "chilled-inbound-pallets"
    for person in ("p1", "p2", "p3"):
        await vote(wms, tokens, person, last, helpful=True)
    csrf = await sign_in(wms, tokens.token(sub="admin-1", roles=("author", "admin")))
    page = await (await wms.get(f"/admin/aids/{last}/usage")).text()
    assert "Receiving" in page and "Reset the signal" in page
    resp = await wms.post(
        f"/admin/aids/{last}/usage/reset", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    page = await (await wms.get(resp.headers["Location"])).text()
    assert "No votes or opens on a page context yet." in page
    assert "Reset:" in page


def test_a_rollup_rebuild_leaves_the_signal_rows_out_of_the_period_rollups(
    tmp_path: Path,
) -> None:
    """Incident guarded against: the period rollups' rebuild (a database from before them, or a
    new rollup version) read every dim of the daily people table, so the signal's rows got
    week/month bitmaps that ingestion never makes and the retention purge never deletes."""
    path = tmp_path / "events.sqlite3"
    store = EventStore(path)
    store.open_sync()
    try:
        at = dt.datetime.now(dt.UTC)
        events = [
            Event(str(uuid.uuid4()), "aid_opened", at, "dockyard", "dock-receiving", "cycle-count"),
            Event(
                str(uuid.uuid4()),
                "aid_rated",
                at,
                "dockyard",
                "dock-receiving",
                "cycle-count",
                helpful=True,
            ),
        ]
        store.ingest_sync(events, "person-1")
        dims = "SELECT DISTINCT dim FROM people ORDER BY dim"
        before = store.rconn.execute(dims).fetchall()
    finally:
        store.close_sync()
        store._writer.shutdown()
        store._reader.shutdown()
    with sqlite3.connect(path) as db:  # as before the period rollups: they are built at open
        db.executescript("DELETE FROM meta WHERE name = 'rollup_version';")
    db.close()
    again = EventStore(path)
    again.open_sync()
    try:
        assert again.rconn.execute(dims).fetchall() == before == [("aid",), ("app",)]
        signal = again.rconn.execute("SELECT COUNT(*) FROM users WHERE dim LIKE 'sig_%'")
        assert signal.fetchone()[0] == 2  # the daily signal rows themselves stay
    finally:
        again.close_sync()
        again._writer.shutdown()
        again._reader.shutdown()


def test_the_retention_purge_deletes_the_signal_rows(tmp_path: Path) -> None:
    """The signal's daily rows follow the analytics retention like every other rollup."""
    store = EventStore(tmp_path / "events.sqlite3")
    store.open_sync()
    try:
        now = dt.datetime.now(dt.UTC)
        for days_ago, person in ((400, "old"), (1, "new")):
            at = now - dt.timedelta(days=days_ago)
            e = Event(
                str(uuid.uuid4()),
                "aid_rated",
                at,
                "dockyard",
                "dock-receiving",
                "cycle-count",
                helpful=True,
            )
            store.ingest_sync([e], person)
        store.purge_sync((now - dt.timedelta(days=395)).date().isoformat())
        rows = store.rconn.execute("SELECT user FROM users WHERE dim LIKE 'sig_%'").fetchall()
        assert rows == [("new",)]
    finally:
        store.close_sync()
        store._writer.shutdown()
        store._reader.shutdown()
