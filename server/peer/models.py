"""Peer learning's resources, each declared once (docs/resources.md, spec of issue 12).

Tips, their reports, questions and answers, mentor pairings and the rules that make them, mentor
recommendations and flags on aids, and the e-mail outbox. The same style as server/models.py:
frozen dataclasses whose annotations carry types and limits; `validate(cls, data)` checks input
and raises `FieldErrors` with paths; `dump(obj)` is the JSON served; the tables are derived from
the classes (server/db/peer_tables.py); rows read back are trusted (no validation).

Ids are made by the server (`new_id()`), so they are read-only, as is everything the server sets
(who wrote it, its state, its timestamps). Dataclasses are keyword-only: the fields read in the
order people think of them, whichever have defaults.

Text a person writes (bodies, reasons, notes) is cleaned on the way in: control characters other
than newline and tab are dropped, line ends become `\\n`, surrounding whitespace is stripped; the
length limit applies to the cleaned text.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from server.models import (
    CONFIG,
    READ_ONLY,
    SLUG_PATTERN,
    SLUG_RE,
    STRIP,
    USERNAME_RE,
    AppRef,
    Flag,
    IsoDate,
    Slug,
    Tags,
    Timestamp,
    _matches,
    _unique,
)

# -- states ----------------------------------------------------------------------------------------

_TipStatus = Literal["pending", "approved", "rejected", "hidden"]
_QuestionStatus = Literal["open", "answered", "closed", "hidden"]
_FlagKind = Literal["wrong", "outdated"]
_FlagStatus = Literal["open", "resolved"]
_NotificationStatus = Literal["queued", "sent", "failed"]
TIP_STATUSES: tuple[str, ...] = get_args(_TipStatus)
QUESTION_STATUSES: tuple[str, ...] = get_args(_QuestionStatus)
FLAG_KINDS: tuple[str, ...] = get_args(_FlagKind)
FLAG_STATUSES: tuple[str, ...] = get_args(_FlagStatus)
NOTIFICATION_STATUSES: tuple[str, ...] = get_args(_NotificationStatus)
if TYPE_CHECKING:  # plain str for code that builds objects from rows; pydantic sees the Literal
    TipStatus = str
    QuestionStatus = str
    FlagKind = str
    FlagStatus = str
    NotificationStatus = str
else:
    TipStatus = _TipStatus
    QuestionStatus = _QuestionStatus
    FlagKind = _FlagKind
    FlagStatus = _FlagStatus
    NotificationStatus = _NotificationStatus

# -- limits ----------------------------------------------------------------------------------------

TIP_MAX = 1000
QUESTION_MAX = 1000
ANSWER_MAX = 3000
REJECT_REASON_MAX = 500
REPORT_REASON_MAX = 300
NOTE_MAX = 200
FLAG_COMMENT_MAX = 1000
NAME_MAX = 120
PAIRING_DAYS_MAX = 365
PAIRING_CAP_MAX = 100

# -- field types -----------------------------------------------------------------------------------

# C0 and C1 control characters but tab and newline, and DEL; a lone CR is a line end.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(value: Any) -> Any:
    """A person's text as stored: line ends `\\n`, control characters (but tab and newline)
    dropped, surrounding whitespace stripped. Anything not a string is left for the type check."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_RE.sub("", value).strip()


CLEAN = BeforeValidator(clean_text)


# A person's text: cleaned, then 1..N characters (bodies) or 0..N (reasons, notes, comments).
# (the constraints go on the str, inside the cleaning, so they check the cleaned text)
TipBody = Annotated[Annotated[str, StringConstraints(min_length=1, max_length=TIP_MAX)], CLEAN]
QuestionBody = Annotated[
    Annotated[str, StringConstraints(min_length=1, max_length=QUESTION_MAX)], CLEAN
]
AnswerBody = Annotated[
    Annotated[str, StringConstraints(min_length=1, max_length=ANSWER_MAX)], CLEAN
]
ReportReason = Annotated[Annotated[str, StringConstraints(max_length=REPORT_REASON_MAX)], CLEAN]
Note = Annotated[Annotated[str, StringConstraints(max_length=NOTE_MAX)], CLEAN]
FlagComment = Annotated[Annotated[str, StringConstraints(max_length=FLAG_COMMENT_MAX)], CLEAN]

