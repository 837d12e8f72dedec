"""Settings by name: the one table of ``OIDC_GUARD_*`` keys and how each is read.

Framework-free (no Flask here), so the Flask extension, a command line or any
other host reads settings the same way.  Values may be real Python values
(``30``, ``True``, ``["RS256", "ES256"]``) or the strings that environment
variables, ``.env`` files (``flask --env-file``) and
``app.config.from_prefixed_env()`` produce.  Strings are parsed strictly:

=============  ===========================================================
type           accepted
=============  ===========================================================
bool           ``True``/``False``, ``0``/``1``, or the strings ``true``,
               ``false``, ``1``, ``0``, ``yes``, ``no``, ``on``, ``off``
               (any case, surrounding spaces ignored); anything else is an
               error (``bool("false")`` is True in Python; here it is False)
int            an int, or a string of decimal digits with an optional sign
               (``"30"``); never a bool (``True`` is not a number here),
               never ``"30.5"``, ``"1_000"`` or ``"0x10"``
number         an int or a float, or a decimal string (``"2.5"``,
               ``"1e3"``); never a bool, NaN or infinity
str            a string; an int is taken as its decimal digits (what
               ``from_prefixed_env`` makes of ``REALM=2024``)
secret         as str, and its value is never shown in an error
list of str    a list or tuple of non-empty strings, or one string: a JSON
               array (``'["a", "b"]'``), or items separated by commas
               and/or whitespace (``"RS256,ES256"``, ``"a b"``,
               ``"a, b"``).  An item that itself contains a comma or a
               space needs the JSON array form.
choice         one of the listed words (any case, surrounding spaces
               ignored)
=============  ===========================================================

A value that does not fit is a :class:`~oidc_guard.ConfigurationError` that
names the key and the value as given (a secret's value is never shown).

To add a setting, add one row to :data:`SETTINGS` (and a row to the table in
``docs/configuration.md``; ``tests/test_docs_config.py`` checks both).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .errors import ConfigurationError

__all__ = [
    "PREFIX",
    "VALIDATOR",
    "MIDDLEWARE",
    "GUARD",
    "Kind",
    "Bool",
    "Int",
    "Number",
    "Str",
    "Secret",
    "StrList",
    "Choice",
    "Issuers",
    "Setting",
    "SETTINGS",
    "BY_KEY",
    "BY_KEYWORD",
    "parse_setting",
    "read_settings",
    "unknown_keys",
    "from_environ",
]

PREFIX = "OIDC_GUARD_"

#: where a setting goes: a TokenValidator keyword, a BearerMiddleware keyword,
#: or a setting of the host itself (the Flask extension)
VALIDATOR = "validator"
MIDDLEWARE = "middleware"
GUARD = "guard"

_TRUE_WORDS = frozenset(("1", "true", "yes", "on"))
_FALSE_WORDS = frozenset(("0", "false", "no", "off"))
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_LIST_SEPARATORS = re.compile(r"[,\s]+")
_SHOWN_MAX = 80


class _Invalid(Exception):
    """A value does not fit its kind; the message completes "KEY must be ..."."""


class Kind:
    """How one setting's value is read.  Subclasses define ``parse(value)``,
    which returns the value to use or raises for one that does not fit."""

    #: short type name for documentation and error messages
    label = "value"
    #: True: the value is never shown in an error (client secrets, URLs with passwords)
    secret = False

    def parse(self, value: Any) -> Any:  # pragma: no cover - every kind overrides it
        raise NotImplementedError


class Bool(Kind):
    label = "bool"

    def parse(self, value: Any) -> bool:
        # A security switch must not turn on because a file said "false".
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        raise _Invalid("a boolean (true/false, 1/0, yes/no, on/off)")


class _Bounded(Kind):
    def __init__(self, minimum: Optional[float] = None, above: Optional[float] = None) -> None:
        self.minimum = minimum  # value >= minimum
        self.above = above  # value > above
        words = [self._noun]
        if minimum is not None:
            words.append(f">= {minimum:g}")
        if above is not None:
            words.append(f"> {above:g}")
        self.label = " ".join(words)

    _noun = "number"

    def _check_bounds(self, number: Any) -> Any:
        if self.minimum is not None and number < self.minimum:
            raise _Invalid(f"{self._article} {self.label}")
        if self.above is not None and number <= self.above:
            raise _Invalid(f"{self._article} {self.label}")
        return number

    _article = "a"


class Int(_Bounded):
    _noun = "int"
    _article = "an"

    def parse(self, value: Any) -> int:
        if isinstance(value, bool):  # bool is an int subclass: True is not a size
            raise _Invalid(f"an {self.label}, not a boolean")
        if isinstance(value, int):
            return int(self._check_bounds(value))
        if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            return int(self._check_bounds(int(value.strip())))
        raise _Invalid(f"an {self.label} (whole number, e.g. \"30\")")


class Number(_Bounded):
    _noun = "number"

    def parse(self, value: Any) -> float:
        if isinstance(value, bool):
            raise _Invalid(f"a {self.label}, not a boolean")
        number: Optional[float] = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
            number = float(value.strip())
        if number is None or not math.isfinite(number):
            raise _Invalid(f"a {self.label} (e.g. \"30\" or \"2.5\")")
        return float(self._check_bounds(number))


class Str(Kind):
    label = "str"

    def parse(self, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            # from_prefixed_env turns REALM=2024 into the int 2024: json.loads
            # only reads canonical integers, so str() gives the digits back.
            value = str(value)
        if not isinstance(value, str):
            raise _Invalid("a string")
        if not value.strip():
            raise _Invalid("a non-empty string")
        return value


class Secret(Str):
    label = "secret str"
    secret = True


class StrList(Kind):
    label = "list of str"

    def parse(self, value: Any) -> List[str]:
        items: Any
        if isinstance(value, str):
            text = value.strip()
            if text.startswith(("[", "{")):  # JSON (what from_prefixed_env could not decode)
                try:
                    items = json.loads(text)
                except (ValueError, RecursionError):
                    raise _Invalid(f"a list: this starts with {text[0]!r} but is not a JSON array") from None
                if not isinstance(items, list):
                    raise _Invalid("a list (a JSON array, not an object)")
            else:
                items = [item for item in _LIST_SEPARATORS.split(text) if item]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise _Invalid("a list of strings (a list, or \"a,b\", \"a b\" or '[\"a\", \"b\"]')")
        if not all(isinstance(item, str) and item.strip() for item in items):
            raise _Invalid("a list of non-empty strings")
        return list(items)


class Issuers(Kind):
    """``OIDC_GUARD_ISSUERS``: a ready validator (anything with
    ``validate_access_token``), or a non-empty list of issuer entries (each a
    dict or an ``[issuer, audience]`` pair; the Flask extension checks the
    entries), or that list as a JSON string."""

    label = "issuer list"

    def parse(self, value: Any) -> Any:
        if callable(getattr(value, "validate_access_token", None)):
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise _Invalid(f"a JSON array of issuers (this is not valid JSON: {exc.msg} at "
                               f"character {exc.pos})") from None
            except RecursionError:
                raise _Invalid("a JSON array of issuers (this is nested too deeply)") from None
        if not isinstance(value, (list, tuple)) or not value:
            raise _Invalid('a non-empty list of {"issuer": ..., "audience": ...} objects or [issuer, audience] '
                           "pairs, that list as a JSON string, or a ready validator")
        return list(value)


class Choice(Kind):
    def __init__(self, *choices: str) -> None:
        self.choices: Tuple[str, ...] = choices
        self.label = "one of " + ", ".join(choices)

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in self.choices:
                return word
        raise _Invalid(self.label)


@dataclass(frozen=True)
class Setting:
    """One row of :data:`SETTINGS`."""

    key: str  #: the config key, ``OIDC_GUARD_...``
    keyword: str  #: the keyword argument it becomes
    target: str  #: VALIDATOR, MIDDLEWARE or GUARD
    kind: Kind
    doc: str

    @property
    def secret(self) -> bool:
        return self.kind.secret


# The table.  One row per setting; adding a setting is adding one line here
# (plus its row in docs/configuration.md, which a test compares with this).
# Constraints mirror what TokenValidator / BearerMiddleware check themselves,
# so a bad string is reported with its key before it reaches them.
#: Every ``OIDC_GUARD_*`` setting, one :class:`Setting` per row.
SETTINGS: Tuple[Setting, ...] = (
    # --- TokenValidator ---------------------------------------------------------
    Setting("OIDC_GUARD_ISSUER", "issuer", VALIDATOR, Str(), "required: the issuer URL; discovery at <issuer>/.well-known/openid-configuration"),
    Setting("OIDC_GUARD_AUDIENCE", "audience", VALIDATOR, StrList(), "required: this API's audience(s); a token's aud must contain one"),
    Setting("OIDC_GUARD_ALGORITHMS", "algorithms", VALIDATOR, StrList(), "allowed asymmetric JWS algorithms (default: all supported)"),
    Setting("OIDC_GUARD_LEEWAY", "leeway", VALIDATOR, Number(minimum=0), "seconds of clock skew for exp/nbf/iat (default 60)"),
    Setting("OIDC_GUARD_VERIFY_AUDIENCE", "verify_audience", VALIDATOR, Bool(), "False turns the audience check off: only if you really mean it"),
    Setting("OIDC_GUARD_HTTP_TIMEOUT", "http_timeout", VALIDATOR, Number(above=0), "seconds per discovery/JWKS request (default 5)"),
    Setting("OIDC_GUARD_ALLOW_HTTP", "allow_http", VALIDATOR, Bool(), "allow a plain-http issuer/jwks_uri (loopback is always allowed)"),
    Setting("OIDC_GUARD_JWKS_COOLDOWN", "jwks_cooldown", VALIDATOR, Number(minimum=0), "minimum seconds between unknown-kid JWKS refetches (default 30)"),
    Setting("OIDC_GUARD_CACHE_SIZE", "cache_size", VALIDATOR, Int(minimum=0), "verified-token cache entries, 0 = off (default 10000)"),
    Setting("OIDC_GUARD_MAX_TOKEN_BYTES", "max_token_bytes", VALIDATOR, Int(above=0), "largest token accepted (default 16384)"),
    Setting("OIDC_GUARD_JWKS_URI", "jwks_uri", VALIDATOR, Str(), "use this JWKS URL instead of the discovered one"),
    Setting("OIDC_GUARD_INTROSPECTION_CLIENT_ID", "introspection_client_id", VALIDATOR, Str(), "this API's client id at the RFC 7662 introspection endpoint (reference tokens)"),
    Setting("OIDC_GUARD_INTROSPECTION_CLIENT_SECRET", "introspection_client_secret", VALIDATOR, Secret(), "this API's client secret at the introspection endpoint"),
    Setting("OIDC_GUARD_INTROSPECTION_ENDPOINT", "introspection_endpoint", VALIDATOR, Str(), "introspection URL (default: the discovery document's introspection_endpoint)"),
    Setting("OIDC_GUARD_INTROSPECTION_AUTH_METHOD", "introspection_auth_method", VALIDATOR, Choice("client_secret_basic", "client_secret_post"), "how the API authenticates to the introspection endpoint (default client_secret_basic)"),
    Setting("OIDC_GUARD_VALIDATION_MODE", "validation_mode", VALIDATOR, Choice("local", "both", "introspection"), "local: JWTs only; both: JWS-shaped tokens locally, any other introspected; introspection: every token (default both with credentials, else local)"),
    Setting("OIDC_GUARD_INTROSPECTION_CACHE_TTL", "introspection_cache_ttl", VALIDATOR, Number(minimum=0), "seconds an introspection result is reused, capped at the token's exp; 0 = off (default 60)"),
    Setting("OIDC_GUARD_INTROSPECTION_MAX_IN_FLIGHT", "introspection_max_in_flight", VALIDATOR, Int(minimum=1), "introspection calls in flight at once; over it, 503 after a short wait (default 4)"),
    Setting("OIDC_GUARD_INTROSPECTION_QUEUE_TIMEOUT", "introspection_queue_timeout", VALIDATOR, Number(minimum=0), "seconds a validation waits for a free introspection slot before 503 (default 1)"),
    Setting("OIDC_GUARD_INTROSPECTION_AUDIENCE_OPTIONAL", "introspection_audience_optional", VALIDATOR, Bool(), "True: accept active introspection answers without aud, only for endpoints that answer for the calling API's tokens alone (IdentityServer's); default False refuses them"),
    Setting("OIDC_GUARD_SHARED_CACHE", "shared_cache", VALIDATOR, Secret(), "redis://host:port/db: introspection results and DPoP replay records shared by every worker (default: in-process)"),
    Setting("OIDC_GUARD_DPOP_ACCEPT_EVICTING_REDIS", "dpop_accept_evicting_redis", VALIDATOR, Bool(), "True: keep DPoP replay records in a shared_cache Redis whose maxmemory-policy evicts keys, accepting that an evicted record can be replayed (default False: check() fails, DPoP gets 503)"),
    # --- BearerMiddleware -------------------------------------------------------
    Setting("OIDC_GUARD_REALM", "realm", MIDDLEWARE, Str(), "realm of the WWW-Authenticate challenge"),
    Setting("OIDC_GUARD_REQUIRED", "required", MIDDLEWARE, Bool(), "True: every request needs a valid token (default False: use the decorators)"),
    Setting("OIDC_GUARD_ACCEPT_FORM", "accept_form", MIDDLEWARE, Bool(), "also accept access_token in a form body (RFC 6750 2.2)"),
    Setting("OIDC_GUARD_ACCEPT_QUERY", "accept_query", MIDDLEWARE, Bool(), "also accept access_token in the query string (RFC 6750 2.3)"),
    Setting("OIDC_GUARD_MAX_FORM_BYTES", "max_form_bytes", MIDDLEWARE, Int(minimum=0), "largest form body searched for a token (default 1 MiB)"),
    Setting("OIDC_GUARD_DPOP", "dpop", MIDDLEWARE, Choice("allowed", "required", "disabled"), "DPoP tokens (RFC 9449): allowed (default), required (no bearer tokens) or disabled (the DPoP scheme is not ours)"),
    Setting("OIDC_GUARD_PUBLIC_URL", "public_url", MIDDLEWARE, Str(), "scheme://host[:port] clients see, for the DPoP proof's htu behind a proxy (default: from the WSGI environ)"),
    Setting("OIDC_GUARD_CLIENT_CERT_HEADER", "client_cert_header", MIDDLEWARE, Str(), "header a trusted TLS proxy puts the client certificate in (RFC 8705; default: SSL_CLIENT_CERT)"),
    Setting("OIDC_GUARD_DPOP_ALGORITHMS", "dpop_algorithms", MIDDLEWARE, StrList(), "DPoP proof algorithms accepted (default: all supported asymmetric)"),
    Setting("OIDC_GUARD_DPOP_MAX_AGE", "dpop_max_age", MIDDLEWARE, Number(above=0), "seconds a DPoP proof is accepted after its iat (default 300)"),
    Setting("OIDC_GUARD_DPOP_LEEWAY", "dpop_leeway", MIDDLEWARE, Number(minimum=0), "seconds a DPoP proof's iat may be ahead of this clock (default 30)"),
    Setting("OIDC_GUARD_DPOP_NONCE", "dpop_nonce", MIDDLEWARE, Bool(), "True: require server nonces in DPoP proofs (RFC 9449 section 9; default False)"),
    Setting("OIDC_GUARD_DPOP_NONCE_SECRET", "dpop_nonce_secret", MIDDLEWARE, Secret(), "HMAC secret of the DPoP nonces, shared by all workers and hosts (default: random per process)"),
    Setting("OIDC_GUARD_DPOP_NONCE_STEP", "dpop_nonce_step", MIDDLEWARE, Number(minimum=1), "seconds per DPoP nonce; a nonce lives 1-2 steps (default 60)"),
    Setting("OIDC_GUARD_RESOURCE", "resource", MIDDLEWARE, Str(), "this API's resource identifier (https URL, RFC 8707): publishes the RFC 9728 metadata, names it in every challenge, and is the default audience"),
    Setting("OIDC_GUARD_SCOPES_SUPPORTED", "scopes_supported", MIDDLEWARE, StrList(), "scopes listed in the protected resource metadata (needs OIDC_GUARD_RESOURCE)"),
    # --- the host (Flask extension) itself ---------------------------------------
    Setting("OIDC_GUARD_ISSUERS", "issuers", GUARD, Issuers(), "several issuers instead of OIDC_GUARD_ISSUER: a list of {issuer, audience, ...} dicts or (issuer, audience) pairs, as a JSON string too, or a ready validator; other validator settings are shared defaults"),
    Setting("OIDC_GUARD_CHECK_ON_START", "check_on_start", GUARD, Bool(), "True: init_app runs validator.check() and stops the app on a wrong issuer/provider (default False)"),
)

BY_KEY: Dict[str, Setting] = {s.key: s for s in SETTINGS}
BY_KEYWORD: Dict[str, Setting] = {s.keyword: s for s in SETTINGS}
assert len(BY_KEY) == len(SETTINGS) and len(BY_KEYWORD) == len(SETTINGS), "duplicate row in SETTINGS"
assert all(s.key.startswith(PREFIX) for s in SETTINGS)


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 3] + "..."
    return text


def parse_setting(setting: Setting, value: Any, *, source: Optional[str] = None) -> Any:
    """Read ``value`` as ``setting`` says; :class:`ConfigurationError` naming
    the key (and ``source``, e.g. "the keyword argument leeway=") when it does
    not fit.  A secret's value is never part of the message."""
    try:
        return setting.kind.parse(value)
    except _Invalid as exc:
        shown = "(a secret: value not shown)" if setting.secret else _show(value)
        where = f" (from {source})" if source else ""
        raise ConfigurationError(f"{setting.key} must be {exc}, got {shown}{where}") from None


