"""Pairings in the HTTP API (server/peer/pairings.py holds the operations).

Admin (pairing.read / pairing.write):
    GET    /api/v1/admin/pairings?app=&mentor=&learner=&ended=   current pairings (ended too)
    POST   /api/v1/admin/pairings                {learner_username, mentor_id, app_id, days|ends_on}
    GET    /api/v1/admin/pairings/{id}
    DELETE /api/v1/admin/pairings/{id}
    GET    /api/v1/admin/pairing-rules
    POST   /api/v1/admin/pairing-rules           a PairingRule
    GET|PUT|DELETE /api/v1/admin/pairing-rules/{id}
    POST   /api/v1/admin/pairing-rules/{id}/run  the run's summary
Mentor (mentee.read): GET /api/v1/peer/mentees
Learner (peer.read): POST /api/v1/peer/mentors/{id}/contact   an analytics event, no content
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import keys
from server.admin.api import caller, resource_body
from server.admin.openapi import _op, _param
from server.api.validation import known_query
from server.catalog import Catalog
from server.errors import InflowError, ValidationFailed
from server.models import SLUG_RE, adapter, dump
from server.peer.directory import DirectoryUnavailable, UnknownGroup
from server.peer.limits import check_peer_rate
from server.peer.models import PairingRule
from server.peer.pairings import pairing_json, pairings_ctx, service
from server.peer.people import mentor_of
from server.responses import json_response
from server.schemas import REF
from server.security import requires_op

routes = web.RouteTableDef()
ADMIN = "/api/v1/admin"
PEER = "/api/v1/peer"
TRUE, FALSE = frozenset({"1", "true", "yes"}), frozenset({"", "0", "false", "no"})


class GroupUnreadable(InflowError):
    """Keycloak could not tell who is in the rule's group (down, refused)."""

    status = 502
    title = "Bad gateway"
    slug = "directory-unavailable"


class GroupUnknown(InflowError):
    """The rule names a group Keycloak does not have: the rule needs fixing, not Keycloak."""

    status = 422
    title = "Unknown group"
    slug = "unknown-group"


def group_problem(exc: DirectoryUnavailable) -> InflowError:
    """The problem a rule run that could not read its group answers with."""
    if isinstance(exc, UnknownGroup):
        return GroupUnknown(f"{exc} Fix the rule's group (a name or a path such as /new-hires).")
    return GroupUnreadable(f"The group could not be read: {exc}")


def _query(request: web.Request, allowed: set[str]) -> dict[str, str]:
    return {k: v.strip() for k, v in known_query(request, allowed).items()}


def _catalog(request: web.Request) -> Catalog:
    return request.app[keys.LIBRARY].catalog


@routes.get(f"{ADMIN}/pairings")
@requires_op("pairing.read")
async def list_pairings(request: web.Request) -> web.Response:
    q = _query(request, {"app", "mentor", "learner", "ended"})
    for name in ("app", "mentor"):
        if q.get(name) and not SLUG_RE.match(q[name]):
            raise ValidationFailed(f"'{name}' must be an id.", fields=[name])
    ended = q.get("ended", "").lower()
    if ended not in TRUE | FALSE:
        raise ValidationFailed("'ended' must be true or false.", fields=["ended"])
    found = await service(request.app).list_pairings(
        app_id=q.get("app", ""),
        mentor_id=q.get("mentor", ""),
        learner=q.get("learner", "")[:255],
        ended=ended in TRUE,
    )
    catalog = _catalog(request)
    return json_response({"pairings": [pairing_json(p, catalog) for p in found]}, no_store=True)


@routes.post(f"{ADMIN}/pairings")
@requires_op("pairing.write")
async def create_pairing(request: web.Request) -> web.Response:
    data = await resource_body(request)
    pairing = await service(request.app).create_pairing(caller(request), data)
    return json_response(pairing_json(pairing, _catalog(request)), 201, no_store=True)


@routes.get(f"{ADMIN}/pairings/{{pairing_id}}")
@requires_op("pairing.read")
async def get_pairing(request: web.Request) -> web.Response:
    pairing = await service(request.app).get_pairing(request.match_info["pairing_id"])
    return json_response(pairing_json(pairing, _catalog(request)), no_store=True)


@routes.delete(f"{ADMIN}/pairings/{{pairing_id}}")
@requires_op("pairing.write")
async def delete_pairing(request: web.Request) -> web.Response:
    await service(request.app).end_pairing(caller(request), request.match_info["pairing_id"])
    return web.Response(status=204)


@routes.get(f"{ADMIN}/pairing-rules")
@requires_op("pairing.read")
async def list_rules(request: web.Request) -> web.Response:
    rules = await service(request.app).list_rules()
    return json_response({"rules": [dump(r) for r in rules]}, no_store=True)


@routes.post(f"{ADMIN}/pairing-rules")
@requires_op("pairing.write")
async def create_rule(request: web.Request) -> web.Response:
    data = await resource_body(request)
    rule, _ = await service(request.app).save_rule(caller(request), data)
    return json_response(dump(rule), 201, no_store=True)


@routes.get(f"{ADMIN}/pairing-rules/{{rule_id}}")
@requires_op("pairing.read")
async def get_rule(request: web.Request) -> web.Response:
    rule = await service(request.app).get_rule(request.match_info["rule_id"])
    return json_response(dump(rule), no_store=True)


