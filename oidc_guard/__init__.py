"""oidc_guard: protect WSGI and Flask APIs with OpenID Connect / OAuth 2.0
bearer tokens (RFC 6750, RFC 9068, OpenID Connect Core 1.0).

Importing this package never imports Flask; the Flask layer lives in
``oidc_guard.flask`` and the WSGI decorators in ``oidc_guard.wsgi``.
"""

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

__version__ = "0.1.0"


def __getattr__(name):  # PEP 562: lazy import so ``import oidc_guard`` stays light
    if name == "BearerMiddleware":
        from .wsgi import BearerMiddleware

        return BearerMiddleware
    raise AttributeError(f"module 'oidc_guard' has no attribute {name!r}")


__all__ = [
    "TokenValidator",
    "MultiIssuerValidator",
    "Claims",
    "BearerMiddleware",
    "OIDCGuardError",
    "InvalidToken",
    "InsufficientScope",
    "InvalidRequest",
    "ProviderError",
    "ConfigurationError",
]
