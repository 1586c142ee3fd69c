"""Link health: every link of every published aid, checked through the safe fetcher.

What is checked: the links in a published aid's Markdown body (Markdown links and images,
reference definitions, `<https://...>` autolinks and bare URLs in text; not what is inside code)
and its `source` URL, the aid's primary link. Only http(s); each link once per aid (a fragment
does not make another link), and each URL once per run however many aids name it.

How (`check_url`): HEAD first; GET when the server refuses HEAD (405, 501, or 403 for HEAD, which
some servers answer to every HEAD), through the same `SafeFetcher` as the sources
(server/fetch): its host checks, private-address refusal (unless
`INFLOW_FETCH_ALLOW_PRIVATE`), size and time limits, and robots.txt, which a link check obeys.
One host's links are checked one after another with a polite pause between them
(INFLOW_LINK_CHECK_DELAY_SECONDS, or the site's robots.txt Crawl-delay when longer, up to
`CRAWL_DELAY_MAX_SECONDS`); a few hosts at a time (`HOSTS_AT_ONCE`).

What a result says (`LinkCheck.status`):
- `ok`: a 2xx answer;
- `redirected`: a 2xx answer after redirects (`final_url` is where they ended: update the link);
- `broken`: a 4xx or 5xx answer (but 429: `error`, the server asked us to slow down);
- `refused`: the safe fetcher would not fetch it (`detail` says why: a private address, robots.txt,
  too many redirects, ...);
- `error`: no answer (a timeout, a connection or DNS failure).

A run (`LinkChecker.run`) writes one row per (aid, link), keeps `failing_since` while a link keeps
failing, clears it when the link works again, and deletes the rows of links no longer in any
published aid. Everything is read and written in the storage thread; Markdown is parsed in the
default executor; the event loop only waits on the network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from markdown_it import MarkdownIt
from markdown_it.token import Token

from server.db.content_tables import aids as aids_table
from server.db.health_tables import link_checks
from server.fetch import FetchFailed, FetchPolicy, FetchRefused
from server.health.models import DETAIL_MAX, FAILING, URL_MAX, LinkCheck
from server.peer.models import new_id
from server.peer.store import PeerTx, codec_of, register, table_of
from server.storage import now_iso

if TYPE_CHECKING:
    from server.fetch import FetchResult, SafeFetcher
    from server.peer.store import PeerStore

log = logging.getLogger("inflow.health")
register(LinkCheck, link_checks)  # the generic store reads and writes it

HOST_DELAY_SECONDS = 1.0  # between two requests to one host (a polite crawler's pace)
HOSTS_AT_ONCE = 4  # hosts checked at the same time
# a robots.txt Crawl-delay longer than the setting is obeyed, up to this (a day-long delay would
# stall the host's checks for good)
CRAWL_DELAY_MAX_SECONDS = 30.0
LINKS_PER_AID = 200  # more than this in one body: the first 200 are checked
WRITE_CHUNK = 500  # rows per write transaction (the storage thread serves everyone else too)
# A link check only needs the answer, not the page: a body bigger than this is not read, and a
# server that answered with one is working (`ok`).
CHECK_MAX_BYTES = 1_000_000

# -- finding the links -------------------------------------------------------------------------

# A bare URL in text: up to whitespace or a character that cannot end a URL in prose.
_BARE_URL = re.compile(r"https?://[^\s<>\"'`\]\[{}|\\^]+", re.IGNORECASE)
_TRAILING = ".,;:!?*_~"


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # the renderer's syntax (server/render.py): CommonMark with tables and strikethrough
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _trim(url: str) -> str:
    """A bare URL without the punctuation of the sentence around it (a closing parenthesis
    only when the URL opened none: `(see https://x.example/a_(b))`)."""
    while url:
        unopened = url[-1] == ")" and url.count("(") < url.count(")")
        if url[-1] in _TRAILING or unopened:
            url = url[:-1]
        else:
            break
    return url


def _normal(url: str) -> str | None:
    """The URL to check (no fragment), or None when it is not an http(s) URL with a host."""
    url = url.strip()
    if not re.match(r"^https?://", url, re.IGNORECASE) or len(url) > URL_MAX:
        return None
    try:
        parts = urlsplit(url)
        if not parts.hostname:
            return None
    except ValueError:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query, ""))


def _inline(children: Iterable[Token], out: list[str]) -> None:
    depth = 0  # inside a link: its text is its label, not another link
    for tok in children:
        if tok.type == "link_open":
            depth += 1
            out.append(str(tok.attrs.get("href", "")))
        elif tok.type == "link_close":
            depth = max(0, depth - 1)
        elif tok.type == "image":
            out.append(str(tok.attrs.get("src", "")))
        elif tok.type == "text" and depth == 0:
            out.extend(_trim(m.group(0)) for m in _BARE_URL.finditer(tok.content))


def extract_links(body: str) -> list[str]:
    """The http(s) links of a Markdown body, in order of appearance, each once."""
    found: list[str] = []
    for tok in _parser().parse(body):
        if tok.type == "inline" and tok.children:
            _inline(tok.children, found)
    seen: dict[str, None] = {}
    for raw in found:
        url = _normal(raw)
        if url is not None:
            seen.setdefault(url, None)
    return list(seen)


def aid_links(body: str, source: str) -> list[tuple[str, bool]]:
    """(url, primary) of one aid: its `source` first (primary), then its body's other links."""
    out: list[tuple[str, bool]] = []
    primary = _normal(source) if source else None
    if primary is not None:
        out.append((primary, True))
    for url in extract_links(body)[:LINKS_PER_AID]:
        if url != primary:
            out.append((url, False))
    return out


