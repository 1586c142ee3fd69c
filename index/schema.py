"""The Whoosh schema. Bump SCHEMA_VERSION whenever a field changes: start-up then rebuilds."""

from __future__ import annotations

from whoosh.analysis import Analyzer
from whoosh.fields import ID, KEYWORD, TEXT, Schema

from index.analysis import FastAnalyzer
from index.stopwords import ENGLISH

# 5: tags analysed like text (stemmed words and the joined whole tag), compounds joined,
# derivational forms normalised (index/analysis.py); summary stored (search snippets).
# 6: checklist boxes ("- [ ]") out of the stored body text (snippets showed a literal "[ ]").
SCHEMA_VERSION = 6
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

# Boosts applied to each field's terms when queries are built (index/query.py).
FIELD_BOOSTS = {"title": 3.0, "tags": 2.0, "summary": 2.0, "body": 1.0}


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
