"""tests/test_admin_api.py with the content on PostgreSQL (tests/pg/conftest.py)."""

from tests.test_admin_api import *  # noqa: F403
