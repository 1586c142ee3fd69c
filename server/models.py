"""The resources, each declared once: aids, apps, contexts (with their URL rules) and mentors.

Each resource is one frozen dataclass whose annotations carry its types and limits (pydantic v2
metadata in `Annotated`). From that one class come:

- validation of input (the admin API, the console, `inflow import`): `validate(Aid, data)`
  (pydantic-core, every field checked, every problem reported at once as `FieldErrors` with paths
  like `contexts[0].rule`);
- the JSON it is served as: `dump(aid)` (field order and names from the class);
- its OpenAPI schema: `server/schemas.py` asks pydantic for the JSON Schema of the same class,
  response and request forms (read-only fields marked, or dropped from requests);
- the content format: `server/content.py` validates files with `validate` and writes
  `content_fields()`.

Rows from the database are trusted and built with the plain dataclass constructor (no
validation), so suggest and the catalog stay as fast as before. See docs/resources.md (why
pydantic v2, how to add a field).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from index.transcripts import TranscriptError, parse_transcript
from server.wrapped import InvalidWrappedTarget, parse_wrapped_target

_AidType = Literal["howto", "checklist", "video", "link", "faq", "policy"]
_AidStatus = Literal["draft", "review", "published", "archived"]
AID_TYPES: tuple[str, ...] = get_args(_AidType)
AID_STATUSES: tuple[str, ...] = get_args(_AidStatus)
if TYPE_CHECKING:  # plain str for code that builds aids from rows; pydantic sees the Literal
    AidType = str
    AidStatus = str
else:
    AidType = _AidType
    AidStatus = _AidStatus
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
SLUG_RE = re.compile(SLUG_PATTERN)
DEFAULT_REVIEW_DAYS = 180
MAX_LIST = 50

# Shared by every resource: unknown fields are errors; YAML numbers are accepted as text.
CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


# -- markers and field types --------------------------------------------------------------------


class ReadOnly:
    """Marks a field the server sets (version, timestamps, vetting, ...). It is served and shown
    as `readOnly` in the OpenAPI document; a client may send it back unchanged (GET, change, PUT),
    and changing it is a 422 naming the field (`check_read_only`)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["readOnly"] = True
        return schema

    def __repr__(self) -> str:
        return "ReadOnly()"


READ_ONLY = ReadOnly()


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("inflow", message)


# Text fields: surrounding whitespace stripped (STRIP), or also not empty (REQUIRED); each field
# adds its own Field(max_length=...).
STRIP = StringConstraints(strip_whitespace=True)
REQUIRED = StringConstraints(strip_whitespace=True, min_length=1)


def _slug(value: str) -> str:
    if not SLUG_RE.match(value):
        raise _fail(f"{value!r} is not a slug (lowercase letters, digits, '-')")
    return value


Slug = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_slug),
    WithJsonSchema({"type": "string", "pattern": SLUG_PATTERN, "maxLength": 64}),
]


def _app_ref(value: str) -> str:
    if not SLUG_RE.match(value):
        raise _fail(f"{value!r} is not an app id")
    return value


AppRef = Annotated[
    str, AfterValidator(_app_ref), WithJsonSchema({"type": "string", "pattern": SLUG_PATTERN})
]


