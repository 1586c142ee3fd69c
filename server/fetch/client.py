"""SafeFetcher: every outbound HTTP request Inflow makes for content (feeds, pages, link checks).

One per app (`app[keys.FETCHER]`, opened in `fetcher_ctx`). Each request: http/https only; host in
the policy's allowlist; every address connected to is public unless the policy allows private ones
(checked by the connector's resolver and socket factory, see resolver.py); redirects followed by
hand with every hop checked again; the body read in chunks and refused past `max_bytes`; one total
timeout; our User-Agent; at most `per_host` requests in flight per host; robots.txt obeyed when the
policy says so. Proxies from the environment are ignored (a proxy would connect for us, unchecked)
and no cookies are kept between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from server.fetch.addresses import networks, parse_ip
from server.fetch.errors import FetchFailed, FetchRefused
from server.fetch.policy import FetchPolicy, check_static, parse_url, private_refusal
from server.fetch.resolver import AddressRefused, GuardedResolver, guarded_socket
from server.fetch.robots import MAX_ROBOTS_BYTES, RobotsAnswer, RobotsCache

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 65536
METHODS = ("GET", "HEAD")
# Refusals of a robots.txt URL that refuse every page of its origin as well.
_ORIGIN_REFUSALS = frozenset({"scheme", "host_not_allowed", "private_address", "bad_url"})


@dataclass(frozen=True)
class FetchResult:
    """An answer from the upstream, whatever its status (a 404 or a 500 is a result too)."""

    url: str  # the URL that gave this answer (after redirects)
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes  # b"" for HEAD and 304
    etag: str
    last_modified: str
    redirects: tuple[str, ...]  # the URLs that answered with a redirect, in order

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def text(self) -> str:
        """The body decoded with the charset the answer names (UTF-8 otherwise), never failing."""
        charset = "utf-8"
        for part in self.headers.get("Content-Type", "").split(";")[1:]:
            name, _, value = part.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


class _HostSlots:
    """At most `per_host` requests in flight per host; entries vanish when nobody uses them."""

    def __init__(self, per_host: int) -> None:
        self.per_host = max(1, per_host)
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore, users = self._slots.get(host, (asyncio.Semaphore(self.per_host), 0))
        self._slots[host] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._slots[host]
            if users <= 1:
                del self._slots[host]
            else:
                self._slots[host] = (semaphore, users - 1)


def _refused_address(exc: BaseException) -> AddressRefused | None:
    """The AddressRefused behind an aiohttp connector error, if that is what it was."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        todo += [current.__cause__, current.__context__, getattr(current, "os_error", None)]
        if isinstance(current, BaseExceptionGroup):
            todo += list(current.exceptions)
    return None


