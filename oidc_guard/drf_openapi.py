"""drf-spectacular: the OpenAPI security scheme of
:class:`oidc_guard.drf.OIDCAuthentication`, and each operation's scopes.

Imported by :mod:`oidc_guard.drf` (and by the ``oidc_guard.django`` app)
when drf-spectacular is installed; nothing to configure.  The scheme is
named ``oidcGuard``:

* one issuer (``OIDC_GUARD_ISSUER``): ``openIdConnect`` with the issuer's
  discovery URL, so Swagger UI's *Authorize* button signs in there; an
  operation protected by :class:`~oidc_guard.drf.HasScope` requires its
  scopes in one requirement (all of them), by
  :class:`~oidc_guard.drf.HasAnyScope` one requirement per scope (any);
* several issuers: ``http`` ``bearer`` (OpenAPI 3.0 lists no scopes for it).
"""

from __future__ import annotations

from typing import Any, Dict, List, Union

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension

__all__ = ["OIDCAuthenticationScheme", "SCHEME_NAME"]

SCHEME_NAME = "oidcGuard"


def _discovery_url() -> Any:
    from .django._state import current

    issuer = getattr(current().validator, "issuer", None)
    if not isinstance(issuer, str):
        return None
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class OIDCAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "oidc_guard.drf.OIDCAuthentication"
    name = SCHEME_NAME

    def get_security_definition(self, auto_schema: Any) -> Dict[str, Any]:
        url = _discovery_url()
        if url is None:
            return {"type": "http", "scheme": "bearer",
                    "description": "an access token of one of the trusted issuers (RFC 6750)"}
        return {"type": "openIdConnect", "openIdConnectUrl": url}

    def get_security_requirement(self, auto_schema: Any) -> Union[Dict[str, List[Any]], List[Dict[str, List[Any]]]]:
        view = auto_schema.view
        # The scope permissions of oidc_guard.drf say what they are
        # (oidc_guard_scope_mode, oidc_guard_scopes): read without importing
        # oidc_guard.drf, which imports this module.
        kinds: List[Any] = [p for p in getattr(view, "permission_classes", ())
                            if isinstance(p, type) and getattr(p, "oidc_guard_scope_mode", None) in ("all", "any")]
        any_of = any(p.oidc_guard_scope_mode == "any" for p in kinds)
        all_of = any(p.oidc_guard_scope_mode == "all" for p in kinds)
        if not (any_of or all_of) or _discovery_url() is None:
            return {SCHEME_NAME: []}
        try:
            scopes = list(kinds[0].oidc_guard_scopes(view, auto_schema.method))
        except ImproperlyConfigured:
            return {SCHEME_NAME: []}
        if any_of and not all_of:
            return [{SCHEME_NAME: [scope]} for scope in scopes]
        return {SCHEME_NAME: scopes}
