"""What a connector gives the sync engine, and what the engine gives a connector.

A connector (feed, website, git) reads one source and answers a `Listing`: every item the source
has now, as an `Item` (its content), `Unchanged` (a conditional request said 304: keep the aid as
it is) or `Failed` (this one item could not be read: keep the old aid, report the reason). It
never writes anything: the sync engine (server/sources/sync.py) compares the listing with what it
made before and writes all changes in one transaction. A connector that cannot read the source at
all raises `SyncError`; then the run fails and nothing changes.

Connectors fetch only through `ctx.fetcher` with `ctx.policy` (server/fetch: allowlist, private
addresses, size and time limits), and do CPU work (parsing, extraction) in a thread, never on the
event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from server.fetch import FetchPolicy, SafeFetcher
    from server.sources.models import Source, SourceItem


class SyncError(Exception):
    """The whole source could not be read (a refused or failed fetch, a broken feed); the run
    fails and nothing changes. `reason` is shown to the admin as the run's error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Item:
    """One item of a source, read now: it becomes (or updates) one aid."""

    external_id: str  # stable within the source: entry id, page URL, file path
    url: str  # where it lives (becomes the aid's `source`)
    title: str
    body: str  # Markdown
    summary: str = ""
    type: str = ""  # "" = the source's aid_type
    tags: tuple[str, ...] = ()  # added to the source's tags when the aid is made
    # Docs-as-code front matter (apps, audience, tags, type, summary, id, ...): git only.
    fields: Mapping[str, Any] = field(default_factory=dict)
    transcript: str = ""  # WebVTT/SRT text for a video item
    etag: str = ""  # per-item validators (website pages), kept for the next conditional GET
    last_modified: str = ""


@dataclass(frozen=True)
class Unchanged:
    """A conditional request said 304: the item is still there, as it was."""

    external_id: str


@dataclass(frozen=True)
class Failed:
    """This item could not be read; its old aid stays as it was."""

    external_id: str
    reason: str


Entry = Item | Unchanged | Failed


@dataclass
class Listing:
    """Everything the source has now."""

    entries: list[Entry] = field(default_factory=list)
    # False: the listing was cut (a page cap): what is missing is not archived.
    complete: bool = True
    # The whole source answered 304 (feeds): nothing changed, no item is read.
    not_modified: bool = False
    # Source-level validators to keep for the next run ({"etag": ..., "last_modified": ...}).
    validators: dict[str, str] = field(default_factory=dict)


@dataclass
class SyncContext:
    """What a connector gets for one run."""

    fetcher: SafeFetcher
    policy: FetchPolicy
    source: Source
    previous: Mapping[str, SourceItem]  # by external_id, for conditional requests
    validators: Mapping[str, str]  # the source's stored ones (etag, last_modified)
    work_dir: Path  # a private temporary folder (git clones), removed after the run
    on_progress: Callable[[int, int, str], None] | None = None

    def progress(self, done: int, total: int, message: str) -> None:
        """Report progress (shown by GET of the source while it runs)."""
        if self.on_progress is not None:
            self.on_progress(done, total, message)


class Connector(Protocol):
    async def list(self, ctx: SyncContext) -> Listing:
        """Everything the source has now; raises SyncError when the whole source fails."""
        ...
