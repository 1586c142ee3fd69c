"""Suggestions for a page, and search: pinned aids first, then related ones from Whoosh; and up to
three vetted peer mentors for the page's app, ranked by how well their topics fit the page."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from whoosh.lang.porter import stem as porter_stem

from index.query import (
    ParsedQuery,
    QueryRejected,
    any_of,
    parse_user_query,
    scope_filter,
)
from index.service import IndexService
from server.cache import ResultCache
from server.catalog import AidMeta, Catalog, Resolution
from server.cursor import decode_payload, encode_payload
from server.errors import BadRequest
from server.models import App, Mentor
from server.settings import Settings

REASONS = {
    "pinned": "Pinned to this page",
    "app": "Mapped to this app",
    "related": "Related to this page's text",
}
_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[^\W_]+")  # letters and digits, any script
MAX_MENTORS = 3


@dataclass(frozen=True)
class PageSignals:
    url: str
    title: str = ""
    selection: str = ""
    headings: tuple[str, ...] = ()
    selectors_present: frozenset[str] | None = None


def _norm(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip().lower()


def _url_words(url: str) -> str:
    parts = urlsplit(url)
    text = f"{parts.path} {parts.fragment}"
    return re.sub(r"[/_\-#!?=&.]+", " ", unquote(text))


def _item(meta: AidMeta, code: str, score: float | None, why: str = "") -> dict[str, Any]:
    return {
        "id": meta.id,
        "title": meta.title,
        "summary": meta.summary,
        "type": meta.type,
        "score": None if score is None else round(score, 4),
        "reason": why or REASONS[code],
        "reason_code": code,
    }


@functools.lru_cache(maxsize=20_000)
def _stem(word: str) -> str:
    return str(porter_stem(word))


def _stems(texts: Iterable[str]) -> frozenset[str]:
    return frozenset(_stem(w) for t in texts for w in _WORD_RE.findall(t.lower()))


def _topic_stems(topic: str) -> frozenset[str]:
    return _stems([topic])  # "deal-desk" -> {"deal", "desk"}


def rank_mentors(
    catalog: Catalog,
    resolution: Resolution,
    page: PageSignals,
    audience: frozenset[str] | None,
    limit: int = MAX_MENTORS,
) -> list[dict[str, Any]]:
    """Vetted, active mentors of the page's app the caller may see, best fit first.

    A topic fits when all its words (stemmed) occur in the page's signals: the matched contexts
    (their names, ids and the tags of the aids pinned to them) count 2, the page's own text
    (title, selection, headings, URL words) counts 1. Mentors with no fitting topic still show,
    after those with one, by name: they know the app."""
    app = resolution.app
    if app is None:
        return []
    context_texts: list[str] = []
    for ctx in resolution.contexts:
        context_texts += [ctx.name, ctx.id]
        for aid_id in ctx.aids:
            meta = catalog.aids.get(aid_id)
            if meta is not None:
                context_texts += meta.tags
    in_context = _stems(context_texts)
    in_text = _stems([page.title, page.selection, *page.headings, _url_words(page.url)])
    ranked: list[tuple[int, int, Mentor, list[str]]] = []
    for pos, mentor in enumerate(catalog.app_mentors.get(app.id, ())):
        if not mentor.listed or not mentor.visible_to(audience):
            continue
        score = 0
        fits: list[str] = []
        for topic in mentor.topics:
            words = _topic_stems(topic)
            weight = 2 if words and words <= in_context else 1 if words and words <= in_text else 0
            if weight:
                score += weight
                fits.append(topic)
        ranked.append((-score, pos, mentor, fits))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [_mentor_item(m, app, fits) for _, _, m, fits in ranked[:limit]]


def _mentor_item(mentor: Mentor, app: App, fits: list[str]) -> dict[str, Any]:
    reason = f"Knows about {', '.join(fits[:3])}" if fits else f"Mentor for {app.name}"
    return {
        "id": mentor.id,
        "name": mentor.name,
        "contact": mentor.contact,
        "can_help_with": mentor.can_help_with,
        "reason": reason,
    }


class Suggester:
    def __init__(self, settings: Settings, index: IndexService, cache: ResultCache) -> None:
        self.settings = settings
        self.index = index
        self.cache = cache

    async def suggest(
        self,
        catalog: Catalog,
        page: PageSignals,
        audience: frozenset[str] | None,
        limit: int,
        *,
        subject: str | None = None,
    ) -> dict[str, Any]:
        """`subject` is the caller's Keycloak subject: a mentor linked to it is not suggested to
        themselves (filtered after the cache, which is shared by everyone with that audience)."""
        result = await self._suggest(catalog, page, audience, limit)
        if subject:
            me = {m.id for m in catalog.mentors if m.subject == subject}
            if me:
                result["mentors"] = [m for m in result["mentors"] if m["id"] not in me]
        result["mentors"] = result["mentors"][:MAX_MENTORS]
        return result

    async def _suggest(
        self, catalog: Catalog, page: PageSignals, audience: frozenset[str] | None, limit: int
    ) -> dict[str, Any]:
        resolution = catalog.resolve(page.url, page.title or None, page.selectors_present)
        base = resolution.as_json()
        if resolution.app is None:
            return {**base, "aids": [], "mentors": [], "generation": self.index.generation}
        app = resolution.app
        signals = (
            _norm(page.title),
            _norm(page.selection),
            tuple(_norm(h) for h in page.headings),
            _norm(_url_words(page.url)),
        )
        key = (
            "suggest",
            app.id,
            tuple(c.id for c in resolution.contexts),
            signals,
            None if audience is None else tuple(sorted(audience)),
            limit,
            self.index.generation,
            catalog.version,
        )
        cached = self.cache.get(key)
        if cached is not None:
            aids, mentors = cached
            return {**base, "aids": aids, "mentors": mentors, "generation": self.index.generation}

        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        for ctx in resolution.contexts:
            for aid_id in ctx.aids:
                meta = catalog.aids.get(aid_id)
                if (
                    meta is None
                    or aid_id in seen
                    or meta.status != "published"
                    or not meta.visible_to(audience)
                ):
                    continue
                seen.add(aid_id)
                items.append(_item(meta, "pinned", None, f"Pinned to this page ({ctx.name})"))
        items = items[:limit]
        room = limit - len(items)
        if room > 0:
            weighted = [
                (page.selection, 3.0),
                (page.title, 2.0),
                (" ".join(page.headings), 2.0),
                (" ".join(c.name for c in resolution.contexts), 1.5),
                (_url_words(page.url), 1.0),
            ]
            scope = scope_filter(apps=[app.id], audience=audience, include_global=True)
            if any(text.strip() for text, _ in weighted):
                for hit in await self.index.related(weighted, scope, room, frozenset(seen)):
                    meta = catalog.aids.get(hit.id)
                    if meta is None or hit.id in seen:
                        continue
                    seen.add(hit.id)
                    items.append(_item(meta, "related", hit.score))
        room = limit - len(items)
        if room > 0:
            for aid_id in catalog.app_aids.get(app.id, ()):
                meta = catalog.aids[aid_id]
                if aid_id in seen or meta.status != "published" or not meta.visible_to(audience):
                    continue
                seen.add(aid_id)
                items.append(_item(meta, "app", None, f"Mapped to {app.name}"))
                if len(items) >= limit:
                    break
        # Mentors are in the catalog: the key's catalog version moves on when one changes.
        mentors = rank_mentors(catalog, resolution, page, audience, MAX_MENTORS + 1)
        self.cache.put(key, (items, mentors))
        return {**base, "aids": items, "mentors": mentors, "generation": self.index.generation}

    async def search(
        self,
        catalog: Catalog,
        text: str,
        *,
        app: str | None,
        aid_type: str | None,
        audience: frozenset[str] | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        s = self.settings
        try:
            parsed = parse_user_query(
                text, max_chars=s.max_query_chars, max_terms=s.max_query_terms
            )
        except QueryRejected as exc:
            raise BadRequest(str(exc), parameter="q") from exc
        offset = _decode_cursor(cursor, text)
        scope = scope_filter(
            apps=[app] if app else None, audience=audience, types=[aid_type] if aid_type else ()
        )
        results: list[dict[str, Any]] = []
        total = 0
        mode = "all"
        if parsed.query is not None:
            page = await self.index.page(parsed.query, scope, offset, limit)
            if page.total == 0 and (fallback := any_of(parsed)) is not None:
                page = await self.index.page(fallback, scope, offset, limit)
                mode = "any"
            total = page.total
            for hit in page.hits:
                meta = catalog.aids.get(hit.id)
                if meta is None:
                    continue
                results.append(
                    {
                        "id": meta.id,
                        "title": meta.title,
                        "summary": meta.summary,
                        "type": meta.type,
                        "score": round(hit.score, 4),
                        "snippet_html": hit.snippet_html,
                    }
                )
        did_you_mean = await self._did_you_mean(parsed) if total < 3 else None
        next_offset = offset + limit
        return {
            "query": text,
            "matched": mode,
            "total": total,
            "results": results,
            "did_you_mean": did_you_mean,
            "next_cursor": _encode_cursor(next_offset, text) if next_offset < total else None,
        }

    async def _did_you_mean(self, parsed: ParsedQuery) -> str | None:
        if not parsed.words:
            return None
        fixes = await self.index.spelling(parsed.words)
        if not fixes:
            return None
        return " ".join(fixes.get(w, w) for w in parsed.words)


def _encode_cursor(offset: int, text: str) -> str:
    return encode_payload({"o": offset, "q": hash_text(text)})  # server/cursor.py's format


def _decode_cursor(cursor: str | None, text: str) -> int:
    if not cursor:
        return 0
    message = "The cursor is not one this server issued."
    data = decode_payload(cursor, message)
    try:
        offset = int(data["o"])
        same = data["q"] == hash_text(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(message, parameter="cursor") from exc
    if not same:
        raise BadRequest("The cursor belongs to a different query.", parameter="cursor")
    if not 0 <= offset <= 10_000:
        raise BadRequest("The cursor is out of range.", parameter="cursor")
    return offset


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
