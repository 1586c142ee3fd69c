"""The git connector: a repository of Markdown files (docs as code) read by URL and branch or tag.

A run clones the repository (`git clone --depth 1 --branch <ref> --no-checkout`; a full clone
when the transport cannot do shallow ones, as git's "dumb HTTP") into the run's private folder,
lists `*.md` under the source's `path` with `git ls-tree` and reads them with `git cat-file`:
nothing is checked out, so no symlink, submodule or hook of the repository is ever followed or
run (symlinks and submodules are skipped; hooks are off with `core.hooksPath=/dev/null`).

A file is an item, its path in the repository the external id:

- with YAML front matter it is read like `inflow import`'s `aids/<id>.md` (server/content.py):
  the same fields and the same errors, with the file and line; `id` and `title` may be left out
  (the path, the first `# ` heading or the file name stand in). The fields it sets come with the
  item (`Item.fields`); `source` (a video's address) becomes the item's URL;
- plain Markdown: the title is the first `# ` heading (taken out of the body), else the file
  name; the summary the first paragraph; every other field comes from the source;
- `<name>.vtt` or `<name>.srt` beside `<name>.md` is the transcript of a video aid.

The listing's validators keep the commit read. When a later run finds the same commit for the
same ref and path (`git ls-remote`, one request), nothing is cloned and every file is listed
Unchanged. Limits (from the fetch settings): the clone gets `CLONE_TIME_FACTOR` times
`fetch_timeout_seconds` and `CLONE_SIZE_FACTOR` times `fetch_max_bytes` on disk, then it is
stopped and the run fails; a file over `fetch_max_bytes` (or content.MAX_FILE_BYTES) fails;
at most the source's `page_cap` files are read (the first by path; the listing is incomplete).

Only http(s) URLs are cloned (`protocol.allow=never` but for those), redirects are not followed,
no credential helper or prompt is used and no system or user git configuration is read. The URL
is checked by the safe fetcher first (scheme, allowlist, private addresses); git then resolves
the host itself, so a DNS answer that changes between that check and the clone (rebinding) is
not caught: allow only hosts whose DNS you trust for git sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from index.transcripts import TranscriptError, parse_transcript
from server.content import FRONT_MATTER_RE, MAX_FILE_BYTES, _key_lines, _line_for, _parse_yaml
from server.fetch import FetchFailed, FetchRefused
from server.models import FieldErrors, aid_from_mapping, dump
from server.sources.connectors.base import (
    Entry,
    Failed,
    Item,
    Listing,
    SyncContext,
    SyncError,
    Unchanged,
)

GIT = "git"
CLONE_TIME_FACTOR = 6  # a clone may take 6 x fetch_timeout_seconds (2 minutes by default)
CLONE_SIZE_FACTOR = 20  # and 20 x fetch_max_bytes on disk (100 MB by default)
MAX_FILES = 5000  # Markdown files read per run (and the source's page_cap); more: incomplete
MAX_PATH = 1000  # longer paths are skipped (an external id is at most 2000 characters)
PARSE_BATCH = 100  # files parsed per trip to a thread
SIZE_POLL_SECONDS = 0.2
TRANSCRIPT_SUFFIXES = (".vtt", ".srt")
SUMMARY_MAX = 280
REASON_MAX = 500
_FILE_MODES = ("100644", "100755")  # regular files; 120000 symlinks and 160000 submodules skipped

_CONFIG = (
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
    "http.followRedirects=false",
    "core.hooksPath=/dev/null",
    "credential.helper=",
    "core.askPass=",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "advice.detachedHead=false",
)
_H1_RE = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE_RE = re.compile(r"^ {0,3}(```|~~~)")
_NOT_PROSE_RE = re.compile(r"^ {0,3}(#|[-*+>|<]|\d+[.)]\s|```|~~~|!\[|\[!|={3,}|-{3,})")
_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS_RE = re.compile(r"(\*\*|__|`)")
_SLUG_DROP_RE = re.compile(r"[^a-z0-9]+")


class _Refused(Exception):
    """The clone was stopped: too slow, too big, or git said no."""


@dataclass(frozen=True)
class _Blob:
    path: str
    sha: str
    size: int


class GitConnector:
    """Reads a git source (see the module docstring)."""

    async def list(self, ctx: SyncContext) -> Listing:
        source = ctx.source
        try:
            await ctx.fetcher.check_url(source.url, ctx.policy)
        except FetchRefused as exc:
            raise SyncError(f"The repository URL was refused ({exc.reason}): {exc}") from exc
        except FetchFailed as exc:
            raise SyncError(f"The repository could not be reached ({exc.reason}): {exc}") from exc
        ref, folder = _checked_ref(source.ref), _checked_folder(source.path)
        keep = {"ref": ref, "path": folder, "aid_type": source.aid_type}
        git = _Git(ctx.work_dir, ctx.policy.timeout, ctx.fetcher.user_agent)
        stored = ctx.validators
        if stored.get("commit") and all(stored.get(k) == v for k, v in keep.items()):
            ctx.progress(0, 0, "Checking the repository for new commits")
            if await git.remote_commit(source.url, ref) == stored["commit"]:
                return Listing(entries=_as_before(ctx), validators=dict(stored))
        ctx.progress(0, 0, f"Cloning {ref}")
        repo = ctx.work_dir / "repo"
        limit = ctx.policy.max_bytes * CLONE_SIZE_FACTOR
        await git.clone(source.url, ref, repo, limit, ctx.policy.timeout * CLONE_TIME_FACTOR)
        commit = (await git.run(repo, "rev-parse", "HEAD")).decode().strip()
        blobs = await git.tree(repo, folder)
        docs = sorted(b.path for b in blobs.values() if b.path.lower().endswith(".md"))
        cap = min(source.page_cap, MAX_FILES)
        complete = len(docs) <= cap
        docs = docs[:cap]
        file_max = min(ctx.policy.max_bytes, MAX_FILE_BYTES)
        wanted: list[str] = []
        total = 0
        for path in docs:  # every file under file_max, until they total `limit`
            parts = [b for b in (blobs[path], _sidecar(path, blobs)) if b is not None]
            size = sum(b.size for b in parts)
            if all(b.size <= file_max for b in parts) and total + size <= limit:
                wanted += [b.sha for b in parts]
                total += size
        ctx.progress(0, len(docs), f"Reading {len(docs)} files of commit {commit[:10]}")
        contents = await git.read(repo, wanted)
        reader = _Reader(blobs, contents, file_max, limit, _browse_base(source.url, ref))
        entries: list[Entry] = []
        for start in range(0, len(docs), PARSE_BATCH):
            batch = docs[start : start + PARSE_BATCH]
            entries += await asyncio.to_thread(reader.entries, batch, source.aid_type)
            ctx.progress(len(entries), len(docs), f"Read {len(entries)} of {len(docs)} files")
        return Listing(entries=entries, complete=complete, validators={"commit": commit, **keep})


def _checked_ref(ref: str) -> str:
    ref = ref.strip()
    if not ref or ref.startswith("-") or ".." in ref or re.search(r"[\s~^:?*\[\\]", ref):
        raise SyncError(f"{ref!r} is not a branch or tag name")
    return ref


def _checked_folder(path: str) -> str:
    folder = path.strip().strip("/")
    parts = PurePosixPath(folder).parts if folder else ()
    if any(p in ("..", ".") for p in parts) or "\\" in folder or "\x00" in folder:
        raise SyncError(f"{path!r} is not a folder inside the repository")
    return "/".join(parts)


def _as_before(ctx: SyncContext) -> list[Entry]:
    """Same commit as last time: every file as it was (failed ones fail again)."""
    out: list[Entry] = []
    for external_id, item in ctx.previous.items():
        if item.state == "active":
            out.append(Unchanged(external_id))
        elif item.state == "failed":
            out.append(Failed(external_id, item.error or "failed at the last sync"))
    return out


def _browse_base(url: str, ref: str) -> str:
    """Where a file is shown on the forge (GitHub, GitLab, Gitea: <repo>/blob/<ref>/<path>)."""
    repo = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").removesuffix(".git")
    return f"{repo}/blob/{ref}/"


def _sidecar(path: str, blobs: Mapping[str, _Blob]) -> _Blob | None:
    stem = path[: -len(".md")]
    for suffix in TRANSCRIPT_SUFFIXES:
        for candidate in (stem + suffix, stem + suffix.upper()):
            if candidate in blobs:
                return blobs[candidate]
    return None


# -- one file -> an item ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reader:
    blobs: Mapping[str, _Blob]
    contents: Mapping[str, bytes]
    file_max: int
    limit: int
    base: str  # where files are shown (_browse_base)

    def entries(self, paths: Sequence[str], aid_type: str) -> list[Entry]:
        return [self.entry(path, aid_type) for path in paths]

    def text(self, blob: _Blob) -> str:
        """The file's text; ValueError says why not."""
        if blob.size > self.file_max:
            raise ValueError(f"{blob.path}: the file is larger than {self.file_max:,} bytes")
        data = self.contents.get(blob.sha)
        if data is None:
            raise ValueError(
                f"{blob.path}: not read (the files of one run may total {self.limit:,} bytes)"
            )
        try:
            return data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise ValueError(f"{blob.path}: not UTF-8 text") from None

    def entry(self, path: str, aid_type: str) -> Entry:
        try:
            text = self.text(self.blobs[path])
        except ValueError as exc:
            return Failed(path, str(exc))
        errors: list[tuple[str, int, str]] = []
        item = _parse(text, path, self.base, errors)
        if item is None:
            return Failed(path, _reason(errors))
        sidecar = _sidecar(path, self.blobs)
        if sidecar is None or (item.type or aid_type) != "video":
            return item
        try:
            transcript = self.text(sidecar)
            parse_transcript(transcript)
        except TranscriptError as exc:
            return Failed(path, f"{sidecar.path}:{exc.line or 1}: {exc.reason}")
        except ValueError as exc:
            return Failed(path, str(exc))
        return dataclasses.replace(item, transcript=transcript)


