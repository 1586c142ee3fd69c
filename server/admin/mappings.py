"""Import a CSV of URL-to-aid mappings: "show this aid on this page".

Columns `url,aid` and optionally `context` (a name) and `priority` (a header row names them, in
any order). Each row's URL is resolved with the live catalog, as the sidebar would:

- it lands in a context of an app: the aid is pinned there (at the end; a pin that is already
  there is left as it is). When several contexts match, the one the `context` column names (by
  id or name) is taken, else the best-ranked one;
- it lands only in an app: a new context is made in that app with a rule made from the URL
  (exact host and port, the literal path, no query and no fragment), named by `context` or from
  the path, its rule at `priority` (default 0); rows with the same new rule share that context;
- no app recognises the URL, the aid is unknown, or the row is malformed: an error.

Every error of every row is reported at once (row number, column, message; the header is row 1)
and nothing is applied if any row has one. A dry run returns the plan without writing. The write
is one transaction (the apps it touches must not have changed since the plan, else 409), with one
audit entry per app changed (`mapping.import`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from auth.identity import Identity
from server.admin.common import ServiceBase, app_etag, require, slugify, who
from server.catalog import Catalog
from server.errors import Conflict, ValidationFailed
from server.models import App, FieldErrors, dump, validate
from server.storage import Changes
from server.urlrules import InvalidRule, InvalidUrl, Rule, RuleSet, parse_url
from server.urlrules.url import DEFAULT_PORTS

MAX_ROWS = 5000
MAX_URL_CHARS = 2000
MAX_NAME_CHARS = 200
MAX_ERRORS = 1000  # reported; a file with more is cut off there (the count says how many more)
MAX_PINS = 100  # a context's pins (the Context declaration's limit)
COLUMNS = ("url", "aid", "context", "priority")
REQUIRED = ("url", "aid")
_SPECIAL = {"*": "%2A", "{": "%7B", "}": "%7D"}


@dataclass
class _NewContext:
    app_id: str
    id: str
    name: str
    pattern: str
    priority: int
    aids: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What an import would do: per row, and per app (the pins and new contexts to write)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    pins: dict[str, list[str]] = field(default_factory=dict)  # existing context id -> new pins
    new: dict[str, _NewContext] = field(default_factory=dict)  # app id + pattern -> context
    etags: dict[str, str] = field(default_factory=dict)  # app id -> ETag the plan was made on
    more_errors: int = 0

    def error(self, row: int, column: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": row, "column": column, "message": message})
        else:
            self.more_errors += 1

    def summary(self) -> dict[str, int]:
        actions = [r["action"] for r in self.rows]
        return {
            "rows": len(self.rows),
            "pins_added": actions.count("pin") + actions.count("create"),
            "already_pinned": actions.count("unchanged"),
            "contexts_created": len(self.new),
            "apps_changed": len(self.etags),
        }


def rule_for(url: str) -> str | None:
    """The rule a new context gets: exact host (and port), the literal path; no query, no
    fragment. Characters the rule syntax reads as wildcards or placeholders are encoded."""
    try:
        parsed = parse_url(url)
    except InvalidUrl:
        return None
    port = "" if DEFAULT_PORTS.get(parsed.scheme) == parsed.port else f":{parsed.port}"
    path = "".join(_SPECIAL.get(c, c) for c in parsed.path)
    return f"{parsed.scheme}://{parsed.host}{port}{path}"


def name_for(url: str) -> str:
    """A context name from the URL's path: its last two segments as words ("Orders new")."""
    try:
        path = parse_url(url).path
    except InvalidUrl:
        return "Page"
    words = []
    for segment in [s for s in path.split("/") if s][-2:]:
        word = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", unquote(segment))
        word = re.sub(r"[\s_+-]+", " ", word).strip()
        if word:
            words.append(word)
    name = " ".join(words) or "Home"
    return (name[:1].upper() + name[1:])[:MAX_NAME_CHARS]


