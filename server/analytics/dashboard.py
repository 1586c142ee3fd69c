"""HTTP handlers: event ingestion, the admin dashboard page, its JSON and CSV.

POST /api/v1/events                                  any signed-in user
GET  /api/v1/admin/analytics/{report}                admin: JSON (adoption | content | gaps | peer)
GET  /api/v1/analytics/peer                          the peer loop's figures (server/peer/stats.py)
GET  /api/v1/admin/analytics/{report}/{table}.csv    admin: one table as CSV
GET  /admin/analytics                                admin: the dashboard page
GET  /admin/analytics/{report}/{table}.csv           admin: CSV links of the page
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import hdrs, web
from markupsafe import Markup

from server import keys
from server.analytics.charts import bar_chart, label_of, line_chart
from server.analytics.events import parse_batch
from server.analytics.reports import REPORTS, AidInfo, CatalogView, ContextInfo, Filters, Table
from server.api.caller import identity_of
from server.api.validation import known_query
from server.body import read_json
from server.console import Denied
from server.console.common import page_context
from server.errors import PROBLEM_TYPE, NotFound, ValidationFailed
from server.peer import stats as peer_stats
from server.security import ADMIN_ROLE, requires, requires_op

routes = web.RouteTableDef()
PEER_REPORT = "peer"  # the peer loop (server/peer/stats.py), beside REPORTS
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


@routes.post("/api/v1/events")
async def post_events(request: web.Request) -> web.Response:
    """Store a batch of the caller's events; committed before the answer."""
    settings = request.config_dict[keys.SETTINGS]
    body = await read_json(request, settings.analytics_max_body_bytes)  # this route's own limit
    catalog = request.config_dict[keys.LIBRARY].catalog
    events = parse_batch(
        body,
        now=dt.datetime.now(dt.UTC),
        apps=catalog.apps.keys(),
        contexts={c.id: c.app_id for c in catalog.contexts.values()},
        max_events=settings.analytics_max_events,
        max_age_days=settings.analytics_max_age_days,
        max_future_seconds=settings.analytics_max_future_seconds,
    )
    ident = identity_of(request)
    assert ident is not None  # the auth middleware let only signed-in callers through
    result = await request.config_dict[keys.ANALYTICS].ingest(events, ident.issuer, ident.subject)
    return _json(
        {"received": len(events), "accepted": result.accepted, "duplicates": result.duplicates}
    )


# -- filters and figures -----------------------------------------------------------------------


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"'{name}' must be a date (YYYY-MM-DD).", fields=[name]) from None


def filters_of(request: web.Request) -> Filters:
    q = request.query
    known_query(request, {"from", "to", "app"})
    today = dt.datetime.now(dt.UTC).date()
    end = _date(q["to"], "to") if q.get("to") else today
    start = (
        _date(q["from"], "from")
        if q.get("from")
        else end - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
    )
    if start > end:
        raise ValidationFailed("'from' is after 'to'.", fields=["from", "to"])
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed(
            f"The range is longer than {MAX_RANGE_DAYS} days.", fields=["from", "to"]
        )
    app = q.get("app") or None
    if app is not None and app not in request.config_dict[keys.LIBRARY].catalog.apps:
        raise ValidationFailed(f"'app' {app!r} is not an app of the catalog.", fields=["app"])
    return Filters(start, end, app)


async def catalog_view(request: web.Request, with_stale: bool) -> CatalogView:
    library = request.config_dict[keys.LIBRARY]
    catalog = library.catalog
    today = dt.datetime.now(dt.UTC).date()
    full = {a.id: a for a in await library.storage.all_aids()} if with_stale else {}
    aids: dict[str, AidInfo] = {}
    for meta in catalog.aids.values():
        aid = full.get(meta.id)
        aids[meta.id] = AidInfo(
            id=meta.id,
            title=meta.title,
            apps=meta.apps,
            published=meta.status == "published",
            owner=aid.owner if aid else "",
            verified_at=aid.verified_at if aid else None,
            review_interval_days=aid.review_interval_days if aid else 180,
            stale=aid.is_stale(today) if aid else False,
        )
    contexts = {
        c.id: ContextInfo(c.id, c.app_id, c.name, len(c.aids)) for c in catalog.contexts.values()
    }
    return CatalogView({a.id: a.name for a in catalog.apps.values()}, aids, contexts)


