"""The index's own exceptions (no imports: the HTTP layer maps them without importing Whoosh)."""

from __future__ import annotations


class IndexUnavailable(RuntimeError):
    """The index cannot be opened, searched or written (for now: callers may retry later)."""

    retry_after = 30  # seconds; a rebuild of 10k aids takes about that long


class IndexCorrupt(IndexUnavailable):
    """A file of the live index is missing or damaged; a rebuild from the database is under way."""
