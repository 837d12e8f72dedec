"""The asynchronous path through the one pipeline, for ASGI adapters
(:mod:`oidc_guard.asgi`, :mod:`oidc_guard.fastapi`, :mod:`oidc_guard.mcp`):
the event loop never waits on the network.

Design (docs/architecture.md, "Async"): not a second, async copy of the
pipeline but the same synchronous steps of
:class:`~oidc_guard.auth.Authenticator`, each run where it belongs:

* pure steps run on the loop: extracting the credential, the pre-checks,
  a token the validator can answer from memory
  (``cached_access_token``: the verified-token cache, the introspector's
  in-process cache, a multi-issuer validator's routing table), the DPoP
  proof with the in-process replay store, the certificate binding, the
  result;
* every step that may wait on the network -- validating a token the caches
  do not hold (discovery, JWKS, introspection, Redis) and a DPoP replay
  check in a shared (Redis) store -- runs in a worker thread of one
  bounded pool, so a slow provider costs threads, never the loop.

Because the work runs on threads, the validator's single-flight tables
(:mod:`oidc_guard._flight`) are shared by threads and coroutines alike, and
one :class:`~oidc_guard.TokenValidator` serves a mixed WSGI + ASGI
deployment with one set of caches.  Every network call keeps its own
deadline, so a thread never waits for ever and no request hangs.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, TypeVar

from .auth import AuthResult, Authenticator
from .claims import Claims
from .credentials import RequestFacts
from .errors import InvalidRequest

__all__ = ["authenticate_async", "validate_access_token_async", "run_off_loop", "MAX_WORKERS"]

#: Threads of the pool that runs the steps which may wait on the network.
#: A bound, not a target: a flood of new tokens while the provider is slow
#: queues here (each waiting at most its HTTP deadline) instead of starting
#: a thread per request.
MAX_WORKERS = 16

_T = TypeVar("_T")
_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="oidc_guard-io")
            pool = _pool
    return pool


async def run_off_loop(call: Callable[..., _T], *args: Any) -> _T:
    """``call(*args)`` in the pool's worker thread, awaited."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), call, *args)


def _cached(validator: Any, token: str) -> Any:
    cached = getattr(validator, "cached_access_token", None)
    if cached is None:
        return None
    try:
        return cached(token)
    except Exception:  # a look-up problem is only "not cached": validate decides
        return None


def _binding_needs_io(authenticator: Authenticator, scheme: str) -> bool:
    """A DPoP proof's jti is recorded in the replay store: network I/O when
    that store is shared (Redis); the in-process store is memory."""
    verifier = authenticator.dpop_verifier
    return scheme == "dpop" and verifier is not None and bool(getattr(verifier.replay_store, "shared", False))


async def authenticate_async(authenticator: Authenticator, facts: RequestFacts) -> AuthResult:
    """:meth:`Authenticator.authenticate <oidc_guard.auth.Authenticator.authenticate>`
    for an event loop: the same steps and the same result, the ones that
    may wait on the network run off the loop (see the module doc).  The
    facts' form body, if any, must already be read (an ASGI adapter reads
    the body before calling this)."""
    try:
        credential = authenticator.extract(facts)
    except InvalidRequest as exc:
        return authenticator.malformed(exc, facts)
    if credential is None:
        return authenticator.authenticate(facts)  # no token: nothing to wait for
    claims: Any = None
    proof = None
    error = authenticator.precheck(credential, facts)
    if error is None:
        claims = _cached(authenticator.validator, credential.token)
        if claims is None:
            claims, error = await run_off_loop(authenticator.validate, credential, facts)
        if error is None:
            if _binding_needs_io(authenticator, credential.scheme):
                claims, error, proof = await run_off_loop(authenticator.bind, claims, credential, facts)
            else:
                claims, error, proof = authenticator.bind(claims, credential, facts)
    return authenticator.conclude(credential, claims, error, proof)


async def validate_access_token_async(validator: Any, token: str) -> Claims:
    """``validator.validate_access_token(token)`` for an event loop: a
    cached token is answered on the loop, any other is validated in the
    pool's worker thread.  Raises as the validator does."""
    claims = _cached(validator, token)
    if claims is not None:
        return claims  # type: ignore[no-any-return]
    return await run_off_loop(validator.validate_access_token, token)
