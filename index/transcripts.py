"""Video transcripts: WebVTT and SRT parsed into cues (start, end, text). Pure and fast.

A transcript is stored as written (`Aid.transcript`); the index reads its cues: their words are
searched (the `transcript` field) and the cues themselves are stored compactly (`cues`), so a
search or suggest hit can point at the moment of the video where the words are said.

WebVTT (https://www.w3.org/TR/webvtt1/): the `WEBVTT` header line (and header lines up to the
first blank line), NOTE, STYLE and REGION blocks, optional cue identifiers, timestamps with or
without hours, cue settings after the end time, and cue text whose tags (`<v Speaker>`, `<c.x>`,
`<i>`, `<00:01.000>`...) are stripped and entities (`&amp;`, `&#39;`) decoded. SRT: numbered
blocks, comma milliseconds, `X1:` coordinates after the times, `<i>`/`<font>` tags and `{\\an8}`
override codes stripped. Both: any line ending, a byte-order mark, and a dot or a comma before
the milliseconds (real files mix them up). Anything else is a `TranscriptError` naming the line.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_CHARS = 500_000  # the same limit as Aid.transcript
MAX_CUES = 10_000  # ~ 8 hours of captions at one cue every 3 s
MAX_CUE_CHARS = 2_000  # a cue is a caption: a few lines

_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_TIMING_RE = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+(.*))?$")
_STARTS_WITH_TIME_RE = re.compile(rf"^\s*{_TIME}\s")
_TAG_RE = re.compile(r"<[^>]*>")
_ASS_RE = re.compile(r"\{\\[^}]*\}")
_WS_RE = re.compile(r"\s+")
_NON_WORD_RE = re.compile(r"[\W_]+")
_CUE_WORD_RE = re.compile(r"\w[\w.'-]*")  # a word, with its hyphens and dots (analysed whole)
_LINES_RE = re.compile(r"\r\n|\r|\n")


class TranscriptError(ValueError):
    """A transcript that is not valid WebVTT or SRT; `line` is 1-based (0: the whole text)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.reason = message
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass(frozen=True, slots=True)
class Cue:
    start: float  # seconds from the start of the video
    end: float
    text: str  # plain text: tags stripped, entities decoded, lines joined by spaces


def parse_transcript(text: str) -> list[Cue]:
    """The cues of a WebVTT or SRT transcript (the format is recognised from its first line)."""
    if len(text) > MAX_CHARS:
        raise TranscriptError(0, f"the transcript is longer than {MAX_CHARS:,} characters")
    lines = _LINES_RE.split(text.removeprefix("\ufeff"))
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise TranscriptError(1, "the transcript is empty")
    head = lines[first]
    if head.startswith("WEBVTT") and (len(head) == 6 or head[6] in " \t"):
        if first:
            raise TranscriptError(1, "a WebVTT file starts with WEBVTT on its first line")
        return _parse_vtt(lines)
    if head.strip().isdigit() or _TIMING_RE.match(head):
        return _parse_srt(lines, first)
    raise TranscriptError(
        first + 1,
        "not a transcript: WebVTT starts with 'WEBVTT', SRT with a cue number "
        "or '00:00:01,000 --> 00:00:04,000'",
    )


def _seconds(groups: Sequence[str | None], line_no: int) -> float:
    hours, minutes, seconds, fraction = groups
    if int(minutes or 0) > 59 or int(seconds or 0) > 59:
        raise TranscriptError(line_no, "minutes and seconds of a timestamp must be below 60")
    whole = int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)
    return whole + int((fraction or "0").ljust(3, "0")) / 1000


def _timing(line: str, line_no: int) -> tuple[float, float]:
    match = _TIMING_RE.match(line)
    if match is None:
        raise TranscriptError(
            line_no, f"bad cue timing {line.strip()[:60]!r} (expected '00:01.000 --> 00:04.000')"
        )
    groups = match.groups()
    start, end = _seconds(groups[0:4], line_no), _seconds(groups[4:8], line_no)
    if end < start:
        raise TranscriptError(line_no, "a cue ends before it starts")
    return start, end


def clean_cue_text(lines: Iterable[str]) -> str:
    """Plain words of a cue's lines: tags and override codes out, entities decoded."""
    text = " ".join(lines)
    text = _ASS_RE.sub("", _TAG_RE.sub("", text))
    return _WS_RE.sub(" ", html.unescape(text)).strip()


class _Cues:
    def __init__(self) -> None:
        self.cues: list[Cue] = []

    def add(self, start: float, end: float, lines: list[str], line_no: int) -> None:
        text = clean_cue_text(lines)
        if len(text) > MAX_CUE_CHARS:
            raise TranscriptError(
                line_no, f"a cue's text is longer than {MAX_CUE_CHARS} characters"
            )
        if not text:
            return  # no words (a pause, a tag stripped to nothing): nothing to find
        if len(self.cues) >= MAX_CUES:
            raise TranscriptError(line_no, f"more than {MAX_CUES:,} cues")
        self.cues.append(Cue(start, end, text))

    def done(self) -> list[Cue]:
        if not self.cues:
            raise TranscriptError(0, "the transcript has no cue with text")
        return sorted(self.cues, key=lambda cue: cue.start)  # stable: ties keep file order


