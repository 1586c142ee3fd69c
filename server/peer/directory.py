"""Who is in a Keycloak group: the directory the pairing rules read (server/peer/pairings.py).

python-keycloak's asynchronous admin client (`KeycloakAdmin.a_*`, httpx, on the event loop: no
thread pool), logged in as the service account of the confidential `inflow-admin` client
(client credentials; auth/realm-inflow.json gives that account the realm-management roles
`view-users` and `query-groups`, nothing more). The client is made on first use and closed by
the pairings' cleanup context.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from auth.settings import AuthSettings

MAX_MEMBERS = 5000  # members read from one group by one rule run


class DirectoryUnavailable(Exception):
    """Keycloak could not be asked (down, refused the service account)."""


class UnknownGroup(DirectoryUnavailable):
    """Keycloak answered, and has no such group: the rule names a group that does not exist."""


@dataclass(frozen=True)
class Member:
    """One member of a group, as the rule run needs it."""

    username: str
    subject: str = ""
    email: str = ""
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def start_date(self, name: str) -> dt.date | None:
        """The date held by attribute `name` (its first value, ISO `YYYY-MM-DD`), if any."""
        values = self.attributes.get(name) or ()
        for value in values:
            try:
                return dt.date.fromisoformat(str(value).strip()[:10])
            except ValueError:
                return None
        return None


class Directory(Protocol):
    async def group_members(self, group: str) -> list[Member]: ...

    async def aclose(self) -> None: ...


class KeycloakDirectory:
    """Group members through the Keycloak admin REST API."""

    def __init__(self, auth: AuthSettings, timeout: int = 10) -> None:
        self.auth = auth
        self.timeout = timeout
        self._kc: Any = None

    @property
    def _client(self) -> Any:
        if self._kc is None:
            from keycloak import KeycloakAdmin, KeycloakOpenIDConnection  # python-keycloak

            connection = KeycloakOpenIDConnection(
                server_url=self.auth.server_url,
                realm_name=self.auth.realm,
                client_id=self.auth.admin_client_id,
                client_secret_key=self.auth.admin_client_secret,
                timeout=self.timeout,
            )
            self._kc = KeycloakAdmin(connection=connection)
        return self._kc

    async def group_members(self, group: str) -> list[Member]:
        """Every enabled member of the top-level or nested group `group` (a name or a path)."""
        from keycloak.exceptions import KeycloakError

        path = group if group.startswith("/") else f"/{group}"
        kc = self._client
        try:
            if kc.connection.token is None:
                await kc.connection.a_get_token()
            found = await kc.a_get_group_by_path(path)
            users = await kc.a_get_group_members(
                found["id"], {"briefRepresentation": False, "first": 0, "max": MAX_MEMBERS}
            )
        except KeycloakError as exc:
            code = getattr(exc, "response_code", None)
            if code == 404:
                raise UnknownGroup(f"Keycloak has no group {group!r}.") from exc
            raise DirectoryUnavailable(f"Keycloak refused the request ({code}).") from exc
        except Exception as exc:  # httpx's transport errors, an unexpected answer
            raise DirectoryUnavailable(f"Keycloak did not answer ({type(exc).__name__}).") from exc
        return [
            Member(
                username=str(u.get("username", "")).lower(),
                subject=str(u.get("id", "")),
                email=str(u.get("email") or ""),
                attributes={k: tuple(v) for k, v in (u.get("attributes") or {}).items()},
            )
            for u in users
            if u.get("enabled", True) and u.get("username")
        ]

    async def aclose(self) -> None:
        kc, self._kc = self._kc, None
        if kc is None:
            return
        for conn in (kc.connection, getattr(kc.connection, "_keycloak_openid", None)):
            inner = getattr(conn, "connection", conn)  # a KeycloakOpenID holds its connection
            if inner is None:
                continue
            await inner.aclose()  # the httpx client of the a_* methods
            session = getattr(inner, "_s", None)
            if session is not None:
                session.close()  # the requests session it also opens, unused


__all__ = ["Directory", "DirectoryUnavailable", "KeycloakDirectory", "Member", "UnknownGroup"]
