"""Sources' resources, each declared once: a source, the provenance of each aid it made, its runs.

The same style as server/models.py and server/peer/models.py: frozen dataclasses whose
annotations carry types and limits; `validate(Source, data)` checks input and raises
`FieldErrors` with paths; `dump(obj)` is the JSON served; the tables are derived from the classes
(server/db/source_tables.py); rows read back are trusted (no validation).

A `Source`'s id is chosen by the admin (a slug: it prefixes the ids of the aids it makes);
`SourceItem` and `SyncRun` ids are made by the server. What the sync sets on a source (its last
run's time, status and summary, the validators of its last fetch) is read-only.

Fields that only mean something for one kind are refused with another kind when they differ
from their defaults (a GET sent back with PUT carries the defaults, which are accepted):
`mode`, `path_prefix` for websites; `ref`, `path` for git repositories.

`MAPPING_FIELDS` are the fields of a source-owned aid (`Aid.origin` set) that people may still
change in Inflow (where it shows, to whom, who owns it, its review and workflow); everything else
comes from the source and is changed there (server/admin/aids.py refuses it with a 409).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, Strict, StringConstraints

from server.models import (
    CONFIG,
    READ_ONLY,
    REQUIRED,
    STRIP,
    AidType,
    AppRefs,
    Flag,
    Slug,
    Tags,
    Timestamp,
    _fail,
    _matches,
    register_cross_check,
)

# -- states ----------------------------------------------------------------------------------------

_SourceKind = Literal["feed", "website", "git"]
_SourceMode = Literal["sitemap", "crawl"]
_PublishMode = Literal["auto", "review"]
_OnRemove = Literal["archive", "keep"]
_SourceStatus = Literal["never", "running", "ok", "partial", "failed"]
_ItemState = Literal["active", "removed", "failed"]
_RunTrigger = Literal["schedule", "manual"]
_RunStatus = Literal["running", "ok", "partial", "failed"]
SOURCE_KINDS: tuple[str, ...] = get_args(_SourceKind)
SOURCE_MODES: tuple[str, ...] = get_args(_SourceMode)
PUBLISH_MODES: tuple[str, ...] = get_args(_PublishMode)
ON_REMOVE: tuple[str, ...] = get_args(_OnRemove)
SOURCE_STATUSES: tuple[str, ...] = get_args(_SourceStatus)
ITEM_STATES: tuple[str, ...] = get_args(_ItemState)
RUN_TRIGGERS: tuple[str, ...] = get_args(_RunTrigger)
RUN_STATUSES: tuple[str, ...] = get_args(_RunStatus)
if TYPE_CHECKING:  # plain str for code that builds objects from rows; pydantic sees the Literal
    SourceKind = str
    SourceMode = str
    PublishMode = str
    OnRemove = str
    SourceStatus = str
    ItemState = str
    RunTrigger = str
    RunStatus = str
else:
    SourceKind = _SourceKind
    SourceMode = _SourceMode
    PublishMode = _PublishMode
    OnRemove = _OnRemove
    SourceStatus = _SourceStatus
    ItemState = _ItemState
    RunTrigger = _RunTrigger
    RunStatus = _RunStatus

# -- limits ----------------------------------------------------------------------------------------

NAME_MAX = 120
URL_MAX = 2000
PAGE_CAP_MAX = 5000
PAGE_CAP_DEFAULT = 200
INTERVAL_MIN = 15  # minutes: no source is read more often than this
INTERVAL_MAX = 10080  # a week
INTERVAL_DEFAULT = 360
MAX_ALLOWED_HOSTS = 20
SUMMARY_MAX = 300
ITEM_ERROR_MAX = 500
RUN_ERROR_MAX = 1000
MAX_RUN_FAILURES = 200  # failures kept per run (SyncRun.failures)

# The fields of a source-owned aid that may still be changed in Inflow (declared once).
MAPPING_FIELDS: tuple[str, ...] = (
    "apps",
    "tags",
    "audience",
    "owner",
    "review_interval_days",
    "status",
)

# -- field types -----------------------------------------------------------------------------------


def _source_url(value: str) -> str:
    if not re.match(r"^https?://", value, re.IGNORECASE):
        raise _fail("must be an http(s) URL")
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if not host:
        raise _fail("must be an http(s) URL with a host")
    return value


SourceUrl = Annotated[str, REQUIRED, Field(max_length=URL_MAX), AfterValidator(_source_url)]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_PATTERN = rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$"
_HOST_RE = re.compile(HOST_PATTERN)


def _host(value: str) -> str:
    if not _HOST_RE.match(value):
        raise _fail(f"{value!r} is not a host name (or '*.example.com' for its subdomains)")
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower().rstrip(".") if isinstance(value, str) else value


Host = Annotated[
    str,
    BeforeValidator(_lower),
    StringConstraints(min_length=1, max_length=253),
    AfterValidator(_host),
]


def _str_list(value: Any) -> Any:
    """One host or a list of them; None is none."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return value


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


