"""The index service: one writer task, a pool of searcher threads, rebuild-and-swap.

Layout on disk (index_dir):
    CURRENT            name of the live generation directory (replaced atomically)
    gen-<n>/           a Whoosh index, plus STATE.json {schema, content_version, doc_count}

* Writes go through one asyncio queue to one writer thread (`writer(timeout=...)`), batched.
* Searches run in a thread pool; each thread keeps its own searcher and refreshes it when the
  generation moves on.
* A rebuild writes a fresh gen-<n+1>/ and swaps CURRENT by rename: readers never see half an index.
* STATE.json is written after each commit. If the process dies between the database commit and the
  index commit, the content versions disagree at start-up and the index is rebuilt.
* STATE.json also records the size of every index file. `open` checks them (exists, same size) and
  opens every segment and reads a document from it; a search that fails on a damaged file marks
  the index corrupt. A corrupt index is never searched: searches raise `IndexCorrupt` (a 503 with
  Retry-After at the HTTP boundary) and `on_corrupt` asks the owner to rebuild from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import pickle
import shutil
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from whoosh import collectors, scoring
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.filedb.filestore import FileStorage
from whoosh.highlight import ContextFragmenter, Formatter, get_text, htmlescape
from whoosh.reading import SegmentReader, TermNotFound
from whoosh.searching import Searcher

from index import bulk, postings, scoped
from index.documents import IndexableAid, aid_document
from index.errors import IndexCorrupt, IndexUnavailable
from index.query import (
    NEAR_WORDS,
    PageText,
    RelatedHit,
    RelatedQuery,
    Scope,
    related_query,
    relevant,
)
from index.schema import (
    BODY_ANALYZER,
    FIELD_BOOSTS,
    SCHEMA_VERSION,
    TEXT_ANALYZER,
    build_schema,
)
from index.transcripts import Cue, best_cue, load_cues

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["IndexCorrupt", "IndexService", "IndexState", "IndexUnavailable"]


# BM25F, but tags without length normalisation: most aids have no tags, so the average tag
# field is nearly empty and an aid with four tags was scored as a very long document (a tag
# matching "approval" ranked below a passing synonym in some body).
WEIGHTING = scoring.BM25F(B=0.75, K1=1.2, tags_B=0.0)
SMALL_POSTINGS = 512  # posting lists read whole (and cached) for related aids' statistics
# Segments at which a merge starts without waiting for writes to pause (Whoosh's own policy
# already folds small segments together at each commit, so this is rarely reached).
MAX_SEGMENTS = 8
# A rebuild of fewer aids runs in this process: forking writers costs more than it saves.
BUILD_PROCS_MIN_DOCS = 2000
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # `-m index.merge`


def _text(term: Any) -> str:
    return term.decode("utf-8") if isinstance(term, bytes) else str(term)


def _log_merge_failure(done: asyncio.Future[int]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning(
            "merging index segments failed (searches stay correct, only slower): %s",
            done.exception(),
        )


class _Storage(FileStorage):  # type: ignore[misc]
    """FileStorage that can list the files opened inside `_closing_on_failure()`: Whoosh leaves
    a file open when reading its header fails (a truncated or zeroed segment)."""

    _capture = threading.local()

    def open_file(self, name: str, **kwargs: Any) -> Any:
        handle = super().open_file(name, **kwargs)
        opened: list[Any] | None = getattr(self._capture, "files", None)
        if opened is not None:
            opened.append(handle)
        return handle


@contextlib.contextmanager
def _closing_on_failure() -> Iterator[None]:
    opened: list[Any] = []
    _Storage._capture.files = opened
    try:
        yield
    except BaseException:
        for handle in opened:
            with contextlib.suppress(Exception):
                handle.close()
        raise
    finally:
        _Storage._capture.files = None


def _storage(path: Path, mmap: bool) -> FileStorage:
    """Index files memory-mapped (fast: about 20% of search time went to read() calls without it)
    or read with plain file I/O. Every open reader maps the segment again and mapped pages count
    towards resident memory (about 2-3x the index size), which is what `mmap=False` saves."""
    return _Storage(str(path), supports_mmap=mmap)


class MatchFormatter(Formatter):  # type: ignore[misc]
    """Escaped text with each matched term in <b class="match">: safe to insert as HTML."""

    between = " … "

    def _text(self, text: str) -> str:
        return str(htmlescape(text, quote=False))

    def format_token(self, text: str, token: Any, replace: bool = False) -> str:
        return f'<b class="match">{htmlescape(get_text(text, token, replace), quote=False)}</b>'


# What Whoosh raises when it reads a missing, truncated or overwritten file.
_READ_ERRORS = (
    OSError,
    EOFError,
    struct.error,
    pickle.UnpicklingError,
    zlib.error,
    whoosh_index.IndexError,
)
_STATE_SKIP = {"STATE.json", "STATE.json.tmp", "MAIN_WRITELOCK"}


@dataclass(frozen=True)
class SpellingLimits:
    """How much work "did you mean" may do per request. Whoosh's corrector builds a Levenshtein
    automaton per word and walks the lexicon with it: 30-150 ms for a 15-letter unknown word, so
    16 of them held a search thread for 0.85-2.4 s (and two such senders slowed every learner).
    Typos in a search box are in a word or two, of ordinary length."""

    max_words: int = 8  # words looked up per request; the rest are left as typed
    max_corrections: int = 3  # unknown words handed to the corrector per request
    max_word_chars: int = 20  # longer words are left as typed (not a typo of a word we know)
    # The first letter is taken as typed: the corrector then walks one letter's share of the
    # lexicon, 5-10x less work ("expnse reimbursment aprove": 370 ms -> 37 ms, same fixes).
    prefix: int = 1
    max_distance: int = 2  # edits (a swapped pair of letters counts 2: "paysilp")


UNBOUNDED_SPELLING = SpellingLimits(10**6, 10**6, 10**6, 0, 2)  # the old behaviour (bench)


@dataclass(frozen=True)
class IndexState:
    schema: int
    content_version: int
    doc_count: int


@dataclass
class Hit:
    id: str
    score: float
    snippet_html: str = ""
    cue: Cue | None = None  # a video whose transcript matched: where the words are said


@dataclass
class HitPage:
    hits: list[Hit]
    total: int


@dataclass
class _WriteOp:
    upserts: list[IndexableAid]
    deletes: list[str]
    content_version: int
    done: asyncio.Future[int] = field(repr=False)
    # "write"; "merge": start merging the segments in a child process; "install": swap in
    # the merged generation (`_Merge.target`) once the child is done
    kind: str = "write"


@dataclass
class _Merge:
    """A merge in progress: the frozen copy the child reads, the directory it writes, the
    writes committed since the copy (replayed onto the merged generation) and the child."""

    source: Path
    target: Path
    epoch: int
    replay: list[_WriteOp] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None


class IndexService:
    def __init__(
        self,
        index_dir: Path,
        *,
        search_threads: int = 2,
        writer_timeout: float = 10.0,
        mmap: bool = False,
        merge_delay: float = 10.0,
        build_procs: int = 2,
        spelling: SpellingLimits = SpellingLimits(),
    ) -> None:
        postings.install()  # long posting lists skipped by block directory (index/postings.py)
        self.index_dir = index_dir
        self.spelling_limits = spelling
        self.spelling_lookups = 0  # words handed to the corrector, ever (tests and bench read it)
        self.mmap = mmap
        # Each incremental commit adds a segment, and every search pays a fixed cost per segment
        # (about 3 ms at 10k aids: matchers for every query term). So once writes have been quiet
        # for `merge_delay` seconds (or segments reach MAX_SEGMENTS), the segments are merged
        # back into one, in a child process (index/merge.py): a merge rewrites the whole index
        # (minutes of CPU at 100k aids), which in the writer thread held the GIL against every
        # search. Negative: never merge.
        self.merge_delay = merge_delay
        # Processes a rebuild writes segments with (index/bulk.py: forked, a share of the aids
        # each; the merge above folds their segments into one afterwards). 1: in this process.
        self.build_procs = build_procs
        self.build_procs_min_docs = BUILD_PROCS_MIN_DOCS
        self.segments = 0
        self.merges = 0  # merged generations swapped in, ever (tests and bench read it)
        self._merge: _Merge | None = None
        self._merge_task: asyncio.Task[None] | None = None
        self._merge_timer: asyncio.TimerHandle | None = None
        self._lock_file: TextIO | None = None
        self.writer_timeout = writer_timeout
        self._search_pool = ThreadPoolExecutor(search_threads, thread_name_prefix="whoosh-search")
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="whoosh-writer")
        self._local = threading.local()
        self._ix: Any = None
        self._epoch = 0  # bumps when a different index directory becomes live
        self.generation = 0  # bumps after every commit; result caches key on it
        self.state = IndexState(SCHEMA_VERSION, -1, 0)
        self._queue: asyncio.Queue[_WriteOp | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._searchers: list[Searcher] = []
        self._searchers_lock = threading.Lock()
        # "ok", "corrupt" (a damaged file was found: `problem` says which) or "rebuilding".
        self.health = "ok"
        self.problem = ""
        self.on_corrupt: Callable[[], None] | None = None  # called on the loop when marked corrupt
        self._retired: list[Any] = []  # indexes found corrupt, closed at close()

    # -- lifecycle ---------------------------------------------------------------------------
    async def _run_search(self, fn: Callable[..., T], *args: Any) -> T:
        if self.health != "ok":
            raise IndexCorrupt(self.unavailable_detail())
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._search_pool, fn, *args)
        except IndexUnavailable:
            raise
        except Exception as exc:
            problem = await loop.run_in_executor(self._search_pool, self._diagnose_sync, exc)
            if problem is None:
                raise  # not the index's files: a bug, reported as such
            self.mark_corrupt(problem)
            raise IndexCorrupt(self.unavailable_detail()) from exc

    def unavailable_detail(self) -> str:
        what = "being rebuilt" if self.health == "rebuilding" else "corrupt"
        return (
            f"The search index is {what} ({self.problem}); it is rebuilt from the database "
            "automatically. Try again shortly."
        )

    def mark_corrupt(self, problem: str) -> None:
        """Stop searching the live index and ask the owner (`on_corrupt`) for a rebuild."""
        if self.health == "ok":
            log.error("search index corrupt: %s; rebuilding it from the database", problem)
            self.health = "corrupt"
            self.problem = problem
            if self._ix is not None:
                self._retired.append(self._ix)
                self._ix = None
                self._epoch += 1  # every thread drops its searcher
        if self.on_corrupt is not None:
            self.on_corrupt()

    def _diagnose_sync(self, exc: BaseException) -> str | None:
        """After a failed search: which file is damaged, or None if the files look fine and the
        error is not one that reading a damaged file raises."""
        current = self._current_dir()
        problem = self.verify_sync(current) if current is not None else "no live index"
        if problem is None and isinstance(exc, _READ_ERRORS):
            problem = f"{type(exc).__name__}: {exc}"
        return problem

    def verify_sync(self, directory: Path) -> str | None:
        """A cheap integrity check of one generation: every file STATE.json recorded exists with
        the recorded size, and every segment opens and yields a stored document and a posting.
        Returns what is wrong (naming the file), or None."""
        try:
            recorded = json.loads((directory / "STATE.json").read_text(encoding="utf-8"))
            files: dict[str, int] = dict(recorded.get("files", {}))
        except (OSError, ValueError, TypeError) as exc:
            return f"{directory.name}/STATE.json unreadable: {exc}"
        for name, size in sorted(files.items()):
            try:
                actual = (directory / name).stat().st_size
            except FileNotFoundError:
                return f"{directory.name}/{name} is missing"
            if actual != size:
                return f"{directory.name}/{name} has {actual} bytes, {size} were written"
        where = f"{directory.name}/_MAIN_*.toc"
        try:
            storage = _storage(directory, self.mmap)
            ix = storage.open_index()
            try:
                for segment in ix._segments():
                    ext = ".seg" if segment.is_compound() else ".*"
                    where = f"{directory.name}/{segment.make_filename(ext)}"
                    with _closing_on_failure():
                        reader = SegmentReader(storage, ix.schema, segment)
                    try:
                        for docnum in reader.all_doc_ids():
                            reader.stored_fields(docnum)
                            break
                        for term in reader.lexicon("id"):
                            reader.postings("id", term).all_ids()
                            break
                    finally:
                        reader.close()
            finally:
                ix.close()
        except Exception as exc:  # whatever a damaged file makes Whoosh raise
            return f"{where} unreadable: {type(exc).__name__}: {exc}"
        return None

    async def _run_write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._write_pool, fn, *args)

    async def open(self) -> IndexState:
        """Open the live generation (if any) and start the writer task."""
        state = await self._run_write(self._open_sync)
        self._writer_task = asyncio.create_task(self._writer_loop(), name="index-writer")
        self._schedule_merge()
        return state

    def open_sync(self) -> IndexState:
        return self._open_sync()

    def _open_sync(self) -> IndexState:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        # A merge's copies left by a process that died mid-merge (we hold the lock now).
        for stale in [*self.index_dir.glob(".merge-source-*"), *self.index_dir.glob(".merging-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        current = self._current_dir()
        if current is None:
            self.state = IndexState(SCHEMA_VERSION, -1, 0)
            return self.state
        problem = self.verify_sync(current)
        if problem is not None:  # a damaged index is rebuilt, never trusted
            log.error("search index corrupt: %s; it will be rebuilt from the database", problem)
            self.health, self.problem = "corrupt", problem
            self.state = IndexState(SCHEMA_VERSION, -1, 0)
            return self.state
        try:
            ix = _storage(current, self.mmap).open_index()
            state = json.loads((current / "STATE.json").read_text(encoding="utf-8"))
            self.state = IndexState(
                int(state["schema"]), int(state["content_version"]), int(state["doc_count"])
            )
        except Exception as exc:  # a damaged index is rebuilt, never trusted
            log.warning("index at %s unreadable (%s); it will be rebuilt", current, exc)
            self.state = IndexState(SCHEMA_VERSION, -1, 0)
            return self.state
        self._ix = ix
        self.segments = len(ix._segments())
        self._epoch += 1
        return self.state

    async def close(self) -> None:
        if self._merge_timer is not None:
            self._merge_timer.cancel()
            self._merge_timer = None
        await self._stop_merge()
        if self._writer_task is not None:
            await self._queue.put(None)  # drain: the writer finishes queued work first
            await self._writer_task
            self._writer_task = None
        with self._searchers_lock:
            for s in self._searchers:
                s.close()
            self._searchers.clear()
        self._search_pool.shutdown(wait=True)
        self._write_pool.shutdown(wait=True)
        if self._ix is not None:
            self._ix.close()
            self._ix = None
        for ix in self._retired:
            ix.close()
        self._retired.clear()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _take_lock(self) -> None:
        """One process per index: a server and `inflow reindex` writing to it at once would lose
        writes (the server's writer keeps the generation the rebuild swaps out and deletes)."""
        if self._lock_file is not None:
            return
        handle = (self.index_dir / ".inflow.lock").open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise IndexUnavailable(
                f"the index in {self.index_dir} is in use by {holder}; stop it first (or use the "
                "admin API while the server runs)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def agrees_with(self, content_version: int, doc_count: int) -> bool:
        return (
            self._ix is not None
            and self.state.schema == SCHEMA_VERSION
            and self.state.content_version == content_version
            and self.state.doc_count == doc_count
        )

    # -- paths -------------------------------------------------------------------------------
    def _current_dir(self) -> Path | None:
        pointer = self.index_dir / "CURRENT"
        if not pointer.exists():
            return None
        path = self.index_dir / pointer.read_text(encoding="utf-8").strip()
        return path if path.is_dir() else None

    def _write_state(self, directory: Path, state: IndexState) -> None:
        """The state, and the size of every index file (what `verify_sync` checks)."""
        files = {
            p.name: p.stat().st_size
            for p in directory.iterdir()
            if p.is_file() and p.name not in _STATE_SKIP
        }
        tmp = directory / "STATE.json.tmp"
        tmp.write_text(json.dumps({**state.__dict__, "files": files}), encoding="utf-8")
        os.replace(tmp, directory / "STATE.json")

    # -- rebuild -----------------------------------------------------------------------------
    async def rebuild(
        self,
        aids: Sequence[IndexableAid],
        content_version: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> IndexState:
        """Build a complete new generation from `aids` and swap it in."""
        state = await self._run_write(self.rebuild_sync, aids, content_version, progress)
        self._schedule_merge()  # a build in several processes leaves a segment each
        return state

    def rebuild_sync(
        self,
        aids: Sequence[IndexableAid],
        content_version: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> IndexState:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        current = self._current_dir()
        n = int(current.name.split("-")[1]) + 1 if current is not None else 1
        target = self.index_dir / f"gen-{n}"
        tmp = self.index_dir / f".building-{n}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        ix = _storage(tmp, self.mmap).create_index(build_schema())
        aids = sorted(aids, key=_locality)
        procs = self.build_procs if len(aids) >= self.build_procs_min_docs else 1
        try:
            # Forked children each analyse and write a contiguous share of the aids as their
            # own segments, whole posting lists at a time (index/bulk.py).
            bulk.build(ix, aids, aid_document, procs, progress, timeout=self.writer_timeout)
        except BaseException:
            ix.close()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        built = int(ix.doc_count())
        ix.close()
        if built != len(aids):  # a writer process that died would leave its share out
            shutil.rmtree(tmp, ignore_errors=True)
            raise IndexUnavailable(f"the rebuild indexed {built} of {len(aids)} aids")
        state = IndexState(SCHEMA_VERSION, content_version, len(aids))
        self._write_state(tmp, state)
        os.replace(tmp, target)
        return self._go_live(target, state)

    def _go_live(self, target: Path, state: IndexState) -> IndexState:
        """Make the complete generation directory `target` the live index (a rebuild or an
        installed snapshot): point CURRENT at it (the atomic swap), open it, drop the others."""
        pointer_tmp = self.index_dir / "CURRENT.tmp"
        pointer_tmp.write_text(target.name, encoding="utf-8")
        os.replace(pointer_tmp, self.index_dir / "CURRENT")  # the atomic swap
        old_ix = self._ix
        self._ix = _storage(target, self.mmap).open_index()
        self.state = state
        self.segments = len(self._ix._segments())
        self._epoch += 1
        self.generation += 1
        self.health, self.problem = "ok", ""
        if old_ix is not None:
            old_ix.close()
            _forget_segment_caches()
        for stale in self.index_dir.glob("gen-*"):
            if stale != target:
                shutil.rmtree(stale, ignore_errors=True)
        return state

    # -- snapshots (server/snapshots.py: a new node starts from another node's generation) ---
    async def export_generation(self, target: Path) -> IndexState:
        """Copy the live generation (its files and STATE.json) into `target`, on the writer
        thread: no write or merge interleaves, so the copy is one committed state."""
        return await self._run_write(self.export_generation_sync, target)

    def export_generation_sync(self, target: Path) -> IndexState:
        current = self._current_dir()
        if current is None or self._ix is None or self.health != "ok":
            raise IndexUnavailable("no healthy live index to export")
        target.mkdir(parents=True, exist_ok=True)
        for path in current.iterdir():
            if not path.is_file() or path.name in _STATE_SKIP - {"STATE.json"}:
                continue
            try:  # Whoosh never rewrites a file (a commit writes new segments and TOCs)...
                os.link(path, target / path.name)
            except OSError:  # ...so a hard link is a copy; another file system: a real copy
                shutil.copy2(path, target / path.name)
        problem = self.verify_sync(target)
        if problem is not None:  # never hand out a damaged generation
            raise IndexUnavailable(f"the exported index does not verify: {problem}")
        return self._read_state(target)

    @staticmethod
    def _read_state(directory: Path) -> IndexState:
        recorded = json.loads((directory / "STATE.json").read_text(encoding="utf-8"))
        return IndexState(
            int(recorded["schema"]), int(recorded["content_version"]), int(recorded["doc_count"])
        )

    async def install_generation(self, source: Path) -> IndexState:
        """Make the generation in `source` (as `export_generation` wrote it) the live one, on the
        writer thread: verified first (`verify_sync`, same schema), then swapped in as a rebuild
        is. `source` is moved into the index directory (copied from another file system)."""
        return await self._run_write(self.install_generation_sync, source)

    def install_generation_sync(self, source: Path) -> IndexState:
        problem = self.verify_sync(source)
        if problem is not None:
            raise IndexUnavailable(f"the index to install does not verify: {problem}")
        state = self._read_state(source)
        if state.schema != SCHEMA_VERSION:
            raise IndexUnavailable(
                f"the index to install has schema {state.schema}, this Inflow {SCHEMA_VERSION}"
            )
        self.index_dir.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name.split("-")[1]) for p in self.index_dir.glob("gen-*")]
        n = max(numbers, default=0) + 1
        target = self.index_dir / f"gen-{n}"
        tmp = self.index_dir / f".installing-{n}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            os.replace(source, tmp)
        except OSError:  # another file system
            shutil.copytree(source, tmp)
        os.replace(tmp, target)
        return self._go_live(target, state)

    # -- incremental writes -----------------------------------------------------------------
    async def apply(
        self,
        upserts: Iterable[IndexableAid] = (),
        deletes: Iterable[str] = (),
        *,
        content_version: int,
    ) -> int:
        """Queue changes for the single writer; returns the generation that includes them."""
        if self._writer_task is None:
            raise IndexUnavailable("index writer is not running")
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(_WriteOp(list(upserts), list(deletes), content_version, done))
        return await done

    async def _writer_loop(self) -> None:
        while True:
            op = await self._queue.get()
            if op is None:
                return
            ops = [op]
            stop = False
            while not self._queue.empty():  # batch whatever else is already waiting
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stop = True
                    break
                ops.append(nxt)
            writes = [o for o in ops if o.kind == "write"]
            if writes:
                await self._commit_writes(writes)
            for control in (o for o in ops if o.kind != "write"):
                await self._control(control)
            if stop:
                return
            self._schedule_merge()

    async def _commit_writes(self, batch: list[_WriteOp]) -> None:
        try:
            await self._run_write(self._write_batch, batch)
            self.generation += 1
            for b in batch:
                if not b.done.done():
                    b.done.set_result(self.generation)
        except Exception as exc:
            log.exception("index write failed")
            for b in batch:
                if not b.done.done():
                    b.done.set_exception(IndexUnavailable(f"index write failed: {exc}"))

    async def _control(self, op: _WriteOp) -> None:
        """Start a merge (a frozen copy of the live generation, merged by a child process) or
        swap in the merged generation; the result (or failure) goes to `op.done`."""
        try:
            if op.kind == "merge":
                merge = await self._run_write(self._start_merge_sync)
                if merge is not None:
                    self._merge_task = asyncio.create_task(self._merge_in_child(merge))
                result = self.generation
            else:
                await self._run_write(self._install_merge_sync)
                result = self.generation
            if not op.done.done():
                op.done.set_result(result)
        except Exception as exc:
            self._discard_merge()
            if not op.done.done():
                op.done.set_exception(exc)

    def _apply_ops(self, ix: Any, ops: Sequence[_WriteOp], count: int) -> int:
        """Write `ops` in one commit; returns the doc count. Each aid's last change wins: a
        Whoosh writer's deletes (and update_document's) only reach committed segments, so an aid
        upserted then deleted (or upserted twice) in one commit stayed (or was there twice)."""
        final: dict[str, IndexableAid | None] = {}
        for op in ops:
            for aid_id in op.deletes:
                final.pop(aid_id, None)
                final[aid_id] = None
            for aid in op.upserts:
                final.pop(aid.id, None)
                final[aid.id] = aid
        writer = ix.writer(timeout=self.writer_timeout)
        try:
            reader = ix.reader()
            try:
                for aid_id, change in final.items():
                    there = reader.doc_frequency("id", aid_id) > 0
                    if change is None:
                        count -= there
                        writer.delete_by_term("id", aid_id)
                    else:
                        count += not there
                        writer.update_document(**aid_document(change))
            finally:
                reader.close()
            writer.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.cancel()
            raise
        return count

    def _write_batch(self, batch: list[_WriteOp]) -> None:
        if self._ix is None:
            raise IndexUnavailable("no index is open; run a rebuild")
        count = self._apply_ops(self._ix, batch, self.state.doc_count)
        if self._merge is not None:
            self._merge.replay.extend(batch)  # the merged copy has not seen these
        state = IndexState(SCHEMA_VERSION, max(b.content_version for b in batch), count)
        current = self._current_dir()
        if current is not None:
            self._write_state(current, state)
        self.state = state
        self.segments = len(self._ix._segments())

    def _schedule_merge(self) -> None:
        """(Re)start the quiet-period timer that merges segments, when there is more than one
        and no merge runs; with MAX_SEGMENTS or more, merge now (writes that never pause)."""
        if self._merge_timer is not None:
            self._merge_timer.cancel()
            self._merge_timer = None
        if (
            self.merge_delay < 0
            or self.segments <= 1
            or self._merge is not None
            or self._writer_task is None
            or self.health != "ok"
        ):
            return
        delay = 0.0 if self.segments >= MAX_SEGMENTS else self.merge_delay
        loop = asyncio.get_running_loop()
        self._merge_timer = loop.call_later(delay, self._queue_merge)

    def _queue_merge(self, kind: str = "merge") -> None:
        self._merge_timer = None
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_log_merge_failure)
        self._queue.put_nowait(_WriteOp([], [], self.state.content_version, done, kind=kind))

    def _start_merge_sync(self) -> _Merge | None:
        """On the writer thread, between commits: hard-link the live generation's files into a
        frozen copy for the child (Whoosh never rewrites a file, so the links are a snapshot)."""
        current = self._current_dir()
        if self._merge is not None or current is None or self._ix is None or self.segments <= 1:
            return None
        if self.health != "ok":
            return None
        n = max((int(p.name.split("-")[1]) for p in self.index_dir.glob("gen-*")), default=0) + 1
        source = self.index_dir / f".merge-source-{n}-{os.getpid()}"
        target = self.index_dir / f".merging-{n}-{os.getpid()}"
        for stale in (source, target):
            shutil.rmtree(stale, ignore_errors=True)
        source.mkdir()
        target.mkdir()
        for path in current.iterdir():
            if path.is_file() and path.name not in _STATE_SKIP:
                try:
                    os.link(path, source / path.name)
                except OSError:  # a file system without hard links: a real copy
                    shutil.copy2(path, source / path.name)
        self._merge = _Merge(source, target, self._epoch)
        return self._merge

    async def _merge_in_child(self, merge: _Merge) -> None:
        """Run index/merge.py on the frozen copy; when it succeeds, queue the swap."""
        started = time.perf_counter()
        try:
            merge.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "index.merge",
                str(merge.source),
                str(merge.target),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                cwd=_PROJECT_ROOT,
            )
            _, err = await merge.process.communicate()
            code = merge.process.returncode
        except Exception as exc:
            log.warning("merging index segments failed to start: %s", exc)
            self._discard_merge(merge)
            return
        if code != 0:
            if self._merge is merge:  # not stopped by close()
                log.warning(
                    "merging index segments failed (exit %s; searches stay correct, only "
                    "slower): %s",
                    code,
                    err.decode("utf-8", "replace")[-2000:],
                )
            self._discard_merge(merge)
            return
        log.info("index segments merged in %.1f s (child process)", time.perf_counter() - started)
        if self._merge is merge and self._writer_task is not None:
            self._queue_merge("install")

    def _install_merge_sync(self) -> bool:
        """On the writer thread: replay the writes made since the copy onto the merged
        generation, then swap it in as a rebuild is. False (merge discarded) when a rebuild,
        an installed snapshot or a corrupt index replaced the generation meanwhile."""
        merge = self._merge
        if merge is None:
            return False
        if merge.epoch != self._epoch or self._ix is None or self.health != "ok":
            self._discard_merge()
            return False
        n = int(merge.source.name.split("-")[2])
        target = self.index_dir / f"gen-{n}"
        shutil.rmtree(target, ignore_errors=True)
        os.replace(merge.target, target)
        ix = _storage(target, self.mmap).open_index()
        try:
            if merge.replay:
                count = self._apply_ops(ix, merge.replay, int(ix.doc_count()))
                if count != self.state.doc_count:
                    live = self.state.doc_count
                    raise IndexUnavailable(f"the merged index holds {count} aids, live {live}")
            self._write_state(target, self.state)
        except BaseException:
            ix.close()
            shutil.rmtree(target, ignore_errors=True)
            raise
        pointer_tmp = self.index_dir / "CURRENT.tmp"
        pointer_tmp.write_text(target.name, encoding="utf-8")
        os.replace(pointer_tmp, self.index_dir / "CURRENT")  # the atomic swap
        old_ix = self._ix
        self._ix = ix
        self._epoch += 1
        self.generation += 1  # before `segments`: whoever sees one segment sees the new generation
        self.segments = len(ix._segments())
        self.merges += 1
        old_ix.close()
        _forget_segment_caches()
        self._discard_merge()
        for stale in self.index_dir.glob("gen-*"):
            if stale != target:
                shutil.rmtree(stale, ignore_errors=True)
        return True

    def _discard_merge(self, only: _Merge | None = None) -> None:
        """Forget the merge in progress (only `only`, when given) and remove its directories."""
        merge = self._merge
        if only is not None and merge is not only:
            return
        self._merge = None
        if merge is not None:
            shutil.rmtree(merge.source, ignore_errors=True)
            shutil.rmtree(merge.target, ignore_errors=True)

    async def _stop_merge(self) -> None:
        """close(): end a running merge child (its work is thrown away) and wait for it."""
        merge = self._merge
        self._merge = None
        if merge is not None and merge.process is not None and merge.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                merge.process.kill()
        if self._merge_task is not None:
            with contextlib.suppress(Exception):
                await self._merge_task
            self._merge_task = None
        if merge is not None:
            shutil.rmtree(merge.source, ignore_errors=True)
            shutil.rmtree(merge.target, ignore_errors=True)

    # -- searching ---------------------------------------------------------------------------
    def _searcher(self) -> Searcher:
        local = self._local
        ix = self._ix
        if ix is None:
            raise IndexUnavailable("the index is not built yet")
        searcher: Searcher | None = getattr(local, "searcher", None)
        if searcher is None or local.epoch != self._epoch or local.generation != self.generation:
            # A new searcher, not searcher.refresh(): Whoosh's refresh reuses segment readers
            # and misses deletions committed since (an updated aid would match twice).
            if searcher is not None:
                with self._searchers_lock:
                    self._searchers.remove(searcher)
                searcher.close()
            with _closing_on_failure():
                searcher = ix.searcher(weighting=WEIGHTING)
            local.filters = {}
            local.epoch = self._epoch
            local.generation = self.generation
            with self._searchers_lock:
                self._searchers.append(searcher)
        local.searcher = searcher
        return searcher

    def _filter(self, scope: Scope) -> Any:
        """The filter's document set, cached with this thread's searcher (same generation)."""
        searcher = self._searcher()
        cache: dict[tuple[Any, ...], Any] = self._local.filters
        key = scope.filter_key()
        docs = cache.get(key)
        if docs is None:
            _trim(cache)
            docs = set(
                _docs_of(searcher, scope.filter_query())
            )  # Whoosh takes sets, not frozensets
            if not docs:
                # Whoosh takes an empty allow set for "no filter" (collectors.py: `if allow`):
                # a scope nothing passes (a type with no published aid, a library of drafts)
                # returned drafts and restricted aids. A set no document number is in allows none.
                docs = {-1}
            cache[key] = docs
        return docs

    def _top_sync(
        self, q: wq.Query, scope: Scope, limit: int, exclude: frozenset[str]
    ) -> list[Hit]:
        results = self._scoped_search(q, scope, limit, exclude)
        return [Hit(r["id"], float(r.score)) for r in results]

    def _scoped_search(self, q: wq.Query, scope: Scope, limit: int, exclude: frozenset[str]) -> Any:
        """The top `limit` hits of `q` in `scope`, minus the aids `exclude`s.

        Narrowed to apps (a page's app: a few hundred aids, numbered together), the search runs
        without Whoosh's block-quality machinery: it re-plans the matcher tree every 10 hits and
        sums the best possible score of every block of its 50-odd term matchers, to skip blocks
        that cannot reach the top. Over a few hundred candidates that costs more than scoring
        them all (half of a related query's time at 100k aids). Unnarrowed searches keep it."""
        s = self._searcher()
        mask = wq.Or([wq.Term("id", i) for i in exclude]) if exclude else None
        allowed = self._filter(scope)
        if scope.apps is None:
            return s.search(q, filter=allowed, mask=mask, limit=limit)
        collector: Any = collectors.TopCollector(limit, usequality=False, replace=0)
        collector = collectors.FilterCollector(collector, allowed, mask)
        s.search_with_collector(scope.narrow(q), collector)
        return collector.results()

    async def top(
        self, q: wq.Query, scope: Scope, limit: int, exclude: frozenset[str] = frozenset()
    ) -> list[Hit]:
        return await self._run_search(self._top_sync, q, scope, limit, exclude)

    def _related_sync(
        self,
        texts: Sequence[PageText],
        scope: Scope,
        limit: int,
        exclude: frozenset[str],
        ignore: str,
    ) -> list[RelatedHit]:
        rq = self.related_query_sync(texts, scope, ignore)
        if rq is None:
            return []
        hits, docnums = self._related_hits(rq, scope, limit, exclude)
        reader = self._searcher().reader()
        matched = {docnums[aid_id]: pairs for aid_id, _, pairs in hits}

        def near(aid_id: str, first: str, second: str) -> bool:
            """Whether the two stems occur within NEAR_WORDS of each other in the aid's body
            (or both in its transcript: one sentence said in the video)."""
            docnum = docnums[aid_id]
            for name in ("body", "transcript"):
                a = _body_positions(reader, docnum, first, name)
                b = _body_positions(reader, docnum, second, name)
                if any(abs(x - y) <= NEAR_WORDS for x in a for y in b):
                    return True
            return False

        out = relevant(hits, rq, near)
        for i, hit in enumerate(out):
            said = {s: rq.weights[s] for f, s in matched[docnums[hit.id]] if f == "transcript"}
            if said:
                cue = _cue(reader.stored_fields(docnums[hit.id]).get("cues", ""), said)
                out[i] = dataclasses.replace(hit, cue=cue)
        return out

    def _related_hits(
        self, rq: RelatedQuery, scope: Scope, limit: int, exclude: frozenset[str]
    ) -> tuple[list[tuple[str, float, list[tuple[str, str]]]], dict[str, int]]:
        """The best `limit` aids for a related query: (id, score, the (field, stem) pairs it
        matched) each, and their document numbers by id. A page's app's aids are scored by
        index/scoped.py; an unnarrowed scope goes through Whoosh's searcher."""
        s = self._searcher()
        reader = s.reader()
        leaves = scoped.leaves_of(rq.query) if scope.apps is not None else None
        if leaves is not None:
            docs = set(self._scope_docs(scope))
            for aid_id in exclude:
                docs -= self._postings(reader, "id", aid_id) or frozenset()
            within = sorted(docs)
            # 1.0 each: what Whoosh adds for the app clause of `Scope.narrow` (a constant-score
            # query of score 0.0 matches with weight 1), so scores, and the relative cut-off
            # in `relevant`, are those of the unnarrowed path.
            scored, _ = scoped.score(s, WEIGHTING, [leaves], docs, limit, within=within, base=1.0)
            ids = [reader.stored_fields(d)["id"] for d in (x.docnum for x in scored)]
            hits = [(i, x.score, list(x.matched)) for i, x in zip(ids, scored, strict=True)]
            return hits, {i: x.docnum for i, x in zip(ids, scored, strict=True)}
        # No terms=True: recording matched terms for every matching document costs a
        # TermsCollector call per match; the few hits are checked afterwards.
        results = self._scoped_search(rq.query, scope, limit, exclude)
        matched = self._matched(reader, [r.docnum for r in results], rq.weights)
        hits = [(r["id"], float(r.score), matched[r.docnum]) for r in results]
        return hits, {r["id"]: r.docnum for r in results}

    def _postings(self, reader: Any, field: str, stem: str) -> frozenset[int] | None:
        """The documents holding `stem` in `field`, cached per searcher, when the posting list
        is short enough to read whole (SMALL_POSTINGS); None when it is longer."""
        memo: dict[tuple[str, str], frozenset[int] | None] = self._local.filters.setdefault(
            ("postings",), {}
        )
        key = (field, stem)
        if key not in memo:
            count = self._doc_frequency(reader, field, stem)
            if count == 0:
                found: frozenset[int] | None = frozenset()
            elif count <= SMALL_POSTINGS:
                found = frozenset(postings.all_ids(reader.postings(field, stem)))
            else:
                found = None
            if len(memo) >= 50_000:
                memo.clear()
            memo[key] = found
        return memo[key]

    def _doc_frequency(self, reader: Any, field: str, stem: str) -> int:
        """`reader.doc_frequency`, cached per searcher: a related query asks for each page
        word in every field several times (scope frequency, index frequency, postings), and
        each look-up reads the term table's hash buckets from disk."""
        memo: dict[tuple[str, str], int] = self._local.filters.setdefault(("df",), {})
        key = (field, stem)
        count = memo.get(key)
        if count is None:
            if len(memo) >= 100_000:
                memo.clear()
            count = memo[key] = int(reader.doc_frequency(field, stem))
        return count

    def _matched(
        self, reader: Any, docnums: list[int], stems: Iterable[str]
    ) -> dict[int, list[tuple[str, str]]]:
        """For each of `docnums`, the (field, stem) pairs of `stems` it holds: one pass over
        each long posting list (skipping to the documents in order), set lookups otherwise."""
        out: dict[int, list[tuple[str, str]]] = {d: [] for d in docnums}
        ordered = sorted(out)
        for stem in stems:
            for name in FIELD_BOOSTS:
                docs = self._postings(reader, name, stem)
                if docs is not None:
                    for d in ordered:
                        if d in docs:
                            out[d].append((name, stem))
                    continue
                m = reader.postings(name, stem)
                for d in ordered:
                    if not m.is_active():
                        break
                    if m.id() < d:
                        m.skip_to(d)
                    if m.is_active() and m.id() == d:
                        out[d].append((name, stem))
        return out

    def _scope_docs(self, scope: Scope) -> frozenset[int]:
        """The documents a scope admits (the page's app and global aids the caller may see),
        cached with this thread's searcher."""
        searcher = self._searcher()
        cache: dict[tuple[Any, ...], Any] = self._local.filters
        key = ("docs", scope.apps, *scope.filter_key())
        docs = cache.get(key)
        if docs is None:
            allowed = self._filter(scope)
            _trim(cache)
            if scope.apps is None:
                docs = frozenset(allowed) - {-1} if -1 in allowed else frozenset(allowed)
            else:
                # The apps' posting lists (a few hundred documents each), not a walk over every
                # document of the index: that cost 300 ms per app at 100k aids.
                reader = searcher.reader()
                found: set[int] = set()
                for app in scope.apps:
                    with contextlib.suppress(TermNotFound):
                        found.update(reader.postings("apps", app).all_ids())
                # `allowed` is a Whoosh id set: test the few found in it (intersecting it
                # with a Python set iterates all of it, 85k ids at 100k aids).
                docs = frozenset(d for d in found if d in allowed)
            cache[key] = docs
        return frozenset(docs)

    def related_query_sync(
        self, texts: Sequence[PageText], scope: Scope, ignore: str = ""
    ) -> RelatedQuery | None:
        """The related query for page signals, with document frequencies counted over the aids
        in `scope` and every text field (title, summary, tags, body). A word with a long posting
        list (common in the whole index) is estimated instead: its share of the index applied
        to the scope. Reading long lists whole cost more than the search."""
        reader = self._searcher().reader()
        docs = self._scope_docs(scope)
        total = max(1, reader.doc_count())

        def df(stem: str) -> int:
            found: set[int] = set()
            longest = 0
            for name in FIELD_BOOSTS:
                ids = self._postings(reader, name, stem)
                if ids is None:
                    longest = max(longest, self._doc_frequency(reader, name, stem))
                else:
                    found |= ids
            exact = len(found & docs)
            if longest:
                return max(exact, 1, int(longest * len(docs) / total + 0.5))
            return exact

        def correct(words: list[str]) -> dict[str, str]:
            return self._suggest_words_sync(tuple(words))

        def index_df(stem: str) -> int:
            return max(self._doc_frequency(reader, name, stem) for name in FIELD_BOOSTS)

        return related_query(
            texts,
            doc_frequency=df,
            doc_count=len(docs),
            correct=correct,
            ignore=ignore,
            index_frequency=index_df,
            index_count=total,
        )

    async def related(
        self,
        texts: Sequence[PageText],
        scope: Scope,
        limit: int,
        exclude: frozenset[str] = frozenset(),
        ignore: str = "",
    ) -> list[RelatedHit]:
        """Aids related to page text, above the relevance cut-off, each with the page words it
        matched (index/query.py `relevant`). The query is built where the reader is (term
        statistics); `ignore` is text whose words say nothing about the page (the app's name)."""
        return await self._run_search(self._related_sync, texts, scope, limit, exclude, ignore)

    def _page_sync(
        self, q: wq.Query, scope: Scope, offset: int, limit: int, snippet_terms: Any
    ) -> HitPage:
        s = self._searcher()
        groups = scoped.groups_of(q)
        if groups is None:  # a shape index/scoped.py does not score: Whoosh's own search
            results = s.search(
                scope.narrow(q), filter=self._filter(scope), limit=offset + limit, terms=True
            )
            hits = [self._hit(r, r["id"], float(r.score)) for r in results[offset:]]
            return HitPage(hits, len(results))
        docs = self._scope_docs(scope)  # a frozenset (cached): fast membership tests
        within = sorted(docs) if scope.apps is not None else None
        # base: the app clause's 1.0 that Whoosh adds to a narrowed query (see _related_hits)
        base = 1.0 if scope.apps is not None else 0.0
        scored, total = scoped.score(
            s,
            WEIGHTING,
            groups,
            docs,
            offset + limit,
            within=within,
            base=base,
            coord=scoped.coordination(q),
        )
        page = scored[offset:]
        if not page:
            return HitPage([], total)
        reader = s.reader()
        ids = [reader.stored_fields(x.docnum)["id"] for x in page]
        # Whoosh's hits for the snippets and cues: the same query narrowed to these aids.
        only = wq.ConstantScoreQuery(wq.Or([wq.Term("id", i) for i in ids]), 0.0)
        found = {r.docnum: r for r in s.search(wq.And([only, q]), limit=len(ids), terms=True)}
        hits = []
        for x, aid_id in zip(page, ids, strict=True):
            r = found.get(x.docnum)
            hits.append(self._hit(r, aid_id, x.score) if r is not None else Hit(aid_id, x.score))
        return HitPage(hits, total)

    @staticmethod
    def _hit(r: Any, aid_id: str, score: float) -> Hit:
        """A search hit with its snippet and, for a video, the cue where its words are said."""
        r.results.fragmenter = ContextFragmenter(maxchars=180, surround=40)
        r.results.formatter = MatchFormatter()
        # The matched words in context: from the body, else the summary (a hit on the
        # title alone has no snippet; the panel shows the summary as it is).
        snippet = r.highlights("body", top=2) or r.highlights("summary", top=1) or ""
        said = {_text(t): 1.0 for f, t in r.matched_terms() if f == "transcript"}
        cue = _cue(r.get("cues", ""), said) if said else None
        return Hit(aid_id, score, snippet, cue)

    async def page(self, q: wq.Query, scope: Scope, offset: int, limit: int) -> HitPage:
        return await self._run_search(self._page_sync, q, scope, offset, limit, None)

    def _suggest_words_sync(self, words: tuple[str, ...]) -> dict[str, str]:
        limits = self.spelling_limits
        s = self._searcher()
        corrector = s.corrector("words")
        reader = s.reader()
        fixes: dict[str, str] = {}
        budget = limits.max_corrections
        for w in list(dict.fromkeys(words))[: limits.max_words]:
            if budget <= 0:
                break
            if not 3 <= len(w) <= limits.max_word_chars or any(c.isdigit() for c in w):
                continue  # too short to judge, too long to be a typo, or a code / number
            if reader.doc_frequency("words", w) > 0:
                continue
            stems = [t.text for t in TEXT_ANALYZER(w)]
            known = ("body", "title", "transcript")  # a word said in a video is a word too
            if stems and any(reader.doc_frequency(f, stems[0]) > 0 for f in known):
                continue  # a real word of some aid: nothing to correct
            budget -= 1
            self.spelling_lookups += 1
            options = corrector.suggest(
                w, limit=1, maxdist=limits.max_distance, prefix=limits.prefix
            )
            if options:
                fixes[w] = options[0]
        return fixes

    async def spelling(self, words: tuple[str, ...]) -> dict[str, str]:
        return await self._run_search(self._suggest_words_sync, words)

    def doc_count_sync(self) -> int:
        return int(self._ix.doc_count()) if self._ix is not None else 0

    def timed_top_sync(self, q: wq.Query, scope: Scope, limit: int) -> tuple[float, int]:
        """Benchmark helper: raw Whoosh time for one query, in the calling thread."""
        start = time.perf_counter()
        hits = self._top_sync(q, scope, limit, frozenset())
        return time.perf_counter() - start, len(hits)


