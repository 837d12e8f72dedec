"""The start-up check of a TokenValidator (internal): what
:meth:`oidc_guard.TokenValidator.check` does, in words for the operator.
Requests never run any of this."""

from __future__ import annotations

from typing import Any, Dict, Optional

from .discovery import IssuerMismatch, looks_like_discovery_url
from .errors import ConfigurationError, ProviderError
from .http import check_url

__all__ = ["run_startup_check", "check_shared_cache", "check_introspection_endpoint"]


def run_startup_check(validator: Any) -> None:
    """Fetch discovery (when needed) and the JWKS of ``validator`` (a
    TokenValidator) now; ConfigurationError or ProviderError naming what is
    wrong.  Runs the validator's hooks ``_check_needs_discovery`` and
    ``_check_extra``."""
    self = validator
    meant = looks_like_discovery_url(self.issuer)
    if meant is not None:
        raise ConfigurationError(
            f"the issuer looks like a discovery URL: {self.issuer!r}; configure the issuer "
            f"identifier itself, probably {meant!r} (discovery is fetched from issuer + "
            "/.well-known/openid-configuration, OpenID Connect Discovery section 4)"
        )
    document: Optional[Dict[str, Any]] = None
    if self._jwks_uri is None or self._check_needs_discovery():
        try:
            document = self.metadata.fetch_now()
        except IssuerMismatch as exc:
            raise ConfigurationError(exc.description) from None
        except ProviderError as exc:
            raise ProviderError(
                f"{exc.description} (start-up check: is the issuer {self.issuer!r} right - scheme, host "
                "and port - and is the provider up?)", retry_after=exc.retry_after,
            ) from None
    self.keys.refresh(strict=True)
    fitting = sorted({alg for alg in self.algorithms for key in self.keys.keys if key.fits(alg)})
    if not fitting:
        published = sorted({key.kty + (f" {key.crv}" if key.crv else "") + (f" ({key.alg})" if key.alg else "")
                            for key in self.keys.keys})
        raise ConfigurationError(
            f"no key of the issuer's JWKS can verify the allowed algorithms {sorted(self.algorithms)}; "
            f"it publishes {', '.join(published)} keys: widen algorithms= or fix the provider's keys"
        )
    self._check_extra(document)
    check_shared_cache(self)


def check_shared_cache(validator: Any) -> None:
    """The shared cache holds DPoP replay records: its Redis must not
    evict them (RFC 9449 section 11.1).  Reads the maxmemory-policy now."""
    shared = validator.shared_cache
    if shared is None:
        return
    from .cache import CacheUnavailable

    try:
        problem = shared.replay_problem(fresh=True)
    except CacheUnavailable as exc:
        raise ProviderError(
            f"{exc.description} (start-up check: shared_cache holds introspection results and DPoP "
            "replay records; is the Redis URL right and is Redis up?)", retry_after=exc.retry_after,
        ) from None
    if problem is not None:
        raise ConfigurationError(problem)


def check_introspection_endpoint(validator: Any) -> None:
    """With introspection configured and no explicit endpoint: the
    provider's metadata names one, with an acceptable URL."""
    self = validator
    intro = self.introspector
    if intro is not None and self.validation_mode != "local" and intro._endpoint is None:
        # The OpenID document, else the issuer's RFC 8414 document (fetched now).
        try:
            url, where = self.metadata.introspection_endpoint(fresh=True)
        except IssuerMismatch as exc:
            raise ConfigurationError(exc.description) from None
        if url is None:
            raise ConfigurationError(
                f"introspection is configured (validation_mode {self.validation_mode!r}) but no "
                f"introspection_endpoint is named: {where}; pass introspection_endpoint="
            )
        try:
            check_url(url, self.allow_http, "introspection_endpoint")
        except ProviderError as exc:
            raise ConfigurationError(exc.description) from None
