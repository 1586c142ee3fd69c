"""tests/test_peer_store.py with the store on PostgreSQL: every peer resource round-trips, and the
database's unique constraints still come back as the same domain errors (409 / 404)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.peer.store import PeerStore
from server.storage import Storage
from tests.pg.conftest import Databases
from tests.test_peer_store import *  # noqa: F403


@pytest.fixture
async def store(tmp_path: Path, pg: Databases) -> AsyncIterator[PeerStore]:
    storage = Storage(tmp_path / "unused.sqlite3", url=pg.new("content"))
    await storage.open()
    try:
        yield PeerStore(storage)
    finally:
        await storage.close()