_segment_filters: dict[tuple[str, int, str], frozenset[int]] = {}


def _forget_segment_caches() -> None:
    """After a generation swap: the process-wide caches keyed by segment (block directories,
    length bytes, filters) describe segments no search will open again; without this they
    stayed until each cache filled."""
    postings.forget()
    scoped.forget()
    _segment_filters.clear()


def _docs_of(searcher: Searcher, q: wq.Query) -> frozenset[int]:
    """The documents of a filter (ANDs and ORs of terms: status, audience, type). Each
    segment's share is kept for the process, keyed by the segment and its live document count
    (a segment only ever loses documents): after a commit only the new small segment is read.
    Whoosh's `_filter_to_comb` walked a matcher over 95k documents at 100k aids, a few hundred
    ms on the first search after every commit."""
    parts = []
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        segment = getattr(reader, "_segment", None)  # an empty index's reader has none
        if segment is None:
            parts.append(_segment_docs(reader, q))
            continue
        key = (str(segment.segment_id()), int(reader.doc_count()), repr(q))
        local = _segment_filters.get(key)
        if local is None:
            local = _segment_docs(reader, q)
            if len(_segment_filters) >= 256:
                _segment_filters.clear()
            _segment_filters[key] = local
        parts.append(local if offset == 0 else frozenset(d + offset for d in local))
    return frozenset().union(*parts) if len(parts) != 1 else parts[0]


