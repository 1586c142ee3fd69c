"""Progress from the LMS: course steps ticked by `completed` / `passed` statements read from the
LRS (docs/paths.md "LMS (LRS) progress").

For each enrolment whose path has course steps not yet done, Inflow asks the LRS (xAPI 1.0.3):

    GET <endpoint>/statements?agent={"mbox":"mailto:<email>"}&activity=<activity id>&verb=<IRI>

once per verb (completed, passed) and per actor, following `more` until the last page, and ticks
the step with how=lrs when a statement matches; the evidence is the statement id of the earliest
match (so the step's date is when the course was first completed, whatever order the LRS pages
in). Each statement is checked again here (actor, verb, object): an LRS that ignores a filter
cannot tick another learner's step.

Actor rule: the learner's e-mail (the token's `email` claim, kept on the enrolment) as
`mbox` `mailto:<email>` (lower-cased); also, when `INFLOW_LRS_ACCOUNT_HOMEPAGE` is set,
`account {homePage: <that>, name: <Keycloak username>}`.

The endpoint is `INFLOW_LRS_READ_ENDPOINT` (default: the forwarder's `INFLOW_LRS_ENDPOINT`) with
the forwarder's credentials (basic auth or OAuth2 client credentials). The LRS is an internal
service an admin configured, so it is read through a plain aiohttp session (`lrs_ctx`), not the
safe fetcher, which refuses private addresses by design.

The sync runs as the job `paths-lrs` every `INFLOW_PATHS_LRS_MINUTES` (0: only on demand), and for
one learner when they ask (`POST /api/v1/paths/mine/sync`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp
from aiohttp import web

from server import keys
from server.analytics.outbox import LrsClient
from server.jobs import JobRun
from server.paths import progress
from server.settings import Settings

log = logging.getLogger("inflow.paths.lrs")

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
VERBS = (COMPLETED, PASSED)
XAPI_VERSION = "1.0.3"
PAGE_SIZE = 100  # statements asked for per page
MAX_PAGES = 50  # pages followed for one query: an LRS whose `more` never ends stops here
JOB = "paths-lrs"


class LrsReadError(Exception):
    """The LRS could not be read (down, refused the credentials, answered nonsense)."""


def actors(settings: Settings, email: str, username: str) -> list[dict[str, Any]]:
    """The xAPI agents a learner may be in the LRS (the actor rule in the module docstring), as
    the `agent` query parameter takes them (an inverse functional identifier, no objectType:
    ralph, for one, matches nothing when it is there)."""
    out: list[dict[str, Any]] = []
    if email.strip():
        out.append({"mbox": f"mailto:{email.strip().lower()}"})
    if settings.lrs_account_homepage and username.strip():
        account = {"homePage": settings.lrs_account_homepage, "name": username.strip()}
        out.append({"account": account})
    return out


def _same_actor(found: Any, agent: dict[str, Any]) -> bool:
    if not isinstance(found, dict):
        return False
    if "mbox" in agent:
        return str(found.get("mbox", "")).lower() == str(agent["mbox"])
    account = found.get("account")
    return isinstance(account, dict) and bool(
        account.get("homePage") == agent["account"]["homePage"]
        and account.get("name") == agent["account"]["name"]
    )


def matches(statement: Any, agent: dict[str, Any], activity_id: str, verb: str) -> bool:
    """Is `statement` really `agent` doing `verb` to `activity_id`? (Checked again here: the LRS's
    filters are trusted to narrow the reading, not to decide.)"""
    if not isinstance(statement, dict):
        return False
    verb_obj, target = statement.get("verb"), statement.get("object")
    return (
        _same_actor(statement.get("actor"), agent)
        and isinstance(verb_obj, dict)
        and verb_obj.get("id") == verb
        and isinstance(target, dict)
        and target.get("objectType", "Activity") == "Activity"
        and target.get("id") == activity_id
    )


def when(statement: dict[str, Any]) -> dt.datetime:
    """A statement's time (its timestamp, else when the LRS stored it, else now), in UTC."""
    for name in ("timestamp", "stored"):
        value = statement.get(name)
        if isinstance(value, str) and value:
            try:
                at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


@dataclass
class Completion:
    """The earliest matching statement of one (learner, activity)."""

    statement_id: str
    completed_at: dt.datetime
    verb: str


