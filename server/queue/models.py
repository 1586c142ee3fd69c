"""The authoring queue's resource, declared once (docs/queue.md, the contract of issue 13).

A `QueueItem` is one gap worth an author's time, found by the refresh (server/queue/signals.py):
a page people open the panel on with nothing pinned, a page whose pinned aids people find
unhelpful, a search that finds nothing, a question nobody answered, an aid past its review date,
an aid whose primary link is broken. One item per (kind, key); the refresh updates its figures.

Everything but `status`, `assignee` and `note` is the server's (read-only). The same style as
server/peer/models.py: frozen, keyword-only dataclasses; `validate`/`dump` from server/models.py;
the table is derived from the class (server/db/queue_tables.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import AfterValidator, Field

from server.models import CONFIG, READ_ONLY, STRIP, USERNAME_RE, Timestamp, _matches
from server.peer.models import CLEAN, PeerId

_Kind = Literal[
    "unpinned_context",
    "low_helpful",
    "zero_results",
    "unanswered_question",
    "review_due",
    "broken_link",
]
_Status = Literal["open", "assigned", "in_progress", "done", "dismissed"]
KINDS: tuple[str, ...] = get_args(_Kind)
STATUSES: tuple[str, ...] = get_args(_Status)
# an item in one of these is settled: the refresh leaves it alone unless its figures got worse
CLOSED: frozenset[str] = frozenset({"done", "dismissed"})
if TYPE_CHECKING:  # plain str for code that builds objects from rows; pydantic sees the Literal
    QueueKind = str
    QueueStatus = str
else:
    QueueKind = _Kind
    QueueStatus = _Status

NOTE_MAX = 1000
TITLE_MAX = 300
DETAIL_MAX = 2000

# A Keycloak username ("" = nobody). Not looked up in Keycloak (docs/queue.md says why).
Username = Annotated[
    str,
    STRIP,
    Field(max_length=255),
    AfterValidator(lambda v: v if not v else _matches(USERNAME_RE, "a Keycloak username")(v)),
]
Note = Annotated[Annotated[str, Field(max_length=NOTE_MAX)], CLEAN]


@dataclass(frozen=True, kw_only=True)
class QueueItem:
    """One gap for an author: what (kind, key), where (app), why (title, detail, figures), and
    who works on it (status, assignee)."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    kind: Annotated[QueueKind, READ_ONLY]
    # context id, "<app>/<query>", question id, aid id: unique per kind
    key: Annotated[str, READ_ONLY, Field(max_length=400)]
    app_id: Annotated[str, READ_ONLY, Field(max_length=64)] = ""
    title: Annotated[str, READ_ONLY, Field(max_length=TITLE_MAX)] = ""
    detail: Annotated[str, READ_ONLY, Field(max_length=DETAIL_MAX)] = ""
    # JSON text: the numbers behind the item (opens, votes, days, ...), and `severity`, the one
    # figure "got worse" is judged on
    figures: Annotated[str, READ_ONLY] = "{}"
    status: QueueStatus = "open"
    assignee: Username = ""
    assigned_by: Annotated[str, READ_ONLY, Field(max_length=255)] = ""
    note: Note = ""
    created_at: Timestamp = ""
    updated_at: Timestamp = ""


@dataclass(frozen=True, kw_only=True)
class QueueChange:
    """`PUT /api/v1/admin/queue/{id}`: what a person may change; absent fields stay as they are."""

    __pydantic_config__ = CONFIG

    status: QueueStatus | None = None
    assignee: Username | None = None
    note: Note | None = None


__all__ = ["CLOSED", "KINDS", "STATUSES", "QueueChange", "QueueItem"]
