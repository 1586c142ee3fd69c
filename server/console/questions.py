"""The questions inbox of the console: mentors and owners see their apps' questions and answer
them, reviewers and admins see every app's and hide, authors turn accepted answers into draft aids.

Mentors may sign in to the console for these pages only (server/console/signin.py lets the
`question.read` operation in; every other page still asks `aid.read`).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from aiohttp import web

from auth.identity import Identity
from server import keys
from server.console import Denied
from server.console.common import render, see_other, session_of, text
from server.console.limits import limits_of
from server.console.session import ConsoleSession
from server.errors import InflowError, ValidationFailed
from server.models import SLUG_RE, FieldErrors, validate
from server.peer.models import ANSWER_MAX, QUESTION_STATUSES, Question
from server.peer.questions import PostAnswer, QuestionService
from server.permissions import may

routes = web.RouteTableDef()
ANSWER_LIMITS = limits_of(PostAnswer)  # the answer form's limits, from its declaration
BASE = "/admin/questions"
NOTICES = {
    "answered": "Answered: the asker sees it in their panel (no e-mail is sent to learners).",
    "hidden": "Hidden: nobody but moderators sees this question now.",
}
# Who may open the questions pages at all (the owners of an app also may, whatever their roles).
OPERATIONS = ("question.read", "question.to_aid", "tip.moderate")


def need_questions(request: web.Request, service: QuestionService) -> ConsoleSession:
    """The session, or a redirect to sign in; Denied unless mentor, reviewer, author, admin or
    an app's owner."""
    session = session_of(request)
    if session is None:
        target = request.path_qs if request.method == "GET" else BASE
        raise web.HTTPSeeOther(f"/admin/login?{urlencode({'next': target})}")
    identity = session.identity()
    if any(may(identity.roles, op) for op in OPERATIONS):
        return session
    if service.staff_apps(identity):
        return session
    raise Denied("The questions inbox is for mentors, app owners, authors, reviewers and admins.")


def _service(request: web.Request) -> QuestionService:
    return request.config_dict[keys.QUESTIONS]


def _filters(request: web.Request) -> dict[str, str]:
    status = request.query.get("status", "")[:20]
    app = request.query.get("app", "")[:64]
    return {
        "status": status if status in QUESTION_STATUSES else "",
        "app": app if SLUG_RE.match(app) else "",
    }


async def _visible(
    service: QuestionService, identity: Identity, filters: dict[str, str]
) -> list[Question]:
    """Staff see their apps' questions; authors (who answer none) the answered ones with an
    accepted answer, to turn into aids."""
    found = await service.inbox(identity, filters["status"], filters["app"])
    if service.staff_apps(identity) == set() and may(identity.roles, "question.to_aid"):
        found = [
            q
            for q in await service.inbox_for_authors(filters["app"])
            if not filters["status"] or q.status == filters["status"]
        ]
    return found


@routes.get(BASE)
async def questions_page(request: web.Request) -> web.Response:
    service = _service(request)
    session = need_questions(request, service)
    identity = session.identity()
    filters = _filters(request)
    questions = await _visible(service, identity, filters)
    catalog = service.catalog
    counts = {}
    for q in questions:
        counts[q.id] = len(await service.answers_of(q.id))
    return render(
        request,
        "questions.html",
        {
            "questions": questions,
            "answer_counts": counts,
            "app_names": {a.id: a.name for a in catalog.apps.values()},
            "context_names": {c.id: c.name for c in catalog.contexts.values()},
            "apps": sorted(catalog.apps.values(), key=lambda a: a.name.lower()),
            "statuses": QUESTION_STATUSES,
            "filters": filters,
            "notice": NOTICES.get(request.query.get("notice", "")),
        },
    )


async def _question_page(
    request: web.Request,
    *,
    error: str = "",
    typed: str = "",
    field_error: str = "",
    status: int = 200,
) -> web.Response:
    service = _service(request)
    session = need_questions(request, service)
    identity = session.identity()
    question = await service.get(request.match_info["id"])
    staff = service.staff_apps(identity)
    is_staff = staff is None or question.app_id in staff
    may_author = may(identity.roles, "question.to_aid") and bool(question.accepted_answer_id)
    if not (is_staff or may_author) or (
        question.status == "hidden" and not service.may_moderate(identity, question.app_id)
    ):
        raise Denied("This question is not one of your apps'.", 404)
    answers = await service.answers_of(question.id)
    view = await service.question_json(question, staff=True, answers=answers)
    return render(
        request,
        "question.html",
        {
            "q": view,
            "question": question,
            "may_answer": service.may_answer(identity, question) and question.status != "hidden",
            "may_hide": service.may_moderate(identity, question.app_id)
            and question.status != "hidden",
            "may_to_aid": may_author and not question.aid_id and question.status != "hidden",
            "typed": typed,
            "answer_max": ANSWER_MAX,
            "answer_limits": ANSWER_LIMITS,
            "answer_error": field_error,
            "error": error,
            "notice": NOTICES.get(request.query.get("notice", "")),
        },
        status,
    )


@routes.get(BASE + "/{id}")
async def question_page(request: web.Request) -> web.Response:
    return await _question_page(request)


@routes.post(BASE + "/{id}/answers")
async def answer_post(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    session = need_questions(request, service)
    form = await request.post()
    typed = text(form, "body")
    try:
        body = validate(PostAnswer, {"body": typed})
    except FieldErrors as exc:
        message = "; ".join(m for _, m in exc.errors)
        return await _question_page(
            request,
            error="The answer was not saved.",
            typed=typed,
            field_error=message,
            status=422,
        )
    question_id = request.match_info["id"]
    try:
        await service.answer(session.identity(), question_id, body)
    except InflowError as exc:
        return await _question_page(request, error=exc.detail, typed=typed, status=exc.status)
    raise see_other(f"{BASE}/{quote(question_id)}", "answered")


@routes.post(BASE + "/{id}/hide")
async def hide_post(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    session = need_questions(request, service)
    question_id = request.match_info["id"]
    await service.hide(session.identity(), question_id)
    raise see_other(f"{BASE}/{quote(question_id)}", "hidden")


@routes.post(BASE + "/{id}/draft-aid")
async def draft_aid_post(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    session = need_questions(request, service)
    question_id = request.match_info["id"]
    try:
        _, aid_id = await service.to_aid(session.identity(), question_id)
    except (InflowError, ValidationFailed) as exc:
        return await _question_page(request, error=exc.detail, status=exc.status)
    raise see_other(f"/admin/aids/{quote(aid_id)}", "created")


__all__ = ["routes"]
