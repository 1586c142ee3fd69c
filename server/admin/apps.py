"""Admin operations on apps, rules and contexts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from auth.identity import Identity
from server.admin.common import (
    APP_READ_ONLY,
    CONTEXT_READ_ONLY,
    ServiceBase,
    app_etag,
    check_if_match,
    compile_app_rules,
    context_etag,
    field_errors,
    require,
    saved_by,
    strip_read_only,
    who,
)
from server.admin.rules import rule_warnings
from server.errors import (
    Conflict,
    NotFound,
    ValidationFailed,
)
from server.models import (
    App,
    Context,
    FieldErrors,
    dump,
    validate,
)
from server.storage import Changes

log = logging.getLogger(__name__)


class AppOps(ServiceBase):
    """Apps, their URL rules and contexts (pages with pinned aids). The rule tester: tester.py."""

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

    # -- apps and contexts ---------------------------------------------------------------------
    def _parse_app(self, data: dict[str, Any]) -> App:
        try:
            app = validate(App, data)
        except FieldErrors as exc:
            raise field_errors(exc) from exc
        compile_app_rules(app)
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
        self, identity: Identity, data: dict[str, Any], *, detail: dict[str, Any] | None = None
    ) -> tuple[App, list[dict[str, Any]]]:
        """A new app with its contexts; `detail` goes into the audit entry (e.g. the template
        it was made from)."""
        data = strip_read_only(data, None, APP_READ_ONLY)
        if "contexts" in data:
            data = {**data, "contexts": self._contexts_in(data["contexts"], data.get("id"))}
        app = self._parse_app(data)
        return await self._save_app(
            identity, app, expect=None, if_match=None, action="app.create", detail=detail
        )

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
            body["contexts"] = [dump(c) for c in current.contexts]
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
        merged = {**dump(current), **data, "id": ctx_id}
        if "rule" in data and "rules" not in data:
            del merged["rules"]  # the one-rule shorthand replaces the rules
        elif "priority" in data and "rules" not in data:
            merged["rules"] = [r.pattern for r in current.rules]  # a new priority for them all
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
