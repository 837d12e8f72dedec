"""oidc_guard: protect WSGI and Flask APIs with OpenID Connect / OAuth 2.0
bearer tokens (RFC 6750, RFC 9068, OpenID Connect Core 1.0).

Importing this package never imports Flask; the Flask layer lives in
``oidc_guard.flask`` and the WSGI decorators in ``oidc_guard.wsgi``.
"""

from typing import TYPE_CHECKING, Any, List

from .claims import Claims
from .errors import (
    ConfigurationError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    OIDCGuardError,
    ProviderError,
)
from .validator import TokenValidator
from .multi import MultiIssuerValidator
from .protocols import AccessTokenValidator

if TYPE_CHECKING:
    # Type checkers see the real class; at run time it is imported on first
    # use (PEP 562 __getattr__ below) so that ``import oidc_guard`` stays light.
    from .wsgi import BearerMiddleware

__version__ = "0.1.0"


_LAZY = ("BearerMiddleware",)

if not TYPE_CHECKING:
    # Hidden from type checkers: a module-level __getattr__ would make every
    # misspelt ``oidc_guard.<name>`` type-check as Any.

    def __getattr__(name: str) -> Any:  # PEP 562: lazy import
        if name == "BearerMiddleware":
            from .wsgi import BearerMiddleware

            return BearerMiddleware
        raise AttributeError(f"module 'oidc_guard' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "TokenValidator",
    "MultiIssuerValidator",
    "AccessTokenValidator",
    "Claims",
    "BearerMiddleware",
    "OIDCGuardError",
    "InvalidToken",
    "InsufficientScope",
    "InvalidRequest",
    "ProviderError",
    "ConfigurationError",
]
