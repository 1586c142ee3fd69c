"""Benchmark the URL rule matcher: indexed RuleSet vs the naive loop, at 10k and 100k rules.

Run: .venv/bin/python bench/bench_urlrules.py [--sizes 10000,100000] [--urls 3000] [--typed]
--typed writes the ids of the mix with typed placeholders (`006{alnum:12-15}`, `{digits}`,
`{hex:32}`, `{guid}`) instead of `*`.
Targets (CPython, 2 cores): RuleSet.match <= 20 us per URL at 10k rules, <= 100 us at 100k.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.urlrules import Rule, RuleSet, naive_match

OBJECTS = ["Opportunity", "Account", "Contact", "Case", "Lead", "Quote", "Contract", "Order"]
WORKDAY_TASKS = ["2997", "1422", "2998", "3001", "1234", "5678"]
ROUTES = ["expenses", "reports", "approvals", "employees", "timesheets", "invoices"]
REGEX_RULES = 25  # regex rules are tested on every URL; real rule sets have only a few


def make_rules(n: int, rng: random.Random, typed: bool = False) -> list[Rule]:
    """A realistic mix: per-tenant SaaS hosts, shared wildcard hosts, hash routes, queries."""
    sf_id, row_id, sys_id = ("006{alnum:12-15}", "{digits}", "{hex:32}") if typed else ("*",) * 3
    guid = "&id={guid}" if typed else ""
    tenants = max(n // 20, 10)
    rules: list[Rule] = []

    def add(pattern: str, priority: int = 0) -> None:
        rules.append(Rule(f"r{len(rules):06d}", pattern, f"app-{len(rules) % 500}", priority))

    while len(rules) < n - REGEX_RULES:
        t = rng.randrange(tenants)
        kind = rng.random()
        if kind < 0.35:  # Salesforce: per-tenant hosts
            host = rng.choice([f"acme-{t}.my.salesforce.com", f"acme-{t}.lightning.force.com"])
            obj = rng.choice(OBJECTS)
            add(
                rng.choice(
                    [
                        f"https://{host}/lightning/r/{obj}/{sf_id}/view",
                        f"https://{host}/lightning/o/{obj}/list",
                        f"https://{host}/lightning/**",
                        f"https://{host}/{obj[:3]}*/**",
                    ]
                )
            )
        elif kind < 0.55:  # Workday: one wildcard host, tenants in the path
            task = rng.choice(WORKDAY_TASKS)
            add(
                rng.choice(
                    [
                        f"https://*.myworkday.com/tenant{t}/d/task/{task}$*.htmld",
                        f"https://*.myworkday.com/tenant{t}/**",
                        f"https://*.workday.com/tenant{t}/d/inst/*/rel-task/{task}$*.htmld",
                    ]
                )
            )
        elif kind < 0.70:  # hash-routed SPAs
            route = rng.choice(ROUTES)
            add(
                rng.choice(
                    [
                        f"https://app-{t}.example.com/#/{route}/{row_id}/edit",
                        f"https://app-{t}.example.com/#/{route}/**",
                        f"https://hr.example.com/portal/#!/{route}/{t}/**",
                    ]
                )
            )
        elif kind < 0.85:  # query-routed apps
            add(
                rng.choice(
                    [
                        f"https://inst-{t}.service-now.com/nav_to.do?uri=incident.do*",
                        f"https://inst-{t}.service-now.com/incident.do?sys_id={sys_id}",
                        f"https://org{t}.crm.dynamics.com/main.aspx?pagetype=entityrecord"
                        f"&etn={rng.choice(OBJECTS).lower()}{guid}",
                    ]
                )
            )
        else:  # intranet apps with wildcard hosts, some with priorities
            add(
                rng.choice(
                    [
                        f"*://*.corp-{t}.example/**",
                        f"https://wiki.corp-{t}.example/display/*/**",
                        f"*://intranet-{t}.example:8443/apps/{rng.choice(ROUTES)}/**",
                    ]
                ),
                rng.choice([0, 0, 0, 1, 5]),
            )
    for i in range(REGEX_RULES):
        add(
            rng.choice(
                [
                    rf"re:^https://[a-z0-9-]+\.legacy-{i}\.example/app/\d+",
                    rf"re:/cgi-bin/tool{i}\.pl\?id=\d+$",
                    rf"re:^https?://reports-{i}\.example/(view|edit)/[A-Z]{{3}}-\d+",
                ]
            )
        )
    return rules


def make_urls(count: int, n_rules: int, rng: random.Random, typed: bool = False) -> list[str]:
    tenants = max(n_rules // 20, 10)
    urls = []
    for _ in range(count):
        t = rng.randrange(tenants)
        obj = rng.choice(OBJECTS)
        extra = []
        if typed:  # ids of the placeholders' shapes (the default mix keeps its old URLs)
            sys_id = f"{t:032x}"
            guid = f"%7B{t:08x}-4f89-41d3-9a0c-0305e82c3301%7D"
            extra = [
                f"https://inst-{t}.service-now.com/incident.do?sys_id={sys_id}",
                f"https://org{t}.crm.dynamics.com/main.aspx?pagetype=entityrecord&etn=lead&id={guid}",
            ]
        urls.append(
            rng.choice(
                [
                    *extra,
                    f"https://acme-{t}.lightning.force.com/lightning/r/{obj}/006Hs00001AbCdE{t}/view",
                    f"https://acme-{t}.my.salesforce.com/lightning/o/{obj}/list?filterName=Recent",
                    f"https://wd5.myworkday.com/tenant{t}/d/task/{rng.choice(WORKDAY_TASKS)}$123.htmld",
                    f"https://app-{t}.example.com/#/{rng.choice(ROUTES)}/{t}/edit",
                    f"https://hr.example.com/portal/#!/{rng.choice(ROUTES)}/{t}/detail",
                    f"https://inst-{t}.service-now.com/nav_to.do?uri=incident.do%3Fsys_id%3D{t}",
                    f"https://org{t}.crm.dynamics.com/main.aspx?appid=x&pagetype=entityrecord&etn=account&id={t}",
                    f"https://wiki.corp-{t}.example/display/ENG/Page+{t}",
                    f"https://www.google.com/search?q=inflow+{t}",
                    f"https://github.com/org/repo-{t}/pull/{t}",
                ]
            )
        )
    return urls


def per_url_us(
    fn: Callable[[str], object], urls: list[str], repeat: int = 1
) -> tuple[float, float]:
    """Median and p99 of the per-URL time; with repeat > 1, each URL's best of `repeat` runs
    (filters out scheduler and GC noise on a busy machine)."""
    times = []
    for url in urls:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter_ns()
            fn(url)
            best = min(best, (time.perf_counter_ns() - start) / 1000)
        times.append(best)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--urls", type=int, default=3000)
    parser.add_argument("--typed", action="store_true", help="ids as typed placeholders")
    args = parser.parse_args()
    mix = "typed placeholders" if args.typed else "'*' wildcards"
    print(f"Python {sys.version.split()[0]}; {args.urls} URLs per size; times are us per URL")
    print(f"ids in the rule mix: {mix}")
    print("'best of 5' = per-URL minimum of 5 runs (scheduler/GC noise removed)")
    print(
        f"{'rules':>8} {'compile s':>10} {'RuleSet med':>12} {'RuleSet p99':>12} "
        f"{'best5 med':>10} {'best5 p99':>10} {'naive med':>10} {'naive p99':>10} "
        f"{'speed-up':>9} {'hits/URL':>9}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        rng = random.Random(size)
        rules = make_rules(size, rng, args.typed)
        urls = make_urls(args.urls, size, rng, args.typed)
        start = time.perf_counter()
        rule_set = RuleSet(rules)
        compile_s = time.perf_counter() - start
        compiled = list(rule_set)
        for url in urls[:200]:  # warm the caches, and check the index against the reference
            assert rule_set.match(url) == naive_match(compiled, url), url
        med, p99 = per_url_us(rule_set.match, urls)
        best_med, best_p99 = per_url_us(rule_set.match, urls, repeat=5)
        naive_urls = urls[: max(20, 2_000_000 // size)]
        naive_med, naive_p99 = per_url_us(partial(naive_match, compiled), naive_urls)
        hits = sum(len(rule_set.match(u)) for u in urls) / len(urls)
        print(
            f"{size:>8} {compile_s:>10.2f} {med:>12.1f} {p99:>12.1f} {best_med:>10.1f} "
            f"{best_p99:>10.1f} {naive_med:>10.0f} {naive_p99:>10.0f} {naive_med / med:>8.0f}x "
            f"{hits:>9.2f}"
        )


if __name__ == "__main__":
    main()
