"""The safe fetcher (server/fetch) against a real HTTP server on 127.0.0.1 (tests/upstream.py).

Refusals of private addresses are real: the strict fetcher (allow_private=False) is pointed at the
upstream, which listens on a loopback address, and must refuse before anything reaches it. Where a
test needs a "public" server, a second upstream listens on 127.0.0.2 and the fetcher is told to
treat 127.0.0.2/32 as public (`public_networks`, the knob an operator would use for an intranet).
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from server.errors import problem_middleware
from server.fetch import FetchFailed, FetchPolicy, FetchRefused, SafeFetcher, host_allowed
from server.fetch.addresses import is_public
from tests.upstream import Upstream

UA = "Inflow/1 (+https://inflow.test.example)"
OPEN = FetchPolicy(allow_private=True, timeout=10.0)
STRICT = FetchPolicy(allow_private=False, timeout=10.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fetcher(clock: Clock) -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(
        user_agent=UA, per_host=2, clock=clock, public_networks=("127.0.0.2/32",)
    ) as f:
        yield f


@pytest.fixture
def public_upstream() -> Iterator[Upstream]:
    """A second server on 127.0.0.2, which `fetcher` treats as a public address."""
    server = Upstream(host="127.0.0.2")
    try:
        yield server
    finally:
        server.stop()


async def refused(fetcher: SafeFetcher, url: str, policy: FetchPolicy, **kw: Any) -> FetchRefused:
    with pytest.raises(FetchRefused) as info:
        await fetcher.fetch(url, policy, **kw)
    return info.value


# -- what a normal fetch gives ---------------------------------------------------------------------


async def test_fetch_returns_body_headers_and_validators(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    upstream.set("/page", "<h1>Hello</h1>", content_type="text/html; charset=utf-8")
    result = await fetcher.fetch(upstream.url("/page"), OPEN)
    assert result.ok and result.status == 200
    assert result.body == b"<h1>Hello</h1>" and result.text() == "<h1>Hello</h1>"
    assert result.content_type == "text/html"
    assert result.etag.startswith('"') and result.last_modified.endswith("GMT")
    assert result.headers["content-type"].startswith("text/html")  # case-insensitive
    assert result.redirects == () and result.url == upstream.url("/page")


async def test_http_errors_are_results_not_exceptions(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    upstream.set("/gone", "gone", status=410)
    assert (await fetcher.fetch(upstream.url("/gone"), OPEN)).status == 410
    missing = await fetcher.fetch(upstream.url("/nothing-here"), OPEN)
    assert missing.status == 404 and not missing.ok


async def test_head_reads_no_body(fetcher: SafeFetcher, upstream: Upstream) -> None:
    upstream.set("/page", "x" * 1000)
    result = await fetcher.fetch(upstream.url("/page"), OPEN, method="HEAD")
    assert result.ok and result.body == b""
    assert upstream.requests[-1].method == "HEAD"


async def test_user_agent_is_sent_on_every_request(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    """A site owner must be able to see who fetches their pages (and robots.txt) and reach us."""
    upstream.set("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    upstream.set("/page", "hi")
    await fetcher.fetch(upstream.url("/page"), FetchPolicy(allow_private=True, robots=True))
    seen = {r.path_qs: r.headers.get("User-Agent") for r in upstream.requests}
    assert seen == {"/robots.txt": UA, "/page": UA}


async def test_conditional_request_gives_not_modified(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    upstream.set("/feed.xml", "<rss/>", content_type="application/rss+xml")
    first = await fetcher.fetch(upstream.url("/feed.xml"), OPEN)
    by_etag = await fetcher.fetch(upstream.url("/feed.xml"), OPEN, etag=first.etag)
    assert by_etag.not_modified and by_etag.status == 304 and by_etag.body == b""
    by_date = await fetcher.fetch(
        upstream.url("/feed.xml"), OPEN, last_modified=first.last_modified
    )
    assert by_date.not_modified
    sent = upstream.requests[-2].headers
    assert sent["If-None-Match"] == first.etag
    upstream.set("/feed.xml", "<rss><item/></rss>", content_type="application/rss+xml")
    changed = await fetcher.fetch(upstream.url("/feed.xml"), OPEN, etag=first.etag)
    assert changed.status == 200 and changed.body == b"<rss><item/></rss>"
    assert changed.etag != first.etag


async def test_redirects_are_followed_and_listed(fetcher: SafeFetcher, upstream: Upstream) -> None:
    upstream.set("/new", "moved here")
    start = upstream.url("/redirect?to=/new&status=301")
    result = await fetcher.fetch(start, OPEN)
    assert result.body == b"moved here" and result.url == upstream.url("/new")
    assert result.redirects == (start,)
    five = await fetcher.fetch(upstream.url("/chain/5"), OPEN)
    assert five.body == b"end" and len(five.redirects) == 5


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/file.txt"])
async def test_scheme_other_than_http_is_refused(fetcher: SafeFetcher, url: str) -> None:
    assert (await refused(fetcher, url, OPEN)).reason == "scheme"


async def test_credentials_in_url_are_refused(fetcher: SafeFetcher, upstream: Upstream) -> None:
    url = upstream.url("/page").replace("http://", "http://user:secret@")
    assert (await refused(fetcher, url, OPEN)).reason == "bad_url"
    assert upstream.hits["/page"] == 0


async def test_host_not_in_allowlist_is_refused(fetcher: SafeFetcher, upstream: Upstream) -> None:
    upstream.set("/page", "hi")
    policy = FetchPolicy(allow_private=True, allowed_hosts=("docs.example.com",))
    error = await refused(fetcher, upstream.url("/page"), policy)
    assert error.reason == "host_not_allowed" and "127.0.0.1" in error.detail
    assert upstream.hits["/page"] == 0


async def test_redirect_to_a_host_not_allowed_is_refused(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    """An allowed site must not be able to send the fetcher on to a host the admin never allowed
    (an open redirect on the intranet leading to another internal service)."""
    upstream.set("/secret", "internal")
    elsewhere = upstream.url("/secret", host="localhost")
    policy = FetchPolicy(allow_private=True, allowed_hosts=("127.0.0.1",))
    error = await refused(fetcher, upstream.url(f"/redirect?to={elsewhere}"), policy)
    assert error.reason == "host_not_allowed" and error.url == elsewhere
    assert upstream.hits["/redirect"] == 1 and upstream.hits["/secret"] == 0


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "10.255.255.1",
        "169.254.169.254",
        "100.64.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:10.0.0.1]",
        "0.0.0.0",  # noqa: S104  (a URL host here, not a bind)
    ],
)
async def test_private_addresses_are_refused(
    fetcher: SafeFetcher, upstream: Upstream, host: str
) -> None:
    """Sources are URLs admins type in: without this, one could read the cloud metadata service
    (169.254.169.254) or an intranet admin page through Inflow. 10.255.255.1 does not answer, so
    a fetcher that tried to connect would time out (FetchFailed), not refuse."""
    upstream.set("/page", "internal")
    url = upstream.url("/page", host=host)
    error = await refused(fetcher, url, STRICT)
    assert error.reason == "private_address"
    assert "address" in error.detail and "INFLOW_FETCH_ALLOW_PRIVATE" in error.detail
    assert upstream.hits["/page"] == 0


async def test_allow_private_reaches_the_same_server(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    upstream.set("/page", "internal")
    assert (await fetcher.fetch(upstream.url("/page", host="localhost"), OPEN)).ok


async def test_public_server_is_fetched_by_the_strict_fetcher(
    fetcher: SafeFetcher, public_upstream: Upstream
) -> None:
    public_upstream.set("/page", "public")
    result = await fetcher.fetch(public_upstream.url("/page"), STRICT)
    assert result.body == b"public"


@pytest.mark.parametrize("target_host", ["127.0.0.1", "localhost"])
async def test_redirect_to_a_private_address_is_refused(
    fetcher: SafeFetcher, public_upstream: Upstream, upstream: Upstream, target_host: str
) -> None:
    """A public page that redirects to an internal address must not get the fetcher there: every
    hop is checked, by IP literal and by name (through the guarded resolver)."""
    upstream.set("/admin", "internal")
    target = upstream.url("/admin", host=target_host)
    error = await refused(fetcher, public_upstream.url(f"/redirect?to={target}"), STRICT)
    assert error.reason == "private_address" and error.url == target
    assert public_upstream.hits["/redirect"] == 1 and upstream.hits["/admin"] == 0


async def test_body_larger_than_max_bytes_by_content_length_is_refused(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    upstream.set("/big", b"x" * 5000, content_type="application/octet-stream")
    policy = FetchPolicy(allow_private=True, max_bytes=4000)
    assert (await refused(fetcher, upstream.url("/big"), policy)).reason == "too_large"
    ok = await fetcher.fetch(upstream.url("/big"), FetchPolicy(allow_private=True, max_bytes=5000))
    assert len(ok.body) == 5000


async def test_endless_stream_without_content_length_is_refused(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    """A server that streams forever must not fill the memory: the body is cut at max_bytes."""
    policy = FetchPolicy(allow_private=True, max_bytes=300_000)
    assert (await refused(fetcher, upstream.url("/huge"), policy)).reason == "too_large"


async def test_compressed_body_counts_its_decompressed_size(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    """A gzip bomb: a few kilobytes on the wire, megabytes once decompressed."""
    bomb = gzip.compress(b"\0" * 2_000_000)
    assert len(bomb) < 10_000
    upstream.set("/bomb", bomb, content_type="text/html", headers={"Content-Encoding": "gzip"})
    policy = FetchPolicy(allow_private=True, max_bytes=100_000)
    assert (await refused(fetcher, upstream.url("/bomb"), policy)).reason == "too_large"


async def test_too_many_redirects_are_refused(fetcher: SafeFetcher, upstream: Upstream) -> None:
    policy = FetchPolicy(allow_private=True, max_redirects=3)
    assert (await refused(fetcher, upstream.url("/chain/4"), policy)).reason == (
        "too_many_redirects"
    )
    assert upstream.hits["/chain/0"] == 0


async def test_timeout_on_a_slow_server(fetcher: SafeFetcher, upstream: Upstream) -> None:
    policy = FetchPolicy(allow_private=True, timeout=0.5)
    with pytest.raises(FetchFailed) as info:
        await fetcher.fetch(upstream.url("/slow?seconds=30"), policy)
    assert info.value.reason == "timeout"


async def test_connection_refused_is_a_failure(fetcher: SafeFetcher) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchFailed) as info:
        await fetcher.fetch(f"http://127.0.0.1:{port}/", OPEN)
    assert info.value.reason == "connection"


# -- robots.txt ------------------------------------------------------------------------------------

ROBOTS = """User-agent: OtherBot
Disallow: /

