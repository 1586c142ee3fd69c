"""The demo's sources (content/demo/sources.yaml): `inflow import content/demo` adds a feed, an
intranet section and a git repository, all served by the demo server itself on 127.0.0.1 with
URLs built from INFLOW_BASE_URL; each syncs into aids with their provenance.

This is the demo's own content on purpose (what `make run` shows must work); the sources' logic
is tested on other companies' content in tests/test_sources_*.py. Real parts: the app serving on a
real port (its base URL is that port), the real sync through the safe fetcher, a real bare git
repository made by server/sources/demo_git.py, a real database and index.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.cli import _import
from server.demo import DEMO_GIT_DIR, demo_sources
from server.settings import Settings
from server.sources.demo_git import build
from server.sources.service import SourceService

DEMO = Path(__file__).resolve().parent.parent / "content" / "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def demo(
    aiohttp_client: Any, make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> TestClient:
    """What `make run` does: the demo repository made in the data folder, `inflow import
    content/demo`, then the server (on the port its base URL names)."""
    port = free_port()
    settings = make_settings(
        base_url=f"http://127.0.0.1:{port}", fetch_allow_private=True, jobs=False, serve_demo=True
    )
    build(settings.data_dir / DEMO_GIT_DIR)
    assert await _import(settings, DEMO) == 0
    assert "Demo sources" in capsys.readouterr().out
    return await aiohttp_client(create_app(settings), server_kwargs={"port": port})


def service(client: TestClient) -> SourceService:
    return client.server.app[keys.SOURCES]


async def test_the_demo_file_has_one_source_of_each_kind_on_this_server() -> None:
    sources = demo_sources(DEMO / "sources.yaml", "http://127.0.0.1:9999/")
    assert sorted(s.kind for s in sources) == ["feed", "git", "website"]
    for source in sources:
        assert source.url.startswith("http://127.0.0.1:9999/"), source.url
        assert source.publish == "auto" and source.active


async def test_the_demo_sources_sync_into_aids_with_provenance(
    demo: TestClient, admin: dict[str, str], learner: dict[str, str]
) -> None:
    base = str(demo.server.app[keys.SETTINGS].base_url)
    sources = {s.id: s for s in await service(demo).list()}
    assert set(sources) == {"expensely-releases", "workplace-intranet", "northwind-handbook"}
    assert all(s.url.startswith(base) and s.last_status == "never" for s in sources.values())

    runs = {sid: await service(demo).sync(sid) for sid in sources}
    for sid, run in runs.items():
        assert run.status == "ok", (sid, run.error, run.failures)
    assert runs["expensely-releases"].added == 3
    assert runs["workplace-intranet"].added == 4
    assert runs["northwind-handbook"].added >= 4

    catalog = demo.server.app[keys.LIBRARY].catalog
    made = {a.id: a for a in catalog.aids.values() if a.id.startswith("workplace-intranet-")}
    assert len(made) == 4 and all(a.status == "published" for a in made.values())
    badges = next(a for a in made.values() if a.title == "Office access badges")
    resp = await demo.get(f"/api/v1/aids/{badges.id}", headers=learner)
    assert resp.status == 200, await resp.text()
    aid = await resp.json()
    # the page's article, not the intranet around it (navigation, sidebar, footer)
    assert "Facilities desk on the ground floor" in aid["body_html"]
    assert "page owner" not in aid["body_html"] and "Search the intranet" not in aid["body_html"]
    assert aid["provenance"]["source_name"] == "Intranet · Workplace"
    assert aid["provenance"]["url"] == f"{base}/demo/intranet/badges.html"

    feed_aids = [a for a in catalog.aids.values() if a.id.startswith("expensely-releases-")]
    assert {a.title for a in feed_aids} >= {"Split a receipt across two expense types"}
    assert all(catalog.aids[a.id].apps == ("expenses",) for a in feed_aids)
    handbook = [a for a in catalog.aids.values() if a.id.startswith("northwind-handbook-")]
    assert handbook and all(a.apps for a in handbook)  # each file names its app

    # what docs/sources.md tells people to search for in the panel
    for query, app, prefix in (
        ("split a receipt", "expenses", "expensely-releases-"),
        ("parking", "hr", "workplace-intranet-"),
    ):
        resp = await demo.get(f"/api/v1/search?q={query}&app={app}", headers=learner)
        found = [r["id"] for r in (await resp.json())["results"]]
        assert found and found[0].startswith(prefix), (query, found)

    # nothing changed upstream: the next syncs change nothing
    for sid in sources:
        again = await service(demo).sync(sid)
        assert (again.added, again.changed, again.removed) == (0, 0, 0), sid


async def test_the_feed_answers_conditional_requests(demo: TestClient) -> None:
    resp = await demo.get("/demo/feeds/expensely/releases.rss")
    assert resp.status == 200 and resp.content_type == "application/rss+xml"
    text = await resp.text()
    assert "{{base_url}}" not in text
    assert f"{demo.server.app[keys.SETTINGS].base_url}/demo/feeds/expensely/#mileage" in text
    again = await demo.get(
        "/demo/feeds/expensely/releases.rss", headers={"If-None-Match": resp.headers["ETag"]}
    )
    assert again.status == 304