# A server-made id (`new_id()`): read-only, "" until the server gives it.
PeerId = Annotated[str, READ_ONLY, Field(max_length=64)]
# A person key (the analytics pseudonym of issuer and subject, server/peer/people.py).
PersonKey = Annotated[str, READ_ONLY, Field(max_length=128)]
# A display name stored only when its person ticked "show my name".
DisplayName = Annotated[str, READ_ONLY, Field(max_length=NAME_MAX)]
# A reference to a mentor (server/models.py Mentor.id), a context or an aid: a slug, or "".
_OptSlug = Annotated[
    str,
    STRIP,
    Field(max_length=64),
    AfterValidator(_matches(SLUG_RE, "a slug (lowercase letters, digits, '-')")),
    WithJsonSchema({"type": "string", "pattern": f"({SLUG_PATTERN})|^$", "maxLength": 64}),
]


def new_id() -> str:
    """A server-made id: 12 URL-safe characters (72 random bits)."""
    return secrets.token_urlsafe(9)


# -- tips ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Tip:
    """A colleague's tip about a page (`context_id`) or a whole app (`context_id` ""). Shown to
    others only once approved, to its `audience` (empty: everyone who may use Inflow)."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    app_id: Annotated[AppRef, READ_ONLY]
    context_id: Annotated[_OptSlug, READ_ONLY] = ""
    body: TipBody
    author_key: PersonKey = ""
    author_name: DisplayName = ""
    show_name: Flag = False
    status: Annotated[TipStatus, READ_ONLY] = "pending"
    reject_reason: Annotated[str, READ_ONLY, Field(max_length=REJECT_REASON_MAX)] = ""
    # moderators may narrow it (a subset of what it was computed as); the service checks that
    audience: Tags = ()
    endorsed_by: Annotated[str, READ_ONLY, Field(max_length=64)] = ""
    endorsed_at: Timestamp = ""
    moderated_by: Annotated[str, READ_ONLY, Field(max_length=255)] = ""
    moderated_at: Timestamp = ""
    report_count: Annotated[int, READ_ONLY] = 0
    created_at: Timestamp = ""
    updated_at: Timestamp = ""


@dataclass(frozen=True, kw_only=True)
class TipReport:
    """Someone found a tip wrong or harmful: one report per (tip, reporter). The tip is hidden
    from its reporter at once and flagged to moderators."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    tip_id: Annotated[str, READ_ONLY, Field(max_length=64)]
    reporter_key: PersonKey = ""
    reason: ReportReason = ""
    created_at: Timestamp = ""


# -- questions and answers -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Question:
    """A learner's question about a page, for the app's vetted mentors and owners. `unread`: the
    asker has an answer not yet seen (the panel's badge)."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    app_id: Annotated[AppRef, READ_ONLY]
    context_id: Annotated[_OptSlug, READ_ONLY] = ""
    body: QuestionBody
    asker_key: PersonKey = ""
    asker_name: DisplayName = ""
    show_name: Flag = False
    status: Annotated[QuestionStatus, READ_ONLY] = "open"
    audience: Tags = ()
    accepted_answer_id: Annotated[str, READ_ONLY, Field(max_length=64)] = ""
    aid_id: Annotated[str, READ_ONLY, Field(max_length=64)] = ""  # the draft aid made from it
    unread: Annotated[bool, READ_ONLY] = False
    first_answer_at: Timestamp = ""
    created_at: Timestamp = ""
    updated_at: Timestamp = ""


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A mentor's (or an app owner's: `mentor_id` "") answer to a question."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    question_id: Annotated[str, READ_ONLY, Field(max_length=64)]
    body: AnswerBody
    author_key: PersonKey = ""
    author_name: DisplayName = ""
    mentor_id: Annotated[str, READ_ONLY, Field(max_length=64)] = ""
    accepted: Annotated[bool, READ_ONLY] = False
    created_at: Timestamp = ""


# -- pairings --------------------------------------------------------------------------------------

_Username = Annotated[
    str,
    STRIP,
    Field(min_length=1, max_length=255),
    AfterValidator(_matches(USERNAME_RE, "a Keycloak username")),
]


@dataclass(frozen=True, kw_only=True)
class Pairing:
    """A learner paired with a vetted mentor for an app, from `starts_on` to `ends_on` (dates,
    both included). `source` is `manual` or `rule:<rule id>`."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    learner_username: _Username
    learner_key: PersonKey = ""  # "" until the learner is seen
    mentor_id: Slug
    app_id: AppRef
    starts_on: IsoDate = None
    ends_on: IsoDate = None
    source: Annotated[
        str, READ_ONLY, Field(max_length=80, pattern=r"^(manual|rule:[a-z0-9][a-z0-9-]{0,63})$")
    ] = "manual"
    created_by: Annotated[str, READ_ONLY, Field(max_length=255)] = ""
    created_at: Timestamp = ""