class SafeFetcher:
    """Open with `async with SafeFetcher(...)` (fetcher_ctx does); `fetch` and `check_url`."""

    def __init__(
        self,
        *,
        user_agent: str,
        per_host: int = 2,
        defaults: FetchPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        public_networks: tuple[str, ...] = (),
    ) -> None:
        """`public_networks`: networks treated as public although they are not (say an intranet's
        10.20.0.0/16 in place of allowing every private address; tests use 127.0.0.2/32)."""
        self.user_agent = user_agent
        self._exempt = networks(public_networks)
        self.defaults = defaults or FetchPolicy()
        self._slots = _HostSlots(per_host)
        self._robots = RobotsCache(clock)
        self._strict: aiohttp.ClientSession | None = None
        self._open: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    def policy(self, **changes: Any) -> FetchPolicy:
        """The settings' default policy with `changes` (allowed_hosts=..., robots=True, ...)."""
        return dataclasses.replace(self.defaults, **changes)

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> SafeFetcher:
        # Two sessions: the strict one's connector refuses non-public addresses; the open one (only
        # for policies with allow_private) does not. Not one session with a per-request switch:
        # aiohttp shares DNS lookups and their cache between the requests of a connector.
        self._resolver = GuardedResolver(self._exempt)
        self._strict = self._session(
            aiohttp.TCPConnector(
                resolver=self._resolver, socket_factory=guarded_socket(self._exempt)
            )
        )
        self._open = self._session(aiohttp.TCPConnector())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for session in (self._strict, self._open):
            if session is not None:
                await session.close()
        self._strict = self._open = None

    def _session(self, connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),  # one asyncio.timeout per fetch instead
        )

    # -- checks ---------------------------------------------------------------------------------

    async def check_url(self, url: str, policy: FetchPolicy) -> None:
        """Raise FetchRefused unless `url` may be fetched under `policy`: scheme, allowlist, and
        (unless private addresses are allowed) every address its host resolves to now. For a
        caller that connects by other means (git); a DNS answer can differ later (rebinding)."""
        parsed = parse_url(url)
        check_static(parsed, policy, self._exempt)
        host = parsed.raw_host or ""
        if policy.allow_private or parse_ip(host) is not None:
            return
        if self._resolver is None:
            raise RuntimeError("SafeFetcher is not open")
        try:
            async with asyncio.timeout(policy.timeout):
                await self._resolver.resolve(host, parsed.port or 0, socket.AF_UNSPEC)
        except AddressRefused as exc:
            raise private_refusal(str(parsed), exc.ip, exc.why) from exc
        except TimeoutError as exc:
            raise FetchFailed("timeout", str(parsed), f"Resolving {host} timed out.") from exc
        except OSError as exc:
            raise FetchFailed("dns", str(parsed), f"The host {host} does not resolve.") from exc

    # -- fetching -------------------------------------------------------------------------------

    async def fetch(
        self,
        url: str,
        policy: FetchPolicy,
        *,
        method: str = "GET",
        etag: str = "",
        last_modified: str = "",
        accept: str = "",
    ) -> FetchResult:
        """GET (or HEAD) `url` under `policy`. `etag`/`last_modified` make it conditional (a 304
        comes back as a result with `not_modified`). Raises FetchRefused or FetchFailed."""
        method = method.upper()
        if method not in METHODS:
            raise ValueError(f"SafeFetcher fetches with GET or HEAD, not {method}")
        session = self._open if policy.allow_private else self._strict
        if session is None:
            raise RuntimeError("SafeFetcher is not open")
        headers = {"Accept": accept} if accept else {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = parse_url(url)
        redirects: list[str] = []
        try:
            async with asyncio.timeout(policy.timeout):
                while True:
                    check_static(current, policy, self._exempt)
                    if policy.robots:
                        await self._obey_robots(current, policy)
                    async with self._slots.slot(current.raw_host or ""):
                        result, location = await self._one(
                            session, method, current, headers, policy, tuple(redirects)
                        )
                    if location is None:
                        return result
                    if len(redirects) >= policy.max_redirects:
                        raise FetchRefused(
                            "too_many_redirects",
                            url,
                            f"{url} redirected more than {policy.max_redirects} times.",
                        )
                    redirects.append(str(current))
                    current = location
        except TimeoutError as exc:
            raise FetchFailed(
                "timeout", str(current), f"No full answer from {current} in {policy.timeout:g} s."
            ) from exc

    async def _one(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        policy: FetchPolicy,
        redirects: tuple[str, ...],
    ) -> tuple[FetchResult, URL | None]:
        text = str(url)
        try:
            async with session.request(
                method, url, headers=headers, allow_redirects=False, auto_decompress=True
            ) as response:
                location = response.headers.get("Location", "")
                if response.status in REDIRECTS and location:
                    try:
                        return _empty(response, text, redirects), parse_url(
                            str(url.join(URL(location)))
                        )
                    except ValueError as exc:
                        raise FetchRefused(
                            "bad_url", text, f"{text} redirected to a bad URL: {location!r}."
                        ) from exc
                body = b""
                if method == "GET":
                    body = await _read(response, text, policy.max_bytes)
                return _result(response, text, body, redirects), None
        except AddressRefused as exc:
            raise private_refusal(text, exc.ip, exc.why) from exc
        except aiohttp.InvalidURL as exc:
            raise FetchRefused("bad_url", text, f"Not a URL that can be fetched: {text}.") from exc
        except TimeoutError:
            raise  # the fetch's total timeout (asyncio.timeout in fetch)
        except aiohttp.ClientConnectorDNSError as exc:
            refused = _refused_address(exc)
            if refused is not None:
                raise private_refusal(text, refused.ip, refused.why) from exc
            raise FetchFailed("dns", text, f"The host {url.raw_host} does not resolve.") from exc
        except (aiohttp.ClientError, OSError) as exc:
            refused = _refused_address(exc)
            if refused is not None:
                raise private_refusal(text, refused.ip, refused.why) from exc
            raise FetchFailed("connection", text, f"{text} could not be fetched: {exc}.") from exc

    def _robots_loader(self, policy: FetchPolicy) -> Callable[[URL], Awaitable[RobotsAnswer]]:
        rules = dataclasses.replace(
            policy, robots=False, max_bytes=min(policy.max_bytes, MAX_ROBOTS_BYTES)
        )

        async def load(robots_url: URL) -> RobotsAnswer:
            try:
                answer = await self.fetch(str(robots_url), rules, accept="text/plain")
            except FetchRefused as exc:
                if exc.url == str(robots_url) and exc.reason in _ORIGIN_REFUSALS:
                    raise  # the origin itself is refused: so is the page; nothing to cache
                return RobotsAnswer(0)  # too big, or redirected where we may not go: allow all
            return RobotsAnswer(answer.status, answer.text() if answer.ok else "")

        return load

    async def _obey_robots(self, url: URL, policy: FetchPolicy) -> None:
        load = self._robots_loader(policy)
        if not await self._robots.allowed(url, self.user_agent, load):
            raise FetchRefused(
                "robots", str(url), f"The site's robots.txt does not let Inflow fetch {url}."
            )

    async def crawl_delay(self, url: str, policy: FetchPolicy) -> float:
        """The Crawl-delay the site's robots.txt asks of us (seconds; 0 when none), from the cache
        `fetch` fills; for callers pacing many requests to one host (crawls, link checks)."""
        parsed = parse_url(url)
        check_static(parsed, policy, self._exempt)
        load = self._robots_loader(policy)
        return await self._robots.crawl_delay(parsed, self.user_agent, load)


async def _read(response: aiohttp.ClientResponse, url: str, max_bytes: int) -> bytes:
    """The body, refused (not truncated) past `max_bytes`: by its Content-Length when it names
    one, else while it streams (also a compressed body, counted after decompression)."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise _too_large(url, max_bytes)
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(url, max_bytes)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(url: str, max_bytes: int) -> FetchRefused:
    return FetchRefused(
        "too_large", url, f"{url} is larger than {max_bytes:,} bytes (INFLOW_FETCH_MAX_BYTES)."
    )


def _headers(response: aiohttp.ClientResponse) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(response.headers))


def _result(
    response: aiohttp.ClientResponse, url: str, body: bytes, redirects: tuple[str, ...]
) -> FetchResult:
    headers = _headers(response)
    return FetchResult(
        url=url,
        status=response.status,
        headers=headers,
        body=body,
        etag=headers.get("ETag", ""),
        last_modified=headers.get("Last-Modified", ""),
        redirects=redirects,
    )


def _empty(response: aiohttp.ClientResponse, url: str, redirects: tuple[str, ...]) -> FetchResult:
    return _result(response, url, b"", redirects)