def _str_list(value: Any) -> Any:
    """None, one string or a list of strings (YAML numbers too); blanks dropped, entries trimmed."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        raise _fail("must be a list of strings")
    return tuple(str(v).strip() for v in value if str(v).strip())


# Lists of short texts: one string or a list, blanks dropped, at most MAX_LIST entries.
LIST = BeforeValidator(_str_list)
MAX_ITEMS = Field(max_length=MAX_LIST)
Tag = Annotated[str, STRIP, Field(max_length=200)]
Tags = Annotated[tuple[Tag, ...], LIST, MAX_ITEMS]
AppRefs = Annotated[tuple[AppRef, ...], LIST, MAX_ITEMS]


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _iso_date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise _fail(f"{value!r} is not a date (YYYY-MM-DD)") from None
    raise _fail("must be a date (YYYY-MM-DD)")


IsoDate = Annotated[
    str | None,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": ["string", "null"], "format": "date"}),
]
Timestamp = Annotated[str, READ_ONLY]
Flag = Annotated[bool, Strict()]


# -- aids ------------------------------------------------------------------------------------------


def _http_url(value: str) -> str:
    if value and not re.match(r"^https?://", value, re.IGNORECASE):
        raise _fail("must be an http(s) URL")
    return value


def _markdown(value: Any) -> Any:
    if not isinstance(value, str):
        raise _fail("must be Markdown text")
    return value


TRANSCRIPT_MAX = 500_000


def _transcript(value: str) -> str:
    """A WebVTT or SRT transcript, checked by the transcript parser (its message names the line)."""
    if not value:
        return value
    try:
        parse_transcript(value)
    except TranscriptError as exc:
        raise _fail(f"not a valid WebVTT or SRT transcript: {exc}") from None
    return value


def _aid_rules(data: dict[str, Any]) -> list[tuple[str, str]]:
    """A transcript belongs to a video (checked on the raw data, alongside the field checks)."""
    if data.get("transcript") and data.get("type", "howto") != "video":
        return [("transcript", "only a video aid (type: video) has a transcript")]
    return []


@dataclass(frozen=True)
class Aid:
    """A job aid: a how-to, checklist, policy, link or video, shown beside work apps."""

    __pydantic_config__ = CONFIG

    id: Slug
    title: Annotated[str, REQUIRED, Field(max_length=200)]
    summary: Annotated[str, STRIP, Field(max_length=500)] = ""
    body: Annotated[str, BeforeValidator(_markdown), Field(max_length=200_000)] = ""
    # a video's WebVTT or SRT transcript (index/transcripts.py); not loaded with the catalog
    transcript: Annotated[
        str,
        BeforeValidator(_markdown),
        Field(max_length=TRANSCRIPT_MAX),
        AfterValidator(_transcript),
    ] = ""
    type: AidType = "howto"
    tags: Tags = ()
    apps: AppRefs = ()
    audience: Tags = ()
    owner: Annotated[str, STRIP, Field(max_length=200)] = ""
    status: AidStatus = "draft"
    verified_at: IsoDate = None
    review_interval_days: Annotated[int, Strict(), Field(ge=1, le=3650)] = DEFAULT_REVIEW_DAYS
    source: Annotated[str, STRIP, Field(max_length=2000), AfterValidator(_http_url)] = ""
    # the id of the source it comes from (server/sources), "" when written in Inflow; the sync
    # sets it, and only MAPPING_FIELDS of such an aid are changed here (server/admin/aids.py)
    origin: Annotated[str, READ_ONLY, Field(max_length=64)] = ""
    version: Annotated[int, READ_ONLY] = 1
    created_at: Timestamp = ""
    updated_at: Timestamp = ""

    def content_fields(self) -> dict[str, Any]:
        """What an author controls (everything but version and timestamps)."""
        return content_fields(self)

    def is_stale(self, today: dt.date) -> bool:
        if not self.verified_at:
            return True
        verified = dt.date.fromisoformat(self.verified_at)
        return (today - verified).days > self.review_interval_days

    def visible_to(self, tags: frozenset[str] | None) -> bool:
        """tags=None means 'sees everything' (admins, and the pre-SSO seam)."""
        return tags is None or not self.audience or bool(tags.intersection(self.audience))

    def review_due(self) -> str | None:
        if not self.verified_at:
            return None
        due = dt.date.fromisoformat(self.verified_at) + dt.timedelta(days=self.review_interval_days)
        return due.isoformat()


# What learners get of an aid (GET /api/v1/aids/{id}), besides its rendered `body_html`.
LEARNER_AID_FIELDS = (
    "id",
    "title",
    "summary",
    "type",
    "tags",
    "apps",
    "source",
    "owner",
    "version",
    "updated_at",
    "verified_at",
    "review_interval_days",  # with verified_at: the panel warns when an aid is past its review
    "status",
)


def learner_aid_json(aid: Aid, body_html: str) -> dict[str, Any]:
    data = dump(aid)
    out = {k: data[k] for k in LEARNER_AID_FIELDS}
    out["source"] = out["source"] or None  # no source: null
    out["body_html"] = body_html
    return out


# Served with every admin aid, computed from its fields (read-only).
AID_COMPUTED: dict[str, dict[str, Any]] = {
    "stale": {"type": "boolean", "readOnly": True},
    "review_due": {"type": ["string", "null"], "format": "date", "readOnly": True},
}


# -- apps, contexts, rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """A URL rule (docs/url-rules.md) and its priority among rules matching the same page."""

    __pydantic_config__ = CONFIG

    pattern: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    priority: Annotated[int, Strict(), Field(ge=-1000, le=1000)] = 0


def _rule_input(value: Any) -> Any:
    if isinstance(value, str):
        return {"pattern": value}
    if isinstance(value, dict) and not value.get("pattern"):
        raise _fail("needs a 'pattern'")
    return value


# A YAML key without a value (`rules:`) is an empty list.
NONE_EMPTY = BeforeValidator(lambda v: () if v is None else v)
# In requests a rule may also be just its pattern (server/schemas.py documents both forms).
Rule = Annotated[RuleSpec, BeforeValidator(_rule_input)]


def _regex(value: str) -> str:
    if value:
        try:
            re.compile(value)
        except re.error as exc:
            raise _fail(f"not a valid regular expression: {exc}") from None
    return value


MAX_CONTEXT_RULES = 20
MAX_WRAPPED_TARGETS = 10


def _context_input(value: Any) -> Any:
    """The old single `rule` (a string or {pattern, priority}) is `rules: [that]`; a separate
    `priority` applies to rules given as just their pattern. `app` is the parent's (read-only,
    set from the app that holds the context)."""
    if not isinstance(value, dict):
        return value
    data = dict(value)
    if "app_id" in data:
        raise _fail("unknown field(s): app_id")
    data["app_id"] = data.pop("app", "")
    if "rule" in data:
        if "rules" in data:
            raise _fail("give 'rules' (a list) or 'rule' (one), not both")
        data["rules"] = [data.pop("rule")]
    if "priority" in data:
        priority = data.pop("priority")
        rules = data.get("rules")
        if isinstance(rules, str):
            rules = [rules]
        if isinstance(rules, list | tuple):
            data["rules"] = [
                {"pattern": r, "priority": priority}
                if isinstance(r, str)
                else {**r, "priority": r.get("priority", priority)}
                if isinstance(r, dict)
                else r
                for r in rules
            ]
    elif isinstance(data.get("rules"), str):
        data["rules"] = [data["rules"]]
    return data


@dataclass(frozen=True)
class Context:
    """A page (or part) of an app: its URL rules (any may match), and the aids pinned to it, in
    order. A `fallback` context counts only when no other context of its app matched the page; an
    `exclusive` one, when it matches, drops the contexts ranked after it."""

    __pydantic_config__ = CONFIG

    id: Slug
    app_id: Annotated[str, READ_ONLY, Field(serialization_alias="app")]
    name: Annotated[str, REQUIRED, Field(max_length=200)]
    rules: Annotated[tuple[Rule, ...], Field(min_length=1, max_length=MAX_CONTEXT_RULES)]
    fallback: Flag = False
    exclusive: Flag = False
    title_pattern: Annotated[str, STRIP, Field(max_length=300), AfterValidator(_regex)] = ""
    selector: Annotated[str, STRIP, Field(max_length=300)] = ""
    aids: Annotated[
        tuple[Annotated[str, STRIP, Field(max_length=64)], ...], LIST, Field(max_length=100)
    ] = ()


ContextInput = Annotated[Context, BeforeValidator(_context_input)]


def _wrapped_target(value: str) -> str:
    try:
        parse_wrapped_target(value)
    except InvalidWrappedTarget as exc:
        raise _fail(str(exc)) from None
    return value


MAX_APP_OWNERS = 10


def _owner_email(value: str) -> str:
    # EMAIL_RE is declared with the mentors, below; it is only read when an app is validated
    if not EMAIL_RE.match(value):
        raise _fail(f"{value!r} is not an e-mail address")
    return value


def _unique_ci(values: tuple[str, ...]) -> tuple[str, ...]:
    """Each address once, the first spelling kept (addresses compare case-insensitively)."""
    seen: set[str] = set()
    out = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            out.append(value)
    return tuple(out)


@dataclass(frozen=True)
class App:
    """A work app: the URL rules that recognize it, and its contexts (pages). `wrapped_targets`
    are paths where the app shows another of its pages inside a frame (ServiceNow's
    `/nav_to.do?uri={target}`): there the contexts are matched against that inner page."""

    __pydantic_config__ = CONFIG

    id: Slug
    name: Annotated[str, REQUIRED, Field(max_length=200)]
    description: Annotated[str, STRIP, Field(max_length=2000)] = ""
    rules: Annotated[tuple[Rule, ...], NONE_EMPTY, Field(max_length=100)] = ()
    wrapped_targets: Annotated[
        tuple[Annotated[str, STRIP, Field(max_length=300), AfterValidator(_wrapped_target)], ...],
        LIST,
        Field(max_length=MAX_WRAPPED_TARGETS),
    ] = ()
    contexts: Annotated[tuple[ContextInput, ...], NONE_EMPTY, Field(max_length=500)] = field(
        default_factory=tuple
    )
    # e-mail addresses of the people who own the app: they moderate its tips and answer its
    # questions (peer learning, server/peer/people.py owns_app), whatever their other roles
    owners: Annotated[
        tuple[Annotated[str, STRIP, Field(max_length=320), AfterValidator(_owner_email)], ...],
        LIST,
        Field(max_length=MAX_APP_OWNERS),
        AfterValidator(_unique_ci),
    ] = ()


def _bind_contexts(app: App) -> App:
    """Contexts belong to the app that holds them."""
    contexts = tuple(dataclasses.replace(c, app_id=app.id) for c in app.contexts)
    return dataclasses.replace(app, contexts=contexts)


# -- mentors ---------------------------------------------------------------------------------------

# A contact is an email address or a chat handle (`@maria.lopez`): nothing a client could mistake
# for a link to somewhere else (no URLs, no `javascript:`), so the sidebar can show it as text.
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}$"
)
HANDLE_RE = re.compile(r"^@[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$")
SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@|-]{0,254}$")
RESERVED_IDS = frozenset({"new"})  # /admin/mentors/new is the console's editor


def _mentor_id(value: str) -> str:
    if value in RESERVED_IDS:
        raise _fail(f"{value!r} is reserved")
    return value


def _contact(value: str) -> str:
    if value and not (EMAIL_RE.match(value) or HANDLE_RE.match(value)):
        raise _fail(f"{value!r} is neither an email address nor a chat handle (@name)")
    return value


def _one_line(value: str) -> str:
    if "\n" in value:
        raise _fail("must be one line")
    return value


def _matches(regex: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value and not regex.match(value):
            raise _fail(f"{value!r} is not {what}")
        return value

    return check


def _topics(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.lower() for v in values))


@dataclass(frozen=True)
class Mentor:
    """A vetted peer mentor learners may contact. Shown in suggest only when vetted and active,
    mapped to the page's app and visible to the caller (`audience`, like aids)."""

    __pydantic_config__ = CONFIG

    id: Annotated[Slug, AfterValidator(_mentor_id)]
    name: Annotated[str, REQUIRED, Field(max_length=120)]
    contact: Annotated[str, REQUIRED, Field(max_length=200), AfterValidator(_contact)]
    can_help_with: Annotated[str, STRIP, Field(max_length=200), AfterValidator(_one_line)] = ""
    apps: Annotated[AppRefs, AfterValidator(_unique)] = ()
    topics: Annotated[
        tuple[Annotated[str, STRIP, Field(max_length=60)], ...],
        LIST,
        MAX_ITEMS,
        AfterValidator(_topics),
    ] = ()
    # optional Keycloak link: the account's username (for people to read) and subject (its id)
    username: Annotated[
        str,
        STRIP,
        Field(max_length=255),
        AfterValidator(_matches(USERNAME_RE, "a Keycloak username")),
    ] = ""
    subject: Annotated[
        str,
        STRIP,
        Field(max_length=255),
        AfterValidator(_matches(SUBJECT_RE, "a Keycloak subject (the user's id)")),
    ] = ""
    vetted: Flag = False
    vetted_by: Annotated[str, STRIP, Field(max_length=255), READ_ONLY] = ""
    vetted_at: Annotated[IsoDate, READ_ONLY] = None
    active: Flag = True
    audience: Tags = ()
    created_at: Timestamp = ""
    updated_at: Timestamp = ""

    def content_fields(self) -> dict[str, Any]:
        """Everything but timestamps: what a mentor file holds."""
        return content_fields(self)

    def visible_to(self, tags: frozenset[str] | None) -> bool:
        return tags is None or not self.audience or bool(tags.intersection(self.audience))

    @property
    def listed(self) -> bool:
        """May learners see this mentor at all (before app and audience)?"""
        return self.vetted and self.active


