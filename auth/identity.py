"""Who is calling: the identity the backend derives from a verified access token."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """A verified caller. Identify it by `key` = (issuer, subject), never by username.

    `roles` holds the realm roles and the client roles of the API client (`inflow-api`: `api`,
    `api-write`); `groups` holds the group names from the `groups` claim (`sales`, `managers`).
    """

    issuer: str
    subject: str
    username: str | None
    roles: frozenset[str]
    groups: frozenset[str]
    client_id: str | None
    expires_at: float
    # the `email` and `name` claims, when the token has them (peer learning: an app's owners are
    # known by e-mail; a learner's name is shown only when they agree to it)
    email: str | None = None
    name: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.issuer, self.subject)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def audience_tags(self) -> frozenset[str]:
        """What an aid's `audience` list is matched against: roles and groups together."""
        return self.roles | self.groups
