"""How the backend trusts tokens: the auth settings, owned by the auth layer (server/settings.py
reads them from the environment or a TOML file like every other setting). See docs/sso.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AuthSettings:
    """How the backend trusts tokens. See docs/sso.md."""

    # Keycloak base URL the *backend* uses to reach Keycloak (may be an internal hostname).
    server_url: str = "http://127.0.0.1:8081"
    realm: str = "inflow"
    # The exact `iss` the backend expects. Empty: derived as f"{public_url}/realms/{realm}",
    # where public_url is the URL browsers use (Keycloak's `hostname`), which may differ from
    # server_url behind a proxy.
    issuer: str = ""
    public_url: str = ""
    audience: str = "inflow-api"
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_seconds: int = 30
    # JWKS cache: how long keys are fresh, the minimum gap between refetches on an unknown kid,
    # and how long stale keys are kept while Keycloak is unreachable.
    jwks_ttl_seconds: int = 300
    jwks_cooldown_seconds: int = 30
    jwks_stale_seconds: int = 3600
    # A JWKS file instead of fetching (air-gapped deployments, and tests that forge tokens).
    jwks_file: Path | None = None
    extension_client_id: str = "inflow-extension"
    admin_client_id: str = "inflow-admin"
    admin_client_secret: str = "inflow-admin-dev-secret"  # noqa: S105 - dev default, override in prod
    cli_client_id: str = "inflow-cli"
    # Further clients whose tokens (`azp`) are accepted besides the three above. The default
    # `inflow-test` exists only in the dev realm (password grant for tests); production sets
    # INFLOW_AUTH_EXTRA_CLIENT_IDS to "" (empty) or to its own machine clients.
    extra_client_ids: tuple[str, ...] = ("inflow-test",)

    @property
    def allowed_client_ids(self) -> frozenset[str]:
        """Every `azp` the backend accepts (empty entries ignored)."""
        ids = (self.extension_client_id, self.admin_client_id, self.cli_client_id)
        return frozenset(c for c in (*ids, *self.extra_client_ids) if c)

    @property
    def expected_issuer(self) -> str:
        if self.issuer:
            return self.issuer
        base = (self.public_url or self.server_url).rstrip("/")
        return f"{base}/realms/{self.realm}"

    @property
    def jwks_url(self) -> str:
        return f"{self.server_url.rstrip('/')}/realms/{self.realm}/protocol/openid-connect/certs"
