"""HTTP routes of questions (server/peer/questions.py): the learner's under /api/v1/peer, the
moderators' under /api/v1/admin, their OpenAPI entries (derived from the declarations), and
`setup_questions(app)`, which mounts them and opens the question index (rebuilt from the database
at start-up, off the event loop).

Answering, the inbox and hiding are open to any Inflow role at the route: app owners answer and
hide their apps' questions whatever their other roles, so the service decides (a mentor of the
question's app, an owner, a reviewer or admin) and refuses everyone else with 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from aiohttp import web

from auth.identity import Identity
from server import keys
from server.admin.common import field_errors
from server.admin.openapi import declared_schema
from server.api.caller import audience_of, identity_of
from server.api.validation import known_query, page_url
from server.body import read_json
from server.errors import Forbidden, ValidationFailed
from server.follow import is_postgresql
from server.models import SLUG_RE, FieldErrors, validate
from server.peer.limits import check_peer_rate
from server.peer.models import QUESTION_STATUSES, Answer, Question
from server.peer.question_index import QuestionIndex
from server.peer.questions import (
    AcceptAnswer,
    AskQuestion,
    PostAnswer,
    QuestionService,
    SimilarRequest,
)
from server.responses import json_response
from server.security import requires_op

B = TypeVar("B")
log = logging.getLogger(__name__)
routes = web.RouteTableDef()
P = "/api/v1/peer"
A = "/api/v1/admin"


def caller(request: web.Request) -> Identity:
    identity = identity_of(request)
    if identity is None:  # the middleware lets no anonymous caller this far
        raise Forbidden("Sign in first.")
    return identity


def _rate(request: web.Request) -> None:
    """The per-person write rate of peer learning (server/peer/limits.py): 429 when used up."""
    check_peer_rate(request)


async def _body(request: web.Request, cls: type[B]) -> B:
    data = await read_json(request)  # the app's body limit (413), depth, lone surrogates
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    try:
        return validate(cls, {k: v for k, v in data.items() if v is not None})
    except FieldErrors as exc:
        raise field_errors(exc) from exc


def _json(data: Any, status: int = 200) -> web.Response:
    return json_response(data, status, no_store=True)


def _filters(request: web.Request) -> tuple[str, str]:
    known_query(request, {"status", "app"})
    status = request.query.get("status", "").strip()
    if status and status not in QUESTION_STATUSES:
        raise ValidationFailed(
            f"'status' must be one of {', '.join(QUESTION_STATUSES)}.", fields=["status"]
        )
    app_id = request.query.get("app", "").strip()
    if app_id and not SLUG_RE.match(app_id):
        raise ValidationFailed("'app' must be an app id.", fields=["app"])
    return status, app_id


def service(request: web.Request) -> QuestionService:
    return request.config_dict[keys.QUESTIONS]


# -- the learner ---------------------------------------------------------------------------------


@routes.post(f"{P}/questions")
@requires_op("question.ask")
async def ask(request: web.Request) -> web.Response:
    body = await _body(request, AskQuestion)
    page_url(body.url, request.app[keys.SETTINGS].max_url_bytes)
    _rate(request)
    svc = service(request)
    question, _ = await svc.ask(caller(request), body)
    return _json(await svc.question_json(question, answers=[]), 201)


@routes.get(f"{P}/questions/mine")
@requires_op("peer.read")
async def mine(request: web.Request) -> web.Response:
    svc = service(request)
    questions = await svc.mine(caller(request))
    return _json(
        {
            "questions": [await svc.question_json(q) for q in questions],
            "unread": sum(1 for q in questions if q.unread and q.status != "hidden"),
        }
    )


@routes.post(f"{P}/questions/similar")
@requires_op("peer.read")
async def similar(request: web.Request) -> web.Response:
    body = await _body(request, SimilarRequest)
    page_url(body.url, request.app[keys.SETTINGS].max_url_bytes)
    return _json(await service(request).similar(caller(request), body, audience_of(request)))


@routes.post(f"{P}/questions/{{question_id}}/read")
@requires_op("peer.read")
async def mark_read(request: web.Request) -> web.Response:
    svc = service(request)
    question = await svc.mark_read(caller(request), request.match_info["question_id"])
    return _json(await svc.question_json(question))


@routes.post(f"{P}/questions/{{question_id}}/accept")
@requires_op("peer.read")
async def accept(request: web.Request) -> web.Response:
    body = await _body(request, AcceptAnswer)
    svc = service(request)
    question = await svc.accept(caller(request), request.match_info["question_id"], body.answer_id)
    return _json(await svc.question_json(question))


@routes.delete(f"{P}/questions/{{question_id}}")
@requires_op("peer.read")
async def delete(request: web.Request) -> web.Response:
    await service(request).delete_own(caller(request), request.match_info["question_id"])
    return web.Response(status=204)


# -- mentors and owners --------------------------------------------------------------------------


@routes.post(f"{P}/questions/{{question_id}}/answers")
@requires_op("peer.read")
async def answer(request: web.Request) -> web.Response:
    body = await _body(request, PostAnswer)
    svc = service(request)
    question = await svc.get(request.match_info["question_id"])
    svc.answerer(caller(request), question)  # 403 before the rate counts
    _rate(request)
    stored = await svc.answer(caller(request), question.id, body)
    return _json(await svc.answer_json(stored), 201)


@routes.get(f"{P}/inbox")
@requires_op("peer.read")
async def inbox(request: web.Request) -> web.Response:
    status, app_id = _filters(request)
    svc = service(request)
    questions = await svc.inbox(caller(request), status, app_id)
    return _json({"questions": [await svc.question_json(q, staff=True) for q in questions]})


# -- moderators and authors ----------------------------------------------------------------------


@routes.get(f"{A}/questions")
@requires_op("question.read")
async def admin_list(request: web.Request) -> web.Response:
    status, app_id = _filters(request)
    svc = service(request)
    questions = await svc.inbox(caller(request), status, app_id)
    return _json({"questions": [await svc.question_json(q, staff=True) for q in questions]})


@routes.post(f"{A}/questions/{{question_id}}/hide")
@requires_op("peer.read")
async def hide(request: web.Request) -> web.Response:
    svc = service(request)
    question = await svc.hide(caller(request), request.match_info["question_id"])
    return _json(await svc.question_json(question, staff=True))


@routes.post(f"{A}/questions/{{question_id}}/draft-aid")
@requires_op("question.to_aid")
async def draft_aid(request: web.Request) -> web.Response:
    svc = service(request)
    question, aid_id = await svc.to_aid(caller(request), request.match_info["question_id"])
    return _json(
        {
            "aid_id": aid_id,
            "aid_url": f"{A}/aids/{aid_id}",
            "question": await svc.question_json(question, staff=True),
        },
        201,
    )


# -- wiring --------------------------------------------------------------------------------------


async def question_index_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the peer store's): the question index, rebuilt from the database."""
    settings = app[keys.SETTINGS]
    index = QuestionIndex(settings.data_dir / "questions-index")
    service = QuestionService(app, index)
    follow: asyncio.Task[None] | None = None
    try:
        await index.open(await service.index_docs())  # kept when it agrees, else rebuilt
        app[keys.QUESTIONS] = service
        if is_postgresql(settings.database_url):  # other nodes accept, hide and delete too
            follow = asyncio.create_task(
                _follow(service, max(1.0, settings.follow_poll_seconds)), name="questions-follow"
            )
        yield
    finally:
        if follow is not None:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
        await index.close()