def published_links(rows: Iterable[tuple[str, str, str]]) -> dict[str, list[tuple[str, bool]]]:
    """aid id -> its links, for (id, body, source) rows of published aids."""
    return {aid_id: aid_links(body or "", source or "") for aid_id, body, source in rows}


# -- checking one URL --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str
    http_status: int = 0
    final_url: str = ""
    detail: str = ""


REFUSALS = {
    "scheme": "Not an http(s) link.",
    "bad_url": "Not a valid URL.",
    "host_not_allowed": "The host is not allowed.",
    "private_address": (
        "The host is on a private or local network; Inflow fetches those only when "
        "INFLOW_FETCH_ALLOW_PRIVATE is on."
    ),
    "robots": "The site's robots.txt does not let Inflow check this page.",
    "too_large": "The answer was larger than Inflow reads.",
    "too_many_redirects": "Too many redirects (a loop?).",
}
FAILURES = {
    "timeout": "No answer in time (timeout).",
    "connection": "The connection failed (nothing listens there, or it was cut).",
    "dns": "The host name does not resolve (DNS).",
}
HEAD_REFUSED = frozenset({403, 405, 501})


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", "") or "")


def outcome_of(result: FetchResult) -> Outcome:
    """What an answer says about the link."""
    status = result.status
    final = result.url if result.redirects else ""
    if 200 <= status < 300:
        return Outcome("redirected" if result.redirects else "ok", status, final)
    if status == 429:
        return Outcome("error", status, final, "The server asked Inflow to slow down (429).")
    if 300 <= status < 400:
        return Outcome("broken", status, final, f"HTTP {status}: a redirect without a target.")
    return Outcome("broken", status, final, f"HTTP {status}.")


