"""An aid as the index reads it (index/documents.py `IndexableAid`), for index tests that build
their own small libraries without the database."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlainAid:
    id: str
    title: str
    summary: str
    body: str
    type: str = "howto"
    status: str = "published"
    tags: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    audience: tuple[str, ...] = ()
    transcript: str = ""
