"""CSRF protection for the console, and the `next` parameter that only ever stays local.

Synchronizer token: each session has a random token; every form posts it back as `csrf_token`
(fetch calls send it as `X-CSRF-Token`), compared in constant time. Missing or wrong: 403 problem.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import unquote, urlsplit

from server.errors import Forbidden

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
DEFAULT_NEXT = "/admin"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CsrfFailed(Forbidden):
    slug = "csrf-failed"


def check_csrf(expected: str, sent: str | None) -> None:
    if not sent:
        raise CsrfFailed("The form has no CSRF token: reload the page and try again.")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfFailed("The form's CSRF token is wrong or stale: reload the page and try again.")


def safe_next(raw: str | None, default: str = DEFAULT_NEXT) -> str:
    """A local path to go to after sign-in; anything else becomes `default`.

    Refused: anything not starting with exactly one `/` (`//evil.example`, `https:evil.example`),
    backslashes (`/\\evil.example`, which browsers read as `//`), control characters, and the same
    tricks percent-encoded (`/%2F%2Fevil.example`, `%2F%2Fevil.example`).
    """
    if not raw or len(raw) > 2000:
        return default
    for candidate in (raw, unquote(raw), unquote(unquote(raw))):
        if "\\" in candidate or _CONTROL.search(candidate):
            return default
        if not candidate.startswith("/") or candidate.startswith("//"):
            return default
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return default
    return raw
