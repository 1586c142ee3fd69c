"""Synthetic corpora for benchmarks: aids of ~300 words, apps with URL rules and contexts."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

from index.service import BUILD_PROCS_MIN_DOCS, IndexService
from server.models import Aid, App, Context, RuleSpec
from server.storage import Storage

DOMAIN_WORDS = [
    "expense",
    "report",
    "receipt",
    "reimbursement",
    "approval",
    "manager",
    "invoice",
    "vendor",
    "payment",
    "travel",
    "mileage",
    "opportunity",
    "account",
    "contact",
    "lead",
    "pipeline",
    "forecast",
    "quote",
    "discount",
    "contract",
    "renewal",
    "customer",
    "payslip",
    "salary",
    "benefits",
    "pension",
    "leave",
    "vacation",
    "onboarding",
    "training",
    "policy",
    "compliance",
    "audit",
    "password",
    "login",
    "access",
    "request",
    "ticket",
    "incident",
    "escalation",
    "priority",
    "workflow",
    "dashboard",
    "export",
    "import",
    "field",
    "record",
    "owner",
    "team",
    "region",
    "quarter",
    "budget",
    "cost",
    "center",
    "purchase",
    "order",
    "requisition",
    "timesheet",
    "overtime",
    "holiday",
    "sick",
    "parental",
    "insurance",
    "tax",
    "withholding",
    "deposit",
    "bank",
    "address",
    "submit",
    "review",
    "reject",
    "cancel",
    "update",
    "create",
    "delete",
    "archive",
    "attach",
    "upload",
    "download",
    "share",
    "assign",
]


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    syllables = [
        "ka",
        "lo",
        "mi",
        "ten",
        "ra",
        "vo",
        "sel",
        "dor",
        "pin",
        "qua",
        "zu",
        "ber",
        "nal",
        "tro",
        "fi",
        "gen",
        "mor",
        "tas",
        "ul",
        "wex",
    ]
    words = list(DOMAIN_WORDS)
    while len(words) < size:
        words.append("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return words


def zipf_words(rng: random.Random, vocab: list[str], n: int) -> list[str]:
    # rank-frequency ~ 1/rank: sample ranks with a Pareto-ish distribution
    out = []
    for _ in range(n):
        rank = min(int(rng.paretovariate(1.1)) - 1, len(vocab) - 1)
        out.append(vocab[rank if rng.random() < 0.7 else rng.randrange(len(vocab))])
    return out


def make_apps(n_rules: int, rng: random.Random, aids_per_app: dict[str, list[str]]) -> list[App]:
    """~n_rules URL rules in total: each app gets 2 app rules and contexts with one rule each."""
    apps = []
    n_apps = max(1, n_rules // 50)
    for i in range(n_apps):
        app_id = f"app-{i}"
        host = f"tenant{i}.example{i % 37}.com"
        rules = (RuleSpec(f"https://{host}/**"), RuleSpec(f"https://*.{host}/app/**"))
        contexts = []
        pool = aids_per_app.get(app_id, [])
        for c in range(48):
            pattern = (
                f"https://{host}/module{c % 8}/page{c}/*/view"
                if c % 3
                else f"https://{host}/app/#/route{c}/*"
            )
            pins = tuple(rng.sample(pool, min(3, len(pool))))
            contexts.append(
                Context(
                    id=f"{app_id}-ctx-{c}",
                    app_id=app_id,
                    name=f"Page {c}",
                    rules=(RuleSpec(pattern),),
                    aids=pins,
                )
            )
        apps.append(App(id=app_id, name=f"App {i}", rules=rules, contexts=tuple(contexts)))
    return apps


def make_aids(n: int, n_apps: int, rng: random.Random, words: int = 300) -> Iterator[Aid]:
    vocab = vocabulary(rng)
    types = ("howto", "checklist", "policy", "faq", "link", "video")
    for i in range(n):
        body_words = zipf_words(rng, vocab, words)
        paragraphs = [" ".join(body_words[j : j + 60]) + "." for j in range(0, words, 60)]
        yield Aid(
            id=f"aid-{i}",
            title=" ".join(zipf_words(rng, vocab, 5)).capitalize(),
            summary=" ".join(zipf_words(rng, vocab, 14)).capitalize() + ".",
            body="\n\n".join(paragraphs),
            type=types[i % len(types)],
            tags=tuple(zipf_words(rng, vocab, 3)),
            apps=(f"app-{i % n_apps}",),
            audience=("managers",) if i % 10 == 0 else (),
            status="published" if i % 20 else "draft",
            verified_at="2026-06-01",
        )


def page_queries(rng: random.Random, apps: list[App], n: int) -> list[dict[str, object]]:
    vocab = vocabulary(random.Random(7))
    out = []
    for _ in range(n):
        app = rng.choice(apps)
        host = app.rules[0].pattern.split("/")[2]
        c = rng.randrange(48)
        url = (
            f"https://{host}/module{c % 8}/page{c}/{rng.randint(1, 10**6)}/view"
            if c % 3
            else f"https://{host}/app/#/route{c}/{rng.randint(1, 999)}"
        )
        out.append(
            {
                "url": url,
                "title": " ".join(zipf_words(rng, vocab, 4)),
                "headings": [" ".join(zipf_words(rng, vocab, 3)) for _ in range(3)],
            }
        )
    return out


def build_library(
    data: Path, n_aids: int, n_rules: int, n_apps: int, rng: random.Random, procs: int = 2
) -> tuple[list[Aid], list[App], float, int]:
    """A bench library in `data`: the database (aids, apps and rules) and the index, built from
    it as `inflow reindex` would (with `procs` writer processes). Returns the aids, the apps,
    the index build time (s) and the processes it used."""
    aids = list(make_aids(n_aids, n_apps, rng))
    by_app: dict[str, list[str]] = {}
    for a in aids:
        if a.status == "published" and not a.audience:
            by_app.setdefault(a.apps[0], []).append(a.id)
    apps = make_apps(n_rules, rng, by_app)
    storage = Storage(data / "inflow.sqlite3")
    storage.open_sync()
    storage.import_sync(apps, aids, "bench")
    version = storage.content_version_sync()
    storage.close_sync()
    index = IndexService(data / "index", search_threads=1, build_procs=procs)
    start = time.perf_counter()
    index.rebuild_sync(aids, version)
    elapsed = time.perf_counter() - start
    asyncio.run(index.close())
    return aids, apps, elapsed, index.build_procs if n_aids >= BUILD_PROCS_MIN_DOCS else 1
