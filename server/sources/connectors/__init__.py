"""Connectors by source kind (server/sources/connectors/base.py says what they do).

One line per kind; the sync engine (server/sources/sync.py) picks the connector of a source's
`kind` here.
"""

from __future__ import annotations

from server.sources.connectors.base import Connector
from server.sources.connectors.git import GitConnector

CONNECTORS: dict[str, Connector] = {}
# One line per kind, e.g. CONNECTORS["feed"] = FeedConnector() (the feed's comes with feed.py).
CONNECTORS["git"] = GitConnector()