async def check_url(fetcher: SafeFetcher, url: str, policy: FetchPolicy) -> Outcome:
    """HEAD, then GET when HEAD is refused; never raises for what the link is or does."""
    try:
        result = await fetcher.fetch(url, policy, method="HEAD")
        if result.status in HEAD_REFUSED:
            result = await fetcher.fetch(url, policy, method="GET")
    except FetchRefused as exc:
        reason = _reason(exc)
        if reason == "too_large":  # it answered, with more than we read: the link works
            return Outcome("ok", 200, "", REFUSALS["too_large"])
        return Outcome("refused", 0, "", REFUSALS.get(reason, str(exc))[:DETAIL_MAX])
    except FetchFailed as exc:
        return Outcome("error", 0, "", FAILURES.get(_reason(exc), str(exc))[:DETAIL_MAX])
    except (UnicodeError, ValueError):  # a host no encoding accepts ("a..b"): not a URL
        return Outcome("refused", 0, "", REFUSALS["bad_url"])
    except Exception as exc:  # one odd link must never cost the results of all the others
        log.warning("link check of %s failed: %r", url, exc)
        return Outcome("error", 0, "", f"Inflow could not check it ({type(exc).__name__}).")
    return outcome_of(result)


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


Progress = Callable[[int, int, str], None]
Found = Callable[[str, "Outcome"], Awaitable[None]]


async def _crawl_delay(fetcher: SafeFetcher, url: str, policy: FetchPolicy) -> float:
    """The Crawl-delay the host's robots.txt asks for, at most CRAWL_DELAY_MAX_SECONDS."""
    try:
        asked = await fetcher.crawl_delay(url, policy)
    except Exception:  # refused, unreachable, a host no codec takes: the checks say so themselves
        return 0.0
    return min(max(0.0, asked), CRAWL_DELAY_MAX_SECONDS)


async def check_all(
    fetcher: SafeFetcher,
    urls: Sequence[str],
    policy: FetchPolicy,
    *,
    delay: float = HOST_DELAY_SECONDS,
    progress: Progress | None = None,
    found: Found | None = None,
) -> dict[str, Outcome]:
    """Every URL checked once: one host's URLs in turn, `delay` seconds apart; a few hosts at a
    time. `found(url, outcome)` is awaited as each result comes."""
    by_host: dict[str, list[str]] = defaultdict(list)
    for url in urls:
        by_host[_host(url)].append(url)
    results: dict[str, Outcome] = {}
    total = len(urls)
    gate = asyncio.Semaphore(HOSTS_AT_ONCE)

    async def host_run(host: str, host_urls: list[str]) -> None:
        async with gate:
            pause = delay
            for i, url in enumerate(host_urls):
                if i == 1 and policy.robots:  # robots.txt is cached now: its Crawl-delay
                    pause = max(delay, await _crawl_delay(fetcher, url, policy))
                if i and pause > 0:
                    await asyncio.sleep(pause)
                results[url] = outcome = await check_url(fetcher, url, policy)
                if found is not None:
                    await found(url, outcome)
                if progress is not None:
                    progress(len(results), total, f"Checked {len(results)} of {total} links")

    await asyncio.gather(*(host_run(h, u) for h, u in sorted(by_host.items())))
    return results


# -- a run ---------------------------------------------------------------------------------------


def _published_versions(tx: PeerTx) -> dict[str, str]:
    """Published aid id -> its version and update time (what says its body may have changed)."""
    t = aids_table
    stmt = sa.select(t.c.id, t.c.version, t.c.updated_at).where(t.c.status == "published")
    return {r["id"]: f"{r['version']}@{r['updated_at']}" for r in tx.execute(stmt).mappings()}


def _published_rows(tx: PeerTx, ids: Sequence[str]) -> list[tuple[str, str, str]]:
    """(id, body, source) of these aids, read in chunks."""
    t = aids_table
    out: list[tuple[str, str, str]] = []
    for i in range(0, len(ids), WRITE_CHUNK):
        stmt = sa.select(t.c.id, t.c.body, t.c.source).where(t.c.id.in_(ids[i : i + WRITE_CHUNK]))
        out.extend((r["id"], r["body"], r["source"]) for r in tx.execute(stmt).mappings())
    return out


