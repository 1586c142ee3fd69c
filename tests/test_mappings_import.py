"""Import a CSV of URL-to-aid mappings (POST /api/v1/admin/mappings/import), and import errors
reported in one pass.

The library is a small one of another company (a clinic's scheduling and billing apps), not the
demo's, so the rules and names here say nothing about the demo content.
"""

from __future__ import annotations

import html
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from server import keys
from server.admin.mappings import name_for, rule_for
from server.app import create_app
from server.settings import Settings
from tests.tokens import TokenMaker

A = "/api/v1/admin"
IMPORT = f"{A}/mappings/import"
CSV = {"Content-Type": "text/csv"}

APPS = {
    "sched": """id: sched
name: Appointment book
rules: ["https://book.clinic.example/**"]
contexts:
  - id: sched-new
    name: New appointment
    rule: "https://book.clinic.example/appointments/new"
    aids: [sched-book-visit]
  - id: sched-patient
    name: Patient chart
    rule: "https://book.clinic.example/patients/*"
""",
    "billing": """id: billing
name: Claims desk
rules: ["https://claims.clinic.example/**"]
""",
}
AIDS = {
    "sched-book-visit": ("Book a visit", "sched"),
    "sched-reschedule": ("Reschedule a visit", "sched"),
    "sched-consent": ("Record consent", "sched"),
    "bill-submit-claim": ("Submit a claim", "billing"),
    "bill-denials": ("Work a denied claim", "billing"),
}