async def _follow(service: QuestionService, every: float) -> None:
    """Every `every` seconds, write to this node's question index what the database holds and
    the index does not (only the differences: server/peer/question_index.py `sync`)."""
    while True:
        await asyncio.sleep(every)
        try:
            await service.index.sync(await service.index_docs())
        except Exception:  # the database away: next time
            log.warning("syncing the question index with the database failed", exc_info=True)


def setup_questions(app: web.Application) -> None:
    app.cleanup_ctx.append(question_index_ctx)
    app.router.add_routes(routes)


# -- OpenAPI (merged into server/openapi.py's document) -------------------------------------------

PROBLEM = {"$ref": "#/components/responses/Problem"}
QID = {"name": "question_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _answer_schema() -> dict[str, Any]:
    schema = declared_schema(Answer)
    props = schema.setdefault("properties", {})
    props.pop("author_key", None)
    props["body_html"] = {"type": "string", "description": "The body as sanitised HTML"}
    schema["required"] = sorted(set(schema.get("required", [])) - {"author_key"} | {"body_html"})
    return schema


def _question_schema(staff: bool = False) -> dict[str, Any]:
    """A question as served: its declaration without the asker's key, app and context as
    {id, name}, `body_html`, its answers; staff also get `aid_id` and the console `link`."""
    schema = declared_schema(Question)
    props = schema.setdefault("properties", {})
    props.pop("asker_key", None)
    if not staff:
        props.pop("aid_id", None)
    named = {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    }
    props["app"] = named
    props["context"] = {"oneOf": [named, {"type": "null"}]}
    props["body_html"] = {"type": "string"}
    props["answers"] = {"type": "array", "items": _answer_schema()}
    if staff:
        props["link"] = {"type": "string", "description": "The question in the console"}
    schema["required"] = ["id", "app", "context", "body", "body_html", "status", "answers"]
    return schema


def _answered_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["question_id", "question", "question_html", "answer", "same_page"],
        "properties": {
            "question_id": {"type": "string"},
            "question": {"type": "string"},
            "question_html": {"type": "string"},
            "context": {"type": ["object", "null"]},
            "same_page": {"type": "boolean"},
            "answer": {"oneOf": [_answer_schema(), {"type": "null"}]},
            "answered_at": {"type": "string"},
        },
    }


