"""The system check (``django.core.checks``) of the ``OIDC_GUARD_*``
settings, run by ``manage.py check``, ``runserver`` and ``migrate``: the
settings are read exactly as the middleware reads them, without any
network I/O (``manage.py oidc_guard_check`` fetches discovery and the
JWKS)."""

from __future__ import annotations

from typing import Any, List

from django.conf import settings
from django.core import checks

from ..errors import ConfigurationError
from . import _state

__all__ = ["check_settings"]

_MIDDLEWARE = "oidc_guard.django.BearerMiddleware"


def check_settings(app_configs: Any = None, **kwargs: Any) -> List[Any]:
    """``oidc_guard.E001``: the issuer or the audience is missing;
    ``oidc_guard.E002``: a setting is unknown or does not fit (the
    validator could not be built); ``oidc_guard.W001``: DPoP nonces are on
    but the middleware, which sends them, is not in ``MIDDLEWARE``."""
    values = _state.settings_mapping()
    errors: List[Any] = []
    try:
        missing = _state.missing_keys(values)
    except ConfigurationError as exc:
        return [checks.Error(exc.description, id="oidc_guard.E002")]
    if missing:
        errors.append(checks.Error(
            f"oidc_guard needs {' and '.join(missing)} in the settings",
            hint="set OIDC_GUARD_ISSUER to your provider's issuer URL and OIDC_GUARD_AUDIENCE to this API's "
                 "audience (or OIDC_GUARD_ISSUERS for several issuers); see docs/django.md",
            id="oidc_guard.E001"))
        return errors
    try:
        _state.Guard(values)
    except ConfigurationError as exc:
        errors.append(checks.Error(exc.description, id="oidc_guard.E002"))
        return errors
    if _state.read_settings(values)[2].get("dpop_nonce") and _MIDDLEWARE not in getattr(settings, "MIDDLEWARE", ()):
        errors.append(checks.Warning(
            "OIDC_GUARD_DPOP_NONCE is on but oidc_guard.django.BearerMiddleware is not in MIDDLEWARE: "
            "without it no response carries the next DPoP-Nonce",
            id="oidc_guard.W001"))
    return errors
