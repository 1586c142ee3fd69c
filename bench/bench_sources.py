"""Sources: what reading them costs (figures printed, nothing asserted).

    .venv/bin/python bench/bench_sources.py [--entries 2000] [--changed 200] [--files 500]
        [--parts feed,website,git,transcript]

Everything real: the app (create_app: database, index, safe fetcher, sync engine), a local HTTP
server (tests/upstream.py) serving the feed, git's smart HTTP (server/sources/demo_git.py) for the
repository, admin calls through the HTTP API with forged tokens (tests/tokens.py).

1. Feed: an RSS feed of `--entries` entries (about 1 kB of HTML each) synced three times: the
   first read (every entry a new aid), then with `--changed` entries edited, then unchanged (the
   feed answers 304). For each: the whole run, split into reading (fetch and parse) and writing
   (the one transaction, the index and the catalog); the longest wait of a feedback POST (a
   write in the same storage thread) sent every 50 ms meanwhile; the longest event-loop stall.
2. Website: the main text of a page (trafilatura, `read_page`), ms per page, for the demo
   intranet's pages and a long article.
3. Git: a repository of `--files` Markdown files: the first sync (shallow clone, ls-tree,
   cat-file, parse, then the writes) and the next one (the same commit: one ls-remote).
4. An admin saves a video aid with a 500 kB transcript: the longest event-loop stall meanwhile.

`make bench` runs it with the defaults. docs/sources.md quotes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import keys  # noqa: E402
from server.app import create_app  # noqa: E402
from server.settings import AuthSettings, Settings  # noqa: E402
from server.sources.connectors.website_extract import read_page  # noqa: E402
from server.sources.demo_git import add_git_routes, build  # noqa: E402
from tests.test_sources_sync import write_library  # noqa: E402
from tests.tokens import TokenMaker  # noqa: E402
from tests.upstream import Upstream  # noqa: E402

A = "/api/v1/admin"
FEED_PATH = "/vendor/releases.rss"
AID = "ledgerly-month-end"  # a published aid of the library (feedback goes to it)
INTRANET = ROOT / "server" / "demo_site" / "intranet"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def rss(entries: int, edited: frozenset[int] = frozenset()) -> bytes:
    items = []
    for n in range(entries):
        note = " (edited)" if n in edited else ""
        body = "".join(
            f"<p>Paragraph {p} of release note {n}{note}: approvers can now select invoices in "
            f"the <strong>Pending</strong> list, filter them by supplier and approve them.</p>"
            for p in range(6)
        )
        items.append(
            f"<item><title>Release note {n}: bulk approval, part {n}</title>"
            f"<link>https://vendor.example/releases/{n}</link>"
            f'<guid isPermaLink="false">vendor-{n}</guid>'
            f"<pubDate>Mon, 04 Mar 2024 09:00:00 GMT</pubDate>"
            f"<category>invoices</category>"
            f"<description>Approve up to {n} invoices at once{note}.</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>Vendor release notes</title><link>https://vendor.example/releases</link>"
        "<description>What changed</description>" + "".join(items) + "</channel></rss>"
    ).encode()


class Probe:
    """While a run goes: a feedback POST every 50 ms (the longest wait), the event loop's
    longest stall (a 10 ms ticker), and when the run started writing (its progress)."""

    def __init__(self, client: TestClient, learner: dict[str, str], source_id: str = "") -> None:
        self.client, self.learner, self.source_id = client, learner, source_id
        self.waits: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.stall = 0.0
        self.writing_at: float | None = None
        self._stop = asyncio.Event()

    async def _feedback(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            resp = await self.client.post(
                "/api/v1/feedback", json={"aid_id": AID, "helpful": True}, headers=self.learner
            )
            await resp.read()
            self.waits.append(time.perf_counter() - t)
            self.statuses[resp.status] += 1
            await asyncio.sleep(0.05)

    async def _ticker(self) -> None:
        service = self.client.server.app[keys.SOURCES]
        while not self._stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            self.stall = max(self.stall, time.perf_counter() - t - 0.01)
            progress = service.progress(self.source_id) if self.source_id else None
            if (
                self.writing_at is None
                and progress is not None
                and progress["message"].startswith("writing")
            ):
                self.writing_at = time.perf_counter()

    async def around(self, work: Callable[[], Awaitable[Any]], feedback: bool = True) -> float:
        tasks = [asyncio.create_task(self._ticker())]
        if feedback:
            tasks.append(asyncio.create_task(self._feedback()))
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        await work()
        took = time.perf_counter() - start
        self._stop.set()
        await asyncio.gather(*tasks)
        self.start = start
        return took


async def sync_once(
    client: TestClient, learner: dict[str, str], source_id: str, label: str
) -> None:
    service = client.server.app[keys.SOURCES]
    holder: dict[str, Any] = {}

    async def work() -> None:
        holder["run"] = await service.sync(source_id)

    probe = Probe(client, learner, source_id)
    took = await probe.around(work)
    run = holder["run"]
    split = ""
    if probe.writing_at is not None:
        split = (
            f" (reading {probe.writing_at - probe.start:.2f} s, "
            f"writing {probe.start + took - probe.writing_at:.2f} s)"
        )
    waits = sorted(probe.waits)
    print(
        f"  {label:<22} {took:6.2f} s{split}: {run.added} added, {run.changed} changed, "
        f"{run.unchanged} unchanged, {run.failed} failed"
    )
    print(
        f"  {'':<22} feedback POST wait: median {ms(statistics.median(waits))}, "
        f"max {ms(waits[-1])} ({len(waits)} sent, {dict(probe.statuses)}); "
        f"longest loop stall {ms(probe.stall)}"
    )


async def bench_feed(
    client: TestClient, admin: dict[str, str], learner: dict[str, str], args: argparse.Namespace
) -> None:
    print(f"\n== feed: {args.entries} entries from a local server ==")
    with Upstream() as up:
        up.set(FEED_PATH, rss(args.entries), content_type="application/rss+xml")
        body = {
            "id": "vendor",
            "name": "Vendor release notes",
            "kind": "feed",
            "url": up.url(FEED_PATH),
            "publish": "auto",
            "apps": ["ledgerly"],
        }
        resp = await client.post(f"{A}/sources", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        print(f"  feed size: {len(rss(args.entries)) / 1e6:.1f} MB")
        await sync_once(client, learner, "vendor", "first run (all new)")
        edited = frozenset(range(0, args.entries, max(1, args.entries // args.changed)))
        up.set(FEED_PATH, rss(args.entries, edited), content_type="application/rss+xml")
        await sync_once(client, learner, "vendor", f"{len(edited)} changed")
        await sync_once(client, learner, "vendor", "unchanged (304)")


def article_html(paragraphs: int) -> bytes:
    nav = "".join(f'<li><a href="/section/{n}">Section {n}</a></li>' for n in range(40))
    text = "".join(
        f"<h2>Step {p}</h2><p>Open the expense form, pick the cost centre and attach the "
        f"receipt; a manager approves it within two working days. See "
        f'<a href="/policy/{p}">the policy</a> for limits.</p><ul><li>Receipts over 25 '
        f"EUR</li><li>Mileage at the agreed rate</li></ul>"
        for p in range(paragraphs)
    )
    return (
        "<!doctype html><html><head><title>Travel expenses · Intranet</title>"
        '<meta name="description" content="How to claim travel expenses."></head><body>'
        f"<header><nav><ul>{nav}</ul></nav></header><main><article><h1>Travel expenses</h1>"
        f"{text}</article></main><aside><ul>{nav}</ul></aside>"
        "<footer><p>© Example · Imprint · Privacy</p></footer></body></html>"
    ).encode()


def bench_website() -> None:
    print("\n== website: main text of a page (trafilatura, read_page; in a worker thread) ==")
    pages = [(p.name, p.read_bytes()) for p in sorted(INTRANET.glob("*.html"))]
    pages += [("article 30 steps", article_html(30)), ("article 300 steps", article_html(300))]
    for name, html in pages:
        url = f"https://intranet.example/{name}"
        read_page(html, url, "text/html")  # warm
        times = []
        for _ in range(10):
            t = time.perf_counter()
            page = read_page(html, url, "text/html")
            times.append(time.perf_counter() - t)
        print(
            f"  {name:<18} {len(html) / 1000:7.1f} kB -> {len(page.body) / 1000:6.1f} kB Markdown:"
            f" median {ms(statistics.median(times))}"
        )


async def bench_git(
    client: TestClient,
    admin: dict[str, str],
    learner: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
) -> None:
    print(f"\n== git: {args.files} Markdown files over smart HTTP (git http-backend) ==")
    docs = workdir / "docs"
    for n in range(args.files):
        file = docs / "handbook" / f"area-{n % 20}" / f"page-{n}.md"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(
            f"# Handbook page {n}\n\nHow to do task {n} in the expense app.\n\n"
            + "\n".join(f"{s}. Step {s} of task {n}." for s in range(1, 9))
            + "\n",
            encoding="utf-8",
        )
    served = workdir / "served"
    await asyncio.to_thread(build, served, docs)
    app = web.Application()
    add_git_routes(app, served)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        body = {
            "id": "handbook",
            "name": "Handbook",
            "kind": "git",
            "url": f"http://127.0.0.1:{server.port}/handbook.git",
            "ref": "main",
            "path": "handbook",
            "page_cap": max(args.files, 200),
            "publish": "auto",
        }
        resp = await client.post(f"{A}/sources", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        await sync_once(client, learner, "handbook", "first run (all new)")
        await sync_once(client, learner, "handbook", "same commit")
    finally:
        await server.close()


def vtt(chars: int) -> str:
    cues, n, size = ["WEBVTT", ""], 0, 8
    while True:
        s = n * 4
        cue = (
            f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000 --> "
            f"{(s + 3) // 3600:02d}:{(s + 3) // 60 % 60:02d}:{(s + 3) % 60:02d}.000\n"
            "Now open the invoice list, pick the supplier you need, then check the total.\n"
        )
        if size + len(cue) + 1 > chars:
            return "\n".join(cues)
        cues.append(cue)
        size += len(cue) + 1
        n += 1


async def bench_transcript(
    client: TestClient, admin: dict[str, str], learner: dict[str, str]
) -> None:
    small, big = vtt(250_000), vtt(499_000)
    print(
        f"\n== video aids with transcripts: POST /aids ({len(small) / 1000:.0f} kB, near the JSON"
        f" body limit), PUT .../transcript ({len(big) / 1000:.0f} kB) =="
    )
    for n in range(3):
        aid = {
            "id": f"video-{n}",
            "title": f"Invoice video {n}",
            "type": "video",
            "apps": ["ledgerly"],
            "source": "https://videos.example/v.mp4",
            "transcript": small,
        }

        async def create(aid: dict[str, Any] = aid) -> None:
            resp = await client.post(f"{A}/aids", json=aid, headers=admin)
            assert resp.status == 201, await resp.text()

        probe = Probe(client, learner)
        took = await probe.around(create)
        print(
            f"  POST {n + 1}: {ms(took)}; longest event-loop stall {ms(probe.stall)}; "
            f"feedback POST wait max {ms(max(probe.waits))}"
        )

        current = await client.get(f"{A}/aids/{aid['id']}", headers=admin)
        etag = current.headers["ETag"]

        async def replace(aid_id: str = aid["id"], etag: str = etag) -> None:
            resp = await client.put(
                f"{A}/aids/{aid_id}/transcript",
                data=big.encode(),
                headers={**admin, "Content-Type": "text/vtt", "If-Match": etag},
            )
            assert resp.status == 200, await resp.text()

        probe = Probe(client, learner)
        took = await probe.around(replace)
        print(
            f"  PUT  {n + 1}: {ms(took)}; longest event-loop stall {ms(probe.stall)}; "
            f"feedback POST wait max {ms(max(probe.waits))}"
        )


async def main_async(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="inflow-bench-sources-"))
    try:
        tokens = TokenMaker.create()
        settings = Settings(
            data_dir=workdir / "data",
            content_dir=write_library(workdir / "library"),
            auth=AuthSettings(
                jwks_file=tokens.write_jwks(workdir / "jwks.json"), issuer=tokens.issuer
            ),
            fetch_allow_private=True,
            jobs=False,
            search_threads=2,
        )
        admin = tokens.auth(sub="admin-1", roles=("learner", "author", "admin"))
        learner = tokens.auth(sub="learner-1", roles=("learner",))
        async with TestClient(TestServer(create_app(settings))) as client:
            parts = set(args.parts.split(","))
            if "feed" in parts:
                await bench_feed(client, admin, learner, args)
            if "website" in parts:
                bench_website()
            if "git" in parts:
                await bench_git(client, admin, learner, args, workdir)
            if "transcript" in parts:
                await bench_transcript(client, admin, learner)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--changed", type=int, default=200)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--parts", default="feed,website,git,transcript")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
