"""Tips from colleagues, on the page, moderated (issue 12; docs/peer.md "Tips").

A learner writes a short Markdown tip about the page they are on (`write`): the page's URL and
title resolve to the app and its best context with the catalog, like suggest. The tip is
`pending` and goes to the moderation queue of the app's owners (`App.owners`, by the token's
`email` claim) and of reviewers and admins (`tip.moderate`); each new pending tip is one e-mail to
the owners. Moderators approve, edit, reject with a reason the author reads in `mine`, hide
(at once, whatever the status) or delete; every moderation step is in the audit log. A learner's
own edit sends the tip back to `pending`; a learner deletes their own tips (audited, without the
body). Anyone who can see a tip reports it once: it is hidden from that reporter at once and
flagged in the queue (`report_count`, the reasons). A vetted mentor of the tip's app endorses an
approved tip: the panel says "Endorsed by <mentor>".

Bodies are cleaned on the way in (control and bidi-override characters dropped, newlines made
`\\n`, 1 to 1000 characters) and rendered on the way out with the aids' sanitising renderer
(server/render.py) as `body_html`. The author is stored as the analytics pseudonym (the person
key), their display name only when they chose `show_name`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import sqlalchemy as sa
from aiohttp import web
from pydantic import Field, StringConstraints

from auth.identity import Identity
from server import keys
from server.catalog import Catalog
from server.errors import Forbidden, NotFound, ValidationFailed, body_refused
from server.models import CONFIG, App, FieldErrors, Flag, Tags, validate
from server.peer import activity, people
from server.peer.mail import notify
from server.peer.models import (
    CLEAN,
    REJECT_REASON_MAX,
    REPORT_REASON_MAX,
    TIP_MAX,
    TIP_STATUSES,
    ReportReason,
    Tip,
    TipBody,
    TipReport,
)
from server.peer.store import PeerStore, PeerTx, table_of
from server.permissions import describe, may

log = logging.getLogger(__name__)

STATUSES = TIP_STATUSES
QUEUE_LIMIT = 200
ANONYMOUS = "A colleague"
B = TypeVar("B")


# -- request bodies, declared once (validation and the OpenAPI document derive from them) ---------
# Bodies and reasons are the declared types of server/peer/models.py: cleaned (line ends, control
# characters, surrounding space), then limited.

RejectReason = Annotated[
    Annotated[str, StringConstraints(min_length=1, max_length=REJECT_REASON_MAX)], CLEAN
]


@dataclass(frozen=True)
class TipDraft:
    """POST /api/v1/peer/tips: a tip about the page the learner is on."""

    __pydantic_config__ = CONFIG

    url: Annotated[
        str,
        Field(
            min_length=1,
            description="The page's absolute http(s) URL (as for suggest)",
            json_schema_extra={"maxLength": 8192},
        ),
    ]
    body: Annotated[TipBody, Field(description=f"Markdown, 1 to {TIP_MAX} characters")]
    title: Annotated[str, Field(max_length=500, description="The page's title")] = ""
    show_name: Annotated[
        Flag, Field(description="Show my name with the tip (otherwise 'A colleague')")
    ] = False


@dataclass(frozen=True)
class TipChange:
    """PUT /api/v1/peer/tips/{tip_id}: the author's new text (it goes back to moderation)."""

    __pydantic_config__ = CONFIG

    body: Annotated[TipBody, Field(description=f"Markdown, 1 to {TIP_MAX} characters")]
    show_name: Annotated[bool | None, Field(description="Omit to keep the choice")] = None


@dataclass(frozen=True)
class ModeratorEdit:
    """PUT /api/v1/admin/tips/{tip_id}: a moderator's edit (the status stays; audited)."""

    __pydantic_config__ = CONFIG

    body: Annotated[TipBody, Field(description=f"Markdown, 1 to {TIP_MAX} characters")]
    audience: Annotated[
        Tags | None,
        Field(
            description="Narrow who sees the tip (roles or groups), never wider than the "
            "page's audience; omit to keep it"
        ),
    ] = None


