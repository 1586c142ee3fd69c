"""Property-based API tests: schemathesis generates requests from the OpenAPI document and runs
them against the live server (a real subprocess), checking that nothing answers 5xx and that every
answer matches the document (status codes, content types, body schemas)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from server.openapi import document
from tests.conftest import DEMO, ROOT
from tests.tokens import TokenMaker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, tokens: TokenMaker) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("live")
    port = _free_port()
    env = {
        **os.environ,
        "INFLOW_DATA_DIR": str(tmp / "data"),
        "INFLOW_CONTENT_DIR": str(DEMO),
        "INFLOW_AUTH_JWKS_FILE": str(tokens.write_jwks(tmp / "jwks.json")),
        "INFLOW_AUTH_ISSUER": tokens.issuer,
        # Hundreds of requests a second from one token and address: rate limits off here
        # (tests/test_ratelimit.py tests them).
        "INFLOW_RATE_LIMIT_SUBJECT_PER_SECOND": "0",
        "INFLOW_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not become ready")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def api_schema(live_server: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server}/api/v1/openapi.json")


# Every operation of the document, read from the same function the server serves it from.
OPERATIONS = sorted(
    (method.upper(), path)
    for path, ops in document()["paths"].items()
    for method in ops
    if path != "/api/v1/openapi.json" and (path.startswith("/api/") or path.endswith("z"))
)


# Driven through hypothesis directly: schemathesis' pytest plugin does not run on pytest 9 yet.
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_api_matches_its_document(
    api_schema: schemathesis.BaseSchema, tokens: TokenMaker, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    roles = ("learner", "author", "admin") if "/admin/" in path else ("learner",)
    headers = {"Authorization": f"Bearer {tokens.token(roles=roles)}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers=headers,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )

    run()
