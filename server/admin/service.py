"""Admin domain operations, shared by the JSON API and the console.

Every write runs through `Library.write` (one database transaction that also appends to the audit
log, then the index and the catalog), checks the caller's roles for the workflow step it takes and
compares the caller's `If-Match` with the current ETag inside that same transaction, so a stale
write gets 412 and never overwrites silently.

Who may do what is server/permissions.py (one table, read by the routes, the console and the
OpenAPI document); the service asks it again for each operation (the console calls the service
directly) and keeps only the checks that depend on an aid's state: publishing steps and edits of a
published aid need the operation `aid.publish`. An import applies the files as they are, statuses
included: the reviewed artefact is the archive (a docs-as-code pipeline reviews it before upload).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import difflib
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from auth.identity import Identity
from server.admin.archive import Limits, extract, inspect_archive, zip_dir
from server.admin.rules import rule_warnings
from server.content import aid_to_text, load_dir
from server.errors import (
    AidNotFound,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)
from server.library import Library
from server.models import (
    AID_STATUSES,
    AID_TYPES,
    SLUG_RE,
    Aid,
    App,
    Context,
    FieldErrors,
    Mentor,
    RuleSpec,
    aid_from_mapping,
    dump,
    read_only_fields,
    validate,
)
from server.permissions import describe, may, roles_for
from server.settings import Settings
from server.storage import Changes, Storage
from server.suggest import PageSignals, Suggester
from server.urlrules import InvalidRule, Rule, compile_rule

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
    if not body:
        data.pop("body")
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


def _diff(aid_id: str, a: int, b: int, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Unified diff of two versions as aid files (front matter + body); bodies can be long."""
    old_text = aid_to_text(aid_from_mapping(old)).splitlines(keepends=True)
    new_text = aid_to_text(aid_from_mapping(new)).splitlines(keepends=True)
    lines = list(difflib.unified_diff(old_text, new_text, f"{aid_id} v{a}", f"{aid_id} v{b}", n=3))
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return {"aid": aid_id, "from": a, "to": b, "fields": changed, "diff": "".join(lines)}


# -- cursors ---------------------------------------------------------------------------------


