"""Index builds that write each posting list whole, in several processes.

Whoosh's writer sends every posting of a build through a sorting pool and then through a chain
of per-posting calls (the codec reads each document's field length back from its column, checks
types, updates block statistics one posting at a time). At 300 words an aid that was most of a
build's time. `BulkWriter` keeps a segment's postings in memory as arrays per term, documents
being added in order, and hands the codec whole blocks. The segment holds what Whoosh's writer
writes for the same documents: every term, posting, block statistic and stored field
(tests/test_index_bulk.py; the posting files differ in bytes only because a word's single
position is one shared value, which a block's pickle writes once). Analysis takes
`FastAnalyzer.positions`, without a Token per word. `add_reader` merges segments the same way.

`build` splits the aids into one contiguous share per process (so an app's aids, which a
rebuild numbers side by side, stay together), forks a child per share, and commits the segments
they write in share order. The parent only waits and reports progress, so the server it runs in
keeps its event loop. A child that dies or fails fails the build: nothing half-built goes live.
"""

from __future__ import annotations

import copy
import heapq
import multiprocessing
import pickle
import traceback
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import groupby
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from whoosh.codec import whoosh3
from whoosh.fields import FieldType
from whoosh.filedb.structfile import StructFile
from whoosh.formats import Frequency, Positions
from whoosh.matching import WrappingMatcher
from whoosh.reading import TermNotFound
from whoosh.system import IS_LITTLE, pack_uint
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

from index import postings, scoped
from index.analysis import FastAnalyzer
from index.errors import IndexUnavailable

# A segment's postings live in memory until it is written (~25 bytes a posting, ~150 postings
# an aid of 300 words): a share larger than this is written as several segments.
MAX_SEGMENT_DOCS = 60_000
_PROGRESS_EVERY = 500

# Per term: document numbers, weights and encoded values (a word's single position is one
# shared bytes object, see encode_positions).
_Postings = tuple["array[int]", "array[float]", list[bytes]]
Document = dict[str, Any]


def _fast_field(field: FieldType) -> tuple[FastAnalyzer, bool, float] | None:
    """(analyser, positions?, boost) of a field whose postings the bulk writer makes itself
    (our analysers' text with positions or frequencies); None: through `field.index`."""
    kind = type(field.format)
    if isinstance(field.analyzer, FastAnalyzer) and kind in (Positions, Frequency):
        return field.analyzer, kind is Positions, float(field.format.field_boost)
    return None


_ONE_POSITION: dict[int, bytes] = {}


def encode_positions(seen: list[int]) -> bytes:
    """`Positions.encode`: the count, then the pickled gaps between ascending positions. A word
    said once (most of them) is looked up: the same few hundred values recur in every body."""
    if len(seen) == 1:
        pos = seen[0]
        value = _ONE_POSITION.get(pos)
        if value is None:
            value = bytes(pack_uint(1)) + pickle.dumps([pos], 2)
            if len(_ONE_POSITION) < 100_000:
                _ONE_POSITION[pos] = value
        return value
    gaps = [b - a for a, b in zip([0, *seen[:-1]], seen, strict=True)]
    count: bytes = pack_uint(len(seen))
    return count + pickle.dumps(gaps, 2)


class _CountedFile(StructFile):  # type: ignore[misc]
    """A file being written that knows its position: `BufferedWriter.tell()` is a system call,
    and the codec asks for it twice a term (a singleton term cost more in `tell` than in its
    own pickling)."""

    def __init__(self, inner: StructFile) -> None:
        super().__init__(inner.file, inner._name, inner.onclose)
        self._position = int(inner.tell())

    def write(self, data: bytes) -> int:
        n: int = self.file.write(data)
        self._position += n
        return n

    def tell(self) -> int:
        return self._position

    def seek(self, *args: Any) -> int:
        moved: int = self.file.seek(*args)
        self._position = self.file.tell()
        return moved

    # StructFile's two writers that go to the file past `write`
    def write_pickle(self, obj: Any, protocol: int = -1) -> None:
        self.write(pickle.dumps(obj, protocol))

    def write_array(self, arry: Any) -> None:
        if IS_LITTLE:  # big-endian on disk
            arry = copy.copy(arry)
            arry.byteswap()
        self.write(arry.tobytes())


