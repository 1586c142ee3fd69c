"""The data model: aids, apps and contexts, with validation shared by import and the API."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

AID_TYPES = ("howto", "checklist", "video", "link", "faq", "policy")
AID_STATUSES = ("draft", "review", "published", "archived")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
DEFAULT_REVIEW_DAYS = 180


@dataclass(frozen=True)
class Aid:
    id: str
    title: str
    summary: str = ""
    body: str = ""
    type: str = "howto"
    tags: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    audience: tuple[str, ...] = ()
    owner: str = ""
    status: str = "draft"
    verified_at: str | None = None  # ISO date
    review_interval_days: int = DEFAULT_REVIEW_DAYS
    source: str = ""
    version: int = 1
    created_at: str = ""
    updated_at: str = ""

    def content_fields(self) -> dict[str, Any]:
        """What an author controls (everything but version and timestamps)."""
        return {
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "body": self.body,
            "type": self.type,
            "tags": list(self.tags),
            "apps": list(self.apps),
            "audience": list(self.audience),
            "owner": self.owner,
            "status": self.status,
            "verified_at": self.verified_at,
            "review_interval_days": self.review_interval_days,
            "source": self.source,
        }

    def is_stale(self, today: dt.date) -> bool:
        if not self.verified_at:
            return True
        verified = dt.date.fromisoformat(self.verified_at)
        return (today - verified).days > self.review_interval_days

    def visible_to(self, tags: frozenset[str] | None) -> bool:
        """tags=None means 'sees everything' (admins, and the pre-SSO seam)."""
        return tags is None or not self.audience or bool(tags.intersection(self.audience))


@dataclass(frozen=True)
class RuleSpec:
    pattern: str
    priority: int = 0


@dataclass(frozen=True)
class Context:
    id: str
    app_id: str
    name: str
    rule: RuleSpec
    title_pattern: str = ""
    selector: str = ""
    aids: tuple[str, ...] = ()


@dataclass(frozen=True)
class App:
    id: str
    name: str
    description: str = ""
    rules: tuple[RuleSpec, ...] = ()
    contexts: tuple[Context, ...] = field(default_factory=tuple)


class FieldErrors(Exception):
    """Validation problems as (field, message) pairs; the caller adds file/line context."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