_Claim = Annotated[
    str,
    STRIP,
    Field(max_length=100),
    AfterValidator(_matches(re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$"), "a token claim name")),
]
_Group = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(lambda v: v.lstrip("/") or v),
]


@dataclass(frozen=True, kw_only=True)
class PairingRule:
    """Members of a Keycloak `group` get a mentor for `app_id` for `days` days, spread across the
    `mentor_ids` pool (empty: every vetted active mentor of the app) with at most `cap` mentees a
    mentor. `start_claim` names a token claim holding the start date ("": the day they are seen)."""

    __pydantic_config__ = CONFIG

    id: Slug
    group: _Group
    app_id: AppRef
    mentor_ids: Annotated[tuple[Slug, ...], Field(max_length=100), AfterValidator(_unique)] = ()
    days: Annotated[int, Field(strict=True, ge=1, le=PAIRING_DAYS_MAX)] = 30
    cap: Annotated[int, Field(strict=True, ge=1, le=PAIRING_CAP_MAX)] = 5
    start_claim: _Claim = ""
    active: Flag = True
    created_at: Timestamp = ""
    updated_at: Timestamp = ""


# -- mentors and curated content -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """A mentor recommends an aid on a page: one per (mentor, context, aid)."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    mentor_id: Annotated[str, READ_ONLY, Field(max_length=64)]
    app_id: Annotated[AppRef, READ_ONLY]
    context_id: Annotated[_OptSlug, READ_ONLY] = ""
    aid_id: Slug
    note: Note = ""
    created_at: Timestamp = ""


@dataclass(frozen=True, kw_only=True)
class AidFlag:
    """A mentor says an aid is wrong or outdated; its owner (and authors, reviewers) resolve it."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    aid_id: Annotated[Slug, READ_ONLY]
    mentor_id: Annotated[str, READ_ONLY, Field(max_length=64)] = ""
    kind: FlagKind
    comment: FlagComment = ""
    status: Annotated[FlagStatus, READ_ONLY] = "open"
    resolved_by: Annotated[str, READ_ONLY, Field(max_length=255)] = ""
    resolved_at: Timestamp = ""
    created_at: Timestamp = ""


# -- the e-mail outbox -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Notification:
    """One e-mail to send (server/peer/mail.py): queued, then sent or failed after retries."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    to_addr: Annotated[str, Field(min_length=3, max_length=320)]
    subject: Annotated[str, Field(max_length=300)]
    body_text: Annotated[str, Field(max_length=20_000)]
    kind: Annotated[str, Field(max_length=40)] = ""
    ref: Annotated[str, Field(max_length=200)] = ""
    status: Annotated[NotificationStatus, READ_ONLY] = "queued"
    attempts: Annotated[int, READ_ONLY] = 0
    last_error: Annotated[str, READ_ONLY, Field(max_length=2000)] = ""
    created_at: Timestamp = ""
    sent_at: Timestamp = ""


# Every peer resource, for the store, the tables' tests and the OpenAPI components.
PEER_RESOURCES: tuple[type, ...] = (
    Tip,
    TipReport,
    Question,
    Answer,
    Pairing,
    PairingRule,
    Recommendation,
    AidFlag,
    Notification,
)

__all__ = [
    "FLAG_KINDS",
    "FLAG_STATUSES",
    "NOTIFICATION_STATUSES",
    "PEER_RESOURCES",
    "QUESTION_STATUSES",
    "TIP_STATUSES",
    "AidFlag",
    "Answer",
    "Notification",
    "Pairing",
    "PairingRule",
    "Question",
    "Recommendation",
    "Tip",
    "TipReport",
    "clean_text",
    "new_id",
]
