"""Transcript parsing (index/transcripts.py) on real WebVTT and SRT files."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.transcripts import (
    MAX_CHARS,
    MAX_CUES,
    Cue,
    TranscriptError,
    cues_text,
    dump_cues,
    format_time,
    load_cues,
    parse_transcript,
)

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"


def _read(name: str) -> str:
    # newline="" keeps the file's own line endings (the SRT fixture has CRLF and a BOM).
    with (FIXTURES / name).open(encoding="utf-8", newline="") as f:
        return f.read()


def test_webvtt_with_header_blocks_identifiers_settings_tags_and_entities() -> None:
    cues = parse_transcript(_read("onboarding.vtt"))
    assert [c.text for c in cues] == [
        "Welcome to the expense approvals walkthrough.",
        "First open the Approvals inbox from the top bar.",
        "Reject a claim when the receipt & the amount don't match.",
        "Mileage claims need the odometer photo <before> you submit.",
        "Merci and goodbye — see you next quarter.",
    ]
    assert (cues[0].start, cues[0].end) == (0.0, 4.25)
    assert (cues[2].start, cues[2].end) == (9.0, 15.5)  # the identifier "3" is not text
    assert (cues[4].start, cues[4].end) == (3601.0, 3605.0)  # with hours
    # Neither the NOTE nor the STYLE nor the REGION block is searchable text.
    assert "Northwind" not in cues_text(cues) and "yellow" not in cues_text(cues)


def test_srt_with_bom_crlf_numbering_coordinates_and_tags() -> None:
    text = _read("vendor-portal.srt")
    assert text.startswith("\ufeff1\r\n")
    cues = parse_transcript(text)
    assert cues == [
        Cue(1.0, 4.0, "Open the vendor portal and sign in."),
        Cue(4.5, 8.12, "Choose New invoice."),
        Cue(3723.004, 3725.0, "Attach the purchase order number."),
    ]


def test_youtube_auto_captions_inline_timestamps_and_space_lines() -> None:
    """YouTube's auto-captions put a line of one space first in a cue: it is text, not the end."""
    cues = parse_transcript(_read("auto-captions.vtt"))
    assert cues[0] == Cue(0.03, 2.58, "so today we reset a password")
    assert cues[-1].text == "so today we reset a password in the self-service portal"


def test_broken_timing_names_its_line() -> None:
    with pytest.raises(TranscriptError) as err:
        parse_transcript(_read("bad-timing.vtt"))
    assert err.value.line == 6
    assert str(err.value).startswith("line 6: bad cue timing '00:02.000 -> 00:04.000'")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "empty"),
        ("Hello there\n", 1, "not a transcript"),
        ("\nWEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", 1, "first line"),
        ("WEBVTTX\n\n00:01.000 --> 00:02.000\nhi\n", 1, "not a transcript"),
        ("WEBVTT\n00:01.000 --> 00:02.000\nhi\n", 2, "blank line"),
        ("WEBVTT\n\n00:01.000 --> 00:61.000\nhi\n", 3, "below 60"),
        ("WEBVTT\n\n00:05.000 --> 00:02.000\nhi\n", 3, "ends before it starts"),
        ("WEBVTT\n\nintro\nno timing here\n", 3, "expected a cue timing"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n\nSTYLE\n::cue {}\n", 6, "before the first cue"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\nno timing\n", 6, "expected a cue number"),
        ("WEBVTT\n\nNOTE only a note\n", 0, "no cue with text"),
    ],
)
def test_errors_say_what_and_where(text: str, line: int, words: str) -> None:
    with pytest.raises(TranscriptError) as err:
        parse_transcript(text)
    assert err.value.line == line
    assert words in str(err.value)
    assert isinstance(err.value, ValueError)  # a model validator turns it into a 422


