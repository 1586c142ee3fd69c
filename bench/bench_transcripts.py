"""Benchmark video transcripts: parsing, indexing, and picking the cue of a search or suggest hit.

A synthetic library (bench/corpus.py) whose videos get transcripts (one cue every 3 s of Zipf
words from the same vocabulary), one of them the largest allowed (500,000 characters). Prints:
parse time of the largest, index build time with and without transcripts, search and related
(suggest) query times over the library (each video hit's cue picked), and the cue picking of the
largest transcript alone (load the stored cues, scan, analyse).

Run: .venv/bin/python bench/bench_transcripts.py [--aids 2000] [--cues 600] [--rounds 200]
Run with --cue-only for the first and last figures alone (seconds, not minutes).
Target: the largest transcript parses in < 100 ms; a hit's cue costs < 10 ms (a typical video's).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import make_aids, vocabulary, zipf_words
from index.query import PageText, parse_user_query, scope_filter
from index.service import IndexService, _cue, _transcript_stems
from index.transcripts import MAX_CHARS, Cue, dump_cues, parse_transcript
from server.models import Aid


def transcript(rng: random.Random, vocab: list[str], cues: int) -> str:
    out = ["WEBVTT", ""]
    for i in range(cues):
        start, end = i * 3, i * 3 + 3
        out.append(
            f"{start // 3600:02d}:{start // 60 % 60:02d}:{start % 60:02d}.000 --> "
            f"{end // 3600:02d}:{end // 60 % 60:02d}:{end % 60:02d}.000"
        )
        out.append("<v Trainer>" + " ".join(zipf_words(rng, vocab, 12)) + ".")
        out.append("")
    return "\n".join(out)


def biggest(rng: random.Random, vocab: list[str]) -> str:
    text = transcript(rng, vocab, 20_000)
    cut = text.rfind("\n\n", 0, MAX_CHARS)
    return text[:cut] + "\n"


def ms(values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"p50 {statistics.median(values) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--aids", type=int, default=2000)
    parser.add_argument("--cues", type=int, default=600, help="cues of each video (3 s each)")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cue-only", action="store_true", help="only the largest one's cue")
    args = parser.parse_args()
    rng = random.Random(13)
    vocab = vocabulary(random.Random(1))  # the library's own words (make_aids seeds it alike)
    plain = list(make_aids(args.aids, 20, random.Random(1)))
    huge = biggest(rng, vocab)
    start = time.perf_counter()
    huge_cues = parse_transcript(huge)
    print(
        f"largest transcript: {len(huge):,} chars, {len(huge_cues):,} cues, parsed in "
        f"{(time.perf_counter() - start) * 1000:.1f} ms"
    )
    if args.cue_only:
        cue_of_largest(huge_cues, vocab)
        return
    with_tr: list[Aid] = []
    for aid in plain:
        if aid.type == "video":
            text = huge if aid.id == "aid-5" else transcript(rng, vocab, args.cues)
            aid = dataclasses.replace(aid, transcript=text)
        with_tr.append(aid)
    videos = sum(1 for a in with_tr if a.transcript)
    print(f"library: {len(with_tr)} aids, {videos} videos with transcripts of {args.cues} cues")
    for label, aids in (("without transcripts", plain), ("with transcripts", with_tr)):
        with tempfile.TemporaryDirectory(prefix="inflow-bench-transcripts-") as tmp:
            ix = IndexService(Path(tmp) / "index", search_threads=1)
            ix.open_sync()
            start = time.perf_counter()
            ix.rebuild_sync(aids, 1)
            print(f"{label:20} index build {time.perf_counter() - start:6.2f} s")
            scope = scope_filter(apps=None, audience=None)
            qrng = random.Random(3)
            search, related, cued = [], [], 0
            for _ in range(args.rounds):
                words = " ".join(zipf_words(qrng, vocab, 2))
                parsed = parse_user_query(words, max_chars=256, max_terms=16)
                if parsed.query is None:
                    continue
                t = time.perf_counter()
                page = ix._page_sync(parsed.query, scope, 0, 10, None)
                search.append(time.perf_counter() - t)
                cued += sum(1 for h in page.hits if h.cue is not None)
                app = qrng.randrange(20)
                texts = [PageText(words, 4.0, selection=True), PageText(words, 2.0)]
                t = time.perf_counter()
                ix._related_sync(
                    texts, scope_filter(apps=[f"app-{app}"], audience=None), 5, frozenset(), ""
                )
                related.append(time.perf_counter() - t)
            print(f"{'':20} search  {ms(search)}  ({cued} hits with a cue)")
            print(f"{'':20} related {ms(related)}")
            asyncio.run(ix.close())
    cue_of_largest(huge_cues, vocab)


def cue_of_largest(huge_cues: list[Cue], vocab: list[str]) -> None:
    """The cue of the largest transcript for two-word queries (stems, as the index has them)."""
    stored = dump_cues(huge_cues)
    qrng = random.Random(5)
    times = []
    for _ in range(40):
        stems = {s: 1.0 for w in zipf_words(qrng, vocab, 2) for s in _transcript_stems(w)}
        t = time.perf_counter()
        _cue(stored, stems)
        times.append(time.perf_counter() - t)
    print(f"cue of the largest transcript ({len(stored):,} bytes stored): {ms(times)}")


if __name__ == "__main__":
    main()
