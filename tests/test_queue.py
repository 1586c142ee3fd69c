"""The authoring queue fed by real use: panel openings and searches posted to /api/v1/events (the
real rollups), helpful votes through /api/v1/feedback, a question through the peer API, an aid
past its review date, a broken primary link; then the refresh turns them into items with their
figures, and reviewers assign them to authors who work them off.

A small library of its own (a bakery's oven software), not the demo content."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server import keys
from server.analytics.pseudonym import Pseudonymizer, load_key
from server.app import create_app
from server.db import migrate
from server.db.engine import sqlite_engine
from server.peer.store import PeerConflict, PeerStore
from server.queue.models import QueueItem
from server.storage import Storage
from tests.fixtures.content_db import CONTENT_V0, load_dump, table_columns, table_rows
from tests.tokens import TokenMaker
from tests.upstream import Upstream

Q = "/api/v1/admin/queue"
BASE = "https://ovens.crumb.example"
BATCH = f"{BASE}/batches/new"  # no aid pinned
CLEAN = f"{BASE}/cleaning"  # one aid pinned, found unhelpful
ALARMS = f"{BASE}/alarms"  # one aid pinned, found helpful

APP = f"""id: ovens
name: Oven Control
rules:
  - pattern: "{BASE}/**"
contexts:
  - id: ovens-batch
    name: Batch setup
    rule: "{BATCH}"
    aids: []
  - id: ovens-clean
    name: Cleaning log
    rule: "{CLEAN}"
    aids: [ovens-clean-cycle]
  - id: ovens-alarms
    name: Alarms
    rule: "{ALARMS}"
    aids: [ovens-alarm-codes]
