"""Link health's resource, declared once (the same style as server/peer/models.py).

A `LinkCheck` is what the last link check found for one link of one published aid: a link in its
Markdown body, or its `source` URL (the aid's primary link, `primary`). Everything is set by the
checker (server/health/links.py), so every field is read-only; the table is derived from the class
(server/db/health_tables.py, migration 0006) and registered with the generic store
(server/peer/store.py), so `PeerStore` reads and writes it.

`failing_since` is when the link first failed (broken, refused, error) in the current run of
failures: kept from run to run while it fails, cleared when it works again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import Field

from server.models import CONFIG, READ_ONLY, Timestamp

_LinkStatus = Literal["ok", "redirected", "broken", "refused", "error"]
LINK_STATUSES: tuple[str, ...] = get_args(_LinkStatus)
# what an owner has to fix (a redirect still works: it is reported, not failing)
FAILING: frozenset[str] = frozenset({"broken", "refused", "error"})
if TYPE_CHECKING:  # plain str for code that builds objects from rows; pydantic sees the Literal
    LinkStatus = str
else:
    LinkStatus = _LinkStatus

URL_MAX = 2000  # an aid's `source` is at most 2000 characters; body links are cut to the same
DETAIL_MAX = 500

_Text = Annotated[str, READ_ONLY]


@dataclass(frozen=True, kw_only=True)
class LinkCheck:
    """The last check of one link of one published aid."""

    __pydantic_config__ = CONFIG

    id: Annotated[str, READ_ONLY, Field(max_length=64)] = ""
    aid_id: Annotated[str, READ_ONLY, Field(max_length=64)]
    url: Annotated[str, READ_ONLY, Field(max_length=URL_MAX)]
    primary: Annotated[
        bool, READ_ONLY, Field(description="The aid's `source` URL (its primary link)")
    ] = False
    status: Annotated[LinkStatus, READ_ONLY] = "ok"
    http_status: Annotated[
        int, READ_ONLY, Field(description="The last answer's HTTP status; 0: no answer")
    ] = 0
    final_url: Annotated[
        str, READ_ONLY, Field(max_length=URL_MAX, description="Where redirects ended")
    ] = ""
    detail: Annotated[
        str,
        READ_ONLY,
        Field(max_length=DETAIL_MAX, description="Why it failed or was refused, in words"),
    ] = ""
    checked_at: Timestamp = ""
    failing_since: Annotated[
        _Text, Field(description="When it started failing (kept across runs); '' when it works")
    ] = ""


__all__ = ["DETAIL_MAX", "FAILING", "LINK_STATUSES", "URL_MAX", "LinkCheck", "LinkStatus"]
