"""Host parsing after the WHATWG URL standard (the parts a browser applies to http(s) hosts).

The result is what `new URL(u).hostname` gives in a browser, minus trailing dots: lowercase
ASCII, internationalised labels in punycode, IPv4 in dotted decimal (also from forms like
`0x7f.1`), IPv6 in brackets and compressed. `None` means the browser would reject the URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

_Remap = Callable[..., str]
_uts46_remap: _Remap | None
try:  # `idna` (a dependency of yarl/aiohttp) implements UTS #46 like browsers do.
    from idna import uts46_remap as _uts46_remap
except ImportError:  # pragma: no cover - exercised only without idna installed
    _uts46_remap = None

# WHATWG "forbidden domain code points" (forbidden host code points, C0 controls, %, DEL).
_FORBIDDEN = frozenset([chr(c) for c in range(0x21)] + list("#/:<>?@[\\]^|%") + [chr(0x7F)])


# Letters, digits, '-' and '_' labels whose last label starts with a letter: cannot be an IPv4
# address and needs no IDNA mapping.
_PLAIN_HOST_RE = re.compile(r"(?:[A-Za-z0-9_-]+\.)*[A-Za-z][A-Za-z0-9_-]*\.?")


def parse_host(raw: str) -> str | None:
    """Return the canonical host for the authority's host part, or None when it is invalid."""
    if not raw:
        return None
    if _PLAIN_HOST_RE.fullmatch(raw):  # the common case: nothing to decode, map or parse
        return raw.lower().rstrip(".")
    if raw.startswith("["):
        if not raw.endswith("]"):
            return None
        ip6 = _parse_ipv6(raw[1:-1])
        return None if ip6 is None else f"[{ip6}]"
    try:
        domain = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    ascii_domain = domain_to_ascii(domain)
    if ascii_domain is None or any(c in _FORBIDDEN for c in ascii_domain):
        return None
    # "crm.example.com." is crm.example.com. Dropping the dots first also makes "127.1.." an
    # IPv4 address (a browser would look it up as a name), so that normalising is idempotent.
    ascii_domain = ascii_domain.rstrip(".")
    if not ascii_domain:
        return None
    if ends_in_number(ascii_domain):
        return _parse_ipv4(ascii_domain)
    return ascii_domain


def domain_to_ascii(domain: str) -> str | None:
    """UTS #46 ToASCII (non-transitional, no STD3 rules), as the WHATWG URL parser uses it."""
    if domain.isascii():
        return domain.lower()
    if _uts46_remap is None:  # pragma: no cover
        try:
            return domain.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    try:
        mapped = _uts46_remap(domain, std3_rules=False, transitional=False)
    except Exception:  # idna raises its own error types; any of them means "not a valid host"
        return None
    labels = []
    for label in mapped.split("."):
        if label.isascii():
            labels.append(label)
        else:
            labels.append("xn--" + label.encode("punycode").decode("ascii"))
    return ".".join(labels)


def ends_in_number(domain: str) -> bool:
    parts = domain.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    if last and last.isdigit() and last.isascii():
        return True
    return _ipv4_number(last) is not None


def _ipv4_number(part: str) -> int | None:
    if part == "":
        return None
    radix = 10
    if part[:2] in ("0x", "0X"):
        part, radix = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, radix = part[1:], 8
    if part == "":
        return 0
    digits = "0123456789abcdefABCDEF"[: 22 if radix == 16 else radix]
    if any(c not in digits for c in part):
        return None
    return int(part, radix)


def _parse_ipv4(domain: str) -> str | None:
    parts = domain.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    nums = [n for n in numbers if n is not None]
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        return None
    value = nums[-1]
    for i, n in enumerate(nums[:-1]):
        value += n * 256 ** (3 - i)
    return ".".join(str((value >> s) & 0xFF) for s in (24, 16, 8, 0))


def parse_ipv4_literal(host: str) -> str | None:
    """Canonical dotted form when `host` is (any WHATWG form of) an IPv4 address, else None."""
    return _parse_ipv4(host) if host and ends_in_number(host) else None


def _parse_ipv6(text: str) -> str | None:
    """Parse an IPv6 literal the WHATWG way and serialise it (compressed, lowercase)."""
    if not text or any(c not in "0123456789abcdefABCDEF:." for c in text):
        return None
    head, sep, tail = text.partition("::")
    if "::" in tail:
        return None
    try:
        left = _ipv6_pieces(head, allow_ipv4=not sep)
        right = _ipv6_pieces(tail, allow_ipv4=True)
    except ValueError:
        return None
    if sep:
        if len(left) + len(right) > 7:
            return None
        pieces = left + [0] * (8 - len(left) - len(right)) + right
    else:
        pieces = left
    if len(pieces) != 8:
        return None
    return serialize_ipv6(pieces)


def _ipv6_pieces(text: str, *, allow_ipv4: bool) -> list[int]:
    if text == "":
        return []
    groups = text.split(":")
    pieces: list[int] = []
    for i, group in enumerate(groups):
        if "." in group:
            if not allow_ipv4 or i != len(groups) - 1:
                raise ValueError(group)
            octets = group.split(".")
            if len(octets) != 4 or any(
                not o.isdigit() or (len(o) > 1 and o[0] == "0") or int(o) > 255 for o in octets
            ):
                raise ValueError(group)
            a, b, c, d = (int(o) for o in octets)
            pieces += [a << 8 | b, c << 8 | d]
        elif 1 <= len(group) <= 4 and "." not in group:
            pieces.append(int(group, 16))
        else:
            raise ValueError(group)
    return pieces


def serialize_ipv6(pieces: list[int]) -> str:
    """WHATWG IPv6 serialiser: compress the first longest run of two or more zero pieces."""
    best_start, best_len, i = -1, 1, 0
    while i < 8:
        if pieces[i] == 0:
            j = i
            while j < 8 and pieces[j] == 0:
                j += 1
            if j - i > best_len:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    if best_start < 0:
        return ":".join(f"{p:x}" for p in pieces)
    left = ":".join(f"{p:x}" for p in pieces[:best_start])
    right = ":".join(f"{p:x}" for p in pieces[best_start + best_len :])
    return f"{left}::{right}"
