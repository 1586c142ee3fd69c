"""Hostile content archives: refused fast with a clear 4xx problem, no 500, no memory spike."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import tracemalloc
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.admin.archive import MAX_EXTENDED_HEADER, Limits, extract, inspect_archive
from server.errors import ArchiveRefused

A = "/api/v1/admin"
AID = b"---\nid: odd\ntitle: Odd\napps: [hr]\nstatus: published\n---\nBody\n"
DECLARED = 512 * 1024 * 1024  # what the probe's header claimed
PRESENT = 16 * 1024 * 1024  # what the test really compresses (enough to show reading it whole)

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "gz": lambda b: gzip.compress(b, compresslevel=9),
    "bz2": lambda b: bz2.compress(b, compresslevel=9),
    "xz": lambda b: lzma.compress(b),
}


def _extended_bomb(kind: str, compression: str) -> bytes:
    """A tar whose first header is a pax (or GNU long-name) header declaring 512 MB. Its payload
    is zeros, truncated after 16 MB (1 MB uncompressed for a plain tar): a few hundred bytes to a
    few KB compressed."""
    if kind == "pax":
        info = tarfile.TarInfo("././@PaxHeader")
        info.type = tarfile.XHDTYPE
        fmt = tarfile.USTAR_FORMAT
    else:
        info = tarfile.TarInfo("././@LongLink")
        info.type = tarfile.GNUTYPE_LONGNAME
        fmt = tarfile.GNU_FORMAT
    info.size = DECLARED
    present = PRESENT if compression != "plain" else 1024 * 1024
    return COMPRESS[compression](info.tobuf(fmt) + bytes(present))


async def test_huge_extended_tar_header_is_refused_before_it_is_read(
    client: TestClient, admin: dict[str, str]
) -> None:
    """Incident: a 460-byte bzip2 tar whose pax header declared 512 MB made the import read it
    whole (19 s, 1.1 GB of server memory) before answering 422. (One server for every case:
    starting one per case cost a minute of CI.)"""
    for kind in ("pax", "gnu"):
        for compression in sorted(COMPRESS):
            case = (kind, compression)
            data = _extended_bomb(kind, compression)
            assert len(data) < 1_100_000
            resp = await client.post(
                f"{A}/import",
                data=io.BytesIO(data),
                headers={**admin, "Content-Type": "application/x-tar"},
            )
            assert resp.status == 422, (case, await resp.text())
            assert resp.content_type == "application/problem+json"
            problem = await resp.json()
            assert problem["type"].endswith("archive-refused"), case
            expected = f"declares {DECLARED} bytes; the limit is {MAX_EXTENDED_HEADER}"
            assert expected in problem["detail"], (case, problem)


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_refusing_a_huge_extended_header_costs_little_memory(compression: str) -> None:
    """Incident: the same archive cost 1.1 GB of memory; now the header is refused before its
    payload is decompressed, so the peak stays far below the 16 MB that are really there."""
    data = _extended_bomb("pax", compression)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveRefused, match="extended header declares"):
            inspect_archive(data, Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Below the 16 MB present (read whole before the fix); xz's own 8 MB dictionary is the rest.
    assert peak < 10 * 1024 * 1024, peak


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _patch_central(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Change one field of the (only) central directory entry."""
    at = data.rindex(b"PK\x01\x02") + offset
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt) :]


def _zip_size_lies(smaller: bool) -> bytes:
    data = _zip({"aids/odd.md": AID}, zipfile.ZIP_DEFLATED)
    return _patch_central(data, 24, "<I", len(AID) - 20 if smaller else len(AID) + 20)


def _zip_local_name_differs() -> bytes:
    data = _zip({"aids/odd.md": AID})
    return data.replace(b"aids/odd.md", b"aids/odx.md", 1)  # the local header's copy only


def _zip_flag(bits: int) -> bytes:
    return _patch_central(_zip({"aids/odd.md": AID}), 8, "<H", bits)


def _zip_method(method: int) -> bytes:
    return _patch_central(_zip({"aids/odd.md": AID}), 10, "<H", method)