def _mentor_rules(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Vetting fields go together (checked on the raw data, alongside the field checks)."""
    vetted = data.get("vetted") is True
    if vetted and not data.get("vetted_by"):
        return [("vetted", "a vetted mentor needs 'vetted_by': who vetted them")]
    if not vetted:
        for which in ("vetted_by", "vetted_at"):
            if data.get(which) not in (None, ""):
                return [(which, "only a vetted mentor (vetted: true) has it")]
    return []


# -- bodies of admin operations that are not a resource -------------------------------------------


@dataclass(frozen=True)
class Transition:
    """A workflow step of an aid."""

    __pydantic_config__ = CONFIG

    to: AidStatus
    comment: Annotated[str, Field(max_length=2000)] = ""


@dataclass(frozen=True)
class Rollback:
    """Save an old version's content as a new version."""

    __pydantic_config__ = CONFIG

    version: Annotated[int, Strict(), Field(ge=1, le=10**9)]


@dataclass(frozen=True)
class Pins:
    """The ordered aids pinned to a context."""

    __pydantic_config__ = CONFIG

    aids: Annotated[tuple[Annotated[str, Field(max_length=64)], ...], Field(max_length=100)]


@dataclass(frozen=True)
class Mapping:
    """Where an aid shows: its apps and the contexts it is pinned in."""

    __pydantic_config__ = CONFIG

    apps: Annotated[tuple[Annotated[str, Field(max_length=64)], ...], Field(max_length=50)]
    contexts: Annotated[tuple[Annotated[str, Field(max_length=64)], ...], Field(max_length=200)]


@dataclass(frozen=True)
class Preview:
    """Markdown to render as the sidebar would."""

    __pydantic_config__ = CONFIG

    markdown: Annotated[str, Field(max_length=200_000)]


OPERATION_BODIES: tuple[type, ...] = (Transition, Rollback, Pins, Mapping, Preview)


# -- learner API: the page signals in, the aids and mentors out --------------------------------


@dataclass(frozen=True)
class PageRequest:
    """POST /api/v1/suggest: what the extension reads from the page (the handler also checks the
    URL's scheme and bytes and `limit` against the settings)."""

    __pydantic_config__ = CONFIG

    url: Annotated[
        str,
        Field(
            min_length=1,
            description="Absolute http(s) URL of the page",
            # the handler checks the scheme and the size in bytes (INFLOW_MAX_URL_BYTES); the
            # pattern is a hint for generated tests
            json_schema_extra={
                "maxLength": 8192,
                "pattern": "^https?://[a-z0-9.-]+(:[0-9]{2,5})?/",
            },
        ),
    ]
    title: Annotated[str, Field(max_length=500)] = ""
    selection: Annotated[str, Field(max_length=2000)] = ""
    headings: Annotated[
        tuple[Annotated[str, Field(max_length=300)], ...], Field(max_length=50)
    ] = ()
    selectors: Annotated[
        tuple[Annotated[str, Field(max_length=300)], ...] | None,
        Field(
            max_length=100,
            description="CSS selectors of contexts present on the page; omit to ignore selectors",
        ),
    ] = None
    limit: Annotated[int | None, Field(ge=1, le=50)] = None


@dataclass(frozen=True)
class PinnedBy:
    """Where an aid is pinned: "Pinned by <owner> for <context>"."""

    context: Annotated[str, Field(description="The matched context's name (plain text)")]
    owner: Annotated[str, Field(description="The aid's owner, a team or person; may be empty")]


@dataclass(frozen=True)
class SuggestReason:
    """Why an aid is suggested, as data the panel words ("Mentions discount and quote")."""

    kind: Literal["pinned", "related"]
    terms: Annotated[
        tuple[str, ...],
        Field(description="The page's own words the aid matched (not stems), most telling first"),
    ]
    pinned_by: PinnedBy | None
    signals: Annotated[
        tuple[dict[str, Any], ...],
        Field(
            description="Extra ranking signals that moved a related aid, each with a `kind` "
            "(e.g. helpful) and its figures (e.g. `count`, distinct people)"
        ),
    ]


@dataclass(frozen=True)
class VideoCue:
    """Where in a video the words searched for are said: the best matching cue of its transcript
    (docs/transcripts.md). Only on a video hit whose transcript matched."""

    start: Annotated[float, Field(description="Seconds from the start of the video")]
    end: Annotated[float, Field(description="Seconds from the start of the video")]
    text: Annotated[str, Field(description="What is said, plain text (tags stripped)")]
    source: Annotated[
        str, Field(description="The video's URL (the aid's source; may be empty): open it at start")
    ]


@dataclass(frozen=True)
class SuggestedAid:
    """One aid in a suggest answer."""

    id: str
    title: str
    summary: str
    type: AidType
    score: float | None
    reason: Annotated[str, Field(description="A default wording of `why`, in English")]
    reason_code: Literal["pinned", "related"]
    why: SuggestReason
    cue: VideoCue | None = None


@dataclass(frozen=True)
class NoMatch:
    """Said when no related aid fits the page (an empty list rather than filler)."""

    code: Literal["no_related"]
    reason: str


@dataclass(frozen=True)
class SuggestedMentor:
    """A vetted, active peer mentor of the page's app whom the caller may see."""

    __pydantic_config__ = CONFIG

    id: str
    name: Annotated[str, Field(description="Display name (plain text)")]
    contact: Annotated[
        str, Field(description="An email address, or a chat handle starting with '@' (plain text)")
    ]
    can_help_with: Annotated[str, Field(description="One line; may be empty")]
    reason: Annotated[str, Field(description="Why this mentor is shown")]


@dataclass(frozen=True)
class SearchResult:
    """One hit of GET /api/v1/search."""

    id: str
    title: str
    summary: str
    type: AidType
    score: float
    snippet_html: Annotated[
        str, Field(description="Escaped text around the matched words, each in <b class=match>")
    ]
    cue: VideoCue | None = None


LEARNER_BODIES: tuple[type, ...] = (
    PageRequest,
    SuggestedAid,
    SuggestedMentor,
    SearchResult,
    NoMatch,
)


# -- reading the declarations ----------------------------------------------------------------------

R = TypeVar("R")

# Fields the server keeps for itself and the content format does not hold.
_SERVER_FIELDS = frozenset({"version", "created_at", "updated_at"})
# Checks across fields, on the raw data, reported with the field checks.
_CROSS: dict[type, Callable[[dict[str, Any]], list[tuple[str, str]]]] = {
    Mentor: _mentor_rules,
    Aid: _aid_rules,
}


def register_cross_check(
    cls: type, check: Callable[[dict[str, Any]], list[tuple[str, str]]]
) -> None:
    """Checks across fields of another module's resource (a source's kind-only fields): `check`
    gets the raw data and returns (field, message) pairs, reported with the field checks."""
    _CROSS[cls] = check


# What follows from a valid object (a context's app is the app that holds it).
_AFTER: dict[type, Callable[[Any], Any]] = {App: _bind_contexts}


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def adapter(cls: type[R]) -> TypeAdapter[R]:
    """The pydantic validator and serializer of a declared resource (built once per class)."""
    found = _ADAPTERS.get(cls)
    if found is None:
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


def required_fields(cls: type) -> frozenset[str]:
    """Fields without a default: a body must name them."""
    missing = dataclasses.MISSING
    return frozenset(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is missing and f.default_factory is missing
    )


def read_only_fields(cls: type) -> frozenset[str]:
    """Fields marked ReadOnly in the declaration."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = set()
    for name, hint in hints.items():
        if _has_marker(hint):
            out.add(name)
    return frozenset(out)


def _has_marker(hint: Any) -> bool:
    if typing.get_origin(hint) is Annotated:
        args = get_args(hint)
        return any(isinstance(a, ReadOnly) for a in args[1:]) or _has_marker(args[0])
    return False


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_CONTENT: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def content_fields(obj: Any) -> dict[str, Any]:
    """A resource's fields as plain data (lists for tuples), without the server's bookkeeping."""
    cls = type(obj)
    found = _CONTENT.get(cls)
    if found is None:  # once per class: the names, and one C-level getter for all of them
        names = tuple(n for n in field_names(cls) if n not in _SERVER_FIELDS)
        found = _CONTENT[cls] = (names, operator.attrgetter(*names))
    names, getter = found
    return {n: list(v) if type(v) is tuple else v for n, v in zip(names, getter(obj), strict=True)}


def dump(obj: Any) -> dict[str, Any]:
    """The JSON form of a resource, as served (aliases such as a context's `app` applied)."""
    data: dict[str, Any] = adapter(type(obj)).dump_python(obj, mode="json", by_alias=True)
    return data


class FieldErrors(Exception):
    """Validation problems as (field, message) pairs; the caller adds file/line context."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


def validate(cls: type[R], data: Any) -> R:
    """Check `data` against the declaration of `cls`: every field, every problem at once.

    Raises FieldErrors with paths like `contexts[0].rule` and messages people can act on.
    """
    if not isinstance(data, dict):
        raise FieldErrors([("", "expected a mapping of fields")])
    cross = _CROSS.get(cls)
    errors = cross(data) if cross is not None else []
    try:
        obj: R = adapter(cls).validate_python(data)
    except ValidationError as exc:
        found = [_error(e) for e in exc.errors(include_url=False)]
        # a list whose item failed is not also "too short"
        found = [
            (f, m)
            for f, m in found
            if not (m.startswith("at least") and any(o.startswith(f + "[") for o, _ in found))
        ]
        if cls is App:
            found = _as_written(data, found)
        errors = found + errors
    if errors:
        raise FieldErrors(errors)
    after = _AFTER.get(cls)
    return after(obj) if after is not None else obj


_CONTEXT_RULE_RE = re.compile(r"^contexts\[(\d+)\]\.rules(?:\[0\])?")


def _as_written(data: dict[str, Any], errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Errors about a context given with the one-rule shorthand name `rule`, as it was written."""
    contexts = data.get("contexts")
    out = []
    for where, message in errors:
        m = _CONTEXT_RULE_RE.match(where)
        if m and isinstance(contexts, list) and int(m.group(1)) < len(contexts):
            ctx = contexts[int(m.group(1))]
            if isinstance(ctx, dict) and "rule" in ctx and "rules" not in ctx:
                where = f"contexts[{m.group(1)}].rule" + where[m.end() :]
        out.append((where, message))
    return out


def path_of(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _error(e: Any) -> tuple[str, str]:
    loc = tuple(p for p in e["loc"] if p not in {"function-after[_rule_input(), RuleSpec]"})
    # Tagged unions and wrapped validators add their own names to the location; keep fields only.
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or "(" in p)))
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    message: str
    if kind == "missing":
        message = "is required"
    elif kind in {"extra_forbidden", "unexpected_keyword_argument"}:
        message = f"unknown field(s): {loc[-1] if loc else value}"
    elif kind == "string_too_short" and ctx.get("min_length") == 1:
        message = "must not be empty"
    elif kind == "string_too_long":
        message = f"at most {ctx['max_length']} characters"
    elif kind == "too_long":
        message = f"at most {ctx['max_length']} entries"
    elif kind == "too_short":
        n = ctx["min_length"]
        message = f"at least {n} {'entry' if n == 1 else 'entries'}"
    elif kind in {"string_type"}:
        message = "must be a string"
    elif kind == "string_unicode":
        message = "must be valid Unicode text (no lone surrogates)"
    elif kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        message = f"{value!r} is not one of {expected}"
    elif kind in {"bool_type", "bool_parsing"}:
        message = "must be true or false"
    elif kind in {"int_type", "int_parsing", "int_from_float"}:
        message = "must be a whole number"
    elif kind in {"greater_than_equal", "less_than_equal"}:
        message = f"must be a whole number from {_bounds(loc)}"
    elif kind in {"dataclass_type", "dict_type", "model_type", "dataclass_args_type"}:
        message = "must be a mapping of fields"
    elif kind in {"tuple_type", "list_type"}:
        message = "must be a list"
    else:
        message = str(e["msg"])
    return path_of(loc), message


