"""Two nodes in step (server/follow.py, docs/scale-out.md): how soon an edit published on node one
is found by search on node two, and how fast a node that fell behind catches up.

    make postgres && .venv/bin/python bench/bench_follow.py [--aids 2000] [--edits 50]
        [--behind 500]

Two real apps (each with its own data folder and Whoosh index) in one process, on a new database
of the PostgreSQL of `make postgres` (INFLOW_TEST_PG_URL's role, default inflow_test, which may
create databases; the database is dropped at the end), with a synthetic library (bench/corpus.py).

- latency: `--edits` edits of one published aid through node one's admin API (PATCH, a new
  unique word in its body); from the moment the PATCH has answered until node two's
  /api/v1/search finds the word (polled every 2 ms). Prints p50, p99 and the worst, in ms.
- catch-up: both followers stopped, `--behind` aids edited on node one (one transaction each,
  through the storage), then one `Library.catch_up()` on node two, timed: change rows/s (each
  row names one aid, so the figure is bounded by the index's incremental write speed).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestClient, TestServer

from bench.corpus import make_aids, make_apps
from bench.pg import bench_database, node_settings
from server import keys
from server.app import create_app
from server.settings import AuthSettings, Settings
from server.storage import Changes, Storage
from tests.tokens import ISSUER, TokenMaker

A = "/api/v1/admin"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def seed(url: str, n_aids: int) -> None:
    rng = random.Random(15)
    aids = list(make_aids(n_aids, max(1, n_aids // 200), rng, words=200))
    by_app: dict[str, list[str]] = {}
    for a in aids:
        if a.status == "published" and not a.audience:
            by_app.setdefault(a.apps[0], []).append(a.id)
    apps = make_apps(max(50, n_aids // 4), rng, by_app)
    storage = Storage(Path("unused"), url=url)
    storage.open_sync()
    try:
        storage.import_sync(apps, aids, "bench")
    finally:
        storage.close_sync()


async def run(url: str, data: Path, edits: int, behind: int) -> None:
    tokens = TokenMaker.create()
    auth = AuthSettings(jwks_file=tokens.write_jwks(data / "jwks.json"), issuer=ISSUER)
    author = tokens.auth(sub="bench", roles=("learner", "author", "admin"))

    def settings(node: str) -> Settings:
        return node_settings(
            url,
            data,
            auth,
            node,
            rate_limit_subject_per_second=0.0,  # the bench polls search every 2 ms
            rate_limit_address_per_second=0.0,
        )

    async with (
        TestClient(TestServer(create_app(settings("one")))) as one,
        TestClient(TestServer(create_app(settings("two")))) as two,
    ):
        follower = two.app[keys.FOLLOWER]
        while not follower.connected:
            await asyncio.sleep(0.01)
        library_two = two.app[keys.LIBRARY]
        target = next(
            a
            for a in library_two.catalog.aids.values()
            if a.status == "published" and not a.audience
        )
        url_aid = f"{A}/aids/{target.id}"
        resp = await one.get(url_aid, headers=author)
        etag = resp.headers["ETag"]
        rebuilds = library_two.rebuilds
        latencies: list[float] = []
        for i in range(edits):
            word = f"zqx{uuid.uuid4().hex[:10]}"
            resp = await one.patch(
                url_aid,
                json={"body": f"Edited {i}: {word}."},
                headers={**author, "If-Match": etag},
            )
            assert resp.status == 200, await resp.text()
            etag = resp.headers["ETag"]
            start = time.perf_counter()
            while True:
                found = await two.get("/api/v1/search", params={"q": word}, headers=author)
                assert found.status == 200, await found.text()
                if (await found.json())["results"]:
                    break
                if time.perf_counter() - start > 30:
                    raise SystemExit(f"edit {i} not visible on node two after 30 s")
                await asyncio.sleep(0.002)
            latencies.append((time.perf_counter() - start) * 1000)
        print(
            f"publish on node one -> found on node two ({edits} edits): "
            f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
            f"worst {max(latencies):.1f} ms; node two rebuilds: {library_two.rebuilds - rebuilds}"
        )

        await follower.stop()
        await one.app[keys.FOLLOWER].stop()  # node one would apply the same rows meanwhile
        storage_one = one.app[keys.LIBRARY].storage
        ids = sorted(library_two.catalog.aids)[:behind]

        def edit_all() -> None:
            for n, aid_id in enumerate(ids):
                aid = storage_one.get_aid_sync(aid_id)

                def op(ch: Changes, aid: object = aid, n: int = n) -> None:
                    edited = replace(aid, summary=f"{aid.summary} (catch-up {n})")  # type: ignore[type-var]
                    storage_one.save_aid_tx(edited, "bench", ch)

                storage_one.write_sync(op)

        start = time.perf_counter()
        await storage_one.call(edit_all)
        wrote = time.perf_counter() - start
        start = time.perf_counter()
        applied = await library_two.catch_up()
        took = time.perf_counter() - start
        print(
            f"catch-up after {applied} change rows ({wrote:.1f} s to write them on node one): "
            f"{took:.2f} s, {applied / took:.0f} changes/s; rebuilds: "
            f"{library_two.rebuilds - rebuilds}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aids", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--behind", type=int, default=500)
    args = parser.parse_args()
    with bench_database("bench_follow") as url:
        seed(url, args.aids)
        print(f"two nodes on PostgreSQL, {args.aids} aids")
        with tempfile.TemporaryDirectory(prefix="bench-follow-") as tmp:
            asyncio.run(run(url, Path(tmp), args.edits, args.behind))


if __name__ == "__main__":
    main()
