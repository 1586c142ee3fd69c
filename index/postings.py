"""Skip straight to a block of a long Whoosh posting list instead of walking to it.

Whoosh's posting lists (codec `whoosh3`) are chains of blocks of up to 128 postings, each block
headed by its length and a pickled info tuple (its highest document number among them). There is
no skip list: `skip_to(n)` reads every block header between where the matcher is and the block
holding `n`. A related query is narrowed to one app's aids, which a rebuild numbers together
(index/service.py `_locality`), so most of its work was walking the headers of long lists up to
that app's documents: at 100k aids, reading and unpickling headers was most of a suggestion's
time.

`BlockMatcher` keeps, per posting list, the (highest document, offset) of every block, read once
and shared by every searcher of the process, and jumps to the block with a bisection. Segments
never change once written (deletions live apart), and a segment's files are named by its random
id, so the name, offset and length of a posting list identify it for the life of the process.
"""

from __future__ import annotations

import io
import pickle
import threading
import zlib
from array import array
from bisect import bisect_left
from typing import Any

from whoosh.codec import whoosh3
from whoosh.matching import ReadTooFar
from whoosh.matching.wrappers import FilterMatcher, MultiMatcher
from whoosh.system import unpack_int
from whoosh.util.numeric import byte_to_length, length_to_byte

# Posting lists shorter than this (bytes) are walked as before: a few blocks at most.
MIN_BYTES = 16 * 1024
MAX_LISTS = 20_000  # directories kept (a few KB each for the longest lists)
_INT_SIZE = whoosh3._INT_SIZE
_HEAD_BYTES = 128  # a block's length and pickled info tuple (about 40 bytes) in one read


class _Directory:
    """The (highest id, offset) of a posting list's blocks, read as far as skips have needed:
    a first skip reads no more headers than Whoosh's walk would."""

    __slots__ = ("complete", "maxids", "next_offset", "offsets")

    def __init__(self, first: int) -> None:
        self.maxids: array[int] = array("q")
        self.offsets: array[int] = array("q")
        self.next_offset = first  # the first block header not read yet
        self.complete = False

    def block_for(self, postfile: Any, target: int) -> int | None:
        """The offset of the first block whose highest id is at least `target`; None when
        every block is below it."""
        i = bisect_left(self.maxids, target)
        if i < len(self.maxids):
            return int(self.offsets[i])
        with _lock:  # one thread extends a directory at a time
            while not self.complete:
                position = self.next_offset
                length, info, _ = _header(postfile, position)
                # offsets first: a reader bisecting `maxids` without the lock then always
                # finds the offset of the block it lands on
                self.offsets.append(position)
                self.maxids.append(info[1])
                self.complete = length < 0
                self.next_offset = position + _INT_SIZE + abs(length)
                if info[1] >= target:
                    return position
        return None


_directories: dict[tuple[str, int, int], _Directory] = {}
_lock = threading.Lock()


def _header(postfile: Any, position: int) -> tuple[int, tuple[Any, ...], int]:
    """The block at `position`: its signed length (negative: the last block), its info tuple
    and where its data starts, in one read (Whoosh reads the pickle a few bytes at a time)."""
    head = postfile.get(position, _HEAD_BYTES)
    buf = io.BytesIO(head)
    buf.seek(_INT_SIZE)
    try:
        info = pickle.load(buf)  # noqa: S301 (our own index files, which Whoosh unpickles too)
    except (EOFError, pickle.UnpicklingError):  # an info tuple longer than _HEAD_BYTES
        postfile.seek(position + _INT_SIZE)
        info = postfile.read_pickle()
        return unpack_int(head[:_INT_SIZE])[0], info, postfile.tell()
    return unpack_int(head[:_INT_SIZE])[0], info, position + buf.tell()


def _directory(m: Any) -> _Directory | None:
    """Matcher `m`'s posting list's block directory, or None when the list is short or its
    file has no name to key it by."""
    name = getattr(m._postfile, "_name", None)
    length = m._length
    if isinstance(length, tuple):  # W3TermInfo decodes its length as a 1-tuple
        length = length[0]
    if not name or length < MIN_BYTES:
        return None
    key = (name, m._startoffset, length)
    found = _directories.get(key)
    if found is None:
        with _lock:
            if len(_directories) >= MAX_LISTS:
                _directories.clear()
            found = _directories.setdefault(key, _Directory(m._baseoffset))
    return found


