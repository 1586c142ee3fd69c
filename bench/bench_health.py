"""Benchmark link health's three costs: finding the links of every published aid, checking URLs
through the safe fetcher, and writing the results.

- extraction: N synthetic aid bodies (~2 kB of Markdown each, links of every kind, code spans) run
  through `published_links`, as a run does in the default executor;
- checking: U URLs on a real aiohttp server on 127.0.0.1 (half answer HEAD, half only GET) through
  a real SafeFetcher, with no politeness pause (the pause, 1 s a host by default, is what bounds a
  real run: U URLs on one host take about U seconds);
- writing: R results into a real content database (the storage thread, transactions of 500),
  then a second run over the same rows (updates, failing_since carried), then pruning half.

Run: .venv/bin/python bench/bench_health.py [--aids 10000] [--urls 1000] [--rows 50000]
Target: a 10,000-aid library's links found in seconds; writing is never the slow part.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.fetch import FetchPolicy, SafeFetcher
from server.health.links import _prune, _write_chunk, check_all, published_links
from server.health.models import LinkCheck
from server.peer.store import PeerStore
from server.storage import Storage, now_iso

WORDS = [
    "invoice",
    "vendor",
    "approve",
    "submit",
    "policy",
    "receipt",
    "ledger",
    "shift",
    "roster",
    "report",
]


def body(rng: random.Random, i: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(250))
    return (
        f"# Aid {i}\n\n{text[:600]} [the form](https://forms.example.com/f/{i % 300}) and "
        f"<https://wiki.example.com/page/{i % 500}>.\n\n- see https://docs.example.com/x/{i}.\n"
        f"- ![chart](https://img.example.com/{i % 50}.png)\n\n`https://code.example/{i}`\n\n"
        f"{text[600:]}\n\n[ref]: https://ref.example.com/{i % 100}\n"
    )


def bench_extraction(n: int) -> None:
    rng = random.Random(7)
    rows = [(f"aid-{i}", body(rng, i), f"https://src.example.com/{i}") for i in range(n)]
    started = time.perf_counter()
    links = published_links(rows)
    took = time.perf_counter() - started
    total = sum(len(v) for v in links.values())
    unique = len({u for v in links.values() for u, _ in v})
    print(
        f"extraction: {n} aids, {total} links ({unique} URLs) in {took:.2f} s "
        f"({n / took:,.0f} aids/s)"
    )


async def bench_checking(urls: int) -> None:
    async def page(request: web.Request) -> web.Response:
        if request.method == "HEAD" and request.match_info["n"].endswith(("1", "3", "5")):
            return web.Response(status=405)
        return web.Response(text="<h1>fine</h1>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/p/{n}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    policy = FetchPolicy(allow_private=True, robots=True, max_bytes=1_000_000, timeout=20)
    try:
        async with SafeFetcher(user_agent="bench", per_host=2, defaults=policy) as fetcher:
            wanted = [f"http://127.0.0.1:{port}/p/{i}" for i in range(urls)]
            started = time.perf_counter()
            found = await check_all(fetcher, wanted, policy, delay=0.0)
            took = time.perf_counter() - started
    finally:
        await runner.cleanup()
    ok = sum(1 for o in found.values() if o.status == "ok")
    print(
        f"checking: {urls} URLs on one host (30% HEAD refused, then GET), {ok} ok, "
        f"in {took:.2f} s ({urls / took:,.0f} URLs/s, no pause; with the default 1 s pause "
        f"~{urls:,} s)"
    )


async def bench_writing(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        storage = Storage(Path(tmp) / "inflow.sqlite3")
        await storage.open()
        store = PeerStore(storage)
        try:
            stamp = now_iso()
            fresh = [
                LinkCheck(
                    aid_id=f"aid-{i // 5}",
                    url=f"https://x.example/{i}",
                    status="broken" if i % 10 == 0 else "ok",
                    http_status=404 if i % 10 == 0 else 200,
                    checked_at=stamp,
                )
                for i in range(rows)
            ]
            for label in ("first run (inserts)", "second run (updates)"):
                started = time.perf_counter()
                for i in range(0, rows, 500):
                    await store.transaction(partial(_write_chunk, rows=fresh[i : i + 500]))
                took = time.perf_counter() - started
                print(f"writing, {label}: {rows} rows in {took:.2f} s ({rows / took:,.0f}/s)")
            keep = {(r.aid_id, r.url) for r in fresh[: rows // 2]}
            started = time.perf_counter()
            removed = await store.transaction(lambda tx: _prune(tx, keep))
            print(f"pruning: {removed} rows in {time.perf_counter() - started:.2f} s")
        finally:
            await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aids", type=int, default=10_000)
    parser.add_argument("--urls", type=int, default=1_000)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    bench_extraction(args.aids)
    asyncio.run(bench_checking(args.urls))
    asyncio.run(bench_writing(args.rows))


if __name__ == "__main__":
    main()
