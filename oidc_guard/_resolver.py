"""The resolver half of :class:`~oidc_guard.MultiIssuerValidator`: asking
``resolver(issuer)`` about an issuer that is not a member, within the bounds
the class documents (plausible issuer URLs only, at most ``max_resolved``
validators, at most ``max_concurrent_resolutions`` calls at once, one call
per issuer at a time, refusals remembered for ``negative_ttl`` seconds, a
back-off after a failure), and never a 401 when trust cannot be decided now.

A mixin over the validator's own state (set up by its ``__init__``), so
that the attributes stay where users and tests read them
(``resolved_count``, ``resolver_calls``).  Its log lines are those of the
``oidc_guard.multi`` logger.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional

from ._bounded import ExpiringLRU
from ._flight import SingleFlight
from ._text import show as _show
from .errors import InvalidToken, ProviderError
from .http import check_url

__all__ = ["ResolvingMixin"]

logger = logging.getLogger("oidc_guard.multi")

# Retry-After (seconds) of a 503 because every resolution slot is busy:
# the calls in flight end within about resolver_timeout, usually sooner.
_BUSY_RETRY_AFTER = 2.0
# Shown in errors and logs: the issuer quoted by repr() (control characters
# escaped) and cut to this length.  The WWW-Authenticate header builder
# replaces anything outside printable ASCII as well.
_ISSUER_SHOWN = 120
# Resolver errors are logged with their traceback at most once per this
# many seconds (a flood of tokens naming a failing tenant must not flood the
# logs); the lines in between are counted and the count reported.
_RESOLVER_LOG_INTERVAL = 60.0


class ResolvingMixin:
    """Trust decisions for issuers that are not members (see the module doc)."""

    # set by MultiIssuerValidator.__init__
    _members: Dict[str, Any]
    _resolver: Optional[Callable[[str], Optional[Any]]]
    _clock: Callable[[], float]
    _lock: threading.Lock
    _slot_freed: threading.Condition
    _negative: "ExpiringLRU[str, bool]"
    _in_flight: "SingleFlight[str, Any]"
    _limit_logged: bool
    _resolver_log_at: float
    _resolver_down_until: float
    _resolver_log_suppressed: int
    allow_http: bool
    max_resolved: int
    negative_cache_size: int
    negative_ttl: float
    resolver_backoff: float
    max_concurrent_resolutions: int
    resolver_timeout: float
    resolved_count: int
    resolver_calls: int

    @staticmethod
    def _untrusted(iss: str, why: str = "") -> InvalidToken:
        return InvalidToken(f"issuer {_show(iss, _ISSUER_SHOWN)} is not trusted{why}", reason="issuer")

    # --- the resolver ----------------------------------------------------------
    def _resolve(self, iss: str) -> Any:
        try:
            check_url(iss, self.allow_http, "issuer")
        except ProviderError:
            raise self._untrusted(iss) from None
        # Real time, not self._clock: this bounds how long a request waits.
        deadline = time.monotonic() + self.resolver_timeout
        while True:
            with self._lock:
                member = self._members.get(iss)
                if member is not None:
                    return member
                if self._negative.get(iss) is not None:
                    raise self._untrusted(iss)  # the resolver said "not trusted", recently
                flight = self._in_flight.get(iss)
                if flight is None:
                    # The resolver failed a moment ago (its directory is
                    # down, say): new issuers get 503 at once instead of a
                    # resolver call each, so a stream of random iss values
                    # cannot pile calls onto a struggling directory.
                    wait = self._resolver_down_until - self._clock()
                    if wait > 0:
                        raise ProviderError(
                            f"the trust of issuer {_show(iss, _ISSUER_SHOWN)} cannot be decided now (the "
                            "issuer resolver failed moments ago)", retry_after=wait)
                    if self.resolved_count >= self.max_resolved:
                        raise self._bound_reached(iss)
                    if len(self._in_flight) >= self.max_concurrent_resolutions:
                        # Every slot is busy with other new issuers (junk
                        # ones, possibly): wait for one, never refuse.
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise ProviderError(
                                f"the trust of issuer {_show(iss, _ISSUER_SHOWN)} cannot be decided now (all "
                                f"{self.max_concurrent_resolutions} issuer resolver slots stayed busy for "
                                f"{self.resolver_timeout:g} s)", retry_after=_BUSY_RETRY_AFTER)
                        self._slot_freed.wait(remaining)
                        continue
                    flight, leader = self._in_flight.join_locked(iss)
                else:
                    leader = False
            if not leader:
                # Another thread is asking the resolver about this issuer:
                # wait for its answer (bounded: a hanging resolver must not
                # hold every request that names the issuer), then look again
                # (one call per issuer).
                if not flight.wait(max(0.0, deadline - time.monotonic())):
                    self._resolver_failed()
                    self._log_resolver_failure(
                        iss, f"has not answered within resolver_timeout ({self.resolver_timeout:g} s)")
                    raise ProviderError(
                        f"the trust of issuer {_show(iss, _ISSUER_SHOWN)} cannot be decided now (the issuer "
                        f"resolver has not answered within {self.resolver_timeout:g} s)",
                        retry_after=max(self.resolver_backoff, 1.0))
                continue
            try:
                return self._call_resolver(iss)
            finally:
                # followers look again (member or refusal), whatever happened
                self._in_flight.land(iss, flight)

    def _bound_reached(self, iss: str) -> ProviderError:
        """max_resolved validators exist: 503, never 401 (the token may be a
        real tenant's; the server cannot take another one).  Call with
        _lock held."""
        if not self._limit_logged:
            self._limit_logged = True
            logger.warning(
                "the issuer resolver created its maximum of %d validators; further new issuers get 503 "
                "(raise max_resolved if this many tenants are real)", self.max_resolved)
        return ProviderError(
            f"the trust of issuer {_show(iss, _ISSUER_SHOWN)} cannot be decided now (the issuer resolver "
            f"created its maximum of {self.max_resolved} validators)", retry_after=30.0)

    def _call_resolver(self, iss: str) -> Any:
        assert self._resolver is not None
        with self._lock:
            self.resolver_calls += 1
        try:
            validator = self._resolver(iss)
        except Exception:
            self._resolver_failed()
            self._log_resolver_failure(iss, "raised an exception", exc_info=True)
            raise ProviderError(
                f"the trust of issuer {_show(iss, _ISSUER_SHOWN)} cannot be decided now (the issuer resolver failed)"
            ) from None
        if validator is None:
            with self._lock:
                if self.negative_cache_size > 0 and self.negative_ttl > 0:
                    self._negative.put(iss, True, self._clock() + self.negative_ttl)
            raise self._untrusted(iss)
        if getattr(validator, "issuer", None) != iss or not callable(getattr(validator, "validate_access_token", None)) \
                or isinstance(validator, ResolvingMixin):
            self._resolver_failed()
            self._log_resolver_failure(
                iss, f"returned {type(validator).__name__} with issuer "
                     f"{_show(getattr(validator, 'issuer', None), _ISSUER_SHOWN)} (must be a TokenValidator "
                     "for exactly the issuer asked about)")
            raise ProviderError(
                f"the trust of issuer {_show(iss, _ISSUER_SHOWN)} cannot be decided now (the issuer resolver "
                "returned an unusable validator)")
        with self._lock:
            # One validator per issuer: the in-flight event guarantees no
            # other call for iss runs now.  Calls in flight do not reserve a
            # place under max_resolved, so the bound is checked again here.
            if self.resolved_count >= self.max_resolved:
                raise self._bound_reached(iss)
            self._members[iss] = validator
            self.resolved_count += 1
        logger.info("issuer resolver trusted %s (%d of at most %d)", _show(iss, _ISSUER_SHOWN),
                    self.resolved_count, self.max_resolved)
        return validator

    def _resolver_failed(self) -> None:
        with self._lock:
            self._resolver_down_until = self._clock() + self.resolver_backoff

    def _log_resolver_failure(self, iss: str, what: str, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._resolver_log_at < _RESOLVER_LOG_INTERVAL:
                self._resolver_log_suppressed += 1
                return
            suppressed, self._resolver_log_suppressed = self._resolver_log_suppressed, 0
            self._resolver_log_at = now
        logger.error("the issuer resolver %s for issuer %s%s; those requests get 503", what,
                     _show(iss, _ISSUER_SHOWN),
                     f" ({suppressed} more failures since the last report)" if suppressed else "",
                     exc_info=exc_info)
