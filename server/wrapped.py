"""Wrapped targets: the page an app shows inside its own frame (docs/apps.md).

ServiceNow opens a form directly (`/incident.do?sys_id=-1`), through `/nav_to.do?uri=<target>`
and through `/now/nav/ui/classic/params/target/<target>`. An app declares those wrappers as
`wrapped_targets`, each a path with one `{target}`:

- `/nav_to.do?uri={target}`: on exactly that path, the value of query parameter `uri`
  (form-decoded, as any query value) is the page;
- `/now/nav/ui/classic/params/target/{target}`: on a path under those segments, the rest of the
  path, percent-decoded once, is the page.

A value that is still encoded where a path or URL starts (`%2F...`, `https%3A...`: encoded twice
on the way) is decoded once more. A relative target is a path from the root of the outer URL's
origin (ServiceNow's `incident.do?sys_id=-1` is `/incident.do?sys_id=-1`); an absolute target on
another origin, or with another scheme (`javascript:`), is ignored.

The JavaScript twin is extension/src/lib/wrapped.js; tests/vectors/wrapped_targets.json keeps the
two in step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from server.urlrules import InvalidUrl, ParsedUrl, parse_url

PLACEHOLDER = "{target}"
_PARAM_RE = re.compile(r"^[A-Za-z0-9._~!$'()*,;:@%-]+$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_STILL_ENCODED_RE = re.compile(r"^(%2f|https?%3a)", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidWrappedTarget(ValueError):
    """A declared wrapped target that is not one of the two forms."""


@dataclass(frozen=True)
class WrappedTarget:
    """A compiled wrapped target: the wrapper's path segments and, for the query form, the
    parameter that holds the page (None: the page is the rest of the path)."""

    source: str
    segments: tuple[str, ...]
    param: str | None


def parse_wrapped_target(text: str) -> WrappedTarget:
    """Check and compile a declared wrapped target; raise InvalidWrappedTarget saying why."""
    example = "e.g. '/nav_to.do?uri={target}' or '/now/nav/ui/classic/params/target/{target}'"
    if text.count(PLACEHOLDER) != 1:
        raise InvalidWrappedTarget(f"needs exactly one {PLACEHOLDER} ({example})")
    if not text.startswith("/"):
        raise InvalidWrappedTarget(f"must be a path starting with '/' ({example})")
    if "#" in text:
        raise InvalidWrappedTarget("a wrapped target has no '#' fragment")
    head = text[: -len(PLACEHOLDER)] if text.endswith(PLACEHOLDER) else None
    if head is None:
        raise InvalidWrappedTarget(
            f"{PLACEHOLDER} must end it: as a query value ('?param={{target}}') or as the last "
            f"path segment ('/path/{{target}}')"
        )
    if "{" in head or "}" in head:
        raise InvalidWrappedTarget(f"only {PLACEHOLDER} may use braces")
    if "?" in head:
        path, _, query = head.partition("?")
        if not query.endswith("=") or "&" in query or "?" in query:
            raise InvalidWrappedTarget(
                f"the query form is '?param={{target}}', one parameter ({example})"
            )
        param = query[:-1]
        if not _PARAM_RE.match(param):
            raise InvalidWrappedTarget(f"{param!r} is not a query parameter name")
        return WrappedTarget(text, _segments(path), param)
    if not head.endswith("/"):
        raise InvalidWrappedTarget(
            f"{PLACEHOLDER} must be a whole path segment ('/path/{{target}}')"
        )
    segments = _segments(head)
    if not segments:
        raise InvalidWrappedTarget("the path form needs a path before /{target}")
    return WrappedTarget(text, segments, None)


def _segments(path: str) -> tuple[str, ...]:
    try:
        return parse_url(f"http://wrapped.invalid{path}").segments
    except InvalidUrl as exc:
        raise InvalidWrappedTarget(f"not a valid path: {exc}") from None


def compile_wrapped_targets(texts: Iterable[str]) -> tuple[WrappedTarget, ...]:
    return tuple(parse_wrapped_target(t) for t in texts)


def _decode(text: str) -> str:
    return unquote_to_bytes(text).decode("utf-8", "replace") if "%" in text else text


def _origin(url: ParsedUrl) -> str:
    port = "" if _DEFAULT_PORTS[url.scheme] == url.port else f":{url.port}"
    return f"{url.scheme}://{url.host}{port}"


def _inner_value(url: ParsedUrl, target: WrappedTarget) -> str | None:
    n = len(target.segments)
    if target.param is not None:
        if url.segments != target.segments:
            return None
        values = url.params.get(target.param)
        return values[0] if values else None
    if url.segments[:n] != target.segments or len(url.segments) <= n:
        return None
    prefix = "/" + "/".join(target.segments) + "/"
    return _decode(url.path[len(prefix) :]) if url.path.startswith(prefix) else None


def _resolve(url: ParsedUrl, value: str) -> ParsedUrl | None:
    value = value.strip()
    if _STILL_ENCODED_RE.match(value):
        value = _decode(value)
    if not value:
        return None
    origin = _origin(url)
    if _SCHEME_RE.match(value):
        absolute = value
    elif value[:2] in {"//", "\\\\", "/\\", "\\/"}:
        absolute = f"{url.scheme}:{value}"
    elif value.startswith(("/", "\\")):
        absolute = origin + value
    else:
        absolute = f"{origin}/{value}"
    try:
        inner = parse_url(absolute)
    except InvalidUrl:
        return None  # javascript:, mailto:, a broken URL
    return inner if _origin(inner) == origin else None


def unwrap(url: ParsedUrl, targets: Iterable[WrappedTarget]) -> ParsedUrl | None:
    """The page `url` wraps under the first of `targets` that applies, or None."""
    for target in targets:
        value = _inner_value(url, target)
        if value is not None:
            inner = _resolve(url, value)
            if inner is not None:
                return inner
    return None


def target_url(url: str, targets: Iterable[str]) -> str | None:
    """The normalized URL of the page that `url` wraps (declared `targets`), or None."""
    try:
        parsed = parse_url(url)
    except InvalidUrl:
        return None
    inner = unwrap(parsed, compile_wrapped_targets(targets))
    return None if inner is None else inner.normalized
