"""Admin domain operations, shared by the JSON API and the console: `AdminService`, one facade
over the parts (server/admin/aids.py, apps.py, mentors.py, transfer.py, tester.py; shared helpers in
common.py, cursors in server/cursor.py).

Every write runs through `Library.write` (one database transaction that also appends to the audit
log, then the index and the catalog), checks the caller's roles for the workflow step it takes and
compares the caller's `If-Match` with the current ETag inside that same transaction, so a stale
write gets 412 and never overwrites silently.

Who may do what is server/permissions.py (one table, read by the routes, the console and the
OpenAPI document); the service asks it again for each operation (the console calls the service
directly) and keeps only the checks that depend on an aid's state: publishing steps and edits of a
published aid need the operation `aid.publish`. An import applies the files as they are, statuses
included: the reviewed artefact is the archive (a docs-as-code pipeline reviews it before upload).
"""

from __future__ import annotations

from server.admin.aids import AidOps
from server.admin.apps import AppOps
from server.admin.common import (
    PUBLISHERS,
    TRANSITIONS,
    aid_etag,
    aid_json,
    app_etag,
    app_json,
    check_if_match,
    context_etag,
    context_json,
    is_publisher,
    mentor_etag,
    mentor_json,
    require,
    saved_by,
    slugify,
    who,
)
from server.admin.mentors import MentorOps
from server.admin.tester import TesterOps
from server.admin.transfer import TransferOps
from server.cursor import decode_cursor, encode_cursor, page_by_id
from server.models import RuleSpec


class AdminService(TesterOps, AidOps, AppOps, MentorOps, TransferOps):
    """Every admin operation; each part holds one resource's (see the modules above)."""


__all__ = [
    "PUBLISHERS",
    "TRANSITIONS",
    "AdminService",
    "RuleSpec",
    "aid_etag",
    "aid_json",
    "app_etag",
    "app_json",
    "check_if_match",
    "context_etag",
    "context_json",
    "decode_cursor",
    "encode_cursor",
    "is_publisher",
    "mentor_etag",
    "mentor_json",
    "page_by_id",
    "require",
    "saved_by",
    "slugify",
    "who",
]
