"""Analytics events: what the extension may report, and the validation of a whole batch.

A batch is refused whole when any event in it is bad (nothing from it is stored); the problem
body names each bad event by index and id and says what is wrong, so the client can drop exactly
that event and resend the rest. Events carry no URLs: only app and context ids from the catalog
(unmapped pages have no app, so no event about them can exist) and, for followed links, a host.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from server.errors import InvalidEvents

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
HOST_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$"
)
MAX_QUERY_CHARS = 256
MAX_COMMENT_CHARS = 1000
MAX_SHOWN = 50
MAX_RESULT_COUNT = 1_000_000
MAX_ERRORS_REPORTED = 20


@dataclass(frozen=True)
class Event:
    """One validated event. `at` is UTC; `day` its UTC date (the rollups' unit)."""

    id: str
    type: str
    at: dt.datetime
    app: str = ""
    context: str = ""
    aid: str = ""
    aids: tuple[str, ...] = ()
    query: str = ""  # normalized (see normalize_query)
    result_count: int | None = None
    helpful: bool | None = None
    comment: str = ""
    url_host: str = ""

    @property
    def day(self) -> str:
        return self.at.date().isoformat()

    @property
    def at_iso(self) -> str:
        return self.at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the wire form, declared once (validation and the OpenAPI schema) ---------------------------
# Each event type is one pydantic model: its fields, types and limits. What depends on the
# catalog or the clock (is the app known, does the context belong to it, is `at` recent) is
# checked by parse_event after the declaration.


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PydanticCustomError(
            "inflow", "'id' must be a UUID made by the client (crypto.randomUUID())"
        ) from None


def _host(value: str) -> str:
    if not HOST_RE.match(value.lower()):
        raise PydanticCustomError(
            "inflow", "'url_host' must be a host name only (no scheme, path or query)"
        )
    return value.lower()


EventId = Annotated[
    str, Field(max_length=36, json_schema_extra={"format": "uuid"}), AfterValidator(_uuid)
]
Slug = Annotated[str, Field(pattern=SLUG_RE.pattern, max_length=64)]
OptionalSlug = Annotated[str, Field(pattern=r"^$|" + SLUG_RE.pattern, max_length=64)]
Timestamp = Annotated[
    str,
    Field(
        max_length=40,
        description="ISO 8601 with a time zone, at most 7 days old",
        json_schema_extra={"format": "date-time"},
    ),
]


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: EventId = Field(description="Made by the client, once")
    at: Timestamp
    app: OptionalSlug = Field("", description="An app id of the catalog")
    context: OptionalSlug = Field("", description="A context id of that app")


class PanelOpened(_EventBase):
    type: Literal["panel_opened"]
    app: Slug = Field(description="An app id of the catalog")


class SuggestionsShown(_EventBase):
    type: Literal["suggestions_shown"]
    app: Slug = Field(description="An app id of the catalog")
    aids: Annotated[list[Slug], Field(max_length=MAX_SHOWN)]


class AidOpened(_EventBase):
    type: Literal["aid_opened"]
    aid: Slug


class AidRated(_EventBase):
    type: Literal["aid_rated"]
    aid: Slug
    helpful: bool
    comment: Annotated[str, Field(max_length=MAX_COMMENT_CHARS)] = ""


class Search(_EventBase):
    type: Literal["search"]
    query: Annotated[str, Field(max_length=MAX_QUERY_CHARS)]
    result_count: Annotated[int, Field(ge=0, le=MAX_RESULT_COUNT)]


class LinkFollowed(_EventBase):
    type: Literal["link_followed"]
    url_host: Annotated[str, Field(max_length=259), AfterValidator(_host)] = Field(
        description="Host only; never a full URL"
    )
    aid: OptionalSlug = ""


class SignedIn(_EventBase):
    type: Literal["signed_in"]


EventIn = Annotated[
    PanelOpened | SuggestionsShown | AidOpened | AidRated | Search | LinkFollowed | SignedIn,
    Field(discriminator="type"),
]
EVENT_MODELS: tuple[type[_EventBase], ...] = get_args(get_args(EventIn)[0])
EVENT_TYPES: tuple[str, ...] = tuple(
    get_args(m.model_fields["type"].annotation)[0] for m in EVENT_MODELS
)
EVENT_IN: TypeAdapter[Any] = TypeAdapter(EventIn)


def event_schema(ref_template: str) -> dict[str, Any]:
    """The OpenAPI schema of one event (a oneOf by `type`), with its definitions."""
    schema: dict[str, Any] = EVENT_IN.json_schema(ref_template=ref_template)
    return schema


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False)[0]
    loc = [p for p in err["loc"] if isinstance(p, str) and p not in EVENT_TYPES]
    name = loc[0] if loc else "type"
    kind = err["type"]
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        return "type", f"'type' must be one of {', '.join(EVENT_TYPES)}"
    if kind == "extra_forbidden":
        return name, f"unknown field {name!r} for this event type"
    if kind == "missing":
        return name, f"missing field {name!r} for this event type"
    if kind == "inflow":
        return name, str(err["msg"])
    return name, f"{name!r}: {err['msg']}"


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalize_query(text: str) -> str:
    """Group searches that differ only in case, width, punctuation at the ends and spacing."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split()).strip(" .,;:!?\"'")


def _slug(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not SLUG_RE.match(value):
        raise _Bad(name, f"'{name}' must be an id ([a-z0-9-], at most 64 characters)")
    return value


def _timestamp(
    value: Any, now: dt.datetime, max_age: dt.timedelta, skew: dt.timedelta
) -> dt.datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise _Bad("at", "'at' must be an ISO-8601 timestamp string with a time zone")
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Bad("at", f"'at' is not an ISO-8601 timestamp: {value!r}") from None
    if at.tzinfo is None:
        raise _Bad("at", "'at' needs a time zone (e.g. 2026-01-31T09:30:00.000Z)")
    at = at.astimezone(dt.UTC)
    if at < now - max_age:
        raise _Bad("at", f"'at' is older than {max_age.days} days; the event is too old to record")
    if at > now + skew:
        raise _Bad("at", "'at' is in the future (check the device clock)")
    return at


def parse_event(
    data: Any,
    *,
    now: dt.datetime,
    known_app: Callable[[str], bool],
    context_app: Callable[[str], str | None],
    max_age: dt.timedelta,
    skew: dt.timedelta,
) -> Event:
    """One event from its JSON form; raises _Bad naming the field at fault."""
    if not isinstance(data, dict):
        raise _Bad("", "an event must be a JSON object")
    try:
        declared = EVENT_IN.validate_python(data)  # the declaration: fields, types, limits
    except ValidationError as exc:
        raise _Bad(*_first_problem(exc)) from None
    event_id, etype = declared.id, declared.type
    at = _timestamp(data["at"], now, max_age, skew)
    app = _slug(data, "app")
    if app and not known_app(app):
        raise _Bad("app", f"'app' {app!r} is not an app of the catalog")
    context = _slug(data, "context")
    if context:
        owner = context_app(context)
        if owner is None:
            raise _Bad("context", f"'context' {context!r} is not a context of the catalog")
        if not app:
            raise _Bad("app", "an event with a 'context' must name its 'app'")
        if owner != app:
            raise _Bad("context", f"'context' {context!r} belongs to app {owner!r}, not {app!r}")
    aid = _slug(data, "aid")
    aids: tuple[str, ...] = ()
    if "aids" in data:
        value = data["aids"]
        if not isinstance(value, list) or len(value) > MAX_SHOWN:
            raise _Bad("aids", f"'aids' must be a list of at most {MAX_SHOWN} aid ids")
        for v in value:
            if not isinstance(v, str) or not SLUG_RE.match(v):
                raise _Bad("aids", "'aids' must hold aid ids")
        aids = tuple(dict.fromkeys(value))
    query = ""
    result_count: int | None = None
    if etype == "search":
        q = data["query"]
        if not isinstance(q, str) or len(q) > MAX_QUERY_CHARS:
            raise _Bad("query", f"'query' must be a string of at most {MAX_QUERY_CHARS} characters")
        query = normalize_query(q)
        if not query:
            raise _Bad("query", "'query' is empty")
        rc = data["result_count"]
        if not isinstance(rc, int) or isinstance(rc, bool) or not 0 <= rc <= MAX_RESULT_COUNT:
            raise _Bad("result_count", "'result_count' must be a whole number >= 0")
        result_count = rc
    helpful: bool | None = None
    comment = ""
    if etype == "aid_rated":
        if not isinstance(data["helpful"], bool):
            raise _Bad("helpful", "'helpful' must be true or false")
        helpful = data["helpful"]
        c = data.get("comment")
        if c is not None:
            if not isinstance(c, str) or len(c) > MAX_COMMENT_CHARS:
                raise _Bad(
                    "comment",
                    f"'comment' must be a string of at most {MAX_COMMENT_CHARS} characters",
                )
            comment = c.strip()
    url_host = ""
    if etype == "link_followed":
        h = data["url_host"]
        if not isinstance(h, str) or not HOST_RE.match(h.lower()):
            raise _Bad("url_host", "'url_host' must be a host name only (no scheme, path or query)")
        url_host = h.lower()
    return Event(
        id=event_id,
        type=etype,
        at=at,
        app=app,
        context=context,
        aid=aid,
        aids=aids,
        query=query,
        result_count=result_count,
        helpful=helpful,
        comment=comment,
        url_host=url_host,
    )


def parse_batch(
    body: Any,
    *,
    now: dt.datetime,
    apps: Collection[str],
    contexts: dict[str, str],
    max_events: int,
    max_age_days: int,
    max_future_seconds: int,
) -> list[Event]:
    """Every event of `{events: [...]}`, or InvalidEvents naming each bad one (nothing partial).

    `contexts` maps context id -> app id. Duplicate ids inside one batch are kept (the store
    counts the repeats as duplicates), so a client that enqueued twice is not refused.
    """
    if not isinstance(body, dict):
        raise InvalidEvents('The body must be a JSON object {"events": [...]}.', errors=[])
    unknown = sorted(set(body) - {"events"})
    if unknown:
        raise InvalidEvents(f"Unknown field(s): {', '.join(unknown)}. Allowed: events.", errors=[])
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise InvalidEvents("'events' must be a non-empty list of events.", errors=[])
    if len(events) > max_events:
        raise InvalidEvents(
            f"{len(events)} events in one batch; the limit is {max_events}. Send smaller batches.",
            errors=[],
        )
    max_age = dt.timedelta(days=max_age_days)
    skew = dt.timedelta(seconds=max_future_seconds)
    parsed: list[Event] = []
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(events):
        try:
            parsed.append(
                parse_event(
                    item,
                    now=now,
                    known_app=apps.__contains__,
                    context_app=contexts.get,
                    max_age=max_age,
                    skew=skew,
                )
            )
        except _Bad as bad:
            raw_id = item.get("id") if isinstance(item, dict) else None
            errors.append(
                {
                    "index": i,
                    "id": raw_id if isinstance(raw_id, str) else None,
                    "field": bad.field,
                    "message": bad.message,
                }
            )
    if errors:
        first = errors[0]
        raise InvalidEvents(
            f"{len(errors)} of {len(events)} event(s) refused, nothing stored; first: event "
            f"{first['index']} (id {first['id']}): {first['message']}",
            event_index=first["index"],
            event_id=first["id"],
            errors=errors[:MAX_ERRORS_REPORTED],
        )
    return parsed
