"""`make bench`: figures for the core targets, printed side by side (nothing asserted).

    python bench/run.py [--sizes 10000,100000] [--queries 300]

For each corpus size: index build rate and size; raw Whoosh query time vs in-process suggest vs
HTTP suggest (p50/p99) for the same page queries; a Zipf mix of repeated pages served from the
result cache; publish-to-visible latency; server RSS. Then the URL-rule, token, events and
panel-speed benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import build_library, page_queries  # noqa: E402
from index.query import scope_filter  # noqa: E402
from index.service import IndexService  # noqa: E402
from server.cache import ResultCache  # noqa: E402
from server.library import Library  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.storage import Storage  # noqa: E402
from server.suggest import PageSignals, Suggester, page_texts  # noqa: E402
from tests.tokens import TokenMaker  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def ms(v: float) -> str:
    return f"{v * 1000:7.2f} ms"


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def in_process(data: Path, queries: list[dict]) -> dict[str, list[float]]:
    settings = Settings(data_dir=data, cache_entries=0, search_threads=2)
    storage = Storage(settings.db_path)
    await storage.open()
    index = IndexService(settings.index_dir, search_threads=2)
    await index.open()
    library = Library(storage, index)
    await library.reconcile()
    suggester = Suggester(settings, index, ResultCache(0))
    raw, sug = [], []
    for q in queries:
        page = PageSignals(url=q["url"], title=q["title"], headings=tuple(q["headings"]))
        res = library.catalog.resolve(page.url, page.title)
        assert res.app is not None
        # the same related query suggest runs (raw Whoosh time for it, then the whole suggest)
        scope = scope_filter(apps=[res.app.id], audience=frozenset(), include_global=True)
        related = index.related_query_sync(page_texts(page, res.contexts), scope, res.app.name)
        if related is None:
            continue
        query = related.query
        elapsed, _ = index.timed_top_sync(query, scope, 10)
        raw.append(elapsed)
        start = time.perf_counter()
        await suggester.suggest(library.catalog, page, frozenset(), 10)
        sug.append(time.perf_counter() - start)
    # publish-to-visible: change an aid's title, import it, time until suggest shows it
    aid = next(a for a in await storage.all_aids() if a.status == "published" and not a.audience)
    app = library.catalog.apps[aid.apps[0]]
    host = app.rules[0].pattern.split("/")[2]
    changed = replace(aid, title="Quarterly zebracorn reconciliation")
    from server.content import ContentSet

    start = time.perf_counter()
    await library.import_content(ContentSet([], [changed]))
    page = PageSignals(url=f"https://{host}/zebracorn", title="zebracorn reconciliation")
    result = await suggester.suggest(library.catalog, page, frozenset(), 10)
    visible = time.perf_counter() - start
    assert aid.id in [a["id"] for a in result["aids"]], "published change not visible"
    await index.close()
    await storage.close()
    return {"raw": raw, "suggest": sug, "publish": [visible]}


async def http_bench(
    port: int, token: str, queries: list[dict], zipf_total: int
) -> dict[str, list[float] | float]:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"http://127.0.0.1:{port}/api/v1/suggest"
    async with aiohttp.ClientSession(headers=headers) as s:
        for q in queries[:20]:  # warm up
            async with s.post(url, json=q) as r:
                await r.read()
        cold = []
        for n, q in enumerate(queries):
            # Not in the cache: a title word no aid has changes the cache key, not the query
            # (it drops out, df 0) nor the URL's app and context.
            q = {**q, "title": f"{q['title']} zq{n}"}
            start = time.perf_counter()
            async with s.post(url, json=q) as r:
                await r.read()
                assert r.status == 200, await r.text()
            cold.append(time.perf_counter() - start)
        rng = random.Random(3)
        pages = queries[:200]
        weights = [1 / (i + 1) for i in range(len(pages))]
        mix = rng.choices(pages, weights, k=zipf_total)
        hot = []
        t0 = time.perf_counter()
        for q in mix:
            start = time.perf_counter()
            async with s.post(url, json=q) as r:
                await r.read()
            hot.append(time.perf_counter() - start)
        sequential_rps = len(mix) / (time.perf_counter() - t0)

        async def worker(items: list[dict]) -> None:
            for q in items:
                async with s.post(url, json=q) as r:
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(mix[i::8]) for i in range(8)))
        concurrent_rps = len(mix) / (time.perf_counter() - t0)
    return {"cold": cold, "hot": hot, "rps_seq": sequential_rps, "rps_conc": concurrent_rps}


def wrk_run(
    port: int, token: str, pages: list[dict], workdir: Path, *, unique: bool, connections: int
) -> str:
    """Latency and throughput with wrk, a C load generator, on the other core."""
    if not shutil.which("wrk"):
        return "(install wrk for this figure: apt-get install wrk)"
    from bench.wrk_suggest import lua_script

    script = workdir / "suggest.lua"
    script.write_text(lua_script(pages, token, unique=unique))
    url = f"http://127.0.0.1:{port}"
    subprocess.run(
        ["wrk", "-t1", "-c4", "-d3s", "-s", str(script), url], capture_output=True, check=False
    )  # warm up (and the cache, when not unique)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", "-d10s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rps = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("Requests/sec")), "?")
    p50 = next((ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("50%")), "?")
    p99 = next((ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("99%")), "?")
    return f"{rps} req/s ({connections} connections), p50 {p50}, p99 {p99}"


def segments(port: int) -> int | None:
    """The live index's segment count, from /readyz (None while the server is not ready)."""
    import json
    import re
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            detail = json.load(resp)["checks"]["index"]["detail"]
    except urllib.error.HTTPError as exc:
        detail = json.load(exc)["checks"]["index"]["detail"]
    except (OSError, ValueError, KeyError):
        return None
    found = re.search(r"(\d+) segment\(s\)", detail)
    return int(found.group(1)) if found else None


