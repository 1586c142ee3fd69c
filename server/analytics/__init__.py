"""Learning analytics: events from the extension, daily rollups, dashboards and xAPI forwarding.

See docs/analytics.md and docs/xapi-profile.md.
"""

from __future__ import annotations

from aiohttp import web

from server.errors import Handler

DASHBOARD = "/admin/analytics"


@web.middleware
async def admin_page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every dashboard page needs an admin: a console session, or a bearer token."""
    from server.analytics.dashboard import require_admin_page

    await require_admin_page(request)
    return await handler(request)


def setup_analytics(app: web.Application) -> None:
    """The event and report API routes on the root app; the dashboard pages as a sub-app at
    /admin/analytics (after the console's session middleware, then its admin check); the
    cleanup context and (if nobody did yet) the template environment on the root app."""
    from server.analytics.dashboard import routes
    from server.analytics.service import analytics_ctx
    from server.console import console_middleware, setup_template_env, sub_app

    setup_template_env(app)
    app.cleanup_ctx.append(analytics_ctx)
    api = [r for r in routes if not isinstance(r, web.RouteDef) or not r.path.startswith("/admin")]
    pages = [r for r in routes if r not in api]
    app.router.add_routes(api)
    app.add_subapp(
        DASHBOARD, sub_app(DASHBOARD, pages, [console_middleware, admin_page_middleware])
    )
