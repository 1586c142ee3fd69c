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

import threading
from array import array
from bisect import bisect_left
from typing import Any

from whoosh.codec import whoosh3
from whoosh.matching import ReadTooFar

# Posting lists shorter than this (bytes) are walked as before: a few blocks at most.
MIN_BYTES = 16 * 1024
MAX_LISTS = 20_000  # directories kept (a few KB each for the longest lists)
_INT_SIZE = whoosh3._INT_SIZE

_directories: dict[tuple[str, int, int], tuple[array[int], array[int]]] = {}
_lock = threading.Lock()


def _directory(m: Any) -> tuple[array[int], array[int]] | None:
    """The (highest id, offset) of each block of matcher `m`'s posting list, or None when the
    list is short or its file has no name to key it by."""
    name = getattr(m._postfile, "_name", None)
    length = m._length
    if isinstance(length, tuple):  # W3TermInfo decodes its length as a 1-tuple
        length = length[0]
    if not name or length < MIN_BYTES:
        return None
    key = (name, m._startoffset, length)
    found = _directories.get(key)
    if found is not None:
        return found
    postfile = m._postfile
    here = postfile.tell()
    maxids: array[int] = array("q")
    offsets: array[int] = array("q")
    position = m._baseoffset
    try:
        while True:
            postfile.seek(position)
            length = postfile.read_int()
            info = postfile.read_pickle()
            maxids.append(info[1])
            offsets.append(position)
            if length < 0:
                break
            position += _INT_SIZE + length
    finally:
        postfile.seek(here)
    with _lock:
        if len(_directories) >= MAX_LISTS:
            _directories.clear()
        _directories[key] = (maxids, offsets)
    return maxids, offsets


class BlockMatcher(whoosh3.W3LeafMatcher):  # type: ignore[misc]
    """A W3 leaf matcher whose `skip_to` jumps to the target's block (see the module doc)."""

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
                maxids, offsets = directory
                i = bisect_left(maxids, targetid)
                if i >= len(maxids):
                    self._atend = True
                    return
                self._goto(offsets[i])
        while self.is_active() and self.id() < targetid:
            self.next()


def install() -> None:
    """Make Whoosh's W3 codec read long posting lists through `BlockMatcher` (idempotent)."""
    whoosh3.W3LeafMatcher = BlockMatcher