User-agent: *
Disallow: /private/
"""


async def test_robots_txt_disallow_is_obeyed_and_fetched_once_an_hour(
    fetcher: SafeFetcher, upstream: Upstream, clock: Clock
) -> None:
    upstream.set("/robots.txt", ROBOTS, content_type="text/plain")
    upstream.set("/private/page", "no")
    upstream.set("/public/page", "yes")
    policy = FetchPolicy(allow_private=True, robots=True)
    assert (await refused(fetcher, upstream.url("/private/page"), policy)).reason == "robots"
    assert upstream.hits["/private/page"] == 0
    results = await asyncio.gather(
        *(fetcher.fetch(upstream.url("/public/page"), policy) for _ in range(4))
    )
    assert all(r.body == b"yes" for r in results)
    assert upstream.hits["/robots.txt"] == 1
    # without policy.robots the page is fetched (an admin's own intranet crawl may choose so)
    assert (await fetcher.fetch(upstream.url("/private/page"), OPEN)).ok
    clock.now += 3601
    upstream.set("/robots.txt", "User-agent: *\nDisallow: /public/\n", content_type="text/plain")
    assert (await refused(fetcher, upstream.url("/public/page"), policy)).reason == "robots"
    assert upstream.hits["/robots.txt"] == 2


async def test_robots_txt_group_for_inflow_applies(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    upstream.set("/robots.txt", "User-agent: Inflow\nDisallow: /docs/\n", content_type="text/plain")
    upstream.set("/docs/a", "a")
    policy = FetchPolicy(allow_private=True, robots=True)
    assert (await refused(fetcher, upstream.url("/docs/a"), policy)).reason == "robots"


async def test_robots_txt_missing_allows_and_server_error_disallows(
    fetcher: SafeFetcher, upstream: Upstream, public_upstream: Upstream
) -> None:
    """RFC 9309: a 4xx robots.txt means no rules; a 5xx means the site is off limits for now."""
    upstream.set("/page", "ok")
    policy = FetchPolicy(allow_private=True, robots=True)
    assert (await fetcher.fetch(upstream.url("/page"), policy)).ok  # robots.txt: 404
    public_upstream.set("/robots.txt", "down", status=503)
    public_upstream.set("/page", "ok")
    error = await refused(fetcher, public_upstream.url("/page"), policy)
    assert error.reason == "robots" and public_upstream.hits["/page"] == 0


async def test_crawl_delay_is_read_from_robots_txt(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    upstream.set("/robots.txt", "User-agent: *\nCrawl-delay: 2\n", content_type="text/plain")
    assert await fetcher.crawl_delay(upstream.url("/a"), OPEN) == 2.0


# -- per-host concurrency -------------------------------------------------------------------------


async def test_per_host_concurrency_never_exceeds_the_limit(
    fetcher: SafeFetcher, upstream: Upstream
) -> None:
    """A sync of a 200-page site must not hit the site with 200 requests at once."""
    results = await asyncio.gather(
        *(fetcher.fetch(upstream.url("/slow?seconds=0.2"), OPEN) for _ in range(6))
    )
    assert all(r.body == b"slow" for r in results)
    assert upstream.hits["/slow"] == 6
    assert 1 <= upstream.active_max <= 2


# -- check_url (for callers that connect by other means: git) ------------------------------------


async def test_check_url(fetcher: SafeFetcher, upstream: Upstream) -> None:
    for url, reason in [
        ("file:///etc/passwd", "scheme"),
        ("http://localhost/repo.git", "private_address"),
        ("http://[::1]/repo.git", "private_address"),
        ("not a url", "bad_url"),
    ]:
        with pytest.raises(FetchRefused) as info:
            await fetcher.check_url(url, STRICT)
        assert info.value.reason == reason, url
    with pytest.raises(FetchRefused) as info:
        await fetcher.check_url(
            "https://git.other.com/x.git", FetchPolicy(allowed_hosts=("*.example.com",))
        )
    assert info.value.reason == "host_not_allowed"
    await fetcher.check_url(upstream.url("/repo.git"), OPEN)
    await fetcher.check_url("http://127.0.0.2/repo.git", STRICT)  # public_networks
    assert upstream.hits["/repo.git"] == 0  # nothing fetched


# -- pure pieces ---------------------------------------------------------------------------------


def test_host_allowlist_matching() -> None:
    hosts = ("docs.example.com", "*.intranet.example.org", "Bücher.example")
    assert host_allowed("docs.example.com", hosts)
    assert host_allowed("DOCS.example.com.", hosts)
    assert host_allowed("wiki.intranet.example.org", hosts)
    assert host_allowed("a.b.intranet.example.org", hosts)
    assert not host_allowed("intranet.example.org", hosts)  # list the apex itself when wanted
    assert not host_allowed("evilintranet.example.org", hosts)
    assert not host_allowed("docs.example.com.evil.net", hosts)
    assert host_allowed("xn--bcher-kva.example", hosts)
    assert host_allowed("anything.net", ())


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.2", False),
        ("192.168.1.1", False),
        ("172.16.0.1", False),
        ("100.127.255.254", False),  # CGNAT
        ("224.0.0.251", False),  # multicast
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("198.18.0.1", False),  # benchmarking
        ("fd00::1", False),  # unique local
        ("fe80::1", False),
        ("fec0::1", False),  # site-local
        ("ff02::1", False),
        ("::ffff:192.168.0.1", False),  # IPv4-mapped
        ("::ffff:8.8.8.8", True),
        ("2002:c0a8:0001::1", False),  # 6to4 of 192.168.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2001:db8::1", False),  # documentation
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


# -- at the HTTP boundary -------------------------------------------------------------------------


async def test_refusal_reaching_the_boundary_is_a_422_problem_with_its_reason(
    aiohttp_client: Any, fetcher: SafeFetcher, upstream: Upstream
) -> None:
    """An admin's "check this URL" answer must say which rule refused it, as a problem body."""

    async def handler(request: web.Request) -> web.Response:
        await fetcher.check_url(request.query["url"], STRICT)
        return web.Response(text="ok")

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/check", handler)
    client = await aiohttp_client(app)
    response = await client.get("/check", params={"url": upstream.url("/x")})
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["reason"] == "private_address" and body["url"] == upstream.url("/x")
    assert body["title"] == "Fetch refused"


def test_socket_factory_refuses_a_private_address_on_its_own() -> None:
    """The last layer: were a private address ever to get past the resolver (or an IP literal
    past the URL check), the socket for it is not even made."""
    from server.fetch.resolver import AddressRefused, guarded_socket

    factory = guarded_socket()
    for sockaddr, family in [
        (("127.0.0.1", 80), socket.AF_INET),
        (("169.254.169.254", 80), socket.AF_INET),
        (("::ffff:10.0.0.1", 80, 0, 0), socket.AF_INET6),
    ]:
        with pytest.raises(AddressRefused):
            factory((family, socket.SOCK_STREAM, 6, "", sockaddr))
    exempt = guarded_socket((ipaddress.ip_network("127.0.0.2/32"),))
    with exempt((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 80))) as sock:
        assert sock.family == socket.AF_INET
