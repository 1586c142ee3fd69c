"""Domain exceptions raised by lower layers, and the one middleware that maps them to HTTP.

Every 4xx/5xx the API returns is an RFC 9457 problem+json body: {type, title, status, detail, ...}.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from index.errors import IndexUnavailable
from server import keys
from server.db.errors import DatabaseUnavailable, describe, is_unavailable
from server.logs import current_request_id

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"


class InflowError(Exception):
    """Base for domain errors. `status` and `title` describe the HTTP mapping at the boundary."""

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ValidationFailed(InflowError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"


def body_refused(errors: Sequence[tuple[str, str]]) -> ValidationFailed:
    """A request body's (field, message) problems as one 422: "'field' message; ...", naming
    each top-level field and listing every problem."""
    return ValidationFailed(
        "; ".join(f"'{f}' {m}" if f else m for f, m in errors),
        fields=sorted({f.split("[")[0] for f, _ in errors if f}),
        errors=[{"field": f, "message": m} for f, m in errors],
    )


class BadRequest(InflowError):
    status = 400
    title = "Bad request"
    slug = "bad-request"


class NotFound(InflowError):
    status = 404
    title = "Not found"
    slug = "not-found"


class AidNotFound(NotFound):
    slug = "aid-not-found"


class PayloadTooLarge(InflowError):
    status = 413
    title = "Request body too large"
    slug = "payload-too-large"


class Conflict(InflowError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class PreconditionFailed(InflowError):
    status = 412
    title = "Precondition failed"
    slug = "precondition-failed"


class ContentError(ValidationFailed):
    """Content on disk (or uploaded) is invalid. `errors` lists (file, line, message)."""

    title = "Invalid content"
    slug = "invalid-content"

    def __init__(self, errors: list[tuple[str, int, str]]) -> None:
        lines = [f"{f}:{n}: {m}" for f, n, m in errors]
        super().__init__(
            f"{len(errors)} error(s) in content: " + "; ".join(lines[:5]),
            errors=[{"file": f, "line": n, "message": m} for f, n, m in errors],
        )
        self.errors = errors


def problem(
    status: int,
    title: str,
    detail: str,
    slug: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {
        "type": f"https://inflow.example/problems/{slug or 'error'}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    request_id = current_request_id()  # server/logs.py: the id of the request being answered
    if request_id is not None and "request_id" not in body:
        body["request_id"] = request_id
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    detail = exc.text or exc.reason
    if exc.status == 404:
        detail = "No such resource. See /api/v1/openapi.json for the routes."
    elif exc.status == 405:
        allowed = sorted(m.strip() for m in exc.headers.get("Allow", "").split(","))
        detail = f"Method not allowed here; allowed: {', '.join(allowed)}"
    elif exc.status == 413:
        detail = "Request body too large."
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "www-authenticate"}}
    return problem(exc.status, exc.reason, detail or exc.reason, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DATABASE_UNAVAILABLE = (
    "The database is unavailable for the moment; nothing was changed. Try again shortly."
)


def retry_after(request: web.Request) -> str:
    """Retry-After of a database-unavailable answer (settings.db_retry_after_seconds)."""
    settings = request.config_dict.get(keys.SETTINGS)
    return str(settings.db_retry_after_seconds if settings is not None else 2)


def database_unavailable(request: web.Request, exc: DatabaseUnavailable) -> web.Response:
    """503 problem+json with Retry-After: the database went away (PostgreSQL restarting, down,
    refusing); a write that met it was not committed, so the client retries it as it is. (The
    store logged the outage once; each request's 503 is in the request log.)"""
    return problem(
        503,
        "Database unavailable",
        DATABASE_UNAVAILABLE,
        "database-unavailable",
        headers={"Retry-After": retry_after(request)},
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InflowError as exc:
        return problem(exc.status, exc.title, exc.detail, exc.slug, **exc.extra)
    except IndexUnavailable as exc:  # corrupt or being rebuilt: it heals itself, retry later
        return problem(
            503,
            "Search unavailable",
            str(exc),
            "index-unavailable",
            headers={"Retry-After": str(exc.retry_after)},
        )
    except DatabaseUnavailable as exc:
        return database_unavailable(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == PROBLEM_TYPE:
            raise
        return _from_http_exception(exc)
    except Exception as exc:
        if is_unavailable(exc):  # a driver error no store translated: the same outage
            return database_unavailable(request, DatabaseUnavailable("a", describe(exc)))
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal server error", "Something went wrong on our side.")


# -- Learning analytics (server/analytics) ----------------------------------------------------


class InvalidEvents(ValidationFailed):
    """A batch of analytics events was refused whole; `errors` names each bad event."""

    title = "Invalid events"
    slug = "invalid-events"


# -- added for the admin API and console (server/admin, server/console) ----------------------


class Forbidden(InflowError):
    """Signed in, but not allowed (a missing role, a workflow step the role may not take, CSRF)."""

    status = 403
    title = "Forbidden"
    slug = "forbidden"


class PreconditionRequired(InflowError):
    """A write without `If-Match`: the caller must say which version it read (RFC 6585)."""

    status = 428
    title = "Precondition required"
    slug = "precondition-required"


class UnsupportedMediaType(InflowError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class ArchiveRefused(InflowError):
    """An uploaded archive is unsafe or too big; refused before anything is extracted."""

    status = 422
    title = "Archive refused"
    slug = "archive-refused"


# -- the HTTP edge (server/body.py) -----------------------------------------------------------


class InvalidJson(BadRequest):
    """A JSON body we refuse: bad syntax, nested too deep, a lone surrogate, NaN or Infinity."""

    title = "Invalid JSON"
    slug = "invalid-json"