Hosts = Annotated[
    tuple[Host, ...],
    BeforeValidator(_str_list),
    Field(max_length=MAX_ALLOWED_HOSTS),
    AfterValidator(_unique),
]
# A server-made id: read-only, "" until the server gives it (server/peer/models.py new_id()).
ServerId = Annotated[str, READ_ONLY, Field(max_length=64)]
# a branch or a tag name as git allows them (no option-like leading '-', no '..', no spaces)
_REF_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]+$")
# a folder inside the repository: relative, no '..' segment, no control characters or '\'
_REPO_PATH_RE = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[^\x00-\x1f\\]*$")
_Ref = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_matches(_REF_RE, "a git branch or tag name")),
]
_RepoPath = Annotated[
    str,
    STRIP,
    Field(max_length=500),
    AfterValidator(_matches(_REPO_PATH_RE, "a folder inside the repository (relative, no '..')")),
]


# -- a source --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where aids come from and stay current: a feed (RSS or Atom), a website section (its
    sitemap, or a crawl from a start page) or a git repository of Markdown files. Read every
    `interval_minutes` while `active`; each item becomes an aid of type `aid_type` with the
    source's apps, tags, audience and owner, published at once (`publish: auto`) or put in
    review; an item gone from the source is archived (or kept: `on_remove`), never deleted."""

    __pydantic_config__ = CONFIG

    id: Slug
    name: Annotated[str, REQUIRED, Field(max_length=NAME_MAX)]
    kind: SourceKind
    # the feed's URL; a sitemap's URL or the start page (website); the repository's URL (git)
    url: SourceUrl
    mode: SourceMode = "sitemap"  # website only
    path_prefix: Annotated[str, STRIP, Field(max_length=500)] = ""  # website only
    page_cap: Annotated[int, Strict(), Field(ge=1, le=PAGE_CAP_MAX)] = PAGE_CAP_DEFAULT
    ref: _Ref = "main"  # git only: a branch or a tag
    path: _RepoPath = ""  # git only: a folder inside the repository
    allowed_hosts: Hosts = ()  # empty: the host of `url` only
    apps: AppRefs = ()
    tags: Tags = ()
    audience: Tags = ()
    owner: Annotated[str, STRIP, Field(max_length=200)] = ""
    aid_type: AidType = "howto"
    publish: PublishMode = "review"
    on_remove: OnRemove = "archive"
    interval_minutes: Annotated[int, Strict(), Field(ge=INTERVAL_MIN, le=INTERVAL_MAX)] = (
        INTERVAL_DEFAULT
    )
    active: Flag = True
    last_sync_at: Timestamp = ""
    last_status: Annotated[SourceStatus, READ_ONLY] = "never"
    last_summary: Annotated[str, READ_ONLY, Field(max_length=SUMMARY_MAX)] = ""
    # the source-level validators of the last fetch (JSON object: etag, last_modified)
    validators: Annotated[str, READ_ONLY] = "{}"
    created_at: Timestamp = ""
    updated_at: Timestamp = ""

    def hosts(self) -> tuple[str, ...]:
        """The hosts fetching may reach: `allowed_hosts`, or the host of `url`."""
        if self.allowed_hosts:
            return self.allowed_hosts
        host = urlsplit(self.url).hostname or ""
        return (host,) if host else ()


# fields that mean something for one kind only -> (that kind, their default)
_KIND_ONLY: dict[str, tuple[str, Any]] = {
    "mode": ("website", "sitemap"),
    "path_prefix": ("website", ""),
    "ref": ("git", "main"),
    "path": ("git", ""),
}


def _source_rules(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Fields of one kind given (other than their default) with another kind."""
    kind = data.get("kind")
    if kind not in SOURCE_KINDS:
        return []  # the field check says what is wrong with `kind`
    out = []
    for name, (only, default) in _KIND_ONLY.items():
        value = data.get(name, default)
        if isinstance(value, str):
            value = value.strip()
        if kind != only and value not in (default, None):
            out.append((name, f"only a {only} source has it (this one is a {kind})"))
    return out