async def compute(request: web.Request, report: str, f: Filters) -> dict[str, Table]:
    if report == PEER_REPORT:  # from the peer tables in the content database, not the events
        ident = identity_of(request)
        show_names = ident is not None and ADMIN_ROLE in ident.roles
        return await peer_stats.compute(request.config_dict, f, show_mentor_names=show_names)
    fn = REPORTS.get(report)
    if fn is None:
        raise NotFound(f"No report {report!r}; reports: {', '.join([*REPORTS, PEER_REPORT])}.")
    cat = await catalog_view(request, with_stale=report == "content")
    analytics = request.config_dict[keys.ANALYTICS]
    store = analytics.store
    k = request.config_dict[keys.SETTINGS].analytics_min_group
    return await store.read(lambda: fn(store.rconn, f, k, cat))


def _filters_json(f: Filters, min_group: int) -> dict[str, Any]:
    return {
        "from": f.start.isoformat(),
        "to": f.end.isoformat(),
        "app": f.app,
        "min_group": min_group,
    }


@routes.get("/api/v1/admin/analytics/{report}")
@requires("admin")
async def api_report(request: web.Request) -> web.Response:
    f = filters_of(request)
    report = request.match_info["report"]
    tables = await compute(request, report, f)
    k = request.config_dict[keys.SETTINGS].analytics_min_group
    return _json(
        {
            "report": report,
            "filters": _filters_json(f, k),
            "tables": {name: t.as_json() for name, t in tables.items()},
        }
    )


@routes.get("/api/v1/analytics/peer")
@requires_op("peer.analytics")
async def api_peer(request: web.Request) -> web.Response:
    """The peer loop's figures (tips, questions, mentor load, answers turned into aids): for
    admins and reviewers; mentors are named to admins only (compute)."""
    f = filters_of(request)
    tables = await compute(request, PEER_REPORT, f)
    k = request.config_dict[keys.SETTINGS].analytics_min_group
    return _json(
        {
            "report": PEER_REPORT,
            "filters": _filters_json(f, k),
            "tables": {name: t.as_json() for name, t in tables.items()},
        }
    )


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(
            f"[{'helpful' if c.get('helpful') else 'not helpful'} {c.get('day')}] "
            f"{c.get('comment')}"
            if isinstance(c, dict)
            else str(c)
            for c in value
        )
    text = str(value)
    # Spreadsheets run cells that start like a formula: user text (queries, comments) is quoted.
    if text.startswith(_FORMULA) and not isinstance(value, int | float):
        text = "'" + text
    return text


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([label for _, label in table.columns])
    for row in table.rows:
        writer.writerow([_cell(row.get(key)) for key, _ in table.columns])
    return buf.getvalue()


