"""xAPI forwarding against a real Learning Record Store (ralph-malph, file-system backend).

Ralph pins an old FastAPI, so it lives in a virtual environment of its own (.cache/ralph-venv),
made by `make ralph` from the pinned tests/ralph/requirements.txt.
Statements are read back through ralph's xAPI API and compared with what
Inflow built; a statement ralph refuses lands in the dead-letter table and fails the test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from server import keys
from server.analytics.events import parse_batch
from server.analytics.xapi import StatementBuilder
from server.app import create_app
from server.settings import Settings
from tests.conftest import ROOT
from tests.tokens import TokenMaker

RALPH_VENV = ROOT / ".cache" / "ralph-venv"
USER, PASSWORD = "inflow-test", "lrs-secret"
HEADERS = {"X-Experience-API-Version": "1.0.3"}
IGNORED = {"stored", "authority", "version"}  # set by the LRS
# `ralph runserver -b fs` as the issue describes, minus its auto-reloader, plus one fix: ralph
# 5.1's fs LRS backend writes each POST with operation type "create" into its single
# fs_lrs.jsonl, so the second POST of a run fails (500, "already exists and overwrite is not
# allowed"). An LRS has to take more than one POST: we make the backend append. And a second:
# its statement queries compare the `verb` and `activity` filters (which the API turns into IRI
# objects) with the statements' strings, so a query filtered by verb or activity finds nothing
# (learning paths read `completed` statements that way): we hand the backend strings.
LAUNCH = """
import sys, uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend
FSLRSBackend.default_operation_type = BaseOperationType.APPEND
_query = FSLRSBackend.query_statements
def query_statements(self, params, target=None):
    for name in ("verb", "activity"):
        if getattr(params, name, None) is not None:
            setattr(params, name, str(getattr(params, name)))
    return _query(self, params, target)
FSLRSBackend.query_statements = query_statements
uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ralph_bin() -> Path:
    """The pinned ralph (tests/ralph/requirements.txt) that `make ralph` installs: the test never
    installs it itself (an unpinned install made every CI run test a different LRS)."""
    ralph = RALPH_VENV / "bin" / "ralph"
    if not (RALPH_VENV / ".installed").exists() or not ralph.exists():
        pytest.fail(f"ralph is not installed in {RALPH_VENV}: run `make ralph` (make test does)")
    return ralph


@dataclass(frozen=True)
class Ralph:
    url: str  # the xAPI base, e.g. http://127.0.0.1:N/xAPI
    data: Path  # where the fs backend writes its statements

    def stored_lines(self) -> list[dict[str, Any]]:
        out = []
        for path in self.data.glob("*"):
            if path.is_file():
                out.extend(json.loads(line) for line in path.read_text().splitlines() if line)
        return out

    def _get(self, url: str) -> dict[str, Any]:
        req = urllib.request.Request(url, headers=HEADERS)
        req.add_header("Authorization", aiohttp.encode_basic_auth(USER, PASSWORD))
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def statements(self) -> dict[str, dict[str, Any]]:
        """Every statement, read back through the LRS's own xAPI API (following `more`)."""
        out: dict[str, dict[str, Any]] = {}
        url = f"{self.url}/statements?limit=500"
        while url:
            page = self._get(url)
            for st in page["statements"]:
                assert st["id"] not in out, f"the LRS returned {st['id']} twice"
                out[st["id"]] = st
            more = page.get("more") or ""
            url = (self.url.rsplit("/xAPI", 1)[0] + more) if more else ""
        return out


