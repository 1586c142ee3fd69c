"""In-process suggest latency on a small synthetic corpus (nothing asserted; figures printed).

    python bench/bench_suggest.py [--aids 2000] [--queries 300]

Builds the corpus of bench/corpus.py, then times `Suggester.suggest` with the result cache off,
for page queries with a title, headings and a selection: p50 and p95, plus index build rate.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import build_library, page_queries  # noqa: E402
from index.service import IndexService  # noqa: E402
from server.cache import ResultCache  # noqa: E402
from server.library import Library  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.storage import Storage  # noqa: E402
from server.suggest import PageSignals, Suggester  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def run(data: Path, queries: list[dict[str, object]]) -> tuple[list[float], list[float]]:
    settings = Settings(data_dir=data, cache_entries=0, search_threads=1)
    storage = Storage(settings.db_path)
    await storage.open()
    index = IndexService(settings.index_dir, search_threads=1)
    await index.open()
    library = Library(storage, index)
    await library.reconcile()
    suggester = Suggester(settings, index, ResultCache(0))
    times, cpu = [], []
    for q in queries:
        headings = tuple(str(h) for h in q["headings"])  # type: ignore[attr-defined]
        page = PageSignals(
            url=str(q["url"]),
            title=str(q["title"]),
            headings=headings,
            selection=" ".join(headings[:1]),
        )
        start, start_cpu = time.perf_counter(), time.process_time()
        await suggester.suggest(library.catalog, page, frozenset(), 10)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    await index.close()
    await storage.close()
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--aids", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        aids, apps, build, _ = build_library(data, args.aids, 1000, max(1, args.aids // 50), rng)
        times, cpu = asyncio.run(run(data, page_queries(rng, apps, args.queries)))
    print(f"index build       {len(aids) / build:8.0f} aids/s ({len(aids)} aids)")
    print(
        f"suggest in-process p50 {pct(times, 0.5) * 1000:6.2f} ms"
        f"  p95 {pct(times, 0.95) * 1000:6.2f} ms"
    )
    # CPU time (all threads) is steadier than wall time on a shared machine.
    print(
        f"suggest CPU time   p50 {pct(cpu, 0.5) * 1000:6.2f} ms"
        f"  p95 {pct(cpu, 0.95) * 1000:6.2f} ms"
    )


if __name__ == "__main__":
    main()
