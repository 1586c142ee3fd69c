"""tests/test_paths_progress.py with the content on PostgreSQL (tests/pg/conftest.py)."""

from tests.test_paths_progress import *  # noqa: F403
