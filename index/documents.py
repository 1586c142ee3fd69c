"""Turn an aid into the Whoosh document that represents it."""

from __future__ import annotations

from typing import Any

from index.schema import EVERYONE
from server.models import Aid
from server.render import to_text

GLOBAL_APP = "_global"  # apps token for aids mapped to no app: relevant anywhere


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
