"""What the console says in words: relative times ("3 hours ago", the exact time in a
`<time datetime title>`), audit entries as sentences ("ana published the aid Expense limits"),
field names as people say them. Jinja filters `when` and `ago` (registered by
`server.console.setup_template_env`); nothing here reads the request or the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

# A resource's field as a person names it (audit entries, diffs); unknown fields get their
# name with spaces ("review_interval_days" would read "review interval days").
FIELD_WORDS = {
    "title": "title",
    "summary": "summary",
    "body": "body",
    "type": "type",
    "tags": "tags",
    "apps": "apps",
    "audience": "audience",
    "owner": "owner",
    "verified_at": "verified date",
    "review_interval_days": "review interval",
    "source": "source URL",
    "status": "status",
    "name": "name",
    "description": "description",
    "rules": "URL rules",
    "rule": "URL rule",
    "priority": "priority",
    "title_pattern": "title pattern",
    "selector": "CSS selector",
    "aids": "pinned aids",
    "contexts": "page contexts",
    "contact": "contact",
    "can_help_with": "topics",
    "wrapped_targets": "wrapped targets",
    "fallback": "fallback flag",
    "exclusive": "exclusive flag",
}

# action -> what the actor did, with `{what}` for the resource ("the aid Expense limits").
ACTIONS = {
    "aid.create": "created {what}",
    "aid.update": "edited {what}",
    "aid.rollback": "rolled back {what}",
    "aid.review": "submitted {what} for review",
    "aid.published": "published {what}",
    "aid.archived": "archived {what}",
    "aid.draft": "sent {what} back to draft",
    "aid.verify": "marked {what} verified",
    "aid.delete": "deleted {what}",
    "aid.map": "changed where {what} shows",
    "aid.bulk": "changed the apps or tags of {what} (bulk change)",
    "aid.usage_reset": "reset the usage signal of {what}",
    "aid.flag_resolved": "resolved a mentor's flag on {what}",
    "app.create": "created {what}",
    "app.update": "edited {what}",
    "app.delete": "deleted {what}",
    "context.create": "added a page context to {what}",
    "context.update": "edited a page context of {what}",
    "context.pins": "changed the pinned aids of {what}",
    "context.delete": "deleted a page context of {what}",
    "mentor.create": "added {what}",
    "mentor.update": "edited {what}",
    "mentor.delete": "removed {what}",
    "mentor.vet": "vetted {what}",
    "mentor.unvet": "withdrew the vetting of {what}",
    "content.import": "imported content",
    "mapping.import": "imported URL-to-aid mappings into {what}",
    "content.export": "exported content",
    "tip.approve": "approved {what}",
    "tip.reject": "rejected {what}",
    "tip.hide": "hid {what}",
    "tip.edit": "edited {what} as its moderator",
    "tip.delete": "deleted {what}",
    "tip.delete_own": "deleted their own {what}",
    "tip.endorse": "endorsed {what}",
}
KINDS = {"aid": "the aid", "app": "the app", "mentor": "the mentor", "context": "the page"}
KINDS["tip"] = "the tip"
# mentors paired with new hires (server/peer/pairings.py)
ACTIONS["pairing.create"] = "paired a learner with a mentor ({what})"
ACTIONS["pairing.delete"] = "ended {what}"
ACTIONS["pairing_rule.create"] = "created {what}"
ACTIONS["pairing_rule.update"] = "edited {what}"
ACTIONS["pairing_rule.delete"] = "deleted {what}"
ACTIONS["pairing_rule.run"] = "ran {what}"
KINDS["pairing"] = "the pairing"
KINDS["pairing_rule"] = "the pairing rule"
# the e-mail outbox (server/console/outbox.py)
ACTIONS["notification.retry"] = "queued {what} again after it failed"
KINDS["notification"] = "the e-mail"
STATUS_WORDS = {
    "draft": "draft",
    "review": "in review",
    "published": "published",
    "archived": "archived",
}


def words_of(name: str) -> str:
    return FIELD_WORDS.get(name, name.replace("_", " "))


def listed(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


# -- times ---------------------------------------------------------------------------------------


def parse_time(value: Any) -> dt.datetime | dt.date | None:
    """An ISO timestamp ('2026-12-01T06:24:44Z'), a date ('2026-12-01') or a datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        found = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def relative(value: Any, now: dt.datetime | None = None) -> str:
    """'just now', '5 minutes ago', '3 hours ago', 'yesterday', '12 days ago', 'in 2 days';
    past a year the date itself. '' for what is not a time."""
    when = parse_time(value)
    now = now or dt.datetime.now(dt.UTC)
    if when is None:
        return ""
    if not isinstance(when, dt.datetime):
        days = (now.date() - when).days
        if days == 0:
            return "today"
        if days == 1:
            return "yesterday"
        if days == -1:
            return "tomorrow"
        if abs(days) > 365:
            return when.strftime("%-d %b %Y")
        return f"{_plural(days, 'day')} ago" if days > 0 else f"in {_plural(-days, 'day')}"
    seconds = (now - when).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        n, unit = max(1, int(seconds // 60)), "minute"
    elif seconds < 86400:
        n, unit = int(seconds // 3600), "hour"
    elif seconds < 86400 * 31:
        n, unit = int(seconds // 86400), "day"
        if n == 1 and not ahead:
            return "yesterday"
    else:
        n, unit = 0, ""
    if unit:
        return f"in {_plural(n, unit)}" if ahead else f"{_plural(n, unit)} ago"
    if seconds < 86400 * 365:
        n = max(1, round(seconds / (86400 * 30.4)))
        return f"in {_plural(n, 'month')}" if ahead else f"{_plural(n, 'month')} ago"
    return when.strftime("%-d %b %Y")


def exact(value: Any) -> str:
    when = parse_time(value)
    if when is None:
        return ""
    if isinstance(when, dt.datetime):
        return when.astimezone(dt.UTC).strftime("%-d %b %Y, %H:%M UTC")
    return when.strftime("%-d %b %Y")


def when_html(value: Any, empty: str = "never") -> Markup:
    """A `<time>` element: the relative time as text, the exact time in `datetime` and
    `title` (a tooltip)."""
    found = parse_time(value)
    if found is None:
        return Markup("{}").format(empty)
    stamp = (
        found.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        if isinstance(found, dt.datetime)
        else found.isoformat()
    )
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        stamp, exact(found), relative(found)
    )


# -- audit entries -------------------------------------------------------------------------------


def actor(entry: Mapping[str, Any]) -> str:
    who = entry.get("who") or {}
    return str(who.get("username") or who.get("subject") or "someone")


def _what(entry: Mapping[str, Any], names: Mapping[str, str]) -> str:
    kind = str(entry.get("target_type") or "")
    target = str(entry.get("target_id") or "")
    name = names.get(f"{kind}:{target}") or target
    label = KINDS.get(kind, kind.replace("_", " "))
    return f"{label} {name}".strip() if name else label


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return listed([_value(v) for v in value]) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{words_of(str(k))} {_value(v)}" for k, v in value.items())
    return str(value)


def audit_sentence(entry: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    """'ana sent the aid Expense limits back to draft': who did what to which resource."""
    action = str(entry.get("action") or "")
    what = _what(entry, names or {})
    pattern = ACTIONS.get(action)
    if pattern is None:
        verb = action.rpartition(".")[2].replace("_", " ") or "changed"
        pattern = f"{verb} {{what}}"
    return f"{actor(entry)} {pattern.format(what=what)}"


def audit_details(entry: Mapping[str, Any]) -> list[str]:
    """The entry's detail as short phrases: 'changed the title and body', 'now version 4',
    'from in review to draft'. The comment is shown on its own (`audit_comment`)."""
    detail = entry.get("detail")
    if not isinstance(detail, Mapping):
        return []
    out: list[str] = []
    fields = detail.get("fields")
    if isinstance(fields, list) and fields:
        out.append(f"changed the {listed([words_of(str(f)) for f in fields])}")
    if detail.get("from") and detail.get("to"):
        src, dst = str(detail["from"]), str(detail["to"])
        out.append(f"from {STATUS_WORDS.get(src, src)} to {STATUS_WORDS.get(dst, dst)}")
    elif detail.get("status") and not detail.get("to"):
        status = str(detail["status"])
        out.append(f"status {STATUS_WORDS.get(status, status)}")
    if isinstance(detail.get("version"), int):
        out.append(f"version {detail['version']}")
    warnings = detail.get("warnings")
    if isinstance(warnings, list) and warnings:
        out.append(f"{_plural(len(warnings), 'warning')}: {'; '.join(map(str, warnings))}")
    handled = {"fields", "from", "to", "status", "version", "warnings", "comment"}
    for key, value in detail.items():
        if key in handled or value in (None, "", [], {}):
            continue
        out.append(f"{words_of(str(key))}: {_value(value)}")
    return out


def audit_comment(entry: Mapping[str, Any]) -> str:
    detail = entry.get("detail")
    comment = detail.get("comment") if isinstance(detail, Mapping) else None
    return comment.strip() if isinstance(comment, str) else ""


def plural(n: int, unit: str, units: str = "") -> str:
    """'1 step', '3 steps', '0 steps' (`units` for an irregular plural): the `plural` filter,
    so a page never says '1 learners'."""
    return f"{n} {unit}" if n == 1 else f"{n} {units or unit + 's'}"


def setup_filters(env: Any) -> None:
    """The console's (and the learner web app's) Jinja filters."""
    env.filters["plural"] = plural
    env.filters["when"] = when_html
    env.filters["ago"] = relative
    env.filters["exact"] = exact
    env.filters["words"] = words_of


__all__ = [
    "audit_comment",
    "audit_details",
    "audit_sentence",
    "exact",
    "listed",
    "plural",
    "relative",
    "setup_filters",
    "when_html",
    "words_of",
]
