"""Sign-in to the console: Keycloak authorization code flow with PKCE for `inflow-admin`.

python-keycloak's `KeycloakOpenID` builds the authorization URL, redeems the code, refreshes and
ends sessions through its asynchronous `a_*` methods (httpx), on the event loop: no thread pool.
The client is closed by the console's cleanup context.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import quote

from server.settings import Settings


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return verifier, challenge


class AdminOidc:
    """Created with the app; the Keycloak client itself is made on first use (sign-in)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redirect_uri = f"{settings.base_url.rstrip('/')}/admin/callback"
        self._kc: Any = None

    @property
    def _client(self) -> Any:
        if self._kc is None:
            from keycloak import KeycloakOpenID  # python-keycloak

            auth = self.settings.auth
            self._kc = KeycloakOpenID(
                server_url=auth.server_url,
                realm_name=auth.realm,
                client_id=auth.admin_client_id,
                client_secret_key=auth.admin_client_secret,
                timeout=10,
            )
        return self._kc

    async def auth_url(self, state: str, nonce: str, challenge: str) -> str:
        url: str = await self._client.a_auth_url(
            redirect_uri=quote(self.redirect_uri, safe=""),
            scope="openid",
            state=state,
            nonce=nonce,
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        return url

    async def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        tokens: dict[str, Any] = await self._client.a_token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )
        return tokens

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        tokens: dict[str, Any] = await self._client.a_refresh_token(refresh_token)
        return tokens

    async def logout(self, refresh_token: str) -> None:
        """Ends the Keycloak session (back channel), so the next sign-in asks for a password."""
        await self._client.a_logout(refresh_token)

    async def aclose(self) -> None:
        if self._kc is not None:
            await self._kc.connection.aclose()  # the httpx client of the a_* methods
            self._kc.connection._s.close()  # the requests session it also opens, unused
            self._kc = None
