"""tests/test_peer_questions.py with the content on PostgreSQL (tests/pg/conftest.py)."""

from tests.test_peer_questions import *  # noqa: F403
