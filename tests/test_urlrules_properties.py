"""Property tests for the URL rule matcher.

- The indexed RuleSet returns exactly what the naive loop returns (same ids, same order).
- Segment, glob and typed-segment matching agree with a regex translation (fine for tiny inputs;
  the real matcher avoids regexes because they backtrack badly on hostile URLs).
- URL normalisation is idempotent and never raises anything but InvalidUrl.
- Python and the JavaScript twin agree on random URLs and rule sets (needs `node`).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from server.urlrules import (
    InvalidUrl,
    Rule,
    RuleSet,
    compile_rule,
    naive_match,
    parse_url,
    sample_url,
)
from server.urlrules.compiled import CondKind
from server.urlrules.segments import ANY_SEGMENT, DEEP, Glob, SegmentPattern, Token, Typed

# --- a shared alphabet for rules and URLs ------------------------------------------------------

URL_HOSTS = [
    "a.example",
    "b.a.example",
    "c.b.a.example",
    "example",
    "x.test",
    "127.0.0.1",
    "A.Example.",
    "xa.example",
]
RULE_HOSTS = [
    "a.example",
    "b.a.example",
    "example",
    "x.test",
    "127.0.0.1",
    "*.a.example",
    "*.example",
    "*.b.a.example",
    "*.test",
    "*",
]
GUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
RULE_SEGMENTS = [
    "a",
    "b",
    "c",
    "%41",
    "*",
    "**",
    "a*",
    "*b",
    "a*c",
    "*.do",
    "x$y",
    "x%24y",
    "{digits}",
    "{digits:2}",
    "a{digits:1-3}",
    "{hex:4}",
    "{alnum}-{digits}",
    "{guid}",
    "{any}",
    "a{any:2}*",
    "*{alnum:2}",
]
URL_SEGMENTS = [
    "a",
    "b",
    "c",
    "A",
    "%41",
    "ab",
    "abc",
    "acb",
    "x.do",
    "",
    ".",
    "..",
    "%2e",
    "x$y",
    "x%24y",
    "12",
    "a123",
    "beef",
    "AB-12",
    GUID,
    "%7B" + GUID + "%7D",
    "a%20b",
]
RULE_CONDITIONS = ["a=1", "a=*", "!a", "b=2", "b", "b=x*", "!c", "a={digits}", "b={alnum:2}"]
URL_PARAMS = ["a=1", "a=2", "b=2", "b=xy", "c", "a=", "b=x%79", "a=12", "b=%24"]
REGEXES = ["re:example", "re:^https://a\\.example/", "re:/a/b", "re:[?&]a=1", "re:#/a$", "re:b$"]


def _route(draw: st.DrawFn, pool: list[str], max_size: int) -> str:
    return "/".join(draw(st.lists(st.sampled_from(pool), max_size=max_size)))


@st.composite
def rule_patterns(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(REGEXES))
    scheme = draw(st.sampled_from(["http", "https", "*"]))
    host = draw(st.sampled_from(RULE_HOSTS))
    port = draw(st.sampled_from(["", "", "", ":8080", ":443", ":*"]))
    pattern = f"{scheme}://{host}{port}/{_route(draw, RULE_SEGMENTS, 4)}"
    if draw(st.booleans()):
        conds = draw(st.lists(st.sampled_from(RULE_CONDITIONS), min_size=1, max_size=3))
        pattern += "?" + "&".join(conds)
    if draw(st.integers(0, 2)) == 0:
        if draw(st.integers(0, 3)) == 0:  # fragment parameters: `#a=1&b` or `#?a=1`
            conds = draw(st.lists(st.sampled_from(RULE_CONDITIONS), min_size=1, max_size=2))
            return pattern + draw(st.sampled_from(["#", "#?"])) + "&".join(conds)
        pattern += "#" + draw(st.sampled_from(["/", "!/", ""])) + _route(draw, RULE_SEGMENTS, 3)
        if pattern.endswith("#"):
            pattern += "/"
        if draw(st.booleans()):
            pattern += "?" + draw(st.sampled_from(RULE_CONDITIONS))
    return pattern


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS", "ftp"]))
    host = draw(st.sampled_from(URL_HOSTS))
    port = draw(st.sampled_from(["", "", ":8080", ":443", ":80"]))
    url = f"{scheme}://{host}{port}/{_route(draw, URL_SEGMENTS, 5)}"
    if draw(st.booleans()):
        url += draw(st.sampled_from(["", "/"]))
    if draw(st.booleans()):
        url += "?" + "&".join(draw(st.lists(st.sampled_from(URL_PARAMS), max_size=3)))
    if draw(st.booleans()):
        if draw(st.integers(0, 3)) == 0:  # fragment parameters: `#id=7&a=1`
            return url + "#" + "&".join(draw(st.lists(st.sampled_from(URL_PARAMS), max_size=3)))
        url += "#" + draw(st.sampled_from(["/", "!/", ""])) + _route(draw, URL_SEGMENTS, 3)
        if draw(st.booleans()):
            url += "?" + draw(st.sampled_from(URL_PARAMS))
    return url


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    patterns = draw(st.lists(rule_patterns(), min_size=1, max_size=25))
    priorities = st.sampled_from([0, 0, 0, 1, -1, 2])
    return [Rule(f"r{i:02d}", p, f"t{i}", draw(priorities)) for i, p in enumerate(patterns)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), st.lists(urls(), min_size=1, max_size=8))
def test_ruleset_agrees_with_naive_match(rules: list[Rule], url_list: list[str]) -> None:
    rule_set = RuleSet(rules)
    compiled = [compile_rule(r) for r in rules]
    for url in url_list:
        assert rule_set.match(url) == naive_match(compiled, url)


@settings(max_examples=200, deadline=None)
@given(st.lists(urls(), min_size=1, max_size=5))
def test_every_url_matches_the_catch_all_rule(url_list: list[str]) -> None:
    rule_set = RuleSet([Rule("all", "*://*/**", "t")])
    for url in url_list:
        ok = not url.lower().startswith("ftp")
        assert [m.rule_id for m in rule_set.match(url)] == (["all"] if ok else [])


# --- segment and glob matching against a regex oracle ------------------------------------------

TOKENS: list[Token] = [
    "a",
    "b",
    "ab",
    ANY_SEGMENT,
    DEEP,
    Glob.from_pieces(["a", ""], nonempty=True),
    Glob.from_pieces(["", "b"], nonempty=True),
    Glob.from_pieces(["", "a", ""], nonempty=True),
]


def _token_regex(token: Token) -> str:
    if isinstance(token, str):
        return "/" + re.escape(token)
    if token is DEEP:
        return "(?:/[^/]*)*"
    assert isinstance(token, Glob)
    if token is ANY_SEGMENT:
        return "/[^/]+"
    inner = "[^/]*".join(re.escape(p) for p in (token.prefix, *token.middles, token.suffix))
    return "/" + inner


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.sampled_from(TOKENS), max_size=6),
    st.lists(st.sampled_from(["a", "b", "ab", "ba", "aab", "", "c"]), max_size=7),
)
def test_segment_pattern_agrees_with_regex(tokens: list[Token], segs: list[str]) -> None:
    oracle = re.compile("".join(_token_regex(t) for t in tokens))
    expected = oracle.fullmatch("".join("/" + s for s in segs)) is not None
    assert SegmentPattern(tuple(tokens)).matches(segs) == expected


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(["", "a", "b", "ab"]), min_size=2, max_size=5), st.text("abc"))
def test_glob_agrees_with_regex(pieces: list[str], text: str) -> None:
    oracle = re.compile(".*".join(re.escape(p) for p in pieces), re.DOTALL)
    assert Glob.from_pieces(pieces).matches(text) == (oracle.fullmatch(text) is not None)


TYPED_PIECES = [
    "a",
    "1",
    "-",
    "*",
    "{digits}",
    "{digits:2}",
    "{hex:1-2}",
    "{alnum}",
    "{any}",
    "{any:2}",
    "{guid}",
]
_PIECE_REGEX = {
    "*": ".*",
    "{digits}": "[0-9]+",
    "{digits:2}": "[0-9]{2}",
    "{hex:1-2}": "[0-9a-fA-F]{1,2}",
    "{alnum}": "[0-9a-zA-Z]+",
    "{any}": ".+",
    "{any:2}": ".{2}",
    "{guid}": "(?:%7B{g}%7D|{{{g}}}|{g})".format(
        g="-".join(f"[0-9a-fA-F]{{{n}}}" for n in (8, 4, 4, 4, 12))
    ),
}


@settings(max_examples=800, deadline=None)
@given(
    st.lists(st.sampled_from(TYPED_PIECES), min_size=1, max_size=5),
    st.lists(
        st.sampled_from(["a", "1", "2", "-", "f", "Z", GUID, "%7B", "%7D", "{", "}"]), max_size=8
    ),
)
def test_typed_segment_agrees_with_regex(pieces: list[str], chars: list[str]) -> None:
    """The position-set matcher of a typed segment agrees with a (backtracking) regex."""
    text = "".join(pieces)
    assume("**" not in text)  # `**` is a whole segment, never part of one
    if "{" not in text:
        text += "{any}"
        pieces = [*pieces, "{any}"]
    oracle = re.compile("".join(_PIECE_REGEX.get(p, re.escape(p)) for p in pieces), re.DOTALL)
    typed = compile_rule(Rule("r", f"https://h.example/{text}", "t"))
    assert typed.path is not None
    token = typed.path.tokens[0]
    assert isinstance(token, Typed)
    subject = "".join(chars)
    assert token.matches(subject) == (oracle.fullmatch(subject) is not None), (text, subject)


# --- URL normalisation --------------------------------------------------------------------------

URL_CHARS = st.sampled_from(
    [
        *"aZ09-._~!$&'()*+,;=:@/?#%\\ \t\"<>^`{|}[]",
        *["%24", "%26", "%3D", "%2B", "%2F", "%3F", "%40", "%3a", "%27", "%7B"],
        *["é", "€", "%2e", "%41", "%2F", "..", "xn--", "\u00df", "\U0001f600"],
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["https://", "http://", "HTTP:", "https:\\\\", " https://u:p@"]),
    st.sampled_from(["a.example", "A.b.EXAMPLE.", "127.1", "[::1]", "b\u00fccher.example", ""]),
    st.lists(URL_CHARS, max_size=20),
)
def test_normalisation_is_idempotent(prefix: str, host: str, tail: list[str]) -> None:
    url = prefix + host + "".join(tail)
    try:
        parsed = parse_url(url)
    except InvalidUrl:
        return
    normalized = parsed.normalized
    assert normalized.isascii()
    assert parse_url(normalized) == parsed


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_raises(text: str) -> None:
    rule_set = RuleSet([Rule("all", "*://*/**", "t")])
    for url in (text, "https://" + text, "https://a.example/" + text):
        rule_set.match(url)  # must not raise


# --- Python and JavaScript agree ----------------------------------------------------------------

NODE = shutil.which("node")
JS_MODULE = Path(__file__).resolve().parent.parent / "extension" / "src" / "lib" / "urlrules.js"
NODE_SCRIPT = """
const m = await import(process.argv[1]);
let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map(({ rules, urls }) => {
  const rs = new m.RuleSet(rules);
  return urls.map((u) => {
    let normalized = null;
    try { normalized = m.parseUrl(u).normalized; }
    catch (e) { if (!(e instanceof m.InvalidUrl)) throw e; }
    return { normalized, matches: rs.match(u).map((x) => [x.rule_id, x.reason]) };
  });
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.mark.skipif(NODE is None, reason="node is not on PATH")
def test_python_and_javascript_agree() -> None:
    """Random rule sets and URLs from the shared alphabet give the same answers in both."""
    rng = random.Random(20261129)
    batches = []
    for _ in range(150):
        rules = [
            Rule(f"r{i:02d}", _random_pattern(rng), "t", rng.choice([0, 0, 1, -1]))
            for i in range(rng.randint(1, 12))
        ]
        batches.append((rules, [_random_url(rng) for _ in range(12)]))
    payload = [{"rules": [r.__dict__ for r in rules], "urls": us} for rules, us in batches]
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", NODE_SCRIPT, JS_MODULE.as_uri()],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    js = json.loads(result.stdout)
    for (rules, us), js_results in zip(batches, js, strict=True):
        rule_set = RuleSet(rules)
        for url, got in zip(us, js_results, strict=True):
            try:
                normalized: str | None = parse_url(url).normalized
            except InvalidUrl:
                normalized = None
            assert got["normalized"] == normalized, url
            expected = [[m.rule_id, m.reason] for m in rule_set.match(url)]
            assert got["matches"] == expected, (url, [r.pattern for r in rules])


def _random_pattern(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(REGEXES)
    segs = "/".join(rng.choice(RULE_SEGMENTS) for _ in range(rng.randint(0, 4)))
    pattern = f"{rng.choice(['http', 'https', '*'])}://{rng.choice(RULE_HOSTS)}"
    pattern += rng.choice(["", "", ":8080", ":443"]) + "/" + segs
    if rng.random() < 0.4:
        pattern += "?" + "&".join(rng.sample(RULE_CONDITIONS, rng.randint(1, 3)))
    if rng.random() < 0.3:
        pattern += "#/" + "/".join(rng.choice(RULE_SEGMENTS) for _ in range(rng.randint(0, 3)))
    elif rng.random() < 0.15:
        pattern += rng.choice(["#", "#?"]) + "&".join(rng.sample(RULE_CONDITIONS, 2))
    return pattern


def _random_url(rng: random.Random) -> str:
    url = f"{rng.choice(['http', 'https', 'HTTPS', 'ftp'])}://{rng.choice(URL_HOSTS)}"
    url += rng.choice(["", "", ":8080", ":443", ":80"]) + "/"
    url += "/".join(rng.choice(URL_SEGMENTS) for _ in range(rng.randint(0, 5)))
    url += "".join(
        rng.choice(["", "", "é", "%", "%7e", " ", "\\", "'", "^", "{"]) for _ in range(2)
    )
    if rng.random() < 0.5:
        url += "?" + "&".join(rng.choice(URL_PARAMS) for _ in range(rng.randint(0, 3)))
    if rng.random() < 0.4:
        url += "#" + rng.choice(["/", "!/", ""])
        url += "/".join(rng.choice(URL_SEGMENTS) for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.3:
            url += "?" + "&".join(rng.choice(URL_PARAMS) for _ in range(rng.randint(1, 2)))
    elif rng.random() < 0.2:
        url += "#" + "&".join(rng.choice(URL_PARAMS) for _ in range(rng.randint(1, 3)))
    return url


@settings(max_examples=400, deadline=None)
@given(rule_patterns())
def test_sample_url_matches_its_rule(pattern: str) -> None:
    """`sample_url` gives a URL the rule matches, unless the rule contradicts itself (`a=1&!a`)."""
    compiled = compile_rule(Rule("r", pattern, "t"))
    url = sample_url(compiled)
    if compiled.regex is not None:
        assert url is None
        return
    if url is None:
        groups = [compiled.conditions, compiled.fragment.conditions if compiled.fragment else ()]
        assert any(
            {c.name for c in conds if c.kind is CondKind.ABSENT}
            & {c.name for c in conds if c.kind is not CondKind.ABSENT}
            for conds in groups
        ), pattern
        return
    assert [m.rule_id for m in RuleSet([Rule("r", pattern, "t")]).match(url)] == ["r"]
