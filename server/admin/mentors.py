"""Admin operations on mentors."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from auth.identity import Identity
from server.admin.common import (
    MENTOR_READ_ONLY,
    ServiceBase,
    check_if_match,
    field_errors,
    mentor_etag,
    mentor_json,
    require,
    saved_by,
    strip_read_only,
    who,
)
from server.errors import (
    Conflict,
    NotFound,
    ValidationFailed,
)
from server.models import (
    SLUG_RE,
    FieldErrors,
    Mentor,
    validate,
)
from server.storage import Changes

log = logging.getLogger(__name__)


class MentorOps(ServiceBase):
    """Peer mentors: admins manage and vet them."""

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
            raise field_errors(exc) from exc
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
