"""Which IP addresses Inflow may fetch from: public ones only, unless a policy allows private.

`why_not_public(ip)` names the reason an address is refused ("" = public). Refused: loopback,
private (RFC 1918, ULA), link-local (169.254/16 with cloud metadata at 169.254.169.254, fe80::/10),
shared address space (CGNAT 100.64/10), multicast, reserved, unspecified, documentation and
benchmark ranges, IPv6 site-local, and any IPv6 address that embeds an IPv4 one which is not public
(IPv4-mapped ::ffff:a.b.c.d, 6to4 2002::/16, NAT64 64:ff9b::/96).
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def parse_ip(text: str) -> IPAddress | None:
    """The address `text` spells (an IPv6 one may carry a %zone), or None for a host name."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def why_not_public(ip: IPAddress) -> str:
    """ "" when `ip` is a public unicast address; otherwise a word for what it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            why = why_not_public(embedded)
            return f"{why} (inside an IPv6 address)" if why else ""
        if ip in _NAT64_LOCAL:
            return "private"
        if ip.is_site_local:
            return "site-local"
    for word, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return word
    if not ip.is_global:  # 100.64.0.0/10 (CGNAT) and the other special-purpose ranges
        return "not globally routable"
    return ""


def why_refused(ip: IPAddress, exempt: tuple[Network, ...] = ()) -> str:
    """why_not_public, except for addresses in `exempt` (networks an operator treats as public)."""
    if any(ip.version == net.version and ip in net for net in exempt):
        return ""
    return why_not_public(ip)


def networks(texts: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t.strip(), strict=False) for t in texts if t.strip())


def is_public(ip: IPAddress | str) -> bool:
    """True for an address on the public internet (see the module docstring)."""
    address = parse_ip(ip) if isinstance(ip, str) else ip
    return address is not None and not why_not_public(address)
