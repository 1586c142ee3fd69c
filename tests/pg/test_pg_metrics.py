"""tests/test_metrics.py with the content on PostgreSQL (tests/pg/conftest.py): the database
counts behind /metrics (content version, outboxes, sources, links) on the multi-node store."""

from tests.test_metrics import *  # noqa: F403
