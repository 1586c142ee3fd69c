"""Mentors flag an aid as wrong or outdated; its owner hears of it; authors, reviewers resolve it.

- A mentor caller (server/peer/people.py `mentor_of`) flags a published aid they may see, with a
  kind (`wrong` | `outdated`) and a comment. One open flag per (mentor, aid): a second is a 409.
- When the aid's `owner` is an e-mail address, the owner gets an e-mail through the outbox
  (server/peer/mail.py `notify`), with a link to the aid in the console. An owner that is a team
  name (not an address) is not mailed: the flag waits in the console.
- Authors and reviewers (`flag.read`) see the flags (the console's Flags page, the admin API, and a
  mark on the aid's page); `flag.resolve` closes one, recorded in the audit log
  (`aid.flag_resolved`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field

from auth.identity import Identity
from server import keys
from server.admin.common import saved_by, who
from server.api.validation import known_query
from server.catalog import Catalog
from server.db import peer_tables
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import CONFIG, EMAIL_RE, SLUG_RE
from server.peer.models import FLAG_KINDS, FLAG_STATUSES, AidFlag, FlagComment, FlagKind, new_id
from server.peer.people import mentor_of
from server.peer.store import PeerStore, PeerTx
from server.storage import now_iso

log = logging.getLogger("inflow.peer.flags")

KIND_WORDS = {"wrong": "wrong", "outdated": "outdated"}


@dataclass(frozen=True)
class FlagRequest:
    """`POST /api/v1/peer/aids/{id}/flag`: what is wrong with the aid."""

    __pydantic_config__ = CONFIG

    kind: FlagKind
    comment: Annotated[FlagComment, Field(min_length=1)]


def flag_json(flag: AidFlag, catalog: Catalog) -> dict[str, Any]:
    """A flag as the API and the console show it: the flag's fields, with the aid's title and
    owner and the mentor's name."""
    meta = catalog.aids.get(flag.aid_id)
    mentor = next((m for m in catalog.mentors if m.id == flag.mentor_id), None)
    return {
        "id": flag.id,
        "aid_id": flag.aid_id,
        "aid_title": meta.title if meta else flag.aid_id,
        "aid_owner": meta.owner if meta else "",
        "mentor_id": flag.mentor_id,
        "mentor_name": mentor.name if mentor else flag.mentor_id,
        "kind": flag.kind,
        "comment": flag.comment,
        "status": flag.status,
        "resolved_by": flag.resolved_by,
        "resolved_at": flag.resolved_at or None,
        "created_at": flag.created_at,
    }


def _mail(flag: AidFlag, title: str, mentor: str, base_url: str) -> tuple[str, str]:
    subject = f'Inflow: {mentor} flagged your aid "{title}" as {KIND_WORDS[flag.kind]}'
    link = f"{base_url.rstrip('/')}/admin/aids/{flag.aid_id}"
    body = (
        f'{mentor}, a vetted mentor, flagged the job aid "{title}" as {KIND_WORDS[flag.kind]}.\n'
        f"\n"
        f"What they say:\n"
        f"\n"
        f"{flag.comment}\n"
        f"\n"
        f"Open the aid in the Inflow console to fix it, then resolve the flag:\n"
        f"{link}\n"
        f"\n"
        f"Every open flag: {base_url.rstrip('/')}/admin/aid-flags\n"
        f"\n"
        f"You get this e-mail because you are the aid's owner.\n"
    )
    return subject, body


async def flag_aid(
    config: Mapping[Any, Any],
    identity: Identity,
    tags: frozenset[str] | None,
    aid_id: str,
    body: FlagRequest,
) -> dict[str, Any]:
    """A mentor flags a published aid they may see; the owner is mailed when an address."""
    catalog: Catalog = config[keys.LIBRARY].catalog
    mentor = mentor_of(identity, catalog)
    if mentor is None:
        raise Forbidden(
            "Flagging aids is for vetted mentors: your account is not linked to a vetted, active "
            "mentor.",
            operation="aid.flag",
        )
    meta = catalog.aids.get(aid_id)
    if meta is None or meta.status != "published" or not meta.visible_to(tags):
        raise NotFound(f"No aid with id {aid_id!r} is available to you.")
    store: PeerStore = config[keys.PEER]
    mine = await store.list(AidFlag, aid_id=aid_id, mentor_id=mentor.id, status="open")
    if mine:
        raise Conflict(
            "You flagged this aid already and the flag is still open: the owner has it.",
            flag_id=mine[0].id,
        )
    flag = AidFlag(
        id=new_id(),
        aid_id=aid_id,
        mentor_id=mentor.id,
        kind=body.kind,
        comment=body.comment,
        status="open",
        created_at=now_iso(),
    )
    await store.add(flag)
    owner = meta.owner.strip()
    if EMAIL_RE.match(owner):
        from server.peer.mail import notify

        subject, text = _mail(flag, meta.title, mentor.name, config[keys.SETTINGS].base_url)
        await notify(config, [owner], subject, text, "aid_flag", flag.id)
    return flag_json(flag, catalog)


