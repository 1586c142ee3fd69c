"""Log formats (server/logs.py): INFLOW_LOG_FORMAT=json writes one JSON object per line with the
request id, and `inflow serve` sets it up."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.logs import make_handler, setup_logging
from server.settings import Settings, load_settings
from tests.conftest import ROOT


@pytest.fixture
def json_lines() -> Any:
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_json_lines_carry_time_level_logger_message_request_id_and_extras(
    aiohttp_client: Any, make_settings: Callable[..., Settings], json_lines: io.StringIO
) -> None:
    """Each record is one parseable JSON object; the request line has the request's id and its
    fields (method, path, status, duration_ms); an exception comes with its traceback."""
    client = await aiohttp_client(create_app(make_settings()))
    resp = await client.get("/api/v1/nothing", headers={"X-Request-Id": "json-1"})
    assert resp.status == 404
    try:
        raise ValueError("a bad value")
    except ValueError:
        logging.getLogger("tests.json").exception("it failed", extra={"aid": "crm-build-report"})
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    request = next(r for r in lines if r["logger"] == "inflow.request")
    assert request["request_id"] == "json-1"
    assert request["level"] == "INFO"
    assert request["message"].startswith("GET /api/v1/nothing 404 ")
    assert request["method"] == "GET" and request["status"] == 404
    assert request["path"] == "/api/v1/nothing" and request["duration_ms"] >= 0
    assert request["time"].endswith("Z")
    failed = next(r for r in lines if r["logger"] == "tests.json")
    assert failed["level"] == "ERROR" and failed["message"] == "it failed"
    assert failed["aid"] == "crm-build-report"
    assert failed["request_id"] == "-"
    assert "ValueError: a bad value" in failed["exception"]


def test_the_log_format_setting_is_read_and_checked() -> None:
    assert load_settings(env={"INFLOW_LOG_FORMAT": "json"}).log_format == "json"
    assert load_settings(env={}).log_format == "text"
    with pytest.raises(ValueError, match="text, json"):
        make_handler("xml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_inflow_serve_writes_json_lines_with_request_ids(tmp_path: Path, tokens: Any) -> None:
    """`inflow serve` with INFLOW_LOG_FORMAT=json: every line on stderr is JSON, and the request
    line of a request names its X-Request-Id (aiohttp's own access log is off: no duplicate)."""
    port = _free_port()
    env = {
        **os.environ,
        "INFLOW_LOG_FORMAT": "json",
        "INFLOW_DATA_DIR": str(tmp_path / "data"),
        "INFLOW_SERVE_DEMO": "0",
        "INFLOW_JOBS": "0",
        "INFLOW_AUTH_JWKS_FILE": str(tokens.write_jwks(tmp_path / "jwks.json")),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        for _ in range(600):  # start-up: up to a minute on a busy machine
            try:
                req = urllib.request.Request(url, headers={"X-Request-Id": "serve-1"})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    assert resp.headers["X-Request-Id"] == "serve-1"
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "the server wrote nothing"
    records = [json.loads(line) for line in lines]  # every line is JSON
    mine = [r for r in records if r["request_id"] == "serve-1"]
    assert [r["logger"] for r in mine] == ["inflow.request"], mine
    assert mine[0]["message"].startswith("GET /healthz 200 ")
    assert not any(r["logger"] == "aiohttp.access" for r in records)


def test_logging_set_up_by_the_host_process_is_kept() -> None:
    """Tests call `inflow import` in-process: its logging set-up replaced pytest's capture
    handlers and left a handler writing to one test's closed capture stream (a 'Logging error'
    in every later test). Like basicConfig, it now leaves a configured root logger alone."""
    root = logging.getLogger()
    before = list(root.handlers)
    assert before  # pytest's own
    setup_logging("json")
    assert root.handlers == before
