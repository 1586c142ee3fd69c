"""Learning analytics: events from the extension, daily rollups, dashboards and xAPI forwarding.

See docs/analytics.md and docs/xapi-profile.md.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def setup_analytics(app: web.Application) -> None:
    """Routes, the cleanup context and (if nobody did yet) the template environment."""
    from server.analytics.dashboard import routes
    from server.analytics.service import analytics_ctx

    if aiohttp_jinja2.APP_KEY not in app:
        aiohttp_jinja2.setup(
            app,
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        )
    app.cleanup_ctx.append(analytics_ctx)
    app.router.add_routes(routes)