register_cross_check(Source, _source_rules)


# -- what a source made ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SourceItem:
    """The provenance of one aid a source made: the item's stable id within the source
    (`external_id`: a feed entry's id, a page's URL, a file's path), where it lives, the aid, the
    validators for the next conditional request and the hash of what the aid was made of."""

    __pydantic_config__ = CONFIG

    id: ServerId = ""
    source_id: Annotated[str, READ_ONLY, Field(max_length=64)]
    external_id: Annotated[str, READ_ONLY, Field(max_length=URL_MAX)]
    url: Annotated[str, READ_ONLY, Field(max_length=URL_MAX)] = ""
    aid_id: Annotated[str, READ_ONLY, Field(max_length=64)] = ""
    etag: Annotated[str, READ_ONLY, Field(max_length=500)] = ""
    last_modified: Annotated[str, READ_ONLY, Field(max_length=100)] = ""
    content_hash: Annotated[str, READ_ONLY, Field(max_length=64)] = ""  # sha256, hex
    fetched_at: Timestamp = ""
    changed_at: Timestamp = ""
    state: Annotated[ItemState, READ_ONLY] = "active"
    error: Annotated[str, READ_ONLY, Field(max_length=ITEM_ERROR_MAX)] = ""


@dataclass(frozen=True, kw_only=True)
class SyncRun:
    """One reading of a source, scheduled or started by someone: its outcome and counts, and up to
    `MAX_RUN_FAILURES` items that failed with their reasons (`failures`: a JSON list of
    {item, reason}); `error` says why a whole run failed (then nothing changed)."""

    __pydantic_config__ = CONFIG

    id: ServerId = ""
    source_id: Annotated[str, READ_ONLY, Field(max_length=64)]
    trigger: Annotated[RunTrigger, READ_ONLY] = "manual"
    started_by: Annotated[str, READ_ONLY, Field(max_length=255)] = ""
    started_at: Timestamp = ""
    finished_at: Timestamp = ""
    status: Annotated[RunStatus, READ_ONLY] = "running"
    added: Annotated[int, READ_ONLY] = 0
    changed: Annotated[int, READ_ONLY] = 0
    unchanged: Annotated[int, READ_ONLY] = 0
    removed: Annotated[int, READ_ONLY] = 0
    failed: Annotated[int, READ_ONLY] = 0
    failures: Annotated[str, READ_ONLY] = "[]"
    error: Annotated[str, READ_ONLY, Field(max_length=RUN_ERROR_MAX)] = ""


# Every source resource, for the store, the tables' tests and the OpenAPI components.
SOURCE_RESOURCES: tuple[type, ...] = (Source, SourceItem, SyncRun)

__all__ = [
    "HOST_PATTERN",
    "ITEM_STATES",
    "MAPPING_FIELDS",
    "MAX_RUN_FAILURES",
    "ON_REMOVE",
    "PUBLISH_MODES",
    "RUN_STATUSES",
    "RUN_TRIGGERS",
    "SOURCE_KINDS",
    "SOURCE_MODES",
    "SOURCE_RESOURCES",
    "SOURCE_STATUSES",
    "Source",
    "SourceItem",
    "SyncRun",
]
