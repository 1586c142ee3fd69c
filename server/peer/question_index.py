"""A small Whoosh index of answered questions: the question and its accepted answer.

Learners about to ask see accepted answers to similar questions first (`POST
/api/v1/peer/questions/similar`). Only questions with an accepted answer that are not hidden are
indexed; the database is the source of truth and this index is derived from it: rebuilt at
start-up (off the event loop, into a new directory swapped in by renaming `CURRENT`) and kept in
step when an answer is accepted, a question hidden or deleted (server/peer/questions.py).

Text is analysed exactly as the aids' (index/analysis.py through index/schema.py: stems,
derivational forms, compounds) and queries are built by the aids' query builder
(`index.query.parse_user_query`: synonyms, no query parser, no user-chosen fields); scope (app,
audience) is a filter the user's words cannot widen.

One thread does everything (writes and searches): the index is small, and one thread is also
the one writer Whoosh wants.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from whoosh import query as wq
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.index import Index

from index.query import QueryRejected, parse_user_query, words_of
from index.schema import BODY_ANALYZER, EVERYONE, TEXT_ANALYZER

log = logging.getLogger(__name__)
T = TypeVar("T")

# Bump when a field changes: the index is rebuilt at every start-up anyway, the version names
# the generation directory so an old one is never opened with a new schema.
SCHEMA_VERSION = 1
MAX_QUERY_WORDS = 32  # a question is up to 1000 characters: its first words say what it is about
RELATIVE_CUT = 0.35  # a hit below this share of the best hit's score is noise (one common word)
SAME_PAGE_BOOST = 1.5  # the same page context as the asker's: its answers come first
WRITER_TIMEOUT = 10.0


def build_schema() -> Schema:
    return Schema(
        # Stored: a hit maps back to the question row; unique: update_document replaces it.
        id=ID(stored=True, unique=True),
        # Filter: similar questions of the same app only. Never scored, never reached by words.
        app=ID(stored=True),
        # Stored: hits on the asker's own page context rank first.
        context=ID(stored=True),
        # Filter: who may see the question (EVERYONE when its audience is empty).
        audience=KEYWORD(commas=True),
        # Scored: the question (the aids' title analysis: compounds joined, weighted 3 by the
        # query builder's field boosts) and its accepted answer (the aids' body analysis).
        title=TEXT(analyzer=TEXT_ANALYZER),
        body=TEXT(analyzer=BODY_ANALYZER),
    )


@dataclass(frozen=True)
class QuestionDoc:
    """What the index holds of one answered question."""

    id: str
    app_id: str
    context_id: str
    audience: tuple[str, ...]
    question: str
    answer: str

    def fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app": self.app_id,
            "context": self.context_id or "_app",
            "audience": ",".join(self.audience) if self.audience else EVERYONE,
            "title": self.question,
            "body": self.answer,
        }


@dataclass(frozen=True)
class SimilarHit:
    id: str
    context_id: str
    score: float


class QuestionIndex:
    """The index under `root` (its own folder in the data dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ix: Index | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="question-index")

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- lifecycle ------------------------------------------------------------------------------
    async def rebuild(self, docs: Iterable[QuestionDoc]) -> int:
        """Build a fresh generation from `docs` and swap it in; the old one is removed."""
        count: int = await self._run(self._rebuild_sync, list(docs))
        return count

    async def close(self) -> None:
        await self._run(self._close_sync)
        self._pool.shutdown(wait=True)

    def _close_sync(self) -> None:
        if self._ix is not None:
            self._ix.close()
            self._ix = None

    def _rebuild_sync(self, docs: list[QuestionDoc]) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"gen-v{SCHEMA_VERSION}-{uuid.uuid4().hex[:12]}"
        target = self.root / name
        target.mkdir()
        ix = FileStorage(str(target)).create_index(build_schema())
        writer = ix.writer(timeout=WRITER_TIMEOUT)
        try:
            for doc in docs:
                writer.add_document(**doc.fields())
        except BaseException:
            writer.cancel()
            ix.close()
            raise
        writer.commit()
        tmp = self.root / f"CURRENT.{name}"
        tmp.write_text(name, encoding="utf-8")
        os.replace(tmp, self.root / "CURRENT")  # the swap: readers see old or new, never half
        old, self._ix = self._ix, ix
        if old is not None:
            old.close()
        for entry in self.root.iterdir():  # earlier generations and stray temporary files
            if entry.name not in {name, "CURRENT"}:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        return len(docs)

    def _index(self) -> Index:
        if self._ix is None:  # never built (start-up failed half-way): an empty one
            self._rebuild_sync([])
        assert self._ix is not None
        return self._ix

    # -- writes ---------------------------------------------------------------------------------
    async def put(self, doc: QuestionDoc) -> None:
        await self._run(self._put_sync, doc)

    def _put_sync(self, doc: QuestionDoc) -> None:
        writer = self._index().writer(timeout=WRITER_TIMEOUT)
        try:
            writer.update_document(**doc.fields())
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    async def remove(self, question_id: str) -> None:
        await self._run(self._remove_sync, question_id)

    def _remove_sync(self, question_id: str) -> None:
        writer = self._index().writer(timeout=WRITER_TIMEOUT)
        try:
            writer.delete_by_term("id", question_id)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    # -- reads ----------------------------------------------------------------------------------
    async def ids(self) -> set[str]:
        found: set[str] = await self._run(self._ids_sync)
        return found

    def _ids_sync(self) -> set[str]:
        with self._index().searcher() as searcher:
            return {str(f["id"]) for f in searcher.all_stored_fields()}

    async def similar(
        self,
        text: str,
        *,
        app_id: str,
        context_id: str,
        audience: frozenset[str] | None,
        limit: int,
    ) -> list[SimilarHit]:
        """Answered questions of `app_id` like `text`, best first (same page context boosted).

        `audience` None: every audience (admins). Words are ORed (a similar question rarely uses
        every word of this one) and hits far below the best one are dropped."""
        query = _query(text)
        if query is None:
            return []
        hits: list[SimilarHit] = await self._run(
            self._similar_sync, query, app_id, context_id, audience, limit
        )
        return hits

    def _similar_sync(
        self,
        query: wq.Query,
        app_id: str,
        context_id: str,
        audience: frozenset[str] | None,
        limit: int,
    ) -> list[SimilarHit]:
        scope: list[wq.Query] = [wq.Term("app", app_id)]
        if audience is not None:
            scope.append(wq.Or([wq.Term("audience", t) for t in (EVERYONE, *sorted(audience))]))
        with self._index().searcher() as searcher:
            results = searcher.search(query, filter=wq.And(scope), limit=max(limit * 4, 20))
            scored = []
            for hit in results:
                ctx = str(hit["context"])
                same = bool(context_id) and ctx == context_id
                scored.append(
                    SimilarHit(str(hit["id"]), "" if ctx == "_app" else ctx, hit.score or 0.0)
                )
                if same:
                    scored[-1] = SimilarHit(scored[-1].id, ctx, scored[-1].score * SAME_PAGE_BOOST)
        if not scored:
            return []
        best = max(h.score for h in scored)
        kept = [h for h in scored if h.score >= best * RELATIVE_CUT]
        kept.sort(key=lambda h: (-h.score, h.id))
        return kept[:limit]


def _query(text: str) -> wq.Query | None:
    """The question's words as an OR query over the question and answer fields."""
    words = words_of(text)[:MAX_QUERY_WORDS]
    if not words:
        return None
    try:
        parsed = parse_user_query(
            " ".join(words),
            max_chars=len(" ".join(words)) + 1,
            max_terms=MAX_QUERY_WORDS,
            require_all=False,
        )
    except QueryRejected:
        return None
    return parsed.query


__all__ = ["SCHEMA_VERSION", "QuestionDoc", "QuestionIndex", "SimilarHit", "build_schema"]