@dataclass(frozen=True)
class Rejection:
    """POST /api/v1/admin/tips/{tip_id}/reject: the reason, which the author reads."""

    __pydantic_config__ = CONFIG

    reason: Annotated[RejectReason, Field(description=f"1 to {REJECT_REASON_MAX} characters")]


@dataclass(frozen=True)
class TipReportBody:
    """POST /api/v1/peer/tips/{tip_id}/report: why (optional)."""

    __pydantic_config__ = CONFIG

    reason: Annotated[
        ReportReason, Field(description=f"At most {REPORT_REASON_MAX} characters")
    ] = ""


BODIES: tuple[type, ...] = (TipDraft, TipChange, ModeratorEdit, Rejection, TipReportBody)


def parse(cls: type[B], data: Any) -> B:
    """A request body checked against its declaration; a 422 naming every field otherwise. A
    null is the same as leaving the field out."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if v is not None}
    try:
        return validate(cls, data)
    except FieldErrors as exc:
        raise body_refused(exc.errors) from exc


# -- text on the way in ----------------------------------------------------------------------------

# Besides what the declarations drop (control characters): zero-width and bidi controls, which
# can make a tip read differently from what it is, and the BOM.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def visible_text(value: str, name: str) -> str:
    """Declared text without invisible formatting characters; still not empty."""
    text = _INVISIBLE.sub("", value).strip()
    if not text:
        raise ValidationFailed(f"'{name}' must not be empty.", fields=[name])
    return text


def now_iso() -> str:
    """UTC now to the millisecond: tips written in the same second still sort newest first."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- who may do what -------------------------------------------------------------------------------


def may_moderate(identity: Identity, app: App | None) -> bool:
    """Reviewers and admins (the permission table's `tip.moderate`) moderate every app's tips;
    an app's owners moderate that app's tips, whatever their other roles."""
    if may(identity.roles, "tip.moderate"):
        return True
    return app is not None and people.owns_app(identity, app)


def _refuse_moderation(what: str) -> Forbidden:
    return Forbidden(
        f"{what} needs the role {describe('tip.moderate')}, or to own the tip's app.",
        operation="tip.moderate",
    )


# -- the service -----------------------------------------------------------------------------------


