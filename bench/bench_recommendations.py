"""Mentor recommendations (server/peer/recommendations.py): what suggest pays for the signal, and
what a reload costs in memory.

    .venv/bin/python bench/bench_recommendations.py [--recs 20000] [--contexts 1000] [--mentors 200]

Builds `--recs` recommendations by `--mentors` vetted mentors of one app over `--contexts` page
contexts of 5,000 aids, then times:
1. `Recommendations.group` (a reload's grouping, after the rows are read; both run in the storage
   thread, off the event loop, when a recommendation changes and every few minutes, never per
   request);
2. the signal's part of one suggest answer (`Recommendations.__call__` on a page with 12 related
   candidates: dictionary reads only);
3. `page_recommendations` for the panel (memory only).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import keys  # noqa: E402
from server.catalog import Catalog  # noqa: E402
from server.models import Aid, App, Mentor  # noqa: E402
from server.peer.models import Recommendation  # noqa: E402
from server.peer.recommendations import Recommendations, page_recommendations  # noqa: E402


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    return f"median {statistics.median(samples) * 1000:.3f} ms, p95 {p95 * 1000:.3f} ms"


async def main(recs: int, contexts: int, mentors: int) -> None:
    rng = random.Random(7)
    app = App("fieldbook", "Fieldbook")
    aids = [
        Aid(f"aid-{i}", f"Aid {i}", f"Aid {i}", "howto", apps=("fieldbook",), status="published")
        for i in range(5000)
    ]
    people = [
        Mentor(f"m-{i}", f"Mentor {i}", f"m{i}@example.com", apps=("fieldbook",), vetted=True)
        for i in range(mentors)
    ]
    catalog = Catalog.build(1, [app], aids, people)
    ctx_ids = [f"ctx-{c}" for c in range(contexts)]
    rows = [
        Recommendation(
            id=f"r{i}",
            mentor_id=f"m-{rng.randrange(mentors)}",
            app_id="fieldbook",
            context_id=rng.choice(ctx_ids),
            aid_id=f"aid-{rng.randrange(5000)}",
            created_at=f"2026-11-{1 + i % 28:02d}T00:00:00Z",
        )
        for i in range(recs)
    ]
    cache = Recommendations(SimpleNamespace(catalog=catalog))  # type: ignore[arg-type]
    loads = []
    for _ in range(20):
        t = time.perf_counter()
        cache.group(rows)
        loads.append(time.perf_counter() - t)
    cache.load(rows)
    print(f"group {recs} recommendations (storage thread): {_ms(loads)}")
    calls = []
    hits = 0
    for _ in range(2000):
        ctx = rng.choice(ctx_ids)
        on_page = list(cache.on_page("fieldbook", (ctx,)))
        candidates = tuple(rng.sample(on_page, min(4, len(on_page)))) + tuple(
            f"aid-{rng.randrange(5000)}" for _ in range(8)
        )
        t = time.perf_counter()
        parts = await cache("fieldbook", (ctx,), candidates)
        calls.append(time.perf_counter() - t)
        hits += len(parts)
    print(f"signal per suggest answer (12 candidates): {_ms(calls)}; {hits / 2000:.1f} lifted")
    config: dict[Any, Any] = {keys.PEER_RECS: cache, keys.LIBRARY: SimpleNamespace(catalog=catalog)}
    panel = []
    for _ in range(2000):
        t = time.perf_counter()
        await page_recommendations(config, None, "fieldbook", rng.choice(ctx_ids), frozenset())
        panel.append(time.perf_counter() - t)
    print(f"page_recommendations: {_ms(panel)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recs", type=int, default=20_000)
    parser.add_argument("--contexts", type=int, default=1000)
    parser.add_argument("--mentors", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.recs, args.contexts, args.mentors))
