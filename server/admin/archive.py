"""Safe handling of uploaded content archives (zip, tar, tar.gz/bz2/xz) and export zips.

`inspect_archive` reads only the archive's directory (headers) and refuses, before a single byte is
extracted, anything that could write outside the target or exhaust the disk:

- absolute names (`/x`, `C:x`), `..` components, backslashes, control characters;
- symbolic links, hard links, devices, FIFOs (anything but regular files and folders);
- encrypted or duplicated zip entries;
- more entries than `max_files`, a declared decompressed total over `max_bytes`, or one file over
  `max_file_bytes`;
- tar extended headers (pax `x`/`g`, GNU long names `L`/`K`) over `MAX_EXTENDED_HEADER`. Python's
  tarfile reads those payloads into memory whole (a 460-byte bzip2 tar declaring a 512 MB pax
  header cost 19 s and 1.1 GB), so `_scan_tar` first walks the raw 512-byte header blocks of the
  (streamed, never fully buffered) decompressed tar itself and refuses before tarfile sees it.
  The walk stops at the first header past a limit, so a compressed tar bomb is never decompressed
  beyond that point.

Any archive damage found on the way (bad CRC, a size header that lies, a truncated stream, an
unsupported compression method) is refused the same way (422 problem), never a 500.

`extract` then writes only the accepted content files (`aids/*.md|vtt|srt`, `apps/*.yaml|yml`,
`mentors/*.yaml|yml`, optionally under one top folder) with exclusive creates, counting real bytes
as it goes. Other entries are ignored and reported. Everything here is blocking: call it in an
executor.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from server.errors import ArchiveRefused

CONTENT_RE = re.compile(  # a video aid's transcript is a sidecar .vtt or .srt beside its .md
    r"^(aids/[A-Za-z0-9][A-Za-z0-9._-]*\.(md|vtt|srt)|(apps|mentors)/[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml)$"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 64 * 1024
_BLOCK = 512
# A pax or GNU long-name payload is a few hundred bytes in practice (long paths, mtimes, a few
# attributes); 64 KiB is generous and keeps a hostile one from costing memory.
MAX_EXTENDED_HEADER = 64 * 1024
_EXTENDED_TYPES = {b"x", b"g", b"L", b"K", b"X"}
# Whatever goes wrong inside the zip/tar/compression libraries on a damaged archive.
_DAMAGE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,  # an unsupported zip compression method
    RuntimeError,  # zipfile: "File ... is encrypted, password required"
    ValueError,
    KeyError,
    UnicodeDecodeError,
)


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
    parts = raw.split("/")
    if ".." in parts:
        problems.append(f"{shown!r}: '..' in the path")
        return None
    # Allowed: a leading "./" (what `tar -cf x.tar .` writes) and a folder's trailing "/".
    # Anything else non-canonical (`aids/./x.md`, `aids//x.md`) is refused rather than guessed.
    while parts[:1] == ["."] and len(parts) > 1:
        parts = parts[1:]
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if parts == ["."]:
        parts = []
    if any(p in {"", "."} for p in parts):
        problems.append(f"{shown!r}: empty or '.' component in the path")
        return None
    return "/".join(parts)


def _refuse(problems: list[str]) -> ArchiveRefused:
    return ArchiveRefused(
        f"The archive was refused, nothing was extracted: {'; '.join(problems[:5])}"
        + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
        problems=problems[:50],
    )


def _plan(
    kind: str,
    entries: list[tuple[str, str, int]],
    problems: list[str],
    folders: set[str],
) -> Plan:
    """Pick the content files; strip one common top folder (e.g. `content/aids/x.md`).

    `entries` are (name in the archive, normalized name, size). The plan is keyed by the name in
    the archive (what the zip or tar library looks up), so `aids/./x.md` extracts as `aids/x.md`;
    two entries that normalize to the same name, or a file and a folder of the same name, are
    refused."""
    names = [n for _, n, _ in entries]
    tops = {n.split("/", 1)[0] for n in names}
    prefix = ""
    if len(tops) == 1 and all("/" in n for n in names):
        top = next(iter(tops))
        if top not in {"aids", "apps", "mentors"}:
            prefix = top + "/"
    plan = Plan(kind)
    seen: set[str] = set()
    for raw, name, size in entries:
        rel = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        if name in seen:
            problems.append(f"{name!r}: appears twice in the archive")
            continue
        if name in folders:
            problems.append(f"{name!r}: both a folder and a file in the archive")
            continue
        seen.add(name)
        if CONTENT_RE.match(rel):
            plan.files[raw] = rel
            plan.sizes[raw] = size
        else:
            plan.ignored.append(name)
    return plan


def _zip_directory_fits(data: bytes, limits: Limits) -> None:
    """Refuse a zip whose central directory is too big before zipfile parses it: ZipFile builds
    one ZipInfo per entry up front (a 17 MB upload of 200k empty entries cost 106 MB and ~10 s
    before the entry limit was checked). Reads only the end-of-central-directory record."""
    try:
        end = zipfile._EndRecData(io.BytesIO(data))  # type: ignore[attr-defined]
    except OSError:
        end = None
    if not end:
        return  # zipfile will say what is wrong
    entries = int(end[zipfile._ECD_ENTRIES_TOTAL])  # type: ignore[attr-defined]
    size = int(end[zipfile._ECD_SIZE])  # type: ignore[attr-defined]
    if entries > limits.max_files:
        raise _refuse([f"{entries} entries; the limit is {limits.max_files}"])
    if size > (entries + 16) * _MAX_CENTRAL_ENTRY:  # the count lies (zipfile trusts the size)
        raise _refuse([f"a central directory of {size} bytes is too big for {entries} entries"])


_MAX_CENTRAL_ENTRY = 320  # bytes per central directory entry on average: 46 + name + extras


def _zip_plan(data: bytes, limits: Limits) -> Plan:
    problems: list[str] = []
    _zip_directory_fits(data, limits)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGE as exc:
        raise ArchiveRefused(f"Not a readable zip archive: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files:
            raise _refuse([f"{len(infos)} entries; the limit is {limits.max_files}"])
        total = 0
        entries: list[tuple[str, str, int]] = []
        folders: set[str] = set()
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
            if info.compress_type not in _ZIP_METHODS:
                problems.append(
                    f"{info.filename!r}: compression method {info.compress_type} is not supported"
                )
                continue
            total += info.file_size
            if info.file_size > limits.max_file_bytes and not info.is_dir():
                problems.append(
                    f"{info.filename!r}: {info.file_size} bytes; the limit per file is "
                    f"{limits.max_file_bytes}"
                )
            if name and info.is_dir():
                folders.add(name)
            if name is None or info.is_dir() or not name:
                continue
            entries.append((info.filename, name, info.file_size))
        if total > limits.max_bytes:
            problems.append(
                f"decompressed size {total} bytes is over the limit of {limits.max_bytes}"
            )
        plan = _plan("zip", entries, problems, folders)
    if problems:
        raise _refuse(problems)
    return plan


_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _decompressed(data: bytes) -> io.BufferedIOBase:
    """The tar stream inside `data`, decompressed lazily: each read(n) decompresses about n bytes
    (the stdlib readers pass max_length to the decompressor), so nothing is buffered whole."""
    raw = io.BytesIO(data)
    if data[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if data[:3] == b"BZh":
        return bz2.BZ2File(raw, mode="rb")
    if data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
        return lzma.LZMAFile(raw, mode="rb")
    return raw


def _octal(field: bytes) -> int:
    """A tar number field: octal text, or base-256 (GNU) when the high bit is set."""
    if field[:1] in {b"\x80", b"\xff"}:
        n = int.from_bytes(field[1:], "big")
        return n if field[:1] == b"\x80" else -1
    text = field.split(b"\0", 1)[0].strip(b" ")
    return int(text, 8) if text else 0


def _read_exact(stream: io.BufferedIOBase, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        chunk = stream.read(min(n, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _pax_size(payload: bytes) -> int | None:
    """The `size=` record of a pax header (it overrides the next member's ustar size)."""
    size = None
    pos = 0
    while pos < len(payload):
        space = payload.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(payload[pos:space])
        except ValueError:
            raise ArchiveRefused(
                "The archive is damaged: a pax header record is malformed."
            ) from None
        if length <= space - pos:
            raise ArchiveRefused("The archive is damaged: a pax header record is malformed.")
        record = payload[space + 1 : pos + length].rstrip(b"\n")
        key, _, value = record.partition(b"=")
        if key == b"size":
            try:
                size = int(value)
            except ValueError:
                raise ArchiveRefused(
                    "The archive is damaged: a pax size is not a number."
                ) from None
        pos += length
    return size


def _scan_tar(data: bytes, limits: Limits) -> int:
    """Walk the tar's 512-byte header blocks before tarfile does; returns the decompressed bytes
    read. Refuses extended headers over MAX_EXTENDED_HEADER, more headers than the entry limit
    allows, and a declared total over `max_bytes`, each before reading the data it declares."""
    max_headers = 2 * limits.max_files + 16  # every entry may carry one extended header
    total = headers = consumed = 0
    next_size: int | None = None
    with _decompressed(data) as stream:
        while True:
            block = _read_exact(stream, _BLOCK)
            consumed += len(block)
            if len(block) < _BLOCK or block == bytes(_BLOCK):
                if consumed == len(block) and len(block) < _BLOCK:
                    raise ArchiveRefused("Not a readable zip or tar archive: too short.")
                return consumed  # end of archive (tarfile reports a truncated member itself)
            unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
            signed = unsigned - 256 * sum(1 for b in block[:148] + block[156:] if b > 127)
            try:
                checksum = _octal(block[148:156])
                size = _octal(block[124:136])
            except ValueError:
                checksum, size = -1, 0
            if checksum not in {unsigned, signed}:
                if consumed == _BLOCK:
                    raise ArchiveRefused("Not a readable zip or tar archive (no tar header).")
                raise ArchiveRefused("The archive is damaged: a tar header's checksum is wrong.")
            headers += 1
            if headers > max_headers:
                raise _refuse([f"more than {limits.max_files} entries"])
            kind = block[156:157]
            if kind in _EXTENDED_TYPES:
                if size < 0 or size > MAX_EXTENDED_HEADER:
                    what = "pax" if kind in {b"x", b"g", b"X"} else "GNU long-name"
                    raise _refuse(
                        [
                            f"a {what} extended header declares {size} bytes; the limit is "
                            f"{MAX_EXTENDED_HEADER}"
                        ]
                    )
                payload = _read_exact(stream, size)
                total += size
                consumed += len(payload)
                if kind in {b"x", b"X"}:
                    next_size = _pax_size(payload)
            else:
                if next_size is not None:
                    size, next_size = next_size, None
                if kind in {b"1", b"2", b"3", b"4", b"5", b"6"}:
                    size = 0  # links, devices, folders, FIFOs carry no data (tarfile agrees)
                if size < 0:
                    raise ArchiveRefused("The archive is damaged: a negative size.")
                total += size
                if total > limits.max_bytes:
                    raise _refuse([f"decompressed size over the limit of {limits.max_bytes} bytes"])
                # Skipping the data decompresses it: bounded by the total checked just above.
                consumed += len(_read_exact(stream, size))
            consumed += len(_read_exact(stream, -size % _BLOCK))
            if total > limits.max_bytes:
                raise _refuse([f"decompressed size over the limit of {limits.max_bytes} bytes"])


def _tar_plan(data: bytes, limits: Limits) -> Plan:
    problems: list[str] = []
    try:
        _scan_tar(data, limits)
    except ArchiveRefused:
        raise
    except _DAMAGE as exc:
        raise ArchiveRefused(f"Not a readable zip or tar archive: {exc}") from exc
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 - closed below
    except _DAMAGE as exc:
        raise ArchiveRefused(f"Not a readable zip or tar archive: {exc}") from exc
    entries: list[tuple[str, str, int]] = []
    folders: set[str] = set()
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
                entries.append((member.name, name, member.size))
            elif name and member.isdir():
                folders.add(name)
    except _DAMAGE as exc:
        problems.append(f"the archive is damaged: {exc}")
    finally:
        tf.close()
    plan = _plan("tar", entries, problems, folders)
    if problems:
        raise _refuse(problems)
    return plan


def inspect_archive(data: bytes, limits: Limits) -> Plan:
    """Check the whole archive directory; raises ArchiveRefused listing every problem."""
    if data[:4] in {b"PK\x03\x04", b"PK\x05\x06"}:
        return _zip_plan(data, limits)
    return _tar_plan(data, limits)


def _copy(src: IO[bytes], dest: Path, budget: int, name: str, declared: int = -1) -> int:
    """Copy at most `budget` bytes; with `declared` >= 0, exactly that many or the archive lies."""
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
    if 0 <= declared != written:
        raise _refuse([f"{name!r}: {written} bytes where its header declares {declared}"])
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

    try:
        return _extract(data, plan, dest_for, limits)
    except ArchiveRefused:
        raise
    except _DAMAGE as exc:
        # A size header that lies, a bad CRC, a truncated member: the archive is damaged.
        raise _refuse([f"the archive is damaged: {exc}"]) from exc


def _extract(data: bytes, plan: Plan, dest_for: Callable[[str], Path], limits: Limits) -> int:
    budget = limits.max_bytes
    count = 0
    if plan.kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name, rel in plan.files.items():
                # No more than the central directory declared (what the limits were checked on).
                allowed = min(budget, limits.max_file_bytes, plan.sizes[name])
                with zf.open(name) as src:
                    budget -= _copy(src, dest_for(rel), allowed, name, plan.sizes[name])
                count += 1
        return count
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for member in tf:
            rel_name = plan.files.get(member.name)
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
