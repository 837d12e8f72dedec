"""The validator of a host's settings, framework-free: what the Flask
extension and the Django adapter build from their ``OIDC_GUARD_*`` keys
(already parsed by :mod:`oidc_guard.config`), so that both read the same
keys into the same :class:`~oidc_guard.TokenValidator` or
:class:`~oidc_guard.MultiIssuerValidator`."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, cast

from . import config
from .errors import ConfigurationError
from .multi import MultiIssuerValidator
from .protocols import AccessTokenValidator
from .validator import TokenValidator

__all__ = ["VALIDATOR_SETTINGS", "build_validator", "build_issuers", "missing_settings"]

PREFIX = config.PREFIX

#: the keywords of every VALIDATOR row of the configuration table
VALIDATOR_SETTINGS = tuple(s.keyword for s in config.SETTINGS if s.target == config.VALIDATOR)


def missing_settings(settings: Mapping[str, Any], issuers: Any = None) -> List[str]:
    """The ``OIDC_GUARD_*`` keys a validator needs and ``settings`` (parsed
    validator settings, by keyword) lacks: ``ISSUER`` (unless ``issuers``
    is given) and ``AUDIENCE`` (unless ``VERIFY_AUDIENCE`` is off)."""
    if issuers is not None:
        return []
    required = ["issuer"]
    if settings.get("verify_audience", True):
        required.append("audience")
    return [PREFIX + name.upper() for name in required if not settings.get(name)]


def build_validator(settings: Dict[str, Any], issuers: Any = None, *, where: str = "the settings",
                    resource: Optional[str] = None) -> AccessTokenValidator:
    """The validator of parsed validator ``settings`` (by keyword) and the
    parsed ``OIDC_GUARD_ISSUERS`` value (``None``: one issuer).  ``where``
    says where the keys are set, for the message of a missing one.
    ``resource``: ``OIDC_GUARD_RESOURCE``; with no audience set, the
    accepted audience is the resource (RFC 8707 section 2), also for every
    ``OIDC_GUARD_ISSUERS`` entry without its own.  No network I/O."""
    settings = dict(settings)
    if resource is not None and not settings.get("audience") and settings.get("verify_audience", True):
        settings["audience"] = [resource]
    if issuers is not None:
        return build_issuers(issuers, settings)
    missing = missing_settings(settings)
    if missing:
        raise ConfigurationError(f"oidc_guard needs {' and '.join(missing)} ({where})")
    settings.setdefault("audience", None)  # a required keyword of TokenValidator
    # TokenValidator checks the values themselves (URL scheme, audience
    # shape, algorithms) and raises ConfigurationError.
    return TokenValidator(**settings)


def build_issuers(value: Any, settings: Dict[str, Any]) -> AccessTokenValidator:
    """``OIDC_GUARD_ISSUERS`` (already read by :class:`oidc_guard.config.Issuers`)
    -> a MultiIssuerValidator, or the ready validator given."""
    name = PREFIX + "ISSUERS"
    if not isinstance(value, list):
        return cast(AccessTokenValidator, value)
    if "issuer" in settings:
        raise ConfigurationError(f"set either {PREFIX}ISSUER or {name}, not both")
    if "jwks_uri" in settings:
        raise ConfigurationError(f"{PREFIX}JWKS_URI cannot be shared by several issuers; "
                                 f"give jwks_uri per issuer in {name}")
    # Shared defaults; introspection credentials belong to one issuer only.
    shared = {k: v for k, v in settings.items()
              if k not in ("issuer", "audience", "jwks_uri") and not k.startswith("introspection_")}
    default_audience = settings.get("audience")
    members = []
    for index, entry in enumerate(value):
        where = f"{name}[{index}]"
        own: Dict[str, Any] = {}
        if isinstance(entry, dict):
            unknown = sorted(str(k) for k in set(entry) - set(VALIDATOR_SETTINGS))
            if unknown:
                raise ConfigurationError(f"{where} has unknown key(s) {', '.join(unknown)}; "
                                         f"known: {', '.join(VALIDATOR_SETTINGS)}")
            for keyword, raw in entry.items():
                if raw is not None:
                    # each value is read as its OIDC_GUARD_* row says
                    own[keyword] = config.parse_setting(config.BY_KEYWORD[keyword], raw, source=where)
        elif isinstance(entry, (list, tuple)) and len(entry) in (1, 2):
            own["issuer"] = config.parse_setting(config.BY_KEYWORD["issuer"], entry[0], source=where)
            if len(entry) == 2:
                own["audience"] = config.parse_setting(config.BY_KEYWORD["audience"], entry[1], source=where)
        else:
            raise ConfigurationError(f"{where} must be an {{issuer, audience}} object or an [issuer, audience] pair")
        kwargs = dict(shared)
        kwargs.update(own)
        if not kwargs.get("issuer"):
            raise ConfigurationError(f"{where} has no issuer")
        kwargs.setdefault("audience", default_audience)
        if kwargs["audience"] is None and kwargs.get("verify_audience", True):
            raise ConfigurationError(f"{where} has no audience (and {PREFIX}AUDIENCE is not set)")
        try:
            members.append(TokenValidator(**kwargs))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc.description}") from None
    return MultiIssuerValidator(members)