"""


def _aid(aid_id: str, title: str, verified: str, **extra: str) -> str:
    more = "".join(f"{k}: {v}\n" for k, v in extra.items())
    return (
        f"---\nid: {aid_id}\ntitle: {title}\ntype: howto\napps: [ovens]\n"
        "owner: ovens@crumb.example\n"
        f"status: published\nverified_at: {verified}\n{more}---\n{title}: the steps.\n"
    )


def write_library(root: Path) -> Path:
    today = dt.date.today().isoformat()
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "apps" / "ovens.yaml").write_text(APP, encoding="utf-8")
    aids = {
        "ovens-clean-cycle": _aid("ovens-clean-cycle", "Run a cleaning cycle", today),
        "ovens-alarm-codes": _aid("ovens-alarm-codes", "Oven alarm codes", today),
        # verified long ago, reviewed every 90 days: past its review date
        "ovens-temp-chart": _aid(
            "ovens-temp-chart", "Baking temperature chart", "2025-01-10", review_interval_days="90"
        ),
    }
    for aid_id, text in aids.items():
        (root / "aids" / f"{aid_id}.md").write_text(text, encoding="utf-8")
    return root


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ev(type_: str, **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": type_, "at": now_iso(), **fields}


@pytest.fixture
async def bakery(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> TestClient:
    # two people are enough to show a figure here (the dashboard's minimum group size)
    settings = make_settings(content_dir=write_library(tmp_path / "crumb"), analytics_min_group=2)
    return await aiohttp_client(create_app(settings))


def person(tokens: TokenMaker, username: str, *roles: str) -> dict[str, str]:
    return tokens.auth(sub=f"sub-{username}", roles=roles, preferred_username=username)


async def events(client: TestClient, who: dict[str, str], batch: list[dict[str, Any]]) -> None:
    resp = await client.post("/api/v1/events", json={"events": batch}, headers=who)
    assert resp.status == 200, await resp.text()


async def vote(client: TestClient, who: dict[str, str], aid: str, url: str, helpful: bool) -> None:
    resp = await client.post(
        "/api/v1/feedback", json={"aid_id": aid, "helpful": helpful, "url": url}, headers=who
    )
    assert resp.status == 201, await resp.text()


async def use_the_ovens(client: TestClient, tokens: TokenMaker) -> dict[str, str]:
    """Two bakers open the panel on every page, search, vote, and one asks a question."""
    ann, ben = person(tokens, "ann", "learner"), person(tokens, "ben", "learner")
    for who in (ann, ben):
        opens = [
            ev("panel_opened", app="ovens", context=ctx)
            for ctx in ("ovens-batch", "ovens-clean", "ovens-alarms")
            for _ in range(6)
        ]
        searches = [
            ev("search", app="ovens", query="proofing time", result_count=0) for _ in range(2)
        ]
        searches.append(ev("search", app="ovens", query="descale", result_count=0))  # once
        searches.append(ev("search", app="ovens", query="alarm e4", result_count=3))
        await events(client, who, opens + searches)
    for who, answers in ((ann, (False, False, False)), (ben, (False, False, True))):
        for helpful in answers:
            await vote(client, who, "ovens-clean-cycle", CLEAN, helpful)
    for who in (ann, ben, ann, ben, ann):
        await vote(client, who, "ovens-alarm-codes", ALARMS, True)
    resp = await client.post(
        "/api/v1/peer/questions",
        json={"url": BATCH, "title": "", "body": "Which flour profile for rye batches?"},
        headers=ann,
    )
    assert resp.status == 201, await resp.text()
    question: dict[str, str] = await resp.json()
    return question


async def items(client: TestClient, who: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    resp = await client.get(f"{Q}{query}", headers=who)
    assert resp.status == 200, await resp.text()
    found: list[dict[str, Any]] = (await resp.json())["items"]
    return found


def by_kind(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in found:
        assert item["kind"] not in out, f"two {item['kind']} items: {found}"
        out[item["kind"]] = {**item, "figures": json.loads(item["figures"])}
    return out


async def test_each_kind_of_gap_becomes_an_item_with_its_figures(
    bakery: TestClient, tokens: TokenMaker
) -> None:
    question = await use_the_ovens(bakery, tokens)
    reviewer = person(tokens, "rita", "author", "reviewer")
    resp = await bakery.post(f"{Q}/refresh", headers=reviewer)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["refresh"]["added"] == 4
    found = by_kind(await items(bakery, reviewer))
    # the question is new: it waits more than a week before it is a gap
    assert set(found) == {"unpinned_context", "low_helpful", "zero_results", "review_due"}

    unpinned = found["unpinned_context"]
    assert (unpinned["key"], unpinned["app_id"], unpinned["status"]) == (
        "ovens-batch",
        "ovens",
        "open",
    )
    assert unpinned["figures"]["panel_opens"] == 12 and unpinned["figures"]["people"] == 2
    assert "12 times" in unpinned["title"] and "Batch setup" in unpinned["title"]
    assert unpinned["link"] == "/admin/tester?url=https%3A%2F%2Fovens.crumb.example%2Fbatches%2Fnew"

    low = found["low_helpful"]
    assert low["key"] == "ovens-clean"  # the alarms page's aid helps: no item for it
    assert low["figures"]["votes"] == 6 and low["figures"]["not_helpful"] == 5
    assert low["figures"]["aids"] == {"ovens-clean-cycle": {"helpful": 1, "not_helpful": 5}}
    assert "17% of 6 voters" in low["title"]

    zero = found["zero_results"]
    assert zero["key"] == "ovens/proofing time"  # "descale" failed only twice in all
    assert zero["figures"]["zero_results"] == 4 and zero["figures"]["people"] == 2
    assert zero["title"] == (
        'Searching "proofing time" in Oven Control found nothing 4 times in 30 days.'
    )

    due = found["review_due"]
    assert (due["key"], due["link"]) == ("ovens-temp-chart", "/admin/aids/ovens-temp-chart")
    assert due["figures"]["due"] == "2025-04-10"

    # eight days later the question has waited long enough (the job calls the service directly)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    summary = await bakery.app[keys.QUEUE].refresh(now=later)
    assert summary["added"] == 1
    waiting = by_kind(await items(bakery, reviewer, "?kind=unanswered_question"))
    item = waiting["unanswered_question"]
    assert item["key"] == question["id"] and item["figures"]["days"] == 8
    assert item["link"] == f"/admin/questions/{question['id']}"
    assert "waited 8 days" in item["title"] and "Batch setup" in item["title"]
    # An open question is for its app's mentors, owners and moderators only: authors, who read
    # the queue, must not read it there (its first version quoted the question in `detail`).
    assert "rye" not in json.dumps(item)


async def test_few_people_make_no_item(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path, tokens: TokenMaker
) -> None:
    """Figures of fewer people than the analytics minimum group would single someone out: one
    person opening a page 30 times makes no item (docs/analytics.md)."""
    settings = make_settings(content_dir=write_library(tmp_path / "crumb"), analytics_min_group=2)
    client = await aiohttp_client(create_app(settings))
    ann = person(tokens, "ann", "learner")
    await events(
        client, ann, [ev("panel_opened", app="ovens", context="ovens-batch") for _ in range(30)]
    )
    reviewer = person(tokens, "rita", "reviewer")
    assert (await client.post(f"{Q}/refresh", headers=reviewer)).status == 200
    assert await items(client, reviewer, "?kind=unpinned_context") == []


async def put(client: TestClient, who: dict[str, str], item_id: str, **body: Any) -> Any:
    return await client.put(f"{Q}/{item_id}", json=body, headers=who)


async def test_assign_and_work_an_item_by_role(bakery: TestClient, tokens: TokenMaker) -> None:
    await use_the_ovens(bakery, tokens)
    reviewer = person(tokens, "rita", "author", "reviewer")
    ana, bo = person(tokens, "ana", "author"), person(tokens, "bo", "author")
    learner = person(tokens, "lea", "learner")
    assert (await bakery.post(f"{Q}/refresh", headers=ana)).status == 403
    assert (await bakery.post(f"{Q}/refresh", headers=reviewer)).status == 200
    assert (await bakery.get(Q, headers=learner)).status == 403
    item = by_kind(await items(bakery, ana))["unpinned_context"]

    # an author cannot assign, not even to themselves
    resp = await put(bakery, ana, item["id"], assignee="ana")
    assert resp.status == 403 and resp.content_type == "application/problem+json"
    # a reviewer assigns: the item moves to assigned
    resp = await put(bakery, reviewer, item["id"], assignee="ana", note="Pin the batch guide")
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert (got["status"], got["assignee"], got["assigned_by"]) == ("assigned", "ana", "rita")
    # another author may not move it; its assignee may, but not dismiss it nor hand it on
    assert (await put(bakery, bo, item["id"], status="in_progress")).status == 403
    assert (await put(bakery, ana, item["id"], status="dismissed")).status == 403
    assert (await put(bakery, ana, item["id"], assignee="bo")).status == 403
    # a read-modify-write client: what GET gave, with the status changed, goes back as it is
    [mine_now] = await items(bakery, ana, "?assignee=ana")
    resp = await put(bakery, ana, item["id"], **{**mine_now, "status": "in_progress"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "in_progress"
    mine = await items(bakery, ana, "?assignee=ana&status=active")
    assert [i["id"] for i in mine] == [item["id"]]
    resp = await put(bakery, ana, item["id"], status="done", note="Pinned the rye guide")
    assert resp.status == 200
    assert [(i["status"], i["note"]) for i in await items(bakery, ana, "?assignee=ana")] == [
        ("done", "Pinned the rye guide")
    ]
    # bad input: 422 naming the field; unknown ids 404; both problems
    for body, field in (
        ({"status": "finished"}, "status"),
        ({"assignee": "not a user"}, "assignee"),
        ({"kind": "review_due"}, "kind"),
    ):
        resp = await put(bakery, reviewer, item["id"], **body)
        assert resp.status == 422, body
        assert field in json.dumps(await resp.json())
    resp = await put(bakery, reviewer, "no-such-item", status="done")
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    assert (await bakery.get(f"{Q}?kind=nonsense", headers=reviewer)).status == 422
    assert (await bakery.get(f"{Q}?colour=red", headers=reviewer)).status == 422
    # each change is in the audit log
    admin = person(tokens, "root", "admin")
    resp = await bakery.get(
        f"/api/v1/admin/audit?action=queue.change&target_id={item['id']}", headers=admin
    )
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["entries"]) == 3


async def test_a_dismissed_item_stays_dismissed_until_it_gets_notably_worse(
    bakery: TestClient, tokens: TokenMaker
) -> None:
    await use_the_ovens(bakery, tokens)
    reviewer = person(tokens, "rita", "reviewer")
    assert (await bakery.post(f"{Q}/refresh", headers=reviewer)).status == 200
    zero = by_kind(await items(bakery, reviewer))["zero_results"]
    resp = await put(bakery, reviewer, zero["id"], status="dismissed", note="Seasonal")
    assert resp.status == 200
    # one more failing search (5 of them now, not 1.5 times 4): still dismissed after a refresh
    ann, ben = person(tokens, "ann", "learner"), person(tokens, "ben", "learner")
    await events(bakery, ann, [ev("search", app="ovens", query="proofing time", result_count=0)])
    assert (await bakery.post(f"{Q}/refresh", headers=reviewer)).status == 200
    [again] = await items(bakery, reviewer, "?kind=zero_results")
    assert (again["status"], again["note"]) == ("dismissed", "Seasonal")
    assert json.loads(again["figures"])["zero_results"] == 4  # left as it was when dismissed
    assert await items(bakery, reviewer, "?kind=zero_results&status=active") == []
    # notably worse (6 = 1.5 times 4): open again, with the new figures
    await events(bakery, ben, [ev("search", app="ovens", query="proofing time", result_count=0)])
    summary = await (await bakery.post(f"{Q}/refresh", headers=reviewer)).json()
    assert summary["refresh"]["reopened"] == 1
    [back] = await items(bakery, reviewer, "?kind=zero_results")
    figures = json.loads(back["figures"])
    assert back["status"] == "open" and figures["zero_results"] == 6
    assert figures["severity_when_closed"] == 4


# -- revision 0007 -------------------------------------------------------------------------------


async def test_revision_0007_adds_an_empty_queue_and_keeps_everything(tmp_path: Path) -> None:
    """A database at 0006 with real content upgrades with every row of every table kept; the
    queue table arrives empty, usable, with its one-item-per-(kind, key) constraint."""
    db = load_dump(CONTENT_V0, tmp_path / "data" / "inflow.sqlite3")
    engine = sqlite_engine(db)
    try:
        key = load_key("", tmp_path / "data")
        migrate.upgrade(engine, "content", pseudonymize=Pseudonymizer(key), to="0006")
        tables = sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert "queue_items" not in tables
    old = [t for t in tables if t != "alembic_version"]
    columns = {t: table_columns(db, t) for t in old}
    before = {t: table_rows(db, t) for t in old}
    storage = Storage(db, key_dir=tmp_path / "data")
    await storage.open()  # the start-up path upgrades
    try:
        assert "0007" in storage.applied_revisions
        for table in old:
            assert table_rows(db, table, columns[table]) == before[table], table
        assert table_rows(db, "queue_items") == []
        store = PeerStore(storage)
        made = await store.add(QueueItem(kind="review_due", key="crm-log-activity", title="Due"))
        assert (await store.get(QueueItem, made.id)).status == "open"
        with pytest.raises(PeerConflict):
            await store.add(QueueItem(kind="review_due", key="crm-log-activity"))
    finally:
        await storage.close()


async def test_a_gap_that_goes_away_closes_its_open_item_and_a_new_one_reopens_it(
    bakery: TestClient, tokens: TokenMaker
) -> None:
    """Pinning an aid to the page clears its unassigned item (done by itself); unpinning it
    again, with people still opening the panel there, is a new occurrence: open again."""
    await use_the_ovens(bakery, tokens)
    reviewer = person(tokens, "rita", "reviewer")
    admin = person(tokens, "root", "admin")
    assert (await bakery.post(f"{Q}/refresh", headers=reviewer)).status == 200
    [item] = await items(bakery, reviewer, "?kind=unpinned_context")
    pins = "/api/v1/admin/contexts/ovens-batch/aids"

    async def pin(aids: list[str]) -> None:
        etag = (await bakery.get("/api/v1/admin/contexts/ovens-batch", headers=admin)).headers
        resp = await bakery.put(
            pins, json={"aids": aids}, headers={**admin, "If-Match": etag["ETag"]}
        )
        assert resp.status == 200, await resp.text()

    await pin(["ovens-alarm-codes"])
    summary = (await (await bakery.post(f"{Q}/refresh", headers=reviewer)).json())["refresh"]
    assert summary["cleared"] == 1
    [done] = await items(bakery, reviewer, "?kind=unpinned_context")
    assert (done["id"], done["status"]) == (item["id"], "done")
    assert "cleared_at" in json.loads(done["figures"])
    await pin([])
    summary = (await (await bakery.post(f"{Q}/refresh", headers=reviewer)).json())["refresh"]
    assert summary["reopened"] == 1
    [again] = await items(bakery, reviewer, "?kind=unpinned_context")
    assert (again["id"], again["status"]) == (item["id"], "open")
    assert "cleared_at" not in json.loads(again["figures"])


async def test_the_refresh_job_fills_the_queue(bakery: TestClient, tokens: TokenMaker) -> None:
    """The scheduled job (server/jobs.py) runs the same refresh as the route."""
    await use_the_ovens(bakery, tokens)
    jobs = bakery.app[keys.JOBS]
    assert "queue-refresh" in jobs.names()
    assert await jobs.run_now("queue-refresh")
    await jobs.wait("queue-refresh")
    state = jobs.state("queue-refresh")
    assert state["last_error"] in ("", None), state
    assert state["progress"]["message"] == "4 found, 4 new"
    reviewer = person(tokens, "rita", "reviewer")
    resp = await bakery.get(Q, headers=reviewer)
    body = await resp.json()
    assert len(body["items"]) == 4 and body["last_refresh"]["added"] == 4


async def test_a_broken_primary_link_found_by_the_link_check_is_an_item(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path, tokens: TokenMaker, upstream: Upstream
) -> None:
    """The link check (server/health) fetches the aid's page for real; a 404 on its primary link
    (its `source`) becomes a broken_link item naming the URL; a working body link does not."""
    upstream.set("/manuals/ok", "<h1>Oven manual</h1>", content_type="text/html")
    root = write_library(tmp_path / "crumb")
    gone = upstream.url("/manuals/deck-oven-x2")  # not served: 404
    (root / "aids" / "ovens-deck-manual.md").write_text(
        _aid("ovens-deck-manual", "Deck oven X2 manual", dt.date.today().isoformat(), source=gone)
        + f"\nSee also {upstream.url('/manuals/ok')}.\n",
        encoding="utf-8",
    )
    settings = make_settings(
        content_dir=root, fetch_allow_private=True, link_check_delay_seconds=0.0, jobs=False
    )
    client = await aiohttp_client(create_app(settings))
    reviewer = person(tokens, "rita", "author", "reviewer")
    resp = await client.post("/api/v1/admin/health/links/check", headers=reviewer)
    assert resp.status == 202, await resp.text()
    await client.app[keys.JOBS].wait("link-check")
    assert upstream.hits["/manuals/deck-oven-x2"] >= 1
    assert (await client.post(f"{Q}/refresh", headers=reviewer)).status == 200
    broken = by_kind(await items(client, reviewer, "?kind=broken_link"))["broken_link"]
    assert (broken["key"], broken["app_id"], broken["link"]) == (
        "ovens-deck-manual",
        "ovens",
        "/admin/aids/ovens-deck-manual",
    )
    assert broken["figures"]["url"] == gone and broken["figures"]["http_status"] == 404
    assert "Deck oven X2 manual" in broken["title"] and "HTTP 404" in broken["title"]
