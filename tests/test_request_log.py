"""The debug request log (INFLOW_REQUEST_LOG) records API requests without breaking them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from server.app import create_app


async def test_logged_requests_still_reach_their_handlers(aiohttp_client: Any, make_settings: Any,
                                                          learner: Any, tmp_path: Path) -> None:
    """Incident guarded: with the log on, the events route read an already-drained body and
    answered 400 "not valid JSON" to every batch, so the extension queued events forever."""
    log = tmp_path / "requests.jsonl"
    client = await aiohttp_client(create_app(make_settings(request_log=log)))
    event = {"id": str(uuid.uuid4()), "type": "signed_in",
             "at": dt.datetime.now(dt.UTC).isoformat()}
    resp = await client.post("/api/v1/events", json={"events": [event]}, headers=learner)
    assert resp.status in {200, 202}, await resp.text()
    assert (await resp.json())["accepted"] == 1
    page = {"url": "http://127.0.0.1/demo/crm/", "title": "Pipeline"}
    resp = await client.post("/api/v1/suggest", json=page, headers=learner)
    assert resp.status == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["method"], r["path"]) for r in lines] == [
        ("POST", "/api/v1/events"), ("POST", "/api/v1/suggest")]
    assert json.loads(lines[1]["body"]) == page
    assert all("Bearer" not in line for line in log.read_text().splitlines())
