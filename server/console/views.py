"""Console pages, one module per resource. Every page works without JavaScript; forms post back
and redirect (303), or show the form again with its errors (server/console/common.py).

`routes` is every console route, in an order where fixed paths (`/admin/aids/new`) come before
the patterns that would also match them.
"""

from __future__ import annotations

from aiohttp import web

from server.console import (
    aids,
    apps,
    audit,
    bulk,
    dashboard,
    flags,
    health,
    mentors,
    outbox,
    pairings,
    path_report,
    paths,
    questions,
    queue,
    signin,
    sources,
    templates,
    tester,
    tips,
    transfer,
    usage,
)
from server.console.common import page_context
from server.errors import NotFound


async def no_such_page(request: web.Request) -> web.Response:
    """Any other address under /admin: the console's HTML 404 page (not the API's
    problem+json), with the navigation for a signed-in person."""
    raise NotFound(f"There is no console page at {request.path}.")


routes: list[web.AbstractRouteDef] = [
    *signin.routes,
    *dashboard.routes,
    *apps.routes,
    *templates.routes,
    *tester.routes,
    *bulk.routes,
    *aids.routes,
    *mentors.routes,
    *transfer.routes,
    *audit.routes,
    *usage.routes,
    *flags.routes,
    *tips.routes,
    *questions.routes,
    *pairings.routes,
    *outbox.routes,
    *health.routes,
    *sources.routes,
    *queue.routes,
    *path_report.routes,  # before paths: /admin/paths/{path_id}/report
    *paths.routes,
    # Last: what no route above answers.
    web.route("GET", "/admin/{rest:.*}", no_such_page),
]

__all__ = ["page_context", "routes"]
