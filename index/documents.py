"""Turn an aid into the Whoosh document that represents it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from index.schema import EVERYONE, GLOBAL_APP
from index.text import to_text
from index.transcripts import TranscriptError, cues_text, dump_cues, parse_transcript


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
    @property
    def transcript(self) -> str: ...


def aid_document(aid: IndexableAid) -> dict[str, Any]:
    text = to_text(aid.body)
    public = aid.status == "published" and not aid.audience
    video = _transcript_fields(aid) if aid.type == "video" and aid.transcript else {}
    return {
        **video,
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


def _transcript_fields(aid: IndexableAid) -> dict[str, str]:
    """The searchable words and the stored cues of a video's transcript. The model validates a
    transcript when it is saved; one that no longer parses (a stricter parser, an old row) is
    left out of the index rather than failing the whole build."""
    try:
        cues = parse_transcript(aid.transcript)
    except TranscriptError:
        return {}
    return {"transcript": cues_text(cues), "cues": dump_cues(cues)}
