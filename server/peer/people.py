"""Who a caller is to peer learning: their person key and display name, whether they are a
mentor or an app's owner, and who may see what they write (spec of issue 12).

- **Person key**: the analytics pseudonym of (issuer, subject) (`Storage.pseudonymize`): stable,
  not reversible. Peer tables store it, never a subject or an e-mail address of a learner.
- **Display name**: the token's `name`, else `preferred_username`; stored only when the person
  ticked "show my name" (the callers decide; "" otherwise, and the panel says "A colleague").
- **Mentor**: realm role `mentor` AND a vetted, active Mentor (server/models.py) linked to the
  account: by `subject` when the mentor record has one (a username can be given to someone
  else later), else by `username`.
- **Owner** of an app: the token's `email` (case-insensitive) is one of the app's `owners`.
- **Audience** of a tip or question, computed when it is written: when every published aid pinned
  to the page's context is restricted, the union of their audiences; otherwise `()` (everyone
  who may use Inflow). So what a learner writes is never seen wider than the page's aids.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web

from server import keys
from server.peer.models import NAME_MAX, clean_text

if TYPE_CHECKING:
    from auth.identity import Identity
    from server.catalog import Catalog
    from server.models import App, Mentor
    from server.storage import Storage

MENTOR_ROLE = "mentor"


def _storage(where: web.Request | web.Application | Storage) -> Storage:
    if isinstance(where, web.Request):
        return where.config_dict[keys.LIBRARY].storage
    if isinstance(where, web.Application):
        return where[keys.LIBRARY].storage
    return where


def person_key(where: web.Request | web.Application | Storage, identity: Identity) -> str:
    """The person key of `identity` (the analytics pseudonym), from a request, the app or the
    storage. The key is loaded once when the peer store opens, so this does no I/O."""
    return _storage(where).pseudonymize(identity.issuer, identity.subject)


def display_name(identity: Identity) -> str:
    """The name to show when the person agreed to show it: `name`, else the username."""
    name = clean_text(identity.name or identity.username or "")
    return " ".join(str(name).split())[:NAME_MAX]


def mentor_of(identity: Identity | None, catalog: Catalog) -> Mentor | None:
    """The vetted, active mentor the caller is, if they hold the `mentor` role and a mentor
    record is linked to their account; else None."""
    if identity is None or MENTOR_ROLE not in identity.roles:
        return None
    username = (identity.username or "").lower()
    for mentor in catalog.mentors:
        if not mentor.listed:
            continue
        if mentor.subject:
            if mentor.subject == identity.subject:
                return mentor
        elif username and mentor.username.lower() == username:
            return mentor
    return None


def owns_app(identity: Identity | None, app: App | None) -> bool:
    """Is the caller one of the app's owners (their token's e-mail in `app.owners`)?"""
    if identity is None or app is None or not identity.email:
        return False
    email = identity.email.strip().lower()
    return any(owner.lower() == email for owner in app.owners)


def owned_apps(identity: Identity | None, catalog: Catalog) -> frozenset[str]:
    """Ids of the apps the caller owns."""
    if identity is None or not identity.email:
        return frozenset()
    return frozenset(a.id for a in catalog.apps.values() if owns_app(identity, a))


def visible_to(audience: Iterable[str], tags: frozenset[str] | None) -> bool:
    """May a caller with these audience tags see something written for `audience`?
    `tags` None sees everything (admins, as for aids); an empty audience is everyone's."""
    wanted = tuple(audience)
    return tags is None or not wanted or not tags.isdisjoint(wanted)


def audience_for(catalog: Catalog, app_id: str, context_id: str) -> tuple[str, ...]:
    """The audience of something written on this page (see the module docstring): the union of
    the audiences of the published aids pinned to the context when every one is restricted,
    else `()`. The whole app (`context_id` "") and a page with no published pinned aid: `()`."""
    context = catalog.contexts.get(context_id) if context_id else None
    if context is None or context.app_id != app_id:
        return ()
    union: dict[str, None] = {}
    seen = False
    for aid_id in context.aids:
        meta = catalog.aids.get(aid_id)
        if meta is None or meta.status != "published":
            continue
        if not meta.audience:
            return ()
        seen = True
        union.update(dict.fromkeys(meta.audience))
    return tuple(sorted(union)) if seen else ()


def narrowed(current: Iterable[str], proposed: Iterable[str]) -> bool:
    """Is `proposed` no wider than `current` (what a moderator may set)? Everyone (`()`) is the
    widest; a restricted audience may only lose tags."""
    now, new = frozenset(current), frozenset(proposed)
    if not now:
        return True
    return bool(new) and new <= now


__all__ = [
    "MENTOR_ROLE",
    "audience_for",
    "display_name",
    "mentor_of",
    "narrowed",
    "owned_apps",
    "owns_app",
    "person_key",
    "visible_to",
]