def _str_list(value: Any, name: str, errors: list[tuple[str, str]]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        errors.append((name, "must be a list of strings"))
        return ()
    out = tuple(str(v).strip() for v in value if str(v).strip())
    if len(out) > 50:
        errors.append((name, "at most 50 entries"))
    return out


def _text(
    data: dict[str, Any],
    name: str,
    errors: list[tuple[str, str]],
    *,
    required: bool = False,
    max_len: int = 500,
) -> str:
    value = data.get(name)
    if value is None:
        if required:
            errors.append((name, "is required"))
        return ""
    if not isinstance(value, str | int | float):
        errors.append((name, "must be a string"))
        return ""
    text = str(value).strip()
    if required and not text:
        errors.append((name, "must not be empty"))
    if len(text) > max_len:
        errors.append((name, f"at most {max_len} characters"))
    return text


AID_FIELDS = {
    "id",
    "title",
    "summary",
    "body",
    "type",
    "tags",
    "apps",
    "audience",
    "owner",
    "status",
    "verified_at",
    "review_interval_days",
    "source",
}


def aid_from_mapping(
    data: dict[str, Any], *, version: int = 1, created_at: str = "", updated_at: str = ""
) -> Aid:
    """Validate an aid's fields; raises FieldErrors listing every problem at once."""
    errors: list[tuple[str, str]] = []
    unknown = sorted(set(data) - AID_FIELDS)
    if unknown:
        errors.append((unknown[0], f"unknown field(s): {', '.join(unknown)}"))
    aid_id = _text(data, "id", errors, required=True, max_len=64)
    if aid_id and not SLUG_RE.match(aid_id):
        errors.append(("id", f"{aid_id!r} is not a slug (lowercase letters, digits, '-')"))
    title = _text(data, "title", errors, required=True, max_len=200)
    summary = _text(data, "summary", errors, max_len=500)
    body = data.get("body", "")
    if not isinstance(body, str):
        errors.append(("body", "must be Markdown text"))
        body = ""
    if len(body) > 200_000:
        errors.append(("body", "at most 200000 characters"))
    aid_type = _text(data, "type", errors, max_len=20) or "howto"
    if aid_type not in AID_TYPES:
        errors.append(("type", f"{aid_type!r} is not one of {', '.join(AID_TYPES)}"))
    status = _text(data, "status", errors, max_len=20) or "draft"
    if status not in AID_STATUSES:
        errors.append(("status", f"{status!r} is not one of {', '.join(AID_STATUSES)}"))
    tags = _str_list(data.get("tags"), "tags", errors)
    apps = _str_list(data.get("apps"), "apps", errors)
    for app in apps:
        if not SLUG_RE.match(app):
            errors.append(("apps", f"{app!r} is not an app id"))
    audience = _str_list(data.get("audience"), "audience", errors)
    verified = data.get("verified_at")
    verified_at: str | None = None
    if isinstance(verified, dt.datetime):
        verified_at = verified.date().isoformat()
    elif isinstance(verified, dt.date):
        verified_at = verified.isoformat()
    elif isinstance(verified, str) and verified.strip():
        try:
            verified_at = dt.date.fromisoformat(verified.strip()).isoformat()
        except ValueError:
            errors.append(("verified_at", f"{verified!r} is not a date (YYYY-MM-DD)"))
    elif verified not in (None, ""):
        errors.append(("verified_at", "must be a date (YYYY-MM-DD)"))
    interval = data.get("review_interval_days", DEFAULT_REVIEW_DAYS)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 3650:
        errors.append(("review_interval_days", "must be a whole number of days, 1 to 3650"))
        interval = DEFAULT_REVIEW_DAYS
    source = _text(data, "source", errors, max_len=2000)
    if source and not re.match(r"^https?://", source, re.IGNORECASE):
        errors.append(("source", "must be an http(s) URL"))
    if errors:
        raise FieldErrors(errors)
    return Aid(
        id=aid_id,
        title=title,
        summary=summary,
        body=body,
        type=aid_type,
        tags=tags,
        apps=apps,
        audience=audience,
        owner=_text(data, "owner", errors, max_len=200),
        status=status,
        verified_at=verified_at,
        review_interval_days=interval,
        source=source,
        version=version,
        created_at=created_at,
        updated_at=updated_at,
    )


def _rule(value: Any, name: str, errors: list[tuple[str, str]]) -> RuleSpec | None:
    if isinstance(value, str):
        return RuleSpec(value.strip())
    if isinstance(value, dict):
        unknown = set(value) - {"pattern", "priority"}
        if unknown:
            errors.append((name, f"unknown field(s): {', '.join(sorted(unknown))}"))
        pattern = value.get("pattern")
        priority = value.get("priority", 0)
        if not isinstance(pattern, str) or not pattern.strip():
            errors.append((name, "needs a 'pattern'"))
            return None
        if (
            not isinstance(priority, int)
            or isinstance(priority, bool)
            or not -1000 <= priority <= 1000
        ):
            errors.append((name, "priority must be a whole number from -1000 to 1000"))
            return None
        return RuleSpec(pattern.strip(), priority)
    errors.append((name, "must be a pattern string or {pattern, priority}"))
    return None


APP_FIELDS = {"id", "name", "description", "rules", "contexts"}
CONTEXT_FIELDS = {"id", "name", "rule", "priority", "title_pattern", "selector", "aids"}


def app_from_mapping(data: dict[str, Any]) -> App:
    errors: list[tuple[str, str]] = []
    unknown = sorted(set(data) - APP_FIELDS)
    if unknown:
        errors.append((unknown[0], f"unknown field(s): {', '.join(unknown)}"))
    app_id = _text(data, "id", errors, required=True, max_len=64)
    if app_id and not SLUG_RE.match(app_id):
        errors.append(("id", f"{app_id!r} is not a slug (lowercase letters, digits, '-')"))
    name = _text(data, "name", errors, required=True, max_len=200)
    rules: list[RuleSpec] = []
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        errors.append(("rules", "must be a list"))
        raw_rules = []
    for i, raw in enumerate(raw_rules):
        spec = _rule(raw, f"rules[{i}]", errors)
        if spec:
            rules.append(spec)
    contexts: list[Context] = []
    raw_contexts = data.get("contexts") or []
    if not isinstance(raw_contexts, list):
        errors.append(("contexts", "must be a list"))
        raw_contexts = []
    for i, raw in enumerate(raw_contexts):
        where = f"contexts[{i}]"
        if not isinstance(raw, dict):
            errors.append((where, "must be a mapping"))
            continue
        unknown = sorted(set(raw) - CONTEXT_FIELDS)
        if unknown:
            errors.append((where, f"unknown field(s): {', '.join(unknown)}"))
        sub: list[tuple[str, str]] = []
        cid = _text(raw, "id", sub, required=True, max_len=64)
        if cid and not SLUG_RE.match(cid):
            sub.append(("id", f"{cid!r} is not a slug"))
        cname = _text(raw, "name", sub, required=True, max_len=200)
        rule_value = raw.get("rule")
        if isinstance(rule_value, str) and "priority" in raw:
            rule_value = {"pattern": rule_value, "priority": raw["priority"]}
        spec = _rule(rule_value, "rule", sub) if rule_value is not None else None
        if rule_value is None:
            sub.append(("rule", "is required"))
        title_pattern = _text(raw, "title_pattern", sub, max_len=300)
        if title_pattern:
            try:
                re.compile(title_pattern)
            except re.error as exc:
                sub.append(("title_pattern", f"not a valid regular expression: {exc}"))
        selector = _text(raw, "selector", sub, max_len=300)
        aids = _str_list(raw.get("aids"), "aids", sub)
        errors.extend((f"{where}.{f}", m) for f, m in sub)
        if spec and not sub:
            contexts.append(Context(cid, app_id, cname, spec, title_pattern, selector, aids))
    if errors:
        raise FieldErrors(errors)
    return App(
        app_id,
        name,
        _text(data, "description", errors, max_len=2000),
        tuple(rules),
        tuple(contexts),
    )


# -- mentors -----------------------------------------------------------------------------------

# A contact is an email address or a chat handle (`@maria.lopez`): nothing a client could mistake
# for a link to somewhere else (no URLs, no `javascript:`), so the sidebar can show it as text.
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}$"
)
HANDLE_RE = re.compile(r"^@[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$")
SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@|-]{0,254}$")
RESERVED_IDS = frozenset({"new"})  # /admin/mentors/new is the console's editor


