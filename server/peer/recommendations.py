"""Mentors recommend aids for a page: "María López recommends this" in the panel, and a bounded
ranking signal among the page's related aids.

A mentor caller (server/peer/people.py `mentor_of`: realm role `mentor` and a vetted, active
Mentor resource) recommends a published aid they may see for the page they are on: the page
(`url`, `title`) resolves, as suggest resolves it, to an app the mentor mentors and to its best
page context ("" when the page is of the app but no context matches: then the recommendation
holds on every page of the app). One recommendation per (mentor, context, aid); recommending again
changes its note.

Everything learners see is read from one in-memory cache (`Recommendations`), loaded at start-up
and reloaded in the storage thread whenever a recommendation is added or removed, never read from
the database per request:
- `page_recommendations(...)` (the panel): per aid, the vetted, active mentors of the app the
  caller may see who recommend it here, with their notes; only aids the caller may see.
- the signal (`Recommendations.__call__`, server.suggest.RelatedSignal): an aid recommended on
  the page by n such mentors scores n / (n + 1) (one mentor 0.5, two 0.67, ... never 1), which
  suggest turns into a lift of at most SIGNAL_WEIGHT of the best related relevance. It moves an
  aid among the related aids only: pins keep their place and order, and an aid that does not fit
  the page is never lifted in. Its `why.signals` entry says "Recommended by <mentor>".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field

from auth.identity import Identity
from server import keys
from server.catalog import AidMeta, Catalog
from server.db import peer_tables
from server.errors import Forbidden, NotFound, ValidationFailed
from server.library import Library
from server.models import CONFIG, Mentor, Slug
from server.peer.models import Note, Recommendation, new_id
from server.peer.people import mentor_of
from server.peer.store import PeerStore, PeerTx
from server.storage import now_iso
from server.suggest import SignalPart

MAX_NAMED = 3  # mentors named in a reason; more are "and N more"
REFRESH_SECONDS = 300.0  # reload from the database this often (other nodes' changes)
log = logging.getLogger("inflow.peer.recommendations")


@dataclass(frozen=True)
class RecommendRequest:
    """`POST /api/v1/peer/recommendations`: the page the mentor is on, the aid, a note."""

    __pydantic_config__ = CONFIG

    url: Annotated[str, Field(min_length=1, max_length=8192)]
    aid_id: Slug
    title: Annotated[str, Field(max_length=1000)] = ""
    note: Note = ""


@dataclass(frozen=True)
class UnrecommendRequest:
    """`DELETE /api/v1/peer/recommendations`: the page and the aid (a note is ignored)."""

    __pydantic_config__ = CONFIG

    url: Annotated[str, Field(min_length=1, max_length=8192)]
    aid_id: Slug
    title: Annotated[str, Field(max_length=1000)] = ""
    note: Annotated[str, Field(max_length=1000)] = ""


def _names(names: Sequence[str]) -> str:
    shown = list(names[:MAX_NAMED])
    more = len(names) - len(shown)
    if more:
        return f"{', '.join(shown)} and {more} more"
    if len(shown) == 1:
        return shown[0]
    return f"{', '.join(shown[:-1])} and {shown[-1]}"


class Recommendations:
    """Every recommendation, in memory, by page: (app, context) -> aid -> recommendations
    (oldest first). `reload` reads the table in the storage thread; the rest reads memory only.
    `library` gives the current catalog (mentors' names and vetting, aids)."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self.by_place: dict[tuple[str, str], dict[str, list[Recommendation]]] = {}
        self.version = 0
        self._lock = asyncio.Lock()
        self._mentors: tuple[int, dict[str, Mentor]] = (-1, {})

    @staticmethod
    def group(
        recs: Iterable[Recommendation],
    ) -> dict[tuple[str, str], dict[str, list[Recommendation]]]:
        """(app, context) -> aid -> its recommendations, oldest first."""
        by_place: dict[tuple[str, str], dict[str, list[Recommendation]]] = {}
        for rec in sorted(recs, key=lambda r: (r.created_at, r.id)):
            by_place.setdefault((rec.app_id, rec.context_id), {}).setdefault(rec.aid_id, []).append(
                rec
            )
        return by_place

    def load(self, recs: Iterable[Recommendation]) -> None:
        self.by_place = self.group(recs)
        self.version += 1

    async def reload(self, store: PeerStore) -> None:
        """Read and group every recommendation in the storage thread (never on the event loop:
        20,000 of them take a few hundred milliseconds), then swap the new map in."""
        async with self._lock:  # two changes at once: the later read wins, never an older one
            self.by_place = await store.read(lambda tx: self.group(tx.list(Recommendation)))
            self.version += 1

    async def run(self, store: PeerStore, interval: float = REFRESH_SECONDS) -> None:
        """The background task: reload every `interval` seconds, so what another node (or
        `inflow import` seeding the demo) changed shows here too. This node's own changes reload
        at once."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload(store)
            except Exception:
                log.exception("reloading the recommendations failed")

    def mentors(self, catalog: Catalog) -> dict[str, Mentor]:
        """Mentors by id, remade when the catalog changes (not per call)."""
        version, found = self._mentors
        if version != catalog.version:
            found = {m.id: m for m in catalog.mentors}
            self._mentors = (catalog.version, found)
        return found

    def on_page(self, app_id: str, context_ids: Sequence[str]) -> dict[str, list[Recommendation]]:
        """aid -> the recommendations that hold on a page of `app_id` matching `context_ids`
        (those of the whole app, then those of each context)."""
        out: dict[str, list[Recommendation]] = {}
        for ctx in ("", *context_ids):
            for aid_id, recs in self.by_place.get((app_id, ctx), {}).items():
                out.setdefault(aid_id, []).extend(recs)
        return out

    def counting(
        self, catalog: Catalog, app_id: str, recs: Iterable[Recommendation]
    ) -> list[tuple[Mentor, Recommendation]]:
        """The recommendations that count: by a vetted, active mentor of the app, one per
        mentor (a mentor's app-wide and page recommendation of one aid count once)."""
        mentors = self.mentors(catalog)
        seen: set[str] = set()
        out = []
        for rec in recs:
            m = mentors.get(rec.mentor_id)
            if m is None or not m.listed or app_id not in m.apps or m.id in seen:
                continue
            seen.add(m.id)
            out.append((m, rec))
        return out

    async def __call__(
        self, app_id: str, context_ids: tuple[str, ...], aid_ids: tuple[str, ...]
    ) -> dict[str, SignalPart]:
        """Suggest's signal among related aids (server.suggest.RelatedSignal): memory only."""
        found = self.on_page(app_id, context_ids)
        if not found:
            return {}
        catalog = self.library.catalog
        out: dict[str, SignalPart] = {}
        for aid_id in aid_ids:
            counted = self.counting(catalog, app_id, found.get(aid_id, ()))
            if not counted:
                continue
            n = len(counted)
            # The signal is per page, not per caller: a mentor whom only some audience may see
            # is counted but not named.
            names = [m.name for m, _ in counted if not m.audience]
            if len(names) < n:
                names.append("a mentor" if n - len(names) == 1 else f"{n - len(names)} mentors")
            reason = {
                "kind": "recommended",
                "count": n,
                "mentors": [m.name for m, _ in counted if not m.audience],
                "text": f"Recommended by {_names(names)}",
            }
            out[aid_id] = SignalPart(n / (n + 1), reason)
        return out


# -- what mentors do ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where a page is: its app and best context ("" when no context of the app matches)."""

    app_id: str
    app_name: str
    context_id: str
    context_name: str


def resolve_page(catalog: Catalog, url: str, title: str) -> Place:
    """The page as suggest resolves it; a page of no mapped app is a 422."""
    resolution = catalog.resolve(url, title or None)
    if resolution.app is None:
        raise ValidationFailed(
            "This page is not a mapped app: Inflow knows no app at this URL.",
            fields=["url"],
            errors=[{"field": "url", "message": "not a mapped app"}],
        )
    ctx = resolution.contexts[0] if resolution.contexts else None
    return Place(
        resolution.app.id, resolution.app.name, ctx.id if ctx else "", ctx.name if ctx else ""
    )


def mentor_here(identity: Identity, catalog: Catalog, place: Place, what: str) -> Mentor:
    """The caller as a vetted, active mentor of the page's app, or Forbidden saying why."""
    mentor = mentor_of(identity, catalog)
    if mentor is None:
        raise Forbidden(
            f"{what} is for vetted mentors: your account is not linked to a vetted, active "
            "mentor (an admin links it by your username or subject).",
            operation="aid.recommend",
        )
    if place.app_id not in mentor.apps:
        raise Forbidden(
            f"{what} on {place.app_name} is for its mentors; you mentor "
            f"{', '.join(mentor.apps) or 'no app'}.",
            operation="aid.recommend",
        )
    return mentor


def visible_aid(catalog: Catalog, aid_id: str, tags: frozenset[str] | None) -> AidMeta:
    """A published aid the caller may see, or 404 (its existence is not disclosed)."""
    meta = catalog.aids.get(aid_id)
    if meta is None or meta.status != "published" or not meta.visible_to(tags):
        raise NotFound(f"No aid with id {aid_id!r} is available to you.", fields=["aid_id"])
    return meta


def _rec_json(rec: Recommendation, mentor: Mentor, meta: AidMeta, place: Place) -> dict[str, Any]:
    return {
        "id": rec.id,
        "mentor_id": rec.mentor_id,
        "mentor_name": mentor.name,
        "app_id": rec.app_id,
        "context_id": rec.context_id,
        "context_name": place.context_name,
        "aid_id": rec.aid_id,
        "aid_title": meta.title,
        "note": rec.note,
        "created_at": rec.created_at,
    }


async def recommend(
    config: Mapping[Any, Any],
    identity: Identity,
    tags: frozenset[str] | None,
    body: RecommendRequest,
) -> tuple[dict[str, Any], bool]:
    """Recommend `body.aid_id` on the page; again: its note changes. (recommendation, created)"""
    catalog: Catalog = config[keys.LIBRARY].catalog
    place = resolve_page(catalog, body.url, body.title)
    mentor = mentor_here(identity, catalog, place, "Recommending aids")
    meta = visible_aid(catalog, body.aid_id, tags)
    if meta.apps and place.app_id not in meta.apps:
        raise ValidationFailed(
            f"The aid {meta.title!r} is not shown on {place.app_name}: recommend aids of the "
            "page's app.",
            fields=["aid_id"],
        )
    store: PeerStore = config[keys.PEER]
    fresh = Recommendation(
        id=new_id(),
        mentor_id=mentor.id,
        app_id=place.app_id,
        context_id=place.context_id,
        aid_id=meta.id,
        note=body.note,
        created_at=now_iso(),
    )

    def upsert(tx: PeerTx) -> tuple[Recommendation, bool]:
        found = tx.list(
            Recommendation,
            mentor_id=mentor.id,
            app_id=place.app_id,
            context_id=place.context_id,
            aid_id=meta.id,
        )
        if found:
            return tx.update(replace(found[0], note=body.note)), False
        return tx.add(fresh), True

    rec, created = await store.transaction(upsert)
    await config[keys.PEER_RECS].reload(store)
    return _rec_json(rec, mentor, meta, place), created


async def unrecommend(
    config: Mapping[Any, Any], identity: Identity, body: UnrecommendRequest
) -> None:
    """Take back the caller's recommendation of the aid on the page (404 when there is none)."""
    catalog: Catalog = config[keys.LIBRARY].catalog
    place = resolve_page(catalog, body.url, body.title)
    mentor = mentor_here(identity, catalog, place, "Recommending aids")
    store: PeerStore = config[keys.PEER]

    def remove(tx: PeerTx) -> int:
        r = peer_tables.recommendations.c
        return int(
            tx.execute(
                sa.delete(peer_tables.recommendations).where(
                    r.mentor_id == mentor.id,
                    r.app_id == place.app_id,
                    r.context_id == place.context_id,
                    r.aid_id == body.aid_id,
                )
            ).rowcount
        )

    if not await store.transaction(remove):
        raise NotFound(f"You do not recommend the aid {body.aid_id!r} on this page.")
    await config[keys.PEER_RECS].reload(store)


# -- what the panel shows ------------------------------------------------------------------------


async def page_recommendations(
    app: Mapping[Any, Any],
    identity: Identity | None,
    app_id: str,
    context_id: str,
    tags: frozenset[str] | None,
) -> list[dict[str, Any]]:
    """The aids mentors recommend on this page, for the panel: those the caller may see
    (published, their audience), each with the vetted, active mentors of the app the caller may
    see who recommend it ("María López recommends this"), most recommended first. Memory only.

    `tags`: the caller's audience tags as suggest computes them (None: sees everything)."""
    cache: Recommendations = app[keys.PEER_RECS]
    catalog: Catalog = app[keys.LIBRARY].catalog
    me = mentor_of(identity, catalog) if identity is not None else None
    found = cache.on_page(app_id, (context_id,) if context_id else ())
    out: list[tuple[int, str, dict[str, Any]]] = []
    for aid_id, recs in found.items():
        meta = catalog.aids.get(aid_id)
        if meta is None or meta.status != "published" or not meta.visible_to(tags):
            continue
        counted = [(m, r) for m, r in cache.counting(catalog, app_id, recs) if m.visible_to(tags)]
        if not counted:
            continue
        names = [m.name for m, _ in counted]
        verb = "recommends" if len(names) == 1 else "recommend"
        item = {
            "aid_id": meta.id,
            "title": meta.title,
            "summary": meta.summary,
            "type": meta.type,
            "text": f"{_names(names)} {verb} this",
            "mentors": [
                {
                    "id": m.id,
                    "name": m.name,
                    "note": r.note,
                    "context_id": r.context_id,
                    "mine": me is not None and me.id == m.id,
                    "created_at": r.created_at,
                }
                for m, r in counted
            ],
        }
        newest = max(r.created_at for _, r in counted)
        out.append((len(counted), newest, item))
    out.sort(key=lambda t: str(t[2]["aid_id"]))
    out.sort(key=lambda t: (t[0], t[1]), reverse=True)  # most mentors, then newest, first
    return [item for _, _, item in out]
