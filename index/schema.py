"""The Whoosh schema. Bump SCHEMA_VERSION whenever a field changes: start-up then rebuilds."""

from __future__ import annotations

from whoosh.analysis import Analyzer
from whoosh.fields import ID, KEYWORD, STORED, TEXT, Schema

from index.analysis import FastAnalyzer
from index.stopwords import ENGLISH

# 5: tags analysed like text (stemmed words and the joined whole tag), compounds joined,
# derivational forms normalised (index/analysis.py); summary stored (search snippets).
# 6: checklist boxes ("- [ ]") out of the stored body text (snippets showed a literal "[ ]").
# 7: video transcripts: their words searchable (`transcript`), their cues stored (`cues`).
SCHEMA_VERSION = 7
EVERYONE = "_everyone"  # audience token for aids with an empty audience
GLOBAL_APP = "_global"  # apps token for aids mapped to no app: relevant anywhere

# Text fields: lowercase, stop words dropped, Porter-stemmed ("approvals" ~ "approving"),
# derivational forms normalised ("urgency" ~ "urgent") and adjacent words also joined as one
# token ("time sheet" also gives "timesheet"). Queries use the same stems.
TEXT_ANALYZER: Analyzer = FastAnalyzer(stem=True, join=True)
# Bodies: the same, but only hyphenated words are joined ("W-2", "e-mail"). Joining every word
# pair of a long body made index builds several times slower; a query joins its own adjacent words
# ("time sheet" also looks for "timesheet"), so only "timesheet" typed against a body that says
# "time sheet" (and nothing in its title, summary or tags) is missed.
BODY_ANALYZER: Analyzer = FastAnalyzer(stem=True, join="hyphen")
# Page signals (page title, headings, selection): the same stems, a full English stop list, and
# two-character words only when they are codes or acronyms ("P1", "2FA", "HR").
PAGE_ANALYZER: Analyzer = FastAnalyzer(
    stem=True, join=True, stoplist=ENGLISH, short_codes_only=True
)
# Vocabulary for "did you mean": unstemmed words, so suggestions are real words.
WORD_ANALYZER: Analyzer = FastAnalyzer(stem=False, stoplist=frozenset(), minsize=3)

# Boosts applied to each field's terms when queries are built (index/query.py). A video's
# transcript counts half as much as a body: speech is long, repetitive and chatty ("so today we
# open the, uh, approvals inbox"), so a word said in passing says less about what the video is
# for than the same word in written steps; but a phrase said in it still finds the video.
FIELD_BOOSTS = {"title": 3.0, "tags": 2.0, "summary": 2.0, "body": 1.0, "transcript": 0.5}


def build_schema() -> Schema:
    return Schema(
        # Stored: a hit maps back to the aid row; unique: update_document replaces by id.
        id=ID(stored=True, unique=True),
        # Scored text. Not stored: result metadata comes from the in-memory catalog.
        title=TEXT(analyzer=TEXT_ANALYZER),
        # Stored too: a search snippet falls back to the summary's matched words.
        summary=TEXT(analyzer=TEXT_ANALYZER, stored=True),
        # Analysed like the text fields, so the stems a query is made of match: "approval"
        # matches the tag "Approvals", "code owners" the tag "Code owners" (and its joined form
        # "codeowners"). Tags are joined with ", " so no compound spans two tags.
        tags=TEXT(analyzer=TEXT_ANALYZER),
        # Stored (plain text, not Markdown) because highlighted snippets are cut from it.
        body=TEXT(analyzer=BODY_ANALYZER, stored=True),
        # The words of a video's transcript cues (index/transcripts.py), one cue per line; not
        # stored: what a hit shows of it is its best cue, from `cues`.
        transcript=TEXT(analyzer=BODY_ANALYZER),
        # The cues themselves as compact JSON ([[start, end, text], ...]): a hit whose transcript
        # matched carries the cue where its words are said (the panel opens the video there).
        # Only videos with a transcript have it; other documents store nothing here.
        cues=STORED,
        # Unstemmed words of the titles, summaries and tags of published, everyone-visible aids:
        # the vocabulary "did you mean" suggests from. Never reveals drafts or restricted aids;
        # bodies are left out because they would double the index's postings (build time).
        words=TEXT(analyzer=WORD_ANALYZER, phrase=False),
        # Filters: never scored, never reached by user text.
        apps=KEYWORD(commas=True),
        audience=KEYWORD(commas=True),
        status=ID,
        type=ID,
    )
