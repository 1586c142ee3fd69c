"""The URL rule matcher: which apps and contexts does a page URL belong to?

Syntax, precedence and limits: docs/url-rules.md. The JavaScript twin is
extension/src/lib/urlrules.js; tests/vectors/url_rules.json keeps the two in step.
"""

from server.urlrules.compiled import CompiledRule
from server.urlrules.matcher import RuleSet
from server.urlrules.model import Match, Rule
from server.urlrules.naive import naive_match
from server.urlrules.sample import sample_url
from server.urlrules.syntax import InvalidRule, compile_rule
from server.urlrules.url import MAX_URL_BYTES, InvalidUrl, ParsedUrl, parse_url

__all__ = [
    "MAX_URL_BYTES",
    "CompiledRule",
    "InvalidRule",
    "InvalidUrl",
    "Match",
    "ParsedUrl",
    "Rule",
    "RuleSet",
    "compile_rule",
    "naive_match",
    "parse_url",
    "sample_url",
]