def read_settings(
    config: Mapping[str, Any], targets: Iterable[str] = (VALIDATOR, MIDDLEWARE, GUARD)
) -> Dict[str, Any]:
    """The settings of ``targets`` found in ``config`` (a mapping keyed by
    ``OIDC_GUARD_*``: ``app.config``, ``os.environ``, ...), parsed, keyed by
    keyword.  Absent keys and ``None`` values are left out, so the library
    defaults apply."""
    wanted = set(targets)
    out: Dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.target not in wanted:
            continue
        value = config.get(setting.key)
        if value is None:
            continue
        out[setting.keyword] = parse_setting(setting, value)
    return out


def unknown_keys(keys: Iterable[str]) -> List[Tuple[str, Optional[str]]]:
    """``OIDC_GUARD_*`` names among ``keys`` that are no setting, each with
    the closest known key (a likely typo) or None."""
    import difflib

    known: Sequence[str] = list(BY_KEY)
    out: List[Tuple[str, Optional[str]]] = []
    for key in sorted(k for k in keys if isinstance(k, str) and k.startswith(PREFIX)):
        if key in BY_KEY:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        out.append((key, close[0] if close else None))
    return out


def _unquote(value: str) -> str:
    """One pair of matching quotes around the whole value, removed.

    ``docker run --env-file`` (and some other loaders) keep quotes that a
    shell would have removed: ``OIDC_GUARD_LEEWAY="30"`` arrives as the five
    characters ``"30"``.  The rule is the same for every kind of setting:
    when the value, leading and trailing whitespace aside, starts and ends
    with the same quote character (``"`` or ``'``), that one pair goes;
    nothing else is changed (no escapes are read, inner quotes stay).  A
    value that really starts and ends with a quote needs a second pair.
    """
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return value


