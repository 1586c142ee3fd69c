"""Name resolution that refuses non-public addresses, on the addresses aiohttp connects to.

The check is not a pre-flight lookup (DNS could answer differently a moment later: rebinding): the
connector of the strict session resolves through `GuardedResolver`, so every address it may
connect to has passed `why_not_public`; and its `socket_factory` checks the address once more just
before the socket connects, which also covers IP literals that aiohttp never resolves.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from server.fetch.addresses import Network, parse_ip, why_refused


class AddressRefused(OSError):
    """A host resolved to (or a socket was about to connect to) an address that is not public.

    An OSError so that aiohttp passes it through its connector as the cause of a
    ClientConnectorError; the fetcher turns it into FetchRefused("private_address")."""

    def __init__(self, host: str, ip: str, why: str) -> None:
        super().__init__(f"{host} resolves to {ip}, a {why} address")
        self.host, self.ip, self.why = host, ip, why


def check_address(host: str, address: str, exempt: tuple[Network, ...] = ()) -> None:
    ip = parse_ip(address)
    if ip is None:
        raise AddressRefused(host, address, "unparseable")
    why = why_refused(ip, exempt)
    if why:
        raise AddressRefused(host, str(ip), why)


class GuardedResolver(AbstractResolver):
    """aiohttp's default resolver, refusing the whole answer when any address is not public
    (a name with one private address among public ones is refused: no round-robin luck)."""

    def __init__(self, exempt: tuple[Network, ...] = ()) -> None:
        self._inner = DefaultResolver()
        self._exempt = exempt

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            check_address(host, result["host"], self._exempt)
        return results

    async def close(self) -> None:
        await self._inner.close()


def guarded_socket(exempt: tuple[Network, ...] = ()) -> Callable[[tuple[Any, ...]], socket.socket]:
    """TCPConnector's socket_factory: the last check, on the very address about to be connected."""

    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        check_address(str(sockaddr[0]), str(sockaddr[0]), exempt)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory
