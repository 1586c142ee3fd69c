"""Benchmark "did you mean": the spelling corrector's work for one search, unbounded vs bounded.

The probe's query: 16 unknown 15-letter words (the 256-character limit), each once a Levenshtein
walk of the lexicon. Also an ordinary typo query, which must still be corrected.

Run: .venv/bin/python bench/bench_spelling.py [--aids 2000] [--rounds 5]
Target: the probe's query costs the corrector <= 50 ms (it took 0.85-2.4 s); typos still fixed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import make_aids
from index.query import parse_user_query
from index.service import UNBOUNDED_SPELLING, IndexService, SpellingLimits
from server.content import load_dir

DEMO = Path(__file__).resolve().parent.parent / "content" / "demo"


def probe_query(rng: random.Random) -> str:
    return " ".join(
        "".join(rng.choice(string.ascii_lowercase) for _ in range(15)) for _ in range(16)
    )


def measure(ix: IndexService, text: str, rounds: int) -> tuple[list[float], int, dict[str, str]]:
    words = parse_user_query(text, max_chars=256, max_terms=16).words
    times = []
    lookups = ix.spelling_lookups
    fixes: dict[str, str] = {}
    for _ in range(rounds):
        start = time.perf_counter()
        fixes = ix._suggest_words_sync(words)
        times.append(time.perf_counter() - start)
    return times, (ix.spelling_lookups - lookups) // rounds, fixes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--aids", type=int, default=2000, help="synthetic aids beside the demo")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    demo = load_dir(DEMO, set(), set()).aids
    aids = demo + list(make_aids(args.aids, 20, random.Random(1)))
    with tempfile.TemporaryDirectory(prefix="inflow-bench-spelling-") as tmp:
        ix = IndexService(Path(tmp) / "index", search_threads=1)
        ix.open_sync()
        ix.rebuild_sync(aids, 1)
        lexicon = sum(1 for _ in ix._searcher().reader().lexicon("words"))
        print(f"index: {len(aids)} aids ({len(demo)} demo), {lexicon} spelling terms")
        queries = {
            "16 unknown 15-letter words": probe_query(random.Random(16)),
            "typos 'expnse reimbursment aprove'": "expnse reimbursment aprove",
        }
        for label, limits in [
            ("before (unbounded)", UNBOUNDED_SPELLING),
            ("after", SpellingLimits()),
            ("first letter free", SpellingLimits(prefix=0)),
        ]:
            ix.spelling_limits = limits
            for name, text in queries.items():
                times, lookups, fixes = measure(ix, text, args.rounds)
                print(
                    f"{label:20} {name:36} median {statistics.median(times) * 1000:7.1f} ms  "
                    f"max {max(times) * 1000:7.1f} ms  corrector lookups {lookups:2}  "
                    f"fixes {dict(list(fixes.items())[:3])}"
                )


if __name__ == "__main__":
    main()