@pytest.fixture(scope="session")
def ralph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ralph]:
    ralph_bin = _ralph_bin()
    home = tmp_path_factory.mktemp("ralph")
    data = home / "statements"
    data.mkdir()
    env = {
        **os.environ,
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_APP_DIR": str(home),
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(data),
    }
    subprocess.run(
        [
            str(ralph_bin),
            "auth",
            "-u",
            USER,
            "-p",
            PASSWORD,
            "-s",
            "all",
            "-M",
            f"mailto:{USER}@example.com",
            "-w",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    log = (home / "ralph.log").open("wb")
    proc = subprocess.Popen(
        [str(RALPH_VENV / "bin" / "python"), "-c", LAUNCH, str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/__heartbeat__", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "ralph did not start: " + (home / "ralph.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        yield Ralph(f"{base}/xAPI", data)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _ev(type_: str, **fields: Any) -> dict[str, Any]:
    at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"id": str(uuid.uuid4()), "type": type_, "at": at, **fields}


def lrs_settings(make_settings: Callable[..., Settings], endpoint: str, **kw: Any) -> Settings:
    return make_settings(
        lrs_endpoint=endpoint,
        lrs_username=USER,
        lrs_password=PASSWORD,
        lrs_poll_seconds=0.1,
        lrs_backoff_initial_seconds=0.05,
        lrs_backoff_max_seconds=0.2,
        lrs_timeout_seconds=5.0,
        **kw,
    )


async def wait_drained(app: web.Application, timeout: float = 30) -> None:
    store = app[keys.ANALYTICS].store
    deadline = time.monotonic() + timeout
    while True:
        pending, dead = await store.write(store.outbox_size_sync)
        assert dead == 0, "the LRS refused statements: " + repr(
            store.wconn.execute("SELECT reason FROM outbox_dead").fetchall()
        )
        if pending == 0:
            return
        assert time.monotonic() < deadline, f"{pending} statements still in the outbox"
        await asyncio.sleep(0.05)


async def test_every_event_type_becomes_a_statement_the_lrs_stores(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, tokens: TokenMaker
) -> None:
    settings = lrs_settings(make_settings, ralph.url)
    client = await aiohttp_client(create_app(settings))
    headers = tokens.auth(sub="xapi-learner", roles=("learner",))
    batch = [
        _ev("panel_opened", app="crm", context="crm-opportunity-new"),
        _ev("suggestions_shown", app="crm", aids=["crm-create-opportunity", "crm-lead-conversion"]),
        _ev("aid_opened", app="crm", context="crm-opportunity-new", aid="crm-create-opportunity"),
        _ev("aid_rated", app="crm", aid="crm-create-opportunity", helpful=True, comment="Clear"),
        _ev("aid_rated", aid="crm-create-opportunity", helpful=False),
        _ev("search", app="hr", query="Vacation days", result_count=0),
        _ev("link_followed", app="crm", aid="crm-quote-video", url_host="video.example.com"),
        _ev("signed_in"),
    ]
    resp = await client.post("/api/v1/events", json={"events": batch}, headers=headers)
    assert resp.status == 200, await resp.text()
    app = client.server.app
    await wait_drained(app)

    analytics = app[keys.ANALYTICS]
    builder = analytics.builder
    assert isinstance(builder, StatementBuilder)
    catalog = app[keys.LIBRARY].catalog
    events = parse_batch(
        {"events": batch},
        now=dt.datetime.now(dt.UTC),
        apps=catalog.apps.keys(),
        contexts={c.id: c.app_id for c in catalog.contexts.values()},
        max_events=500,
        max_age_days=7,
        max_future_seconds=300,
    )
    pseudonym = analytics.pseudonym(tokens.issuer, "xapi-learner")
    lrs = await asyncio.to_thread(ralph.statements)
    for event in events:
        stored = lrs[event.id]
        expected = builder.statement(event, pseudonym)
        assert {k: v for k, v in stored.items() if k not in IGNORED} == expected
        assert stored["actor"]["account"] == {"homePage": settings.base_url, "name": pseudonym}
        assert "xapi-learner" not in json.dumps(stored)
    verbs = {e.type: builder.statement(e, pseudonym)["verb"]["id"] for e in events}
    assert verbs["aid_opened"] == "http://adlnet.gov/expapi/verbs/experienced"
    assert verbs["search"].endswith("/searched") and verbs["aid_rated"].endswith("/rated")


async def test_nothing_lost_or_doubled_across_restarts_and_lrs_outages(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, tokens: TokenMaker
) -> None:
    """Events stored while the LRS is unreachable survive a restart of the app and arrive once;
    a batch the LRS took just before a crash (acknowledged, not yet deleted) is not doubled."""
    headers = tokens.auth(sub="restart-learner", roles=("learner",))
    batch = [_ev("aid_opened", app="hr", aid="hr-pto-policy") for _ in range(40)]

    # 1. the LRS is down (nothing listens on its port): events are stored, statements wait
    down = lrs_settings(make_settings, f"http://127.0.0.1:{_free_port()}/xAPI", lrs_batch_size=7)
    client = await aiohttp_client(create_app(down))
    resp = await client.post("/api/v1/events", json={"events": batch}, headers=headers)
    assert (await resp.json())["accepted"] == 40
    forwarder = client.server.app[keys.ANALYTICS].forwarder
    assert forwarder is not None
    for _ in range(200):
        if forwarder.stats.failures >= 2:
            break
        await asyncio.sleep(0.05)
    assert forwarder.stats.failures >= 2 and forwarder.stats.sent == 0
    store = client.server.app[keys.ANALYTICS].store
    pending = await store.write(store.outbox_batch_sync, 100)
    assert len(pending) == 40
    await client.close()  # the app stops before anything was forwarded

    # 2. a crash after the LRS accepted a batch but before the outbox forgot it: resent later
    body = "[" + ",".join(p.statement for p in pending[:10]) + "]"
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{ralph.url}/statements",
            data=body,
            headers={
                **HEADERS,
                "Content-Type": "application/json",
                "Authorization": aiohttp.encode_basic_auth(USER, PASSWORD),
            },
        ) as r,
    ):
        assert r.status == 200, await r.text()

    # 3. the app starts again, the LRS is up: everything arrives, once
    up = lrs_settings(make_settings, ralph.url, lrs_batch_size=7)
    client = await aiohttp_client(create_app(up))
    await wait_drained(client.server.app)
    resp = await client.post("/api/v1/events", json={"events": batch}, headers=headers)
    assert await resp.json() == {"received": 40, "accepted": 0, "duplicates": 40}
    store = client.server.app[keys.ANALYTICS].store
    assert await store.write(store.outbox_size_sync) == (0, 0)  # retries queue nothing
    ids = [e["id"] for e in batch]
    stored = [s["id"] for s in ralph.stored_lines()]
    assert all(stored.count(i) == 1 for i in ids), "a statement is missing or doubled"
    await client.close()


async def test_lrs_outage_while_running_is_retried_with_backoff(
    aiohttp_client: Any,
    aiohttp_server: Any,
    make_settings: Callable[..., Settings],
    ralph: Ralph,
    tokens: TokenMaker,
) -> None:
    """The LRS answers 503 for a while (down), then comes back: the forwarder backs off, retries
    and delivers everything once."""
    calls = {"n": 0}

    async def flaky(request: web.Request) -> web.StreamResponse:
        calls["n"] += 1
        if calls["n"] <= 3:
            return web.Response(status=503, text="maintenance")
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"{ralph.url}/statements",
                data=await request.read(),
                headers={
                    **HEADERS,
                    "Content-Type": "application/json",
                    "Authorization": request.headers["Authorization"],
                },
            ) as r,
        ):
            return web.Response(status=r.status, body=await r.read())

    proxy = web.Application()
    proxy.router.add_post("/xAPI/statements", flaky)
    server = await aiohttp_server(proxy)
    settings = lrs_settings(make_settings, f"http://127.0.0.1:{server.port}/xAPI")
    client = await aiohttp_client(create_app(settings))
    headers = tokens.auth(sub="flaky-learner", roles=("learner",))
    batch = [_ev("search", query=f"q{i}", result_count=i) for i in range(15)]
    assert (
        await client.post("/api/v1/events", json={"events": batch}, headers=headers)
    ).status == 200
    await wait_drained(client.server.app)
    forwarder = client.server.app[keys.ANALYTICS].forwarder
    assert forwarder is not None and forwarder.stats.failures == 3
    stored = [s["id"] for s in ralph.stored_lines()]
    assert all(stored.count(e["id"]) == 1 for e in batch)


def test_ralph_runs_outside_our_venv() -> None:
    """ralph pins an old FastAPI: it must never be importable from the project's environment."""
    code = "import importlib.util as u; print(u.find_spec('ralph') is None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
