"""Questions answered by the right people (issue 12): a learner asks about the page they are on;
the app's vetted mentors whose topics fit the page (all its mentors when none fit) and the app's
owners get one e-mail each with a link to the question in the console; they answer from the
console or their own panel; the asker sees the answers (a badge until read) and accepts one;
accepted answers are indexed (server/peer/question_index.py) so other learners on the app see
them before asking again; an author turns an accepted answer into a draft aid in one step.

Who may do what: server/permissions.py (`question.ask`, `question.answer`, `question.read`,
`question.to_aid`), plus the checks that depend on the question: a mentor answers questions of
their apps, an app's owners (its `owners` e-mail addresses) answer and hide its questions whatever
their other roles, reviewers and admins hide any. Answers are never e-mailed to learners.

Privacy (docs/peer.md): a person is their person key (the analytics pseudonym); the asker's name
is stored only when they tick "show my name"; answers name their mentor or owner.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from auth.identity import Identity
from index.analysis import FastAnalyzer
from server import keys
from server.admin.common import slugify, who
from server.admin.service import AdminService
from server.catalog import Catalog
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import CONFIG, EMAIL_RE, App, Flag, Mentor
from server.peer import people
from server.peer.models import (
    QUESTION_MAX,
    QUESTION_STATUSES,
    Answer,
    AnswerBody,
    Question,
    QuestionBody,
    new_id,
)
from server.peer.question_index import QuestionDoc, QuestionIndex
from server.peer.store import PeerTx
from server.permissions import describe, may, roles_for

log = logging.getLogger("inflow.peer.questions")

MAX_LIST = 200  # questions in one inbox or listing
PAGE_ANSWERS = 5  # accepted answers shown on a page
SIMILAR_LIMIT = 5
_STEMMER = FastAnalyzer(stem=True)  # the aids' stems (index/analysis.py), no compounds


# -- request bodies (declared once: validation and the OpenAPI schemas derive from them) ---------


@dataclass(frozen=True, kw_only=True)
class AskQuestion:
    """`POST /api/v1/peer/questions`: the page (as suggest sends it) and the question."""

    __pydantic_config__ = CONFIG

    url: Annotated[str, Field(min_length=1, max_length=8192)]
    title: Annotated[str, Field(max_length=1000)] = ""
    body: QuestionBody
    show_name: Flag = False


@dataclass(frozen=True, kw_only=True)
class PostAnswer:
    """`POST /api/v1/peer/questions/{question_id}/answers`."""

    __pydantic_config__ = CONFIG

    body: AnswerBody


@dataclass(frozen=True, kw_only=True)
class AcceptAnswer:
    """`POST /api/v1/peer/questions/{question_id}/accept`."""

    __pydantic_config__ = CONFIG

    answer_id: Annotated[str, Field(min_length=1, max_length=64)]


@dataclass(frozen=True, kw_only=True)
class SimilarRequest:
    """`POST /api/v1/peer/questions/similar`: the page and what the learner is typing."""

    __pydantic_config__ = CONFIG

    url: Annotated[str, Field(min_length=1, max_length=8192)]
    title: Annotated[str, Field(max_length=1000)] = ""
    q: Annotated[str, Field(max_length=QUESTION_MAX)] = ""


REQUEST_BODIES: tuple[type, ...] = (AskQuestion, PostAnswer, AcceptAnswer, SimilarRequest)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stems(texts: Iterable[str]) -> frozenset[str]:
    return frozenset(t.text for text in texts if text for t in _STEMMER(text))


def _fits(topic: str, page: frozenset[str]) -> bool:
    words = _stems([topic])
    return bool(words) and words <= page


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Recipients:
    """Who a new question reaches: mentors (those whose topics fit, or all of the app's) and
    the app's owners; `emails` is one address each, mentors first."""

    mentors: tuple[Mentor, ...]
    owners: tuple[str, ...]
    topical: bool  # True when the mentors are those whose topics fit the page

    @property
    def emails(self) -> list[str]:
        out: dict[str, str] = {}
        for m in self.mentors:
            if EMAIL_RE.match(m.contact):
                out.setdefault(m.contact.lower(), m.contact)
        for o in self.owners:
            out.setdefault(o.lower(), o)
        return list(out.values())


def route_question(
    catalog: Catalog, question: Question, page_title: str = "", asker: Identity | None = None
) -> Recipients:
    """The vetted, active mentors of the question's app whose topics fit the page (all words of
    a topic, stemmed, among the page context's name, the page title and the question's words),
    or all of them when none fits; and the app's owners. A mentor or owner who asks is left out
    (the others are asked instead)."""
    app = catalog.apps.get(question.app_id)
    if app is None:
        return Recipients((), (), False)
    ctx = catalog.contexts.get(question.context_id) if question.context_id else None
    page = _stems([ctx.name if ctx else "", page_title, question.body])
    me = people.mentor_of(asker, catalog)
    mentors = [
        m for m in catalog.app_mentors.get(app.id, ()) if m.listed and (me is None or m.id != me.id)
    ]
    fitting = [m for m in mentors if any(_fits(t, page) for t in m.topics)]
    email = ((asker.email if asker else None) or "").strip().lower()
    owners = tuple(o for o in app.owners if o.lower() != email)
    return Recipients(tuple(fitting or mentors), owners, bool(fitting))


class QuestionService:
    """The questions of one running app (its store, catalog, index and renderer): made once at
    start-up (`app[keys.QUESTIONS]`, server/peer/questions_api.py)."""

    def __init__(self, app: web.Application, index: QuestionIndex) -> None:
        self.app = app
        self.settings = app[keys.SETTINGS]
        self.library = app[keys.LIBRARY]
        self.store = app[keys.PEER]
        self.index = index
        self.renderer = app[keys.RENDERER]

    @property
    def catalog(self) -> Catalog:
        return self.library.catalog

    def key_of(self, identity: Identity) -> str:
        return people.person_key(self.library.storage, identity)

    # -- reading ---------------------------------------------------------------------------------
    async def get(self, question_id: str) -> Question:
        try:
            question: Question = await self.store.get(Question, question_id)
        except NotFound:
            raise NotFound(f"No question with id {question_id!r}.") from None
        return question

    async def answers_of(self, question_id: str) -> list[Answer]:
        answers: list[Answer] = await self.store.list(Answer, question_id=question_id)
        return sorted(answers, key=lambda a: (a.created_at, a.id))

    def link(self, question_id: str) -> str:
        return f"{self.settings.base_url.rstrip('/')}/admin/questions/{question_id}"

    async def answer_json(self, answer: Answer) -> dict[str, Any]:
        return {
            "id": answer.id,
            "question_id": answer.question_id,
            "body": answer.body,
            "body_html": await self.renderer.render(answer.body),
            "author_name": answer.author_name,
            "mentor_id": answer.mentor_id,
            "accepted": answer.accepted,
            "created_at": answer.created_at,
        }

    async def question_json(
        self, question: Question, *, staff: bool = False, answers: list[Answer] | None = None
    ) -> dict[str, Any]:
        """What a question is served as: never its asker's key; `aid_id` for staff only."""
        app = self.catalog.apps.get(question.app_id)
        ctx = self.catalog.contexts.get(question.context_id) if question.context_id else None
        if answers is None:
            answers = await self.answers_of(question.id)
        out: dict[str, Any] = {
            "id": question.id,
            "app_id": question.app_id,
            "context_id": question.context_id,
            "app": {"id": question.app_id, "name": app.name if app else question.app_id},
            "context": {"id": ctx.id, "name": ctx.name} if ctx else None,
            "body": question.body,
            "body_html": await self.renderer.render(question.body),
            "asker_name": question.asker_name,
            "show_name": question.show_name,
            "status": question.status,
            "audience": list(question.audience),
            "accepted_answer_id": question.accepted_answer_id,
            "unread": question.unread,
            "first_answer_at": question.first_answer_at,
            "created_at": question.created_at,
            "updated_at": question.updated_at,
            "answers": [await self.answer_json(a) for a in answers],
        }
        if staff:
            out["aid_id"] = question.aid_id
            out["link"] = self.link(question.id)
        return out

    # -- who may answer and moderate -------------------------------------------------------------
    def answerer(self, identity: Identity, question: Question) -> Mentor | None:
        """The mentor answering (`None` for an app owner); Forbidden for anyone else."""
        app = self.catalog.apps.get(question.app_id)
        if may(identity.roles, "question.answer"):
            mentor = people.mentor_of(identity, self.catalog)
            if mentor is not None and question.app_id in mentor.apps:
                return mentor
        if app is not None and people.owns_app(identity, app):
            return None
        raise Forbidden(
            "Answering this question needs a vetted mentor of its app (role "
            f"{describe('question.answer')} and a mentor record) or one of the app's owners.",
            required_roles=sorted(roles_for("question.answer")),
            operation="question.answer",
        )

    def may_answer(self, identity: Identity, question: Question) -> bool:
        try:
            self.answerer(identity, question)
        except Forbidden:
            return False
        return True

    def may_moderate(self, identity: Identity, app_id: str) -> bool:
        """Reviewers and admins moderate every app's questions, owners their apps'."""
        if may(identity.roles, "tip.moderate"):
            return True
        app = self.catalog.apps.get(app_id)
        return app is not None and people.owns_app(identity, app)

    def staff_apps(self, identity: Identity) -> set[str] | None:
        """The apps whose questions the caller answers or moderates; None: every app."""
        if may(identity.roles, "tip.moderate"):
            return None
        apps: set[str] = set()
        if may(identity.roles, "question.answer"):
            mentor = people.mentor_of(identity, self.catalog)
            if mentor is not None:
                apps.update(mentor.apps)
        apps.update(people.owned_apps(identity, self.catalog))
        return apps

    # -- the learner -----------------------------------------------------------------------------
    async def ask(self, identity: Identity, body: AskQuestion) -> tuple[Question, Recipients]:
        place = self.catalog.resolve(body.url, body.title or None)
        if place.app is None:
            raise ValidationFailed(
                "This page is not a mapped app: questions are asked about an app's page.",
                fields=["url"],
            )
        context_id = place.contexts[0].id if place.contexts else ""
        stamp = now_iso()
        question = Question(
            id=new_id(),
            app_id=place.app.id,
            context_id=context_id,
            body=body.body,
            asker_key=self.key_of(identity),
            asker_name=people.display_name(identity) if body.show_name else "",
            show_name=body.show_name,
            status="open",
            audience=tuple(people.audience_for(self.catalog, place.app.id, context_id)),
            created_at=stamp,
            updated_at=stamp,
        )
        await self.store.add(question)
        recipients = route_question(self.catalog, question, body.title, asker=identity)
        await self._notify(place.app, question, recipients, body.title)
        await _record(self.app, "asked", identity, question)
        return question, recipients

    async def _notify(
        self, app: App, question: Question, recipients: Recipients, page_title: str
    ) -> None:
        to = recipients.emails
        if not to:
            log.info("question %s of %s: nobody to e-mail", question.id, app.id)
            return
        from server.peer.mail import notify

        ctx = self.catalog.contexts.get(question.context_id) if question.context_id else None
        where = ctx.name if ctx else (page_title or app.name)
        asker = question.asker_name or "A colleague"
        subject = _one_line(f"Question about {app.name}: {question.body}", 120)
        body_text = (
            f"{asker} asked a question about {where} in {app.name}:\n\n"
            f"{question.body}\n\n"
            f"Answer it in the Inflow console: {self.link(question.id)}\n\n"
            f"You get this because you are a mentor or an owner of {app.name}.\n"
        )
        await notify(self.app, to, subject, body_text, "question.asked", question.id)

    async def own(self, identity: Identity, question_id: str) -> Question:
        """The caller's own question (404 for anyone else's: its existence is not disclosed)."""
        question = await self.get(question_id)
        if question.asker_key != self.key_of(identity):
            raise NotFound(f"No question with id {question_id!r}.")
        return question

    async def mine(self, identity: Identity, app_id: str | None = None) -> list[Question]:
        filters: dict[str, Any] = {"asker_key": self.key_of(identity)}
        if app_id:
            filters["app_id"] = app_id
        found: list[Question] = await self.store.list(Question, **filters)
        return sorted(found, key=lambda q: (q.created_at, q.id), reverse=True)[:MAX_LIST]

    async def mark_read(self, identity: Identity, question_id: str) -> Question:
        question = await self.own(identity, question_id)
        if question.unread:
            question = dataclasses.replace(question, unread=False)
            await self.store.update(question)
        return question

    async def accept(self, identity: Identity, question_id: str, answer_id: str) -> Question:
        question = await self.own(identity, question_id)
        if question.status == "hidden":
            raise Conflict("This question was hidden by a moderator.")
        answers = await self.answers_of(question.id)
        chosen = next((a for a in answers if a.id == answer_id), None)
        if chosen is None:
            raise ValidationFailed(
                f"The question has no answer with id {answer_id!r}.", fields=["answer_id"]
            )
        stamp = now_iso()

        def accept_tx(tx: PeerTx) -> Question:
            for a in tx.list(Answer, question_id=question.id):
                if a.accepted != (a.id == answer_id):
                    tx.update(dataclasses.replace(a, accepted=a.id == answer_id))
            current = tx.get(Question, question.id)
            return tx.update(
                dataclasses.replace(
                    current,
                    accepted_answer_id=answer_id,
                    status="answered",
                    unread=False,
                    updated_at=stamp,
                )
            )

        question = await self.store.transaction(accept_tx)
        await self.index.put(self._doc(question, chosen))
        return question

    async def delete_own(self, identity: Identity, question_id: str) -> None:
        question = await self.own(identity, question_id)
        actor = (identity.issuer, question.asker_key, "")  # the person key, never a subject

        def delete_tx(tx: PeerTx) -> None:
            tx.delete(Question, question.id)  # its answers go with it
            self._audit_tx(actor, "question.delete", question, {"by": "asker"})

        await self.store.transaction(delete_tx)
        await self.index.remove(question.id)

    async def page_answers(
        self, identity: Identity, app_id: str, context_id: str, tags: frozenset[str] | None
    ) -> list[dict[str, Any]]:
        """Accepted answers to questions asked on this page (the app's own questions when the
        page matched no context), visible to `tags` (None: every audience), newest first."""
        found: list[Question] = await self.store.list(
            Question, app_id=app_id, context_id=context_id, status="answered"
        )
        shown = [q for q in found if q.accepted_answer_id and people.visible_to(q.audience, tags)]
        shown.sort(key=lambda q: (q.updated_at, q.id), reverse=True)
        return [await self._answered_json(q) for q in shown[:PAGE_ANSWERS]]

    async def _answered_json(self, question: Question, *, same_page: bool = True) -> dict[str, Any]:
        answers = await self.answers_of(question.id)
        accepted = next((a for a in answers if a.id == question.accepted_answer_id), None)
        ctx = self.catalog.contexts.get(question.context_id) if question.context_id else None
        return {
            "question_id": question.id,
            "question": question.body,
            "question_html": await self.renderer.render(question.body),
            "context": {"id": ctx.id, "name": ctx.name} if ctx else None,
            "same_page": same_page,
            "answer": await self.answer_json(accepted) if accepted else None,
            "answered_at": question.updated_at,
        }

    async def similar(
        self,
        identity: Identity,
        body: SimilarRequest,
        tags: frozenset[str] | None,
        limit: int = SIMILAR_LIMIT,
    ) -> dict[str, Any]:
        place = self.catalog.resolve(body.url, body.title or None)
        if place.app is None:
            raise ValidationFailed("This page is not a mapped app.", fields=["url"])
        context_id = place.contexts[0].id if place.contexts else ""
        hits = await self.index.similar(
            body.q, app_id=place.app.id, context_id=context_id, audience=tags, limit=limit
        )
        out = []
        for hit in hits:
            try:
                question = await self.get(hit.id)
            except NotFound:  # deleted meanwhile
                continue
            if (
                question.status == "hidden"
                or not question.accepted_answer_id
                or not people.visible_to(question.audience, tags)
            ):
                continue
            same = bool(context_id) and question.context_id == context_id
            out.append(await self._answered_json(question, same_page=same))
        return {
            "app": {"id": place.app.id, "name": place.app.name},
            "context": {"id": context_id, "name": place.contexts[0].name} if context_id else None,
            "answers": out,
        }

    # -- mentors and owners ----------------------------------------------------------------------
    async def answer(self, identity: Identity, question_id: str, body: PostAnswer) -> Answer:
        question = await self.get(question_id)
        if question.status == "hidden":
            raise NotFound(f"No question with id {question_id!r}.")
        mentor = self.answerer(identity, question)
        if question.status == "closed":
            raise Conflict("This question is closed.")
        stamp = now_iso()
        answer = Answer(
            id=new_id(),
            question_id=question.id,
            body=body.body,
            author_key=self.key_of(identity),
            author_name=mentor.name if mentor else people.display_name(identity),
            mentor_id=mentor.id if mentor else "",
            created_at=stamp,
        )

        def answer_tx(tx: PeerTx) -> tuple[Answer, Question]:
            stored = tx.add(answer)
            current = tx.get(Question, question.id)
            updated = tx.update(
                dataclasses.replace(
                    current,
                    status="answered" if current.status == "open" else current.status,
                    unread=True,
                    first_answer_at=current.first_answer_at or stamp,
                    updated_at=stamp,
                )
            )
            return stored, updated

        answer, question = await self.store.transaction(answer_tx)
        await _record(self.app, "answered", identity, {"answer": answer, "question": question})
        return answer

    async def inbox(self, identity: Identity, status: str = "", app_id: str = "") -> list[Question]:
        """Questions of the apps the caller answers or moderates (every app for reviewers and
        admins), open ones first, then newest first. Hidden ones only for moderators."""
        apps = self.staff_apps(identity)
        if apps is not None and not apps:
            return []
        filters: dict[str, Any] = {}
        if status:
            filters["status"] = status
        if app_id:
            if apps is not None and app_id not in apps:
                return []
            filters["app_id"] = app_id
        found: list[Question] = await self.store.list(Question, **filters)
        out = [
            q
            for q in found
            if (apps is None or q.app_id in apps)
            and (q.status != "hidden" or self.may_moderate(identity, q.app_id))
        ]
        out.sort(key=lambda q: (q.created_at, q.id), reverse=True)
        out.sort(key=lambda q: q.status != "open")
        return out[:MAX_LIST]

    async def inbox_for_authors(self, app_id: str = "") -> list[Question]:
        """Questions with an accepted answer (what an author may turn into an aid), newest
        first; those turned into an aid already come last."""
        filters: dict[str, Any] = {"status": "answered"}
        if app_id:
            filters["app_id"] = app_id
        found: list[Question] = await self.store.list(Question, **filters)
        out = [q for q in found if q.accepted_answer_id]
        out.sort(key=lambda q: (q.updated_at, q.id), reverse=True)
        out.sort(key=lambda q: bool(q.aid_id))
        return out[:MAX_LIST]

    async def hide(self, identity: Identity, question_id: str) -> Question:
        question = await self.get(question_id)
        if not self.may_moderate(identity, question.app_id):
            raise Forbidden(
                "Hiding a question needs the role reviewer or admin, or an owner of its app.",
                required_roles=sorted(roles_for("tip.moderate")),
            )
        if question.status != "hidden":
            hidden = dataclasses.replace(question, status="hidden", updated_at=now_iso())

            def hide_tx(tx: PeerTx) -> Question:
                stored = tx.update(hidden)
                self._audit_tx(who(identity), "question.hide", hidden, {"was": question.status})
                return stored

            question = await self.store.transaction(hide_tx)
            await self.index.remove(question.id)
        return question

    async def to_aid(self, identity: Identity, question_id: str) -> tuple[Question, str]:
        """A draft aid from the accepted answer (the admin service's own aid creation: checks,
        audit, first version): the question as title and summary, the answer as body with a line
        linking back to the question, mapped to the question's app. Returns the aid id."""
        if not may(identity.roles, "question.to_aid"):
            raise Forbidden(
                f"Turning an answer into an aid needs the role {describe('question.to_aid')}.",
                required_roles=sorted(roles_for("question.to_aid")),
                operation="question.to_aid",
            )
        question = await self.get(question_id)
        if question.aid_id:
            raise Conflict(
                f"This question was turned into the aid {question.aid_id!r} already.",
                aid_id=question.aid_id,
            )
        if question.status == "hidden" or not question.accepted_answer_id:
            raise Conflict("Only a question with an accepted answer can become an aid.")
        answers = await self.answers_of(question.id)
        accepted = next((a for a in answers if a.id == question.accepted_answer_id), None)
        if accepted is None:
            raise Conflict("The accepted answer is gone.")
        data = self._aid_data(question, accepted)
        service = AdminService(self.settings, self.library, self.app[keys.SUGGESTER])
        try:
            aid = await service.create_aid(identity, data)
        except Conflict:  # made by a click a moment ago (same id, from the question's id)
            raise Conflict(
                f"This question was turned into the aid {data['id']!r} already.",
                aid_id=data["id"],
            ) from None
        question = dataclasses.replace(question, aid_id=aid.id, updated_at=now_iso())
        await self.store.update(question)
        return question, aid.id

    def _aid_data(self, question: Question, answer: Answer) -> dict[str, Any]:
        app = self.catalog.apps.get(question.app_id)
        digest = hashlib.sha256(question.id.encode()).hexdigest()[:6]
        slug = slugify(question.body)[:50].strip("-") or "question"
        title = _one_line(question.body, 200)
        by = answer.author_name or "a mentor"
        where = app.name if app else question.app_id
        return {
            "id": f"{slug}-{digest}",
            "title": title,
            "summary": _one_line(f"A colleague's question about {where}, answered by {by}.", 500),
            "type": "faq",
            "apps": [question.app_id] if app else [],
            "audience": list(question.audience),
            "status": "draft",
            "body": (
                f"{answer.body}\n\n"
                f"---\n\n*From the question [{question.id}]({self.link(question.id)}), "
                f"answered by {by}.*\n"
            ),
        }

    # -- the index -------------------------------------------------------------------------------
    def _doc(self, question: Question, answer: Answer) -> QuestionDoc:
        return QuestionDoc(
            question.id,
            question.app_id,
            question.context_id,
            tuple(question.audience),
            question.body,
            answer.body,
        )

    async def index_docs(self) -> list[QuestionDoc]:
        """Every question with an accepted answer that is not hidden: what the index holds."""
        found = [
            q for q in await self.store.list(Question, status="answered") if q.accepted_answer_id
        ]
        ids = [q.accepted_answer_id for q in found]
        answers: dict[str, Answer] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound parameters: in chunks
            for a in await self.store.list(Answer, id=ids[start : start + 500]):
                answers[a.id] = a
        docs = []
        for q in found:
            answer = answers.get(q.accepted_answer_id)
            if answer is not None and answer.question_id == q.id:
                docs.append(self._doc(q, answer))
        return docs

    def _audit_tx(
        self,
        actor: tuple[str, str, str],
        action: str,
        question: Question,
        detail: dict[str, Any],
    ) -> None:
        """An audit entry, inside the peer transaction (the same connection and thread)."""
        entry = {"app_id": question.app_id, "context_id": question.context_id, **detail}
        self.library.storage.audit_add_tx(actor, action, "question", question.id, entry)


async def _record(app: web.Application, verb: str, identity: Identity, obj: Any) -> None:
    """xAPI statement (server/peer/activity.py); never lets a failure there undo the action."""
    try:
        from server.peer.activity import record
    except ImportError:  # pragma: no cover - the module lands with its helper
        return
    try:
        await record(app, verb, identity, obj)
    except Exception:
        log.exception("could not record %s", verb)


# -- functions for the panel (server/peer/page.py) -------------------------------------------------


async def page_answers(
    app: web.Application,
    identity: Identity,
    app_id: str,
    context_id: str,
    tags: frozenset[str] | None,
) -> list[dict[str, Any]]:
    """Accepted answers to questions asked on this page, for the panel."""
    return await app[keys.QUESTIONS].page_answers(identity, app_id, context_id, tags)


async def my_questions(
    app: web.Application, identity: Identity, app_id: str | None = None
) -> list[dict[str, Any]]:
    """The caller's questions (of `app_id` when given), newest first, with their answers and the
    `unread` badge; hidden ones are left out."""
    service = app[keys.QUESTIONS]
    return [
        await service.question_json(q)
        for q in await service.mine(identity, app_id)
        if q.status != "hidden"
    ]


__all__ = [
    "QUESTION_STATUSES",
    "REQUEST_BODIES",
    "AcceptAnswer",
    "AskQuestion",
    "PostAnswer",
    "QuestionService",
    "Recipients",
    "SimilarRequest",
    "my_questions",
    "page_answers",
    "route_question",
]