class BulkWriter(SegmentWriter):  # type: ignore[misc]
    """A segment writer for documents added once, in order, then written whole (no deletions,
    no merging, no `_boost`/`_stored_` arguments, no spelling or vector fields)."""

    def __init__(self, ix: Any, **kwargs: Any) -> None:
        postings.install()  # blocks pickled compactly (also in `python -m index.merge`)
        super().__init__(ix, **kwargs)
        fw = self.fieldwriter
        fw._postfile = _CountedFile(fw._postfile)
        fw._tindex.dbfile = _CountedFile(fw._tindex.dbfile)
        self._postings: dict[str, dict[bytes, _Postings]] = {}
        # segments being merged in (add_reader): a reader, its old -> new document numbers
        # (None: no deletions, numbers shift by the base) and that base
        self._sources: list[tuple[Any, dict[int, int] | None, int]] = []
        self._length_bytes: dict[str, bytearray] = {}  # per indexed field: a byte per document
        self._fast = {name: _fast_field(field) for name, field in self.schema.items()}
        # the postings of values that recur (a status, a type, an app): made once
        self._items: dict[tuple[str, Any], list[tuple[bytes, int, float, bytes]]] = {}
        for name, field in self.schema.items():
            if field.separate_spelling() or field.vector:
                raise ValueError(f"the bulk writer cannot write field {name!r}")

    def add_document(self, **fields: Any) -> None:
        self._check_state()
        schema, docnum, pdw = self.schema, self.docnum, self.perdocwriter
        names = sorted(fields)
        self._check_fields(schema, names)
        if any(name.startswith("_") for name in names):
            raise ValueError("the bulk writer takes no _boost or _stored_ arguments")
        pdw.start_doc(docnum)
        for name in names:
            value = fields[name]
            if value is None:
                continue
            field = schema[name]
            length = 0
            if field.indexed:
                terms = self._postings.setdefault(name, {})
                fast = self._fast[name]
                if fast is not None and isinstance(value, str):
                    # what Positions/Frequency.word_values make of the tokens, without them
                    analyzer, positional, boost = fast
                    for word, seen in analyzer.positions(value).items():
                        text = word.encode("utf-8")
                        p = terms.get(text)
                        if p is None:
                            p = terms[text] = (array("I"), array("f"), [])
                        freq = len(seen)
                        p[0].append(docnum)
                        p[1].append(freq * boost)
                        p[2].append(encode_positions(seen) if positional else pack_uint(freq))
                        length += freq
                    if not field.scorable:
                        length = 0
                else:
                    for text, freq, weight, vbytes in self._field_items(name, field, value):
                        p = terms.get(text)
                        if p is None:
                            p = terms[text] = (array("I"), array("f"), [])
                        p[0].append(docnum)
                        p[1].append(weight)
                        p[2].append(vbytes)
                        if field.scorable:
                            length += freq
                lengths = self._length_bytes.setdefault(name, bytearray())
                lengths.extend(bytes(docnum - len(lengths)))  # documents without the field
                lengths.append(length_to_byte(length) if length else 0)
            pdw.add_field(name, field, value if field.stored else None, length)
            column = field.column_type
            if column:
                pdw.add_column_value(name, column, field.to_column_value(value))
        pdw.finish_doc()
        self._added = True
        self.docnum += 1

    def _field_items(
        self, name: str, field: FieldType, value: Any
    ) -> list[tuple[bytes, int, float, bytes]]:
        """`field.index(value)`, remembered for short values of fields that are not unique."""
        if field.unique or not isinstance(value, str) or len(value) > 64:
            return list(field.index(value))
        key = (name, value)
        items = self._items.get(key)
        if items is None:
            items = list(field.index(value))
            if len(self._items) < 10_000:
                self._items[key] = items
        return items

    def add_reader(self, reader: Any) -> None:
        """Merge in a segment's live documents: their stored fields and lengths now (Whoosh's
        own per-document copy), their postings when the segment is written, a term at a time
        from every source, block by block (Whoosh pooled and sorted every posting)."""
        self._check_state()
        if self._postings:
            raise ValueError("the bulk writer merges segments before it adds documents")
        base = self.docnum
        names = set(self.schema.names()) | {
            n for n in reader.indexed_field_names() if n in self.schema
        }
        docmap = self.write_per_doc(names, reader)
        count = reader.doc_count_all()
        live = None if docmap is None else sorted(docmap)
        for name, field in self.schema.items():
            if not field.indexed:
                continue
            raw = scoped.length_bytes(reader, name, count)
            lengths = self._length_bytes.setdefault(name, bytearray())
            lengths.extend(bytes(base - len(lengths)))
            lengths.extend(raw if live is None else bytes(map(raw.__getitem__, live)))
        self._sources.append((reader, docmap, base))
        self._added = True

    def _flush_segment(self) -> None:
        """Write the postings, field by field and term by term in byte order, a block at a time
        (Whoosh's `FieldWriter.add_postings` does it a posting at a time)."""
        self.perdocwriter.close()
        fw = self.fieldwriter
        names = set(self._postings)
        for reader, _, _ in self._sources:
            names |= {n for n in reader.indexed_field_names() if n in self.schema}
        for name in sorted(names):
            field = self.schema[name]
            mine = self._postings.pop(name, {})
            sources = [src for src in self._sources if name in src[0].indexed_field_names()]
            lengths = self._length_bytes.get(name, bytearray())
            has_values = field.format.fixed_value_size() != 0
            texts = heapq.merge(*(src[0].lexicon(name) for src in sources), sorted(mine))
            started = False
            for text, _ in groupby(texts):
                if sources:
                    ids: array[int] = array("I")
                    weights: array[float] = array("f")
                    values: list[bytes] = []
                    for src in sources:
                        _read_postings(src, name, text, has_values, ids, weights, values)
                    if text in mine:
                        more = mine[text]
                        ids.extend(more[0])
                        weights.extend(more[1])
                        values.extend(more[2])
                    if not ids:  # every document that had it was deleted
                        continue
                else:
                    ids, weights, values = mine[text]
                if not started:  # a field gets its number with its first term, as in Whoosh
                    fw.start_field(name, field)
                    started = True
                fw.start_term(text)
                _write_blocks(fw._postwriter, ids, weights, values, lengths, has_values)
                fw.finish_term()
            if started:
                fw.finish_field()
        fw.close()


