"""Bulk work on aids: re-map (apps) and re-tag many aids in one all-or-nothing write.

`POST /api/v1/admin/aids/bulk` (server/admin/bulk_api.py) and the console's aids list
(server/console/bulk.py) both call `BulkOps.bulk_aids`. In one database transaction every id is
read and checked; if any is unknown, or not one the caller may change (a published aid needs a
publisher), nothing is written and the problem lists every bad id. Otherwise each aid that changes
gets a new version and one audit entry (`aid.bulk`), and the index takes the whole batch in one
commit (`Library.write` hands it every changed aid at once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from auth.identity import Identity
from server.admin.common import (
    PUBLISHERS,
    ServiceBase,
    field_errors,
    is_publisher,
    require,
    saved_by,
    who,
)
from server.errors import AidNotFound, Forbidden, ValidationFailed
from server.models import CONFIG, Aid, AppRefs, FieldErrors, Tags, validate
from server.storage import Changes, Storage

MAX_BULK = 500

AidId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


@dataclass(frozen=True)
class BulkAids:
    """Re-map and re-tag many aids at once: all of them change, or none does."""

    __pydantic_config__ = CONFIG

    ids: Annotated[tuple[AidId, ...], Field(min_length=1, max_length=MAX_BULK)]
    add_apps: AppRefs = ()
    remove_apps: AppRefs = ()
    add_tags: Tags = ()
    remove_tags: Tags = ()

    @property
    def remaps(self) -> bool:
        return bool(self.add_apps or self.remove_apps)

    def apply(self, aid: Aid) -> Aid:
        """The aid after the change: added entries at the end, removed ones gone, order kept."""
        apps = [a for a in aid.apps if a not in self.remove_apps]
        tags = [t for t in aid.tags if t not in self.remove_tags]
        apps += [a for a in self.add_apps if a not in apps]
        tags += [t for t in self.add_tags if t not in tags]
        return replace(aid, apps=tuple(apps), tags=tuple(tags))


def parse_bulk(data: Any) -> BulkAids:
    """The body checked by its declaration, plus what a declaration cannot say alone."""
    try:
        body = validate(BulkAids, data)
    except FieldErrors as exc:
        raise field_errors(exc) from exc
    if not (body.add_apps or body.remove_apps or body.add_tags or body.remove_tags):
        raise ValidationFailed(
            "Say what to change: add_apps, remove_apps, add_tags or remove_tags.",
            fields=["add_apps", "remove_apps", "add_tags", "remove_tags"],
        )
    both = sorted(set(body.add_apps) & set(body.remove_apps)) + sorted(
        set(body.add_tags) & set(body.remove_tags)
    )
    if both:
        raise ValidationFailed(
            f"Both added and removed: {', '.join(both)}.", fields=["add_apps", "add_tags"]
        )
    return body


class BulkOps(ServiceBase):
    """Many aids in one write."""

    def _check_apps(self, body: BulkAids) -> None:
        known = self.library.catalog.apps
        errors = [
            {"field": f"{name}[{i}]", "message": f"unknown app {app!r}"}
            for name, apps in (("add_apps", body.add_apps), ("remove_apps", body.remove_apps))
            for i, app in enumerate(apps)
            if app not in known
        ]
        if errors:
            raise ValidationFailed(
                "Unknown app(s): " + ", ".join(e["message"][12:] for e in errors) + ".",
                fields=sorted({e["field"].split("[")[0] for e in errors}),
                errors=errors,
            )

    def preview(self, body: BulkAids) -> dict[str, Any]:
        """What `bulk_aids` would do, from the catalog (nothing written): the ids that would
        change, those already as asked, and the unknown ones. The write checks again."""
        aids = self.library.catalog.aids
        change: list[str] = []
        same: list[str] = []
        unknown: list[str] = []
        for aid_id in dict.fromkeys(body.ids):
            meta = aids.get(aid_id)
            if meta is None:
                unknown.append(aid_id)
                continue
            probe = Aid(id=meta.id, title=meta.title, apps=meta.apps, tags=meta.tags)
            (same if body.apply(probe) == probe else change).append(aid_id)
        return {"change": change, "unchanged": same, "unknown": unknown}

    def _check(self, identity: Identity, body: BulkAids) -> None:
        """The roles and the apps: asked alike by the write and its dry run."""
        require(identity, "aid.bulk", "Changing many aids at once")
        if body.remaps:
            require(identity, "mapping.write", "Re-mapping aids (their apps)")
        self._check_apps(body)

    def dry_run(self, identity: Identity, body: BulkAids) -> dict[str, Any]:
        """What `bulk_aids` would change, after the same role and app checks; nothing written
        (`POST .../aids/bulk?dry_run=true`, and the console's confirmation: `preview`)."""
        self._check(identity, body)
        return {"dry_run": True, **self.preview(body)}

    async def bulk_aids(self, identity: Identity, body: BulkAids) -> dict[str, Any]:
        """Apply `body` to every aid it names, or to none. Returns what changed."""
        self._check(identity, body)
        ids = list(dict.fromkeys(body.ids))
        where: dict[str, str] = {}  # each id's place in the list as sent
        for i, aid_id in enumerate(body.ids):
            where.setdefault(aid_id, f"ids[{i}]")
        publisher = is_publisher(identity)

        def op(changes: Changes) -> dict[str, Any]:
            found = {i: a for i in ids if (a := _find(self.storage, i)) is not None}
            bad: list[dict[str, Any]] = []
            todo: list[tuple[Aid, Aid]] = []
            for aid_id in ids:
                current = found.get(aid_id)
                if current is None:
                    bad.append({"id": aid_id, "field": where[aid_id], "message": "no such aid"})
                    continue
                new = body.apply(current)
                if new == current:
                    continue
                if current.status == "published" and not publisher:
                    bad.append(
                        {
                            "id": aid_id,
                            "field": where[aid_id],
                            "message": "published: changing it needs the role "
                            + " or ".join(sorted(PUBLISHERS)),
                            "forbidden": True,
                        }
                    )
                    continue
                try:
                    validate(Aid, new.content_fields())
                except FieldErrors as exc:
                    why = "; ".join(f"{f}: {m}" for f, m in exc.errors)
                    bad.append({"id": aid_id, "field": where[aid_id], "message": why})
                    continue
                todo.append((current, new))
            if bad:
                _refuse(bad, len(ids))
            changed = []
            for current, new in todo:
                stored, _ = self.storage.save_aid_tx(new, saved_by(identity), changes)
                fields = [f for f in ("apps", "tags") if getattr(current, f) != getattr(new, f)]
                detail = {"version": stored.version, "fields": fields}
                detail.update({f: list(getattr(new, f)) for f in fields})
                self.storage.audit_add_tx(who(identity), "aid.bulk", "aid", stored.id, detail)
                changed.append(
                    {
                        "id": stored.id,
                        "version": stored.version,
                        "apps": list(stored.apps),
                        "tags": list(stored.tags),
                    }
                )
            done = {c["id"] for c in changed}
            return {"changed": changed, "unchanged": [i for i in ids if i not in done]}

        return await self.library.write(op)


def _find(storage: Storage, aid_id: str) -> Aid | None:
    try:
        return storage.get_aid_sync(aid_id)
    except AidNotFound:
        return None


def _refuse(bad: list[dict[str, Any]], total: int) -> None:
    """Nothing was written: every bad id, in one problem (403 when each is only not allowed)."""
    listed = [{k: v for k, v in b.items() if k != "forbidden"} for b in bad]
    detail = (
        f"{len(bad)} of {total} aid(s) cannot be changed, so none was: "
        + "; ".join(f"{b['id']}: {b['message']}" for b in listed[:10])
        + (f" (and {len(bad) - 10} more)" if len(bad) > 10 else "")
    )
    ids = [b["id"] for b in listed]
    if all(b.get("forbidden") for b in bad):
        raise Forbidden(detail, bad_ids=ids, errors=listed, required_roles=sorted(PUBLISHERS))
    raise ValidationFailed(detail, fields=["ids"], bad_ids=ids, errors=listed)


__all__ = ["MAX_BULK", "BulkAids", "BulkOps", "parse_bulk"]