def write_library(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    for name, text in APPS.items():
        (root / "apps" / f"{name}.yaml").write_text(text)
    for aid_id, (title, app) in AIDS.items():
        (root / "aids" / f"{aid_id}.md").write_text(
            f"---\nid: {aid_id}\ntitle: {title}\nstatus: published\napps: [{app}]\n"
            f"verified_at: 2026-02-01\n---\n{title}, step by step.\n"
        )
    return root


@pytest.fixture
def lib_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(content_dir=write_library(tmp_path / "clinic"))


@pytest.fixture
async def cclient(aiohttp_client: Any, lib_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(lib_settings))


async def post_csv(
    client: TestClient, who: dict[str, str], text: str, dry_run: bool = False
) -> Any:
    query = "?dry_run=true" if dry_run else ""
    return await client.post(IMPORT + query, data=text.encode(), headers={**who, **CSV})


async def resolve(client: TestClient, who: dict[str, str], url: str) -> list[str]:
    resp = await client.post("/api/v1/suggest", json={"url": url}, headers=who)
    assert resp.status == 200
    return [a["id"] for a in (await resp.json())["aids"]]


def pins(client: TestClient, ctx_id: str) -> list[str]:
    return list(client.server.app[keys.LIBRARY].catalog.contexts[ctx_id].aids)


GOOD = """url,aid,context,priority
https://book.clinic.example/appointments/new,sched-consent,,
https://book.clinic.example/appointments/new,sched-book-visit,,
https://book.clinic.example/patients/4411?tab=notes,sched-reschedule,,
https://claims.clinic.example/claims/submit?draft=1,bill-submit-claim,Submit claim,5
https://claims.clinic.example/claims/submit,bill-denials,,
https://claims.clinic.example/denials/queue,bill-denials,,
"""


async def test_dry_run_shows_the_plan_and_the_import_applies_it(
    cclient: TestClient, admin: dict[str, str]
) -> None:
    """Rows landing in a context pin there (appended, an existing pin left alone); rows landing
    only in an app make one context per new rule (exact host, literal path, no query), named by
    the `context` column or the path; the dry run writes nothing, the import writes it all."""
    before = cclient.server.app[keys.LIBRARY].catalog.version
    resp = await post_csv(cclient, admin, GOOD, dry_run=True)
    assert resp.status == 200, await resp.text()
    plan = await resp.json()
    assert plan["dry_run"] is True and plan["applied"] is False
    assert [r["action"] for r in plan["rows"]] == [
        "pin",
        "unchanged",
        "pin",
        "create",
        "create",
        "create",
    ]
    assert [r["row"] for r in plan["rows"]] == [2, 3, 4, 5, 6, 7]
    assert plan["summary"]["contexts_created"] == 2
    created = {c["name"]: c for c in plan["contexts_created"]}
    assert created["Submit claim"]["rule"] == "https://claims.clinic.example/claims/submit"
    assert created["Submit claim"]["aids"] == ["bill-submit-claim", "bill-denials"]
    assert created["Denials queue"]["rule"] == "https://claims.clinic.example/denials/queue"
    assert cclient.server.app[keys.LIBRARY].catalog.version == before  # nothing written
    assert pins(cclient, "sched-new") == ["sched-book-visit"]

    resp = await post_csv(cclient, admin, GOOD)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["applied"] is True
    assert pins(cclient, "sched-new") == ["sched-book-visit", "sched-consent"]
    assert pins(cclient, "sched-patient") == ["sched-reschedule"]
    catalog = cclient.server.app[keys.LIBRARY].catalog
    new_ctx = catalog.resolve("https://claims.clinic.example/claims/submit?draft=2").contexts
    assert [c.name for c in new_ctx] == ["Submit claim"]
    assert new_ctx[0].aids == ("bill-submit-claim", "bill-denials")
    # The learner's sidebar on that page shows the pinned aids first.
    learner_sees = await resolve(
        cclient, admin, "https://claims.clinic.example/claims/submit?draft=2"
    )
    assert learner_sees[:2] == ["bill-submit-claim", "bill-denials"]
    resp = await cclient.get(f"{A}/audit?action=mapping.import", headers=admin)
    assert sorted(e["target_id"] for e in (await resp.json())["entries"]) == ["billing", "sched"]
    # Importing the same file again changes nothing.
    again = await (await post_csv(cclient, admin, GOOD)).json()
    assert {r["action"] for r in again["rows"]} == {"unchanged"}


async def test_every_error_of_every_row_in_one_pass_and_nothing_applied(
    cclient: TestClient, admin: dict[str, str]
) -> None:
    """A file with several bad rows: each problem (row, column, message) is reported at once, a
    good row among them is not applied."""
    text = """url,aid,priority
https://book.clinic.example/appointments/new,sched-consent,
https://nobody.example/x,sched-consent,
https://book.clinic.example/a,no-such-aid,
not a url,also-unknown,
https://claims.clinic.example/claims/x,bill-denials,high
https://book.clinic.example/b,sched-consent
"""
    resp = await post_csv(cclient, admin, text)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    errors = [(e["row"], e["column"]) for e in (await resp.json())["errors"]]
    assert errors == [
        (3, "url"),
        (4, "aid"),
        (5, "url"),
        (5, "aid"),
        (6, "priority"),
        (7, ""),
    ]
    assert pins(cclient, "sched-new") == ["sched-book-visit"]


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("address,aid\nhttps://book.clinic.example/x,sched-consent\n", "address"),
        ("aid\nsched-consent\n", "url"),
        ("", ""),
        ("url,aid\n", ""),
    ],
)
async def test_a_bad_header_or_an_empty_file_is_an_error(
    cclient: TestClient, admin: dict[str, str], text: str, column: str
) -> None:
    resp = await post_csv(cclient, admin, text)
    assert resp.status == 422
    assert column in [e["column"] for e in (await resp.json())["errors"]]


async def test_limits_type_and_roles(
    cclient: TestClient, admin: dict[str, str], tokens: TokenMaker
) -> None:
    """Over 5,000 rows, a URL over 2,000 characters, a body over the upload limit, JSON instead of
    CSV, an author: each refused with a problem, nothing applied."""
    many = "url,aid\n" + "https://book.clinic.example/p/1,sched-consent\n" * 5001
    body = await (await post_csv(cclient, admin, many)).json()
    assert any("5000 rows" in e["message"] for e in body["errors"])
    long_url = "https://book.clinic.example/" + "a" * 2000
    body = await (await post_csv(cclient, admin, f"url,aid\n{long_url},sched-consent\n")).json()
    assert body["errors"][0]["column"] == "url"
    resp = await cclient.post(IMPORT, json={"url": "x"}, headers=admin)
    assert resp.status == 415
    limit = cclient.server.app[keys.SETTINGS].admin_max_upload_bytes
    resp = await cclient.post(IMPORT, data=io.BytesIO(b"u" * (limit + 1)), headers={**admin, **CSV})
    assert resp.status == 413
    author = tokens.auth(sub="author-1", roles=("learner", "author"))
    resp = await post_csv(cclient, author, GOOD)
    assert resp.status == 403
    resp = await cclient.post(IMPORT + "?dry_run=maybe", data=GOOD, headers={**admin, **CSV})
    assert resp.status == 422
    assert pins(cclient, "sched-new") == ["sched-book-visit"]