def validate_filters(query: Mapping[str, str]) -> dict[str, str]:
    """`status` (open | resolved | all; default open), `aid`, `app`, `mine` (1: only aids whose
    owner is the caller's e-mail address): 422 on anything else."""
    known_query(query, {"status", "aid", "app", "mine"})
    status = query.get("status", "").strip() or "open"
    if status not in (*FLAG_STATUSES, "all"):
        raise ValidationFailed(
            f"'status' must be one of {', '.join((*FLAG_STATUSES, 'all'))}.", fields=["status"]
        )
    out = {"status": status}
    for name in ("aid", "app"):
        value = query.get(name, "").strip()
        if value and not SLUG_RE.match(value):
            raise ValidationFailed(f"'{name}' must be an {name} id.", fields=[name])
        if value:
            out[name] = value
    mine = query.get("mine", "").strip().lower()
    if mine not in {"", "0", "1", "true", "false"}:
        raise ValidationFailed("'mine' must be 1 or 0.", fields=["mine"])
    if mine in {"1", "true"}:
        out["mine"] = "1"
    return out


async def list_flags(
    config: Mapping[Any, Any], filters: Mapping[str, str], email: str | None = None
) -> list[AidFlag]:
    """Flags by the filters (validate_filters), open ones first, newest first. `mine` keeps the
    aids whose owner is `email` (the caller's `email` claim; none without one)."""
    store: PeerStore = config[keys.PEER]
    where: dict[str, Any] = {}
    if filters.get("status", "open") != "all":
        where["status"] = filters.get("status", "open")
    if filters.get("aid"):
        where["aid_id"] = filters["aid"]
    flags = await store.list(AidFlag, **where)
    if filters.get("app"):
        aids = config[keys.LIBRARY].catalog.aids
        flags = [f for f in flags if f.aid_id in aids and filters["app"] in aids[f.aid_id].apps]
    if filters.get("mine"):
        aids = config[keys.LIBRARY].catalog.aids
        me = (email or "").strip().lower()
        flags = [f for f in flags if me and f.aid_id in aids and aids[f.aid_id].owner.lower() == me]
    flags.sort(key=lambda f: f.created_at, reverse=True)
    flags.sort(key=lambda f: f.status != "open")
    return flags


async def open_flags(config: Mapping[Any, Any], aid_id: str) -> list[dict[str, Any]]:
    """The open flags of one aid, as the console's aid page marks them."""
    flags = await list_flags(config, {"status": "open", "aid": aid_id})
    catalog = config[keys.LIBRARY].catalog
    return [flag_json(f, catalog) for f in flags]


async def resolve_flag(
    config: Mapping[Any, Any], identity: Identity, flag_id: str
) -> dict[str, Any]:
    """Close a flag (who and when kept on it), audited as `aid.flag_resolved` in the same
    transaction. A flag resolved already is a 409."""
    store: PeerStore = config[keys.PEER]
    storage = config[keys.LIBRARY].storage
    flag = await store.find(AidFlag, flag_id)
    if flag is None:
        raise NotFound(f"No flag with id {flag_id!r}.")
    if flag.status != "open":
        raise Conflict(f"This flag was resolved already by {flag.resolved_by or 'someone'}.")
    done = replace(flag, status="resolved", resolved_by=saved_by(identity), resolved_at=now_iso())

    def op(tx: PeerTx) -> None:
        f = peer_tables.aid_flags.c
        resolved = tx.execute(
            sa.update(peer_tables.aid_flags)
            .where(f.id == flag.id, f.status == "open")
            .values(status=done.status, resolved_by=done.resolved_by, resolved_at=done.resolved_at)
        )
        if not resolved.rowcount:
            raise Conflict("Someone resolved this flag a moment ago.")
        storage.audit_add_tx(
            who(identity),
            "aid.flag_resolved",
            "aid",
            flag.aid_id,
            {"flag": flag.id, "kind": flag.kind, "comment": flag.comment[:200]},
        )

    await store.transaction(op)
    return flag_json(done, config[keys.LIBRARY].catalog)


__all__ = [
    "FLAG_KINDS",
    "FlagRequest",
    "flag_aid",
    "flag_json",
    "list_flags",
    "open_flags",
    "resolve_flag",
    "validate_filters",
]
