"""Feedback under the analytics privacy rules (docs/analytics.md), issue 9's last finding.

Incident: the `feedback` table kept the raw `issuer|subject` of whoever rated an aid, the full page
URL (query strings included: account names, e-mail addresses) and the comment, forever, while the
analytics events promise pseudonyms, no URLs and a retention period.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from server import keys
from server.analytics.pseudonym import Pseudonymizer, load_key
from server.app import create_app
from server.storage import Storage
from tests.conftest import ROOT
from tests.fixtures.content_db import CONTENT_V0, V0_FEEDBACK, V0_ISSUER, load_dump
from tests.tokens import ISSUER

PAGE = "http://127.0.0.1:8080/demo/crm/opportunities/new?account=ACME&email=jo@example.com"


def _feedback_rows(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM feedback ORDER BY id")]
    finally:
        conn.close()


async def test_a_new_feedback_row_holds_no_subject_and_no_url(
    aiohttp_client: Any, settings: Any, learner: dict[str, str]
) -> None:
    app = create_app(settings)
    client = await aiohttp_client(app)
    resp = await client.post(
        "/api/v1/feedback",
        json={
            "aid_id": "crm-create-opportunity",
            "helpful": True,
            "url": PAGE,
            "comment": "Saved me ten minutes",
        },
        headers=learner,
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["totals"] == {"helpful": 1, "not_helpful": 0}

    [row] = _feedback_rows(settings.db_path)
    stored = json.dumps(row)
    assert "learner-1" not in stored and ISSUER not in stored
    assert "example.com" not in stored and "/demo/crm" not in stored and "url" not in row
    # the person is the same pseudonym the analytics events get; the page is its app and context
    assert row["user_key"] == app[keys.ANALYTICS].pseudonym(ISSUER, "learner-1")
    assert (row["app_id"], row["context_id"]) == ("crm", "crm-opportunity-new")
    assert row["comment"] == "Saved me ten minutes"


async def test_migrated_feedback_rows_are_pseudonymized_and_lose_their_urls(tmp_path: Path) -> None:
    db = load_dump(CONTENT_V0, tmp_path / "data" / "inflow.sqlite3")
    assert {r["id"]: (r["user_key"], r["url"]) for r in _feedback_rows(db)}[1][0] == V0_FEEDBACK[1][
        0
    ]
    storage = Storage(db, analytics_secret="a-configured-analytics-secret")
    await storage.open()
    await storage.close()

    pseudonym = Pseudonymizer(b"a-configured-analytics-secret")  # the configured key wins
    rows = _feedback_rows(db)
    assert [r["id"] for r in rows] == [1, 2, 3]
    for row in rows:
        key, url = V0_FEEDBACK[row["id"]]
        subject = key.rpartition("|")[2]
        assert row["user_key"] == pseudonym(V0_ISSUER, subject)
        stored = json.dumps(row)
        assert subject not in stored and V0_ISSUER not in stored
        assert "url" not in row and (not url or url not in stored)
        assert (row["app_id"], row["context_id"]) == ("", "")  # not derived from old URLs
    assert rows[0]["comment"] == "Saved me ten minutes"  # the feedback itself is kept


async def test_feedback_older_than_the_retention_is_purged_with_the_events(
    aiohttp_client: Any, make_settings: Any, learner: dict[str, str]
) -> None:
    settings = make_settings(analytics_retention_days=30, analytics_purge_interval_seconds=0)
    app = create_app(settings)
    client = await aiohttp_client(app)
    for helpful in (True, False):
        resp = await client.post(
            "/api/v1/feedback",
            json={"aid_id": "crm-create-opportunity", "helpful": helpful},
            headers=learner,
        )
        assert resp.status == 201
    conn = sqlite3.connect(settings.db_path)
    conn.execute("UPDATE feedback SET created_at='2020-03-01T10:00:00Z' WHERE id=1")
    conn.commit()
    conn.close()

    removed = await app[keys.ANALYTICS].purge()
    assert removed["feedback"] == 1
    assert [r["id"] for r in _feedback_rows(settings.db_path)] == [2]
    assert await app[keys.LIBRARY].storage.feedback_counts("crm-create-opportunity") == (0, 1)


def test_the_purge_command_purges_feedback_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    load_dump(CONTENT_V0, data / "inflow.sqlite3")  # row 3 is from 2025-01-15
    today = dt.datetime.now(dt.UTC).date()
    days = (today - dt.date(2025, 1, 15)).days - 1  # row 3 is one day past the retention
    out = subprocess.run(
        [sys.executable, "-m", "server.analytics", "purge", "--days", str(days)],
        cwd=ROOT,
        env={"INFLOW_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout)["removed"]["feedback"] == 1
    assert [r["id"] for r in _feedback_rows(data / "inflow.sqlite3")] == [1, 2]
    assert load_key("", data)  # the migration pseudonymized with the data directory's key
