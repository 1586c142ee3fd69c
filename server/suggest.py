"""Suggestions for a page, and search: pinned aids first, then related ones from Whoosh; and up to
three vetted peer mentors for the page's app, ranked by how well their topics fit the page."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from whoosh.lang.porter import stem as porter_stem

from auth.identity import Identity
from index.query import (
    PageText,
    ParsedQuery,
    QueryRejected,
    Scope,
    any_of,
    parse_user_query,
    scope_filter,
)
from index.service import IndexService
from index.transcripts import Cue
from server.cache import ResultCache
from server.catalog import AidMeta, Catalog, Resolution
from server.cursor import decode_payload, encode_payload
from server.errors import BadRequest
from server.models import App, Context, Mentor
from server.settings import Settings

REASONS = {
    "pinned": "Pinned to this page",
    "related": "Related to this page's text",
}
MAX_TERMS = 3  # matched words quoted in a reason
_SPACE_RE = re.compile(r"\s+")
_EXTENSION_RE = re.compile(r"\.(?:html?|php|aspx?|jsp|do|cgi)\b", re.IGNORECASE)
_WORD_RE = re.compile(r"[^\W_]+")  # letters and digits, any script
MAX_MENTORS = 3
MENTOR_FIELDS = ("id", "name", "contact", "can_help_with", "reason")  # SuggestedMentor
# How far an extra signal (RelatedSignal) may move a related aid: a signal score of +1 adds this
# share of the best related aid's relevance, -1 takes it away. Pinned aids never move.
SIGNAL_WEIGHT = 0.25
SELECTION_WEIGHT = 4.0
HEADINGS_WEIGHT = 1.5
EXTRA_CANDIDATES = 3  # related aids fetched beyond the room, so a signal can lift one in


@dataclass(frozen=True)
class SignalPart:
    """What one extra signal says about one aid on one page.

    `score` is in [-1, 1] (clamped): +1 lifts the aid by SIGNAL_WEIGHT of the best related
    relevance, -1 sinks it as far. `reason` is structured data for the panel to word (e.g.
    `{"kind": "helpful", "count": 12}`); it is added to the aid's `why.signals`."""

    score: float
    reason: Mapping[str, Any]


class PairedMentors(Protocol):
    """The caller's paired mentors of an app, as mentor items (server/peer/pairings.py)."""

    async def __call__(self, identity: Identity, app_id: str) -> list[dict[str, Any]]: ...


class RelatedSignal(Protocol):
    """An extra ranking signal among related aids (never above pins), e.g. colleagues' votes.

    Called on every suggest answer (after the result cache, so it is always current) with the
    page's app, its matched contexts and the related candidates; returns parts for the aids it has
    something to say about. It runs on the event loop: it must be fast (read a cache) and never
    block. Register one with `Suggester.signals.append(signal)`."""

    async def __call__(
        self, app_id: str, context_ids: tuple[str, ...], aid_ids: tuple[str, ...]
    ) -> Mapping[str, SignalPart]: ...


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
    """Words of a URL's path and fragment, without file extensions ("index.html")."""
    return " ".join(_url_segments(url))


def _url_segments(url: str) -> list[str]:
    """The words of each segment of a URL's path and fragment ("/demo/crm/bank-details" gives
    "demo", "crm", "bank details"): one segment is a name, different segments are not."""
    parts = urlsplit(url)
    text = _EXTENSION_RE.sub(" ", unquote(f"{parts.path}/{parts.fragment}"))
    words = (re.sub(r"[_\-#!?=&.]+", " ", seg).strip() for seg in text.split("/"))
    return [w for w in words if w]


def page_texts(page: PageSignals, contexts: Iterable[Context]) -> list[PageText]:
    """What the related query is made of, each page text with its weight."""
    # The selection is what the learner is stuck on: it weighs most. Headings are often
    # navigation: the more there are, the less each says (a menu of 14 is page chrome).
    heading_weight = HEADINGS_WEIGHT * min(1.0, (3 / max(1, len(page.headings))) ** 0.5)
    return [
        PageText(page.selection, SELECTION_WEIGHT, selection=True),
        PageText(page.title, 2.0),
        # One text per heading and context name: words of one of them found together in an
        # aid's body say more than words of different ones (index/query.py `_about`).
        *(PageText(h, heading_weight) for h in page.headings),
        *(PageText(c.name, 1.5) for c in contexts),
        *(PageText(seg, 1.0) for seg in _url_segments(page.url)),
    ]


