"""Flask integration: the :class:`OIDCGuard` extension, view decorators and
:data:`current_claims`.

.. code-block:: python

    from flask import Blueprint, Flask
    from oidc_guard.flask import OIDCGuard, require_scope, current_claims

    guard = OIDCGuard()
    bp = Blueprint("contacts", __name__)

    @bp.get("/contacts")
    @require_scope("contacts")
    def contacts():
        return {"owner": current_claims.subject}

    def create_app():
        app = Flask(__name__)
        app.config["OIDC_GUARD_ISSUER"] = "https://idp.example.com"
        app.config["OIDC_GUARD_AUDIENCE"] = "api://contacts"
        guard.init_app(app)
        app.register_blueprint(bp)
        return app

``init_app`` wraps ``app.wsgi_app`` in :class:`~oidc_guard.wsgi.BearerMiddleware`:
the token is found and validated there, once per request, exactly as for a
plain WSGI application.  The decorators here (the family of
:class:`oidc_guard.rules.Decorators`) only read the middleware's
:class:`~oidc_guard.auth.AuthResult` from ``request.environ`` and answer
with the same status, headers and JSON body as the WSGI decorators (both
rendered by :func:`oidc_guard.errors.render_error`).

Nothing is stored at module level: each application gets its own validator
(in ``app.extensions["oidc_guard"]``), so application factories and several
applications in one process work.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, cast

from flask import Flask, Response, abort, current_app, has_app_context, has_request_context, request
from flask.views import View
from werkzeug.local import LocalProxy

from . import config
from ._build import build_issuers, build_validator
from ._flask_order import check_view_order, record_wrapped, view_order_check_once
from .auth import AuthResult
from .claims import Claims
from .errors import OIDCGuardError
from .multi import members_of as _members_of
from .protocols import AccessTokenValidator
from .rules import Decorators, InsufficientClaims, Rule, includes
from .validator import ConfigurationError
from .wsgi import BearerMiddleware, check_access, result_of

__all__ = [
    "OIDCGuard",
    "OIDCGuardState",
    "ConfigurationError",
    "require_token",
    "require_scope",
    "require_any_scope",
    "require_scope_groups",
    "require_claims",
    "require_issuer",
    "require_acr",
    "require_auth_time",
    "includes",
    "InsufficientClaims",
    "current_claims",
    "get_claims",
    "current_userinfo",
]

logger = logging.getLogger("oidc_guard.flask")

EXTENSION_KEY = "oidc_guard"
CONFIG_PREFIX = config.PREFIX

# Every setting (key, keyword, type, constraint, doc) is one row of
# oidc_guard.config.SETTINGS; add new settings there, not here.
_VALIDATOR_SETTINGS = tuple(s.keyword for s in config.SETTINGS if s.target == config.VALIDATOR)
_MIDDLEWARE_SETTINGS = tuple(s.keyword for s in config.SETTINGS if s.target == config.MIDDLEWARE)
_GUARD_SETTINGS = tuple(s.keyword for s in config.SETTINGS if s.target == config.GUARD)


class OIDCGuardState:
    """What :meth:`OIDCGuard.init_app` registers in
    ``app.extensions["oidc_guard"]`` for one application."""

    __slots__ = ("guard", "validator", "middleware")

    def __init__(self, guard: "OIDCGuard", validator: AccessTokenValidator, middleware: BearerMiddleware) -> None:
        self.guard = guard
        #: the application's TokenValidator (also usable for id_tokens)
        self.validator = validator
        #: the BearerMiddleware now in ``app.wsgi_app``
        self.middleware = middleware

    @property
    def realm(self) -> Optional[str]:
        return self.middleware.realm

    @property
    def validators(self) -> Tuple[AccessTokenValidator, ...]:
        """The member validators: those of a
        :class:`~oidc_guard.MultiIssuerValidator` (``OIDC_GUARD_ISSUERS``),
        else the one validator."""
        return tuple(_members_of(self.validator))

    def __repr__(self) -> str:
        return f"OIDCGuardState(validator={self.validator!r}, middleware={self.middleware!r})"


class OIDCGuard:
    """Flask extension protecting an API with bearer tokens (RFC 6750).

    ``OIDCGuard(app)`` or ``guard = OIDCGuard(); guard.init_app(app)``.

    Settings come from ``app.config`` keys ``OIDC_GUARD_<NAME>``; a keyword
    argument of the same name in lower case overrides the config key.  Every
    key is one row of :data:`oidc_guard.config.SETTINGS`, which also says how
    a string value is read (``"30"``, ``"true"``, ``"RS256,ES256"``,
    ``"api://a api://b"``; see docs/configuration.md), so the environment and
    ``.env`` files work as they are.  Nonsense, and an unknown
    ``OIDC_GUARD_*`` key, is a :class:`~oidc_guard.ConfigurationError` at
    ``init_app``:

    ============================================  ===============================================
    ``OIDC_GUARD_ISSUER``                         required: the issuer URL (discovery at
                                                  ``<issuer>/.well-known/openid-configuration``)
    ``OIDC_GUARD_AUDIENCE``                       required (default: ``RESOURCE``): this API's
                                                  audience(s), a list
    ``OIDC_GUARD_ALGORITHMS``                     allowed asymmetric JWS algorithms, a list
    ``OIDC_GUARD_LEEWAY``                         clock skew in seconds for exp/nbf/iat
    ``OIDC_GUARD_VERIFY_AUDIENCE``                ``False`` only if you really mean it
    ``OIDC_GUARD_HTTP_TIMEOUT``                   seconds per discovery/JWKS request
    ``OIDC_GUARD_ALLOW_HTTP``                     allow a plain-http issuer (loopback always allowed)
    ``OIDC_GUARD_JWKS_COOLDOWN``                  seconds between unknown-kid JWKS refetches
    ``OIDC_GUARD_CACHE_SIZE``                     verified-token cache entries (0 = off)
    ``OIDC_GUARD_MAX_TOKEN_BYTES``                largest token accepted
    ``OIDC_GUARD_JWKS_URI``                       use this JWKS URL instead of the discovered one
    ``OIDC_GUARD_INTROSPECTION_CLIENT_ID``        this API's client id at the RFC 7662
                                                  introspection endpoint (reference tokens)
    ``OIDC_GUARD_INTROSPECTION_CLIENT_SECRET``    its client secret (never shown)
    ``OIDC_GUARD_INTROSPECTION_ENDPOINT``         default: from discovery
    ``OIDC_GUARD_INTROSPECTION_AUTH_METHOD``      ``client_secret_basic`` or ``client_secret_post``
    ``OIDC_GUARD_VALIDATION_MODE``                ``local``, ``both`` or ``introspection``
    ``OIDC_GUARD_INTROSPECTION_CACHE_TTL``        seconds a result is reused (0 = off)
    ``OIDC_GUARD_INTROSPECTION_MAX_IN_FLIGHT``    introspection calls at once
    ``OIDC_GUARD_INTROSPECTION_QUEUE_TIMEOUT``    seconds to wait for a free slot
    ``OIDC_GUARD_SHARED_CACHE``                   ``redis://host:port/db`` shared by every worker
    ``OIDC_GUARD_DPOP_ACCEPT_EVICTING_REDIS``     ``True``: accept a Redis that evicts keys for
                                                  the DPoP replay records (and the replay risk)
    ``OIDC_GUARD_REALM``                          ``realm`` of the ``WWW-Authenticate`` challenge
    ``OIDC_GUARD_REQUIRED``                       ``True``: every request needs a valid token
                                                  (default ``False``: protect routes with the
                                                  decorators)
    ``OIDC_GUARD_ACCEPT_FORM``                    also accept ``access_token`` in a form body
                                                  (RFC 6750 2.2)
    ``OIDC_GUARD_ACCEPT_QUERY``                   also accept ``access_token`` in the query
                                                  (RFC 6750 2.3)
    ``OIDC_GUARD_MAX_FORM_BYTES``                 largest form body searched for a token
    ``OIDC_GUARD_DPOP``                           ``allowed`` (default), ``required`` (no bearer tokens)
                                                  or ``disabled``: DPoP tokens, RFC 9449
    ``OIDC_GUARD_PUBLIC_URL``                     ``https://host`` clients see, for the DPoP ``htu``
                                                  behind a proxy (default: from the WSGI environ)
    ``OIDC_GUARD_CLIENT_CERT_HEADER``             header a trusted TLS proxy puts the client
                                                  certificate in (RFC 8705; default ``SSL_CLIENT_CERT``)
    ``OIDC_GUARD_DPOP_ALGORITHMS``                DPoP proof algorithms accepted, a list
    ``OIDC_GUARD_DPOP_MAX_AGE``                   seconds a proof is accepted after its ``iat`` (300)
    ``OIDC_GUARD_DPOP_LEEWAY``                    seconds a proof's ``iat`` may be ahead (30)
    ``OIDC_GUARD_DPOP_NONCE``                     ``True``: require server nonces (RFC 9449 section 9)
    ``OIDC_GUARD_DPOP_NONCE_SECRET``              HMAC secret of the nonces, shared by all workers
    ``OIDC_GUARD_DPOP_NONCE_STEP``                seconds per nonce; a nonce lives 1-2 steps (60)
    ``OIDC_GUARD_RESOURCE``                       this API's resource identifier (RFC 8707): the RFC
                                                  9728 metadata, ``resource_metadata`` in every
                                                  challenge, and the audience when ``AUDIENCE`` is
                                                  not set
    ``OIDC_GUARD_SCOPES_SUPPORTED``               scopes listed in that metadata, a list
    ``OIDC_GUARD_ISSUERS``                        several issuers instead of ``ISSUER`` (a
                                                  migration, or one issuer per tenant): a
                                                  list of ``{"issuer": ..., "audience":
                                                  ...}`` dicts (other validator keywords
                                                  allowed per issuer) or ``(issuer,
                                                  audience)`` pairs, that list as a JSON
                                                  string, or a ready validator such as a
                                                  :class:`~oidc_guard.MultiIssuerValidator`;
                                                  the other validator settings are shared
                                                  defaults, ``AUDIENCE`` the default audience
    ``OIDC_GUARD_CHECK_ON_START``                 ``True``: ``init_app`` runs the validator's start-up
                                                  :meth:`~oidc_guard.TokenValidator.check` (fetches
                                                  discovery and the JWKS) and raises when the
                                                  provider or the issuer is wrong.  Default
                                                  ``False``: the app starts while the provider is
                                                  down, and keys are fetched on first use
                                                  (protected routes answer 503 meanwhile)
    ============================================  ===============================================

    ``OIDC_GUARD_INTROSPECTION_AUDIENCE_OPTIONAL`` (a bool, like the table's):
    ``True`` accepts active introspection answers without ``aud``, for an
    endpoint that answers only for tokens meant for the calling API
    (IdentityServer's); default ``False`` refuses them.

    ``validator=`` passes a ready :class:`~oidc_guard.TokenValidator` (or
    any :class:`~oidc_guard.AccessTokenValidator`, such as a
    :class:`~oidc_guard.MultiIssuerValidator`) instead; the validator
    settings above are then not used.  Settings not given keep the
    :class:`~oidc_guard.TokenValidator` defaults.
    """

    def __init__(
        self,
        app: Optional[Flask] = None,
        *,
        validator: Optional[AccessTokenValidator] = None,
        **overrides: Any,
    ) -> None:
        unknown = sorted(set(overrides) - set(config.BY_KEYWORD))
        if unknown:
            raise TypeError(f"OIDCGuard() got unexpected keyword argument(s): {', '.join(unknown)}")
        if validator is not None:
            clash = sorted(name for name in (*_VALIDATOR_SETTINGS, "issuers") if name in overrides)
            if clash:
                raise TypeError(
                    f"OIDCGuard(): pass either validator= or validator settings ({', '.join(clash)}), not both"
                )
        self._overrides: Dict[str, Any] = dict(overrides)
        self._validator = validator
        self._app = app
        if app is not None:
            self.init_app(app)

    def _settings(self, app: Flask, names: Sequence[str]) -> Dict[str, Any]:
        """Settings that were given (keyword, else config), parsed by their
        row of :data:`oidc_guard.config.SETTINGS`; absent ones are left out
        so the library defaults apply."""
        out: Dict[str, Any] = {}
        for name in names:
            setting = config.BY_KEYWORD[name]
            if name in self._overrides:
                value, source = self._overrides[name], f"the keyword argument {name}="
            else:
                value, source = app.config.get(setting.key), f"app.config[{setting.key!r}]"
            if value is None:
                continue
            out[name] = config.parse_setting(setting, value, source=source)
        return out

    def init_app(self, app: Flask) -> OIDCGuardState:
        """Build the application's validator, wrap ``app.wsgi_app`` in
        :class:`~oidc_guard.wsgi.BearerMiddleware` and register the state in
        ``app.extensions["oidc_guard"]``.  No network I/O happens here,
        unless ``CHECK_ON_START`` is on: then the validator's ``check()``
        runs first and its ``ConfigurationError`` / ``ProviderError`` stops
        the application from starting."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                f"oidc_guard is already initialised on app {app.name!r}; call init_app once per application"
            )
        unknown = config.unknown_keys(app.config)
        if unknown:
            named = "; ".join(
                f"{key} (did you mean {close}?)" if close else key for key, close in unknown
            )
            raise ConfigurationError(
                f"unknown oidc_guard setting(s) in app.config: {named}; the settings are listed in "
                "docs/configuration.md"
            )
        check_view_order(app)  # views registered so far; the rest at the first request
        validator = self._validator
        if validator is None:
            validator = self._build_validator(app)
        if self._settings(app, _GUARD_SETTINGS).get("check_on_start", False):
            check = getattr(validator, "check", None)
            if check is None:
                raise ConfigurationError(
                    f"{CONFIG_PREFIX}CHECK_ON_START is on but the validator {type(validator).__name__} has no check()"
                )
            check()
        middleware = BearerMiddleware(app.wsgi_app, validator, **self._settings(app, _MIDDLEWARE_SETTINGS))
        app.wsgi_app = middleware  # type: ignore[method-assign]
        state = OIDCGuardState(self, validator, middleware)
        app.extensions[EXTENSION_KEY] = state
        app.before_request(view_order_check_once(app))
        # `flask oidc-guard check` / `validate` with this app's settings
        from .flask_cli import oidc_guard_cli

        app.cli.add_command(oidc_guard_cli)
        return state

    def _build_validator(self, app: Flask) -> AccessTokenValidator:
        settings = self._settings(app, _VALIDATOR_SETTINGS)
        resource = self._settings(app, ("resource",)).get("resource")
        issuers = self._settings(app, ("issuers",)).get("issuers")
        return build_validator(settings, issuers, resource=resource,
                               where="app.config, or the keyword argument of the same name in lower case")

    def state(self, app: Optional[Flask] = None) -> OIDCGuardState:
        """The :class:`OIDCGuardState` of ``app`` (default: the current app)."""
        if app is None:
            # current_app is a proxy; the extensions dict is the app's own
            app = current_app._get_current_object() if has_app_context() else self._app  # type: ignore[attr-defined]
        if app is None:
            raise RuntimeError("no application: pass app, or call inside an application context")
        state = app.extensions.get(EXTENSION_KEY)
        if not isinstance(state, OIDCGuardState):
            raise RuntimeError(f"oidc_guard is not initialised on app {app.name!r}")
        return state

    @property
    def validator(self) -> AccessTokenValidator:
        """The validator of the current application (or of the application
        given to the constructor)."""
        return self.state().validator


# The framework-free part (also used by oidc_guard.django) lives in oidc_guard._build.
_build_issuers = build_issuers


# --- current_claims ----------------------------------------------------------


def _result() -> Optional[AuthResult]:
    """The current request's :class:`~oidc_guard.auth.AuthResult`, or ``None``."""
    if not has_request_context():
        return None
    return result_of(request.environ)


def get_claims() -> Optional[Claims]:
    """The current request's :class:`~oidc_guard.Claims`, or ``None`` when the
    request is anonymous (no token, or a token that was rejected) or when
    there is no request."""
    result = _result()
    return None if result is None else result.claims


#: The current request's :class:`~oidc_guard.Claims`, or a proxy to ``None``
#: when anonymous.  Being a proxy it is never ``is None``: test it with
#: ``if current_claims:`` or use :func:`get_claims`.
#: Typed as :class:`~oidc_guard.Claims` (the proxy forwards every attribute),
#: so a type checker catches ``current_claims.subjcet``.
current_claims: Claims = cast(Claims, LocalProxy(get_claims))


# --- current_userinfo ----------------------------------------------------------

_ENVIRON_USERINFO = "oidc_guard.userinfo"


def current_userinfo() -> Optional[Mapping[str, Any]]:
    """The UserInfo profile (OpenID Connect Core 5.3) of the current
    request's user, from the provider's UserInfo endpoint through
    :meth:`TokenValidator.userinfo <oidc_guard.TokenValidator.userinfo>`
    (cached per token), or ``None`` when the request is anonymous.

    A function, not a proxy: it may do network I/O.  When the provider
    refuses the token or is unusable, the request is answered at once with
    the same RFC 6750 response the middleware gives (401, 403, or 503 with
    ``Retry-After``, and the ``Bearer`` and ``DPoP`` challenges the
    middleware's ``dpop`` mode allows), never a 500.  Remembered for the
    rest of the request.

    A sender-constrained token (DPoP, RFC 9449; certificate-bound, RFC 8705)
    gets 401 ``invalid_token`` saying that UserInfo is not available for
    it, with no request to the provider: the UserInfo endpoint accepts such
    a token only with a proof of the client's key, which this API does not
    hold (see :mod:`oidc_guard.userinfo`).
    """
    result = _result()
    if result is None or result.claims is None or result.credential is None:
        return None
    environ = request.environ
    if _ENVIRON_USERINFO in environ:
        return cast(Mapping[str, Any], environ[_ENVIRON_USERINFO])
    state = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, OIDCGuardState):
        raise RuntimeError("oidc_guard is not initialised on this app")
    userinfo = getattr(state.validator, "userinfo", None)
    if userinfo is None:
        raise ConfigurationError(f"the validator {type(state.validator).__name__} has no userinfo()")
    # The token the middleware authenticated, as it recorded it: never
    # extracted a second time (a form body the view has read is gone, and a
    # second look could find another token than the one validated).
    try:
        profile = cast(Mapping[str, Any], userinfo(result.credential.token, result.claims))
    except OIDCGuardError as exc:
        logger.info("UserInfo refused (%s %r) reason=%s: %s", environ.get("REQUEST_METHOD", "?"),
                    environ.get("PATH_INFO", ""), exc.reason, exc.description)
        # The challenges the middleware and decorators send (Bearer and/or
        # DPoP, RFC 9449 section 7.1), the error on the scheme used.
        status, headers, body = result.render(exc).wsgi()
        abort(Response(body, status=int(status.split(" ", 1)[0]), headers=headers))
    environ[_ENVIRON_USERINFO] = profile
    return profile


