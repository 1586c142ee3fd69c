"""The debug request log (INFLOW_REQUEST_LOG) records API requests without breaking them."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

from server.app import create_app


async def test_logged_requests_still_reach_their_handlers(
    aiohttp_client: Any, make_settings: Any, learner: Any, tmp_path: Path
) -> None:
    """Incident guarded: with the log on, the events route read an already-drained body and
    answered 400 "not valid JSON" to every batch, so the extension queued events forever."""
    log = tmp_path / "requests.jsonl"
    client = await aiohttp_client(create_app(make_settings(request_log=log)))
    event = {
        "id": str(uuid.uuid4()),
        "type": "signed_in",
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }
    resp = await client.post("/api/v1/events", json={"events": [event]}, headers=learner)
    assert resp.status in {200, 202}, await resp.text()
    assert (await resp.json())["accepted"] == 1
    page = {"url": "http://127.0.0.1/demo/crm/", "title": "Pipeline"}
    resp = await client.post("/api/v1/suggest", json=page, headers=learner)
    assert resp.status == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["method"], r["path"]) for r in lines] == [
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/suggest"),
    ]
    assert json.loads(lines[1]["body"]) == page
    assert all("Bearer" not in line for line in log.read_text().splitlines())


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


async def test_archive_import_works_with_the_log_on(
    aiohttp_client: Any, make_settings: Any, admin: Any, tmp_path: Path
) -> None:
    """Incident guarded (issue 9): with INFLOW_REQUEST_LOG set, POST /api/v1/admin/import
    answered 422 "empty file": the log read the body through aiohttp's cache, and the import's
    own copy of the size-limited reader then streamed the already drained request.content.
    One reader (server/body.py) keeps the bytes for both."""
    log = tmp_path / "requests.jsonl"
    client = await aiohttp_client(create_app(make_settings(request_log=log)))
    archive = _zip(
        {
            "aids/logged-import.md": (
                b"---\nid: logged-import\ntitle: Imported with the log on\napps: [hr]\n"
                b"status: published\n---\nIt arrived whole.\n"
            )
        }
    )
    resp = await client.post(
        "/api/v1/admin/import?filename=ci.zip",
        data=archive,
        headers={**admin, "Content-Type": "application/zip"},
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["aids_created"] == ["logged-import"]
    resp = await client.get("/api/v1/aids/logged-import", headers=admin)
    assert resp.status == 200
    # the log holds the request; a body over the app's limit is not copied into it
    big = _zip(
        {
            f"aids/big-{i}.md": b"---\nid: big-%d\ntitle: Big\napps: [hr]\n---\n" % i
            + b"x" * 150_000
            for i in range(2)
        }
    )
    assert len(big) > make_settings().max_body_bytes
    resp = await client.post(
        "/api/v1/admin/import", data=big, headers={**admin, "Content-Type": "application/zip"}
    )
    assert resp.status == 200, await resp.text()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    imports = [r for r in lines if r["path"] == "/api/v1/admin/import"]
    assert len(imports) == 2 and "bytes, not logged" in imports[1]["body"]
