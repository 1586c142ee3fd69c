"""Who may do what: one table, operation -> roles.

The route decorator (`server.security.requires_op`), the service's state-dependent checks, the
console (which actions it shows) and the OpenAPI generator (`x-required-roles` and the "Roles:"
sentence of each operation) all read this table, so they cannot disagree. `admin` passes every
operation. docs/admin.md ("Roles: who may do what") is the human-readable form of this table;
tests/test_permissions.py checks the two against each other and every route against the table.

Roles: `learner`, `author`, `reviewer` (an author flagged as publisher), `admin`, `mentor`, and the
API client roles `api` / `api-write`. `api-write` (the `inflow-cli` service account's client role)
adds exactly import and export; through the per-aid routes the service account is an author
because it also holds the realm role `author`.

This module imports nothing from the rest of `server/` so any layer (console, OpenAPI, service)
may read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

ADMIN_ROLE: Final = "admin"
# Any one of these makes a caller "signed in to Inflow" (the learner-facing operations).
INFLOW_ROLES: Final = frozenset(
    {"learner", "author", "admin", "mentor", "reviewer", "api", "api-write"}
)

_EDITORS = frozenset({"author", "reviewer"})
_ADMIN_ONLY = frozenset({ADMIN_ROLE})

# operation -> the roles that may perform it (`admin` is always added).
PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    # -- learner-facing API -------------------------------------------------------------------
    "suggest": INFLOW_ROLES,
    "search": INFLOW_ROLES,
    "aid.view": INFLOW_ROLES,  # one published aid, rendered (learner API)
    "rules.read": INFLOW_ROLES,  # the URL rules document for the extension
    "feedback": INFLOW_ROLES,
    "events": INFLOW_ROLES,
    # -- admin: reads -------------------------------------------------------------------------
    "app.read": _EDITORS,  # apps, contexts and mappings
    "aid.read": _EDITORS,  # aids, versions, diffs
    "mentor.read": _EDITORS,
    "rules.test": _EDITORS,
    "preview": _EDITORS,
    # -- admin: aids ----------------------------------------------------------------------------
    "aid.create": _EDITORS,
    "aid.update": _EDITORS,  # edit, roll back (a published aid also needs aid.publish)
    "aid.transition": _EDITORS,  # the route; publishing steps also need aid.publish
    # State-dependent, asked by the service: publish, unpublish, archive a published aid, edit a
    # published aid, create an aid as published or archived.
    "aid.publish": frozenset({"reviewer"}),
    "aid.delete": _ADMIN_ONLY,
    # -- admin: apps, contexts, mappings ------------------------------------------------------
    "app.write": _ADMIN_ONLY,
    "context.write": _ADMIN_ONLY,  # contexts and their pinned aids
    "mapping.write": _ADMIN_ONLY,
    # -- admin: mentors -----------------------------------------------------------------------
    "mentor.write": _ADMIN_ONLY,
    "mentor.vet": _ADMIN_ONLY,
    # -- admin: content format, audit, analytics ---------------------------------------------
    "import": frozenset({"api-write"}),
    "export": frozenset({"author", "reviewer", "api-write"}),
    "audit.read": _ADMIN_ONLY,
    "analytics.read": _ADMIN_ONLY,
    "usage.reset": _ADMIN_ONLY,  # forget an aid's usage signal (server/admin/usage.py)
}
# Bulk work (server/admin/bulk.py, mappings.py): the same roles as the single-item operations
# they repeat. Re-tagging many aids is editing them (re-mapping also asks mapping.write, and a
# published aid aid.publish, in the service); a CSV of URL-to-aid mappings writes contexts.
PERMISSIONS["aid.bulk"] = PERMISSIONS["aid.update"]
PERMISSIONS["mapping.import"] = PERMISSIONS["context.write"] | PERMISSIONS["mapping.write"]
# App templates (server/admin/templates_api.py): whoever may create apps may list the templates
# and create an app from one (the service asks app.write again when it saves it).
PERMISSIONS["app_template.read"] = PERMISSIONS["app.write"]
PERMISSIONS["app_template.apply"] = PERMISSIONS["app.write"]

# -- peer learning (server/peer, docs/peer.md) -------------------------------------------------
# Derived from the operations they resemble, so the two never drift apart. App owners (the
# token's e-mail in an app's `owners`) moderate that app's tips and answer its questions whatever
# their roles: a state check in the service (server/peer/people.py owns_app), not a role here.
_MENTORS = frozenset({"mentor"})
# learners read the peer part of a page and write tips and questions, like suggest and feedback
PERMISSIONS["peer.read"] = PERMISSIONS["suggest"]
PERMISSIONS["tip.write"] = PERMISSIONS["feedback"]
PERMISSIONS["tip.report"] = PERMISSIONS["feedback"]
PERMISSIONS["question.ask"] = PERMISSIONS["feedback"]
# reviewers moderate tips as they publish aids (owners: the service's check)
PERMISSIONS["tip.moderate"] = PERMISSIONS["aid.publish"]
# what a vetted mentor does (the service also asks for their vetted, active Mentor record)
PERMISSIONS["tip.endorse"] = _MENTORS
PERMISSIONS["question.answer"] = _MENTORS
PERMISSIONS["aid.recommend"] = _MENTORS
PERMISSIONS["aid.flag"] = _MENTORS
PERMISSIONS["mentee.read"] = _MENTORS
# the question queues: those who answer, and those who moderate
PERMISSIONS["question.read"] = PERMISSIONS["question.answer"] | PERMISSIONS["tip.moderate"]
# an accepted answer becomes a draft aid: whoever may create aids
PERMISSIONS["question.to_aid"] = PERMISSIONS["aid.create"]
# pairings of mentors and learners: whoever manages mentors
PERMISSIONS["pairing.read"] = PERMISSIONS["mentor.write"]
PERMISSIONS["pairing.write"] = PERMISSIONS["mentor.write"]
# flags on aids go to those who read and fix aids
PERMISSIONS["flag.read"] = PERMISSIONS["aid.read"]
PERMISSIONS["flag.resolve"] = PERMISSIONS["aid.update"]
# the peer loop's figures (server/peer/stats.py): admins, and the reviewers who moderate it
# (mentors are named to admins only; the service decides that)
PERMISSIONS["peer.analytics"] = PERMISSIONS["analytics.read"] | PERMISSIONS["tip.moderate"]
# the e-mail outbox (server/console/outbox.py): addresses and errors, like the audit log
PERMISSIONS["outbox.read"] = PERMISSIONS["audit.read"]
PERMISSIONS["outbox.retry"] = PERMISSIONS["audit.read"]

# -- content that stays current (issue 13: docs/sources.md, health.md, queue.md) ---------------
# Derived like the peer block. Sources make aids: those who read aids see them; adding, changing
# and syncing one reaches out to other systems on a schedule, like configuring apps (admins).
PERMISSIONS["source.read"] = PERMISSIONS["aid.read"]
PERMISSIONS["source.write"] = PERMISSIONS["app.write"]
PERMISSIONS["source.sync"] = PERMISSIONS["source.write"]
# link and rule health: those who read aids (app owners see their apps' health: the service's
# check, server/peer/people.py owns_app); a check now is work on aids
PERMISSIONS["health.read"] = PERMISSIONS["aid.read"]
PERMISSIONS["health.check"] = PERMISSIONS["aid.update"]
# the authoring queue: read by those who read aids; assigned and triaged by reviewers (an author
# may move an item assigned to them: the service's check)
PERMISSIONS["queue.read"] = PERMISSIONS["aid.read"]
PERMISSIONS["queue.write"] = PERMISSIONS["aid.publish"]
PERMISSIONS["queue.refresh"] = PERMISSIONS["queue.write"]
# a video's transcript is part of the aid
PERMISSIONS["transcript.write"] = PERMISSIONS["aid.update"]

# -- learning paths (issue 14: docs/paths.md) -----------------------------------------------------
# Derived like the blocks above. L&D curates and assigns paths: those who publish aids. Reports
# are for L&D and for managers (the realm role `manager`, which opens nothing else of the
# console); learners follow the paths assigned to them, like feedback.
MANAGER_ROLE: Final = "manager"
PERMISSIONS["path.read"] = PERMISSIONS["aid.read"]
PERMISSIONS["path.write"] = PERMISSIONS["aid.publish"]
PERMISSIONS["path.assign"] = PERMISSIONS["path.write"]
PERMISSIONS["path.report"] = PERMISSIONS["path.write"] | {MANAGER_ROLE}
PERMISSIONS["path.learn"] = PERMISSIONS["feedback"]


class UnknownOperation(KeyError):
    """A name that is not in PERMISSIONS: a typo must fail loudly, never allow or deny silently."""


def roles_for(operation: str) -> frozenset[str]:
    """Every role that may perform `operation`, `admin` included."""
    try:
        return PERMISSIONS[operation] | {ADMIN_ROLE}
    except KeyError:
        raise UnknownOperation(operation) from None


def may(identity_roles: Iterable[str], operation: str) -> bool:
    """Does a caller holding `identity_roles` pass `operation`? (`admin` always does.)"""
    return not roles_for(operation).isdisjoint(identity_roles)


def describe(operation: str) -> str:
    """The roles in words, for problem details and the OpenAPI description."""
    roles = roles_for(operation)
    if roles == INFLOW_ROLES:
        return "any Inflow role"
    return " or ".join(sorted(roles))


__all__ = [
    "ADMIN_ROLE",
    "INFLOW_ROLES",
    "MANAGER_ROLE",
    "PERMISSIONS",
    "UnknownOperation",
    "describe",
    "may",
    "roles_for",
]
