"""Checks of a validator's configuration values, made once at construction
(never per request): each answers the normalised value or raises
:class:`~oidc_guard.errors.ConfigurationError` saying what to change.
Shared by :class:`~oidc_guard.TokenValidator` and the adapters that build
one from settings."""

from __future__ import annotations

from typing import FrozenSet, Iterable, Optional, Sequence, Tuple, Union

from .errors import ConfigurationError, ProviderError
from .http import check_url
from .jwks import SUPPORTED_ALGORITHMS

__all__ = ["configured_url", "configured_audiences", "allowed_algorithms"]


def configured_url(url: str, allow_http: bool, what: str) -> None:
    """https, or plain http on a loopback host or with ``allow_http``
    (oidc_guard.http.check_url), as a configuration error."""
    try:
        check_url(url, allow_http, what)
    except ProviderError as exc:
        raise ConfigurationError(exc.description) from None


def configured_audiences(audience: Union[str, Sequence[str], None], verify_audience: bool) -> Tuple[str, ...]:
    """The accepted audiences (RFC 7519 section 4.1.3): one str or a list of
    non-empty str; required unless the audience check is explicitly off."""
    if isinstance(audience, str):
        audiences: Tuple[str, ...] = (audience,)
    elif audience is None:
        audiences = ()
    else:
        audiences = tuple(audience)
        if not all(isinstance(a, str) and a for a in audiences):
            raise ConfigurationError("audience must be a string or a list of non-empty strings")
    if verify_audience and not audiences:
        raise ConfigurationError(
            "audience is required (the identifier of this API); pass verify_audience=False "
            "only if the provider cannot issue audience-restricted tokens"
        )
    return audiences


def allowed_algorithms(algorithms: Optional[Iterable[str]]) -> FrozenSet[str]:
    """The JWS algorithm allow-list: every supported asymmetric one by
    default; never ``none`` or HS* (RFC 8725 section 3.1)."""
    if algorithms is None:
        return frozenset(SUPPORTED_ALGORITHMS)
    if isinstance(algorithms, str):
        algorithms = [algorithms]
    algs = frozenset(algorithms)
    bad = sorted(a for a in algs if a not in SUPPORTED_ALGORITHMS)
    if bad:
        raise ConfigurationError(
            f"algorithm(s) {bad} not accepted; choose from {list(SUPPORTED_ALGORITHMS)} "
            "(none and HS* are never accepted by a resource server)"
        )
    if not algs:
        raise ConfigurationError("algorithms must not be empty")
    return algs