def test_rules_and_names_made_from_urls() -> None:
    """Exact host and port, literal path, no query or fragment; characters the rule syntax reads
    as wildcards or placeholders are encoded, so the rule matches only that path."""
    assert rule_for("HTTPS://Claims.Clinic.Example/a/b?x=1#top") == (
        "https://claims.clinic.example/a/b"
    )
    assert rule_for("http://host.example:8080/") == "http://host.example:8080/"
    assert rule_for("https://h.example/files/*/{id}") == "https://h.example/files/%2A/%7Bid%7D"
    assert rule_for("ftp://h.example/x") is None
    assert name_for("https://h.example/claims/submit-new.html") == "Claims submit new"
    assert name_for("https://h.example/") == "Home"


# -- import errors in one pass -----------------------------------------------------------------

BROKEN_APP = """id: lab
rules: ["re:(unclosed"]
contexts:
  - id: lab-orders
    name: Lab orders
    rule: "https://lab.clinic.example/orders/{nope}"
    colour: blue
    aids: [lab-draw-blood, lab-ghost]
  - id: sched-new
    name: Taken id
    rule: "ftp://lab.clinic.example/"
"""
BROKEN_AID = """---
id: lab-draw-blood
title: Draw blood
type: poster
---
Steps.
"""


def broken_content(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "apps" / "lab.yaml").write_text(BROKEN_APP)
    (root / "aids" / "lab-draw-blood.md").write_text(BROKEN_AID)
    return root


# What every interface must report together: field errors (a missing name, an unknown field, a
# bad aid type) and rule errors (two invalid patterns, a pinned aid that does not exist, a
# context id another app uses).
BOTH_KINDS = [
    ("apps/lab.yaml", "name: is required"),
    ("apps/lab.yaml", "colour"),
    ("apps/lab.yaml", "rules[0]: invalid URL rule 're:(unclosed'"),
    ("apps/lab.yaml", "contexts[0].rule: invalid URL rule"),
    ("apps/lab.yaml", "contexts[1].rule: invalid URL rule 'ftp://lab.clinic.example/'"),
    ("apps/lab.yaml", "unknown aid 'lab-ghost'"),
    ("aids/lab-draw-blood.md", "type: 'poster' is not one of"),
]


def assert_both_kinds(found: list[tuple[str, str]]) -> None:
    for file, text in BOTH_KINDS:
        assert any(f.endswith(file) and text in m for f, m in found), (file, text, found)
    # The aid with field errors of its own is not also called unknown where it is pinned.
    assert not any("unknown aid 'lab-draw-blood'" in m for _, m in found)


