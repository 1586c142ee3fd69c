"""Connectors by source kind (server/sources/connectors/base.py says what they do).

One line per kind; the sync engine (server/sources/sync.py) picks the connector of a source's
`kind` here.
"""

from __future__ import annotations

from server.sources.connectors.base import Connector
from server.sources.connectors.feed import FeedConnector
from server.sources.connectors.git import GitConnector
from server.sources.connectors.website import WebsiteConnector

CONNECTORS: dict[str, Connector] = {}
CONNECTORS["feed"] = FeedConnector()
CONNECTORS["git"] = GitConnector()
CONNECTORS["website"] = WebsiteConnector()
