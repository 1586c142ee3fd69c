"""The extension clamps page signals to the server's limits (extension/src/lib/limits.js), read
from one place; those numbers must be the server's (the PageRequest declaration, as the OpenAPI
document publishes it).

Incident: the extension sent titles up to 1,024 characters, the server refused anything over 500
with 422, so a page with a long title got an error instead of its aids."""

from __future__ import annotations

import re
from pathlib import Path

from server.openapi import document

LIMITS_JS = Path(__file__).resolve().parents[1] / "extension" / "src" / "lib" / "limits.js"


def js_limits() -> dict[str, int]:
    text = LIMITS_JS.read_text(encoding="utf-8")
    block = re.search(r"PAGE_LIMITS = Object\.freeze\(\{(.*?)\}\)", text, re.S)
    assert block is not None
    return {k: int(v) for k, v in re.findall(r"(\w+):\s*(\d+)", block.group(1))}


def test_extension_limits_are_the_servers() -> None:
    props = document()["components"]["schemas"]["PageRequest"]["properties"]
    selectors = next(s for s in props["selectors"]["anyOf"] if s.get("type") == "array")
    assert js_limits() == {
        "title": props["title"]["maxLength"],
        "selection": props["selection"]["maxLength"],
        "headings": props["headings"]["maxItems"],
        "heading": props["headings"]["items"]["maxLength"],
        "selectors": selectors["maxItems"],
        "selector": selectors["items"]["maxLength"],
    }