# --- decorators --------------------------------------------------------------


def _denial(requirement: Optional[Rule]) -> Any:
    """``None`` to let the view run, else the Flask response to return.

    A missing middleware raises RuntimeError (a 500 logged by Flask): a
    deployment mistake must fail closed.
    """
    denied = check_access(request.environ, requirement)
    if denied is None:
        return None
    status, headers, body = denied
    return current_app.response_class(body, status=status, headers=headers)


def _flask_decorator(requirement: Optional[Rule]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """How the Flask decorators wrap a view: run it when the request's
    result allows, else return the refusal as a Flask response."""
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if isinstance(view, type) and issubclass(view, View):
            raise TypeError(
                "decorate the methods of a class-based view, or list the decorator in its "
                "`decorators = [...]` attribute, not the class itself"
            )
        if not callable(view):
            raise TypeError("oidc_guard decorators wrap a view function")

        if inspect.iscoroutinefunction(view):
            # Keep it a coroutine function so Flask (ensure_sync) runs it as
            # an async view.
            @functools.wraps(view)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                denied = _denial(requirement)
                if denied is not None:
                    return denied
                return await view(*args, **kwargs)

            record_wrapped(view, guarded_async)
            return guarded_async

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            denied = _denial(requirement)
            if denied is not None:
                return denied
            return view(*args, **kwargs)

        record_wrapped(view, guarded)
        return guarded

    return decorate


# The require_* family (oidc_guard.rules.Decorators) over Flask views;
# put them below the route decorator (oidc_guard._flask_order checks it).
_decorators = Decorators(_flask_decorator)
require_token = _decorators.require_token
require_scope = _decorators.require_scope
require_any_scope = _decorators.require_any_scope
require_scope_groups = _decorators.require_scope_groups
require_claims = _decorators.require_claims
require_issuer = _decorators.require_issuer
require_acr = _decorators.require_acr
require_auth_time = _decorators.require_auth_time
