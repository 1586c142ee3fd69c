"""Logging: a request id on every log line and problem body, and JSON lines as an option.

- `request_middleware` (outermost in server/app.py) gives each request an id: the caller's
  `X-Request-Id` when it is sane (1-64 characters of `[A-Za-z0-9._-]`), else a new one. The id is
  set on the response's `X-Request-Id` header, added to problem+json bodies (`request_id`), kept
  in a context variable while the request is handled, and written by one request log line
  (logger `inflow.request`: method, path, status, milliseconds, client address: the one a
  trusted proxy names, server/ratelimit.py client_address). It also times the request for
  the Prometheus metrics (server/metrics.py) when they are on.
- `RequestIdFilter` copies the context variable onto every log record (`record.request_id`, "-"
  outside a request); tasks started while handling a request inherit it (asyncio copies context).
- `setup_logging("text" | "json")` is what `inflow serve` calls (INFLOW_LOG_FORMAT). JSON: one
  object per line with time, level, logger, message, request_id, the record's extra fields
  (`log.info("...", extra={"aid": "x"})`) and the exception's traceback text, if any.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from server.metrics import Metrics

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NO_ID = "-"
PROBLEM_TYPE = "application/problem+json"  # the same as server.errors (which imports this module)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=_NO_ID)
request_log = logging.getLogger("inflow.request")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def current_request_id() -> str | None:
    """The id of the request being handled (None outside a request)."""
    value = request_id_var.get()
    return None if value == _NO_ID else value


def sane_request_id(value: str | None) -> str | None:
    """The caller's id if it may go into our logs and headers as is, else None."""
    if value is not None and _SANE_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (handlers' filter: all loggers get it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


# Attributes every LogRecord has: what is left on a record is an `extra` field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, the
    extra fields, and `exception` (the traceback text) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
LOG_FORMATS = ("text", "json")


def make_handler(fmt: str, stream: Any = None) -> logging.Handler:
    """A stream handler (stderr by default) with the request id filter and the chosen format."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """The root logger writes to stderr in `fmt` ("text" or "json").

    Like `logging.basicConfig`, nothing changes when the root logger has handlers already: a
    process that set up its own logging (pytest's capture, when tests call `inflow` in-process)
    keeps it. `inflow serve` starts with none."""
    handler = make_handler(fmt)  # an unknown format fails even then
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(handler)
    root.setLevel(level)


CLIENT_CLOSED = 499  # nginx's code for "the client went away before the answer"


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, web.HTTPException):
        return exc.status
    if isinstance(exc, asyncio.CancelledError):  # the client hung up: not a server error
        return CLIENT_CLOSED
    return 500


def _add_id_to_problem(response: web.StreamResponse, rid: str) -> None:
    """`request_id` in a problem+json body built anywhere (server/errors.problem adds it itself;
    a few modules build their own)."""
    if (
        not isinstance(response, web.Response)
        or response.prepared
        or response.content_type != PROBLEM_TYPE
        or not isinstance(response.body, bytes)
    ):
        return
    try:
        body = json.loads(response.body)
    except ValueError:
        return
    if isinstance(body, dict) and "request_id" not in body:
        body["request_id"] = rid
        response.body = json.dumps(body).encode("utf-8")


def request_middleware(metrics: Metrics | None) -> Callable[..., Any]:
    """The outermost middleware: request id, request log line, metrics (when on)."""
    from server import keys  # here: server.errors imports this module, ratelimit imports errors
    from server.ratelimit import client_address

    @web.middleware
    async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status = 500
        try:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # redirects, and problems raised as exceptions
                status = exc.status
                exc.headers[REQUEST_ID_HEADER] = rid
                _add_id_to_problem(exc, rid)
                raise
            except BaseException as exc:
                status = _status_of(exc)
                raise
            status = response.status
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = rid
            _add_id_to_problem(response, rid)
            return response
        finally:
            elapsed = time.perf_counter() - start
            if metrics is not None:
                metrics.observe(request, status, elapsed)
            if request_log.isEnabledFor(logging.INFO):
                # The client: the TCP peer, or behind a trusted proxy the one it names.
                trusted = request.config_dict[keys.SETTINGS].rate_limit_trusted_proxies
                client = client_address(request, frozenset(trusted))
                request_log.info(
                    "%s %s %d %.1fms %s",
                    request.method,
                    request.path,
                    status,
                    elapsed * 1000,
                    client,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                        "client": client,
                    },
                )
            request_id_var.reset(token)

    return request_id_middleware


__all__ = [
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "RequestIdFilter",
    "current_request_id",
    "make_handler",
    "request_middleware",
    "sane_request_id",
    "setup_logging",
]
