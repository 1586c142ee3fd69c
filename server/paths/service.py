"""Learning paths' admin operations (docs/paths.md).

Importing this module registers the path resources with the generic store (server/peer/store.py),
so `PeerStore` reads and writes them like the peer resources.
"""

from __future__ import annotations

from server.db.path_tables import TABLES
from server.peer.store import register

for _cls, _table in TABLES.items():
    register(_cls, _table)
