"""Where a learner's aid comes from: `provenance` in GET /api/v1/aids/{id}.

`{source_id, source_name, kind, url, updated_at}` for an aid a source made (`Aid.origin` set),
else null. `url` is where the item lives, `updated_at` when the sync last saw its content change
(the item's `changed_at`; the aid's own `updated_at` when the item is gone). The panel shows it
as "From <source_name>, updated <when>".

Source names are kept in memory (`SourceNames`, refreshed by the service whenever a source is
created, changed or deleted), so a learner's read costs one indexed look-up of the item only for
aids that have an origin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server import keys
from server.peer.store import PeerTx
from server.sources.models import Source, SourceItem

if TYPE_CHECKING:
    from aiohttp import web

    from server.models import Aid


@dataclass(frozen=True)
class SourceRef:
    name: str
    kind: str


class SourceNames:
    """Source id -> (name, kind), in memory."""

    def __init__(self) -> None:
        self._by_id: dict[str, SourceRef] = {}

    def refresh(self, sources: Iterable[Source]) -> None:
        self._by_id = {s.id: SourceRef(s.name, s.kind) for s in sources}

    def set(self, source: Source) -> None:
        self._by_id = {**self._by_id, source.id: SourceRef(source.name, source.kind)}

    def forget(self, source_id: str) -> None:
        self._by_id = {k: v for k, v in self._by_id.items() if k != source_id}

    def get(self, source_id: str) -> SourceRef | None:
        return self._by_id.get(source_id)


async def provenance_of(app: web.Application, aid: Aid) -> dict[str, Any] | None:
    """The provenance of an aid for the learner's JSON, or None (written in Inflow)."""
    if not aid.origin:
        return None
    service = app.get(keys.SOURCES)
    ref = service.names.get(aid.origin) if service is not None else None
    if service is None or ref is None:
        return None
    storage = app[keys.LIBRARY].storage

    def find(tx: PeerTx) -> SourceItem | None:
        found = tx.list(SourceItem, source_id=aid.origin, aid_id=aid.id, limit=1)
        return found[0] if found else None

    item = await storage.call(lambda: find(PeerTx(storage.conn)))
    return {
        "source_id": aid.origin,
        "source_name": ref.name,
        "kind": ref.kind,
        "url": (item.url if item is not None and item.url else aid.source) or None,
        "updated_at": (item.changed_at if item is not None and item.changed_at else aid.updated_at),
    }


def provenance_etag_part(provenance: dict[str, Any] | None) -> str:
    """What of the provenance the aid's ETag must cover (a renamed source, a newer change)."""
    if provenance is None:
        return ""
    return f"{provenance['source_name']}|{provenance['updated_at']}"


__all__ = ["SourceNames", "SourceRef", "provenance_etag_part", "provenance_of"]