def test_inflow_import_reports_field_and_rule_errors_in_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Incident: `inflow import` stopped at an app file's field errors (a missing name) and only
    after they were fixed reported its invalid rules and unknown pinned aids: two rounds of
    fixing for one file. Now every problem of every file comes at once."""
    from server.cli import main

    monkeypatch.setenv("INFLOW_DATA_DIR", str(tmp_path / "data"))
    assert main(["import", str(broken_content(tmp_path / "content"))]) == 2
    err = capsys.readouterr().err
    found = []
    for line in err.splitlines()[1:]:
        where, _, message = line.strip().partition(": ")
        found.append((where.rsplit(":", 1)[0], message))
    assert_both_kinds(found)


async def test_the_import_api_and_console_report_both_kinds_in_one_pass(
    cclient: TestClient, admin: dict[str, str], tokens: TokenMaker, tmp_path: Path
) -> None:
    """The archive import (API and console) lists the same problems in one answer, the context
    id another app already uses among them (it was a separate 409 after every other fix)."""
    root = broken_content(tmp_path / "upload")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(root.rglob("*.*")):
            archive.write(path, str(path.relative_to(root)))
    data = buffer.getvalue()
    resp = await cclient.post(
        f"{A}/import", data=data, headers={**admin, "Content-Type": "application/zip"}
    )
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    found = [(e["file"], e["message"]) for e in errors]
    assert_both_kinds(found)
    assert any("context id 'sched-new' is used by the app 'sched'" in m for _, m in found)

    csrf = await console_sign_in(cclient, tokens)
    form = FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("archive", data, filename="lab.zip", content_type="application/zip")
    resp = await cclient.post("/admin/import", data=form)
    assert resp.status == 422
    page = html.unescape(await resp.text())
    for _, text in BOTH_KINDS:
        assert text in page, text
    assert "lab-orders" not in cclient.server.app[keys.LIBRARY].catalog.contexts


async def console_sign_in(client: TestClient, tokens: TokenMaker) -> str:
    """A console session (as the sign-in callback makes it); returns its CSRF token."""
    app = client.server.app
    token = tokens.token(sub="admin-1", roles=("learner", "author", "admin", "reviewer"))
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    store = app[keys.ADMIN_SESSIONS]
    sid, session = await store.create(identity, {"access_token": token, "refresh_token": ""})
    client.session.cookie_jar.update_cookies({store.cookie_name: sid})
    return str(session.csrf)


async def test_console_checks_the_csv_first_then_applies_it(
    cclient: TestClient, tokens: TokenMaker
) -> None:
    """The import page takes the CSV: the first step shows what would happen (nothing written),
    the confirmation applies it and says so; a bad file lists every row's problems."""
    csrf = await console_sign_in(cclient, tokens)
    page = await (await cclient.get("/admin/import")).text()
    assert 'name="mappings"' in page
    form = FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("step", "preview")
    form.add_field("mappings", GOOD.encode(), filename="pins.csv", content_type="text/csv")
    resp = await cclient.post("/admin/import", data=form)
    assert resp.status == 200, await resp.text()
    preview = html.unescape(await resp.text())
    assert "5 pin(s) to add, 1 already pinned, 2 new context(s)" in preview
    assert "https://claims.clinic.example/claims/submit" in preview
    assert pins(cclient, "sched-new") == ["sched-book-visit"]  # nothing written yet
    confirm = FormData(default_to_multipart=True)  # as the page's form sends it
    confirm.add_field("csrf_token", csrf)
    confirm.add_field("step", "apply")
    text = preview.split('name="csv_text" hidden readonly>')[1].split("</textarea>")[0]
    confirm.add_field("csv_text", text)
    resp = await cclient.post("/admin/import", data=confirm)
    assert resp.status == 200
    assert "Mappings imported: 5 pin(s) added, 2 context(s) created." in await resp.text()
    assert pins(cclient, "sched-new") == ["sched-book-visit", "sched-consent"]

    bad = FormData()
    bad.add_field("csrf_token", csrf)
    bad.add_field("mappings", b"url,aid\nhttps://nobody.example/,ghost\n", filename="bad.csv")
    resp = await cclient.post("/admin/import", data=bad)
    assert resp.status == 422
    page = html.unescape(await resp.text())
    assert "no app recognises this URL" in page and "unknown aid 'ghost'" in page


def test_inflow_import_names_a_context_id_another_app_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Incident: `inflow import` of an app whose context id another stored app already used
    crashed with a database traceback (UNIQUE constraint failed: contexts.id). It is a problem
    of the file now, reported with the others, and nothing is imported."""
    from server.cli import main

    monkeypatch.setenv("INFLOW_DATA_DIR", str(tmp_path / "data"))
    assert main(["import", str(write_library(tmp_path / "clinic"))]) == 0
    other = tmp_path / "other"
    (other / "apps").mkdir(parents=True)
    (other / "apps" / "lab.yaml").write_text(
        'id: lab\nname: Lab\nrules: ["https://lab.example/**"]\ncontexts:\n'
        '  - {id: sched-new, name: Draw, rule: "https://lab.example/draw"}\n'
    )
    capsys.readouterr()
    assert main(["import", str(other)]) == 2
    err = capsys.readouterr().err
    assert "apps/lab.yaml:1: context id 'sched-new' is used by the app 'sched'" in err
    assert "Traceback" not in err
