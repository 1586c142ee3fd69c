"""Turn an aid into the Whoosh document that represents it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from index.schema import EVERYONE, GLOBAL_APP
from index.text import to_text


class IndexableAid(Protocol):
    """What the index reads of an aid (server.models.Aid has these; the index never imports it)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def apps(self) -> Sequence[str]: ...
    @property
    def audience(self) -> Sequence[str]: ...


def aid_document(aid: IndexableAid) -> dict[str, Any]:
    text = to_text(aid.body)
    public = aid.status == "published" and not aid.audience
    return {
        "id": aid.id,
        "title": aid.title,
        "summary": aid.summary,
        "tags": ", ".join(aid.tags),
        "body": text,
        "words": " ".join([aid.title, aid.summary, " ".join(aid.tags)]) if public else "",
        "apps": ",".join(aid.apps) or GLOBAL_APP,
        "audience": ",".join(aid.audience) or EVERYONE,
        "status": aid.status,
        "type": aid.type,
    }