def _bounds(loc: tuple[int | str, ...]) -> str:
    name = loc[-1] if loc else ""
    return {
        "review_interval_days": "1 to 3650 (days)",
        "priority": "-1000 to 1000",
        "limit": "1 to 50",
        "interval_minutes": "15 to 10080 (minutes)",
        "page_cap": "1 to 5000 (pages)",
    }.get(str(name), "the allowed range")


# -- the content format's entry points (kept names) ------------------------------------------------

AID_FIELDS = frozenset(field_names(Aid)) - _SERVER_FIELDS
APP_FIELDS = frozenset(field_names(App))
# what a context may hold in the content format: its declared fields (but its app, which is the
# file's) and the single-rule shorthand
CONTEXT_FIELDS = (frozenset(field_names(Context)) - {"app_id"}) | {"rule", "priority"}
MENTOR_FIELDS = frozenset(field_names(Mentor)) - _SERVER_FIELDS


def aid_from_mapping(
    data: dict[str, Any], *, version: int = 1, created_at: str = "", updated_at: str = ""
) -> Aid:
    """Validate an aid's fields (the content format: no server fields); raises FieldErrors."""
    _refuse_server_fields(data)
    aid = validate(Aid, data)
    return dataclasses.replace(aid, version=version, created_at=created_at, updated_at=updated_at)


def app_from_mapping(data: dict[str, Any]) -> App:
    return validate(App, data)


def mentor_from_mapping(
    data: dict[str, Any], *, created_at: str = "", updated_at: str = ""
) -> Mentor:
    """Validate a mentor's fields; raises FieldErrors listing every problem at once."""
    _refuse_server_fields(data)
    mentor = validate(Mentor, data)
    return dataclasses.replace(mentor, created_at=created_at, updated_at=updated_at)


def _refuse_server_fields(data: dict[str, Any]) -> None:
    extra = sorted(_SERVER_FIELDS & set(data))
    if extra:
        raise FieldErrors([(name, f"unknown field(s): {name}") for name in extra])


__all__ = [
    "AID_STATUSES",
    "AID_TYPES",
    "SLUG_RE",
    "Aid",
    "App",
    "Context",
    "FieldErrors",
    "Mentor",
    "ReadOnly",
    "RuleSpec",
    "adapter",
    "dump",
    "read_only_fields",
    "validate",
]
