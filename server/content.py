"""The on-disk content format ("docs as code"): read and validate a directory, write it back.

    apps/<app-id>.yaml        an app, its URL rules and its contexts (pages) with pinned aids
    aids/<aid-id>.md          an aid: YAML front matter, then the Markdown body
    aids/<aid-id>.vtt|.srt    a video aid's WebVTT or SRT transcript (docs/transcripts.md)
    mentors/<mentor-id>.yaml  a peer mentor: contact, apps, topics, vetting (optional folder)

Reading validates everything before anything is written; every error names the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from index.transcripts import TranscriptError, parse_transcript
from server.errors import ContentError
from server.models import (
    Aid,
    App,
    FieldErrors,
    Mentor,
    aid_from_mapping,
    app_from_mapping,
    dump,
    mentor_from_mapping,
)
from server.urlrules import InvalidRule, Rule, compile_rule

FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class ContentSet:
    apps: list[App]
    aids: list[Aid]
    mentors: list[Mentor] = field(default_factory=list)


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps dates as strings-or-dates (SafeLoader already does)."""


def _key_lines(text: str) -> dict[str, int]:
    """Map dotted key paths ('contexts[0].rule') to 1-based line numbers, best effort."""
    lines: dict[str, int] = {}
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return lines

    def walk(n: Any, path: str) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = f"{path}.{k.value}" if path else str(k.value)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                key = f"{path}[{i}]"
                lines[key] = item.start_mark.line + 1
                walk(item, key)

    walk(node, "")
    return lines


def _line_for(field: str, lines: dict[str, int], offset: int) -> int:
    probe = field
    while probe:
        if probe in lines:
            return lines[probe] + offset
        probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe) if re.search(r"[.\[]", probe) else ""
    return 1 + offset


def _parse_yaml(
    text: str, name: str, errors: list[tuple[str, int, str]], offset: int = 0
) -> dict[str, Any] | None:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 1 if mark else 1) + offset
        errors.append((name, line, f"YAML syntax error: {getattr(exc, 'problem', exc)}"))
        return None
    if not isinstance(data, dict):
        errors.append((name, 1 + offset, "expected a mapping of fields"))
        return None
    return data


def parse_aid(
    text: str, name: str, errors: list[tuple[str, int, str]], transcript: str = ""
) -> Aid | None:
    """An aid file; `transcript` is its sidecar's text (checked by the caller, which names the
    sidecar's own lines)."""
    m = FRONT_MATTER_RE.match(text)
    if not m:
        errors.append((name, 1, "missing YAML front matter (a '---' line, fields, then '---')"))
        return None
    data = _parse_yaml(m.group(1), name, errors, offset=1)
    if data is None:
        return None
    if "body" in data:
        errors.append(
            (
                name,
                _line_for("body", _key_lines(m.group(1)), 1),
                "'body' is the Markdown after the front matter, not a field",
            )
        )
        return None
    data["body"] = text[m.end() :].strip("\n") + "\n"
    if transcript:
        if "transcript" in data:
            line = _line_for("transcript", _key_lines(m.group(1)), 1)
            errors.append((name, line, "transcript: given in the front matter and a sidecar file"))
            return None
        data["transcript"] = transcript
    try:
        return aid_from_mapping(data)
    except FieldErrors as exc:
        lines = _key_lines(m.group(1))
        errors.extend((name, _line_for(f, lines, 1), f"{f}: {msg}") for f, msg in exc.errors)
        return None


