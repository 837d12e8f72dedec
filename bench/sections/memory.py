"""Section "memory": memory of the verified-token cache, measured in fresh
processes (child "memory"): 100,000 distinct tokens, and the bound with a
smaller ``cache_size``."""

from __future__ import annotations

import gc
import os
import time
from typing import Any, Dict, List

from benchkit import AUDIENCE
from benchkit.issuer import idsrv_claims, mint, start_issuer
from sections import Context, Section, register, register_child, run_child


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(count: int, cache_size: int) -> Dict[str, Any]:
    """Validate ``count`` distinct ES256 tokens (IdentityServer shape) with
    a validator of ``cache_size``, reading ``claims.scopes`` as
    ``require_scope`` does; report what the cache holds and costs.

    Two passes over the same tokens: the first without tracemalloc (RSS
    growth: what the process really pays, allocator overhead included), the
    second, after ``clear_cache()``, under tracemalloc (the exact bytes
    Python objects take; tracemalloc's own bookkeeping would spoil RSS)."""
    import tracemalloc

    from oidc_guard import TokenValidator

    issuer, _ = start_issuer(("ES256",))
    now = int(time.time())
    tokens = [mint(issuer, "ES256", now, n=i) for i in range(count)]
    validator = TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=cache_size)
    validator.keys.refresh()  # JWKS loaded before measuring
    validator.validate_access_token(mint(issuer, "ES256", now, n=count + 1)).scopes
    validator.clear_cache()

    def fill() -> float:
        t0 = time.perf_counter()
        for token in tokens:
            validator.validate_access_token(token).scopes
        return time.perf_counter() - t0

    gc.collect()
    rss0 = _rss_bytes()
    elapsed = fill()
    gc.collect()
    rss = _rss_bytes() - rss0
    cache = validator._cache
    entries = len(cache) if cache is not None else 0

    validator.clear_cache()
    gc.collect()
    tracemalloc.start()
    base, _peak = tracemalloc.get_traced_memory()
    fill()
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()

    # The cache holds the newest entries: the last token is served from it.
    last = validator.validate_access_token(tokens[-1])
    last_ok = last["sub"] == idsrv_claims(issuer.issuer, now, n=count - 1)["sub"]
    issuer.stop()
    return {"count": count, "cache_size": cache_size, "entries": entries, "traced": traced,
            "rss": rss, "seconds": elapsed, "last_ok": last_ok}


def run_memory_child(count: int, cache_size: int) -> Dict[str, Any]:
    result: Dict[str, Any] = run_child("memory", [str(count), str(cache_size)], timeout=900, what="memory child")
    return result


def print_memory(results: List[Dict[str, Any]]) -> None:
    print("Verified-token cache memory (distinct ES256 IdentityServer-shaped tokens, fresh process;")
    print("traced = tracemalloc of everything allocated while validating; RSS = growth of resident set)")
    print(f"{'tokens':>10}{'cache_size':>12}{'entries':>10}{'traced MB':>11}{'RSS MB':>9}{'B/entry':>9}"
          f"{'us/token':>10}")
    for r in results:
        per = r["traced"] / r["entries"] if r["entries"] else 0
        print(f"{r['count']:10d}{r['cache_size']:12d}{r['entries']:10d}{r['traced'] / 1e6:11.1f}"
              f"{r['rss'] / 1e6:9.1f}{per:9.0f}{r['seconds'] / r['count'] * 1e6:10.1f}"
              + ("" if r["entries"] <= r["cache_size"] else "   BOUND VIOLATED")
              + ("" if r["last_ok"] else "   NEWEST TOKEN NOT SERVED"))
    print("target: 100,000 cached tokens under 100 MB; entries <= cache_size")
    print()


def run(ctx: Context) -> None:
    mem_runs = [(10_000, 10_000), (10_000, 1_000)] if ctx.quick else [(100_000, 100_000), (30_000, 10_000)]
    print_memory([run_memory_child(n, size) for n, size in mem_runs])


register_child("memory", lambda args: memory_child(int(args[0]), int(args[1])))
register(Section("memory", run, shared_issuer=False))