def _write_blocks(
    pw: Any,
    ids: array[int],
    weights: array[float],
    values: list[bytes],
    lengths: bytearray,
    has_values: bool,
) -> None:
    """Hand a term's postings to the codec's postings writer a block at a time, leaving the
    last block buffered (`finish_term` writes it, marked as the last)."""
    limit = pw._blocklimit
    n = len(ids)
    for start in range(0, n, limit):
        end = min(start + limit, n)
        block_ids = ids[start:end]
        block_weights = weights[start:end]
        pw._ids = block_ids
        pw._weights = block_weights
        pw._maxweight = max(0, max(block_weights))
        pw._values = values[start:end] if has_values else []
        # Whoosh reads each posting's length back from the column (a byte, so rounded); a zero
        # length (a field that is not scored) is no minimum
        held = bytes(map(lengths.__getitem__, block_ids)).replace(b"\0", b"")
        pw._minlength = byte_to_length(min(held)) if held else None
        pw._maxlength = byte_to_length(max(held)) if held else 0
        if end < n:
            pw._write_block()


def _read_postings(
    source: tuple[Any, dict[int, int] | None, int],
    field: str,
    text: bytes,
    has_values: bool,
    ids: array[int],
    weights: array[float],
    values: list[bytes],
) -> None:
    """Append a source segment's live postings of a term, renumbered, a block at a time."""
    reader, docmap, base = source
    try:
        m = reader.postings(field, text)
    except TermNotFound:
        return
    while isinstance(m, WrappingMatcher):  # deletions: filtered below, through the docmap
        m = m.child
    if not isinstance(m, whoosh3.W3LeafMatcher):  # an inlined list: a posting at a time
        while m.is_active():
            d = m.id()
            if docmap is None or d in docmap:
                ids.append(docmap[d] if docmap is not None else d + base)
                weights.append(m.weight())
                if has_values:
                    values.append(m.value())
            m.next()
        return
    while m.is_active():
        m._read_ids()
        m._read_weights()
        if has_values:
            m._read_values()
        block_ids, block_weights = m._ids, m._weights
        if docmap is None:
            ids.extend([d + base for d in block_ids])
            weights.extend(block_weights)
            if has_values:
                values.extend(m._values)
        else:
            keep = [i for i, d in enumerate(block_ids) if d in docmap]
            ids.extend([docmap[block_ids[i]] for i in keep])
            weights.extend([block_weights[i] for i in keep])
            if has_values:
                block_values = m._values
                values.extend([block_values[i] for i in keep])
        m._next_block()