def parse_app(text: str, name: str, errors: list[tuple[str, int, str]]) -> App | None:
    data = _parse_yaml(text, name, errors)
    if data is None:
        return None
    lines = _key_lines(text)
    try:
        app = app_from_mapping(data)
    except FieldErrors as exc:
        errors.extend((name, _line_for(f, lines, 0), f"{f}: {msg}") for f, msg in exc.errors)
        _check_raw_rules(data, name, lines, {f for f, _ in exc.errors}, errors)
        return None
    for i, spec in enumerate(app.rules):
        try:
            compile_rule(Rule(f"{app.id}#{i}", spec.pattern, app.id, spec.priority))
        except InvalidRule as exc:
            errors.append(
                (
                    name,
                    _line_for(f"rules[{i}]", lines, 0),
                    f"rules[{i}]: invalid URL rule {spec.pattern!r}: {exc}",
                )
            )
    for i, ctx in enumerate(app.contexts):
        for j, rule in enumerate(ctx.rules):
            try:
                compile_rule(Rule(f"{ctx.id}#{j}", rule.pattern, ctx.id, rule.priority))
            except InvalidRule as exc:
                single = f"contexts[{i}].rule"  # the file's shorthand for one rule
                where = single if single in lines else f"contexts[{i}].rules[{j}]"
                errors.append(
                    (
                        name,
                        _line_for(where, lines, 0),
                        f"{where}: invalid URL rule {rule.pattern!r}: {exc}",
                    )
                )
    return app


# -- one pass: an app file with field errors is still checked for everything else -------------
# (its rules, its context ids and its pinned aids), so a fix does not reveal a second round.