# aid id -> (its version stamp, its links): what the last run found, so a run parses only the
# aids changed since (Markdown parsing is the CPU-heavy part of a run)
LinkCache = dict[str, tuple[str, list[tuple[str, bool]]]]


def _merged(old: LinkCheck | None, fresh: LinkCheck) -> LinkCheck:
    """The new row, `failing_since` carried over while the link keeps failing."""
    if fresh.status not in FAILING:
        return dataclasses.replace(fresh, failing_since="")
    since = old.failing_since if old is not None and old.failing_since else fresh.checked_at
    return dataclasses.replace(fresh, failing_since=since)


def _write_chunk(tx: PeerTx, *, rows: Sequence[LinkCheck]) -> None:
    """Upsert one chunk of results by (aid, url), in bulk statements: new links inserted, changed
    ones rewritten, unchanged ones only get the new `checked_at`."""
    table = table_of(LinkCheck)
    codec = codec_of(LinkCheck)
    existing = {
        (r.aid_id, r.url): r for r in tx.list(LinkCheck, aid_id=sorted({r.aid_id for r in rows}))
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    touched: dict[str, list[str]] = defaultdict(list)  # checked_at -> ids
    for row in rows:
        old = existing.get((row.aid_id, row.url))
        merged = _merged(old, row)
        if old is None:
            inserts.append(codec.to_row(dataclasses.replace(merged, id=new_id())))
        elif dataclasses.replace(old, checked_at=merged.checked_at) == merged:
            touched[merged.checked_at].append(old.id)
        else:
            stored = codec.to_row(dataclasses.replace(merged, id=old.id))
            updates.append({f"v_{k}": v for k, v in stored.items()})
    if inserts:
        tx.execute(sa.insert(table), inserts)
    if updates:
        columns = [c.name for c in table.columns if c.name != "id"]
        stmt = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("v_id"))
            .values({c: sa.bindparam(f"v_{c}") for c in columns})
        )
        tx.execute(stmt, updates)
    for stamp, ids in touched.items():
        tx.execute(sa.update(table).where(table.c.id.in_(ids)).values(checked_at=stamp))


def _prune(tx: PeerTx, keep: set[tuple[str, str]]) -> int:
    """Delete the rows of links no longer in any published aid."""
    table = table_of(LinkCheck)
    rows = tx.execute(sa.select(table.c.id, table.c.aid_id, table.c.url)).mappings()
    gone = [r["id"] for r in rows if (r["aid_id"], r["url"]) not in keep]
    for i in range(0, len(gone), WRITE_CHUNK):
        tx.execute(sa.delete(table).where(table.c.id.in_(gone[i : i + WRITE_CHUNK])))
    return len(gone)


@dataclass(frozen=True)
class RunSummary:
    aids: int
    links: int
    urls: int
    by_status: Mapping[str, int]
    removed: int