def _parse_vtt(lines: list[str]) -> list[Cue]:
    out = _Cues()
    i, n = 1, len(lines)
    while i < n and lines[i].strip():  # header lines (obsolete metadata) up to the first blank
        if "-->" in lines[i]:
            raise TranscriptError(i + 1, "a blank line must follow the WEBVTT header")
        i += 1
    seen_cue = False
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        start_line = i
        first = lines[i]
        word = first.split(None, 1)[0] if first.strip() else ""
        if word in ("NOTE", "STYLE", "REGION") and first.startswith(word) and "-->" not in first:
            if word != "NOTE" and seen_cue:
                raise TranscriptError(i + 1, f"a {word} block must come before the first cue")
            while i < n and lines[i].strip():  # skip the block
                i += 1
            continue
        if "-->" not in first:  # a cue identifier; the timing follows on the next line
            if _STARTS_WITH_TIME_RE.match(first):  # "00:01.000 -> 00:02.000": a broken timing
                _timing(first, i + 1)
            i += 1
            if i >= n or "-->" not in lines[i]:
                raise TranscriptError(
                    start_line + 1, f"expected a cue timing after {first.strip()[:60]!r}"
                )
        start, end = _timing(lines[i], i + 1)
        i += 1
        payload: list[str] = []
        while i < n and lines[i] != "" and "-->" not in lines[i]:  # " " is text, not a blank
            payload.append(lines[i])
            i += 1
        out.add(start, end, payload, start_line + 1)
        seen_cue = True
    return out.done()


def _parse_srt(lines: list[str], i: int) -> list[Cue]:
    out = _Cues()
    n = len(lines)
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        start_line = i
        if lines[i].strip().isdigit():  # the cue number (not checked for order: files get merged)
            i += 1
        if i >= n or "-->" not in lines[i]:
            raise TranscriptError(
                (i if i < n else start_line) + 1,
                "expected a cue number and a timing like '00:00:01,000 --> 00:00:04,000'",
            )
        start, end = _timing(lines[i], i + 1)
        i += 1
        payload: list[str] = []
        while i < n and lines[i] != "" and "-->" not in lines[i]:  # " " is text, not a blank
            payload.append(lines[i])
            i += 1
        # An SRT cue number directly before the next timing (no blank line) belongs to that cue.
        if i < n and "-->" in lines[i] and payload and payload[-1].strip().isdigit():
            payload.pop()
            i -= 1
        out.add(start, end, payload, start_line + 1)
    return out.done()


def cues_text(cues: Iterable[Cue]) -> str:
    """The words of all cues, one cue per line: what the index searches."""
    return "\n".join(cue.text for cue in cues)


def dump_cues(cues: Iterable[Cue]) -> str:
    """Compact JSON of cues, as stored in the index: [[start, end, text], ...] (ms precision)."""
    return json.dumps(
        [[round(c.start, 3), round(c.end, 3), c.text] for c in cues],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def load_cues(stored: str) -> list[Cue]:
    if not stored:
        return []
    return [Cue(float(s), float(e), str(t)) for s, e, t in json.loads(stored)]


def format_time(seconds: float) -> str:
    """'1:23', '12:05' or '1:02:03': how a player shows a position (whole seconds)."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def best_cue(
    cues: Sequence[Cue],
    weights: Mapping[str, float],
    stems_of: Callable[[str], Iterable[str]],
) -> Cue | None:
    """The cue where the query's words are said: the most weight of distinct `weights` stems
    (the query's or the page's, as the index analyses them), then the earliest. None when no
    cue holds any of them. The scan stops at the first cue that holds them all.

    `stems_of` analyses a word as the transcript field was analysed. Only words that start like
    some stem are analysed (Porter and the derivations change endings only; a hyphenated word
    like "W-2" is also tried squeezed, "w2"), each distinct word once: a long transcript costs
    a scan of its words, not an analysis of every cue.
    """
    if not weights or not cues:
        return None
    prefixes = {stem[:4] for stem in weights}
    lengths = sorted({len(p) for p in prefixes})
    memo: dict[str, tuple[str, ...]] = {}

    def matched(word: str) -> tuple[str, ...]:
        found = memo.get(word)
        if found is None:
            forms = [word, word.replace("-", "")] if "-" in word else [word]
            starts = any(f[:n] in prefixes for f in forms for n in lengths)
            found = tuple(s for s in stems_of(word) if s in weights) if starts else ()
            memo[word] = found
        return found

    best = 0.0
    whole = sum(weights.values())
    found_cue: Cue | None = None
    for cue in cues:
        text = cue.text.lower()
        if not any(p in text for p in prefixes):
            squeezed = _NON_WORD_RE.sub("", text)
            if not any(p in squeezed for p in prefixes):
                continue
        said = {s for word in _CUE_WORD_RE.findall(text) for s in matched(word)}
        score = sum(weights[s] for s in said)
        if score > best:  # ties: the earlier cue (cues are in start order)
            best, found_cue = score, cue
            if score >= whole:
                break
    return found_cue