def _raw_rules(data: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(field, pattern, priority) of every rule written in an app file's data, as far as its
    shape can be read: `rules`, each context's `rule` or `rules`."""
    out: list[tuple[str, str, int]] = []

    def take(where: str, value: Any, priority: Any = 0) -> None:
        if isinstance(value, dict):
            priority, value = value.get("priority", priority), value.get("pattern")
        if isinstance(value, str) and value.strip():
            prio = priority if isinstance(priority, int) and not isinstance(priority, bool) else 0
            out.append((where, value.strip(), prio))

    for i, rule in enumerate(_list(data.get("rules"))):
        take(f"rules[{i}]", rule)
    for i, ctx in enumerate(_list(data.get("contexts"))):
        if not isinstance(ctx, dict):
            continue
        if "rule" in ctx:
            take(f"contexts[{i}].rule", ctx["rule"], ctx.get("priority", 0))
        for j, rule in enumerate(_list(ctx.get("rules"))):
            take(f"contexts[{i}].rules[{j}]", rule, ctx.get("priority", 0))
    return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if isinstance(value, str) else []


def _check_raw_rules(
    data: dict[str, Any],
    name: str,
    lines: dict[str, int],
    reported: set[str],
    errors: list[tuple[str, int, str]],
) -> None:
    for where, pattern, priority in _raw_rules(data):
        if where in reported:
            continue
        try:
            compile_rule(Rule(where, pattern, where, priority))
        except InvalidRule as exc:
            line = _line_for(where, lines, 0)
            errors.append((name, line, f"{where}: invalid URL rule {pattern!r}: {exc}"))


def _raw_pins(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, aid id) of every pinned aid written in an app file's data."""
    return [
        (f"contexts[{i}].aids[{j}]", aid.strip())
        for i, ctx in enumerate(_list(data.get("contexts")))
        if isinstance(ctx, dict)
        for j, aid in enumerate(_list(ctx.get("aids")))
        if isinstance(aid, str) and aid.strip()
    ]


def _raw_context_ids(data: dict[str, Any]) -> list[str]:
    return [
        ctx["id"].strip()
        for ctx in _list(data.get("contexts"))
        if isinstance(ctx, dict) and isinstance(ctx.get("id"), str)
    ]


def parse_mentor(text: str, name: str, errors: list[tuple[str, int, str]]) -> Mentor | None:
    data = _parse_yaml(text, name, errors)
    if data is None:
        return None
    try:
        return mentor_from_mapping(data)
    except FieldErrors as exc:
        lines = _key_lines(text)
        errors.extend((name, _line_for(f, lines, 0), f"{f}: {msg}") for f, msg in exc.errors)
        return None


def _read(path: Path, rel: str, errors: list[tuple[str, int, str]]) -> str | None:
    if path.is_symlink():
        errors.append((rel, 1, "symbolic links are not allowed in content"))
        return None
    if path.stat().st_size > MAX_FILE_BYTES:
        errors.append((rel, 1, f"file larger than {MAX_FILE_BYTES} bytes"))
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        errors.append((rel, 1, f"not UTF-8 text: {exc.reason}"))
        return None


TRANSCRIPT_SUFFIXES = (".vtt", ".srt")


def _transcripts(
    aid_dir: Path, aid_ids: set[str], errors: list[tuple[str, int, str]]
) -> dict[str, str | None]:
    """The sidecar transcripts of `aids/` by aid id (None: the file has errors, reported with
    its own name and line). A sidecar needs its aid file, and an aid has at most one."""
    found: dict[str, str | None] = {}
    if not aid_dir.is_dir():
        return found
    for path in sorted(p for s in TRANSCRIPT_SUFFIXES for p in aid_dir.glob(f"*{s}")):
        rel = f"aids/{path.name}"
        if path.stem not in aid_ids:
            errors.append((rel, 1, f"a transcript without its aid file aids/{path.stem}.md"))
            continue
        if path.stem in found:
            errors.append((rel, 1, f"aid {path.stem!r} has both a .vtt and an .srt transcript"))
            found[path.stem] = None
            continue
        text = _read(path, rel, errors)
        if text is not None:
            try:
                parse_transcript(text)
            except TranscriptError as exc:
                errors.append((rel, max(exc.line, 1), exc.reason))
                text = None
        found[path.stem] = text
    return found


def load_dir(
    root: Path,
    known_aids: Iterable[str] = (),
    known_apps: Iterable[str] = (),
    known_contexts: Mapping[str, str] | None = None,
) -> ContentSet:
    """Read and validate a content directory. Raises ContentError listing every problem, all in
    one pass: a file's field errors do not hide its rule, id or reference errors.

    `known_aids`/`known_apps` are ids already stored, which references may also point to;
    `known_contexts` (context id -> app id) are stored contexts, whose ids no other app may take.
    """
    errors: list[tuple[str, int, str]] = []
    if not root.is_dir():
        raise ContentError([(str(root), 0, "not a directory")])
    apps: list[App] = []
    aids: list[Aid] = []
    seen_files: dict[str, str] = {}
    aid_dir, app_dir, mentor_dir = root / "aids", root / "apps", root / "mentors"
    if not aid_dir.is_dir() and not app_dir.is_dir() and not mentor_dir.is_dir():
        raise ContentError([(str(root), 0, "no 'aids/', 'apps/' or 'mentors/' folder found")])
    failed_aids: set[str] = set()  # ids of aid files with errors of their own (named by file)
    failed_apps: list[tuple[str, dict[str, Any], str]] = []  # (file, data, text) with errors
    md_paths = sorted(aid_dir.glob("*.md")) if aid_dir.is_dir() else []
    transcripts = _transcripts(aid_dir, {p.stem for p in md_paths}, errors)
    for path in md_paths:
        rel = f"aids/{path.name}"
        text = _read(path, rel, errors)
        said = transcripts.get(path.stem)
        aid = parse_aid(text, rel, errors, said or "") if text is not None else None
        if said is None and path.stem in transcripts:
            aid = None  # its sidecar has errors of its own (reported with the sidecar's lines)
        if aid is None:
            failed_aids.add(path.stem)
            continue
        if aid.id != path.stem:
            errors.append((rel, 2, f"id {aid.id!r} does not match the file name {path.stem!r}"))
        if aid.id in seen_files:
            errors.append((rel, 2, f"duplicate aid id {aid.id!r} (also in {seen_files[aid.id]})"))
        seen_files[aid.id] = rel
        aids.append(aid)
    app_files: dict[str, str] = {}
    ctx_files: dict[str, str] = {}
    app_paths = (
        sorted([*app_dir.glob("*.yaml"), *app_dir.glob("*.yml")]) if app_dir.is_dir() else []
    )
    for path in app_paths:
        rel = f"apps/{path.name}"
        text = _read(path, rel, errors)
        app = parse_app(text, rel, errors) if text is not None else None
        if app is None:
            raw = _parse_yaml(text, rel, []) if text is not None else None
            if raw is not None:
                failed_apps.append((rel, raw, text or ""))
            continue
        if app.id in app_files:
            errors.append((rel, 1, f"duplicate app id {app.id!r} (also in {app_files[app.id]})"))
        app_files[app.id] = rel
        for ctx in app.contexts:
            if ctx.id in ctx_files:
                errors.append(
                    (rel, 1, f"duplicate context id {ctx.id!r} (also in {ctx_files[ctx.id]})")
                )
            ctx_files[ctx.id] = rel
        apps.append(app)
    mentors: list[Mentor] = []
    mentor_files: dict[str, str] = {}
    mentor_paths = (
        sorted([*mentor_dir.glob("*.yaml"), *mentor_dir.glob("*.yml")])
        if mentor_dir.is_dir()
        else []
    )
    for path in mentor_paths:
        rel = f"mentors/{path.name}"
        text = _read(path, rel, errors)
        mentor = parse_mentor(text, rel, errors) if text is not None else None
        if mentor is None:
            continue
        line = _line_for("id", _key_lines(text or ""), 0)
        if mentor.id != path.stem:
            errors.append((rel, line, f"id {mentor.id!r} does not match the file name"))
        if mentor.id in mentor_files:
            also = mentor_files[mentor.id]
            errors.append((rel, line, f"duplicate mentor id {mentor.id!r} (also in {also})"))
        mentor_files[mentor.id] = rel
        mentors.append(mentor)
    for rel, raw, _ in failed_apps:
        for ctx_id in _raw_context_ids(raw):
            if ctx_id in ctx_files:
                errors.append(
                    (rel, 1, f"duplicate context id {ctx_id!r} (also in {ctx_files[ctx_id]})")
                )
            ctx_files[ctx_id] = rel
    owners = {a.id: (app_files[a.id], [c.id for c in a.contexts]) for a in apps}
    owners.update({str(raw.get("id")): (rel, _raw_context_ids(raw)) for rel, raw, _ in failed_apps})
    for app_id, (rel, ids) in owners.items():
        for ctx_id in ids:
            other = (known_contexts or {}).get(ctx_id)
            if other is not None and other != app_id:
                errors.append((rel, 1, f"context id {ctx_id!r} is used by the app {other!r}"))
    all_aids = set(seen_files) | set(known_aids) | failed_aids
    for rel, raw, text in failed_apps:
        lines = _key_lines(text)
        for pin, aid_id in _raw_pins(raw):
            if aid_id not in all_aids:
                line = _line_for(pin, lines, 0)
                errors.append((rel, line, f"{pin.rsplit('[', 1)[0]}: unknown aid {aid_id!r}"))
    all_apps = set(app_files) | set(known_apps)
    for aid in aids:
        for app_id in aid.apps:
            if app_id not in all_apps:
                errors.append((seen_files[aid.id], 2, f"apps: unknown app {app_id!r}"))
    for mentor in mentors:
        rel = mentor_files[mentor.id]
        lines = _key_lines((root / rel).read_text(encoding="utf-8"))
        for j, app_id in enumerate(mentor.apps):
            if app_id not in all_apps:
                where = _line_for(f"apps[{j}]", lines, 0)
                errors.append((rel, where, f"apps: unknown app {app_id!r}"))
    for app in apps:
        text = (root / app_files[app.id]).read_text(encoding="utf-8")
        lines = _key_lines(text)
        for i, ctx in enumerate(app.contexts):
            for j, aid_id in enumerate(ctx.aids):
                if aid_id not in all_aids:
                    errors.append(
                        (
                            app_files[app.id],
                            _line_for(f"contexts[{i}].aids[{j}]", lines, 0),
                            f"contexts[{i}].aids: unknown aid {aid_id!r}",
                        )
                    )
    if errors:
        raise ContentError(errors)
    return ContentSet(apps, aids, mentors)


def _yaml_dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def aid_to_text(aid: Aid) -> str:
    """An aid file; a transcript is not part of it (write_dir puts it in a sidecar file)."""
    fields = aid.content_fields()
    fields.pop("transcript", None)
    body = fields.pop("body")
    front = {k: v for k, v in fields.items() if v not in (None, "", [])}
    front.setdefault("audience", [])
    return f"---\n{_yaml_dump(front)}---\n{body.rstrip()}\n"


def app_to_text(app: App) -> str:
    """An app file: the declaration's fields (server/models.py), empty optional ones and false
    flags left out; a rule as its pattern (with `priority` only when set), a context with one
    rule as `rule:` (and `priority:`), its app implied by the file."""
    data = dump(app)
    if not data.get("description"):
        data.pop("description", None)
    if not data.get("wrapped_targets"):
        data.pop("wrapped_targets", None)
    if not data.get("owners"):
        data.pop("owners", None)
    data["rules"] = [_rule_text(r) for r in data.get("rules", [])]
    contexts = []
    for ctx in data.get("contexts", []):
        ctx.pop("app", None)
        rules = ctx.pop("rules")
        item: dict[str, Any] = {}
        for key, value in ctx.items():
            item[key] = value
            if key != "name":
                continue
            if len(rules) == 1:
                item["rule"] = rules[0]["pattern"]
                if rules[0]["priority"]:
                    item["priority"] = rules[0]["priority"]
            else:
                item["rules"] = [_rule_text(r) for r in rules]
        contexts.append(
            {k: v for k, v in item.items() if v not in ("", None, False) or k == "aids"}
        )
    data["contexts"] = contexts
    return _yaml_dump(data)


def _rule_text(rule: dict[str, Any]) -> Any:
    return rule if rule["priority"] else {"pattern": rule["pattern"]}


def transcript_suffix(transcript: str) -> str:
    """The sidecar file's suffix: .vtt for WebVTT, .srt for SRT."""
    return ".vtt" if transcript.lstrip("\ufeff").startswith("WEBVTT") else ".srt"


def mentor_to_text(mentor: Mentor) -> str:
    fields = mentor.content_fields()
    keep = {"id", "name", "contact", "apps", "topics", "audience", "vetted", "active"}
    return _yaml_dump({k: v for k, v in fields.items() if k in keep or v not in (None, "", [])})


def write_dir(
    root: Path, apps: Iterable[App], aids: Iterable[Aid], mentors: Iterable[Mentor] = ()
) -> int:
    """Write content in the same format `load_dir` reads. Returns the number of files written."""
    (root / "aids").mkdir(parents=True, exist_ok=True)
    (root / "apps").mkdir(parents=True, exist_ok=True)
    count = 0
    for mentor in mentors:
        (root / "mentors").mkdir(exist_ok=True)
        (root / "mentors" / f"{mentor.id}.yaml").write_text(
            mentor_to_text(mentor), encoding="utf-8"
        )
        count += 1
    for aid in aids:
        (root / "aids" / f"{aid.id}.md").write_text(aid_to_text(aid), encoding="utf-8")
        count += 1
        if aid.transcript:
            (root / "aids" / f"{aid.id}{transcript_suffix(aid.transcript)}").write_text(
                aid.transcript, encoding="utf-8"
            )
            count += 1
    for app in apps:
        (root / "apps" / f"{app.id}.yaml").write_text(app_to_text(app), encoding="utf-8")
        count += 1
    return count
