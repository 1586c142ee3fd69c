"""Safe handling of uploaded content archives (zip, tar, tar.gz/bz2/xz) and export zips.

`inspect_archive` reads only the archive's directory (headers) and refuses, before a single byte is
extracted, anything that could write outside the target or exhaust the disk:

- absolute names (`/x`, `C:x`), `..` components, backslashes, control characters;
- symbolic links, hard links, devices, FIFOs (anything but regular files and folders);
- encrypted or duplicated zip entries;
- more entries than `max_files`, a declared decompressed total over `max_bytes`, or one file over
  `max_file_bytes`. Tar headers are read one at a time and reading stops at the first header past
  a limit, so a compressed tar bomb is never decompressed beyond that point.

`extract` then writes only the accepted content files (`aids/*.md`, `apps/*.yaml|yml`,
`mentors/*.yaml|yml`, optionally under one top folder) with exclusive creates, counting real bytes
as it goes. Other entries are ignored and reported. Everything here is blocking: call it in an
executor.
"""

from __future__ import annotations

import io
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from server.errors import ArchiveRefused

CONTENT_RE = re.compile(
    r"^(aids/[A-Za-z0-9][A-Za-z0-9._-]*\.md|(apps|mentors)/[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml)$"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024
    max_files: int = 5000
    max_file_bytes: int = 1_000_000


@dataclass
class Plan:
    """What inspection found: the content files to extract (archive name -> relative path)."""

    kind: str
    files: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _check_name(raw: str, problems: list[str]) -> str | None:
    """The normalized relative name, or None after recording why it is refused."""
    shown = _CONTROL_RE.sub("?", raw)[:200]
    if _CONTROL_RE.search(raw):
        problems.append(f"{shown!r}: control characters in the name")
        return None
    if "\\" in raw:
        problems.append(f"{shown!r}: backslashes are not allowed in names")
        return None
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        problems.append(f"{shown!r}: absolute path")
        return None
    parts = [p for p in raw.split("/") if p not in {"", "."}]
    if ".." in parts:
        problems.append(f"{shown!r}: '..' in the path")
        return None
    return "/".join(parts)


def _refuse(problems: list[str]) -> ArchiveRefused:
    return ArchiveRefused(
        f"The archive was refused, nothing was extracted: {'; '.join(problems[:5])}"
        + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
        problems=problems[:50],
    )


def _plan(kind: str, entries: list[tuple[str, int]], problems: list[str]) -> Plan:
    """Pick the content files; strip one common top folder (e.g. `content/aids/x.md`)."""
    names = [n for n, _ in entries]
    tops = {n.split("/", 1)[0] for n in names}
    prefix = ""
    if len(tops) == 1 and all("/" in n for n in names):
        top = next(iter(tops))
        if top not in {"aids", "apps", "mentors"}:
            prefix = top + "/"
    plan = Plan(kind)
    seen: set[str] = set()
    for name, size in entries:
        rel = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        if name in seen:
            problems.append(f"{name!r}: appears twice in the archive")
            continue
        seen.add(name)
        if CONTENT_RE.match(rel):
            plan.files[name] = rel
            plan.sizes[name] = size
        else:
            plan.ignored.append(name)
    return plan


def _zip_plan(data: bytes, limits: Limits) -> Plan:
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ArchiveRefused(f"Not a readable zip archive: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files:
            raise _refuse([f"{len(infos)} entries; the limit is {limits.max_files}"])
        total = 0
        entries: list[tuple[str, int]] = []
        for info in infos:
            name = _check_name(info.filename, problems)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                problems.append(f"{info.filename!r}: symbolic links are not allowed")
                continue
            if kind not in {0, stat.S_IFREG, stat.S_IFDIR}:
                problems.append(f"{info.filename!r}: only regular files and folders are allowed")
                continue
            if info.flag_bits & 0x1:
                problems.append(f"{info.filename!r}: encrypted entries are not supported")
                continue
            total += info.file_size
            if info.file_size > limits.max_file_bytes and not info.is_dir():
                problems.append(
                    f"{info.filename!r}: {info.file_size} bytes; the limit per file is "
                    f"{limits.max_file_bytes}"
                )
            if name is None or info.is_dir() or not name:
                continue
            entries.append((name, info.file_size))
        if total > limits.max_bytes:
            problems.append(
                f"decompressed size {total} bytes is over the limit of {limits.max_bytes}"
            )
        plan = _plan("zip", entries, problems)
    if problems:
        raise _refuse(problems)
    return plan


def _tar_plan(data: bytes, limits: Limits) -> Plan:
    problems: list[str] = []
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveRefused(f"Not a readable zip or tar archive: {exc}") from exc
    entries: list[tuple[str, int]] = []
    try:
        total = count = 0
        while True:
            # One header at a time: stop before skipping over (decompressing) a member past a limit.
            member = tf.next()
            if member is None:
                break
            count += 1
            if count > limits.max_files:
                problems.append(f"more than {limits.max_files} entries")
                break
            name = _check_name(member.name, problems)
            if member.issym() or member.islnk():
                problems.append(f"{member.name!r}: links are not allowed")
                continue
            if not (member.isfile() or member.isdir()):
                problems.append(f"{member.name!r}: only regular files and folders are allowed")
                continue
            total += member.size
            if total > limits.max_bytes:
                problems.append(
                    f"decompressed size over the limit of {limits.max_bytes} bytes "
                    f"(reached at {member.name!r})"
                )
                break
            if member.size > limits.max_file_bytes:
                problems.append(
                    f"{member.name!r}: {member.size} bytes; the limit per file is "
                    f"{limits.max_file_bytes}"
                )
                continue
            if name and member.isfile():
                entries.append((name, member.size))
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        problems.append(f"the archive is damaged: {exc}")
    finally:
        tf.close()
    plan = _plan("tar", entries, problems)
    if problems:
        raise _refuse(problems)
    return plan


def inspect_archive(data: bytes, limits: Limits) -> Plan:
    """Check the whole archive directory; raises ArchiveRefused listing every problem."""
    if data[:4] in {b"PK\x03\x04", b"PK\x05\x06"}:
        return _zip_plan(data, limits)
    return _tar_plan(data, limits)


def _copy(src: IO[bytes], dest: Path, budget: int, name: str) -> int:
    written = 0
    with dest.open("xb") as out:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > budget:
                raise _refuse([f"{name!r}: more data than its header declares"])
            out.write(chunk)
    return written


def extract(data: bytes, plan: Plan, target: Path, limits: Limits) -> int:
    """Write the planned content files under `target` (which must be empty). Returns a count."""
    root = target.resolve()
    folders = {root / "aids", root / "apps", root / "mentors"}
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)

    def dest_for(rel: str) -> Path:
        dest = (root / PurePosixPath(rel)).resolve()
        if dest.parent not in folders:
            raise _refuse([f"{rel!r}: outside the content folders"])
        return dest

    budget = limits.max_bytes
    count = 0
    if plan.kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name, rel in plan.files.items():
                with zf.open(name) as src:
                    budget -= _copy(src, dest_for(rel), min(budget, limits.max_file_bytes), name)
                count += 1
        return count
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for member in tf:
            rel_name = plan.files.get(_check_name(member.name, []) or "")
            if rel_name is None or not member.isfile():
                continue
            stream = tf.extractfile(member)
            if stream is None:
                continue
            with stream:
                budget -= _copy(
                    stream, dest_for(rel_name), min(budget, limits.max_file_bytes), rel_name
                )
            count += 1
    return count


def zip_dir(root: Path) -> bytes:
    """A zip of a content folder (export), entries under `aids/`, `apps/`, `mentors/`, sorted."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()
