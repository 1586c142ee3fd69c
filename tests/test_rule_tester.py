"""The rule tester as the admin's debugger: why each rule matched or not, the contexts in effect,
the learner's sidebar; and warnings for rules that can never match."""

from __future__ import annotations

import pytest

from server.urlrules import Rule, compile_rule, parse_url
from server.urlrules.explain import explain


def _why(pattern: str, url: str) -> str | None:
    return explain(compile_rule(Rule("r", pattern, "t")), parse_url(url))


@pytest.mark.parametrize(
    ("pattern", "url", "why"),
    [
        (
            "https://*.service-now.com/**",
            "http://acme.service-now.com/x",
            "scheme http is not https",
        ),
        (
            "https://*.service-now.com/**",
            "https://acme.service-now.com.evil.io/home.do",
            "host acme.service-now.com.evil.io is not *.service-now.com",
        ),
        (
            "https://crm.example.com/**",
            "https://crm.example.org/",
            "host crm.example.org is not crm.example.com",
        ),
        ("https://a.example.com:443/**", "https://a.example.com:8443/x", "port 8443 is not 443"),
        (
            "https://acme.service-now.com/sc_req_item.do",
            "https://acme.service-now.com/incident.do",
            "path /incident.do does not match /sc_req_item.do",
        ),
        (
            "https://a.example.com/x.do?sys_id=*",
            "https://a.example.com/x.do",
            "query parameter sys_id missing",
        ),
        (
            "https://a.example.com/x.do?sys_id=-1",
            "https://a.example.com/x.do?sys_id=12",
            "sys_id=12 does not match -1",
        ),
        (
            "https://a.example.com/x.do?!sys_id",
            "https://a.example.com/x.do?sys_id=12",
            "query parameter sys_id is present; the rule wants it absent",
        ),
        (
            "https://a.example.com/app#/orders/*",
            "https://a.example.com/app#/quotes/1",
            "fragment route /quotes/1 does not match /orders/*",
        ),
        (
            "https://a.example.com/app#/orders/*",
            "https://a.example.com/app",
            "the URL has no fragment; the rule wants #/orders/*",
        ),
        (
            "https://a.example.com/web#?model=sale.order",
            "https://a.example.com/web#?model=res.partner",
            "fragment parameter model=res.partner does not match sale.order",
        ),
        (
            "re:^https://x\\.example\\.com/",
            "https://a.example.com/web",
            "regular expression not found",
        ),
        ("https://a.example.com/x.do?sys_id=-1", "https://a.example.com/x.do?sys_id=-1", None),
    ],
)
def test_explain_names_the_first_part_that_does_not_match(
    pattern: str, url: str, why: str | None
) -> None:
    assert _why(pattern, url) == why
