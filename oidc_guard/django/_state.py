"""The process's guard, built from Django settings: one validator and one
:class:`~oidc_guard.auth.Authenticator` shared by the middleware, the
decorators and the DRF classes (so they share one set of caches).

Settings are the ``OIDC_GUARD_*`` keys of :mod:`oidc_guard.config` (the
same table, the same strict parsing as Flask's ``app.config``), plus one
Django-only key, ``OIDC_GUARD_USER_LOADER``.  The guard is built at the
first use (the middleware builds it when Django loads the middleware, at
start-up) and thrown away when a test changes an ``OIDC_GUARD_*`` setting
(``override_settings`` sends ``setting_changed``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .. import config
from .._build import VALIDATOR_SETTINGS, build_validator, missing_settings
from ..auth import Authenticator
from ..errors import ConfigurationError
from ..protocols import AccessTokenValidator

__all__ = ["Guard", "current", "reset", "read_settings", "USER_LOADER", "DJANGO_ONLY_KEYS"]

PREFIX = config.PREFIX
#: ``OIDC_GUARD_USER_LOADER``: "package.module.function" (or the function)
#: called with the Claims of a valid token; returns the user, or None (401).
USER_LOADER = PREFIX + "USER_LOADER"
#: keys of this adapter that are not rows of the shared table
DJANGO_ONLY_KEYS = frozenset((USER_LOADER,))
_WHERE = "Django settings"
_MIDDLEWARE_SETTINGS = tuple(s.keyword for s in config.SETTINGS if s.target == config.MIDDLEWARE)


def settings_mapping(source: Any = None) -> Dict[str, Any]:
    """Every ``OIDC_GUARD_*`` name set in Django's settings, with its value."""
    source = django_settings if source is None else source
    return {name: getattr(source, name) for name in dir(source) if name.startswith(PREFIX)}


def read_settings(values: Mapping[str, Any]) -> Tuple[Dict[str, Any], Any, Dict[str, Any], Dict[str, Any]]:
    """``(validator settings, OIDC_GUARD_ISSUERS, middleware settings, host
    settings)`` of ``values`` (names -> values), parsed by the table's rows;
    an unknown ``OIDC_GUARD_*`` name or a value that does not fit is a
    :class:`~oidc_guard.ConfigurationError` naming it."""
    unknown = [(key, close) for key, close in config.unknown_keys(values) if key not in DJANGO_ONLY_KEYS]
    if unknown:
        named = "; ".join(f"{key} (did you mean {close}?)" if close else key for key, close in unknown)
        raise ConfigurationError(f"unknown oidc_guard setting(s) in {_WHERE}: {named}; the settings are "
                                 "listed in docs/configuration.md and docs/django.md")
    parsed: Dict[str, Any] = {}
    for key, value in values.items():
        setting = config.BY_KEY.get(key)
        if setting is None or value is None:
            continue
        parsed[setting.keyword] = config.parse_setting(setting, value, source=f"settings.{key}")
    validator = {k: v for k, v in parsed.items() if k in VALIDATOR_SETTINGS}
    middleware = {k: v for k, v in parsed.items() if k in _MIDDLEWARE_SETTINGS}
    host = {k: v for k, v in parsed.items() if k not in validator and k not in middleware}
    return validator, host.pop("issuers", None), middleware, host


def missing_keys(values: Mapping[str, Any]) -> List[str]:
    """The keys the validator needs and ``values`` lacks (for the system check)."""
    validator, issuers, _, _ = read_settings(values)
    return missing_settings(validator, issuers)


def _user_loader(value: Any) -> Optional[Callable[[Any], Any]]:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ConfigurationError(f"{USER_LOADER} must name a function as 'package.module.function': "
                                     f"{exc}") from None
    if not callable(value):
        raise ConfigurationError(f"{USER_LOADER} must be a function called with the Claims, "
                                 f"got {type(value).__name__}")
    return value  # type: ignore[no-any-return]


class Guard:
    """One protected Django project: its validator, its authenticator (the
    policy of :class:`oidc_guard.wsgi.BearerMiddleware`: realm, required,
    DPoP, ...) and its user loader."""

    __slots__ = ("validator", "authenticator", "user_loader", "check_on_start")

    def __init__(self, values: Mapping[str, Any]) -> None:
        validator_settings, issuers, middleware, host = read_settings(values)
        #: the TokenValidator (or MultiIssuerValidator) of the settings
        self.validator: AccessTokenValidator = build_validator(validator_settings, issuers, where=_WHERE,
                                                               resource=middleware.get("resource"))
        #: the policy every request is authenticated with
        self.authenticator = Authenticator(self.validator, logger=logging.getLogger("oidc_guard.django"),
                                           **middleware)
        self.user_loader = _user_loader(values.get(USER_LOADER))
        self.check_on_start = bool(host.get("check_on_start", False))

    def __repr__(self) -> str:
        return f"Guard({self.authenticator!r})"


_guard: Optional[Guard] = None
_lock = threading.Lock()


def current() -> Guard:
    """The project's :class:`Guard`, built from the settings at the first
    call; :class:`~oidc_guard.ConfigurationError` when they are wrong."""
    guard = _guard
    if guard is not None:
        return guard
    return _build()


def _build() -> Guard:
    global _guard
    with _lock:
        if _guard is None:
            _guard = Guard(settings_mapping())
        return _guard


def reset() -> None:
    """Forget the guard: the next request builds it from the settings again."""
    global _guard
    with _lock:
        _guard = None


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if isinstance(setting, str) and setting.startswith(PREFIX):
        reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="oidc_guard.django.reset")