def _zip_symlink() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("aids/odd.md")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _tar(members: list[tuple[str, bytes, bytes]], compression: str = "gz") -> bytes:
    """(name, type, data) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                info.linkname = "../../etc/passwd" if kind in {b"1", b"2"} else ""
                tf.addfile(info)
    return COMPRESS[compression](buf.getvalue())


def _tar_truncated() -> bytes:
    plain = _tar([("aids/odd.md", tarfile.REGTYPE, AID * 40)], "plain")
    return gzip.compress(plain[:700])


def _tar_bad_checksum() -> bytes:
    plain = bytearray(_tar([("aids/odd.md", tarfile.REGTYPE, AID)], "plain"))
    plain[0] ^= 0x01
    return bytes(plain)


F = tarfile.REGTYPE
ODDITIES: list[tuple[str, Callable[[], bytes], str]] = [
    ("zip dot component", lambda: _zip({"aids/./odd.md": AID}), "'.' component"),
    ("zip empty component", lambda: _zip({"aids//odd.md": AID}), "empty or '.' component"),
    ("zip size header lies low", lambda: _zip_size_lies(True), "damaged"),
    ("zip size header lies high", lambda: _zip_size_lies(False), "where its header declares"),
    ("zip local name differs", _zip_local_name_differs, "damaged"),
    ("zip encrypted", lambda: _zip_flag(0x1), "encrypted"),
    ("zip unknown method", lambda: _zip_method(99), "compression method 99"),
    ("zip absolute", lambda: _zip({"/aids/odd.md": AID}), "absolute path"),
    ("zip dotdot", lambda: _zip({"aids/../../odd.md": AID}), "'..'"),
    ("zip duplicate", lambda: _zip({"aids/odd.md": AID, "./aids/odd.md": AID}), "twice"),
    ("zip symlink", _zip_symlink, "symbolic links"),
    ("zip folder and file", lambda: _zip({"aids/odd.md/": b"", "aids/odd.md": AID}), "folder"),
    ("zip truncated", lambda: _zip({"aids/odd.md": AID})[:-30], "zip"),
    ("tar dot component", lambda: _tar([("aids/./odd.md", F, AID)]), "'.' component"),
    ("tar absolute", lambda: _tar([("/aids/odd.md", F, AID)]), "absolute path"),
    ("tar dotdot", lambda: _tar([("../aids/odd.md", F, AID)]), "'..'"),
    ("tar duplicate", lambda: _tar([("aids/odd.md", F, AID), ("aids/odd.md", F, AID)]), "twice"),
    ("tar symlink", lambda: _tar([("aids/odd.md", tarfile.SYMTYPE, b"")]), "links"),
    ("tar hardlink", lambda: _tar([("aids/odd.md", tarfile.LNKTYPE, b"")]), "links"),
    ("tar fifo", lambda: _tar([("aids/odd.md", tarfile.FIFOTYPE, b"")]), "regular files"),
    (
        "tar folder and file",
        lambda: _tar([("aids/odd.md", tarfile.DIRTYPE, b""), ("aids/odd.md", F, AID)]),
        "folder",
    ),
    ("tar truncated member", _tar_truncated, "damaged"),
    ("tar bad header checksum", _tar_bad_checksum, "tar"),
    ("not an archive", lambda: b"hello, this is not an archive" * 40, "Not a readable"),
    ("empty body", lambda: b"", ""),
]


async def test_zip_and_tar_oddities_are_clear_4xx_problems(
    client: TestClient, admin: dict[str, str]
) -> None:
    """Incident: a zip entry `aids/./x.md` and a zip whose size header lied answered 500 with a
    traceback; each oddity of the kind must be a 4xx problem saying what is wrong."""
    wrong = []
    for name, archive, says in ODDITIES:
        resp = await client.post(
            f"{A}/import", data=archive(), headers={**admin, "Content-Type": "application/zip"}
        )
        problem: dict[str, Any] = await resp.json()
        if not (
            400 <= resp.status < 500
            and resp.content_type == "application/problem+json"
            and says in problem["detail"]
        ):
            wrong.append((name, resp.status, problem))
    assert wrong == []
    assert (await client.get(f"{A}/aids/odd", headers=admin)).status == 404


def test_a_leading_dot_slash_is_still_accepted_and_extracts(tmp_path: Any) -> None:
    """`tar -czf x.tgz .` writes `./aids/x.md`: that stays a valid archive."""
    data = _tar([(".", tarfile.DIRTYPE, b""), ("./aids/odd.md", F, AID)])
    plan = inspect_archive(data, Limits())
    assert plan.files == {"./aids/odd.md": "aids/odd.md"}
    assert extract(data, plan, tmp_path / "out", Limits()) == 1
    assert (tmp_path / "out" / "aids" / "odd.md").read_bytes() == AID


def _many_entries(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            zf.writestr(f"a{i}", b"")
    return buf.getvalue()


@pytest.mark.parametrize("lie", [False, True])
def test_a_zip_with_too_many_entries_is_refused_before_its_directory_is_parsed(lie: bool) -> None:
    """Incident class: zipfile parses the whole central directory into ZipInfo objects before
    the entry limit was checked (a 17 MB zip of 200k empty entries cost 106 MB). The end record's
    count, and the directory's size when the count lies, are checked first."""
    data = _many_entries(30_000)
    if lie:  # the end record claims 10 entries
        at = data.rindex(b"PK\x05\x06")
        data = data[: at + 8] + struct.pack("<HH", 10, 10) + data[at + 12 :]
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveRefused, match=r"30000 entries|too big for 10 entries"):
            inspect_archive(data, Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, peak