class TipService:
    """The tips part of peer learning, over the root app's catalog, storage, peer store and
    renderer. Changes are one transaction each, with their audit entry (all or nothing)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.settings = app[keys.SETTINGS]
        self.library = app[keys.LIBRARY]
        self.store: PeerStore = app[keys.PEER]
        self.renderer = app[keys.RENDERER]

    @property
    def catalog(self) -> Catalog:
        catalog: Catalog = self.library.catalog
        return catalog

    def key_of(self, identity: Identity) -> str:
        return people.person_key(self.library.storage, identity)

    def _audit_tx(self, identity: Identity, action: str, tip: Tip, detail: dict[str, Any]) -> None:
        """Within a transaction: the audit entry of a change to `tip` (never its body)."""
        self.library.storage.audit_add_tx(
            (identity.issuer, identity.subject, identity.username or ""),
            action,
            "tip",
            tip.id,
            {"app": tip.app_id, "context": tip.context_id, **detail},
        )

    # -- the page ---------------------------------------------------------------------------
    def resolve(self, url: str, title: str) -> tuple[App, str]:
        """The app and best context of a page; 422 when no app recognises the URL."""
        place = self.catalog.resolve(url, title or None)
        if place.app is None:
            raise ValidationFailed(
                "This page is not a mapped app: tips belong to a page of a work app.",
                fields=["url"],
            )
        return place.app, place.contexts[0].id if place.contexts else ""

    # -- learners -----------------------------------------------------------------------------
    async def write(self, identity: Identity, draft: TipDraft) -> dict[str, Any]:
        body = visible_text(draft.body, "body")
        app, context_id = self.resolve(draft.url, draft.title)
        stamp = now_iso()
        tip = Tip(
            app_id=app.id,
            context_id=context_id,
            body=body,
            author_key=self.key_of(identity),
            author_name=people.display_name(identity) if draft.show_name else "",
            show_name=draft.show_name,
            status="pending",
            audience=tuple(people.audience_for(self.catalog, app.id, context_id)),
            created_at=stamp,
            updated_at=stamp,
        )
        tip = await self.store.add(tip)
        await self._notify_owners(app, tip)
        await activity.record(self.app, activity.SHARED, identity, tip)
        return await self.own_json(tip)

    async def mine(self, identity: Identity) -> list[dict[str, Any]]:
        tips = await self.store.list(
            Tip, author_key=self.key_of(identity), order_by=("-created_at",)
        )
        return [await self.own_json(t) for t in tips]

    def _own_tx(self, tx: PeerTx, key: str, tip_id: str) -> Tip:
        """The caller's own tip; someone else's is 404 (its existence is not disclosed)."""
        tip = tx.find(Tip, tip_id)
        if tip is None or tip.author_key != key:
            raise NotFound(f"You have no tip with id {tip_id!r}.")
        return tip

    async def change_own(
        self, identity: Identity, tip_id: str, change: TipChange
    ) -> dict[str, Any]:
        body = visible_text(change.body, "body")
        key = self.key_of(identity)

        def run(tx: PeerTx) -> tuple[Tip, str]:
            tip = self._own_tx(tx, key, tip_id)
            show = tip.show_name if change.show_name is None else change.show_name
            changed = dataclasses.replace(
                tip,
                body=body,
                show_name=show,
                author_name=people.display_name(identity) if show else "",
                status="pending",  # an edit goes through moderation again
                reject_reason="",
                endorsed_by="",  # the mentor endorsed other words
                endorsed_at="",
            )
            return tx.update(changed), tip.status

        tip, was = await self.store.transaction(run)
        app = self.catalog.apps.get(tip.app_id)
        if was != "pending" and app is not None:
            await self._notify_owners(app, tip, edited=True)
        return await self.own_json(tip)

    async def delete_own(self, identity: Identity, tip_id: str) -> None:
        key = self.key_of(identity)

        def run(tx: PeerTx) -> None:
            self._delete_tx(tx, identity, self._own_tx(tx, key, tip_id), "tip.delete_own")

        await self.store.transaction(run)

    async def report(
        self, identity: Identity, tags: frozenset[str] | None, tip_id: str, reason: str
    ) -> dict[str, Any]:
        """Report a tip the caller can see, once: hidden from them at once (page_tips leaves
        out what they reported), flagged in the queue (`report_count`, the reasons)."""
        text = _INVISIBLE.sub("", reason).strip()
        key = self.key_of(identity)

        def run(tx: PeerTx) -> int:
            tip = tx.find(Tip, tip_id)
            if tip is None or not self._visible(tip, tags):
                raise NotFound(f"No tip with id {tip_id!r} is shown to you.")
            tx.add(TipReport(tip_id=tip.id, reporter_key=key, reason=text))
            count = tx.count(TipReport, tip_id=tip.id)
            table = table_of(Tip)
            tx.execute(sa.update(table).where(table.c.id == tip.id).values(report_count=count))
            return count

        count = await self.store.transaction(run)
        return {"tip_id": tip_id, "reported": True, "report_count": count}

    async def endorse(self, identity: Identity, tip_id: str) -> dict[str, Any]:
        """A vetted, active mentor of the tip's app vouches for an approved tip."""
        mentor = people.mentor_of(identity, self.catalog)

        def run(tx: PeerTx) -> Tip:
            tip = tx.find(Tip, tip_id)
            if tip is None or tip.status != "approved":
                raise NotFound(f"No approved tip with id {tip_id!r}.")
            if mentor is None or tip.app_id not in mentor.apps:
                raise Forbidden(
                    "Only a vetted, active mentor of the tip's app endorses its tips.",
                    operation="tip.endorse",
                )
            tip = tx.update(dataclasses.replace(tip, endorsed_by=mentor.id, endorsed_at=now_iso()))
            self._audit_tx(identity, "tip.endorse", tip, {"mentor": mentor.id})
            return tip

        tip = await self.store.transaction(run)
        await activity.record(self.app, activity.ENDORSED, identity, tip)
        return {"tip_id": tip.id, "endorsed_by": self._endorsement(tip)}

    # -- the panel ----------------------------------------------------------------------------
    def _visible(self, tip: Tip, tags: frozenset[str] | None) -> bool:
        return tip.status == "approved" and people.visible_to(tip.audience, tags)

    async def page_tips(
        self, identity: Identity, app_id: str, context_id: str, tags: frozenset[str] | None
    ) -> list[dict[str, Any]]:
        """Approved tips of the page (its context, and the whole app's: context ""), that the
        caller may see and has not reported; endorsed first, then newest."""
        key = self.key_of(identity)
        reports = table_of(TipReport)
        reported = sa.select(reports.c.tip_id).where(reports.c.reporter_key == key)
        tips = await self.store.list(
            Tip,
            app_id=app_id,
            context_id=sorted({"", context_id}),
            status="approved",
            where=[table_of(Tip).c.id.not_in(reported)],
            order_by=("-created_at",),
        )
        shown = [t for t in tips if self._visible(t, tags)]
        shown.sort(key=lambda t: self._endorsement(t) is None)  # stable: newest within
        return [await self.panel_json(t, key) for t in shown]

    # -- moderation -----------------------------------------------------------------------------
    async def queue(
        self, identity: Identity, status: str = "", app_id: str = ""
    ) -> list[dict[str, Any]]:
        """The tips the caller moderates, newest first (at most QUEUE_LIMIT); reported ones
        flagged. Reviewers and admins see every app's, owners their apps' only, anyone else
        none (an empty queue: the route is open to every Inflow role for the owners' sake)."""
        if status and status not in STATUSES:
            raise ValidationFailed(
                f"'status' must be one of {', '.join(STATUSES)}.", fields=["status"]
            )
        apps = self.catalog.apps
        if app_id and app_id not in apps:
            raise ValidationFailed(f"No app with id {app_id!r}.", fields=["app"])
        filters: dict[str, Any] = {}
        if status:
            filters["status"] = status
        if app_id:
            filters["app_id"] = app_id
        if not may(identity.roles, "tip.moderate"):
            owned = [a.id for a in apps.values() if people.owns_app(identity, a)]
            if not owned:
                return []
            filters["app_id"] = [a for a in owned if not app_id or a == app_id]
        tips = await self.store.list(Tip, order_by=("-created_at",), limit=QUEUE_LIMIT, **filters)
        reasons = await self._report_reasons([t.id for t in tips if t.report_count])
        return [await self.queue_json(t, reasons.get(t.id, [])) for t in tips]

    def _moderated_tx(self, tx: PeerTx, identity: Identity, tip_id: str) -> Tip:
        tip = tx.find(Tip, tip_id)
        if tip is None:
            raise NotFound(f"No tip with id {tip_id!r}.")
        if not may_moderate(identity, self.catalog.apps.get(tip.app_id)):
            raise _refuse_moderation("Moderating this tip")
        return tip

    async def _moderate(
        self,
        identity: Identity,
        tip_id: str,
        action: str,
        change: Callable[[Tip], tuple[dict[str, Any], dict[str, Any]]],
    ) -> dict[str, Any]:
        """One moderation step: `change(tip)` gives the new field values and the audit detail;
        the tip is checked, changed and audited in one transaction."""

        def run(tx: PeerTx) -> Tip:
            tip = self._moderated_tx(tx, identity, tip_id)
            values, detail = change(tip)
            tip = tx.update(
                dataclasses.replace(
                    tip, moderated_by=_actor(identity), moderated_at=now_iso(), **values
                )
            )
            self._audit_tx(identity, action, tip, detail)
            return tip

        tip = await self.store.transaction(run)
        return await self.queue_json(tip, await self._reasons_of(tip))

    async def approve(self, identity: Identity, tip_id: str) -> dict[str, Any]:
        return await self._moderate(
            identity,
            tip_id,
            "tip.approve",
            lambda tip: (
                {"status": "approved", "reject_reason": ""},
                {"from": tip.status, "to": "approved"},
            ),
        )

    async def reject(self, identity: Identity, tip_id: str, reason: str) -> dict[str, Any]:
        text = visible_text(parse(Rejection, {"reason": reason}).reason, "reason")
        return await self._moderate(
            identity,
            tip_id,
            "tip.reject",
            lambda tip: (
                {"status": "rejected", "reject_reason": text},
                {"from": tip.status, "to": "rejected", "comment": text},
            ),
        )

    async def hide(self, identity: Identity, tip_id: str) -> dict[str, Any]:
        return await self._moderate(
            identity,
            tip_id,
            "tip.hide",
            lambda tip: ({"status": "hidden"}, {"from": tip.status, "to": "hidden"}),
        )

    async def edit(self, identity: Identity, tip_id: str, change: ModeratorEdit) -> dict[str, Any]:
        """A moderator's edit of the text (and a narrower audience); the status stays."""
        body = visible_text(change.body, "body")

        def values(tip: Tip) -> tuple[dict[str, Any], dict[str, Any]]:
            audience = tip.audience
            if change.audience is not None:
                audience = _narrowed(tip.audience, change.audience)
            changed = [
                name
                for name, value in (("body", body), ("audience", audience))
                if getattr(tip, name) != value
            ]
            return {"body": body, "audience": audience}, {"fields": changed}

        return await self._moderate(identity, tip_id, "tip.edit", values)

    async def delete(self, identity: Identity, tip_id: str) -> None:
        def run(tx: PeerTx) -> None:
            self._delete_tx(tx, identity, self._moderated_tx(tx, identity, tip_id), "tip.delete")

        await self.store.transaction(run)

    def _delete_tx(self, tx: PeerTx, identity: Identity, tip: Tip, action: str) -> None:
        tx.delete(Tip, tip.id)  # its reports go with it
        # Audited without the body: who, which tip, where, and what state it was in.
        detail = {"status": tip.status, "report_count": tip.report_count}
        self._audit_tx(identity, action, tip, detail)

    # -- JSON ------------------------------------------------------------------------------------
    async def _html(self, tip: Tip) -> str:
        html: str = await self.renderer.render(tip.body)
        return html

    def _endorsement(self, tip: Tip) -> dict[str, str] | None:
        """Who endorsed the tip, while they are a vetted, active mentor of its app."""
        if not tip.endorsed_by:
            return None
        mentor = next((m for m in self.catalog.mentors if m.id == tip.endorsed_by), None)
        if mentor is None or not mentor.listed or tip.app_id not in mentor.apps:
            return None
        return {"id": mentor.id, "name": mentor.name, "at": tip.endorsed_at}

    def _place(self, tip: Tip) -> dict[str, Any]:
        app = self.catalog.apps.get(tip.app_id)
        ctx = self.catalog.contexts.get(tip.context_id) if tip.context_id else None
        return {
            "app": {"id": tip.app_id, "name": app.name if app else tip.app_id},
            "context": {"id": ctx.id, "name": ctx.name} if ctx else None,
        }

    async def panel_json(self, tip: Tip, caller_key: str) -> dict[str, Any]:
        endorsed = self._endorsement(tip)
        name = tip.author_name if tip.show_name else ""
        return {
            "id": tip.id,
            "body_html": await self._html(tip),
            "author_name": name,
            "author": name or ANONYMOUS,
            "endorsed_by": endorsed,
            "endorsed": f"Endorsed by {endorsed['name']}" if endorsed else "",
            "context_id": tip.context_id,
            "created_at": tip.created_at,
            "updated_at": tip.updated_at,
            "mine": tip.author_key == caller_key,
        }

    async def own_json(self, tip: Tip) -> dict[str, Any]:
        return {
            "id": tip.id,
            **self._place(tip),
            "body": tip.body,
            "body_html": await self._html(tip),
            "show_name": tip.show_name,
            "author_name": tip.author_name if tip.show_name else "",
            "status": tip.status,
            "reject_reason": tip.reject_reason if tip.status == "rejected" else "",
            "endorsed_by": self._endorsement(tip),
            "created_at": tip.created_at,
            "updated_at": tip.updated_at,
        }

    async def queue_json(self, tip: Tip, reasons: list[dict[str, str]]) -> dict[str, Any]:
        return {
            **await self.own_json(tip),
            "audience": list(tip.audience),
            "report_count": tip.report_count,
            "reports": reasons,
            "moderated_by": tip.moderated_by,
            "moderated_at": tip.moderated_at,
        }

    # -- e-mail ----------------------------------------------------------------------------------
    async def _notify_owners(self, app: App, tip: Tip, *, edited: bool = False) -> None:
        """One e-mail to the app's owners per tip that (again) waits for moderation."""
        owners = list(app.owners)
        if not owners:
            return
        link = f"{self.settings.base_url.rstrip('/')}/admin/tips?" + urlencode(
            {"app": app.id, "status": "pending"}
        )
        ctx = self.catalog.contexts.get(tip.context_id) if tip.context_id else None
        where = f"{app.name}, {ctx.name}" if ctx else app.name
        what = "An edited tip" if edited else "A new tip"
        body = (
            f"{what} from a colleague waits for moderation ({where}):\n\n"
            f"{tip.body}\n\n"
            f"Approve, edit or reject it in the moderation queue:\n{link}\n"
        )
        await notify(self.app, owners, f"Tip to moderate: {where}", body, "tip.pending", tip.id)

    # -- reports ---------------------------------------------------------------------------------
    async def _report_reasons(self, tip_ids: list[str]) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {}
        if not tip_ids:
            return out
        reports = await self.store.list(TipReport, tip_id=tip_ids, order_by=("created_at",))
        for r in reports:
            out.setdefault(r.tip_id, []).append({"reason": r.reason, "at": r.created_at})
        return out

    async def _reasons_of(self, tip: Tip) -> list[dict[str, str]]:
        if not tip.report_count:
            return []
        return (await self._report_reasons([tip.id])).get(tip.id, [])


def _actor(identity: Identity) -> str:
    return identity.username or identity.subject


def _narrowed(current: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...]:
    """A moderator narrows a tip's audience, never widens it: a page restricted to some roles or
    groups keeps its tips within them."""
    clean = tuple(dict.fromkeys(a for a in wanted if a))
    if not people.narrowed(current, clean):
        raise ValidationFailed(
            f"The audience can only be narrowed, within {', '.join(current)}.",
            fields=["audience"],
        )
    return clean


async def page_tips(
    app: web.Application,
    identity: Identity,
    app_id: str,
    context_id: str,
    tags: frozenset[str] | None,
) -> list[dict[str, Any]]:
    """For the panel (server/peer/page.py): approved tips of the page visible to the caller,
    not reported by them, endorsed first, then newest. `tags` None: sees every audience."""
    return await TipService(app).page_tips(identity, app_id, context_id, tags)


__all__ = [
    "BODIES",
    "ModeratorEdit",
    "Rejection",
    "TipChange",
    "TipDraft",
    "TipReportBody",
    "TipService",
    "may_moderate",
    "page_tips",
    "parse",
    "visible_text",
]
