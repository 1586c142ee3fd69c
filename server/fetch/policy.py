"""What one fetch may do: which hosts, whether private addresses, how big, how long, robots.txt."""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

from server.fetch.addresses import Network, parse_ip, why_refused
from server.fetch.errors import FetchRefused

SCHEMES = ("http", "https")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of a fetch. Callers build it from the app's fetcher (`fetcher.policy(...)`), which
    fills the settings' defaults (INFLOW_FETCH_ALLOW_PRIVATE, _MAX_BYTES, _TIMEOUT_SECONDS)."""

    allowed_hosts: tuple[str, ...] = ()  # exact hosts or "*.example.com"; () = any host
    allow_private: bool = False  # loopback, private, link-local... addresses too
    max_bytes: int = 5_000_000  # a longer body is refused ("too_large"), never truncated
    timeout: float = 20.0  # seconds for the whole fetch: robots.txt, every redirect, the body
    max_redirects: int = 5
    robots: bool = False  # obey robots.txt (website sources, link checks)


def normal_host(host: str) -> str:
    """A host as compared with an allowlist: lower case, IDNA-encoded, no trailing dot."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("*."):
        return "*." + normal_host(host[2:])
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return host
    return host


def host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    """`host` is in the allowlist: an exact entry, or under a "*.example.com" entry (which does
    not match example.com itself: list it too). An empty allowlist allows every host."""
    if not allowed_hosts:
        return True
    host = normal_host(host)
    for entry in allowed_hosts:
        entry = normal_host(entry)
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def parse_url(url: str) -> URL:
    """`url` as a yarl URL without its fragment; FetchRefused("bad_url") when it is not one."""
    try:
        parsed = URL(url.strip())
    except (TypeError, ValueError) as exc:
        raise FetchRefused("bad_url", url, f"Not a URL: {url!r} ({exc}).") from exc
    if not parsed.scheme:
        raise FetchRefused("bad_url", url, f"Not an absolute URL: {url!r}.")
    return parsed.with_fragment(None)


def check_static(url: URL, policy: FetchPolicy, exempt: tuple[Network, ...] = ()) -> None:
    """The checks that need no network: scheme, host present and a valid name, no credentials,
    allowlist, and the address when the host is an IP literal (aiohttp connects to a literal
    without resolving it)."""
    text = str(url)
    if url.scheme not in SCHEMES:
        raise FetchRefused(
            "scheme", text, f"Only http and https URLs are fetched, not {url.scheme or 'none'}:."
        )
    host = url.raw_host or ""
    if not host:
        raise FetchRefused("bad_url", text, f"The URL {text!r} has no host.")
    if parse_ip(host) is None:
        try:
            # the codec the resolver encodes the name with: an empty or over-long label (a..b,
            # a 64-character label, ".") raises UnicodeError there, which is no fetch outcome
            host.encode("idna")
        except UnicodeError as exc:
            raise FetchRefused("bad_url", text, f"{host!r} is not a valid host name.") from exc
    if url.raw_user or url.raw_password:
        raise FetchRefused(
            "bad_url", text, "URLs with a user name or password in them are not fetched."
        )
    if not host_allowed(host, policy.allowed_hosts):
        raise FetchRefused(
            "host_not_allowed",
            text,
            f"The host {host} is not among the allowed hosts ({', '.join(policy.allowed_hosts)}).",
        )
    ip = parse_ip(host)
    if ip is not None and not policy.allow_private:
        why = why_refused(ip, exempt)
        if why:
            raise private_refusal(text, str(ip), why)


def private_refusal(url: str, ip: str, why: str) -> FetchRefused:
    return FetchRefused(
        "private_address",
        url,
        f"{url} leads to {ip}, a {why} address; Inflow fetches only from public addresses "
        "(INFLOW_FETCH_ALLOW_PRIVATE=1 allows private ones, for a test or an intranet).",
    )