def read_rows(data: bytes, plan: Plan) -> list[tuple[int, dict[str, str]]]:
    """The CSV's rows as (row number, column -> value); problems go to `plan.errors`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        plan.error(1, "", f"not UTF-8 text (byte {exc.start})")
        return []
    if "\x00" in text:
        plan.error(1, "", "not a text file (NUL bytes)")
        return []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, dict[str, str]]] = []
    header: list[str] | None = None
    number = 0
    try:
        for record in reader:
            number += 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [c.strip().lower() for c in record]
                unknown = [c for c in header if c not in COLUMNS]
                for name in unknown:
                    plan.error(number, name, f"unknown column (columns: {', '.join(COLUMNS)})")
                for name in REQUIRED:
                    if name not in header:
                        plan.error(number, name, "missing column")
                twice = sorted({c for c in header if header.count(c) > 1})
                for name in twice:
                    plan.error(number, name, "column given twice")
                if unknown or twice or any(n not in header for n in REQUIRED):
                    return []
                continue
            if len(rows) >= MAX_ROWS:
                plan.error(number, "", f"more than {MAX_ROWS} rows: split the file")
                return rows
            if len(record) != len(header):
                plan.error(
                    number, "", f"{len(record)} values; the header names {len(header)} columns"
                )
                continue
            rows.append((number, {k: v.strip() for k, v in zip(header, record, strict=True)}))
    except csv.Error as exc:
        plan.error(number + 1, "", f"malformed CSV: {exc}")
    if header is None:
        plan.error(1, "", "empty file: a header row (url,aid[,context][,priority]) and rows")
    return rows


def make_plan(data: bytes, catalog: Catalog) -> Plan:
    """Check every row against the catalog and plan the writes. Blocking: run in an executor."""
    plan = Plan()
    rows = read_rows(data, plan)
    taken = set(catalog.contexts)
    pins = {c.id: list(c.aids) for c in catalog.contexts.values()}
    if not rows and not plan.errors:
        plan.error(2, "", "no rows after the header")
    for number, row in rows:
        _plan_row(plan, catalog, number, row, taken, pins)
    # By row, then column (malformed rows were found while reading, the rest after).
    order = {name: i for i, name in enumerate(COLUMNS)}
    plan.errors.sort(key=lambda e: (int(e["row"]), order.get(str(e["column"]), -1)))
    return plan


def _plan_row(
    plan: Plan,
    catalog: Catalog,
    number: int,
    row: dict[str, str],
    taken: set[str],
    pins: dict[str, list[str]],
) -> None:
    url, aid = row["url"], row["aid"]
    name, raw_priority = row.get("context", ""), row.get("priority", "")
    before = len(plan.errors) + plan.more_errors
    priority = 0
    url_ok = False
    if not url:
        plan.error(number, "url", "empty")
    elif len(url) > MAX_URL_CHARS:
        plan.error(number, "url", f"longer than {MAX_URL_CHARS} characters")
    else:
        try:
            parse_url(url)
            url_ok = True
        except InvalidUrl as exc:
            plan.error(number, "url", f"not an http(s) URL a browser would load: {exc}")
    if not aid:
        plan.error(number, "aid", "empty")
    elif aid not in catalog.aids:
        plan.error(number, "aid", f"unknown aid {aid[:64]!r}")
    if len(name) > MAX_NAME_CHARS:
        plan.error(number, "context", f"longer than {MAX_NAME_CHARS} characters")
    if raw_priority:
        if re.fullmatch(r"[+-]?\d{1,4}", raw_priority) and -1000 <= int(raw_priority) <= 1000:
            priority = int(raw_priority)
        else:
            plan.error(number, "priority", "must be a whole number from -1000 to 1000")
    if not url_ok:
        return
    found = catalog.resolve(url)
    if found.app is None:
        plan.error(number, "url", "no app recognises this URL (add the app, or a rule for it)")
    if found.app is None or len(plan.errors) + plan.more_errors > before:
        return  # a row with an error plans nothing (and nothing is applied)
    app = found.app
    entry: dict[str, Any] = {"row": number, "url": url, "aid": aid, "app": app.id}
    if found.contexts:
        wanted = name.lower()
        ctx = next(
            (c for c in found.contexts if wanted and wanted in {c.id, c.name.lower()}),
            found.contexts[0],
        )
        entry.update(context=ctx.id, context_name=ctx.name)
        if aid in pins[ctx.id]:
            plan.rows.append({**entry, "action": "unchanged"})
            return
        if len(pins[ctx.id]) >= MAX_PINS:
            plan.error(number, "aid", f"context {ctx.id!r} has {MAX_PINS} pins already")
            return
        pins[ctx.id].append(aid)
        plan.pins.setdefault(ctx.id, []).append(aid)
        plan.etags.setdefault(app.id, app_etag(app))
        plan.rows.append({**entry, "action": "pin"})
        return
    pattern = rule_for(url)
    problem = _check_rule(pattern, url, priority)
    if pattern is None or problem:
        plan.error(number, "url", problem or "no rule can be made from this URL")
        return
    key = f"{app.id} {pattern}"
    new = plan.new.get(key)
    if new is None:
        title = name or name_for(url)
        new = _NewContext(app.id, _unique_id(app.id, title, taken), title, pattern, priority)
        taken.add(new.id)
        plan.new[key] = new
        pins[new.id] = []
    entry.update(context=new.id, context_name=new.name, rule=new.pattern)
    if aid in new.aids:
        plan.rows.append({**entry, "action": "unchanged"})
        return
    if len(new.aids) >= MAX_PINS:
        plan.error(number, "aid", f"context {new.id!r} has {MAX_PINS} pins already")
        return
    new.aids.append(aid)
    plan.etags.setdefault(app.id, app_etag(app))
    plan.rows.append({**entry, "action": "create"})


def _check_rule(pattern: str | None, url: str, priority: int) -> str:
    """'' when `pattern` compiles and matches `url`; else why not."""
    if pattern is None:
        return "no rule can be made from this URL"
    try:
        rules = RuleSet([Rule("import", pattern, "import", priority)])
    except InvalidRule as exc:
        return f"the rule made from it, {pattern!r}, is not valid: {exc}"
    if not rules.match(url):
        return f"the rule made from it, {pattern!r}, would not match it"
    return ""


def _unique_id(app_id: str, name: str, taken: set[str]) -> str:
    base = slugify(f"{app_id}-{name}")[:60].strip("-")
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _apply(app: App, plan: Plan) -> App:
    """The app with the plan's pins appended and its new contexts added (checked again by the
    App declaration)."""
    data = dump(app)
    for ctx in data["contexts"]:
        ctx["aids"] = [*ctx["aids"], *plan.pins.get(ctx["id"], [])]
    for new in plan.new.values():
        if new.app_id == app.id:
            data["contexts"].append(
                {
                    "id": new.id,
                    "name": new.name,
                    "rule": {"pattern": new.pattern, "priority": new.priority},
                    "aids": new.aids,
                }
            )
    try:
        return validate(App, data)
    except FieldErrors as exc:
        raise ValidationFailed(
            f"App {app.id!r} would not be valid: "
            + "; ".join(f"{f}: {m}" for f, m in exc.errors[:5]),
            errors=[{"field": f, "message": m} for f, m in exc.errors],
        ) from exc


class MappingOps(ServiceBase):
    """The CSV import of URL-to-aid mappings."""

    async def import_mappings(
        self, identity: Identity, data: bytes, *, dry_run: bool
    ) -> dict[str, Any]:
        require(identity, "mapping.import", "Importing URL-to-aid mappings")
        loop = asyncio.get_running_loop()
        plan = await loop.run_in_executor(None, make_plan, data, self.library.catalog)
        if plan.errors:
            more = f" (and {plan.more_errors} more)" if plan.more_errors else ""
            raise ValidationFailed(
                f"{len(plan.errors) + plan.more_errors} error(s) in the CSV, nothing was "
                f"applied{more}: "
                + "; ".join(
                    f"row {e['row']}"
                    + (f" {e['column']}" if e["column"] else "")
                    + f": {e['message']}"
                    for e in plan.errors[:5]
                ),
                errors=plan.errors,
                more_errors=plan.more_errors,
            )
        result = {
            "dry_run": dry_run,
            "applied": False,
            "summary": plan.summary(),
            "rows": plan.rows,
            "contexts_created": [
                {"id": n.id, "app": n.app_id, "name": n.name, "rule": n.pattern, "aids": n.aids}
                for n in plan.new.values()
            ],
        }
        if dry_run or not plan.etags:
            return result

        def op(changes: Changes) -> None:
            for app_id, etag in sorted(plan.etags.items()):
                current = self.storage.get_app_sync(app_id)
                if app_etag(current) != etag:
                    raise Conflict(
                        f"App {app_id!r} changed while the mappings were checked: nothing was "
                        "applied. Run the import again."
                    )
                new = _apply(current, plan)
                self.storage.save_app_tx(new, changes)
                self.storage.audit_add_tx(
                    who(identity),
                    "mapping.import",
                    "app",
                    app_id,
                    {
                        "pins": {
                            c.id: plan.pins[c.id] for c in current.contexts if c.id in plan.pins
                        },
                        "contexts_created": [n.id for n in plan.new.values() if n.app_id == app_id],
                    },
                )

        await self.library.write(op)
        return {**result, "applied": True}


__all__ = ["MAX_ROWS", "MAX_URL_CHARS", "MappingOps", "Plan", "make_plan", "name_for", "rule_for"]
