"""Shared by the admin service's parts: roles (asked of server/permissions.py), ETags and
preconditions, the JSON of each resource, read-only fields, validation errors."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import logging
import re
from typing import Any

from auth.identity import Identity
from server.content import aid_to_text
from server.errors import (
    Forbidden,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)
from server.library import Library
from server.models import (
    Aid,
    App,
    Context,
    FieldErrors,
    Mentor,
    aid_from_mapping,
    dump,
    read_only_fields,
)
from server.permissions import describe, may, roles_for
from server.settings import Settings
from server.storage import Storage
from server.suggest import Suggester
from server.urlrules import InvalidRule, Rule, compile_rule

log = logging.getLogger(__name__)


log = logging.getLogger(__name__)

# Kept for callers that show or hide publishing actions; derived from the permission table.
PUBLISHERS = roles_for("aid.publish")

# (from, to) -> who may take the step: "author" (authors and publishers) or "publish".
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "review"): "author",
    ("review", "draft"): "author",
    ("draft", "archived"): "author",
    ("archived", "draft"): "author",
    ("review", "published"): "publish",
    ("draft", "published"): "publish",
    ("published", "draft"): "publish",
    ("published", "archived"): "publish",
    ("review", "archived"): "publish",
}


# -- identities, roles, ETags ----------------------------------------------------------------


def who(identity: Identity) -> tuple[str, str, str]:
    return (identity.issuer, identity.subject, identity.username or "")


def saved_by(identity: Identity) -> str:
    return identity.username or identity.subject


def is_publisher(identity: Identity) -> bool:
    return may(identity.roles, "aid.publish")


def require(identity: Identity, operation: str, what: str) -> None:
    """Forbidden unless the permission table lets the caller perform `operation`."""
    if not may(identity.roles, operation):
        raise Forbidden(
            f"{what} needs the role {describe(operation)}.",
            required_roles=sorted(roles_for(operation)),
            operation=operation,
        )


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


def aid_etag(aid: Aid) -> str:
    # Version plus creation time: a deleted and re-created aid starts at version 1 again.
    return f'"aid-{aid.version}-{_digest(aid.created_at)[:8]}"'


def app_json(app: App) -> dict[str, Any]:
    return dump(app)


def context_json(ctx: Context) -> dict[str, Any]:
    return dump(ctx)


def app_etag(app: App) -> str:
    return f'"app-{_digest(app_json(app))}"'


def context_etag(ctx: Context) -> str:
    return f'"ctx-{_digest(context_json(ctx))}"'


def mentor_json(mentor: Mentor) -> dict[str, Any]:
    return dump(mentor)


def mentor_etag(mentor: Mentor) -> str:
    return f'"mentor-{_digest(mentor_json(mentor))}"'


def check_if_match(if_match: str | None, current: str) -> None:
    """428 without If-Match, 412 when it names another version (`*` matches any)."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "Send If-Match with the ETag you read (GET), so concurrent edits are not lost.",
            current_etag=current,
        )
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" in tags or current in tags:
        return
    raise PreconditionFailed(
        "Someone changed this since you read it: reload, reapply your change and save again.",
        current_etag=current,
    )


def aid_json(aid: Aid, *, body: bool = True, today: dt.date | None = None) -> dict[str, Any]:
    data = dump(aid)
    if not body:  # lists: the big texts stay out (a video's transcript may be 500 kB)
        data.pop("body")
        data.pop("transcript")
    data.update(stale=aid.is_stale(today or dt.date.today()), review_due=aid.review_due())
    return data


def strip_read_only(
    data: dict[str, Any], current: dict[str, Any] | None, names: frozenset[str]
) -> dict[str, Any]:
    """Read-only fields (`names`) sent back unchanged from what GET answered (`current`) are
    accepted and dropped; changed ones, or any on a create (`current` None), are a 422 naming them.
    """
    changed = sorted(n for n in names & set(data) if current is None or data[n] != current.get(n))
    if changed:
        raise ValidationFailed(
            f"Read-only field(s) {', '.join(changed)}: the server sets them. Send them back as "
            "you read them (GET), or leave them out.",
            fields=changed,
            errors=[{"field": n, "message": "is read-only"} for n in changed],
        )
    return {k: v for k, v in data.items() if k not in names}


AID_READ_ONLY = read_only_fields(Aid) | {"stale", "review_due"}
MENTOR_READ_ONLY = read_only_fields(Mentor)
APP_READ_ONLY = frozenset({"warnings"})
CONTEXT_READ_ONLY = frozenset({"app"})


def diff_versions(
    aid_id: str, a: int, b: int, old: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """Unified diff of two versions as aid files (front matter + body); bodies can be long."""
    old_text = aid_to_text(aid_from_mapping(old)).splitlines(keepends=True)
    new_text = aid_to_text(aid_from_mapping(new)).splitlines(keepends=True)
    lines = list(difflib.unified_diff(old_text, new_text, f"{aid_id} v{a}", f"{aid_id} v{b}", n=3))
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return {"aid": aid_id, "from": a, "to": b, "fields": changed, "diff": "".join(lines)}


def field_errors(exc: FieldErrors) -> ValidationFailed:
    return ValidationFailed(
        "; ".join(f"{f}: {m}" for f, m in exc.errors),
        fields=sorted({f.split("[")[0].split(".")[0] for f, _ in exc.errors}),
        errors=[{"field": f, "message": m} for f, m in exc.errors],
    )


def compile_app_rules(app: App) -> None:
    problems: list[dict[str, str]] = []
    for i, spec in enumerate(app.rules):
        try:
            compile_rule(Rule(f"{app.id}#{i}", spec.pattern, app.id, spec.priority))
        except InvalidRule as exc:
            problems.append({"field": f"rules[{i}]", "message": f"{spec.pattern!r}: {exc}"})
    for i, ctx in enumerate(app.contexts):
        for j, rule in enumerate(ctx.rules):
            try:
                compile_rule(Rule(f"{ctx.id}#{j}", rule.pattern, ctx.id, rule.priority))
            except InvalidRule as exc:
                problems.append(
                    {"field": f"contexts[{i}].rules[{j}]", "message": f"{rule.pattern!r}: {exc}"}
                )
    if problems:
        raise ValidationFailed(
            "Invalid URL rule(s): " + "; ".join(p["message"] for p in problems),
            fields=sorted({p["field"].split("[")[0] for p in problems}),
            errors=problems,
        )


class ServiceBase:
    """What every part of the admin service holds: settings, the library, the suggester."""

    def __init__(self, settings: Settings, library: Library, suggester: Suggester) -> None:
        self.settings = settings
        self.library = library
        self.suggester = suggester

    @property
    def storage(self) -> Storage:
        return self.library.storage


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:64] or "item"