def _item(
    meta: AidMeta, code: str, score: float | None, reason: str, why: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": meta.id,
        "title": meta.title,
        "summary": meta.summary,
        "type": meta.type,
        "score": None if score is None else round(score, 4),
        "reason": reason or REASONS[code],
        "reason_code": code,
        "why": why,
    }


def _why(
    kind: str, *, terms: list[str] | None = None, pinned_by: dict[str, str] | None = None
) -> dict[str, Any]:
    """Structured reason data the panel words: the kind, the page's words the aid matched (as
    written on the page, not stems), who pinned it where, and extra signals (RelatedSignal)."""
    return {"kind": kind, "terms": terms or [], "pinned_by": pinned_by, "signals": []}


def _mentions(terms: Iterable[str]) -> str:
    words = list(terms)[:MAX_TERMS]
    if not words:
        return REASONS["related"]
    if len(words) == 1:
        return f"Mentions {words[0]}"
    return f"Mentions {', '.join(words[:-1])} and {words[-1]}"


def cue_json(cue: Cue, source: str) -> dict[str, Any]:
    """Where in a video the words are said (a VideoCue), and the video (the aid's `source`):
    the panel opens it there (extension/src/lib/videotime.js)."""
    return {
        "start": round(cue.start, 3),
        "end": round(cue.end, 3),
        "text": cue.text,
        "source": source,
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
    def __init__(
        self,
        settings: Settings,
        index: IndexService,
        cache: ResultCache,
        signals: Sequence[RelatedSignal] = (),
    ) -> None:
        self.settings = settings
        self.index = index
        self.cache = cache
        self.signals: list[RelatedSignal] = list(signals)
        # The caller's paired mentors of an app (server/peer/pairings.py), shown first.
        self.paired_mentors: PairedMentors | None = None

    async def _apply_signals(
        self, app_id: str, context_ids: tuple[str, ...], related: list[dict[str, Any]], room: int
    ) -> list[dict[str, Any]]:
        """Blend the extra signals into the related aids' order; keep `room` of them."""
        if not self.signals or not related:
            return related[:room]
        ids = tuple(a["id"] for a in related)
        best = max((a["score"] or 0.0) for a in related) or 1.0
        blended = {a["id"]: (a["score"] or 0.0) / best for a in related}
        parts: dict[str, list[Mapping[str, Any]]] = {}
        for signal in self.signals:
            for aid_id, part in (await signal(app_id, context_ids, ids)).items():
                if aid_id in blended:
                    blended[aid_id] += SIGNAL_WEIGHT * max(-1.0, min(1.0, part.score))
                    parts.setdefault(aid_id, []).append(dict(part.reason))
        out = []
        for item in sorted(related, key=lambda a: -blended[a["id"]])[:room]:
            if item["id"] in parts:
                why = dict(item.get("why") or {})
                why["signals"] = [*why.get("signals", []), *parts[item["id"]]]
                item = {**item, "why": why}
            out.append(item)
        return out

    async def suggest(
        self,
        catalog: Catalog,
        page: PageSignals,
        audience: frozenset[str] | None,
        limit: int,
        *,
        subject: str | None = None,
        identity: Identity | None = None,
    ) -> dict[str, Any]:
        """`subject` is the caller's Keycloak subject: a mentor linked to it is not suggested to
        themselves (filtered after the cache, which is shared by everyone with that audience).
        A mentor paired with the caller (`identity`) for the page's app comes first, with
        "Your mentor for <app>" as the reason."""
        result = await self._suggest(catalog, page, audience, limit)
        if subject:
            me = {m.id for m in catalog.mentors if m.subject == subject}
            if me:
                result["mentors"] = [m for m in result["mentors"] if m["id"] not in me]
        app = result.get("app")
        if identity is not None and app and self.paired_mentors is not None:
            paired = await self.paired_mentors(identity, app["id"])
            if paired:
                ids = {m["id"] for m in paired}
                first = [{k: m[k] for k in MENTOR_FIELDS} for m in paired]
                result["mentors"] = [*first, *(m for m in result["mentors"] if m["id"] not in ids)]
        result["mentors"] = result["mentors"][:MAX_MENTORS]
        return result

    async def _suggest(
        self, catalog: Catalog, page: PageSignals, audience: frozenset[str] | None, limit: int
    ) -> dict[str, Any]:
        resolution = catalog.resolve(page.url, page.title or None, page.selectors_present)
        base = resolution.as_json()
        generation = self.index.generation
        if resolution.app is None:
            return {**base, "aids": [], "mentors": [], "no_match": None, "generation": generation}
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
            generation,
            catalog.version,
        )
        cached = self.cache.get(key)
        if cached is None:
            cached = await self._compute(catalog, resolution, page, audience, limit)
            self.cache.put(key, cached)
        pinned, related, mentors = cached
        context_ids = tuple(c.id for c in resolution.contexts)
        related = await self._apply_signals(app.id, context_ids, related, limit - len(pinned))
        no_match = None
        if not related:
            no_match = {
                "code": "no_related",
                "reason": "No job aid matches what this page is about.",
            }
        return {
            **base,
            "aids": [*pinned, *related],
            "mentors": mentors,
            "no_match": no_match,
            "generation": generation,
        }

    async def _compute(
        self,
        catalog: Catalog,
        resolution: Resolution,
        page: PageSignals,
        audience: frozenset[str] | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """Pinned aids, related candidates (above the cut-off, a few beyond the room so a signal
        can lift one in) and mentors: what the result cache keeps for a page."""
        app = resolution.app
        assert app is not None
        pinned: list[dict[str, Any]] = []
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
                why = _why("pinned", pinned_by={"context": ctx.name, "owner": meta.owner})
                pinned.append(_item(meta, "pinned", None, f"Pinned to this page ({ctx.name})", why))
        pinned = pinned[:limit]
        related: list[dict[str, Any]] = []
        room = limit - len(pinned)
        texts = page_texts(page, resolution.contexts)
        if room > 0 and any(t.text.strip() for t in texts):
            scope = scope_filter(apps=[app.id], audience=audience, include_global=True)
            want = room + (EXTRA_CANDIDATES if self.signals else 0)
            hits = await self.index.related(texts, scope, want, frozenset(seen), ignore=app.name)
            for hit in hits:
                meta = catalog.aids.get(hit.id)
                if meta is None or hit.id in seen:
                    continue
                seen.add(hit.id)
                why = _why("related", terms=list(hit.terms[:MAX_TERMS]))
                item = _item(meta, "related", hit.score, _mentions(hit.terms), why)
                if hit.cue is not None and meta.type == "video":
                    item["cue"] = cue_json(hit.cue, meta.source)
                related.append(item)
        # Mentors are in the catalog: the key's catalog version moves on when one changes.
        mentors = rank_mentors(catalog, resolution, page, audience, MAX_MENTORS + 1)
        return pinned, related, mentors

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
        results, total, mode = await self._run_search(catalog, parsed, scope, offset, limit)
        did_you_mean = await self._did_you_mean(parsed) if total < 3 else None
        query, corrected_from = text, None
        if total == 0 and did_you_mean and did_you_mean != text.strip().lower():
            # The original finds nothing: show what the correction finds ("Showing results for
            # X. Search instead for Y"); the cursor stays tied to the text as typed.
            try:
                fixed = parse_user_query(
                    did_you_mean, max_chars=s.max_query_chars, max_terms=s.max_query_terms
                )
            except QueryRejected:
                fixed = None
            if fixed is not None:
                found = await self._run_search(catalog, fixed, scope, offset, limit)
                if found[1]:
                    results, total, mode = found
                    query, corrected_from = did_you_mean, text
        next_offset = offset + limit
        return {
            "query": query,
            "corrected_from": corrected_from,
            "matched": mode,
            "total": total,
            "results": results,
            "did_you_mean": did_you_mean,
            "next_cursor": _encode_cursor(next_offset, text) if next_offset < total else None,
        }

    async def _run_search(
        self, catalog: Catalog, parsed: ParsedQuery, scope: Scope, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int, str]:
        """One page of results for a parsed query: every word first, then any word."""
        if parsed.query is None:
            return [], 0, "all"
        mode = "all"
        page = await self.index.page(parsed.query, scope, offset, limit)
        if page.total == 0 and (fallback := any_of(parsed)) is not None:
            page = await self.index.page(fallback, scope, offset, limit)
            mode = "any"
        results: list[dict[str, Any]] = []
        for hit in page.hits:
            meta = catalog.aids.get(hit.id)
            if meta is None:
                continue
            result = {
                "id": meta.id,
                "title": meta.title,
                "summary": meta.summary,
                "type": meta.type,
                "score": round(hit.score, 4),
                "snippet_html": hit.snippet_html,
            }
            if hit.cue is not None and meta.type == "video":
                result["cue"] = cue_json(hit.cue, meta.source)
            results.append(result)
        return results, page.total, mode

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
