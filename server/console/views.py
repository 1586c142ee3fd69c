"""Console pages, one module per resource. Every page works without JavaScript; forms post back
and redirect (303), or show the form again with its errors (server/console/common.py).

`routes` is every console route, in an order where fixed paths (`/admin/aids/new`) come before
the patterns that would also match them.
"""

from __future__ import annotations

from aiohttp import web

from server.console import aids, apps, audit, dashboard, mentors, signin, transfer, usage
from server.console.common import page_context

routes: list[web.AbstractRouteDef] = [
    *signin.routes,
    *dashboard.routes,
    *apps.routes,
    *aids.routes,
    *mentors.routes,
    *transfer.routes,
    *audit.routes,
    *usage.routes,
]

__all__ = ["page_context", "routes"]