def _reason(errors: Sequence[tuple[str, int, str]]) -> str:
    text = "; ".join(f"{name}:{line}: {message}" for name, line, message in errors)
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


def _parse(text: str, path: str, base: str, errors: list[tuple[str, int, str]]) -> Item | None:
    if text.startswith("---"):
        return _parse_front_matter(text, path, base, errors)
    title, body = _title_and_body(text, path)
    data = {"id": _slug(path), "title": title, "body": body}
    try:
        aid = aid_from_mapping(data)
    except FieldErrors as exc:
        errors.extend((path, 1, f"{f}: {msg}") for f, msg in exc.errors)
        return None
    return Item(
        external_id=path,
        url=base + path,
        title=aid.title,
        body=aid.body,
        summary=_first_paragraph(aid.body),
    )


def _parse_front_matter(
    text: str, path: str, base: str, errors: list[tuple[str, int, str]]
) -> Item | None:
    """Like content.parse_aid, with `id` and `title` optional."""
    m = FRONT_MATTER_RE.match(text)
    if not m:
        errors.append((path, 1, "missing YAML front matter (a '---' line, fields, then '---')"))
        return None
    data = _parse_yaml(m.group(1), path, errors, offset=1)
    if data is None:
        return None
    lines = _key_lines(m.group(1))
    if "body" in data:
        line = _line_for("body", lines, 1)
        errors.append((path, line, "'body' is the Markdown after the front matter, not a field"))
        return None
    given = set(data)
    body = text[m.end() :].strip("\n") + "\n"
    if "title" not in data:
        data["title"], body = _title_and_body(body, path)
    data.setdefault("id", _slug(path))
    data["body"] = body
    try:
        aid = aid_from_mapping(data)
    except FieldErrors as exc:
        errors.extend((path, _line_for(f, lines, 1), f"{f}: {msg}") for f, msg in exc.errors)
        return None
    values = dump(aid)
    return Item(
        external_id=path,
        url=aid.source or base + path,
        title=aid.title,
        body=aid.body,
        summary=aid.summary,
        type=aid.type if "type" in given else "",
        tags=aid.tags,
        fields={k: values[k] for k in sorted(given)},
    )


