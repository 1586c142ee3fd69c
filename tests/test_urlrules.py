"""URL rule matcher: the shared vectors (also run by extension/tests/urlrules.test.mjs) and the
Python-only API details."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.urlrules import (
    InvalidRule,
    InvalidUrl,
    Match,
    Rule,
    RuleSet,
    compile_rule,
    naive_match,
    parse_url,
    sample_url,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "url_rules.json").read_text(encoding="utf-8")
)


def _rules(case: dict[str, Any]) -> list[Rule]:
    return [
        Rule(r["id"], r["pattern"], f"target-{r['id']}", r.get("priority", 0))
        for r in case["rules"]
    ]


def test_vectors_file_is_big_enough() -> None:
    assert len(VECTORS["cases"]) >= 80
    assert len(VECTORS["invalid"]) >= 30


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_vector_case(case: dict[str, Any]) -> None:
    rules = _rules(case)
    matches = RuleSet(rules).match(case["url"])
    assert [m.rule_id for m in matches] == case["expect"]
    assert naive_match([compile_rule(r) for r in rules], case["url"]) == matches
    for m in matches:
        assert m.target == f"target-{m.rule_id}"
        assert m.pattern == next(r.pattern for r in rules if r.id == m.rule_id)
    reasons = {m.rule_id: m.reason for m in matches}
    for rule_id, reason in case.get("reasons", {}).items():
        assert reasons[rule_id] == reason


@pytest.mark.parametrize("item", VECTORS["invalid"], ids=lambda i: i["pattern"][:60])
def test_vector_invalid(item: dict[str, str]) -> None:
    with pytest.raises(InvalidRule) as info:
        compile_rule(Rule("bad", item["pattern"], "t"))
    assert item["error"] in str(info.value)


@pytest.mark.parametrize("item", VECTORS["urls"], ids=lambda i: i["url"][:60])
def test_vector_url(item: dict[str, str | None]) -> None:
    url = item["url"]
    assert url is not None
    if item["normalized"] is None:
        with pytest.raises(InvalidUrl):
            parse_url(url)
        assert RuleSet([Rule("any", "*://*/**", "t")]).match(url) == []
    else:
        assert parse_url(url).normalized == item["normalized"]
        # Normalising is idempotent.
        assert parse_url(item["normalized"]).normalized == item["normalized"]


def test_invalid_rule_is_a_value_error_and_ruleset_names_the_rule() -> None:
    assert issubclass(InvalidRule, ValueError)
    with pytest.raises(InvalidRule) as info:
        RuleSet([Rule("ok", "https://a.example/", "t"), Rule("crm#3", "https://*x.com/", "t")])
    assert info.value.rule_id == "crm#3"
    assert str(info.value) == "rule 'crm#3': host wildcard only allowed as a leading '*.'"


def test_duplicate_rule_ids_are_rejected() -> None:
    with pytest.raises(InvalidRule, match="duplicate rule id"):
        RuleSet([Rule("a", "https://a.example/", "t"), Rule("a", "https://b.example/", "t")])


def test_match_fields_and_len() -> None:
    rs = RuleSet([Rule("ctx", "*://crm.example.com/opportunities/*/view", "crm-opp", 2)])
    assert len(rs) == 1
    assert rs.match("https://crm.example.com/opportunities/0061/view") == [
        Match(
            rule_id="ctx",
            target="crm-opp",
            pattern="*://crm.example.com/opportunities/*/view",
            reason="exact host crm.example.com, 2 literal path segments, 2 wildcards, priority 2",
        )
    ]


def test_url_over_8_kib_matches_nothing() -> None:
    rs = RuleSet([Rule("any", "*://*/**", "t")])
    ok = "https://a.example/" + "a" * (8192 - len("https://a.example/"))
    assert [m.rule_id for m in rs.match(ok)] == ["any"]
    assert rs.match(ok + "a") == []
    with pytest.raises(InvalidUrl, match="8192"):
        parse_url(ok + "a")
    # Bytes, not characters: 2,800 three-byte characters are over the limit.
    assert rs.match("https://a.example/" + "\u20ac" * 2800) == []


def test_non_string_and_garbage_urls_match_nothing() -> None:
    rs = RuleSet([Rule("any", "*://*/**", "t")])
    for url in ["", " ", "https", "http:", "https://[", "https://a b/", "https://a.example:-1/"]:
        assert rs.match(url) == []
    # Like browsers, leading C0 controls and spaces are stripped, not fatal.
    assert len(rs.match("\x00\x1f https://a.example/")) == 1


def test_parse_url_components() -> None:
    u = parse_url("https://alice@Acme.Example.COM:8443/a/b/?x=1&y=%41#!/route/7?tab=2")
    assert (u.scheme, u.host, u.port) == ("https", "acme.example.com", 8443)
    assert u.segments == ("a", "b")
    assert u.params == {"x": ("1",), "y": ("A",)}
    assert u.fragment_segments == ("route", "7")
    assert u.fragment_params == {"tab": ("2",)}
    assert u.normalized == "https://acme.example.com:8443/a/b/?x=1&y=A#!/route/7?tab=2"


def test_pathological_paths_stay_fast() -> None:
    """Globs and `**` must not backtrack exponentially (a regex translation would)."""
    import time

    rules = [
        Rule("deep", "https://a.example/**/x/**/y/**/z/**/never", "t"),
        Rule("glob", "https://a.example/*a*a*a*a*a*b", "t"),
    ]
    rs = RuleSet(rules)
    url = "https://a.example/" + "/".join(["x", "y", "z"] * 900)
    glob_url = "https://a.example/" + "a" * 8000
    start = time.perf_counter()
    assert rs.match(url) == []
    assert rs.match(glob_url) == []
    assert time.perf_counter() - start < 0.5


def test_rule_set_iterates_compiled_rules_for_naive_match() -> None:
    rules = [Rule("a", "https://a.example/**", "t"), Rule("r", "re:example", "t")]
    rs = RuleSet(rules)
    url = "https://a.example/x"
    assert naive_match(rs, url) == rs.match(url)
    assert [m.rule_id for m in rs.match(url)] == ["a", "r"]


# --- issue 11: typed placeholders, fragment parameters, one canonical form, sample URLs ---------

SAMPLE_PATTERNS = [
    "https://acme.lightning.force.com/lightning/r/Opportunity/006{alnum:12-15}/view",
    "https://acme-admin.okta.com/admin/user/profile/view/00u{alnum:17}",
    "https://acme.service-now.com/incident.do?sys_id={hex:32}",
    "https://acme.crm.dynamics.com/main.aspx?etn=opportunity&id={guid}&pagetype=entityrecord",
    "https://acme.crm.dynamics.com/records/{guid}",
    "https://acme.atlassian.net/browse/{alnum}-{digits}",
    "https://*.myworkday.com/*/d/task/2997$*.htmld",
    "https://acme.odoo.com/web#id={digits}&model=sale.order&view_type=form",
    "https://acme.odoo.com/web#?model=sale.order&!id",
    "*://*/files/INV-{digits:4-6}-*.pdf",
    "http://h.example:8080/a/{any}/{any:5}/{hex}/{digits:2}",
    "https://h.example/**/x/**/{digits}/edit#/tab/{alnum:2-3}?mode={any}",
    "https://[::1]/a%20b/caf\u00e9?q=a+b&r=INV-*&s&!t",
    "https://*.h.example/*/x*y*z",
    "https://h.example/",
    "https://h.example/#/",
    "https://h.example/a#!/b/**",
    "https://h.example/s?v=%7B{guid}%7D&w={alnum:1000}",
]


@pytest.mark.parametrize("pattern", SAMPLE_PATTERNS)
def test_sample_url_matches_its_own_rule(pattern: str) -> None:
    """The rule tester and rule warnings show `sample_url`: it must be a URL the rule matches."""
    rule = Rule("r", pattern, "t")
    url = sample_url(compile_rule(rule))
    assert url is not None
    assert [m.rule_id for m in RuleSet([rule]).match(url)] == ["r"]


def test_sample_url_for_every_vector_rule() -> None:
    """Every pattern rule in the shared vectors has a sample URL that it matches."""
    for case in VECTORS["cases"]:
        for rule in _rules(case):
            compiled = compile_rule(rule)
            url = sample_url(compiled)
            if rule.pattern.startswith("re:"):
                assert url is None
            else:
                assert url is not None, rule.pattern
                assert compiled.matches(parse_url(url)), (rule.pattern, url)


def test_sample_url_fills_placeholders_with_valid_values() -> None:
    sample = sample_url(
        compile_rule(Rule("r", "https://h.example/{digits:5}/{guid}?k={hex:4}", "t"))
    )
    assert sample == ("https://h.example/12345/3f2504e0-4f89-41d3-9a0c-0305e82c3301?k=0123")


def test_sample_url_is_none_for_regex_and_impossible_rules() -> None:
    assert sample_url(compile_rule(Rule("r", "re:^https://h\\.example/", "t"))) is None
    assert sample_url(compile_rule(Rule("r", "https://h.example/?a=1&!a", "t"))) is None


def test_workday_dollar_matches_the_encoded_form() -> None:
    """docs/url-rules.md's own Workday example (`2997$*.htmld`) missed every URL whose `$` the
    browser had sent as `%24`: the two were different characters after canonicalisation."""
    rs = RuleSet([Rule("task", "https://*.myworkday.com/*/d/task/2997$*.htmld", "t")])
    for url in [
        "https://wd5.myworkday.com/acme/d/task/2997$123.htmld",
        "https://wd5.myworkday.com/acme/d/task/2997%24123.htmld",
    ]:
        assert [m.rule_id for m in rs.match(url)] == ["task"], url
    assert (
        parse_url("https://h.example/a%24b?c=%24#%24").normalized == "https://h.example/a$b?c=$#$"
    )


def test_odoo_fragment_parameters_match() -> None:
    """`#?model=sale.order` compiled without warning and never matched Odoo's
    `#id=7&model=sale.order&view_type=form`: the fragment was read as a route named `id=7&...`."""
    rs = RuleSet(
        [
            Rule("form", "https://acme.odoo.com/web#?model=sale.order&view_type=form", "t"),
            Rule("any", "https://acme.odoo.com/web#model=sale.order", "t"),
        ]
    )
    url = "https://acme.odoo.com/web#id=7&model=sale.order&view_type=form"
    assert [m.rule_id for m in rs.match(url)] == ["form", "any"]
    assert parse_url(url).fragment_params == {
        "id": ("7",),
        "model": ("sale.order",),
        "view_type": ("form",),
    }
    assert parse_url(url).fragment_segments == ()


def test_typed_segments_on_hostile_urls_finish() -> None:
    """Placeholders next to `*` and each other must not backtrack (a regex translation like
    `[0-9]+[0-9]+.*[0-9]+.+y.*` is cubic on a long run of digits); the per-test timeout guards."""
    rs = RuleSet(
        [
            Rule("d", "https://a.example/{digits}{digits}*{digits}{any}y*", "t"),
            Rule("q", "https://a.example/**?v=*{alnum}*{alnum}*{alnum}!", "t"),
            Rule("g", "https://a.example/*{guid}*{guid}*{guid}*z", "t"),
        ]
    )
    assert rs.match("https://a.example/" + "1" * 8000 + "x") == []
    assert rs.match("https://a.example/?v=" + "a" * 8000) == []
    guid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    assert rs.match("https://a.example/" + guid * 200) == []
