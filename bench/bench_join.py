"""A new node joins (server/snapshots.py, docs/scale-out.md "A new node joins"): how long a node
with an empty data folder takes to be ready at 100k aids, from a snapshot, against a full rebuild.

    make postgres && .venv/bin/python bench/bench_join.py [--aids 100000] [--behind 200]

On a new database of the PostgreSQL of `make postgres` (INFLOW_TEST_PG_URL's role, default
inflow_test, which may create databases; dropped at the end), with a synthetic library
(bench/corpus.py) imported through the content store in batches:

1. node one starts with an empty data folder and no snapshot: the full rebuild (start -> ready);
2. node one publishes a snapshot (export, tar, chunks into the database): time and size;
3. `--behind` aids are edited after the snapshot (one transaction each), for the catch-up;
4. node two starts with an empty data folder: start -> ready (the index installed from the
   snapshot and caught up; its first search answered), which should stay under 60 s;
5. the archive format: a plain tar against gzip level 1 of the same generation (size, pack and
   unpack time), which is why snapshots are plain tars.

Both nodes are real apps (create_app, every start-up context) in this one process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bench.corpus import make_aids, make_apps
from bench.pg import bench_database, node_settings
from server import keys
from server.app import create_app
from server.models import Aid
from server.settings import AuthSettings, Settings
from server.snapshots import pack, publish_snapshot, unpack
from server.storage import Changes, Storage
from tests.tokens import ISSUER, TokenMaker

BATCH = 10_000  # aids per import transaction


def seed(url: str, n_aids: int) -> None:
    start = time.perf_counter()
    rng = random.Random(15)
    n_apps = max(1, n_aids // 50)
    aids = list(make_aids(n_aids, n_apps, rng))
    by_app: dict[str, list[str]] = {}
    for a in aids:
        if a.status == "published" and not a.audience:
            by_app.setdefault(a.apps[0], []).append(a.id)
    apps = make_apps(n_apps * 50, rng, by_app)
    storage = Storage(Path("unused"), url=url)
    storage.open_sync()
    try:
        for i in range(0, len(aids), BATCH):
            storage.import_sync(apps if i == 0 else [], aids[i : i + BATCH], "bench")
    finally:
        storage.close_sync()
    print(
        f"database: {n_aids} aids, {len(apps)} apps imported in {time.perf_counter() - start:.0f} s"
    )


def edit(storage: Storage, ids: list[str]) -> None:
    """One content transaction per aid (what authors' edits on another node look like)."""
    for n, aid_id in enumerate(ids):
        aid = storage.get_aid_sync(aid_id)

        def op(ch: Changes, aid: Aid = aid, n: int = n) -> None:
            storage.save_aid_tx(
                replace(aid, summary=f"{aid.summary} (after the snapshot {n})"), "bench", ch
            )

        storage.write_sync(op)


def formats(data: Path, work: Path) -> None:
    """A plain tar and gzip level 1 of the same exported generation."""
    gen = next(p for p in (data / "index").iterdir() if p.name.startswith("gen-"))
    size = sum(p.stat().st_size for p in gen.iterdir())
    print(
        f"archive format (the generation: {size / 1e6:.0f} MB in {len(list(gen.iterdir()))} files):"
    )
    for level in (0, 1):
        archive = work / f"index-{level}.tar"
        start = time.perf_counter()
        pack(gen, archive, level)
        packed = time.perf_counter() - start
        start = time.perf_counter()
        unpack(archive, work / f"unpacked-{level}")
        unpacked = time.perf_counter() - start
        what = "plain tar" if level == 0 else "gzip level 1"
        print(
            f"  {what:13} {archive.stat().st_size / 1e6:7.1f} MB, pack {packed:5.1f} s, "
            f"unpack {unpacked:5.1f} s"
        )


async def first_search(
    client: TestClient[web.Request, web.Application], tokens: TokenMaker
) -> None:
    who = tokens.auth(sub="bench", roles=("learner",))  # made now: a token lives 5 minutes
    resp = await client.get("/api/v1/search", params={"q": "expense approval"}, headers=who)
    assert resp.status == 200, await resp.text()


async def run(url: str, data: Path, behind: int) -> None:
    tokens = TokenMaker.create()
    auth = AuthSettings(jwks_file=tokens.write_jwks(data / "jwks.json"), issuer=ISSUER)

    def settings(node: str) -> Settings:
        return node_settings(url, data, auth, node)

    start = time.perf_counter()
    async with TestClient(TestServer(create_app(settings("one")))) as one:
        await first_search(one, tokens)
        rebuild = time.perf_counter() - start
        library_one = one.app[keys.LIBRARY]
        print(f"node one, empty data folder, no snapshot: full rebuild, ready in {rebuild:.1f} s")

        start = time.perf_counter()
        snapshot = await publish_snapshot(library_one, "one")
        assert snapshot is not None
        published = time.perf_counter() - start
        print(
            f"snapshot published in {published:.1f} s: {snapshot.size / 1e6:.1f} MB "
            f"({snapshot.doc_count} aids, {-(-snapshot.size // (8 << 20))} chunks of 8 MB)"
        )
        storage = library_one.storage
        ids = sorted(library_one.catalog.aids)[:behind]
        start = time.perf_counter()
        await storage.call(edit, storage, ids)
        print(f"{behind} aids edited after the snapshot in {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        async with TestClient(TestServer(create_app(settings("two")))) as two:
            await first_search(two, tokens)
            joined = time.perf_counter() - start
            library_two = two.app[keys.LIBRARY]
            agreement = await library_two.agreement()
            print(
                f"node two, empty data folder: joined from the snapshot + {behind} changes, ready "
                f"in {joined:.1f} s (target < 60 s; full rebuild {rebuild:.1f} s, "
                f"{rebuild / joined:.1f}x); rebuilds: {library_two.rebuilds}; "
                f"agrees with the database: {agreement['ok']}"
            )
    with tempfile.TemporaryDirectory(prefix="bench-join-formats-", dir=data) as work:
        formats(data / "two", Path(work))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aids", type=int, default=100_000)
    parser.add_argument("--behind", type=int, default=200)
    args = parser.parse_args()
    # what the nodes say about their start (which path, how long): indented under the figures
    logging.basicConfig(level=logging.WARNING, format="    log: %(message)s", stream=sys.stdout)
    for name in ("server.snapshots", "server.library"):
        logging.getLogger(name).setLevel(logging.INFO)
    with bench_database("bench_join") as url:
        seed(url, args.aids)
        with tempfile.TemporaryDirectory(prefix="bench-join-") as tmp:
            asyncio.run(run(url, Path(tmp), args.behind))


if __name__ == "__main__":
    main()