@dataclass(frozen=True)
class Mentor:
    """A vetted peer mentor learners may contact. Shown in suggest only when vetted and active,
    mapped to the page's app and visible to the caller (`audience`, like aids)."""

    id: str
    name: str
    contact: str
    can_help_with: str = ""
    apps: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    username: str = ""  # optional Keycloak link: the account's username (for people to read)
    subject: str = ""  # optional Keycloak link: the account's subject (what identifies it)
    vetted: bool = False
    vetted_by: str = ""
    vetted_at: str | None = None  # ISO date
    active: bool = True
    audience: tuple[str, ...] = ()
    created_at: str = ""
    updated_at: str = ""

    def content_fields(self) -> dict[str, Any]:
        """Everything but timestamps: what a mentor file holds."""
        return {
            "id": self.id,
            "name": self.name,
            "contact": self.contact,
            "can_help_with": self.can_help_with,
            "apps": list(self.apps),
            "topics": list(self.topics),
            "username": self.username,
            "subject": self.subject,
            "vetted": self.vetted,
            "vetted_by": self.vetted_by,
            "vetted_at": self.vetted_at,
            "active": self.active,
            "audience": list(self.audience),
        }

    def visible_to(self, tags: frozenset[str] | None) -> bool:
        return tags is None or not self.audience or bool(tags.intersection(self.audience))

    @property
    def listed(self) -> bool:
        """May learners see this mentor at all (before app and audience)?"""
        return self.vetted and self.active