def _segment_docs(reader: Any, q: wq.Query) -> frozenset[int]:
    """`_docs_of` for one segment, from its posting lists a block at a time."""
    if isinstance(q, wq.Term):
        try:
            return frozenset(postings.all_ids(reader.postings(q.fieldname, q.text)))
        except TermNotFound:
            return frozenset()
    if type(q) is wq.Or:
        return frozenset().union(*(_segment_docs(reader, sub) for sub in q.subqueries))
    if type(q) is wq.And:
        parts = sorted((_segment_docs(reader, sub) for sub in q.subqueries), key=len)
        return frozenset(parts[0].intersection(*parts[1:])) if parts else frozenset()
    return frozenset(q.docs(Searcher(reader)))


_MEMOS = (("postings",), ("df",))  # per-searcher term caches, bounded on their own


def _trim(cache: dict[tuple[Any, ...], Any], most: int = 256) -> None:
    """Empty a searcher's cache of filters and scope documents once it holds `most` entries,
    keeping its term memos (`_postings`, `_doc_frequency`)."""
    if len(cache) >= most:
        kept = {k: cache[k] for k in _MEMOS if k in cache}
        cache.clear()
        cache.update(kept)


def _locality(aid: IndexableAid) -> str:
    """Build order: an app's aids side by side (global ones first). A page's query is narrowed to
    its app; Whoosh skips through posting lists block by block, so when the app's aids are
    neighbours it reads a few blocks of each list instead of nearly all of them (related aids at
    100k: several times faster). Order within an app stays the aids' own."""
    return min(aid.apps, default="")


def _cue(stored: str, weights: dict[str, float]) -> Cue | None:
    """The best cue of a document's stored cues for the stems its transcript matched."""
    return best_cue(load_cues(stored), weights, _transcript_stems)


def _transcript_stems(text: str) -> list[str]:
    return [t.text for t in BODY_ANALYZER(text)]


def _body_positions(reader: Any, docnum: int, stem: str, field: str = "body") -> list[int]:
    """The positions of `stem` in one aid's body (or another positional field; empty when it
    is not there)."""
    try:
        m = reader.postings(field, stem)
    except TermNotFound:
        return []
    m.skip_to(docnum)
    if not m.is_active() or m.id() != docnum:
        return []
    return list(m.value_as("positions"))