def write_segments(
    ix: Any, docs: Iterable[Document], report: Callable[[int], None] | None = None
) -> list[Any]:
    """Write `docs` as new segments of `ix` (not committed: the caller lists them in a TOC), a
    segment per MAX_SEGMENT_DOCS. `report(n)` is called with the count added so far."""
    segments: list[Any] = []
    writer: BulkWriter | None = None
    added = 0
    for doc in docs:
        if writer is None:
            writer = BulkWriter(ix, _lk=False)
        writer.add_document(**doc)
        added += 1
        if report and added % _PROGRESS_EVERY == 0:
            report(added)
        if writer.doc_count() >= MAX_SEGMENT_DOCS:
            segments.append(writer._finalize_segment())
            writer = None
    if writer is not None:
        segments.append(writer._finalize_segment())
    if report:
        report(added)
    return segments


def build(
    ix: Any,
    items: Sequence[Any],
    to_document: Callable[[Any], Document],
    procs: int,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 0.0,
) -> None:
    """Index `items` (documents made by `to_document`, in the child that writes them) into the
    empty index `ix`, in `procs` forked processes (1: in this one), and commit the segments in
    the items' order. Raises IndexUnavailable when a share fails; the index is then unchanged."""
    total = len(items)
    lock_holder = ix.writer(timeout=timeout)  # the index's write lock, and the TOC it commits
    try:
        if procs <= 1 or total < procs:
            segments = write_segments(
                ix,
                (to_document(item) for item in items),
                (lambda n: progress(n, total)) if progress else None,
            )
        else:
            segments = _forked(ix, items, to_document, procs, progress)
    except BaseException:
        lock_holder.cancel()
        raise
    lock_holder._close_segment()
    lock_holder._commit_toc(segments)  # also deletes the files of the unused writer's segment
    lock_holder._finish()


def _forked(
    ix: Any,
    items: Sequence[Any],
    to_document: Callable[[Any], Document],
    procs: int,
    progress: Callable[[int, int], None] | None,
) -> list[Any]:
    total = len(items)
    bounds = [total * k // procs for k in range(procs + 1)]
    ctx = multiprocessing.get_context("fork")
    children: list[tuple[Any, Connection]] = []
    for k in range(procs):
        receive, send = ctx.Pipe(duplex=False)
        share = items[bounds[k] : bounds[k + 1]]
        child = ctx.Process(
            target=_child, args=(ix, share, to_document, send), name=f"inflow-build-{k}"
        )
        child.start()
        send.close()
        children.append((child, receive))
    done = [0] * procs
    results: list[list[Any] | None] = [None] * procs
    problem = ""
    open_conns = {conn: k for k, (_, conn) in enumerate(children)}
    finished = False
    try:
        while open_conns and not problem:
            for conn in cast(list[Connection], wait(list(open_conns))):
                k = open_conns[conn]
                try:
                    message: tuple[str, Any] = conn.recv()
                except EOFError:
                    del open_conns[conn]
                    if results[k] is None and not problem:
                        problem = f"index build process {k} ended without its segments"
                    continue
                kind, payload = message
                if kind == "progress":
                    done[k] = payload
                    if progress:
                        progress(sum(done), total)
                elif kind == "segments":
                    results[k] = payload
                else:
                    problem = problem or f"index build process {k} failed: {payload}"
        finished = not problem
    finally:
        for child, conn in children:
            if not finished:  # a share failed (or this thread was interrupted): stop the rest
                child.terminate()
            child.join()
            conn.close()
    if problem or any(r is None for r in results):
        raise IndexUnavailable(problem or "an index build process gave no segments")
    return [segment for share in results for segment in share or []]


def _child(ix: Any, share: Sequence[Any], to_document: Callable[[Any], Document], out: Any) -> None:
    try:
        segments = write_segments(
            ix, _documents(share, to_document), lambda n: out.send(("progress", n))
        )
        out.send(("segments", segments))
    except BaseException as e:  # reported to the parent, which fails the build
        traceback.print_exc()  # the whole story on the server's stderr
        out.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        out.close()


def _documents(share: Sequence[Any], to_document: Callable[[Any], Document]) -> Iterator[Document]:
    for item in share:
        yield to_document(item)
