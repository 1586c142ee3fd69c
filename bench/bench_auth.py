"""Cost of authenticating one request: full RS256 verification vs the cached hot path.

    .venv/bin/python bench/bench_auth.py [--n 5000]

Uses a Keycloak-shaped token signed by a local 2048-bit RSA key (no Keycloak needed), the real
`verify_access_token` and the real `TokenAuthenticator` with static keys. Prints the median and p99
per request in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auth.jwks import StaticKeys
from auth.service import TokenAuthenticator
from auth.verifier import KeySet, VerifierConfig, identity_from_claims, verify_access_token
from tests.keycloak import TokenForge


def summary(name: str, samples_ns: list[int]) -> str:
    us = sorted(s / 1000 for s in samples_ns)
    p99 = us[min(len(us) - 1, int(len(us) * 0.99))]
    return f"{name:<38} median {statistics.median(us):8.1f} µs   p99 {p99:8.1f} µs   (n={len(us)})"


async def main(n: int) -> None:
    forge = TokenForge()
    keys = KeySet.from_jwks(forge.jwks)
    config = VerifierConfig(issuer=forge.issuer, allowed_clients=frozenset({"inflow-test"}))
    token = forge.token(
        "author", roles=("learner", "author"), groups=("people", "managers"), lifetime=3600
    )
    print(f"token: {len(token)} bytes, RS256, 2048-bit key")

    full: list[int] = []
    for _ in range(n):
        start = time.perf_counter_ns()
        identity_from_claims(verify_access_token(token, keys, config, time.time()), config)
        full.append(time.perf_counter_ns() - start)

    auth = TokenAuthenticator(config, StaticKeys(keys, "bench"))
    await auth.authenticate(token)  # fill the cache
    hot: list[int] = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await auth.authenticate(token)
        hot.append(time.perf_counter_ns() - start)

    # Different tokens every time: the cache misses and each request pays full verification.
    tokens = [forge.token(f"user{i}", lifetime=3600) for i in range(min(n, 2000))]
    miss: list[int] = []
    for t in tokens:
        start = time.perf_counter_ns()
        await auth.authenticate(t)
        miss.append(time.perf_counter_ns() - start)
    await auth.close()

    print(summary("(a) full verification (RS256)", full))
    print(summary("(b) cached hot path (authenticate)", hot))
    print(summary("    authenticate, cache miss", miss))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    asyncio.run(main(parser.parse_args().n))
