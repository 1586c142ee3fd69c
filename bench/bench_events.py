"""Analytics: event ingestion rate into SQLite, and dashboard time over 10 million events.

    .venv/bin/python bench/bench_events.py [--events 200000] [--http-events 50000] [--days 365]

1. Through the store (EventStore.ingest_sync, batches of 500, one transaction each, rollups and
   the xAPI outbox in the same transaction): sustained events/s.
2. Through HTTP (POST /api/v1/events, batches of 500, 4 concurrent clients, the real app with
   forged-token auth, in one process with the client): events/s.
3. Dashboards over the rollups of 10 million events. The daily rollup rows that 10M events over
   `--days` days would produce (~27k events/day from 2,000 active people among 6,000, 12 apps,
   400 aids) are generated directly and added through `add_rollups`, the function ingestion uses
   (so the week/month counts and people bitmaps are built as ingestion builds them; inserting 10M
   raw events would only take longer and the dashboards never read them). Then each report is
   timed for 30, 90 and 365-day ranges ending today, and the whole page (three reports) for the
   longest range with the most single-day edges.

`make bench` runs it with `--events 50000 --http-events 20000 --total 3000000` (under 2 minutes);
the figures in docs/analytics.md are from the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.analytics.events import Event, normalize_query  # noqa: E402
from server.analytics.periods import plan  # noqa: E402
from server.analytics.reports import REPORTS, AidInfo, CatalogView, ContextInfo, Filters  # noqa: E402
from server.analytics.store import EventStore, add_rollups  # noqa: E402
from server.db.engine import begin_immediate, commit  # noqa: E402

APPS = [f"app{i}" for i in range(12)]
AIDS = [f"aid{i}" for i in range(400)]
CONTEXTS = {f"ctx{i}": APPS[i % len(APPS)] for i in range(120)}
QUERIES = [f"query {i}" for i in range(3000)]


def random_event(rng: random.Random, at: dt.datetime) -> Event:
    kind = rng.random()
    app = rng.choice(APPS)
    eid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if kind < 0.35:
        ctx = rng.choice([c for c, a in CONTEXTS.items() if a == app] + [""])
        return Event(eid, "panel_opened", at, app=app, context=ctx)
    if kind < 0.6:
        return Event(eid, "suggestions_shown", at, app=app, aids=tuple(rng.sample(AIDS, 5)))
    if kind < 0.85:
        return Event(eid, "aid_opened", at, app=app, aid=rng.choice(AIDS))
    if kind < 0.9:
        return Event(
            eid,
            "aid_rated",
            at,
            app=app,
            aid=rng.choice(AIDS),
            helpful=rng.random() < 0.7,
            comment="ok" if rng.random() < 0.2 else "",
        )
    if kind < 0.98:
        return Event(
            eid,
            "search",
            at,
            app=app,
            query=normalize_query(rng.choice(QUERIES)),
            result_count=rng.choice([0, 0, 1, 5, 10]),
        )
    return Event(eid, "signed_in", at)


def bench_store(workdir: Path, n: int) -> None:
    rng = random.Random(1)
    store = EventStore(workdir / "store.sqlite3")
    store.open_sync()
    now = dt.datetime.now(dt.UTC)
    users = [f"{rng.getrandbits(128):032x}" for _ in range(2000)]
    batches = []
    for _ in range(n // 500):
        batches.append([random_event(rng, now) for _ in range(500)])
    t0 = time.perf_counter()
    for batch in batches:
        store.ingest_sync(batch, rng.choice(users), lambda e: '{"statement":"x' + e.id + '"}')
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    dup = store.ingest_sync(batches[0], users[0])
    dup_s = time.perf_counter() - t1
    store.close_sync()
    print(
        f"store ingestion      {n / elapsed:10,.0f} events/s  ({n:,} events, batches of 500, "
        f"rollups + xAPI outbox in each transaction, synchronous=NORMAL, {elapsed:.1f} s)"
    )
    print(f"duplicate batch      {dup_s * 1000:10.1f} ms for 500 events ({dup.duplicates} ignored)")


async def bench_http(workdir: Path, n: int) -> None:
    import aiohttp
    from aiohttp import web

    from server.app import create_app
    from server.settings import AuthSettings, Settings
    from tests.tokens import TokenMaker

    tokens = TokenMaker.create()
    jwks = tokens.write_jwks(workdir / "jwks.json")
    settings = Settings(
        data_dir=workdir / "http",
        content_dir=ROOT / "content" / "demo",
        search_threads=1,
        auth=AuthSettings(jwks_file=jwks, issuer=tokens.issuer),
        serve_demo=False,
        rate_limit_subject_per_second=0,  # one token posts as fast as it can: no rate limits
        rate_limit_address_per_second=0,
    )
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rng = random.Random(2)
    apps = ["crm", "hr", "expenses"]

    def body() -> dict:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out = []
        for _ in range(500):
            k = rng.random()
            e = {"id": str(uuid.uuid4()), "at": now, "app": rng.choice(apps)}
            if k < 0.4:
                e["type"] = "panel_opened"
            elif k < 0.8:
                e.update(type="aid_opened", aid="hr-pto-policy")
            else:
                e.update(type="search", query=f"q {rng.randint(0, 99)}", result_count=0)
            out.append(e)
        return {"events": out}

    bodies = [body() for _ in range(n // 500)]
    headers = [tokens.auth(sub=f"user-{i}", roles=("learner",)) for i in range(4)]
    url = f"http://127.0.0.1:{port}/api/v1/events"
    async with aiohttp.ClientSession() as s:

        async def worker(i: int) -> None:
            for b in bodies[i::4]:
                async with s.post(url, json=b, headers=headers[i]) as r:
                    assert r.status == 200, await r.text()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(4)))
        elapsed = time.perf_counter() - t0
    await runner.cleanup()
    print(
        f"HTTP ingestion       {n / elapsed:10,.0f} events/s  ({n:,} events, POST batches of "
        f"500, 4 clients, validation + auth + commit before answering, {elapsed:.1f} s)"
    )


def build_rollups(path: Path, days: int, total: int) -> tuple[int, int]:
    """Rollup rows equivalent to `total` events spread over `days` days."""
    rng = random.Random(3)
    store = EventStore(path)
    store.open_sync()
    conn = store.writer
    people = [f"{i:032x}" for i in range(6000)]
    per_day = total // days
    end = dt.datetime.now(dt.UTC).date()
    n_events = 0
    for d in range(days):
        day = (end - dt.timedelta(days=d)).isoformat()
        counts: Counter[tuple[str, str, str, str, str]] = Counter()
        users: set[tuple[str, str, str, str, str]] = set()
        active = rng.sample(people, 2000)
        per_person = per_day // len(active)
        for person in active:
            home = rng.sample(APPS, 2)
            for _ in range(per_person):
                app = rng.choice(home)
                k = rng.random()
                counts[("app", day, "", app, "x")] += 0  # keep key order stable
                users.add(("app", day, "", app, person))
                if k < 0.35:
                    ctx = rng.choice([c for c, a in CONTEXTS.items() if a == app] + [""])
                    counts[("app", day, "", app, "panel_opened")] += 1
                    counts[("ctx", day, ctx, app, "panel_opened")] += 1
                    users.add(("ctx", day, ctx, app, person))
                elif k < 0.6:
                    counts[("app", day, "", app, "suggestions_shown")] += 1
                    for a in rng.sample(AIDS, 5):
                        counts[("aid", day, a, app, "shown")] += 1
                elif k < 0.9:
                    aid = AIDS[min(len(AIDS) - 1, int(rng.paretovariate(1.2)) - 1)]
                    t = "aid_opened" if k < 0.85 else "aid_rated"
                    counts[("app", day, "", app, t)] += 1
                    counts[("aid", day, aid, app, t)] += 1
                    if t == "aid_rated":
                        counts[("aid", day, aid, app, rng.choice(["helpful", "not_helpful"]))] += 1
                    users.add(("aid", day, aid, app, person))
                else:
                    q = QUERIES[min(len(QUERIES) - 1, int(rng.paretovariate(1.0)) - 1)]
                    counts[("app", day, "", app, "search")] += 1
                    counts[("query", day, q, app, "search")] += 1
                    if rng.random() < 0.3:
                        counts[("query", day, q, app, "zero_results")] += 1
                        users.add(("zero", day, q, app, person))
                n_events += 1
        counts = Counter({k: v for k, v in counts.items() if v})
        begin_immediate(conn)
        add_rollups(conn, counts, users)
        commit(conn)
    rows = conn.exec_driver_sql(
        "SELECT (SELECT COUNT(*) FROM counts) + (SELECT COUNT(*) FROM users), "
        "(SELECT COUNT(*) FROM period_counts) + (SELECT COUNT(*) FROM people)"
    )
    n_rows, n_period = rows.fetchone()
    print(f"  daily rollup rows {n_rows:,}, week/month counts + people bitmaps {n_period:,}")
    conn.exec_driver_sql("ANALYZE")
    store.close_sync()
    return n_events, n_rows


def bench_dashboards(workdir: Path, days: int, total: int) -> None:
    path = workdir / "rollups.sqlite3"
    t0 = time.perf_counter()
    n_events, n_rows = build_rollups(path, days, total)
    print(
        f"rollups of {n_events:,} events over {days} days: {n_rows:,} rollup rows "
        f"({time.perf_counter() - t0:.0f} s to generate, "
        f"{path.stat().st_size / 2**20:.0f} MiB)"
    )
    store = EventStore(path)
    store.open_sync()
    cat = CatalogView(
        {a: a.upper() for a in APPS},
        {
            a: AidInfo(a, a.title(), (APPS[i % len(APPS)],), True, stale=i % 7 == 0)
            for i, a in enumerate(AIDS)
        },
        {c: ContextInfo(c, app, c, i % 3) for i, (c, app) in enumerate(CONTEXTS.items())},
    )
    end = dt.datetime.now(dt.UTC).date()
    print(f"{'report':10} {'range':>7} {'app':>6} {'time':>10}")
    for span in (30, 90, 365):
        for app in (None, "app3"):
            f = Filters(end - dt.timedelta(days=span - 1), end, app)
            for name, fn in REPORTS.items():
                t = time.perf_counter()
                fn(store.rconn, f, 5, cat)
                ms = (time.perf_counter() - t) * 1000
                print(f"{name:10} {span:>5} d {app or 'all':>6} {ms:8.0f} ms")
    # the worst case for blocks: 366 days cut mid-week and mid-month at both ends (the most
    # single days and weeks) among the ranges ending in the last five weeks
    ranges = [(end - dt.timedelta(days=k + 365), end - dt.timedelta(days=k)) for k in range(35)]
    worst = max(ranges, key=lambda r: (len(plan(*r).days), len(plan(*r).weeks)))
    p = plan(*worst)
    for app in (None, "app3"):
        f = Filters(worst[0], worst[1], app)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            for fn in REPORTS.values():
                fn(store.rconn, f, 5, cat)
            runs.append((time.perf_counter() - t) * 1000)
        print(
            f"all three  {366:>5} d {app or 'all':>6} {min(runs):8.0f} ms  (slowest of 3: "
            f"{max(runs):.0f} ms; {worst[0]}..{worst[1]}: {len(p.months)} months, "
            f"{len(p.weeks)} weeks, {len(p.days)} days)"
        )
    store.close_sync()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--http-events", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--total", type=int, default=10_000_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="inflow-bench-events-"))
    try:
        bench_store(workdir, args.events)
        if args.http_events:
            asyncio.run(bench_http(workdir, args.http_events))
        bench_dashboards(workdir, args.days, args.total)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