def from_environ(environ: Optional[Mapping[str, str]] = None, *, ignore: Iterable[str] = ()) -> Dict[str, str]:
    """The ``OIDC_GUARD_*`` settings of the environment (default
    ``os.environ``, where ``flask --env-file``, ``.env`` files and
    ``docker run --env-file`` put them), as strings, ready for
    ``app.config.update(...)``.

    * Every ``OIDC_GUARD_*`` name must be a setting: an unknown one (a typo
      such as ``OIDC_GUARD_LEEWAY_SECONDS``) is a
      :class:`~oidc_guard.ConfigurationError` that names it, with the
      closest setting as a hint, as ``app.config`` does.  Variables of
      other programs that share the prefix go in ``ignore`` (exact names).
    * One pair of quotes around a value is removed, for every kind of
      setting (see :func:`_unquote`): ``OIDC_GUARD_AUDIENCE="api://a
      api://b"`` from a Docker env file is the two audiences.
    * Every value is parsed now, so that a value that makes no sense is a
      ``ConfigurationError`` naming the environment variable it came from;
      the returned strings parse the same way again in ``init_app``.

    Variables without the prefix are left out.
    """
    env = os.environ if environ is None else environ
    ignored = frozenset(ignore)
    unknown = [(key, close) for key, close in unknown_keys(env) if key not in ignored]
    if unknown:
        named = "; ".join(f"{key} (did you mean {close}?)" if close else key for key, close in unknown)
        raise ConfigurationError(
            f"unknown oidc_guard setting(s) in the environment: {named}; the settings are listed in "
            "docs/configuration.md (a variable of another program: pass its name in from_environ(ignore=...))"
        )
    out: Dict[str, str] = {}
    for setting in SETTINGS:
        if setting.key not in env:
            continue
        value = _unquote(env[setting.key])
        parse_setting(setting, value, source=f"the environment variable {setting.key}")
        out[setting.key] = value
    return out