MENTOR_FIELDS = set(Mentor("x", "x", "x").content_fields())


def _date(value: Any, name: str, errors: list[tuple[str, str]]) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            errors.append((name, f"{value!r} is not a date (YYYY-MM-DD)"))
            return None
    if value not in (None, ""):
        errors.append((name, "must be a date (YYYY-MM-DD)"))
    return None


def _flag(data: dict[str, Any], name: str, default: bool, errors: list[tuple[str, str]]) -> bool:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        errors.append((name, "must be true or false"))
        return default
    return value


def mentor_from_mapping(
    data: dict[str, Any], *, created_at: str = "", updated_at: str = ""
) -> Mentor:
    """Validate a mentor's fields; raises FieldErrors listing every problem at once."""
    errors: list[tuple[str, str]] = []
    unknown = sorted(set(data) - MENTOR_FIELDS)
    if unknown:
        errors.append((unknown[0], f"unknown field(s): {', '.join(unknown)}"))
    mentor_id = _text(data, "id", errors, required=True, max_len=64)
    if mentor_id and not SLUG_RE.match(mentor_id):
        errors.append(("id", f"{mentor_id!r} is not a slug (lowercase letters, digits, '-')"))
    elif mentor_id in RESERVED_IDS:
        errors.append(("id", f"{mentor_id!r} is reserved"))
    name = _text(data, "name", errors, required=True, max_len=120)
    contact = _text(data, "contact", errors, required=True, max_len=200)
    if contact and not (EMAIL_RE.match(contact) or HANDLE_RE.match(contact)):
        errors.append(
            ("contact", f"{contact!r} is neither an email address nor a chat handle (@name)")
        )
    can_help_with = _text(data, "can_help_with", errors, max_len=200)
    if "\n" in can_help_with:
        errors.append(("can_help_with", "must be one line"))
    apps = _str_list(data.get("apps"), "apps", errors)
    for app in apps:
        if not SLUG_RE.match(app):
            errors.append(("apps", f"{app!r} is not an app id"))
    raw_topics = _str_list(data.get("topics"), "topics", errors)
    topics = tuple(dict.fromkeys(t.lower() for t in raw_topics))
    for topic in topics:
        if len(topic) > 60:
            errors.append(("topics", f"{topic[:20]!r}...: at most 60 characters a topic"))
    username = _text(data, "username", errors, max_len=255)
    if username and not USERNAME_RE.match(username):
        errors.append(("username", f"{username!r} is not a Keycloak username"))
    subject = _text(data, "subject", errors, max_len=255)
    if subject and not SUBJECT_RE.match(subject):
        errors.append(("subject", f"{subject!r} is not a Keycloak subject (the user's id)"))
    vetted = _flag(data, "vetted", False, errors)
    active = _flag(data, "active", True, errors)
    vetted_by = _text(data, "vetted_by", errors, max_len=255)
    vetted_at = _date(data.get("vetted_at"), "vetted_at", errors)
    if vetted and not vetted_by:
        errors.append(("vetted", "a vetted mentor needs 'vetted_by': who vetted them"))
    if not vetted and (vetted_by or vetted_at):
        which = "vetted_by" if vetted_by else "vetted_at"
        errors.append((which, "only a vetted mentor (vetted: true) has it"))
    audience = _str_list(data.get("audience"), "audience", errors)
    if errors:
        raise FieldErrors(errors)
    return Mentor(
        id=mentor_id,
        name=name,
        contact=contact,
        can_help_with=can_help_with,
        apps=tuple(dict.fromkeys(apps)),
        topics=topics,
        username=username,
        subject=subject,
        vetted=vetted,
        vetted_by=vetted_by,
        vetted_at=vetted_at,
        active=active,
        audience=audience,
        created_at=created_at,
        updated_at=updated_at,
    )
