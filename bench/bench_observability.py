"""What observability costs (server/logs.py, server/metrics.py, docs/operations.md).

    .venv/bin/python bench/bench_observability.py [--n 2000]

The real app on the demo content (temporary data folder, forged tokens, no Keycloak): sequential
GET /api/v1/aids/{id} as a learner with metrics off and on (the request middleware, request id and
request log line are always there; the log line is built only when INFO is on, as under `inflow
serve`, so it is measured with a handler writing to /dev/null), then the time of one scrape of
/metrics (database counts refreshed each time, and cached). Prints medians and p99 in µs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.logs import make_handler
from server.settings import AuthSettings, Settings
from tests.conftest import DEMO
from tests.tokens import ISSUER, TokenMaker

AIDS = ["crm-build-report", "crm-create-opportunity", "crm-account-hierarchy"]


def summary(name: str, samples_ns: list[int]) -> str:
    us = sorted(s / 1000 for s in samples_ns)
    p99 = us[min(len(us) - 1, int(len(us) * 0.99))]
    return f"{name:<44} median {statistics.median(us):8.1f} µs   p99 {p99:8.1f} µs   (n={len(us)})"


async def requests(settings: Settings, headers: dict[str, str], n: int) -> list[int]:
    async with TestClient(TestServer(create_app(settings))) as client:
        for aid in AIDS:  # warm: caches, first renders
            await client.get(f"/api/v1/aids/{aid}", headers=headers)
        out = []
        for i in range(n):
            start = time.perf_counter_ns()
            resp = await client.get(f"/api/v1/aids/{AIDS[i % len(AIDS)]}", headers=headers)
            await resp.read()
            out.append(time.perf_counter_ns() - start)
            assert resp.status == 200
        return out


async def scrapes(settings: Settings, headers: dict[str, str], n: int) -> tuple[list[int], int]:
    async with TestClient(TestServer(create_app(settings))) as client:
        for aid in AIDS:
            await client.get(f"/api/v1/aids/{aid}", headers=headers)
        out, size = [], 0
        for _ in range(n):
            start = time.perf_counter_ns()
            resp = await client.get("/metrics")
            body = await resp.read()
            out.append(time.perf_counter_ns() - start)
            size = len(body)
        return out, size


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tokens = TokenMaker.create()
        auth = AuthSettings(jwks_file=tokens.write_jwks(root / "jwks.json"), issuer=ISSUER)
        headers = tokens.auth(sub="bench", roles=("learner",))

        def settings(name: str, **changes: object) -> Settings:
            base = Settings(
                data_dir=root / name,
                content_dir=DEMO,
                auth=auth,
                jobs=False,
                rate_limit_subject_per_second=0,
                rate_limit_address_per_second=0,
            )
            return base.with_(**changes)

        devnull = open(os.devnull, "w")  # noqa: SIM115 (closed below)
        root_logger = logging.getLogger()
        handler = make_handler("json", devnull)
        root_logger.addHandler(handler)
        root_logger.setLevel(logging.INFO)
        try:
            off = await requests(settings("off"), headers, n)
            on = await requests(settings("on", metrics=True), headers, n)
            print(summary("GET /api/v1/aids/{id}, metrics off", off))
            print(summary("GET /api/v1/aids/{id}, metrics on", on))
            fresh, size = await scrapes(
                settings("s1", metrics=True, metrics_cache_seconds=0), headers, 50
            )
            cached, _ = await scrapes(settings("s2", metrics=True), headers, 50)
            print(summary("GET /metrics, database counted each time", fresh))
            print(summary("GET /metrics, counts cached (5 s)", cached))
            print(f"/metrics answer: {size} bytes")
        finally:
            root_logger.removeHandler(handler)
            devnull.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    asyncio.run(main(parser.parse_args().n))
