"""Admin operations on aids."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import replace
from typing import Any

from auth.identity import Identity
from server.admin.common import (
    AID_READ_ONLY,
    PUBLISHERS,
    TRANSITIONS,
    ServiceBase,
    aid_etag,
    aid_json,
    check_if_match,
    diff_versions,
    field_errors,
    is_publisher,
    require,
    saved_by,
    strip_read_only,
    who,
)
from server.errors import (
    AidNotFound,
    Conflict,
    Forbidden,
    ValidationFailed,
)
from server.models import (
    AID_STATUSES,
    AID_TYPES,
    SLUG_RE,
    Aid,
    FieldErrors,
    validate,
)
from server.peer.store import PeerTx
from server.sources.models import MAPPING_FIELDS, Source
from server.storage import Changes

log = logging.getLogger(__name__)


class AidOps(ServiceBase):
    """Aids: reads, writes, workflow, history and where they show (mappings)."""

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

    async def versions(self, aid_id: str) -> list[dict[str, Any]]:
        await self.storage.get_aid(aid_id)
        return await self.storage.call(self.storage.aid_versions_sync, aid_id)

    async def version(self, aid_id: str, version: int) -> dict[str, Any]:
        return await self.storage.call(self.storage.aid_version_sync, aid_id, version)

    async def diff(self, aid_id: str, a: int, b: int) -> dict[str, Any]:
        old, new = await self.version(aid_id, a), await self.version(aid_id, b)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, diff_versions, aid_id, a, b, old, new)

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
            raise field_errors(exc) from exc
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
        # off the event loop: a video's transcript (up to 500 kB) is parsed to be checked
        aid = await asyncio.to_thread(self._parse_aid, data)
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

        def prepare(current: Aid) -> Aid:
            body = {"id": aid_id, **strip_read_only(data, aid_json(current), AID_READ_ONLY)}
            if not partial:
                # A full replacement keeps workflow state unless the caller names it.
                body.setdefault("status", current.status)
            new = self._parse_aid(body, current if partial else None)
            return replace(new, origin=current.origin)  # read-only: the sync sets it

        # The new aid is checked off the event loop and out of the storage thread (a video's
        # transcript, up to 500 kB, is parsed; other writes would wait meanwhile), against the
        # aid as read now. The transaction uses it when the aid is still that version; else,
        # or when the check failed (a stale If-Match must answer 412 before a 422), it checks
        # again there, so the answers are those of checking in the transaction.
        seen = await self.storage.get_aid(aid_id)
        try:
            ready: Aid | None = await asyncio.to_thread(prepare, seen)
        except Exception:
            ready = None

        def op(changes: Changes) -> Aid:
            current = self.storage.get_aid_sync(aid_id)
            check_if_match(if_match, aid_etag(current))
            same = (current.version, current.created_at, current.updated_at) == (
                seen.version,
                seen.created_at,
                seen.updated_at,
            )
            if ready is not None and same:
                new = ready
                self._check_refs(new)  # the catalog as it is now
            else:
                new = prepare(current)
            if current.origin:
                self._check_source_owned(current, new)
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

    def _source_name(self, source_id: str) -> str:
        """The name of the source an aid comes from (its id when the source is gone); in the
        storage thread."""
        source = PeerTx(self.storage.conn).find(Source, source_id)
        return source.name if source is not None else source_id

    def _check_source_owned(self, current: Aid, new: Aid) -> None:
        """An aid a source made is changed at the source: here only where it shows, to whom, who
        owns it, its review interval and its workflow status (MAPPING_FIELDS). The sync writes
        through Storage directly, not through this check."""
        before = current.content_fields()
        changed = sorted(
            k for k, v in new.content_fields().items() if k not in MAPPING_FIELDS and before[k] != v
        )
        if changed:
            raise Conflict(
                f"This aid comes from source '{self._source_name(current.origin)}'; change it "
                f"there. Here you may change: {', '.join(MAPPING_FIELDS)}.",
                source=current.origin,
                fields=changed,
                editable=list(MAPPING_FIELDS),
            )

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
        old.pop("origin", None)  # the aid's provenance is not part of its content's history
        return await self.update_aid(
            identity, aid_id, old, if_match, partial=True, action="aid.rollback"
        )

    async def delete_aid(self, identity: Identity, aid_id: str, if_match: str | None) -> None:
        require(identity, "aid.delete", "Deleting aids (authors archive them)")

        def op(changes: Changes) -> None:
            current = self.storage.get_aid_sync(aid_id)
            check_if_match(if_match, aid_etag(current))
            if current.origin:
                raise Conflict(
                    f"This aid comes from source '{self._source_name(current.origin)}': archive "
                    "it instead (deleted, the next sync would make it again), or remove it at "
                    "the source.",
                    source=current.origin,
                )
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
