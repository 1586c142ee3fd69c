"""Failures of a real deployment: nodes killed with SIGKILL while they write, and PostgreSQL
restarted under load (docs/scale-out.md "When something fails").

Nodes are `inflow serve` processes (tests/nodes.py) on databases of their own: the test profile's
(tests/pg/conftest.py) for the crashes, a throwaway cluster of the test's own for the restart
(never the shared one, which other test processes use). What is checked is what a client and an
operator see: acknowledged writes are in the database and in the other node's search, events are
counted once in the dashboards, an outage is a 503 with Retry-After, and the same nodes serve
again when PostgreSQL is back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from server import keys
from server.app import create_app
from tests.nodes import Node, NodeFactory, PgCluster, node_env, nodes, pg_cluster  # noqa: F401
from tests.pg.conftest import Databases
from tests.tokens import TokenMaker

A = "/api/v1/admin"
APP = "yardops"  # a small library of another company's app (not the demo's)
CONTEXT = "yardops-gate"
DEADLINE = 60.0  # seconds a test waits for an outcome (other nodes' catch-up, a restart)
TIMEOUT = aiohttp.ClientTimeout(total=10)  # no request may hang longer than this
# node processes start, die and wait for PostgreSQL: more than the default 120 s on a busy machine
pytestmark = pytest.mark.timeout(300)


def _content(root: Path) -> Path:
    """Harbor Logistics' yard app: one app, one page context, two aids."""
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "apps" / f"{APP}.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: {APP}
            name: YardOps
            description: "Harbor Logistics' container yard: gate check-in, stacking, trucks."
            rules:
              - pattern: "https://yard.harbor.example/**"
            contexts:
              - id: {CONTEXT}
                name: Gate check-in
                rules:
                  - "https://yard.harbor.example/gate/**"
                aids: [yard-gate-checkin, yard-reefer-plugs]
            """
        ),
        encoding="utf-8",
    )
    for aid_id, title, body in (
        ("yard-gate-checkin", "Check a truck in at the gate", "Scan the chassis plate first."),
        ("yard-reefer-plugs", "Plug in a reefer container", "Reefers need power within 30 min."),
    ):
        (root / "aids" / f"{aid_id}.md").write_text(
            f"---\nid: {aid_id}\ntitle: {title}\nsummary: {title}.\ntype: howto\n"
            f"apps: [{APP}]\nstatus: published\n---\n{body}\n",
            encoding="utf-8",
        )
    return root


def _aid(aid_id: str, word: str) -> dict[str, Any]:
    return {
        "id": aid_id,
        "title": f"Yard procedure {word}",
        "summary": f"How the yard handles {word}.",
        "body": f"Steps for {word} at the container yard.",
        "apps": [APP],
        "status": "published",
    }


def _event(type_: str = "panel_opened") -> dict[str, Any]:
    at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"id": str(uuid.uuid4()), "type": type_, "at": at, "app": APP, "context": CONTEXT}


@pytest.fixture
def admin_h(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="yard-admin", roles=("learner", "author", "reviewer", "admin"))


@pytest.fixture
def learner_h(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="yard-learner", roles=("learner",))


def _env(tmp_path: Path, tokens: TokenMaker, content_url: str, events_url: str) -> dict[str, str]:
    return node_env(
        jwks_file=tokens.write_jwks(tmp_path / "jwks.json"),
        database_url=content_url,
        events_database_url=events_url,
        INFLOW_JOBS="0",  # no source syncs or link checks (no web here): only what is tested
        INFLOW_ANALYTICS_MIN_GROUP="1",
    )


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE:.0f} s: {what}", pytrace=False)
        await asyncio.sleep(0.3)


def _scalar(url: str, sql: str) -> Any:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()
    finally:
        engine.dispose()


def _rows(url: str, sql: str) -> list[Any]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.exec_driver_sql(sql).all())
    finally:
        engine.dispose()


async def _search_ids(
    http: aiohttp.ClientSession, node: Node, q: str, h: dict[str, str]
) -> set[str]:
    """Every aid the node's search finds for q, following next_cursor over all pages (a slow
    machine acknowledges more than one page of writes before the kill lands)."""
    found: set[str] = set()
    params = {"q": q, "app": APP, "limit": "50"}
    while True:
        async with http.get(f"{node.url}/api/v1/search", params=params, headers=h) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        found |= {r["id"] for r in body["results"]}
        if not body["next_cursor"]:
            return found
        params = {**params, "cursor": body["next_cursor"]}


async def test_a_node_killed_while_writing_loses_no_acknowledged_aid(
    tmp_path: Path,
    tokens: TokenMaker,
    pg: Databases,
    nodes: NodeFactory,  # noqa: F811
    admin_h: dict[str, str],
    learner_h: dict[str, str],
) -> None:
    """kill -9 of a node in the middle of a stream of writes through two nodes: the other node
    keeps answering (every write 201, suggest and search 200); every aid a client got a 201 for is
    in the database and found by the surviving node's search; content_version moved once per
    stored write (no write counted twice, none lost from the count), as the change log says."""
    content_url = pg.new("content")
    env = _env(tmp_path, tokens, content_url, pg.new("events"))
    one = nodes("one", {**env, "INFLOW_CONTENT_DIR": str(_content(tmp_path / "content"))})
    two = nodes("two", env)
    before = int(_scalar(content_url, "SELECT value FROM meta WHERE key = 'content_version'"))
    acked: dict[str, str] = {}  # aid id -> the node that answered 201
    statuses: dict[str, list[int | None]] = {"one": [], "two": []}
    killed = asyncio.Event()

    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:

        async def write(node: Node, aid_id: str) -> int | None:
            try:
                async with http.post(
                    f"{node.url}{A}/aids", json=_aid(aid_id, "crashproof"), headers=admin_h
                ) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = None  # no answer: not acknowledged (it may or may not have landed)
            statuses[node.name].append(status)
            if status == 201:
                acked[aid_id] = node.name
            return status

        async def writer(node: Node, w: int) -> None:
            i = 0
            after_kill = 0
            while after_kill < 8:
                status = await write(node, f"{node.name}-{w}-{i}")
                i += 1
                if node is one and status is None:
                    return  # the node is gone
                if killed.is_set():
                    after_kill += 1

        async def killer() -> None:
            while sum(1 for n in acked.values() if n == "one") < 6:
                await asyncio.sleep(0.02)
            await asyncio.to_thread(one.kill)
            killed.set()

        await asyncio.gather(killer(), *(writer(node, w) for node in (one, two) for w in range(3)))
        # node two answered every write, before and after node one died
        assert statuses["two"] and set(statuses["two"]) == {201}
        assert None in statuses["one"]  # node one really died mid-stream
        async with http.post(
            f"{two.url}/api/v1/suggest",
            json={"url": "https://yard.harbor.example/gate/checkin"},
            headers=learner_h,
        ) as resp:
            assert resp.status == 200
            suggested = {a["id"] for a in (await resp.json())["aids"]}
            assert "yard-gate-checkin" in suggested

        # every acknowledged aid is stored, once; content_version counts each stored write once
        created = {
            r[0]
            for r in _rows(content_url, "SELECT id FROM aids")
            if r[0].startswith(("one-", "two-"))
        }
        assert set(acked) <= created
        assert len(acked) > 24
        after = int(_scalar(content_url, "SELECT value FROM meta WHERE key = 'content_version'"))
        assert after - before == len(created)
        changes = _rows(
            content_url, f"SELECT upserts FROM content_changes WHERE version > {before}"
        )
        logged = [aid for (upserts,) in changes for aid in json.loads(upserts)]
        assert sorted(logged) == sorted(created)

        # ... and the surviving node finds every one of them, node one's included
        async def all_found() -> bool:
            return set(acked) <= await _search_ids(http, two, "crashproof", admin_h)

        await _until(all_found, "node two's search finds every acknowledged aid")


async def test_event_batches_resent_after_a_crash_are_counted_once(
    tmp_path: Path,
    tokens: TokenMaker,
    pg: Databases,
    nodes: NodeFactory,  # noqa: F811
    admin_h: dict[str, str],
) -> None:
    """The extension sends its queued events in batches and resends a batch it got no answer
    for, to whichever node answers next. A node killed while batches arrive: every batch is
    eventually acknowledged by the other node, and each event is counted exactly once in the
    raw events, the rollups and the adoption dashboard, whether the dead node had committed the
    batch before dying or not."""
    content_url, events_url = pg.new("content"), pg.new("events")
    env = _env(tmp_path, tokens, content_url, events_url)
    one = nodes("one", {**env, "INFLOW_CONTENT_DIR": str(_content(tmp_path / "content"))})
    two = nodes("two", env)
    # 60 batches of 5 events from 3 people, sent 3 at a time
    people = [tokens.auth(sub=f"yard-{p}", roles=("learner",)) for p in range(3)]
    batches = [[_event() for _ in range(5)] for _ in range(60)]
    acked: dict[int, dict[str, int]] = {}
    unanswered: list[int] = []

    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:

        async def send(node: Node, b: int) -> bool:
            try:
                async with http.post(
                    f"{node.url}/api/v1/events",
                    json={"events": batches[b]},
                    headers=people[b % len(people)],
                ) as resp:
                    body = await resp.json()
                    if resp.status == 200:
                        acked[b] = body
                        return True
                    pytest.fail(f"batch {b}: {resp.status} {body}")
            except (aiohttp.ClientError, TimeoutError):
                pass
            return False

        async def sender(lane: int) -> None:
            for b in range(lane, len(batches), 3):
                if one.running and await send(one, b):
                    continue
                unanswered.append(b)

        async def killer() -> None:
            while len(acked) < 12:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(one.kill)

        await asyncio.gather(killer(), *(sender(lane) for lane in range(3)))
        assert unanswered, "node one was killed after every batch was sent"
        # the client resends what got no answer to node two, and (a lost answer looks the
        # same to it) a few batches node one did acknowledge
        again = sorted(unanswered) + sorted(acked)[:3]
        for b in again:
            assert await send(two, b), f"node two did not take batch {b}"
        assert set(acked) == set(range(len(batches)))
        total = sum(len(b) for b in batches)
        # each event accepted in exactly one acknowledged answer at most, stored once
        assert sum(a["accepted"] for a in acked.values()) <= total
        assert _scalar(events_url, "SELECT count(*) FROM events") == total
        rolled = _scalar(
            events_url,
            "SELECT sum(n) FROM counts WHERE dim = 'app' AND metric = 'panel_opened'",
        )
        assert rolled == total
        async with http.get(f"{two.url}{A}/analytics/adoption", headers=admin_h) as resp:
            assert resp.status == 200, await resp.text()
            report = await resp.json()
        by_app = {r["app"]: r for r in report["tables"]["by_app"]["rows"]}
        assert by_app[APP]["panel_opens"] == total


async def test_postgresql_restarted_under_load_is_503_then_the_same_nodes_recover(
    tmp_path: Path,
    tokens: TokenMaker,
    pg_cluster: PgCluster,  # noqa: F811
    nodes: NodeFactory,  # noqa: F811
    admin_h: dict[str, str],
    learner_h: dict[str, str],
) -> None:
    """PostgreSQL stopped while clients use two nodes: what needs the database answers 503
    problem+json with Retry-After (never a 500, never a hang), /readyz says the database is
    unavailable, search keeps answering from the index; when PostgreSQL is back the same node
    processes (not restarted) answer 200 again, and writes and events work."""
    content_url = pg_cluster.create_database("content")
    events_url = pg_cluster.create_database("events")
    env = _env(tmp_path, tokens, content_url, events_url)
    one = nodes("one", {**env, "INFLOW_CONTENT_DIR": str(_content(tmp_path / "content"))})
    two = nodes("two", env)
    pids = {node.name: node.proc.pid for node in (one, two) if node.proc is not None}

    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:

        async def call(node: Node, what: str) -> tuple[int, dict[str, str], Any]:
            """One request needing the database (or, for search, only the index)."""
            if what == "aid":
                request = http.get(f"{node.url}/api/v1/aids/yard-gate-checkin", headers=learner_h)
            elif what == "write":
                aid = _aid(f"{node.name}-{uuid.uuid4().hex[:8]}", "restart")
                request = http.post(f"{node.url}{A}/aids", json=aid, headers=admin_h)
            elif what == "events":
                body = {"events": [_event()]}
                request = http.post(f"{node.url}/api/v1/events", json=body, headers=learner_h)
            elif what == "readyz":
                request = http.get(f"{node.url}/readyz")
            else:
                params = {"q": "reefer", "app": APP}
                request = http.get(f"{node.url}/api/v1/search", params=params, headers=learner_h)
            async with request as resp:
                text = await resp.text()
                body = json.loads(text) if text.startswith("{") else text
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, body

        ok = {"aid": 200, "write": 201, "events": 200, "readyz": 200, "search": 200}
        for node in (one, two):
            for what, status in ok.items():
                assert (await call(node, what))[0] == status, (node.name, what)

        await asyncio.to_thread(pg_cluster.stop)  # "fast": every session is ended
        for _ in range(3):  # a few rounds: the dead connection, then the refused reconnects
            for node in (one, two):
                for what in ("aid", "write", "events"):
                    status, headers, body = await call(node, what)
                    assert status == 503, (node.name, what, status, body)
                    assert headers["content-type"].startswith("application/problem+json")
                    assert headers["retry-after"] == "2"
                    assert body["title"] == "Database unavailable"
                    assert body["request_id"] == headers["x-request-id"]
                status, _, body = await call(node, "readyz")
                assert status == 503
                assert "database unavailable" in body["checks"]["database"]["detail"]
                status, _, body = await call(node, "search")  # the index needs no database
                assert status == 200 and "yard-reefer-plugs" in {r["id"] for r in body["results"]}

        await asyncio.to_thread(pg_cluster.start)
        for node in (one, two):
            for what, status in ok.items():

                async def back(node: Node = node, what: str = what, want: int = status) -> bool:
                    got, _, body = await call(node, what)
                    assert got in {want, 503}, (node.name, what, got, body)  # never a 500
                    return got == want

                await _until(back, f"{what} on node {node.name} after PostgreSQL came back")
        # the same processes: nothing restarted them
        assert {n.name: n.proc.pid for n in (one, two) if n.proc is not None} == pids
        assert one.running and two.running
        for node in (one, two):
            log = node.log_text()
            assert "content database unavailable" in log
            assert "connected again" in log


async def test_console_and_learn_pages_say_the_database_is_unavailable(
    pg_cluster: PgCluster,  # noqa: F811 (first: stopped after the app closes)
    aiohttp_client: Any,
    make_settings: Callable[..., Any],
    tokens: TokenMaker,
    tmp_path: Path,
) -> None:
    """The console and /learn read the person's session from the database before their own error
    handling ran: with PostgreSQL down a signed-in person got the API's problem+json (or a 500)
    instead of a page. Now it is their error page, 503 with Retry-After, and the same page works
    again when PostgreSQL is back."""
    settings = make_settings(
        database_url=pg_cluster.create_database("content"),
        events_database_url=pg_cluster.create_database("events"),
        content_dir=_content(tmp_path / "content"),
        jobs=False,
    )
    client = await aiohttp_client(create_app(settings))
    app = client.server.app
    token = tokens.token(sub="yard-admin", roles=("learner", "author", "admin"))
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    for sessions in (app[keys.ADMIN_SESSIONS], app[keys.LEARN_SESSIONS]):
        sid, _ = await sessions.create(identity, {"access_token": token, "refresh_token": ""})
        client.session.cookie_jar.update_cookies({sessions.cookie_name: sid})
    pages = ("/admin/aids", "/learn/")
    for path in pages:
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 200, path

    await asyncio.to_thread(pg_cluster.stop)
    for path in pages:
        for _ in range(2):  # the broken connection, then a refused reconnect
            resp = await client.get(path, allow_redirects=False)
            assert resp.status == 503, path
            assert resp.content_type == "text/html"
            assert resp.headers["Retry-After"] == "2"
            assert "Database unavailable" in await resp.text()

    await asyncio.to_thread(pg_cluster.start)
    for path in pages:

        async def back(path: str = path) -> bool:
            resp = await client.get(path, allow_redirects=False)
            assert resp.status in {200, 503}, path
            return resp.status == 200

        await _until(back, f"{path} after PostgreSQL came back")