async def _csv_response(request: web.Request) -> web.Response:
    f = filters_of(request)
    report, name = request.match_info["report"], request.match_info["table"]
    tables = await compute(request, report, f)
    table = tables.get(name)
    if table is None:
        raise NotFound(f"No table {name!r} in {report}; tables: {', '.join(tables)}.")
    filename = f"inflow-{report}-{name}-{f.start}-{f.end}{'-' + f.app if f.app else ''}.csv"
    return web.Response(
        text=to_csv(table),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@routes.get("/api/v1/admin/analytics/{report}/{table}.csv")
@requires("admin")
async def api_csv(request: web.Request) -> web.Response:
    return await _csv_response(request)


# -- the page ----------------------------------------------------------------------------------


LOGIN_PATH = "/admin/login"  # the console's sign-in (server/console/views.py)


def _wants_html(request: web.Request) -> bool:
    """A browser navigating: it asks for HTML by name (API clients send */* or JSON)."""
    accept = request.headers.get(hdrs.ACCEPT, "")
    return "text/html" in accept or "application/xhtml+xml" in accept


def _problem(status: int, title: str, detail: str, slug: str, **extra: Any) -> web.HTTPException:
    body = {
        "type": f"https://inflow.example/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    cls = web.HTTPUnauthorized if status == 401 else web.HTTPForbidden
    headers = {hdrs.WWW_AUTHENTICATE: 'Bearer realm="inflow"'} if status == 401 else None
    # raised as an HTTPException so that the console's HTML error pages leave it alone
    return cls(text=json.dumps(body), content_type=PROBLEM_TYPE, headers=headers)


async def require_admin_page(request: web.Request) -> None:
    """/admin pages: the console's session sets the identity; a bearer token also works.

    The auth middleware leaves /admin paths alone (the admin console has its own session login),
    so this checks here: a session identity if the console set one, else the bearer token.
    Without either, a browser is sent to the console's sign-in (coming back here after it);
    API clients, and a bearer token that is refused, get 401 problem+json.
    """
    ident = identity_of(request)
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    if ident is None and header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            from auth.service import AuthUnavailable
            from auth.verifier import InvalidToken

            try:
                ident = await request.config_dict[keys.AUTHENTICATOR].authenticate(token.strip())
            except (InvalidToken, AuthUnavailable):
                ident = None
            request[keys.IDENTITY] = ident
        if ident is None:
            raise _problem(
                401,
                "Unauthorized",
                "The bearer token was refused (expired, malformed or not for Inflow). Send a valid "
                "token of a user with the role 'admin', or sign in to the admin console.",
                "unauthorized",
            )
    if ident is None:
        if _wants_html(request) and request.method in {"GET", "HEAD"}:
            raise web.HTTPSeeOther(f"{LOGIN_PATH}?{urlencode({'next': request.path_qs})}")
        raise _problem(
            401,
            "Unauthorized",
            f"The analytics dashboard needs the role 'admin'. Sign in to the admin console "
            f"({LOGIN_PATH}) in a browser, or send 'Authorization: Bearer <token>'.",
            "unauthorized",
            login=f"{LOGIN_PATH}?{urlencode({'next': request.path_qs})}",
        )
    if ADMIN_ROLE not in ident.roles:
        if request.get(keys.CONSOLE_SESSION) is not None:
            raise Denied("The analytics dashboard needs the role 'admin'.")  # the console's page
        raise _problem(
            403, "Forbidden", "The analytics dashboard needs the role 'admin'.", "forbidden"
        )


@routes.get("/admin/analytics")
@requires("admin")
async def page(request: web.Request) -> web.Response:
    f = filters_of(request)
    settings = request.config_dict[keys.SETTINGS]
    reports = {name: await compute(request, name, f) for name in REPORTS}
    adoption, content, gaps = reports["adoption"], reports["content"], reports["gaps"]
    peer = reports[PEER_REPORT] = await compute(request, PEER_REPORT, f)
    peer_apps = [r for r in peer["questions_by_app"].rows if not r.get("suppressed")]
    daily = adoption["daily"].rows
    days = [r["day"] for r in daily]
    by_app, top, none = (
        adoption["by_app"].rows,
        content["top_aids"].rows[:12],
        gaps["no_results"].rows[:12],
    )
    # Series are figure keys: charts.LABELS names them and gives each one colour everywhere.
    charts = {
        "daily": line_chart(
            "chart-daily",
            "Active learners and panel opens by day",
            days,
            {k: [r[k] for r in daily] for k in ("active_learners", "panel_opens", "aids_opened")},
        ),
        "by_app": bar_chart(
            "chart-apps",
            "Panel opens and aids opened by app",
            [r["name"] or r["app"] for r in by_app],
            {k: [r[k] for r in by_app] for k in ("panel_opens", "aids_opened")},
        ),
        "top_aids": bar_chart(
            "chart-top-aids",
            "Most opened aids",
            [r["title"] or r["aid"] for r in top],
            {"aids_opened": [r["opened"] for r in top]},
        ),
        "no_results": bar_chart(
            "chart-no-results",
            "Searches with no results",
            [r["query"] for r in none],
            {"zero_results": [r["zero_results"] for r in none]},
        ),
        "peer_questions": bar_chart(
            "chart-peer-questions",
            "Questions asked, answered and unanswered by app",
            [r["name"] for r in peer_apps],
            {k: [r[k] for r in peer_apps] for k in ("asked", "answered", "unanswered")},
        ),
    }
    query = {"from": f.start.isoformat(), "to": f.end.isoformat()}
    if f.app:
        query["app"] = f.app
    context = {
        "filters": f,
        "query_string": "&".join(f"{k}={v}" for k, v in query.items()),
        "apps": sorted(
            ((a.id, a.name) for a in request.config_dict[keys.LIBRARY].catalog.apps.values()),
            key=lambda p: p[1].lower(),
        ),
        "reports": reports,
        "charts": {k: Markup(v) for k, v in charts.items()},  # noqa: S704 - built escaped
        "min_group": settings.analytics_min_group,
        "retention_days": settings.analytics_retention_days,
        "label_of": label_of,
    }
    # Inside the console's layout (its header and navigation, the session's roles); a bearer
    # token caller (no console session) gets the same page without the session's parts.
    response = aiohttp_jinja2.render_template(
        "analytics/dashboard.html", request, {**page_context(request), **context}
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@routes.get("/admin/analytics/{report}/{table}.csv")
@requires("admin")
async def page_csv(request: web.Request) -> web.Response:
    return await _csv_response(request)