class LinkChecker:
    """One check of every link of every published aid (the `link-check` job runs it)."""

    def __init__(
        self,
        store: PeerStore,
        fetcher: SafeFetcher,
        policy: FetchPolicy,
        *,
        delay: float = HOST_DELAY_SECONDS,
        cache: LinkCache | None = None,
        chunk: int = WRITE_CHUNK,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.policy = policy
        self.delay = delay
        self.cache: LinkCache = {} if cache is None else cache
        self.chunk = chunk  # results written per transaction, as they come

    async def links(self) -> dict[str, list[tuple[str, bool]]]:
        """Every published aid's links: the cached ones of unchanged aids, the others parsed."""
        versions = await self.store.read(_published_versions)
        cache = self.cache
        changed = [i for i, v in versions.items() if i not in cache or cache[i][0] != v]
        if changed:
            rows = await self.store.read(lambda tx: _published_rows(tx, changed))
            loop = asyncio.get_running_loop()
            parsed = await loop.run_in_executor(None, published_links, rows)
            for aid_id, found in parsed.items():
                cache[aid_id] = (versions[aid_id], found)
        for aid_id in set(cache) - set(versions):
            del cache[aid_id]
        return {i: cache[i][1] for i in sorted(versions) if i in cache}  # by aid id

    async def run(self, progress: Progress | None = None) -> RunSummary:
        """Check every link; results are written as they come, in chunks (a run cut short by a
        restart keeps what it found), and the rows of links no longer in a published aid are
        deleted once the whole run is done."""
        links = await self.links()
        named_by: dict[str, list[tuple[str, bool]]] = defaultdict(list)  # url -> (aid, primary)
        for aid_id, pairs in links.items():
            for url, primary in pairs:
                named_by[url].append((aid_id, primary))
        urls = list(named_by)
        if progress is not None:
            progress(0, len(urls), f"Checking {len(urls)} links of {len(links)} aids")
        pending: list[LinkCheck] = []
        by_status: dict[str, int] = defaultdict(int)

        async def flush() -> None:
            batch = pending[:]
            pending.clear()
            if batch:
                await self.store.transaction(partial(_write_chunk, rows=batch))

        async def found(url: str, outcome: Outcome) -> None:
            stamp = now_iso()
            for aid_id, primary in named_by[url]:
                by_status[outcome.status] += 1
                pending.append(
                    LinkCheck(
                        aid_id=aid_id,
                        url=url,
                        primary=primary,
                        status=outcome.status,
                        http_status=outcome.http_status,
                        final_url=outcome.final_url[:URL_MAX],
                        detail=outcome.detail[:DETAIL_MAX],
                        checked_at=stamp,
                    )
                )
            if len(pending) >= self.chunk:
                await flush()

        await check_all(
            self.fetcher, urls, self.policy, delay=self.delay, progress=progress, found=found
        )
        await flush()
        keep = {(aid_id, url) for url, named in named_by.items() for aid_id, _ in named}
        removed = await self.store.transaction(lambda tx: _prune(tx, keep))
        summary = RunSummary(len(links), len(keep), len(urls), dict(by_status), removed)
        log.info(
            "link check: %d links of %d aids (%d URLs): %s; %d old results removed",
            summary.links,
            summary.aids,
            summary.urls,
            dict(by_status),
            removed,
        )
        return summary


# -- reading the results ---------------------------------------------------------------------------


def broken_primary_tx(tx: PeerTx, aid_ids: Iterable[str] | None = None) -> set[str]:
    """Ids of aids whose primary link (`source`) was broken at the last check."""
    table = table_of(LinkCheck)
    stmt = sa.select(table.c.aid_id).where(table.c.primary == 1, table.c.status == "broken")
    if aid_ids is not None:
        wanted = list(aid_ids)
        if not wanted:
            return set()
        stmt = stmt.where(table.c.aid_id.in_(wanted))
    return {r[0] for r in tx.execute(stmt)}


async def broken_primary(store: PeerStore, aid_ids: Iterable[str] | None = None) -> set[str]:
    ids = None if aid_ids is None else list(aid_ids)
    found: set[str] = await store.read(lambda tx: broken_primary_tx(tx, ids))
    return found


async def primary_check(store: PeerStore, aid_id: str) -> LinkCheck | None:
    """The last check of an aid's primary link (its `source`), if any."""

    def read(tx: PeerTx) -> LinkCheck | None:
        found = tx.list(LinkCheck, aid_id=aid_id, primary=True, limit=1)
        return found[0] if found else None

    check: LinkCheck | None = await store.read(read)
    return check


__all__ = [
    "HOST_DELAY_SECONDS",
    "LinkChecker",
    "Outcome",
    "RunSummary",
    "aid_links",
    "broken_primary",
    "broken_primary_tx",
    "check_all",
    "check_url",
    "extract_links",
    "outcome_of",
    "primary_check",
    "published_links",
]