class BlockMatcher(whoosh3.W3LeafMatcher):  # type: ignore[misc]
    """A W3 leaf matcher whose `skip_to` jumps to the target's block (see the module doc), and
    which reads a block's header in one read."""

    _data: Any
    _ids: Any
    _weights: Any
    _values: Any

    def _goto(self, position: int) -> None:
        self._data = self._ids = self._weights = self._values = None
        self._i = 0
        length, info, self._dataoffset = _header(self._postfile, position)
        if length < 0:
            self._lastblock = True
            length = -length
        self._nextoffset = position + _INT_SIZE + length
        (self._blocklength, self._maxid, self._maxweight, self._compression, mnlen, mxlen) = info
        self._minlength = byte_to_length(mnlen)
        self._maxlength = byte_to_length(mxlen)

    def skip_to(self, targetid: int) -> None:
        if not self.is_active():
            raise ReadTooFar
        if targetid > self._maxid:
            # Past this block: find the target's block without reading this block's postings.
            directory = None if self._lastblock else _directory(self)
            if directory is None:
                block_max_id = self.block_max_id
                self._skip_to_block(lambda: targetid > block_max_id())
            else:
                offset = directory.block_for(self._postfile, targetid)
                if offset is None:
                    self._atend = True
                    return
                self._goto(offset)
        if not self.is_active():
            return
        # Within the block: a bisection over its ids (Whoosh steps through them one by one).
        if self._ids is None:
            self._read_ids()
        ids = self._ids
        if ids[self._i] < targetid:
            self._i = bisect_left(ids, targetid, self._i)
            if self._i >= len(ids):  # only when the directory was not used: read on
                self._i = len(ids) - 1
                self.next()
                while self.is_active() and self.id() < targetid:
                    self.next()


# A block's data (ids, weights, values) is pickled with this protocol. Whoosh used 2, where a
# bytes value (a posting's positions) is pickled as a call to codecs.encode: a block of body
# postings took 130 us to pickle and 180 us to read back, 5.8 KB before compression. With 4:
# 13 us, 34 us, 3.6 KB (and 0.9 KB compressed, against 1.9). Readers take any protocol, so old
# segments and new ones mix.
DATA_PROTOCOL = 4
MIN_COMPRESS = 64  # bytes of pickled data: zlib makes less of them bigger, not smaller


def _write_block(self: Any, last: bool = False) -> None:
    """`W3PostingsWriter._write_block` with the block data pickled by DATA_PROTOCOL, and small
    blocks left uncompressed (Whoosh meant to: its check for under 20 bytes was overwritten)."""
    if not self._blockcount:
        self._postfile.write(whoosh3.WHOOSH3_HEADER_MAGIC)
    self._terminfo.add_block(self)
    data = (self._mini_ids(), self._mini_weights(), self._mini_values())
    databytes = pickle.dumps(data, DATA_PROTOCOL)
    comp = self._compression if len(databytes) >= MIN_COMPRESS else 0
    if comp:
        databytes = zlib.compress(databytes, comp)
    ids = self._ids
    info = (
        len(ids),
        ids[-1],
        self._maxweight,
        comp,
        length_to_byte(self._minlength),
        length_to_byte(self._maxlength),
    )
    infobytes = pickle.dumps(info, 2)  # block headers as before (read by `_header`)
    length = len(infobytes) + len(databytes)
    self._postfile.write_int(-length if last else length)  # negative: the last block
    self._postfile.write(infobytes)
    self._postfile.write(databytes)
    self._blockcount += 1
    self._new_block()


def forget() -> None:
    """Drop every directory: a new generation replaced the segments they describe."""
    with _lock:
        _directories.clear()


def install() -> None:
    """Make Whoosh's W3 codec read long posting lists through `BlockMatcher` and write blocks
    with `_write_block` (idempotent)."""
    whoosh3.W3LeafMatcher = BlockMatcher
    whoosh3.W3PostingsWriter._write_block = _write_block


def all_ids(m: Any) -> list[int]:
    """Every document id of matcher `m` from where it is, a block's ids at a time for on-disk
    posting lists: under a segment's deletions (ids left out) and across segments (offset);
    any other matcher one id at a time."""
    if isinstance(m, FilterMatcher):
        inner = all_ids(m.child)
        if m._exclude:
            return [d for d in inner if d not in m._ids]
        return [d for d in inner if d in m._ids]
    if isinstance(m, MultiMatcher):
        out: list[int] = []
        for i in range(m.current, len(m.matchers)):
            offset = m.offsets[i]
            out += [d + offset for d in all_ids(m.matchers[i])]
        return out
    if type(m) is not BlockMatcher:
        return list(m.all_ids())
    ids: list[int] = []
    while m.is_active():
        if m._ids is None:
            m._read_ids()
        ids.extend(m._ids[m._i :])
        if m._lastblock:
            break
        m._next_block()
    return ids