class LrsReader:
    """Reads statements from the LRS (see the module docstring)."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.endpoint = (settings.lrs_read_endpoint or settings.lrs_endpoint).rstrip("/")
        # the forwarder's credentials, and its token handling (basic auth, or OAuth2 client
        # credentials with a token fetched once and refreshed on expiry)
        self._credentials = LrsClient(settings, session)
        self.page_size = PAGE_SIZE
        self.requests = 0  # GETs made (figures for tests and logs)

    async def _get(self, url: str) -> dict[str, Any]:
        for attempt in range(2):
            headers = {
                "X-Experience-API-Version": XAPI_VERSION,
                "Accept": "application/json",
                **(await self._credentials._auth_header(refresh=attempt > 0)),
            }
            self.requests += 1
            try:
                async with self.session.get(url, headers=headers) as resp:
                    status = resp.status
                    if status == 401 and attempt == 0 and self.settings.lrs_token_url:
                        continue  # the token may have been revoked: fetch a new one once
                    if status != 200:
                        text = (await resp.text())[:300]
                        raise LrsReadError(f"the LRS answered {status}: {text}")
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise LrsReadError(f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(body, dict) or not isinstance(body.get("statements"), list):
                raise LrsReadError("the LRS answered without a statements list")
            return body
        raise LrsReadError("the LRS refused the credentials")

    async def statements(
        self, agent: dict[str, Any], activity_id: str, verb: str
    ) -> list[dict[str, Any]]:
        """Every statement the LRS has of `agent` doing `verb` to `activity_id`, all pages."""
        query = {
            "agent": json.dumps(agent, separators=(",", ":")),
            "activity": activity_id,
            "verb": verb,
            "limit": str(self.page_size),
        }
        url = f"{self.endpoint}/statements?{urlencode(query)}"
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = await self._get(url)
            for st in page["statements"]:
                sid = str(st.get("id", "")) if isinstance(st, dict) else ""
                if sid and sid not in seen:
                    seen.add(sid)
                    out.append(st)
            more = page.get("more") or ""
            if not isinstance(more, str) or not more:
                return out
            # `more` is relative to the LRS's root (xAPI 1.0.3, 2.1.3): resolve it on the endpoint
            url = urljoin(self.endpoint + "/", more)
        log.warning("LRS paging stopped after %d pages for %s", MAX_PAGES, activity_id)
        return out

    async def completion(
        self, agents: Iterable[dict[str, Any]], activity_id: str
    ) -> Completion | None:
        """The earliest `completed` or `passed` statement of any of `agents` for the activity."""
        best: Completion | None = None
        for agent in agents:
            for verb in VERBS:
                for st in await self.statements(agent, activity_id, verb):
                    if not matches(st, agent, activity_id, verb):
                        continue
                    at = when(st)
                    if best is None or at < best.completed_at:
                        best = Completion(str(st["id"]), at, verb)
        return best


@dataclass
class SyncResult:
    """What one sync did."""

    learners: int = 0  # enrolments with a course step still to do
    enrolled: int = 0  # group members enrolled from Keycloak by this run
    checked: int = 0  # (learner, course step) pairs asked about
    ticked: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "learners": self.learners,
            "checked": self.checked,
            "ticked": self.ticked,
            "errors": self.errors[:10],
        }


def reader_of(app: web.Application) -> LrsReader | None:
    """The app's LRS reader; None when no LRS is configured."""
    return app.get(keys.PATHS_LRS)


async def sync(app: web.Application, person_key: str = "", run: JobRun | None = None) -> SyncResult:
    """Read the LRS for every enrolment (or one person's) and tick the course steps it reports
    done. Errors of the LRS are collected, not raised: a sync that could not reach the LRS says so
    and ticks nothing."""
    result = SyncResult()
    reader = reader_of(app)
    if reader is None:
        result.errors.append(
            "No LRS is configured (INFLOW_LRS_READ_ENDPOINT, INFLOW_LRS_ENDPOINT)."
        )
        return result
    pairings = app.get(keys.PAIRINGS)
    if not person_key and pairings is not None:  # the job: group members never seen too
        enrolled = await progress.enrol_group_members(app, pairings.directory)
        result.enrolled = enrolled.added
        for problem in enrolled.errors:  # Keycloak down: those already enrolled still sync
            log.warning("could not read a group from Keycloak: %s", problem)
    pending = await progress.pending_course_steps(app, person_key)
    result.learners = len({(p.enrolment.path_id, p.enrolment.person_key) for p in pending})
    for i, item in enumerate(pending):
        if run is not None:
            run.progress(i, len(pending), f"{item.enrolment.path_id}/{item.step_id}")
        agents = actors(reader.settings, item.enrolment.email, item.enrolment.username)
        if not agents:
            continue
        result.checked += 1
        try:
            found = await reader.completion(agents, item.activity_id)
        except LrsReadError as exc:
            result.errors.append(str(exc))
            log.warning("LRS read failed: %s", exc)
            break  # the LRS is down or refuses us: the next run tries again
        if found is None:
            continue
        ticked = await progress.tick(
            app,
            item.enrolment.path_id,
            item.step_id,
            item.enrolment.person_key,
            how="lrs",
            evidence=found.statement_id,
            completed_at=found.completed_at,
        )
        result.ticked += int(ticked)
    if run is not None:
        run.progress(len(pending), len(pending), f"{result.ticked} step(s) ticked")
    if result.errors and run is not None:
        raise LrsReadError(result.errors[0])  # the job's state shows the failure
    return result


async def lrs_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the LRS reader's HTTP session (when an LRS is configured) and the job."""
    settings = app[keys.SETTINGS]
    session: aiohttp.ClientSession | None = None
    if settings.lrs_read_endpoint or settings.lrs_endpoint:
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.lrs_timeout_seconds)
        )
        app[keys.PATHS_LRS] = LrsReader(settings, session)

        async def job(run: JobRun) -> None:
            await sync(app, run=run)

        app[keys.JOBS].register(JOB, settings.paths_lrs_minutes * 60, job)
    try:
        yield
    finally:
        if session is not None:
            await session.close()


__all__ = [
    "COMPLETED",
    "JOB",
    "PASSED",
    "VERBS",
    "Completion",
    "LrsReadError",
    "LrsReader",
    "SyncResult",
    "actors",
    "lrs_ctx",
    "matches",
    "reader_of",
    "sync",
]