def test_lenient_where_real_files_are() -> None:
    """Comma milliseconds in VTT, a dot in SRT, missing SRT numbers, a missing blank line before
    the next cue, mixed line endings, one-digit minutes: all seen in real caption files."""
    vtt = "WEBVTT\r\n\r\n0:01,5 --> 0:02.250\r\nOne\n00:03.000 --> 00:04.000\rTwo\n"
    assert parse_transcript(vtt) == [Cue(1.5, 2.25, "One"), Cue(3.0, 4.0, "Two")]
    srt = "00:00:01.000 --> 00:00:02.000\nOne\n7\n00:00:03,000 --> 00:00:04,000\nTwo\n"
    assert parse_transcript(srt) == [Cue(1.0, 2.0, "One"), Cue(3.0, 4.0, "Two")]


def test_cues_without_words_are_left_out_and_order_is_by_start() -> None:
    vtt = (
        "WEBVTT\n\n00:10.000 --> 00:12.000\nlater\n\n"
        "00:01.000 --> 00:02.000\n<i></i>\n\n00:05.000 --> 00:06.000\nearlier\n"
    )
    assert [c.text for c in parse_transcript(vtt)] == ["earlier", "later"]


def test_limits() -> None:
    with pytest.raises(TranscriptError, match="longer than 500,000 characters"):
        parse_transcript("WEBVTT\n\n" + "x" * MAX_CHARS)
    with pytest.raises(TranscriptError, match="more than 10,000 cues"):
        parse_transcript(
            "WEBVTT\n\n"
            + "".join(
                f"{i // 3600}:{i // 60 % 60:02d}:{i % 60:02d}.000 --> "
                f"{i // 3600}:{i // 60 % 60:02d}:{i % 60:02d}.500\nw\n\n"
                for i in range(MAX_CUES + 1)
            )
        )
    with pytest.raises(TranscriptError, match="line 3: a cue's text is longer"):
        parse_transcript("WEBVTT\n\n00:01.000 --> 00:02.000\n" + "word " * 500)


def test_dump_and_load_round_trip_and_times() -> None:
    cues = parse_transcript(_read("onboarding.vtt"))
    stored = dump_cues(cues)
    assert load_cues(stored) == cues
    assert load_cues("") == []
    assert len(stored) < len(_read("onboarding.vtt"))
    assert [format_time(s) for s in (0, 83.9, 725, 3723.004)] == [
        "0:00",
        "1:23",
        "12:05",
        "1:02:03",
    ]


def _stems(text: str) -> list[str]:
    from index.schema import BODY_ANALYZER

    return [t.text for t in BODY_ANALYZER(text)]


def test_best_cue_weights_words_then_takes_the_earliest() -> None:
    cues = parse_transcript(
        "WEBVTT\n\n"
        "00:01.000 --> 00:02.000\nOpen the expense form.\n\n"
        "00:03.000 --> 00:04.000\nAttach receipts to the expense claim.\n\n"
        "00:05.000 --> 00:06.000\nReceipts again: attach them.\n\n"
        "00:07.000 --> 00:08.000\nFile the W-2 with the claim.\n"
    )
    from index.transcripts import best_cue

    def weights(*words: str, weight: float = 1.0) -> dict[str, float]:
        return {s: weight for w in words for s in _stems(w)}

    # both words in one cue beat one word in an earlier cue
    assert best_cue(cues, weights("receipt", "expenses"), _stems) == cues[1]
    # one word: the earliest cue that says it ("receipts" in cues 2 and 3)
    assert best_cue(cues, weights("receipts"), _stems) == cues[1]
    # equal weights: the earlier cue; a heavier word (the page's selection) wins over it
    assert best_cue(cues, weights("open", "receipts"), _stems) == cues[0]
    heavy = {**weights("open"), **weights("receipts", weight=4.0)}
    assert best_cue(cues, heavy, _stems) == cues[1]
    # a hyphenated code is found by its joined form
    assert best_cue(cues, weights("w2"), _stems) == cues[3]
    assert best_cue(cues, weights("payroll"), _stems) is None
    assert best_cue(cues, {}, _stems) is None
