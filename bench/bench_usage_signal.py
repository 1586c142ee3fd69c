"""The usage signal (server/analytics/usage_signal.py): what a refresh costs, and what suggest pays.

    .venv/bin/python bench/bench_usage_signal.py [--people 2000] [--days 120] [--contexts 150]

Builds the signal's daily rows that `--days` days of use would leave (each day `--people` active
people, each opening about 2 aids and rating about 1 on one of `--contexts` page contexts of 400
aids), inserted as ingestion inserts them, then times:
1. a refresh (`load_sync` in the signal's own thread: what the background task runs when the events
   database changed; never on a suggest request);
2. the signal's part of one suggest answer (`UsageSignal.__call__`: dictionary reads only).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.analytics import usage_signal as us  # noqa: E402
from server.analytics.store import EventStore, _transaction  # noqa: E402


def build(store: EventStore, people: int, days: int, contexts: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    today = dt.datetime.now(dt.UTC).date()
    aids = [f"aid-{i}" for i in range(400)]
    ctx_aids = {f"ctx-{c}": rng.sample(aids, 12) for c in range(contexts)}
    ctxs = list(ctx_aids)
    population = [f"person-{i}" for i in range(people * 3)]
    rows = 0
    conn = store.writer
    for d in range(days):
        day = (today - dt.timedelta(days=d)).isoformat()
        batch = []
        for user in rng.sample(population, people):
            ctx = rng.choice(ctxs)
            for aid in rng.sample(ctx_aids[ctx], 2):
                batch.append((us.OPEN, day, us.key_of(ctx, aid), "app", user))
            aid = rng.choice(ctx_aids[ctx])
            dim = us.UP if rng.random() < 0.8 else us.DOWN
            batch.append((dim, day, us.key_of(ctx, aid), "app", user))
        with _transaction(conn):
            us._ADD_USER.many(conn, batch)
        rows += len(batch)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--contexts", type=int, default=150)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="inflow-bench-usage-"))
    store = EventStore(tmp / "events.sqlite3")
    try:
        await store.open()
        t0 = time.perf_counter()
        rows = await store.write(build, store, args.people, args.days, args.contexts)
        print(f"signal rows: {rows:,} ({time.perf_counter() - t0:.1f} s to insert)")
        signal = us.UsageSignal(store, min_group=5)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            await signal.refresh()
            times.append(time.perf_counter() - t0)
        pairs = sum(len(v) for v in signal.by_context.values())
        print(
            f"refresh (background, own thread): median {statistics.median(times) * 1000:.0f} ms"
            f", max {max(times) * 1000:.0f} ms; {pairs:,} (context, aid) pairs"
        )
        ctx = ("ctx-1",)
        ids = tuple(signal.by_context.get("ctx-1", {}))[:8]
        n = 20_000
        t0 = time.perf_counter()
        for _ in range(n):
            await signal("app", ctx, ids)
        per = (time.perf_counter() - t0) / n
        print(f"per suggest answer (8 related aids): {per * 1e6:.1f} us")
        await signal.close()
    finally:
        await store.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
