"""The question index (server/peer/question_index.py): start-up rebuild and "similar questions".

    .venv/bin/python bench/bench_questions.py [--questions 20000] [--apps 20] [--queries 300]

Builds `--questions` answered questions spread over `--apps` apps (half the words from a small
workplace vocabulary shared by every question, half from a long tail; answers a few sentences),
then times:
1. the rebuild (a new generation directory, swapped in by rename), off the loop, and a start-up
   that keeps an index agreeing with the database;
2. `similar` for typed questions of 4 to 12 words on one app (p50 / p99), as the panel asks while
   a learner types;
3. one `put` (an accepted answer) and one `remove` (a hidden question).
Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.peer.question_index import QuestionDoc, QuestionIndex  # noqa: E402

WORDS = [
    "mileage",
    "trip",
    "refund",
    "receipt",
    "invoice",
    "approval",
    "manager",
    "expense",
    "report",
    "travel",
    "hotel",
    "flight",
    "card",
    "fuel",
    "dock",
    "shipment",
    "order",
    "customer",
    "account",
    "contract",
    "quote",
    "discount",
    "forecast",
    "pipeline",
    "password",
    "login",
    "timesheet",
    "overtime",
    "holiday",
    "leave",
    "payroll",
    "salary",
    "benefits",
    "onboarding",
    "laptop",
    "printer",
    "badge",
    "parking",
    "deadline",
    "submit",
    "approve",
    "reject",
    "attach",
    "upload",
    "export",
    "policy",
    "limit",
    "currency",
    "tax",
    "vendor",
    "supplier",
    "delivery",
    "warehouse",
    "pallet",
    "inventory",
    "stock",
    "return",
    "damaged",
]


# Half the words from the common list above (in every app's questions), half from a long tail of
# 3,000 rarer ones (part numbers, place and product names), as real questions have.
RARE = [f"x{n:04d}q" for n in range(3000)]


def sentence(rng: random.Random, low: int, high: int) -> str:
    words = (
        rng.choice(WORDS if rng.random() < 0.5 else RARE) for _ in range(rng.randint(low, high))
    )
    return " ".join(words).capitalize() + "?"


async def main(questions: int, apps: int, queries: int) -> None:
    rng = random.Random(12)
    docs = [
        QuestionDoc(
            f"q{i}",
            f"app-{i % apps}",
            f"ctx-{i % (apps * 10)}",
            () if i % 7 else ("drivers",),
            sentence(rng, 5, 18),
            " ".join(sentence(rng, 6, 20) for _ in range(3)),
        )
        for i in range(questions)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        index = QuestionIndex(Path(tmp) / "questions-index")
        start = time.perf_counter()
        await index.rebuild(docs)
        built = time.perf_counter() - start
        print(f"rebuild of {questions:,} answered questions: {built:.2f} s")
        await index.close()
        index = QuestionIndex(Path(tmp) / "questions-index")
        start = time.perf_counter()
        rebuilt = await index.open(docs)
        kept = time.perf_counter() - start
        print(f"start-up with an index that agrees: {kept:.2f} s (rebuilt: {rebuilt})")
        times = []
        for _ in range(queries):
            text = sentence(rng, 4, 12)
            start = time.perf_counter()
            await index.similar(
                text, app_id="app-3", context_id="ctx-3", audience=frozenset(), limit=5
            )
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(
            f"similar ({queries} typed questions): p50 {statistics.median(times):.1f} ms, "
            f"p99 {p99:.1f} ms"
        )
        start = time.perf_counter()
        await index.put(docs[0])
        put = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        await index.remove(docs[1].id)
        removed = (time.perf_counter() - start) * 1000
        print(f"put one: {put:.1f} ms, remove one: {removed:.1f} ms")
        await index.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20_000)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.questions, args.apps, args.queries))
