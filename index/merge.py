"""Merge an index generation's segments into one, in a child process.

    python -m index.merge SOURCE TARGET

SOURCE is a frozen copy of a generation (hard links of its files, made by the writer thread
between two commits: Whoosh never rewrites a segment file, so the links are a consistent
snapshot); TARGET is a new, empty directory that receives one segment holding every live
document of SOURCE. The server keeps writing to the live generation meanwhile; when this process
exits 0 the writer replays those writes onto TARGET and swaps it in (index/service.py).

Why a process: a merge rewrites every posting of the index (minutes of CPU at 100k aids). In the
server's writer thread it held the GIL against every search; here it runs on the other core, at
a lower priority (nice), and the server's searches keep their latency.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from whoosh.filedb.filestore import FileStorage

from index.bulk import BulkWriter

NICE = 10  # below the server's threads: a merge may take longer, a search should not


def merge_copy(source: Path, target: Path) -> int:
    """One segment in `target` with the live documents of `source`; returns their count."""
    src = FileStorage(str(source)).open_index()
    try:
        dst = FileStorage(str(target)).create_index(src.schema)
        reader = src.reader()
        try:
            # postings merged a term at a time, a block at a time (index/bulk.py)
            writer = BulkWriter(dst)
            try:
                for leaf, _offset in reader.leaf_readers():
                    writer.add_reader(leaf)
                writer.commit()
            except BaseException:
                writer.cancel()
                raise
        finally:
            reader.close()
        count = int(dst.doc_count())
        dst.close()
        return count
    finally:
        src.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m index.merge SOURCE TARGET", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):  # a lower priority is a courtesy, not a need
        os.nice(NICE)
    merge_copy(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
