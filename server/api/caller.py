"""The one seam where the caller's identity enters request handling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from server import keys

if TYPE_CHECKING:
    from auth.identity import Identity


def identity_of(request: web.Request) -> Identity | None:
    return request.get(keys.IDENTITY)


def audience_of(request: web.Request) -> frozenset[str] | None:
    """The audience tags the caller carries; None means 'sees every audience' (admins)."""
    ident = identity_of(request)
    if ident is None:
        return frozenset()
    if "admin" in ident.roles:
        return None
    return frozenset(ident.audience_tags)


def user_key(request: web.Request) -> str:
    ident = identity_of(request)
    return f"{ident.issuer}|{ident.subject}" if ident else ""
