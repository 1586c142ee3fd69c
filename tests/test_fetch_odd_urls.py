"""The safe fetcher's outcomes on odd URLs: a result, FetchRefused or FetchFailed, nothing else.

A source's URL, a link in an aid and a redirect's Location come from people and servers Inflow
does not control. Any other exception escapes the callers' handling: a sync run or link check
dies with a traceback instead of recording the item's reason, and the admin API answers 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.fetch import FetchFailed, FetchPolicy, FetchRefused, FetchResult, SafeFetcher
from tests.upstream import Upstream

POLICIES = [
    FetchPolicy(allow_private=True, timeout=5.0),
    FetchPolicy(allow_private=False, timeout=5.0),
    FetchPolicy(allow_private=False, timeout=5.0, robots=True),
]
# Characters that make URLs odd: separators, percent signs, brackets, spaces, IDNA trouble
# (an ideographic full stop, a zero-width space, a combining accent, ß).
ODD = "aZ0-._~%:@[]/?#\\ \t\u00e9\u3002\u200b\u0301\u00dfxn"
HOSTS = st.one_of(
    st.text(alphabet=ODD, max_size=12),
    # labels: empty (a..b), over 63 characters, leading or trailing hyphens, non-ASCII
    st.lists(st.text(alphabet="ab-\u00e9xn", max_size=70), min_size=1, max_size=5).map(".".join),
    st.sampled_from(
        ["[::1]", "[::1", "[zz]", "127.1", "0x7f.1", "[::ffff:10.0.0.1]", "10.0.0.1", "[v1.x]"]
    ),
    st.text(max_size=8),
)
PORTS = st.sampled_from(["", ":", ":0", ":80", ":65536", ":-1", ":x", ":99999999999"])
SCHEMES = st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "", "http:", "//"])
URLS = st.builds(lambda s, h, p, q: f"{s}{h}{p}/{q}", SCHEMES, HOSTS, PORTS, st.text(max_size=10))
OUTCOMES = (FetchRefused, FetchFailed)


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(user_agent="Inflow/1 (+https://inflow.test.example)") as f:
        yield f


@pytest.mark.parametrize("url", ["http://a..b/", "http://.", "https://" + "a" * 64 + ".com/"])
@pytest.mark.parametrize("policy", POLICIES)
async def test_a_host_no_codec_accepts_is_a_bad_url(
    fetcher: SafeFetcher, url: str, policy: FetchPolicy
) -> None:
    """http://a..b/ (an empty label) raised UnicodeError out of SafeFetcher.fetch and check_url
    (the resolver's IDNA encoding): a source with that URL failed its sync with a traceback."""
    for call in (fetcher.fetch, fetcher.check_url, fetcher.crawl_delay):
        with pytest.raises(FetchRefused) as refused:
            await call(url, policy)
        assert refused.value.reason == "bad_url", call


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(url=URLS, policy=st.sampled_from(POLICIES), call=st.sampled_from(["fetch", "check_url"]))
async def test_every_odd_url_is_a_result_a_refusal_or_a_failure(
    fetcher: SafeFetcher, url: str, policy: FetchPolicy, call: str
) -> None:
    """Whatever URL a client sends, the fetcher answers in its own terms (found by this test:
    an empty or 64-character host label escaped as UnicodeError)."""
    try:
        outcome = await getattr(fetcher, call)(url, policy)
    except OUTCOMES:
        return
    assert outcome is None or isinstance(outcome, FetchResult)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(location=st.one_of(URLS, st.text(alphabet=ODD, max_size=20)))
async def test_every_odd_redirect_is_a_result_a_refusal_or_a_failure(
    fetcher: SafeFetcher, upstream: Upstream, location: str
) -> None:
    """A server redirecting to an odd Location (a..b, an unbracketed IPv6, a bad port) gets the
    same answers as a client sending that URL: each hop goes through the same checks."""
    # a header value cannot hold control characters: the server would not send it
    location = "".join(c for c in location if c.isprintable())
    upstream.set("/odd", "", status=302, headers={"Location": location})
    try:
        result = await fetcher.fetch(upstream.url("/odd"), POLICIES[0])
    except OUTCOMES:
        return
    assert isinstance(result, FetchResult)
