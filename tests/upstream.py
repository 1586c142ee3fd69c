"""A real HTTP server for tests of fetching: aiohttp on 127.0.0.1, routes set at run time.

Sources (feeds, websites, git repositories over dumb HTTP), link checks and the safe fetcher are
tested against it, never against a mock of the HTTP client:

    def test_x(upstream: Upstream) -> None:          # the `upstream` fixture (tests/conftest.py)
        upstream.set("/feed.xml", FEED, content_type="application/rss+xml")
        url = upstream.url("/feed.xml")                # http://127.0.0.1:<port>/feed.xml
        ...                                            # fetch with allow_private=True
        assert upstream.hits["/feed.xml"] == 1

The server runs its own event loop in a thread, so it answers while a test blocks (a `git clone`
through subprocess.run) as well as from async tests. What it does:

- `set(path, body, content_type=, headers=, status=, last_modified=, methods=)`: a route; `body`
  str or bytes. Answers GET and HEAD (other methods, or HEAD when `methods=("GET",)`: 405).
  Every 2xx answer carries an ETag (a hash of the body) and a Last-Modified (when it was set, or
  `last_modified`), and answers `If-None-Match` / `If-Modified-Since` with 304 when unchanged.
  `set(path, status=301, headers={"Location": ...})` makes a redirect; `remove(path)`: 404 again.
- `serve_dir(prefix, folder)`: files under `folder` at `prefix/...` (a git repository after
  `git update-server-info`, for the dumb HTTP transport), conditional like `set`.
- Built-in routes: `/slow?seconds=S` (sleeps, then "slow"), `/huge` (an endless stream with no
  Content-Length), `/redirect?to=URL&status=302`, `/chain/N` (redirects N times, then "end").
- `hits[path]`: requests per path (query string not included); `requests`: every request as
  `Seen(method, path_qs, headers)`; `active_max` / `active_max_by_path[path]`: the most requests
  in flight at once (the fetcher's per-host limit is tested with it).
- `url(path, host="")`: the address of a path; `host="localhost"` reaches the same server by name
  (allowlist tests). `Upstream(host="127.0.0.2")` listens on another loopback address.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

HOST = "127.0.0.1"
HUGE_CHUNK = b"x" * 65536


@dataclass(frozen=True)
class Route:
    body: bytes
    content_type: str
    status: int
    headers: Mapping[str, str]
    last_modified: float  # epoch seconds, whole
    methods: tuple[str, ...]

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'


@dataclass(frozen=True)
class Seen:
    """One request as the server got it."""

    method: str
    path_qs: str
    headers: Mapping[str, str]


@dataclass
class _Counts:
    active: int = 0
    active_max: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    max_by_path: Counter[str] = field(default_factory=Counter)


def _http_date(epoch: float) -> str:
    import datetime

    return format_datetime(datetime.datetime.fromtimestamp(epoch, datetime.UTC), usegmt=True)


def _not_modified(request: web.Request, etag: str, last_modified: float) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags
    ims = request.headers.get("If-Modified-Since")
    if ims:
        try:
            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            return False
        return int(last_modified) <= int(since)
    return False


class Upstream:
    """The server; `Upstream()` starts it, `stop()` ends it (the fixture does both)."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host  # another loopback address (127.0.0.2) for a second, distinct server
        self.routes: dict[str, Route] = {}
        self.dirs: dict[str, Path] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[Seen] = []
        self._counts = _Counts()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, name="upstream", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    # -- what tests call ------------------------------------------------------------------------

    def url(self, path: str = "/", host: str = "") -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set(
        self,
        path: str,
        body: str | bytes = b"",
        *,
        content_type: str = "text/html; charset=utf-8",
        headers: Mapping[str, str] | None = None,
        status: int = 200,
        last_modified: float | None = None,
        methods: tuple[str, ...] = ("GET", "HEAD"),
    ) -> None:
        data = body.encode() if isinstance(body, str) else bytes(body)
        stamp = int(time.time() if last_modified is None else last_modified)
        with self._lock:
            self.routes[path] = Route(
                data, content_type, status, dict(headers or {}), stamp, tuple(methods)
            )

    def remove(self, path: str) -> None:
        with self._lock:
            self.routes.pop(path, None)

    def serve_dir(self, prefix: str, folder: Path) -> None:
        with self._lock:
            self.dirs[prefix.rstrip("/")] = folder

    @property
    def active_max(self) -> int:
        return self._counts.active_max

    @property
    def active_max_by_path(self) -> Counter[str]:
        return self._counts.max_by_path

    def reset_counts(self) -> None:
        with self._lock:
            self.hits.clear()
            self.requests.clear()
            self._counts = _Counts()

    def stop(self) -> None:
        if self._runner is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            fut.result(timeout=10)
            self._runner = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the server -------------------------------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/huge", self._huge)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/chain/{n:\\d+}", self._chain)
        app.router.add_route("*", "/{tail:.*}", self._any)
        # handler_cancellation: a client that gives up (a timeout test) ends /slow and /huge
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._runner = runner

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        counts = self._counts
        with self._lock:
            self.hits[path] += 1
            self.requests.append(Seen(request.method, request.path_qs, dict(request.headers)))
            counts.active += 1
            counts.by_path[path] += 1
            counts.active_max = max(counts.active_max, counts.active)
            counts.max_by_path[path] = max(counts.max_by_path[path], counts.by_path[path])
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            with self._lock:
                counts.active -= 1
                counts.by_path[path] -= 1

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("seconds", "5")))
        return web.Response(text="slow")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        while True:  # until the client hangs up (handler_cancellation ends it)
            await response.write(HUGE_CHUNK)

    async def _redirect(self, request: web.Request) -> web.Response:
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query.get("to", "/")})

    async def _chain(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n <= 0:
            return web.Response(text="end")
        return web.Response(status=302, headers={"Location": f"/chain/{n - 1}"})

    async def _any(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            route = self.routes.get(request.path)
            dirs = dict(self.dirs)
        if route is None:
            file = self._file(request.path, dirs)
            if file is None:
                return web.Response(status=404, text="not found")
            data = await asyncio.to_thread(file.read_bytes)
            mtime = int(file.stat().st_mtime)
            route = Route(data, "application/octet-stream", 200, {}, mtime, ("GET", "HEAD"))
        if request.method not in route.methods:
            return web.Response(status=405, headers={"Allow": ", ".join(route.methods)})
        headers = dict(route.headers)
        if 200 <= route.status < 300:
            headers.setdefault("ETag", route.etag)
            headers.setdefault("Last-Modified", _http_date(route.last_modified))
            if _not_modified(request, route.etag, route.last_modified):
                return web.Response(status=304, headers=headers)
        headers["Content-Type"] = route.content_type
        return web.Response(status=route.status, body=route.body, headers=headers)

    @staticmethod
    def _file(path: str, dirs: Mapping[str, Path]) -> Path | None:
        for prefix, folder in dirs.items():
            if path.startswith(prefix + "/"):
                root = folder.resolve()
                file = (root / path[len(prefix) + 1 :]).resolve()
                if file.is_relative_to(root) and file.is_file():
                    return file
        return None


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A real HTTP server on 127.0.0.1 whose routes the test sets (see the module docstring)."""
    server = Upstream()
    try:
        yield server
    finally:
        server.stop()