async def during_merge(
    port: int, tokens: TokenMaker, queries: list[dict], timeout: float = 900.0
) -> tuple[list[float], float]:
    """Uncached suggest while the server merges the build's segments (one per build process)
    in its child process: latencies of requests sent until /readyz says 1 segment, and how
    long the merge took from the first request."""
    url = f"http://127.0.0.1:{port}/api/v1/suggest"
    loop = asyncio.get_running_loop()
    out: list[float] = []
    start = time.perf_counter()
    async with aiohttp.ClientSession() as s:
        n = 0
        while time.perf_counter() - start < timeout:
            if n % 20 == 0 and await loop.run_in_executor(None, segments, port) == 1:
                break
            if n % 200 == 0:  # a merge can outlast a token
                s.headers["Authorization"] = f"Bearer {tokens.token(roles=('learner',))}"
            q = queries[n % len(queries)]
            q = {**q, "title": f"{q['title']} zm{n}"}  # never cached
            t = time.perf_counter()
            async with s.post(url, json=q) as r:
                await r.read()
                assert r.status == 200, await r.text()
            out.append(time.perf_counter() - t)
            n += 1
    return out, time.perf_counter() - start


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_size(
    n: int,
    n_queries: int,
    tokens: TokenMaker,
    workdir: Path,
    reuse: Path | None = None,
    merge_wait: float = 900.0,
) -> None:
    rng = random.Random(n)
    data = workdir / f"data-{n}"
    print(f"\n== {n:,} aids (~300 words each), 10k URL rules ==", flush=True)
    if reuse is None:
        _, apps, build_s, procs = build_library(data, n, 10_000, 10_000 // 50, rng)
        rate = f"{n / build_s:8.0f} aids/s  ({build_s:.1f} s, {procs} processes)"
        print(f"index build          {rate}")
    else:  # a data folder built before (same corpus): no build figure
        data, procs = reuse, 2
        apps = asyncio.run(_apps(data))
    print(f"index size           {du(data / 'index') / 2**20:8.1f} MiB")
    queries = page_queries(random.Random(1), apps, n_queries)
    port = free_port()
    jwks = tokens.write_jwks(workdir / "jwks.json")
    env = {
        **os.environ,
        "INFLOW_DATA_DIR": str(data),
        "INFLOW_AUTH_JWKS_FILE": str(jwks),
        "INFLOW_AUTH_ISSUER": tokens.issuer,
        "INFLOW_SEARCH_THREADS": "2",
        # thousands of requests a second from one token: rate limits off for the measurement
        "INFLOW_RATE_LIMIT_SUBJECT_PER_SECOND": "0",
        "INFLOW_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
        # the build left a segment per process: the server merges them (child process) soon
        # after start-up, while the first requests below run
        "INFLOW_INDEX_MERGE_DELAY_SECONDS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        while segments(port) is None:
            time.sleep(0.1)
        token = tokens.token(roles=("learner",))
        merging, merged_after = asyncio.run(during_merge(port, tokens, queries, merge_wait))
        token = tokens.token(roles=("learner",))
        http = asyncio.run(http_bench(port, token, queries, 3000))
        # fresh tokens: the runs above can outlast one on a loaded machine
        learner = ("learner",)
        wrk_hot = wrk_run(
            port, tokens.token(roles=learner), queries[:200], workdir, unique=False, connections=8
        )
        wrk_cold = wrk_run(
            port, tokens.token(roles=learner), queries[:200], workdir, unique=True, connections=1
        )
        rss = rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(60)  # a loaded machine can take a while to drain
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    res = asyncio.run(in_process(data, queries))  # the merged index, in this process
    raw, sug, cold, hot = res["raw"], res["suggest"], http["cold"], http["hot"]
    print(f"{'':20} {'p50':>10} {'p99':>10}")
    print(f"{'raw Whoosh query':20} {ms(pct(raw, 0.5))} {ms(pct(raw, 0.99))}")
    print(f"{'suggest in-process':20} {ms(pct(sug, 0.5))} {ms(pct(sug, 0.99))}")
    print(
        f"{'suggest over HTTP':20} {ms(pct(cold, 0.5))} {ms(pct(cold, 0.99))}   "
        f"(x{statistics.median(cold) / statistics.median(raw):.2f} of raw Whoosh, p50)"
    )
    print(
        f"{'cached (Zipf mix)':20} {ms(pct(hot, 0.5))} {ms(pct(hot, 0.99))}   "
        f"{http['rps_seq']:.0f} req/s one client, {http['rps_conc']:.0f} req/s 8 clients"
    )
    if merging:
        print(
            f"{'..during the merge':20} {ms(pct(merging, 0.5))} {ms(pct(merging, 0.99))}   "
            f"({len(merging)} requests while the build's {procs} segments were merged in a "
            f"child process: {merged_after:.0f} s)"
        )
    print(f"uncached, wrk        {wrk_cold}")
    print(f"cached, wrk          {wrk_hot}")
    print(f"publish -> visible   {ms(res['publish'][0])}")
    print(f"server RSS           {rss:8.0f} MB (after warm-up and the HTTP runs above)")


async def _apps(data: Path) -> list:  # type: ignore[type-arg]
    storage = Storage(data / "inflow.sqlite3")
    await storage.open()
    try:
        return list(await storage.all_apps())
    finally:
        await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--index-only", action="store_true", help="skip the other benchmarks")
    parser.add_argument("--data", type=Path, help="a data folder built before (one size)")
    parser.add_argument("--merge-wait", type=float, default=900.0, help="seconds, at most")
    args = parser.parse_args()
    tokens = TokenMaker.create()
    workdir = Path(tempfile.mkdtemp(prefix="inflow-bench-"))
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            run_size(n, args.queries, tokens, workdir, args.data, args.merge_wait)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    extras: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("bench_urlrules.py", ()),
        ("bench_auth.py", ()),
        # 3M events' rollups instead of 10M, to stay under ~2 minutes (docs/analytics.md has both)
        ("bench_events.py", ("--events", "50000", "--http-events", "20000", "--total", "3000000")),
        # navigation -> side panel updated, in Chromium with the extension (p50/p95)
        ("bench_panel.py", ()),
    )
    for extra, extra_args in () if args.index_only else extras:
        path = ROOT / "bench" / extra
        if path.exists():
            print(f"\n== {' '.join((extra, *extra_args))} ==", flush=True)
            subprocess.run([sys.executable, str(path), *extra_args], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
