"""Serves the demo work apps under /demo/ (static files with a single-page-app fallback)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.security import public

DEMO_ROOT = Path(__file__).resolve().parent / "demo_site"


def _resolve(rel: str) -> Path | None:
    root = DEMO_ROOT.resolve()
    target = (root / rel).resolve()
    if root not in target.parents and target != root:
        return None  # traversal attempt
    if target.is_dir():
        target = target / "index.html"
    if target.is_file():
        return target
    # SPA fallback: /demo/<app>/anything -> /demo/<app>/index.html
    first = rel.split("/", 1)[0]
    fallback = root / first / "index.html"
    if first and "." not in rel.rsplit("/", 1)[-1] and fallback.is_file():
        return fallback
    return None


@public
async def demo_page(request: web.Request) -> web.StreamResponse:
    rel = request.match_info.get("path", "")
    if rel and not request.path.endswith("/") and (DEMO_ROOT / rel).is_dir():
        raise web.HTTPFound(f"/demo/{rel}/")
    target = _resolve(rel)
    if target is None:
        raise web.HTTPNotFound(text="No such demo page.")
    return web.FileResponse(
        target,
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'",
        },
    )


@public
async def demo_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/demo/")


def add_demo_routes(app: web.Application) -> None:
    app.router.add_get("/demo", demo_root)
    app.router.add_get("/demo/{path:.*}", demo_page)