def _title_and_body(text: str, path: str) -> tuple[str, str]:
    """The first `# ` heading (out of the body when nothing but blank lines precede it), else
    the file name."""
    lines = text.splitlines()
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE_RE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else _H1_RE.match(line)
        if m:
            if all(not x.strip() for x in lines[:i]):
                text = "\n".join(lines[i + 1 :]).strip("\n") + "\n"
            return m.group(1).strip()[:200], text
    name = PurePosixPath(path).stem.replace("-", " ").replace("_", " ").strip() or path
    return name[:1].upper() + name[1:200], text


def _first_paragraph(body: str) -> str:
    """The first prose paragraph, without Markdown marks, cut on a word under SUMMARY_MAX."""
    para: list[str] = []
    fenced = False
    for line in body.splitlines():
        if _FENCE_RE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if not line.strip() or _NOT_PROSE_RE.match(line):
            if para:
                break
            continue
        para.append(line.strip())
    text = _EMPHASIS_RE.sub("", _LINK_RE.sub(r"\1", " ".join(para)))
    if len(text) <= SUMMARY_MAX:
        return text
    return text[: SUMMARY_MAX - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _slug(path: str) -> str:
    """An aid id from a file's path ('guides/Submit report.md' -> 'guides-submit-report')."""
    slug = _SLUG_DROP_RE.sub("-", path.lower().removesuffix(".md")).strip("-")
    return slug[:64].rstrip("-") or "doc"


# -- git -------------------------------------------------------------------------------------------


class _Git:
    """git as a subprocess of the event loop: every command with a time limit, killed with its
    children when it is over; no user or system configuration, no prompts."""

    def __init__(self, home: Path, timeout: float, user_agent: str) -> None:
        self.timeout = timeout
        self.config = (*_CONFIG, f"http.userAgent={user_agent}")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C",
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
            "SSH_ASKPASS": "/bin/false",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_LITERAL_PATHSPECS": "1",
            "GIT_PROTOCOL_FROM_USER": "0",
        }

    def _args(self, *args: str) -> list[str]:
        out = [GIT]
        for setting in self.config:
            out += ["-c", setting]
        return out + list(args)

    async def _start(self, args: list[str], cwd: Path | None) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *args,
                cwd=cwd,
                env=self.env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: a kill ends git's helpers too
            )
        except FileNotFoundError:
            raise SyncError("git is not installed on the Inflow server") from None

    async def run(
        self, cwd: Path | None, *args: str, stdin: bytes = b"", time_limit: float = 0.0
    ) -> bytes:
        proc = await self._start(self._args(*args), cwd)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), time_limit or self.timeout)
        except TimeoutError:
            await _kill(proc)
            limit = time_limit or self.timeout
            raise SyncError(f"git {args[0]} took longer than {limit:g} s") from None
        finally:
            await _kill(proc)
        if proc.returncode != 0:
            raise SyncError(f"git {args[0]} failed: {_git_message(err)}")
        return out

    async def remote_commit(self, url: str, ref: str) -> str:
        """The commit `ref` (a branch or a tag) names on the remote now ("" if none)."""
        out = await self.run(None, "ls-remote", "--", url)
        refs: dict[str, str] = {}
        for line in out.decode(errors="replace").splitlines():
            sha, _, name = line.partition("\t")
            refs[name] = sha
        for name in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
            if name in refs:
                return refs[name]
        return ""

    async def clone(self, url: str, ref: str, dest: Path, max_bytes: int, seconds: float) -> None:
        base = ["clone", "--quiet", "--no-checkout", "--single-branch", "--no-tags"]
        base += ["--no-recurse-submodules", f"--branch={ref}"]
        try:
            await self._clone([*base, "--depth=1", "--", url, str(dest)], dest, max_bytes, seconds)
        except _Refused as exc:
            if "does not support shallow" not in str(exc):
                raise SyncError(str(exc)) from None
            # git's dumb HTTP transport cannot make a shallow clone: the whole history then
            await asyncio.to_thread(_remove_tree, dest)
            try:
                await self._clone([*base, "--", url, str(dest)], dest, max_bytes, seconds)
            except _Refused as exc2:
                raise SyncError(str(exc2)) from None

    async def _clone(self, args: list[str], dest: Path, max_bytes: int, seconds: float) -> None:
        proc = await self._start(self._args(*args), None)
        assert proc.stdin is not None
        proc.stdin.close()
        waiting = asyncio.ensure_future(proc.communicate())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while not waiting.done():
                left = deadline - loop.time()
                if left <= 0:
                    raise _Refused(f"Cloning took longer than {seconds:g} s")
                await asyncio.wait({waiting}, timeout=min(SIZE_POLL_SECONDS, left))
                if await asyncio.to_thread(_size, dest) > max_bytes:
                    raise _Refused(f"The repository is larger than {max_bytes:,} bytes")
        finally:
            await _kill(proc)
            with contextlib.suppress(BaseException):
                await waiting
        if proc.returncode != 0:
            _out, err = waiting.result()
            raise _Refused(f"git clone failed: {_git_message(err)}")

    async def tree(self, repo: Path, folder: str) -> dict[str, _Blob]:
        """Regular files under `folder` at HEAD, by path."""
        args = ["ls-tree", "-r", "-z", "--long", "HEAD"]
        out = await self.run(repo, *args, *(["--", folder] if folder else []))
        blobs: dict[str, _Blob] = {}
        for record in out.split(b"\0"):
            meta, _, raw = record.partition(b"\t")
            parts = meta.decode("ascii", errors="replace").split()
            if len(parts) != 4 or parts[0] not in _FILE_MODES or parts[1] != "blob":
                continue  # symlinks, submodules, trees
            try:
                path = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue  # a name that is not UTF-8 cannot be an external id
            if len(path) <= MAX_PATH:
                blobs[path] = _Blob(path, parts[2], int(parts[3]))
        return blobs

    async def read(self, repo: Path, shas: Sequence[str]) -> dict[str, bytes]:
        """The contents of these blobs (`git cat-file --batch`)."""
        if not shas:
            return {}
        wanted = list(dict.fromkeys(shas))
        out = await self.run(
            repo, "cat-file", "--batch", stdin="".join(s + "\n" for s in wanted).encode()
        )
        contents: dict[str, bytes] = {}
        pos = 0
        for sha in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) != 3:  # "<sha> missing"
                continue
            size = int(header[2])
            contents[sha] = out[pos : pos + size]
            pos += size + 1
        return contents


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def _git_message(err: bytes) -> str:
    lines = [x.strip() for x in err.decode(errors="replace").splitlines() if x.strip()]
    text = " ".join(x.removeprefix("fatal: ").removeprefix("error: ") for x in lines[-3:])
    return text[:300] or "no message"


def _size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
