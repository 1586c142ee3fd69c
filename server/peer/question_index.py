"""A small Whoosh index of answered questions: the question and its accepted answer.

Learners about to ask see accepted answers to similar questions first (`POST
/api/v1/peer/questions/similar`). Only questions with an accepted answer that are not hidden are
indexed; the database is the source of truth and this index is derived from it: rebuilt at
start-up (off the event loop, into a new directory swapped in by renaming `CURRENT`) and kept in
step when an answer is accepted, a question hidden or deleted (server/peer/questions.py). At
start-up the index on disk is kept when it holds exactly what the database says it should (each
question's id and a digest of its indexed text), so a restart does not re-index everything.

Text is analysed exactly as the aids' (index/analysis.py through index/schema.py: stems,
derivational forms, compounds) and queries are built by the aids' query builder
(`index.query.parse_user_query`: synonyms, no query parser, no user-chosen fields); scope (app,
audience) is a filter the user's words cannot widen.

One thread does everything (writes and searches): the index is small, and one thread is also
the one writer Whoosh wants.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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

# Bump when a field changes: the version names the generation directory, so an index of an older
# schema is rebuilt, never opened.
SCHEMA_VERSION = 2  # 2: `digest` stored (the start-up agreement check)
MAX_QUERY_WORDS = 32  # a question is up to 1000 characters: its first words say what it is about
RELATIVE_CUT = 0.35  # a hit below this share of the best hit's score is noise (one common word)
SAME_PAGE_BOOST = 1.5  # the same page context as the asker's: its answers come first
WRITER_TIMEOUT = 10.0


def build_schema() -> Schema:
    return Schema(
        # Stored: a hit maps back to the question row; unique: update_document replaces it.
        id=ID(stored=True, unique=True),
        # Stored: a hash of everything indexed of the question; at start-up the index is kept
        # when its (id, digest) pairs are exactly the database's, else rebuilt.
        digest=ID(stored=True),
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

    @property
    def digest(self) -> str:
        data = [self.id, self.app_id, self.context_id, list(self.audience)]
        text = json.dumps([*data, self.question, self.answer, SCHEMA_VERSION])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "digest": self.digest,
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
        self._searcher: Any = None  # one searcher, refreshed after each write (same thread)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="question-index")

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self, docs: Iterable[QuestionDoc]) -> bool:
        """At start-up: keep the index on disk when it holds exactly `docs` (the database's),
        else rebuild it. True when it was rebuilt."""
        rebuilt: bool = await self._run(self._open_sync, list(docs))
        return rebuilt

    def _open_sync(self, docs: list[QuestionDoc]) -> bool:
        current = self.root / "CURRENT"
        try:
            name = current.read_text(encoding="utf-8").strip()
            if name.startswith(f"gen-v{SCHEMA_VERSION}-") and "/" not in name:
                ix = FileStorage(str(self.root / name)).open_index()
                with ix.searcher() as searcher:
                    stored = {(f["id"], f.get("digest")) for f in searcher.all_stored_fields()}
                if stored == {(d.id, d.digest) for d in docs}:
                    self._ix = ix
                    return False
                ix.close()
        except Exception as exc:  # missing, an older schema, damaged: rebuilt from the database
            log.info("question index not reused (%s): rebuilding", type(exc).__name__)
        self._rebuild_sync(docs)
        return True

    async def rebuild(self, docs: Iterable[QuestionDoc]) -> int:
        """Build a fresh generation from `docs` and swap it in; the old one is removed."""
        count: int = await self._run(self._rebuild_sync, list(docs))
        return count

    async def close(self) -> None:
        await self._run(self._close_sync)
        self._pool.shutdown(wait=True)

    def _close_sync(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
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
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
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

    async def sync(self, docs: Iterable[QuestionDoc]) -> int:
        """Make the index hold exactly `docs` (the database's) by writing only the differences:
        what other nodes accepted, hid or deleted (server/peer/questions_api.py runs it on
        PostgreSQL). Returns how many documents were written or removed."""
        changed: int = await self._run(self._sync_sync, list(docs))
        return changed

    def _sync_sync(self, docs: list[QuestionDoc]) -> int:
        stored = {str(f["id"]): f.get("digest") for f in self._search().all_stored_fields()}
        puts = [d for d in docs if stored.get(d.id) != d.digest]
        gone = set(stored) - {d.id for d in docs}
        if not puts and not gone:
            return 0
        writer = self._index().writer(timeout=WRITER_TIMEOUT)
        try:
            for question_id in gone:
                writer.delete_by_term("id", question_id)
            for doc in puts:
                writer.update_document(**doc.fields())
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        return len(puts) + len(gone)

    # -- reads ----------------------------------------------------------------------------------
    async def ids(self) -> set[str]:
        found: set[str] = await self._run(self._ids_sync)
        return found

    def _search(self) -> Any:
        """The one searcher (this thread's), refreshed: it sees the latest commit."""
        if self._searcher is None:
            self._searcher = self._index().searcher()
        elif self._searcher.reader().segments() is None:
            # Opened on an empty index: Whoosh cannot refresh a reader without segments (it
            # raises TypeError), so once something was written a new searcher is opened.
            if not self._searcher.up_to_date():
                self._searcher.close()
                self._searcher = self._index().searcher()
        else:
            self._searcher = self._searcher.refresh()
        return self._searcher

    def _ids_sync(self) -> set[str]:
        return {str(f["id"]) for f in self._search().all_stored_fields()}

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
        # The app narrows the query itself (a zero-score AND: Whoosh skips to the app's few
        # questions); the audience is a filter. Neither is reached by the user's words.
        narrowed = wq.And([wq.ConstantScoreQuery(wq.Term("app", app_id), 0.0), query])
        audience_filter = None
        if audience is not None:
            audience_filter = wq.Or([wq.Term("audience", t) for t in (EVERYONE, *sorted(audience))])
        results = self._search().search(narrowed, filter=audience_filter, limit=max(limit * 4, 20))
        scored = []
        for hit in results:
            ctx = str(hit["context"])
            same = bool(context_id) and ctx == context_id
            score = (hit.score or 0.0) * (SAME_PAGE_BOOST if same else 1.0)
            scored.append(SimilarHit(str(hit["id"]), "" if ctx == "_app" else ctx, score))
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
    if parsed.query is not None:
        _binary_unions(parsed.query)
    return parsed.query


def _binary_unions(node: wq.Query) -> None:
    """Whoosh preloads an OR's postings into arrays on indexes under 5,000 documents (its
    "small index" guess), which made one similar-questions search take 0.25 s on 2,000
    questions; a tree of union matchers reads only what it scores."""
    if isinstance(node, wq.Or):
        node.matcher_type = wq.Or.DEFAULT_MATCHER
    for child in node.children():
        _binary_unions(child)


__all__ = ["SCHEMA_VERSION", "QuestionDoc", "QuestionIndex", "SimilarHit", "build_schema"]
