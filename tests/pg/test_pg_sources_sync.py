"""tests/test_sources_sync.py with the content on PostgreSQL (tests/pg/conftest.py)."""

from tests.test_sources_sync import *  # noqa: F403