def _ok(schema: dict[str, Any], desc: str = "OK") -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    operation: str,
    *,
    tag: str,
    body: type | None = None,
    ok: str = "200",
    response: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (401, 403, 404, 422),
    note: str = "",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": note,
        "tags": [tag],
        "x-operation": operation,
        "parameters": list(params or []),
        "responses": {ok: response or {"description": "No content"}},
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": declared_schema(body, "validation")}},
        }
    op["responses"].update({str(c): PROBLEM for c in sorted(set(errors))})
    return op


def question_paths() -> dict[str, Any]:
    question = _question_schema()
    staff = _question_schema(staff=True)
    filters = [
        {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(QUESTION_STATUSES)},
        },
        {"name": "app", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    staff_list = _ok(
        {
            "type": "object",
            "required": ["questions"],
            "properties": {"questions": {"type": "array", "items": staff}},
        }
    )
    by_service = (
        " The service decides: a vetted mentor of the question's app (role mentor), an owner "
        "of the app (the token's e-mail among its owners), a reviewer or an admin."
    )
    return {
        f"{P}/questions": {
            "post": _op(
                "Ask a question about the page (its app's mentors and owners are e-mailed)",
                "question.ask",
                tag="peer",
                body=AskQuestion,
                ok="201",
                response=_ok(question, "Asked"),
                errors=(400, 401, 403, 413, 422, 429),
                note="A page that is no mapped app is a 422.",
            )
        },
        f"{P}/questions/mine": {
            "get": _op(
                "The caller's questions with their answers and the unread badge",
                "peer.read",
                tag="peer",
                response=_ok(
                    {
                        "type": "object",
                        "required": ["questions", "unread"],
                        "properties": {
                            "questions": {"type": "array", "items": question},
                            "unread": {"type": "integer"},
                        },
                    }
                ),
                errors=(401, 403),
            )
        },
        f"{P}/questions/similar": {
            "post": _op(
                "Accepted answers to similar questions on the page's app (this page first)",
                "peer.read",
                tag="peer",
                body=SimilarRequest,
                response=_ok(
                    {
                        "type": "object",
                        "required": ["app", "answers"],
                        "properties": {
                            "app": {"type": "object"},
                            "context": {"type": ["object", "null"]},
                            "answers": {"type": "array", "items": _answered_schema()},
                        },
                    }
                ),
                errors=(400, 401, 403, 413, 422),
            )
        },
        f"{P}/questions/{{question_id}}": {
            "delete": _op(
                "Delete one's own question (and its answers; audited)",
                "peer.read",
                tag="peer",
                ok="204",
                params=[QID],
            )
        },
        f"{P}/questions/{{question_id}}/read": {
            "post": _op(
                "Mark one's own question's answers as read (clears the badge)",
                "peer.read",
                tag="peer",
                params=[QID],
                response=_ok(question),
            )
        },
        f"{P}/questions/{{question_id}}/accept": {
            "post": _op(
                "Accept one answer to one's own question (it becomes findable by others)",
                "peer.read",
                tag="peer",
                params=[QID],
                body=AcceptAnswer,
                response=_ok(question),
                errors=(401, 403, 404, 409, 422),
            )
        },
        f"{P}/questions/{{question_id}}/answers": {
            "post": _op(
                "Answer a question (mentors of its app, its app's owners)",
                "peer.read",
                tag="peer",
                params=[QID],
                body=PostAnswer,
                ok="201",
                response=_ok(_answer_schema(), "Answered"),
                errors=(400, 401, 403, 404, 409, 413, 422, 429),
                note=by_service,
            )
        },
        f"{P}/inbox": {
            "get": _op(
                "Questions of the apps the caller answers or moderates, open ones first",
                "peer.read",
                tag="peer",
                params=filters,
                response=staff_list,
                errors=(401, 403, 422),
                note=by_service,
            )
        },
        f"{A}/questions": {
            "get": _op(
                "Questions (mentors: of their apps; reviewers and admins: all)",
                "question.read",
                tag="admin",
                params=filters,
                response=staff_list,
                errors=(401, 403, 422),
            )
        },
        f"{A}/questions/{{question_id}}/hide": {
            "post": _op(
                "Hide a question at once (reviewers, admins, the app's owners; audited)",
                "peer.read",
                tag="admin",
                params=[QID],
                response=_ok(staff),
                note=by_service,
            )
        },
        f"{A}/questions/{{question_id}}/draft-aid": {
            "post": _op(
                "Turn the accepted answer into a draft aid (once; a second time is a 409 "
                "naming the aid)",
                "question.to_aid",
                tag="admin",
                params=[QID],
                ok="201",
                response=_ok(
                    {
                        "type": "object",
                        "required": ["aid_id", "question"],
                        "properties": {
                            "aid_id": {"type": "string"},
                            "aid_url": {"type": "string"},
                            "question": staff,
                        },
                    },
                    "Created",
                ),
                errors=(401, 403, 404, 409, 422),
            )
        },
    }


__all__ = ["question_paths", "routes", "setup_questions"]
