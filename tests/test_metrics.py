"""GET /metrics (server/metrics.py, docs/operations.md): Prometheus figures after real requests on
the real app (real SQLite, real index, forged tokens), and who may read them."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server import keys
from server.app import create_app
from server.jobs import JobRun
from server.peer.mail import notify
from server.settings import Settings
from tests.test_health_links import fabrikam, run_check, serve_pages
from tests.test_sources_sync import FEED_PATH, add_source, serve, sync, write_library
from tests.tokens import TokenMaker
from tests.upstream import Upstream

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
AID = "/api/v1/aids/{aid_id}"
PAGE = {"url": "http://127.0.0.1:8080/demo/crm/opportunities/new", "title": "New Opportunity"}


async def scrape(client: TestClient, headers: dict[str, str] | None = None) -> Samples:
    resp = await client.get("/metrics", headers=headers or {})
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    out: Samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def metrics_client(aiohttp_client: Any, settings: Settings) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(settings))
    return client


async def test_latency_and_status_classes_by_route_template_not_raw_path(
    aiohttp_client: Any, make_settings: Callable[..., Settings], learner: dict[str, str]
) -> None:
    """Request metrics are labelled by the route's template: two aids make one series, and a
    scan of random URLs makes one `(unmatched)` series (not one per URL, which would make
    Prometheus's memory grow with every scanner)."""
    client = await metrics_client(aiohttp_client, make_settings(metrics=True))
    for aid in ("crm-create-opportunity", "crm-build-report"):
        resp = await client.get(f"/api/v1/aids/{aid}", headers=learner)
        assert resp.status == 200, await resp.text()
    for i in range(3):
        assert (await client.get(f"/api/v1/nothing-{i}-{uuid.uuid4()}")).status == 404
    assert (await client.get("/api/v1/aids/no-such-aid", headers=learner)).status == 404

    samples = await scrape(client)
    hist = "inflow_http_request_duration_seconds_count"
    assert value(samples, hist, method="GET", route=AID) == 3
    assert value(samples, "inflow_http_requests_total", method="GET", route=AID, status="2xx") == 2
    assert value(samples, "inflow_http_requests_total", method="GET", route=AID, status="4xx") == 1
    assert (
        value(
            samples, "inflow_http_requests_total", method="GET", route="(unmatched)", status="4xx"
        )
        == 3
    )
    assert not any(name.endswith("_created") for name, _ in samples)  # half the series for nothing
    routes = {dict(labels).get("route") for _, labels in samples}
    assert not any(r and ("crm-" in r or "nothing-" in r) for r in routes), routes
    # the bucket holding every request's time is the +Inf one
    assert (
        value(
            samples,
            "inflow_http_request_duration_seconds_bucket",
            method="GET",
            route=AID,
            le="+Inf",
        )
        == 3
    )


async def test_cache_hits_after_a_repeated_suggest(
    aiohttp_client: Any, make_settings: Callable[..., Settings], learner: dict[str, str]
) -> None:
    """The same page asked twice is answered from the result cache the second time: the hit
    counter (and so the hit rate) shows it."""
    client = await metrics_client(aiohttp_client, make_settings(metrics=True))
    before = await scrape(client)
    for _ in range(2):
        resp = await client.post("/api/v1/suggest", json=PAGE, headers=learner)
        assert resp.status == 200, await resp.text()
    after = await scrape(client)
    hits = "inflow_result_cache_hits_total"
    misses = "inflow_result_cache_misses_total"
    assert value(after, hits) - value(before, hits) == 1
    assert value(after, misses) - value(before, misses) >= 1
    assert value(after, "inflow_result_cache_entries") >= 1
    suggest = value(
        after, "inflow_http_requests_total", method="POST", route="/api/v1/suggest", status="2xx"
    )
    assert suggest == 2


async def test_index_in_step_with_the_database_after_a_write(
    aiohttp_client: Any, make_settings: Callable[..., Settings], admin: dict[str, str]
) -> None:
    """After an aid is saved, the index reflects the database's content version (lag 0), the
    generation moved on and the catalog counts the new aid."""
    client = await metrics_client(
        aiohttp_client, make_settings(metrics=True, metrics_cache_seconds=0)
    )
    before = await scrape(client)
    new = {
        "id": "zz-metrics-aid",
        "title": "Reconcile a supplier statement",
        "summary": "Match the statement lines to invoices",
        "body": "# Steps\n\nOpen the statement.\n",
        "type": "howto",
        "apps": ["expenses"],
    }
    resp = await client.post("/api/v1/admin/aids", json=new, headers=admin)
    assert resp.status == 201, await resp.text()
    after = await scrape(client)
    assert value(after, "inflow_content_version") == value(before, "inflow_content_version") + 1
    assert value(after, "inflow_index_content_version") == value(after, "inflow_content_version")
    assert value(after, "inflow_index_lag_versions") == 0
    assert value(after, "inflow_index_generation") > value(before, "inflow_index_generation")
    aids = value(after, "inflow_catalog_size", kind="aids")
    assert aids == value(before, "inflow_catalog_size", kind="aids") + 1
    assert aids == len(client.app[keys.LIBRARY].catalog.aids)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when this returns: nothing listens there


async def test_xapi_outbox_backlog_while_the_lrs_is_down(
    aiohttp_client: Any, make_settings: Callable[..., Settings], learner: dict[str, str]
) -> None:
    """With the LRS unreachable, every statement waits in the outbox and the backlog gauge says
    how many: what an alert on a stuck LRS needs."""
    settings = make_settings(
        metrics=True,
        metrics_cache_seconds=0,
        lrs_endpoint=f"http://127.0.0.1:{_closed_port()}/xAPI",
        lrs_backoff_initial_seconds=30.0,
    )
    client = await metrics_client(aiohttp_client, settings)
    events = [
        {"id": str(uuid.uuid4()), "type": "aid_opened", "app": "crm", "aid": "crm-build-report"}
        for _ in range(4)
    ]
    at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for e in events:
        e["at"] = at
    resp = await client.post("/api/v1/events", json={"events": events}, headers=learner)
    assert resp.status == 200, await resp.text()
    samples = await scrape(client)
    assert value(samples, "inflow_xapi_outbox_pending") == 4
    assert value(samples, "inflow_xapi_outbox_dead") == 0
    assert value(samples, "inflow_xapi_sent_total") == 0


async def test_jobs_e_mail_outbox_sources_and_links_are_reported(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    """A job whose run fails is counted as run and failed; the e-mail outbox, link and source
    families are present (zeros on a fresh library) so dashboards and alerts find them."""
    client = await metrics_client(
        aiohttp_client, make_settings(metrics=True, metrics_cache_seconds=0, jobs=False)
    )
    jobs = client.app[keys.JOBS]

    async def broken(run: JobRun) -> None:
        raise RuntimeError("the upstream answered nonsense")

    jobs.register("zz-broken", 0, broken)
    assert await jobs.run_now("zz-broken")
    await jobs.wait("zz-broken")
    samples = await scrape(client)
    assert value(samples, "inflow_job_runs_total", job="zz-broken") == 1
    assert value(samples, "inflow_job_failures_total", job="zz-broken") == 1
    assert value(samples, "inflow_job_running", job="zz-broken") == 0
    assert value(samples, "inflow_email_outbox", status="queued") == 0
    assert ("inflow_email_outbox", frozenset({("status", "failed")})) in samples
    # e-mail is off (no INFLOW_SMTP_HOST): notifications wait in the outbox, and the gauge says so
    queued = await notify(
        client.app, ["a@contoso.example", "b@contoso.example"], "Hi", "Text", "test", "r1"
    )
    assert len(queued) == 2
    samples = await scrape(client)
    assert value(samples, "inflow_email_outbox", status="queued") == 2
    assert value(samples, "inflow_metrics_count_errors") == 0


async def test_metrics_are_off_by_default(client: TestClient) -> None:
    """Without INFLOW_METRICS=1 there is no /metrics at all (a 404 problem)."""
    resp = await client.get("/metrics")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"


async def test_only_allowed_addresses_and_admins_may_read_metrics(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    learner: dict[str, str],
    admin: dict[str, str],
) -> None:
    """From an address not in INFLOW_METRICS_ALLOW, an anonymous caller and a learner get a 403
    problem; an admin's bearer token is let in from anywhere."""
    settings = make_settings(metrics=True, metrics_allow=("10.11.12.13", "192.0.2.0/24"))
    client = await metrics_client(aiohttp_client, settings)
    for headers in ({}, learner):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 403
        assert resp.content_type == "application/problem+json"
        body = await resp.json()
        assert "INFLOW_METRICS_ALLOW" in body["detail"]
    samples = await scrape(client, admin)
    assert value(samples, "inflow_catalog_size", kind="aids") > 0


async def test_a_local_proxy_does_not_open_metrics_to_everyone_it_forwards(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Incident guarded: nginx on the same host forwards every request from 127.0.0.1, the
    default allowed address; /metrics must not be open to the whole internet through it. A
    forwarded request counts with the client its trusted proxy names, and not at all when the
    proxy is not trusted."""
    client = await metrics_client(aiohttp_client, make_settings(metrics=True))
    assert (await client.get("/metrics")).status == 200  # direct, from loopback
    resp = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status == 403
    trusted = make_settings(
        metrics=True, rate_limit_trusted_proxies=("127.0.0.1",), data_dir=tmp_path / "behind"
    )
    behind = await metrics_client(aiohttp_client, trusted)
    resp = await behind.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status == 403
    resp = await behind.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert resp.status == 200


async def test_two_apps_in_one_process_keep_their_own_figures(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    learner: dict[str, str],
    tmp_path: Path,
) -> None:
    """One registry per app: a second app neither fails to register its metrics nor reports the
    first one's requests."""
    first = await metrics_client(aiohttp_client, make_settings(metrics=True))
    second = await metrics_client(
        aiohttp_client, make_settings(metrics=True, data_dir=tmp_path / "second")
    )
    for _ in range(3):
        assert (await first.get("/api/v1/aids/crm-build-report", headers=learner)).status == 200
    a, b = await scrape(first), await scrape(second)
    key = "inflow_http_requests_total"
    assert value(a, key, method="GET", route=AID, status="2xx") == 3
    assert value(b, key, method="GET", route=AID, status="2xx") == 0


async def test_source_sync_results_are_counted(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    admin: dict[str, str],
    upstream: Upstream,
) -> None:
    """A sync that adds three aids, then one that fails (the feed is gone): the source's last
    status is failed, its runs are counted by result and its items by outcome."""
    settings = make_settings(
        content_dir=write_library(tmp_path / "ledgerly"),
        fetch_allow_private=True,
        jobs=False,
        metrics=True,
        metrics_cache_seconds=0,
    )
    client = await metrics_client(aiohttp_client, settings)
    serve(upstream, "vendor-notes.rss")
    await add_source(client, admin, upstream)
    samples = await scrape(client)
    assert value(samples, "inflow_source_last_status", source="vendor", status="never") == 1
    assert (await sync(client)).status == "ok"
    upstream.remove(FEED_PATH)
    assert (await sync(client)).status == "failed"
    samples = await scrape(client)
    assert value(samples, "inflow_source_last_status", source="vendor", status="failed") == 1
    assert (
        "inflow_source_last_status",
        frozenset({("source", "vendor"), ("status", "ok")}),
    ) not in samples
    assert value(samples, "inflow_source_syncs_total", source="vendor", status="ok") == 1
    assert value(samples, "inflow_source_syncs_total", source="vendor", status="failed") == 1
    assert value(samples, "inflow_source_items_total", source="vendor", outcome="added") == 3
    assert value(samples, "inflow_source_items_total", source="vendor", outcome="failed") == 0


async def test_links_by_status_match_the_link_report(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    upstream: Upstream,
    tokens: TokenMaker,
) -> None:
    """After a link check of another company's library (some links fine, one moved, two gone),
    the links gauge counts the same statuses as the admin's link report."""
    serve_pages(upstream)
    settings = make_settings(
        content_dir=fabrikam(tmp_path / "fabrikam", upstream),
        fetch_allow_private=True,
        link_check_delay_seconds=0.0,
        jobs=False,
        metrics=True,
        metrics_cache_seconds=0,
    )
    client = await metrics_client(aiohttp_client, settings)
    staff = tokens.auth(sub="admin-2", roles=("learner", "author", "admin"))
    report = await run_check(client, staff)
    expected = Counter(link["status"] for link in report["links"])
    assert len(expected) >= 2, report  # the check found good and broken links
    samples = await scrape(client)
    got = {
        dict(labels)["status"]: v for (name, labels), v in samples.items() if name == "inflow_links"
    }
    assert got == {status: float(n) for status, n in expected.items()}
    assert value(samples, "inflow_job_runs_total", job="link-check") == 1


async def test_loopback_through_a_dual_stack_socket_is_loopback(
    make_settings: Callable[..., Settings],
) -> None:
    """On a socket listening on both IPv6 and IPv4 (`::` with dual stack, as systemd socket
    activation hands out), a scrape from 127.0.0.1 arrives as ::ffff:127.0.0.1; the default
    allow list (127.0.0.1, ::1) must still let it in."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    port = sock.getsockname()[1]
    runner = web.AppRunner(create_app(make_settings(metrics=True)))
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        url = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200, await resp.text()
            assert "inflow_catalog_size" in await resp.text()
    finally:
        await runner.cleanup()
        sock.close()
