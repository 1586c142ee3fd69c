"""Wrapped targets (server/wrapped.py): the shared vectors (also run by
extension/tests/wrapped.test.mjs) and the declaration checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.models import App, FieldErrors, validate
from server.urlrules import parse_url
from server.wrapped import InvalidWrappedTarget, parse_wrapped_target, target_url

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "wrapped_targets.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_vector(case: dict[str, Any]) -> None:
    got = target_url(case["url"], case["targets"])
    expect = case["expect"]
    assert got == (None if expect is None else parse_url(expect).normalized)


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["target"])
def test_invalid_declaration(case: dict[str, str]) -> None:
    with pytest.raises(InvalidWrappedTarget, match=case["error"].replace("(", r"\(")):
        parse_wrapped_target(case["target"])


def test_vectors_cover_the_cases_the_issue_names() -> None:
    names = " ".join(c["name"] for c in VECTORS["cases"])
    for word in ("double-encoded", "another origin", "javascript:", "missing parameter"):
        assert word in names


def test_an_app_refuses_a_bad_wrapped_target_saying_why() -> None:
    """An admin who writes the target inside the path gets told where `{target}` may go."""
    with pytest.raises(FieldErrors) as info:
        validate(
            App,
            {
                "id": "sn",
                "name": "ServiceNow",
                "wrapped_targets": ["/nav_to.do?uri={target}", "/a/{target}/b"],
            },
        )
    [(where, message)] = info.value.errors
    assert where == "wrapped_targets[1]" and "must end it" in message


def test_at_most_ten_wrapped_targets() -> None:
    with pytest.raises(FieldErrors) as info:
        validate(
            App,
            {"id": "a", "name": "A", "wrapped_targets": [f"/w{i}/{{target}}" for i in range(11)]},
        )
    assert info.value.errors == [("wrapped_targets", "at most 10 entries")]
