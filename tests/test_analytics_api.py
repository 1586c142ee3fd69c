"""Analytics ingestion and dashboards through the real app (forged tokens, real SQLite)."""

from __future__ import annotations

import datetime as dt
import io
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from server.analytics.store import EventStore, purge_path
from server.app import create_app
from server.settings import Settings
from tests.tokens import TokenMaker


def now_iso(delta: dt.timedelta = dt.timedelta()) -> str:
    return (
        (dt.datetime.now(dt.UTC) + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def ev(type_: str, **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": type_, "at": now_iso(), **fields}


def raw_db(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.events_db_path)


async def post(client: TestClient, headers: dict[str, str], events: list[dict[str, Any]]) -> Any:
    return await client.post("/api/v1/events", json={"events": events}, headers=headers)


async def test_good_batch_is_committed_and_duplicates_are_ignored(
    client: TestClient, learner: dict[str, str], settings: Settings
) -> None:
    batch = [
        ev("panel_opened", app="crm", context="crm-opportunity-new"),
        ev(
            "suggestions_shown", app="crm", aids=["crm-create-opportunity", "crm-stage-definitions"]
        ),
        ev("aid_opened", app="crm", aid="crm-create-opportunity"),
        ev("aid_rated", aid="crm-create-opportunity", helpful=False, comment="Step 3 is wrong"),
        ev("search", query="  Discount  APPROVAL ", result_count=0),
        ev("link_followed", url_host="wiki.example.com", aid="crm-create-opportunity"),
        ev("signed_in"),
    ]
    resp = await post(client, learner, batch)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"received": 7, "accepted": 7, "duplicates": 0}
    # committed before the answer: a separate connection sees every event
    with raw_db(settings) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 7
        assert db.execute("SELECT data FROM events WHERE type='search'").fetchone()[0] == (
            '{"query":"discount approval","result_count":0}'
        )
    # the retry of the same batch (plus one new event) stores only the new one
    again = [*batch, ev("panel_opened", app="hr")]
    resp = await post(client, learner, again)
    assert await resp.json() == {"received": 8, "accepted": 1, "duplicates": 7}
    # a repeat inside one batch counts as a duplicate too
    one = ev("signed_in")
    resp = await post(client, learner, [one, one])
    assert await resp.json() == {"received": 2, "accepted": 1, "duplicates": 1}
    with raw_db(settings) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 9


async def test_a_bad_event_refuses_the_whole_batch_and_is_named(
    client: TestClient, learner: dict[str, str], settings: Settings
) -> None:
    good = ev("panel_opened", app="crm")
    cases: list[tuple[dict[str, Any], str]] = [
        (ev("teleported"), "type"),
        (ev("panel_opened"), "app"),  # required field missing
        (ev("panel_opened", app="nope"), "app"),  # an unmapped page has no app
        (ev("panel_opened", app="crm", url="https://x/y"), "url"),  # no full URLs, unknown field
        (ev("panel_opened", app="hr", context="crm-accounts"), "context"),
        (ev("aid_rated", aid="crm-log-activity", helpful="yes"), "helpful"),
        (ev("search", query="x" * 300, result_count=1), "query"),
        (ev("link_followed", url_host="https://evil.example/path?q=1"), "url_host"),
        ({**ev("signed_in"), "id": "not-a-uuid"}, "id"),
        ({**ev("signed_in"), "at": now_iso(-dt.timedelta(days=8))}, "at"),
        ({**ev("signed_in"), "at": now_iso(dt.timedelta(hours=1))}, "at"),
        ({**ev("signed_in"), "at": "2026-01-01T10:00:00"}, "at"),  # no time zone
        (ev("aid_opened", aid="crm-log-activity", comment="x" * 5000), "comment"),
    ]
    for bad, field in cases:
        resp = await post(client, learner, [good, bad])
        assert resp.status == 422, (field, await resp.text())
        assert resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["event_index"] == 1, body
        assert body["event_id"] == bad["id"]
        assert body["errors"][0]["field"] == field, body
        assert f"event 1 (id {bad['id']})" in body["detail"]
    with raw_db(settings) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0  # nothing stored
    # the good neighbour goes through on its own
    assert (await post(client, learner, [good])).status == 200


async def test_batch_limits(
    make_settings: Callable[..., Settings], aiohttp_client: Any, learner: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(make_settings(analytics_max_events=3)))
    resp = await post(client, learner, [ev("signed_in") for _ in range(4)])
    assert resp.status == 422
    assert "limit is 3" in (await resp.json())["detail"]
    # the events route takes more than the app-wide 256 KiB body limit...
    comment = "c" * 1000
    events = [ev("aid_rated", aid="crm-log-activity", helpful=True, comment=comment)] * 3
    assert (await post(client, learner, events)).status == 200
    big = {"events": [ev("signed_in")], "pad": "x" * (300 * 1024)}
    resp = await client.post("/api/v1/events", json=big, headers=learner)
    assert resp.status == 422  # read in full (over 256 KiB), then refused for the unknown field
    # ...but has its own cap
    huge = json.dumps({"events": [ev("signed_in")], "pad": "x" * (2 * 1024 * 1024)}).encode()
    resp = await client.post(
        "/api/v1/events",
        data=io.BytesIO(huge),
        headers={**learner, "Content-Type": "application/json"},
    )
    assert resp.status == 413


async def test_events_need_a_signed_in_caller(client: TestClient) -> None:
    resp = await client.post("/api/v1/events", json={"events": [ev("signed_in")]})
    assert resp.status == 401


async def test_users_are_pseudonymous(
    client: TestClient, tokens: TokenMaker, settings: Settings
) -> None:
    headers = tokens.auth(sub="3f1c9a52-subject-of-alice", roles=("learner",))
    assert (
        await post(client, headers, [ev("signed_in"), ev("panel_opened", app="crm")])
    ).status == 200
    other = tokens.auth(sub="someone-else", roles=("learner",))
    assert (await post(client, other, [ev("signed_in")])).status == 200
    dump = b"".join(
        p.read_bytes() for p in settings.data_dir.glob("events.sqlite3*") if p.is_file()
    )
    assert b"3f1c9a52-subject-of-alice" not in dump
    assert b"alice" not in dump
    with raw_db(settings) as db:
        users = {r[0] for r in db.execute("SELECT DISTINCT user FROM events")}
    assert len(users) == 2
    assert all(len(u) == 32 for u in users)


async def _populate(client: TestClient, tokens: TokenMaker, people: int, **event: Any) -> None:
    for i in range(people):
        headers = tokens.auth(sub=f"person-{event.get('type_')}-{i}", roles=("learner",))
        resp = await post(client, headers, [ev(**event)])
        assert resp.status == 200, await resp.text()


async def test_dashboard_json_enforces_the_minimum_group_size(
    client: TestClient, tokens: TokenMaker, admin: dict[str, str], learner: dict[str, str]
) -> None:
    # 6 people opened crm-create-opportunity, 2 opened crm-log-activity
    await _populate(client, tokens, 6, type_="aid_opened", app="crm", aid="crm-create-opportunity")
    for i in range(2):
        h = tokens.auth(sub=f"few-{i}", roles=("learner",))
        await post(client, h, [ev("aid_opened", app="hr", aid="hr-pto-policy")])
    # zero-result searches: 5 people for "expense gizmo", 1 for "my secret project"
    await _populate(client, tokens, 5, type_="search", query="Expense  Gizmo", result_count=0)
    h = tokens.auth(sub="lonely", roles=("learner",))
    await post(client, h, [ev("search", query="my secret project", result_count=0)])

    resp = await client.get("/api/v1/admin/analytics/content", headers=learner)
    assert resp.status == 403
    resp = await client.get("/api/v1/admin/analytics/content", headers=admin)
    assert resp.status == 200
    top = (await resp.json())["tables"]["top_aids"]["rows"]
    assert top[0]["aid"] == "crm-create-opportunity"
    assert top[0]["opened"] == 6 and top[0]["people"] == 6
    assert all(r["aid"] != "hr-pto-policy" for r in top)
    assert top[-1]["aid"].startswith("(other)") and top[-1]["suppressed"] is True
    assert top[-1]["opened"] is None  # 2 people: withheld

    gaps = (await (await client.get("/api/v1/admin/analytics/gaps", headers=admin)).json())[
        "tables"
    ]
    queries = [r["query"] for r in gaps["no_results"]["rows"]]
    assert queries[0] == "expense gizmo"
    assert "my secret project" not in queries

    adoption = await (await client.get("/api/v1/admin/analytics/adoption", headers=admin)).json()
    by_app = {r["app"]: r for r in adoption["tables"]["by_app"]["rows"]}
    assert by_app["crm"]["aids_opened"] == 6 and by_app["crm"]["active_learners"] == 6
    assert "hr" not in by_app  # 2 people: merged into "(other)"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    daily = {r["day"]: r for r in adoption["tables"]["daily"]["rows"]}
    assert daily[today]["active_learners"] == 14
    # with a filter that leaves only the 2 hr people, their day is withheld
    resp = await client.get("/api/v1/admin/analytics/adoption?app=hr", headers=admin)
    daily = {r["day"]: r for r in (await resp.json())["tables"]["daily"]["rows"]}
    assert daily[today]["suppressed"] is True and daily[today]["aids_opened"] is None

    resp = await client.get("/api/v1/admin/analytics/adoption?from=2026-13-01", headers=admin)
    assert resp.status == 422
    resp = await client.get("/api/v1/admin/analytics/adoption?app=nope", headers=admin)
    assert resp.status == 422
    resp = await client.get("/api/v1/admin/analytics/nope", headers=admin)
    assert resp.status == 404


async def test_csv_export_and_dashboard_page(
    client: TestClient, tokens: TokenMaker, admin: dict[str, str], learner: dict[str, str]
) -> None:
    await _populate(client, tokens, 5, type_="search", query="=HYPERLINK(evil)", result_count=0)
    await _populate(client, tokens, 5, type_="panel_opened", app="crm")
    resp = await client.get("/api/v1/admin/analytics/gaps/no_results.csv", headers=admin)
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    text = await resp.text()
    lines = text.splitlines()
    assert lines[0] == "Query (normalized),Searches without results,Searches,People"
    assert lines[1] == "'=hyperlink(evil),5,5,5"  # formula-looking cells are quoted
    resp = await client.get("/api/v1/admin/analytics/gaps/nope.csv", headers=admin)
    assert resp.status == 404
    # every table of every report exports
    for report in ("adoption", "content", "gaps"):
        body = await (await client.get(f"/api/v1/admin/analytics/{report}", headers=admin)).json()
        for table in body["tables"]:
            url = f"/admin/analytics/{report}/{table}.csv"
            resp = await client.get(url, headers=admin)
            assert resp.status == 200, url
    # the page: admin only, with charts and CSV links
    assert (await client.get("/admin/analytics")).status == 401
    assert (await client.get("/admin/analytics", headers=learner)).status == 403
    assert (await client.get("/admin/analytics/gaps/no_results.csv", headers=learner)).status == 403
    resp = await client.get("/admin/analytics?app=crm", headers=admin)
    assert resp.status == 200
    html = await resp.text()
    assert html.count("<svg") == 5 and 'role="img"' in html and "<desc" in html
    assert "/admin/analytics/gaps/no_results.csv?from=" in html
    assert "<script" not in html


async def test_rollups_match_raw_counts(
    client: TestClient, tokens: TokenMaker, settings: Settings
) -> None:
    import random

    rng = random.Random(7)
    kinds = [
        lambda: ev("panel_opened", app="crm", context="crm-accounts"),
        lambda: ev("panel_opened", app="hr"),
        lambda: ev("aid_opened", app="crm", aid="crm-log-activity"),
        lambda: ev("aid_rated", aid="crm-log-activity", helpful=rng.random() < 0.5),
        lambda: ev(
            "search",
            app="hr",
            query=rng.choice(["pto", "PTO ", "leave"]),
            result_count=rng.choice([0, 3]),
        ),
        lambda: ev("suggestions_shown", app="crm", aids=["crm-log-activity", "crm-build-report"]),
        lambda: ev("signed_in"),
    ]
    sent: list[dict[str, Any]] = []
    for i in range(12):
        h = tokens.auth(sub=f"p{i % 7}", roles=("learner",))
        batch = [rng.choice(kinds)() for _ in range(rng.randint(1, 30))]
        batch += rng.sample(sent, min(3, len(sent)))  # retried events
        sent.extend(batch)
        assert (await post(client, h, batch)).status == 200
    with raw_db(settings) as db:
        raw = Counter((t, a) for t, a in db.execute("SELECT type, app FROM events"))
        rolled = Counter(
            {
                (m, a): n
                for m, a, n in db.execute(
                    "SELECT metric, app, SUM(n) FROM counts WHERE dim='app' GROUP BY metric, app"
                )
            }
        )
        assert raw == rolled
        assert sum(raw.values()) == len({e["id"] for e in sent})
        people = db.execute(
            "SELECT day, app, COUNT(DISTINCT user) FROM events GROUP BY day, app"
        ).fetchall()
        people_rolled = db.execute(
            "SELECT day, app, COUNT(DISTINCT user) FROM users WHERE dim='app' GROUP BY day, app"
        ).fetchall()
        assert people == people_rolled
        helpful = db.execute(
            "SELECT SUM(json_extract(data, '$.helpful')), COUNT(*) FROM events "
            "WHERE type='aid_rated'"
        ).fetchone()
        got = dict(
            db.execute(
                "SELECT metric, SUM(n) FROM counts WHERE dim='aid' AND metric IN "
                "('helpful','not_helpful') GROUP BY metric"
            ).fetchall()
        )
        assert got.get("helpful", 0) == helpful[0] or 0
        assert got.get("helpful", 0) + got.get("not_helpful", 0) == helpful[1]
        zero = db.execute(
            "SELECT COUNT(*) FROM events WHERE type='search' "
            "AND json_extract(data, '$.result_count') = 0"
        ).fetchone()[0]
        assert (
            db.execute(
                "SELECT COALESCE(SUM(n), 0) FROM counts WHERE dim='query' AND metric='zero_results'"
            ).fetchone()[0]
            == zero
        )


async def test_retention_purge(
    client: TestClient, learner: dict[str, str], settings: Settings
) -> None:
    assert (await post(client, learner, [ev("panel_opened", app="crm")])).status == 200
    # write old rows directly (the API refuses events older than 7 days)
    store = EventStore(settings.events_db_path)
    store.open_sync()
    try:
        from server.analytics.events import Event

        old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        events = [
            Event(
                str(uuid.uuid4()),
                "aid_rated",
                old,
                aid="crm-log-activity",
                helpful=True,
                comment="old",
            ),
            Event(str(uuid.uuid4()), "panel_opened", old, app="crm"),
        ]
        store.ingest_sync(events, "pseudo", lambda e: "{}")
    finally:
        store.close_sync()
    analytics = client.server.app[__import__("server.keys").keys.ANALYTICS]
    removed = await analytics.purge()
    assert removed["events"] == 2 and removed["comments"] == 1 and removed["outbox"] == 2
    assert removed["counts"] >= 3 and removed["users"] >= 2
    with raw_db(settings) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
        assert db.execute("SELECT MIN(day) FROM counts").fetchone()[0] >= "2021-01-01"
    # the CLI-callable function, with a retention that removes today's event as well
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    removed = purge_path(settings.events_db_path, 0, today=tomorrow)
    assert removed["events"] == 1


async def test_dashboard_page_without_a_session(
    client: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    """Browsers go to the console's sign-in and come back; API clients get 401 problem+json."""
    from urllib.parse import parse_qs, urlsplit

    from server import keys

    async def sign_in(token: str) -> None:
        """A console session, as the console's sign-in callback makes it."""
        app = client.server.app
        identity = await app[keys.AUTHENTICATOR].authenticate(token)
        store = app[keys.ADMIN_SESSIONS]
        sid, _ = await store.create(identity, {"access_token": token, "refresh_token": ""})
        client.session.cookie_jar.update_cookies({store.cookie_name: sid})

    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for path in ("/admin/analytics?from=2026-01-01&app=crm", "/admin/analytics/gaps/x.csv"):
        resp = await client.get(path, headers=browser, allow_redirects=False)
        assert resp.status == 303, path
        location = urlsplit(resp.headers["Location"])
        assert location.path == "/admin/login"
        assert parse_qs(location.query) == {"next": [path]}
    # an API client (no HTML asked for) and a refused bearer token: 401 problem+json
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {**browser, **{"Authorization": "Bearer x"}},
    ):
        resp = await client.get("/admin/analytics", headers=headers, allow_redirects=False)
        assert resp.status == 401, headers
        assert resp.content_type == "application/problem+json"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        body = await resp.json()
        assert body["status"] == 401 and "admin" in body["detail"]
    resp = await client.get("/admin/analytics", headers={"Accept": "application/json"})
    assert (await resp.json())["login"] == "/admin/login?next=%2Fadmin%2Fanalytics"
    # a valid token without the role: 403 problem+json
    learner = tokens.auth(sub="l-1", roles=("learner",))
    resp = await client.get("/admin/analytics", headers=learner)
    assert resp.status == 403 and resp.content_type == "application/problem+json"
    assert (await client.get("/admin/analytics", headers=admin)).status == 200
    # a console session: an author sees the console's 403 page, an admin the dashboard
    await sign_in(tokens.token(sub="author-1", roles=("author",)))
    resp = await client.get("/admin/analytics", headers=browser)
    assert resp.status == 403 and resp.content_type == "text/html"
    await sign_in(tokens.token(sub="admin-1", roles=("admin",)))
    resp = await client.get("/admin/analytics", headers=browser, allow_redirects=False)
    assert resp.status == 200 and "<svg" in await resp.text()