def encode_cursor(after: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("The cursor is not one this server gave out.") from exc
    if not isinstance(after, str | int) or isinstance(after, bool):
        raise BadRequest("The cursor is not one this server gave out.")
    return after


def page_by_id(items: list[Any], key: Callable[[Any], str], cursor: str | None, limit: int) -> Any:
    """Keyset pagination over items sorted by `key`: (page, next_cursor)."""
    after = decode_cursor(cursor)
    if after is not None:
        items = [i for i in items if key(i) > str(after)]
    page = items[:limit]
    more = len(items) > limit
    return page, (encode_cursor(key(page[-1])) if more and page else None)


# -- the service -----------------------------------------------------------------------------


def _field_errors(exc: FieldErrors) -> ValidationFailed:
    return ValidationFailed(
        "; ".join(f"{f}: {m}" for f, m in exc.errors),
        fields=sorted({f.split("[")[0].split(".")[0] for f, _ in exc.errors}),
        errors=[{"field": f, "message": m} for f, m in exc.errors],
    )


def _compile_app_rules(app: App) -> None:
    problems: list[dict[str, str]] = []
    for i, spec in enumerate(app.rules):
        try:
            compile_rule(Rule(f"{app.id}#{i}", spec.pattern, app.id, spec.priority))
        except InvalidRule as exc:
            problems.append({"field": f"rules[{i}]", "message": f"{spec.pattern!r}: {exc}"})
    for i, ctx in enumerate(app.contexts):
        try:
            compile_rule(Rule(ctx.id, ctx.rule.pattern, ctx.id, ctx.rule.priority))
        except InvalidRule as exc:
            problems.append(
                {"field": f"contexts[{i}].rule", "message": f"{ctx.rule.pattern!r}: {exc}"}
            )
    if problems:
        raise ValidationFailed(
            "Invalid URL rule(s): " + "; ".join(p["message"] for p in problems),
            fields=sorted({p["field"].split("[")[0] for p in problems}),
            errors=problems,
        )


class AdminService:
    def __init__(self, settings: Settings, library: Library, suggester: Suggester) -> None:
        self.settings = settings
        self.library = library
        self.suggester = suggester

    @property
    def storage(self) -> Storage:
        return self.library.storage

    # -- reads ---------------------------------------------------------------------------------
    async def list_aids(self, filters: dict[str, str]) -> list[Aid]:
        aids = await self.storage.all_aids()
        today = dt.date.today()
        out = []
        q = filters.get("q", "").strip().lower()
        for aid in aids:
            if filters.get("app") and filters["app"] not in aid.apps:
                continue
            if filters.get("type") and aid.type != filters["type"]:
                continue
            if filters.get("status") and aid.status != filters["status"]:
                continue
            if filters.get("owner") and filters["owner"].lower() not in aid.owner.lower():
                continue
            stale = filters.get("stale", "")
            if stale in {"1", "true", "yes"} and not (
                aid.is_stale(today) and aid.status == "published"
            ):
                continue
            if q and q not in aid.title.lower() and q not in aid.id:
                continue
            out.append(aid)
        return out

    @staticmethod
    def validate_aid_filters(filters: dict[str, str]) -> dict[str, str]:
        allowed = {"app", "type", "status", "owner", "stale", "q"}
        clean = {k: v.strip() for k, v in filters.items() if k in allowed and v.strip()}
        if clean.get("type") and clean["type"] not in AID_TYPES:
            raise ValidationFailed(
                f"'type' must be one of {', '.join(AID_TYPES)}.", fields=["type"]
            )
        if clean.get("status") and clean["status"] not in AID_STATUSES:
            raise ValidationFailed(
                f"'status' must be one of {', '.join(AID_STATUSES)}.", fields=["status"]
            )
        if clean.get("app") and not SLUG_RE.match(clean["app"]):
            raise ValidationFailed("'app' must be an app id.", fields=["app"])
        return clean

    async def get_aid(self, aid_id: str) -> Aid:
        return await self.storage.get_aid(aid_id)

    async def get_app(self, app_id: str) -> App:
        app = self.library.catalog.apps.get(app_id)
        if app is None:
            raise NotFound(f"No app with id {app_id!r}.")
        return app

    async def list_apps(self) -> list[App]:
        return sorted(self.library.catalog.apps.values(), key=lambda a: a.id)

    async def get_context(self, ctx_id: str) -> Context:
        ctx = self.library.catalog.contexts.get(ctx_id)
        if ctx is None:
            raise NotFound(f"No context with id {ctx_id!r}.")
        return ctx

    async def versions(self, aid_id: str) -> list[dict[str, Any]]:
        await self.storage.get_aid(aid_id)
        return await self.storage.call(self.storage.aid_versions_sync, aid_id)

    async def version(self, aid_id: str, version: int) -> dict[str, Any]:
        return await self.storage.call(self.storage.aid_version_sync, aid_id, version)

    async def diff(self, aid_id: str, a: int, b: int) -> dict[str, Any]:
        old, new = await self.version(aid_id, a), await self.version(aid_id, b)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, _diff, aid_id, a, b, old, new)

    async def audit(
        self, filters: dict[str, str], cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        before = decode_cursor(cursor)
        if before is not None and not isinstance(before, int):
            raise BadRequest("The cursor is not one this server gave out.")
        rows = await self.storage.call(self.storage.audit_page_sync, filters, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1]["id"]) if more and rows else None)

    def mappings(self) -> dict[str, Any]:
        catalog = self.library.catalog
        return {
            "version": catalog.version,
            "apps": {a: list(catalog.app_aids.get(a, ())) for a in sorted(catalog.apps)},
            "contexts": {c.id: list(c.aids) for c in catalog.contexts.values()},
        }

    # -- aids ----------------------------------------------------------------------------------
    def _check_refs(self, aid: Aid) -> None:
        unknown = [a for a in aid.apps if a not in self.library.catalog.apps]
        if unknown:
            raise ValidationFailed(f"Unknown app(s): {', '.join(unknown)}.", fields=["apps"])

    def _parse_aid(self, data: dict[str, Any], base: Aid | None = None) -> Aid:
        merged = base.content_fields() if base is not None else {}
        merged.update(data)
        try:
            aid = validate(Aid, merged)
        except FieldErrors as exc:
            raise _field_errors(exc) from exc
        self._check_refs(aid)
        return aid

    @staticmethod
    def _check_status_change(identity: Identity, old: str | None, new: str) -> None:
        if old == new:
            return
        if old is None:
            if new in {"published", "archived"}:
                require(identity, "aid.publish", f"Creating an aid as {new!r}")
            return
        step = TRANSITIONS.get((old, new))
        if step is None:
            raise Conflict(
                f"An aid cannot go from {old!r} to {new!r}.",
                allowed=sorted(t for (f, t) in TRANSITIONS if f == old),
            )
        if step == "publish":
            require(identity, "aid.publish", f"Moving an aid from {old!r} to {new!r}")

    async def create_aid(self, identity: Identity, data: dict[str, Any]) -> Aid:
        require(identity, "aid.create", "Creating aids")
        data = strip_read_only(data, None, AID_READ_ONLY)
        data = {"owner": identity.username or "", **data}
        aid = self._parse_aid(data)
        self._check_status_change(identity, None, aid.status)

        def op(changes: Changes) -> Aid:
            try:
                self.storage.get_aid_sync(aid.id)
            except AidNotFound:
                pass
            else:
                raise Conflict(f"An aid with id {aid.id!r} exists already.")
            stored, _ = self.storage.save_aid_tx(aid, saved_by(identity), changes)
            self.storage.audit_add_tx(
                who(identity), "aid.create", "aid", aid.id, {"version": 1, "status": aid.status}
            )
            return stored

        return await self.library.write(op)

    async def update_aid(
        self,
        identity: Identity,
        aid_id: str,
        data: dict[str, Any],
        if_match: str | None,
        *,
        partial: bool,
        action: str = "aid.update",
    ) -> Aid:
        require(identity, "aid.update", "Writing aids")
        if "id" in data and data["id"] != aid_id:
            raise ValidationFailed(
                "The id in the body differs from the one in the URL.", fields=["id"]
            )

        def op(changes: Changes) -> Aid:
            current = self.storage.get_aid_sync(aid_id)
            check_if_match(if_match, aid_etag(current))
            body = {"id": aid_id, **strip_read_only(data, aid_json(current), AID_READ_ONLY)}
            if not partial:
                # A full replacement keeps workflow state unless the caller names it.
                body.setdefault("status", current.status)
            new = self._parse_aid(body, current if partial else None)
            if current.status == "published" and not is_publisher(identity):
                raise Forbidden(
                    "This aid is published: changing it needs the role 'reviewer' or 'admin'. "
                    "Ask a reviewer, or move it back to draft first.",
                    required_roles=sorted(PUBLISHERS),
                )
            self._check_status_change(identity, current.status, new.status)
            stored, change = self.storage.save_aid_tx(new, saved_by(identity), changes)
            if change != "unchanged":
                fields = sorted(
                    k
                    for k, v in new.content_fields().items()
                    if current.content_fields().get(k) != v
                )
                self.storage.audit_add_tx(
                    who(identity),
                    action,
                    "aid",
                    aid_id,
                    {"version": stored.version, "fields": fields, "status": stored.status},
                )
            return stored

        return await self.library.write(op)

    async def transition(
        self, identity: Identity, aid_id: str, to: str, if_match: str | None, comment: str = ""
    ) -> Aid:
        require(identity, "aid.transition", "Workflow steps")
        if to not in AID_STATUSES:
            raise ValidationFailed(f"'to' must be one of {', '.join(AID_STATUSES)}.", fields=["to"])

        def op(changes: Changes) -> Aid:
            current = self.storage.get_aid_sync(aid_id)
            check_if_match(if_match, aid_etag(current))
            if current.status == to:
                raise Conflict(f"The aid is {to!r} already.")
            self._check_status_change(identity, current.status, to)
            new = replace(current, status=to)
            if to == "published" and not current.verified_at:
                new = replace(new, verified_at=dt.date.today().isoformat())
            stored, _ = self.storage.save_aid_tx(new, saved_by(identity), changes)
            self.storage.audit_add_tx(
                who(identity),
                f"aid.{to}",
                "aid",
                aid_id,
                {"from": current.status, "to": to, "version": stored.version, "comment": comment},
            )
            return stored

        return await self.library.write(op)

    async def rollback(
        self, identity: Identity, aid_id: str, version: int, if_match: str | None
    ) -> Aid:
        """A new version with the content of an old one; the workflow status stays as it is."""
        old = await self.version(aid_id, version)
        old.pop("status", None)
        old.pop("id", None)
        return await self.update_aid(
            identity, aid_id, old, if_match, partial=True, action="aid.rollback"
        )

    async def delete_aid(self, identity: Identity, aid_id: str, if_match: str | None) -> None:
        require(identity, "aid.delete", "Deleting aids (authors archive them)")

        def op(changes: Changes) -> None:
            current = self.storage.get_aid_sync(aid_id)
            check_if_match(if_match, aid_etag(current))
            self.storage.delete_aid_tx(aid_id, changes)
            self.storage.audit_add_tx(
                who(identity), "aid.delete", "aid", aid_id, {"version": current.version}
            )

        await self.library.write(op)

    async def set_mapping(
        self,
        identity: Identity,
        aid_id: str,
        apps: list[str],
        contexts: list[str],
        if_match: str | None,
    ) -> dict[str, Any]:
        """Where an aid shows: the apps it is mapped to and the contexts it is pinned in (pins
        are added at the end of a context's list, or removed; other pins keep their order)."""
        require(identity, "mapping.write", "Mapping aids")
        catalog = self.library.catalog
        unknown_apps = [a for a in apps if a not in catalog.apps]
        unknown_ctx = [c for c in contexts if c not in catalog.contexts]
        if unknown_apps or unknown_ctx:
            raise ValidationFailed(
                f"Unknown app(s) {unknown_apps} or context(s) {unknown_ctx}.",
                fields=[n for n, bad in (("apps", unknown_apps), ("contexts", unknown_ctx)) if bad],
            )

        def op(changes: Changes) -> dict[str, Any]:
            current = self.storage.get_aid_sync(aid_id)
            check_if_match(if_match, aid_etag(current))
            new_apps = tuple(dict.fromkeys(apps))
            if new_apps != current.apps:
                self.storage.save_aid_tx(
                    replace(current, apps=new_apps), saved_by(identity), changes
                )
            wanted = set(contexts)
            for app in self.storage.all_apps_sync():
                new_contexts = []
                for ctx in app.contexts:
                    if ctx.id in wanted:
                        pins = ctx.aids if aid_id in ctx.aids else (*ctx.aids, aid_id)
                    else:
                        pins = tuple(a for a in ctx.aids if a != aid_id)
                    new_contexts.append(replace(ctx, aids=pins))
                if tuple(new_contexts) != app.contexts:
                    self.storage.save_app_tx(replace(app, contexts=tuple(new_contexts)), changes)
            self.storage.audit_add_tx(
                who(identity),
                "aid.map",
                "aid",
                aid_id,
                {"apps": list(new_apps), "contexts": sorted(wanted)},
            )
            return {"aid": aid_id, "apps": list(new_apps), "contexts": sorted(wanted)}

        return await self.library.write(op)

    # -- apps and contexts ---------------------------------------------------------------------
    def _parse_app(self, data: dict[str, Any]) -> App:
        try:
            app = validate(App, data)
        except FieldErrors as exc:
            raise _field_errors(exc) from exc
        _compile_app_rules(app)
        return app

    def _check_context_ids(self, app: App) -> None:
        ids = [c.id for c in app.contexts]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        taken = sorted(
            c.id
            for c in self.library.catalog.contexts.values()
            if c.id in ids and c.app_id != app.id
        )
        if dupes or taken:
            raise Conflict(f"Context id(s) already used: {', '.join(dupes + taken)}.")
        known = set(self.library.catalog.aids)
        missing = sorted({a for c in app.contexts for a in c.aids if a not in known})
        if missing:
            raise ValidationFailed(f"Unknown aid(s) pinned: {', '.join(missing)}.", fields=["aids"])

    def warnings_for(self, app: App) -> list[dict[str, Any]]:
        return rule_warnings(app, list(self.library.catalog.apps.values()))

    async def _save_app(
        self,
        identity: Identity,
        app: App,
        *,
        expect: str | None,
        if_match: str | None,
        action: str,
        detail: dict[str, Any] | None = None,
    ) -> tuple[App, list[dict[str, Any]]]:
        """Write an app (with its contexts). `expect` is the ETag to check (None: must be new)."""
        operation = "context.write" if action.startswith("context.") else "app.write"
        require(identity, operation, "Managing apps, rules and contexts")
        self._check_context_ids(app)
        loop = asyncio.get_running_loop()
        warnings = await loop.run_in_executor(None, self.warnings_for, app)

        def op(changes: Changes) -> App:
            try:
                current: App | None = self.storage.get_app_sync(app.id)
            except NotFound:
                current = None
            if expect is None:
                if current is not None:
                    raise Conflict(f"An app with id {app.id!r} exists already.")
            else:
                if current is None:
                    raise NotFound(f"No app with id {app.id!r}.")
                check_if_match(if_match, app_etag(current))
            self.storage.save_app_tx(app, changes)
            self.storage.audit_add_tx(
                who(identity),
                action,
                "app",
                app.id,
                {**(detail or {}), "warnings": [w["message"] for w in warnings]},
            )
            return self.storage.get_app_sync(app.id)

        saved = await self.library.write(op)
        return saved, warnings

    async def create_app(
        self, identity: Identity, data: dict[str, Any]
    ) -> tuple[App, list[dict[str, Any]]]:
        data = strip_read_only(data, None, APP_READ_ONLY)
        if "contexts" in data:
            data = {**data, "contexts": self._contexts_in(data["contexts"], data.get("id"))}
        app = self._parse_app(data)
        return await self._save_app(identity, app, expect=None, if_match=None, action="app.create")

    @staticmethod
    def _contexts_in(contexts: Any, app_id: Any) -> Any:
        """Contexts sent inside an app: `app` (read-only) may be sent back as it was."""
        if not isinstance(contexts, list):
            return contexts
        return [
            strip_read_only(c, {"app": app_id}, CONTEXT_READ_ONLY) if isinstance(c, dict) else c
            for c in contexts
        ]

    async def update_app(
        self, identity: Identity, app_id: str, data: dict[str, Any], if_match: str | None
    ) -> tuple[App, list[dict[str, Any]]]:
        """Replace name, description and rules; contexts are kept unless `contexts` is sent."""
        current = await self.get_app(app_id)
        check_if_match(if_match, app_etag(current))  # preconditions before the body
        if "id" in data and data["id"] != app_id:
            raise ValidationFailed(
                "The id in the body differs from the one in the URL.", fields=["id"]
            )
        loop = asyncio.get_running_loop()
        warnings = await loop.run_in_executor(None, self.warnings_for, current)
        data = strip_read_only(data, {"warnings": warnings}, APP_READ_ONLY)
        body = {"id": app_id, **data}
        if "contexts" in body:
            body["contexts"] = self._contexts_in(body["contexts"], app_id)
        if "contexts" not in body:
            body["contexts"] = [
                {
                    "id": c.id,
                    "name": c.name,
                    "rule": {"pattern": c.rule.pattern, "priority": c.rule.priority},
                    "title_pattern": c.title_pattern,
                    "selector": c.selector,
                    "aids": list(c.aids),
                }
                for c in current.contexts
            ]
        app = self._parse_app(body)
        return await self._save_app(
            identity, app, expect=app_etag(current), if_match=if_match, action="app.update"
        )

    async def delete_app(self, identity: Identity, app_id: str, if_match: str | None) -> list[str]:
        """Delete an app with its contexts; aids mapped to it are unmapped (a new version each)."""
        require(identity, "app.write", "Managing apps, rules and contexts")

        def op(changes: Changes) -> list[str]:
            current = self.storage.get_app_sync(app_id)
            check_if_match(if_match, app_etag(current))
            unmapped = []
            for aid in self.storage.all_aids_sync():
                if app_id in aid.apps:
                    new = replace(aid, apps=tuple(a for a in aid.apps if a != app_id))
                    self.storage.save_aid_tx(new, saved_by(identity), changes)
                    unmapped.append(aid.id)
            self.storage.delete_app_tx(app_id, changes)
            self.storage.audit_add_tx(
                who(identity), "app.delete", "app", app_id, {"unmapped_aids": unmapped}
            )
            return unmapped

        return await self.library.write(op)

    def _context_from(self, app_id: str, data: dict[str, Any]) -> Context:
        probe = self._parse_app({"id": app_id, "name": "probe", "contexts": [data]})
        return probe.contexts[0]

    async def create_context(
        self, identity: Identity, app_id: str, data: dict[str, Any]
    ) -> tuple[Context, list[dict[str, Any]]]:
        app = await self.get_app(app_id)
        ctx = self._context_from(app_id, strip_read_only(data, {"app": app_id}, CONTEXT_READ_ONLY))
        if ctx.id in self.library.catalog.contexts:
            raise Conflict(f"A context with id {ctx.id!r} exists already.")
        new_app = replace(app, contexts=(*app.contexts, ctx))
        saved, warnings = await self._save_app(
            identity,
            new_app,
            expect=app_etag(app),
            if_match=app_etag(app),
            action="context.create",
            detail={"context": ctx.id},
        )
        return next(c for c in saved.contexts if c.id == ctx.id), warnings

    async def update_context(
        self,
        identity: Identity,
        ctx_id: str,
        data: dict[str, Any],
        if_match: str | None,
        *,
        action: str = "context.update",
    ) -> tuple[Context, list[dict[str, Any]]]:
        current = await self.get_context(ctx_id)
        check_if_match(if_match, context_etag(current))
        data = strip_read_only(data, {"app": current.app_id}, CONTEXT_READ_ONLY)
        if "id" in data and data["id"] != ctx_id:
            raise ValidationFailed(
                "The id in the body differs from the one in the URL.", fields=["id"]
            )
        merged = {
            "id": ctx_id,
            "name": current.name,
            "rule": {"pattern": current.rule.pattern, "priority": current.rule.priority},
            "title_pattern": current.title_pattern,
            "selector": current.selector,
            "aids": list(current.aids),
            **data,
        }
        ctx = self._context_from(current.app_id, merged)
        app = await self.get_app(current.app_id)
        new_app = replace(app, contexts=tuple(ctx if c.id == ctx_id else c for c in app.contexts))
        # The app ETag is checked in the transaction: any change to the app since the context
        # was read (including this context) makes this a 412.
        saved, warnings = await self._save_app(
            identity,
            new_app,
            expect=app_etag(app),
            if_match=app_etag(app),
            action=action,
            detail={"context": ctx_id},
        )
        return next(c for c in saved.contexts if c.id == ctx_id), warnings

    async def set_pins(
        self, identity: Identity, ctx_id: str, aids: list[str], if_match: str | None
    ) -> Context:
        ctx, _ = await self.update_context(
            identity, ctx_id, {"aids": aids}, if_match, action="context.pins"
        )
        return ctx

    async def move_pin(
        self, identity: Identity, ctx_id: str, aid_id: str, move: str, if_match: str | None
    ) -> Context:
        ctx = await self.get_context(ctx_id)
        pins = list(ctx.aids)
        if move == "add":
            if aid_id not in pins:
                pins.append(aid_id)
        elif aid_id not in pins:
            raise NotFound(f"{aid_id!r} is not pinned to {ctx_id!r}.")
        elif move == "remove":
            pins.remove(aid_id)
        elif move in {"up", "down"}:
            i = pins.index(aid_id)
            j = i - 1 if move == "up" else i + 1
            if 0 <= j < len(pins):
                pins[i], pins[j] = pins[j], pins[i]
        else:
            raise ValidationFailed("'move' must be add, remove, up or down.", fields=["move"])
        return await self.set_pins(identity, ctx_id, pins, if_match)

    async def delete_context(self, identity: Identity, ctx_id: str, if_match: str | None) -> None:
        current = await self.get_context(ctx_id)
        check_if_match(if_match, context_etag(current))
        app = await self.get_app(current.app_id)
        new_app = replace(app, contexts=tuple(c for c in app.contexts if c.id != ctx_id))
        await self._save_app(
            identity,
            new_app,
            expect=app_etag(app),
            if_match=app_etag(app),
            action="context.delete",
            detail={"context": ctx_id},
        )

    # -- mentors -------------------------------------------------------------------------------
    # Admins manage mentors; vetting is a field of the mentor (PATCH {"vetted": true}) whose
    # `vetted_by` and `vetted_at` the server sets from the caller and today's date.
    async def list_mentors(self, filters: dict[str, str]) -> list[Mentor]:
        q = filters.get("q", "").strip().lower()
        out = []
        for m in self.library.catalog.mentors:
            if filters.get("app") and filters["app"] not in m.apps:
                continue
            if filters.get("vetted") and m.vetted != (filters["vetted"] in {"1", "true", "yes"}):
                continue
            if filters.get("active") and m.active != (filters["active"] in {"1", "true", "yes"}):
                continue
            if q and q not in m.name.lower() and q not in m.id and q not in " ".join(m.topics):
                continue
            out.append(m)
        return sorted(out, key=lambda m: m.id)

    @staticmethod
    def validate_mentor_filters(filters: dict[str, str]) -> dict[str, str]:
        clean = {
            k: v.strip()
            for k, v in filters.items()
            if k in {"app", "vetted", "active", "q"} and v.strip()
        }
        for name in ("vetted", "active"):
            if clean.get(name) and clean[name] not in {"0", "1", "true", "false", "yes", "no"}:
                raise ValidationFailed(f"'{name}' must be true or false.", fields=[name])
        if clean.get("app") and not SLUG_RE.match(clean["app"]):
            raise ValidationFailed("'app' must be an app id.", fields=["app"])
        return clean

    async def get_mentor(self, mentor_id: str) -> Mentor:
        return await self.storage.call(self.storage.get_mentor_sync, mentor_id)

    def _parse_mentor(
        self, identity: Identity, data: dict[str, Any], current: Mentor | None
    ) -> Mentor:
        """Validate `data` over `current`; vetting sets who and when, unvetting clears them."""
        merged = current.content_fields() if current is not None else {}
        merged.update(data)
        was_vetted = current is not None and current.vetted
        if merged.get("vetted") is True and not was_vetted:
            merged["vetted_by"] = saved_by(identity)
            merged["vetted_at"] = dt.date.today().isoformat()
        elif merged.get("vetted") is not True:
            merged["vetted_by"], merged["vetted_at"] = "", None
        try:
            mentor = validate(Mentor, merged)
        except FieldErrors as exc:
            raise _field_errors(exc) from exc
        unknown = [a for a in mentor.apps if a not in self.library.catalog.apps]
        if unknown:
            raise ValidationFailed(f"Unknown app(s): {', '.join(unknown)}.", fields=["apps"])
        return mentor

    async def create_mentor(self, identity: Identity, data: dict[str, Any]) -> Mentor:
        require(identity, "mentor.write", "Managing mentors")
        data = strip_read_only(data, None, MENTOR_READ_ONLY)
        mentor = self._parse_mentor(identity, data, None)
        if mentor.vetted:
            require(identity, "mentor.vet", "Vetting mentors")

        def op(changes: Changes) -> Mentor:
            try:
                self.storage.get_mentor_sync(mentor.id)
            except NotFound:
                pass
            else:
                raise Conflict(f"A mentor with id {mentor.id!r} exists already.")
            stored, _ = self.storage.save_mentor_tx(mentor, changes)
            self.storage.audit_add_tx(
                who(identity),
                "mentor.create",
                "mentor",
                mentor.id,
                {"vetted": mentor.vetted, "active": mentor.active, "apps": list(mentor.apps)},
            )
            return stored

        return await self.library.write(op)

    async def update_mentor(
        self,
        identity: Identity,
        mentor_id: str,
        data: dict[str, Any],
        if_match: str | None,
        *,
        partial: bool,
    ) -> Mentor:
        """PUT (`partial=False`: fields not sent take their defaults) or PATCH. A change of
        `vetted` is audited as `mentor.vetted` / `mentor.unvetted`."""
        require(identity, "mentor.write", "Managing mentors")
        if "id" in data and data["id"] != mentor_id:
            raise ValidationFailed(
                "The id in the body differs from the one in the URL.", fields=["id"]
            )

        def op(changes: Changes) -> Mentor:
            current = self.storage.get_mentor_sync(mentor_id)
            check_if_match(if_match, mentor_etag(current))
            sent = strip_read_only(data, mentor_json(current), MENTOR_READ_ONLY)
            missing = [] if partial else [n for n in ("name", "contact") if n not in sent]
            if missing:
                raise ValidationFailed(
                    f"Missing required field(s): {', '.join(missing)}.", fields=missing
                )
            base = current
            if not partial:  # a replacement: unsent fields take their defaults, vetting stays
                base = Mentor(
                    mentor_id,
                    current.name,
                    current.contact,
                    vetted=current.vetted,
                    vetted_by=current.vetted_by,
                    vetted_at=current.vetted_at,
                )
            new = self._parse_mentor(identity, {"id": mentor_id, **sent}, base)
            if new.vetted != current.vetted:
                require(identity, "mentor.vet", "Vetting or unvetting mentors")
            stored, change = self.storage.save_mentor_tx(new, changes)
            if change != "unchanged":
                before, after = current.content_fields(), new.content_fields()
                fields = sorted(k for k, v in after.items() if before.get(k) != v)
                action = "mentor.update"
                if current.vetted != new.vetted:
                    action = "mentor.vetted" if new.vetted else "mentor.unvetted"
                self.storage.audit_add_tx(
                    who(identity),
                    action,
                    "mentor",
                    mentor_id,
                    {"fields": fields, "vetted": new.vetted, "active": new.active},
                )
            return stored

        return await self.library.write(op)

    async def set_vetted(
        self, identity: Identity, mentor_id: str, vetted: bool, if_match: str | None
    ) -> Mentor:
        return await self.update_mentor(
            identity, mentor_id, {"vetted": vetted}, if_match, partial=True
        )

    async def delete_mentor(self, identity: Identity, mentor_id: str, if_match: str | None) -> None:
        require(identity, "mentor.write", "Managing mentors")

        def op(changes: Changes) -> None:
            current = self.storage.get_mentor_sync(mentor_id)
            check_if_match(if_match, mentor_etag(current))
            self.storage.delete_mentor_tx(mentor_id, changes)
            self.storage.audit_add_tx(
                who(identity), "mentor.delete", "mentor", mentor_id, {"name": current.name}
            )

        await self.library.write(op)

    # -- rule tester ---------------------------------------------------------------------------
    async def test_rules(
        self, url: str, title: str, role: str, groups: tuple[str, ...], limit: int
    ) -> dict[str, Any]:
        """What the sidebar would show on `url` for someone with `role` (and `groups`)."""
        catalog = self.library.catalog
        audience: frozenset[str] | None = (
            None if role == "admin" else frozenset({role, *groups}) if role else frozenset(groups)
        )
        page = PageSignals(url=url, title=title)
        result = await self.suggester.suggest(catalog, page, audience, limit)
        resolution = catalog.resolve(url, title or None)
        matches = []
        for m in catalog.rules.match(url)[:20]:
            kind, _, ident = m.target.partition(":")
            matches.append(
                {
                    "rule": m.pattern,
                    "rule_id": m.rule_id,
                    "kind": kind,
                    "target": ident,
                    "reason": m.reason,
                }
            )
        winner = resolution.match
        return {
            **result,
            "role": role or None,
            "groups": list(groups),
            "winner": {"rule": winner.pattern, "rule_id": winner.rule_id, "reason": winner.reason}
            if winner
            else None,
            "candidates": matches,
        }

    # -- import and export ---------------------------------------------------------------------
    def _limits(self) -> Limits:
        return Limits(
            max_bytes=self.settings.admin_max_archive_bytes,
            max_files=self.settings.admin_max_archive_files,
        )

    async def import_archive(
        self, identity: Identity, data: bytes, filename: str = ""
    ) -> dict[str, Any]:
        require(identity, "import", "Importing content")
        loop = asyncio.get_running_loop()
        limits = self._limits()
        plan = await loop.run_in_executor(None, inspect_archive, data, limits)
        if not plan.files:
            raise ValidationFailed(
                "The archive holds no content files (aids/*.md, apps/*.yaml, mentors/*.yaml).",
                ignored=plan.ignored[:50],
            )
        catalog = self.library.catalog

        def unpack_and_load(tmp: str) -> Any:
            root = Path(tmp) / "content"
            extract(data, plan, root, limits)
            return load_dir(root, set(catalog.aids), set(catalog.apps))

        with tempfile.TemporaryDirectory(prefix="inflow-import-") as tmp:
            content = await loop.run_in_executor(None, unpack_and_load, tmp)
        for app in content.apps:
            taken = [
                c.id
                for c in app.contexts
                if c.id in catalog.contexts and catalog.contexts[c.id].app_id != app.id
            ]
            if taken:
                raise Conflict(f"App {app.id!r}: context id(s) used by another app: {taken}.")
        report = await self.library.import_content(content, saved_by(identity))
        summary = {k: v for k, v in report.items() if isinstance(v, list)}

        def audit(changes: Changes) -> None:
            self.storage.audit_add_tx(
                who(identity),
                "content.import",
                "archive",
                filename[:200],
                {
                    "content_version": report["content_version"],
                    **{k: v[:200] for k, v in summary.items() if v},
                },
            )

        await self.library.write(audit)
        return {**report, "ignored": plan.ignored[:200]}

    async def export_archive(self, identity: Identity) -> bytes:
        require(identity, "export", "Exporting content")
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory(prefix="inflow-export-") as tmp:
            await self.library.export_dir(Path(tmp))
            data = await loop.run_in_executor(None, zip_dir, Path(tmp))

        def audit(changes: Changes) -> None:
            self.storage.audit_add_tx(who(identity), "content.export", "archive", "", {})

        await self.library.write(audit)
        return data


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:64] or "item"


__all__ = [
    "AdminService",
    "RuleSpec",
    "aid_etag",
    "app_etag",
    "check_if_match",
    "context_etag",
    "mentor_etag",
    "mentor_json",
]
