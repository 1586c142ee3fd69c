"""robots.txt, read with urllib.robotparser, fetched through the safe fetcher, cached per origin.

RFC 9309: a robots.txt answering 4xx (or that cannot be fetched under our rules: a redirect to a
host not allowed, too big) means everything is allowed; a 5xx means nothing is (kept 10 minutes,
then asked again); an unreachable host raises FetchFailed like the page itself would. Each origin
(scheme, host, port) is fetched at most once per hour, however many fetches wait for it at once.
"""

from __future__ import annotations

import asyncio
import time
import urllib.robotparser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from yarl import URL

TTL_SECONDS = 3600.0
SERVER_ERROR_TTL_SECONDS = 600.0
MAX_ROBOTS_BYTES = 512_000  # RFC 9309 asks crawlers to parse at least 500 KiB


@dataclass(frozen=True)
class RobotsAnswer:
    """What an origin's robots.txt fetch gave: its text, or that all is allowed or disallowed."""

    status: int  # 0: could not be fetched under our rules (treated as 4xx: allow all)
    text: str = ""


Loader = Callable[[URL], Awaitable[RobotsAnswer]]


def agent_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: "Inflow" of "Inflow/1 (+...)"."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"


def _parser(answer: RobotsAnswer) -> urllib.robotparser.RobotFileParser:
    parser = urllib.robotparser.RobotFileParser()
    if 200 <= answer.status < 300:
        parser.parse(answer.text.splitlines())
    elif answer.status >= 500:
        parser.parse(["User-agent: *", "Disallow: /"])
    else:
        parser.parse([])  # no rules: everything allowed
    parser.modified()  # can_fetch answers False until the parser was "read"
    return parser


class RobotsCache:
    """Parsed robots.txt per origin, for `TTL_SECONDS`; `clock` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, urllib.robotparser.RobotFileParser]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: URL, user_agent: str, load: Loader) -> bool:
        parser = await self._parser(url.origin(), load)
        return parser.can_fetch(agent_token(user_agent), str(url))

    async def crawl_delay(self, url: URL, user_agent: str, load: Loader) -> float:
        """The origin's Crawl-delay for us, in seconds (0 when it names none)."""
        parser = await self._parser(url.origin(), load)
        delay = parser.crawl_delay(agent_token(user_agent))
        return float(delay) if delay else 0.0

    async def _parser(self, origin: URL, load: Loader) -> urllib.robotparser.RobotFileParser:
        key = str(origin)
        cached = self._fresh(key)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one fetch per origin; the others wait for it and use its answer
            cached = self._fresh(key)
            if cached is not None:
                return cached
            answer = await load(origin.with_path("/robots.txt"))
            parser = await asyncio.to_thread(_parser, answer)
            ttl = SERVER_ERROR_TTL_SECONDS if answer.status >= 500 else TTL_SECONDS
            self._entries[key] = (self._clock() + ttl, parser)
            self._forget_expired()
            return parser

    def _fresh(self, key: str) -> urllib.robotparser.RobotFileParser | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        return None

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]
