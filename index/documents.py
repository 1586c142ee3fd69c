"""Turn an aid into the Whoosh document that represents it."""

from __future__ import annotations

from typing import Any

from index.schema import EVERYONE, GLOBAL_APP
from server.models import Aid
from server.render import to_text


def aid_document(aid: Aid) -> dict[str, Any]:
    text = to_text(aid.body)
    public = aid.status == "published" and not aid.audience
    return {
        "id": aid.id,
        "title": aid.title,
        "summary": aid.summary,
        "tags": ",".join(t.lower() for t in aid.tags),
        "body": text,
        "words": " ".join([aid.title, aid.summary, " ".join(aid.tags)]) if public else "",
        "apps": ",".join(aid.apps) or GLOBAL_APP,
        "audience": ",".join(aid.audience) or EVERYONE,
        "status": aid.status,
        "type": aid.type,
    }
