"""Typing protocols of the public API.

:class:`AccessTokenValidator` is what :class:`~oidc_guard.wsgi.BearerMiddleware`
and the Flask extension accept as ``validator``: a
:class:`~oidc_guard.TokenValidator`, a
:class:`~oidc_guard.MultiIssuerValidator`, or a class of your own with the
same two methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .claims import Claims

__all__ = ["AccessTokenValidator"]


@runtime_checkable
class AccessTokenValidator(Protocol):
    """Validates access tokens (and ID Tokens) into :class:`~oidc_guard.Claims`.

    ``validate_access_token`` raises :class:`~oidc_guard.InvalidToken` for a
    bad token and :class:`~oidc_guard.ProviderError` when the identity
    provider cannot be used; the middleware maps them to 401 and 503.
    """

    def validate_access_token(self, token: str) -> "Claims":
        """The verified claims of an access token."""
        ...

    def validate_id_token(
        self,
        token: str,
        client_id: str,
        nonce: Optional[str] = None,
        access_token: Optional[str] = None,
        code: Optional[str] = None,
        max_age: Optional[float] = None,
    ) -> "Claims":
        """The verified claims of an ID Token (OpenID Connect Core 3.1.3.7)."""
        ...