@routes.put(f"{ADMIN}/pairing-rules/{{rule_id}}")
@requires_op("pairing.write")
async def put_rule(request: web.Request) -> web.Response:
    data = await resource_body(request)
    rule, _ = await service(request.app).save_rule(
        caller(request), data, request.match_info["rule_id"]
    )
    return json_response(dump(rule), no_store=True)


@routes.delete(f"{ADMIN}/pairing-rules/{{rule_id}}")
@requires_op("pairing.write")
async def delete_rule(request: web.Request) -> web.Response:
    await service(request.app).delete_rule(caller(request), request.match_info["rule_id"])
    return web.Response(status=204)


@routes.post(f"{ADMIN}/pairing-rules/{{rule_id}}/run")
@requires_op("pairing.write")
async def run_rule(request: web.Request) -> web.Response:
    try:
        summary = await service(request.app).run_rule(
            caller(request), request.match_info["rule_id"]
        )
    except DirectoryUnavailable as exc:
        raise group_problem(exc) from exc
    return json_response(summary, no_store=True)


@routes.get(f"{PEER}/mentees")
@requires_op("mentee.read")
async def mentees(request: web.Request) -> web.Response:
    _query(request, set())
    mentor = mentor_of(caller(request), _catalog(request))
    if mentor is None:  # the role without a vetted, active Mentor resource linked to the account
        return json_response({"mentor": None, "mentees": []}, no_store=True)
    items = await service(request.app).mentees(mentor)
    return json_response(
        {"mentor": {"id": mentor.id, "name": mentor.name}, "mentees": items}, no_store=True
    )


@routes.post(f"{PEER}/mentors/{{mentor_id}}/contact")
@requires_op("peer.read")
async def contact(request: web.Request) -> web.Response:
    check_peer_rate(request)  # a write: counted against the person's peer writes
    await service(request.app).contact(caller(request), request.match_info["mentor_id"])
    return web.Response(status=204)


def pairing_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py)."""
    rule = adapter(PairingRule).json_schema(mode="validation", ref_template=REF)
    rule.pop("$defs", None)
    pid, rid, mid = [_param("pairing_id")], [_param("rule_id")], [_param("mentor_id")]
    pairing_body = {
        "type": "object",
        "required": ["learner_username", "mentor_id", "app_id"],
        "properties": {
            "learner_username": {"type": "string", "maxLength": 255},
            "mentor_id": {"type": "string", "maxLength": 64},
            "app_id": {"type": "string", "maxLength": 64},
            "days": {"type": "integer", "minimum": 1, "maximum": 365},
            "ends_on": {"type": "string", "format": "date"},
        },
        "additionalProperties": False,
    }
    listing = [
        _param("app", "query", False),
        _param("mentor", "query", False),
        _param("learner", "query", False),
        _param("ended", "query", False),
    ]
    no_content = {"description": "Done"}
    peer_tag = {"tags": ["peer"]}
    return {
        f"{ADMIN}/pairings": {
            "get": _op(
                "Current pairings (ended ones with ended=true)", "pairing.read", params=listing
            ),
            "post": _op(
                "Pair a learner with a vetted mentor of an app",
                "pairing.write",
                body=pairing_body,
                ok="201",
                errors=(400, 401, 403, 409, 422),
            ),
        },
        f"{ADMIN}/pairings/{{pairing_id}}": {
            "get": _op("One pairing", "pairing.read", params=pid),
            "delete": _op(
                "End (delete) a pairing", "pairing.write", params=pid, ok="204", response=no_content
            ),
        },
        f"{ADMIN}/pairing-rules": {
            "get": _op("Pairing rules", "pairing.read"),
            "post": _op(
                "Create a pairing rule",
                "pairing.write",
                body=rule,
                ok="201",
                errors=(400, 401, 403, 409, 422),
            ),
        },
        f"{ADMIN}/pairing-rules/{{rule_id}}": {
            "get": _op("One pairing rule", "pairing.read", params=rid),
            "put": _op("Replace a pairing rule", "pairing.write", params=rid, body=rule),
            "delete": _op(
                "Delete a pairing rule (its pairings run on)",
                "pairing.write",
                params=rid,
                ok="204",
                response=no_content,
            ),
        },
        f"{ADMIN}/pairing-rules/{{rule_id}}/run": {
            "post": _op(
                "Run a pairing rule now: who got which mentor, who was left out and why",
                "pairing.write",
                params=rid,
                errors=(401, 403, 404, 422, 502),
            ),
        },
        f"{PEER}/mentees": {
            "get": {
                **_op(
                    "Your current mentees and their open questions",
                    "mentee.read",
                    errors=(401, 403),
                ),
                **peer_tag,
            },
        },
        f"{PEER}/mentors/{{mentor_id}}/contact": {
            "post": {
                **_op(
                    "Record that you contacted a mentor (an analytics event; no content)",
                    "peer.read",
                    params=mid,
                    ok="204",
                    response=no_content,
                    errors=(401, 403, 404, 429),
                ),
                **peer_tag,
            },
        },
    }


def setup_pairings(app: web.Application) -> None:
    """Routes, and the service with its scheduled runs (after library_ctx: it reads the library)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(pairings_ctx)


__all__ = ["pairing_paths", "routes", "setup_pairings"]
