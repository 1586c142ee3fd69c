"""The demo's git source: a bare repository made from content/demo-sources/docs/, and a small
HTTP server for it (git's smart HTTP through `git http-backend`, plus a page per file at
`<repo>/blob/<ref>/<path>`, where the git connector's item links point).

    python -m server.sources.demo_git DEST                      # makes DEST/handbook.git
    python -m server.sources.demo_git DEST --serve 127.0.0.1:8091
        # ... and serves it: a git source with url http://127.0.0.1:8091/handbook.git,
        # ref main (or the tag v1), path handbook

The repository is made again each time (same files, same dates: the same commit), so edits to
content/demo-sources/docs/ show up at the next sync. `add_git_routes(app, root)` mounts the
server's routes on another aiohttp app (tests serve their own repositories with it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from aiohttp import web

from server.security import public

DOCS = Path(__file__).resolve().parents[2] / "content" / "demo-sources" / "docs"
REPO_NAME = "handbook.git"
DEMO_DATE = "2026-11-02T09:00:00+00:00"
CGI_TIMEOUT = 60.0
_REPO_RE = re.compile(r"^[A-Za-z0-9._-]+\.git$")
_REF_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]+$")
ROOT_KEY = web.AppKey("demo_git_root", Path)


def git_env(**extra: str) -> dict[str, str]:
    """An environment for git commands that make repositories: no user configuration."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Northwind Docs",
        "GIT_AUTHOR_EMAIL": "docs@example.com",
        "GIT_COMMITTER_NAME": "Northwind Docs",
        "GIT_COMMITTER_EMAIL": "docs@example.com",
    }
    env.update(extra)
    return env


def build(dest: Path, docs: Path = DOCS) -> Path:
    """Make `dest/handbook.git` (bare, branch main, tag v1) from the files under `docs`."""
    bare = dest / REPO_NAME
    shutil.rmtree(bare, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    env = git_env(GIT_AUTHOR_DATE=DEMO_DATE, GIT_COMMITTER_DATE=DEMO_DATE)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(docs, work)
        for args in (
            ["init", "--quiet", "--initial-branch=main"],
            ["add", "--all"],
            ["commit", "--quiet", "-m", "Northwind handbook"],
            ["tag", "-a", "v1", "-m", "First published handbook"],
            ["clone", "--quiet", "--bare", ".", str(bare.resolve())],
        ):
            subprocess.run(["git", *args], cwd=work, env=env, check=True)  # noqa: S603, S607
    # the dumb HTTP transport (any static file server) needs info/refs too
    subprocess.run(["git", "update-server-info"], cwd=bare, env=env, check=True)  # noqa: S607
    return bare


# -- serving: git's smart HTTP through `git http-backend` (CGI) ----------------------------------


@public
async def git_http(request: web.Request) -> web.StreamResponse:
    """`/<repo>.git/...`: git http-backend as CGI (clone and fetch only: receive-pack is off)."""
    root = request.app[ROOT_KEY]
    if not _REPO_RE.match(request.match_info["repo"]):
        raise web.HTTPNotFound(text="No such repository.")
    body = await request.read()
    env = git_env(
        GIT_PROJECT_ROOT=str(root),
        GIT_HTTP_EXPORT_ALL="1",
        GATEWAY_INTERFACE="CGI/1.1",
        REQUEST_METHOD=request.method,
        PATH_INFO=f"/{request.match_info['repo']}/{request.match_info['tail']}",
        QUERY_STRING=request.query_string,
        CONTENT_TYPE=request.headers.get("Content-Type", ""),
        CONTENT_LENGTH=str(len(body)),
        REMOTE_ADDR=request.remote or "",
        HTTP_CONTENT_ENCODING=request.headers.get("Content-Encoding", ""),
        HTTP_GIT_PROTOCOL=request.headers.get("Git-Protocol", ""),
        GIT_PROTOCOL=request.headers.get("Git-Protocol", ""),
    )
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-c",
        "http.receivepack=false",
        "http-backend",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(body), CGI_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    head, sep, payload = out.partition(b"\r\n\r\n")
    if not sep:
        head, _, payload = out.partition(b"\n\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers[name.strip()] = value.strip()
    return web.Response(status=status, body=payload, headers=headers)


@public
async def git_blob(request: web.Request) -> web.StreamResponse:
    """`/<repo>/blob/<ref>/<path>`: a file as text (what a forge's file page would show)."""
    repo = request.app[ROOT_KEY] / f"{request.match_info['repo']}.git"
    ref, path = request.match_info["ref"], request.match_info["path"]
    if not (_REPO_RE.match(repo.name) and _REF_RE.match(ref) and repo.is_dir()):
        raise web.HTTPNotFound(text="No such file.")
    proc = await asyncio.create_subprocess_exec(
        "git",
        "cat-file",
        "blob",
        f"{ref}:{path}",
        cwd=repo,
        env=git_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise web.HTTPNotFound(text="No such file.")
    return web.Response(body=out, content_type="text/plain", charset="utf-8")


def add_git_routes(app: web.Application, root: Path) -> None:
    """Serve the bare repositories in `root` (`<name>.git`) over git's smart HTTP."""
    app[ROOT_KEY] = root
    app.router.add_route(
        "*", "/{repo}/{tail:(?:info/refs|git-upload-pack|HEAD|objects/.+)}", git_http
    )
    app.router.add_get("/{repo}/blob/{ref}/{path:.+}", git_blob)


def serve(root: Path, host: str, port: int) -> None:
    app = web.Application()
    add_git_routes(app, root)
    web.run_app(app, host=host, port=port, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server.sources.demo_git")
    parser.add_argument("dest", type=Path, help="folder for handbook.git")
    parser.add_argument("--serve", metavar="HOST:PORT", help="then serve it over HTTP")
    args = parser.parse_args(argv)
    bare = build(args.dest)
    print(f"Made {bare} (branch main, tag v1; the docs are under handbook/)")
    if args.serve:
        host, _, port = args.serve.rpartition(":")
        print(f"Serving http://{host}:{port}/{REPO_NAME}")
        serve(args.dest, host, int(port))


if __name__ == "__main__":
    main()
