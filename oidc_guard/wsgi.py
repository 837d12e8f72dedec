"""WSGI layer: :class:`BearerMiddleware` and the WSGI scope decorators.

A translation only: the middleware turns the environ into
:class:`~oidc_guard.credentials.EnvironFacts`, lets its
:class:`~oidc_guard.auth.Authenticator` find and validate the token (once
per request) and records the :class:`~oidc_guard.auth.AuthResult` in the
environ.  The decorators (:func:`require_token`, :func:`require_scope`,
:func:`require_any_scope`, ... defined once in :class:`oidc_guard.rules.Decorators`)
only read that result and answer 401 / 403 / 503 as
:func:`oidc_guard.errors.render_error` renders it; they never validate
anything themselves, so Flask and plain WSGI share one mechanism.

Environ keys the middleware sets on *every* request it sees (a fresh value
each time, so a nested or repeated middleware cannot leak a previous
result):

``oidc_guard.result``
    the request's :class:`~oidc_guard.auth.AuthResult`: the one record the
    keys below are derived from, and what the decorators read.

``oidc_guard.claims``
    the :class:`~oidc_guard.Claims` of a valid token, else ``None``.
``oidc_guard.error``
    the :class:`~oidc_guard.InvalidToken` or :class:`~oidc_guard.ProviderError`
    met while validating the token, else ``None``.
``oidc_guard.token_present``
    ``True`` when the request carried a bearer token by a method the
    middleware accepts; lets a decorator tell "no token" (401 with a bare
    challenge, RFC 6750 section 3.1) from "bad token" (401 ``invalid_token``).
``oidc_guard.realm``
    the ``realm`` the middleware was configured with, for the challenge the
    decorators send.
``oidc_guard.credential``
    the :class:`~oidc_guard.credentials.Credential` the request carried
    (``scheme``, ``source``, ``token``; the token left out of its repr),
    else ``None``: read it instead of extracting the token a second time.
``REMOTE_USER``
    the token's ``sub`` when the token is valid and has one (left untouched
    otherwise).

Everything here logs to ``logging.getLogger("oidc_guard.wsgi")`` at INFO, one
line per refused request: a rejected token (the reason, never the token), a
malformed request, a missing scope, a 503 because the identity provider is
unusable.  The provider trouble itself is logged at WARNING by
``oidc_guard.jwks`` once per outage (and once on recovery), not per request.
A validator bug is logged at ERROR with its traceback.  The first refusal
while those INFO lines are shown nowhere also logs a one-line WARNING that
says how to see them (``oidc_guard.loghint``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union, cast

from .auth import AuthResult, Authenticator, where
# Credential extraction (RFC 6750 section 2, RFC 9449 section 7.1) lives in
# oidc_guard.credentials; extract_token and extract_credentials stay
# importable from here (__all__).
from .credentials import (
    DEFAULT_MAX_FORM_BYTES,
    Credential,
    EnvironFacts,
    extract_credentials,
    extract_token,
    find_credential,
    quote_path,
    request_url,
)
from .dpop import DPoPVerifier
from .errors import ChallengeSettings
from .protocols import AccessTokenValidator
from .rules import Decorators, InsufficientClaims, Rule, evaluate, includes, log_denial

__all__ = [
    "BearerMiddleware",
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
    "check_access",
    "result_of",
    "extract_token",
    "extract_credentials",
    "Credential",
    "ENVIRON_RESULT",
    "ENVIRON_CLAIMS",
    "ENVIRON_CREDENTIAL",
    "ENVIRON_SCHEME",
    "ENVIRON_ERROR",
    "ENVIRON_TOKEN_PRESENT",
    "ENVIRON_REALM",
]

logger = logging.getLogger("oidc_guard.wsgi")

#: the request's :class:`~oidc_guard.auth.AuthResult`: the one record
ENVIRON_RESULT = "oidc_guard.result"
ENVIRON_CLAIMS = "oidc_guard.claims"
ENVIRON_ERROR = "oidc_guard.error"
ENVIRON_TOKEN_PRESENT = "oidc_guard.token_present"
ENVIRON_REALM = "oidc_guard.realm"
#: "bearer" or "dpop": the scheme the request's token came with (None: no token)
ENVIRON_SCHEME = "oidc_guard.scheme"
#: the request's :class:`~oidc_guard.credentials.Credential` (scheme, source,
#: token) as the middleware found it, else None: what later steps read
#: instead of extracting the token again
ENVIRON_CREDENTIAL = "oidc_guard.credential"

_StartResponse = Callable[..., Any]
_WSGIApp = Callable[[Dict[str, Any], _StartResponse], Iterable[bytes]]

# The request-path quoting memo of the DPoP htu (oidc_guard.credentials).
_quote_path = quote_path


# --- the middleware ----------------------------------------------------------


def _send(start_response: _StartResponse, response: Tuple[str, List[Tuple[str, str]], bytes]) -> List[bytes]:
    status, headers, body = response
    start_response(status, headers)
    return [body]


class BearerMiddleware:
    """Authenticate requests carrying an OAuth 2.0 bearer token (RFC 6750).

    For each request the middleware looks for a token, validates it with
    ``validator`` and records the result in the environ (``oidc_guard.claims``,
    ``oidc_guard.error``, ``oidc_guard.token_present``, ``oidc_guard.realm``,
    and ``REMOTE_USER`` = ``sub``).  Put the decorators of this module (or of
    :mod:`oidc_guard.flask`) on the routes that need a token or a scope.

    .. code-block:: python

        from oidc_guard import TokenValidator, BearerMiddleware
        validator = TokenValidator(issuer="https://idp.example.com", audience="api://contacts")
        app.wsgi_app = BearerMiddleware(app.wsgi_app, validator, realm="contacts-api")

    :param app: the WSGI application to protect.
    :param validator: an object with ``validate_access_token(token)`` that
        returns :class:`~oidc_guard.Claims` or raises
        :class:`~oidc_guard.InvalidToken` / :class:`~oidc_guard.ProviderError`;
        normally a :class:`~oidc_guard.TokenValidator`.  The middleware trusts
        whatever it returns, so it must be configured with the issuer and
        audience of *this* API.
    :param realm: the ``realm`` of the ``WWW-Authenticate`` challenge
        (RFC 6750 section 3).  Shown to every client; it must not contain
        secrets.  ``None`` leaves it out.
    :param required: ``False`` (default): a request without a valid token goes
        on to the application as anonymous, and the decorators protect
        individual routes; public routes keep working.  ``True``: the
        middleware itself answers 401 to every request without a valid token
        (and 503 when the identity provider is unusable), so nothing behind it
        is reachable anonymously -- including CORS preflight ``OPTIONS``
        requests and health checks, which then belong outside it.
    :param accept_form: also accept the token as an ``access_token`` field of
        an ``application/x-www-form-urlencoded`` body of a POST, PUT or PATCH
        request (RFC 6750 section 2.2).  Off by default: a body token is easy
        to plant with a cross-site form post, so switch it on only for clients
        that cannot set headers.  The body (at most ``max_form_bytes``, and
        only when ``Content-Length`` is given) is read and put back into
        ``wsgi.input`` unchanged, so the application can still read it; a
        larger or chunked body is passed on unread and never searched.
    :param accept_query: also accept the token as an ``access_token`` query
        parameter (RFC 6750 section 2.3).  Off by default: URLs end up in
        server logs, browser history and ``Referer`` headers, which leaks the
        token (RFC 6750 section 5.3).
    :param max_form_bytes: the largest form body read when ``accept_form`` is
        on (default 1 MiB); bounds the memory a request can make the
        middleware use.
    :param dpop: ``"allowed"`` (default), ``"required"`` or ``"disabled"``
        (RFC 9449; see docs/dpop.md), or a ready
        :class:`~oidc_guard.dpop.DPoPVerifier`, meaning ``"allowed"`` with
        that verifier (the ``dpop_*`` keywords then stay unset).

    :param resource: this API's resource identifier (RFC 9728, RFC 8707),
        e.g. ``"https://api.example.com/contacts"``: the middleware then
        answers the protected resource metadata at
        ``/.well-known/oauth-protected-resource/contacts`` itself (GET,
        HEAD, CORS preflight; before and without any token check, also with
        ``required=True``), and every challenge carries
        ``resource_metadata``.  The path compared is ``SCRIPT_NAME`` +
        ``PATH_INFO``: the document sits at the host's root, so mount the
        middleware there (or route that path to it).  See docs/resource.md.
    :param scopes_supported: the scopes published in that document.

    The other keywords (``public_url``, ``client_cert_header``,
    ``dpop_*``) are those of :class:`oidc_guard.auth.Authenticator`, which
    holds the policy (``self.authenticator``); the middleware only
    translates between WSGI and it.

    Decisions a security reviewer will want to know:

    * ``Authorization`` headers of another scheme (``Basic``, ``Digest``,
      ...) are not ours: they are treated as "no bearer token", never 400,
      so the middleware can sit in front of an application that also speaks
      other schemes.  Only a ``Bearer`` header that breaks the RFC 6750
      section 2.1 grammar (no token, several tokens, characters outside
      ``b64token``), a Bearer credential behind another one in the same
      header, a repeated or malformed ``access_token`` parameter, or a token
      sent by more than one method is answered ``400 invalid_request`` --
      always, whatever ``required`` says, also on public routes: the client
      tried to authenticate and got the request wrong (RFC 6750 section
      3.1), and quietly serving it as anonymous would hide that mistake.
    * An invalid token is never silently upgraded to anything: with
      ``required=False`` the request goes on anonymous with
      ``oidc_guard.error`` set, and a decorator answers 401 ``invalid_token``.
    * An identity provider outage (:class:`~oidc_guard.ProviderError`) is
      503 with ``Retry-After``, never 401.  With ``required=False`` the
      middleware only records it, so public routes keep working during the
      outage while protected routes answer 503 through their decorator.
    * A token never causes a 500: an unexpected exception raised by the
      validator is a bug, logged with its traceback at ERROR, and the token
      is treated as ``InvalidToken("token could not be validated")``.
      Failing closed with 401 is the safe answer; the log makes sure the bug
      is not disguised.
    """

    def __init__(
        self,
        app: _WSGIApp,
        validator: AccessTokenValidator,
        realm: Optional[str] = None,
        required: bool = False,
        accept_form: bool = False,
        accept_query: bool = False,
        *,
        max_form_bytes: int = DEFAULT_MAX_FORM_BYTES,
        dpop: Union[str, DPoPVerifier] = "allowed",
        public_url: Optional[str] = None,
        client_cert_header: Optional[str] = None,
        dpop_algorithms: Optional[Iterable[str]] = None,
        dpop_max_age: float = 300.0,
        dpop_leeway: float = 30.0,
        dpop_nonce: bool = False,
        dpop_nonce_secret: Union[str, bytes, None] = None,
        dpop_nonce_step: float = 60.0,
        dpop_replay_store: Any = None,
        resource: Optional[str] = None,
        scopes_supported: Optional[Iterable[str]] = None,
    ) -> None:
        self.app = app
        #: the policy: what is read, validated, bound and challenged
        self.authenticator = Authenticator(
            validator, realm=realm, required=required, accept_form=accept_form, accept_query=accept_query,
            max_form_bytes=max_form_bytes, dpop=dpop, public_url=public_url,
            client_cert_header=client_cert_header, dpop_algorithms=dpop_algorithms, dpop_max_age=dpop_max_age,
            dpop_leeway=dpop_leeway, dpop_nonce=dpop_nonce, dpop_nonce_secret=dpop_nonce_secret,
            dpop_nonce_step=dpop_nonce_step, dpop_replay_store=dpop_replay_store, logger=logger,
            resource=resource, scopes_supported=scopes_supported)
        # The metadata document's answer, tried before anything else (None: no resource).
        self._metadata = self.authenticator.metadata

    # The settings, as the authenticator holds them (read-only).
    @property
    def validator(self) -> AccessTokenValidator:
        return self.authenticator.validator

    @property
    def realm(self) -> Optional[str]:
        return self.authenticator.realm

    @property
    def required(self) -> bool:
        return self.authenticator.required

    @property
    def accept_form(self) -> bool:
        return self.authenticator.accept_form

    @property
    def accept_query(self) -> bool:
        return self.authenticator.accept_query

    @property
    def max_form_bytes(self) -> int:
        return self.authenticator.max_form_bytes

    @property
    def dpop(self) -> str:
        """``"allowed"``, ``"required"`` or ``"disabled"``."""
        return self.authenticator.dpop

    @property
    def dpop_verifier(self) -> Optional[DPoPVerifier]:
        return self.authenticator.dpop_verifier

    @property
    def public_url(self) -> Optional[str]:
        return self.authenticator.public_url

    @property
    def client_cert_header(self) -> Optional[str]:
        return self.authenticator.client_cert_header

    @property
    def resource(self) -> Optional[str]:
        """The resource identifier (RFC 8707), or ``None``."""
        return self.authenticator.resource

    def __repr__(self) -> str:
        a = self.authenticator
        return (
            f"BearerMiddleware({self.app!r}, realm={a.realm!r}, required={a.required}, "
            f"accept_form={a.accept_form}, accept_query={a.accept_query}, dpop={a.dpop!r})"
        )

    def __call__(self, environ: Dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        authenticator = self.authenticator
        if self._metadata is not None:
            answer = authenticator.metadata_response(environ.get("REQUEST_METHOD", "GET"),
                                                     environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
            if answer is not None:
                return _send(start_response, answer.wsgi())
        result = authenticator.authenticate(EnvironFacts(environ))
        # The one record, and the documented keys derived from it.
        environ[ENVIRON_RESULT] = result
        claims = result.claims
        credential = result.credential
        environ[ENVIRON_CLAIMS] = claims
        environ[ENVIRON_ERROR] = result.error
        environ[ENVIRON_TOKEN_PRESENT] = credential is not None
        environ[ENVIRON_REALM] = authenticator.realm
        environ[ENVIRON_SCHEME] = None if credential is None else credential.scheme
        environ[ENVIRON_CREDENTIAL] = credential
        if claims is not None:
            subject = getattr(claims, "subject", None)
            if subject:
                environ["REMOTE_USER"] = subject
            if result.dpop_nonce is not None:
                return self.app(environ, _add_header(start_response, "DPoP-Nonce", result.dpop_nonce))
            return self.app(environ, start_response)
        if result.error is None and not authenticator.required:
            return self.app(environ, start_response)  # anonymous: refusal() would say None
        refusal = authenticator.refusal(result)
        if refusal is not None:
            return _send(start_response, refusal.wsgi())
        return self.app(environ, start_response)

    def request_url(self, environ: Dict[str, Any]) -> str:
        """The URL a DPoP proof's ``htu`` must name (RFC 9449 section 4.3
        step 9): ``public_url`` + ``SCRIPT_NAME`` + ``PATH_INFO``, or, without
        ``public_url``, ``wsgi.url_scheme``://``HTTP_HOST`` (else
        ``SERVER_NAME``:``SERVER_PORT``) + ``SCRIPT_NAME`` + ``PATH_INFO``
        (PEP 3333 URL reconstruction).  ``X-Forwarded-*`` headers are never
        read: any client can send them, so believing them would let a proof
        made for another server pass.  Behind a proxy set ``public_url``, or
        put werkzeug's ``ProxyFix`` (configured with the number of trusted
        proxies) in front of this middleware."""
        return request_url(EnvironFacts(environ), self.authenticator.public_url)


def _add_header(start_response: _StartResponse, name: str, value: str) -> _StartResponse:
    def start(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        headers = list(headers) + [(name, value)]
        if exc_info is not None:
            return start_response(status, headers, exc_info)
        return start_response(status, headers)

    return start


def _where(environ: Dict[str, Any]) -> str:
    return where(EnvironFacts(environ))


# --- decorators --------------------------------------------------------------


def result_of(environ: Dict[str, Any]) -> Optional[AuthResult]:
    """The :class:`~oidc_guard.auth.AuthResult` the middleware recorded for
    this request, or ``None`` when no :class:`BearerMiddleware` saw it.

    An environ without ``oidc_guard.result`` but with the older keys
    (``oidc_guard.token_present``, ``oidc_guard.claims``, ...; a test
    that builds them by hand) gets a result made from those keys (with a
    ``Bearer``-only challenge)."""
    result = environ.get(ENVIRON_RESULT)
    if result is not None or ENVIRON_TOKEN_PRESENT not in environ:
        return cast(Optional[AuthResult], result)
    credential = environ.get(ENVIRON_CREDENTIAL)
    if not isinstance(credential, Credential) and environ.get(ENVIRON_TOKEN_PRESENT):
        credential = Credential(environ.get(ENVIRON_SCHEME) or "bearer", "header", "")
    return AuthResult(credential if isinstance(credential, Credential) else None, environ.get(ENVIRON_CLAIMS),
                      environ.get(ENVIRON_ERROR), None, ChallengeSettings(environ.get(ENVIRON_REALM)))


def check_access(
    environ: Dict[str, Any], requirement: Optional[Rule] = None
) -> Optional[Tuple[str, List[Tuple[str, str]], bytes]]:
    """Decide whether the request may reach a resource with ``requirement``
    (:func:`oidc_guard.rules.evaluate` on the request's
    :class:`~oidc_guard.auth.AuthResult`).

    Returns ``None`` when access is granted, else the ready error response
    ``(status_line, headers, body)`` rendered by
    :func:`oidc_guard.errors.render_error` with the middleware's challenge
    settings:
    401 with a bare challenge when no token was sent, 401 ``invalid_token``
    for a bad token, 503 with ``Retry-After`` while the identity provider is
    unusable, 403 ``insufficient_scope`` for a missing scope, 403
    ``insufficient_claims`` for a failed claim or issuer rule (see
    :mod:`oidc_guard.rules`).

    Raises :class:`RuntimeError` when no :class:`BearerMiddleware` saw this
    request: a deployment mistake that must fail closed, not look like an
    anonymous request.
    """
    result = environ.get(ENVIRON_RESULT)
    if result is None:
        result = result_of(environ)
        if result is None:
            raise RuntimeError(
                "oidc_guard: a require_* decorator ran but BearerMiddleware did not see this request; "
                "wrap the application in BearerMiddleware (or use OIDCGuard for Flask)"
            )
    denied = evaluate(result, requirement)
    if denied is None:
        return None
    if result.claims is not None:
        # A refused token was logged by the middleware already.
        log_denial(logger, _where(environ), denied)
    return cast(AuthResult, result).render(denied).wsgi()


_MISCONFIGURED_BODY = b"authentication is not configured for this route"


def _wsgi_decorator(requirement: Optional[Rule]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """How the WSGI decorators wrap a callable: run it when
    :func:`check_access` allows, else send the refusal."""
    def decorate(app: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(app):
            raise TypeError("oidc_guard decorators wrap a WSGI callable")

        @functools.wraps(app)
        def guarded(*args: Any) -> Iterable[bytes]:
            # (environ, start_response) for a function,
            # (self, environ, start_response) for a method.
            if len(args) < 2:
                raise TypeError("a WSGI callable takes (environ, start_response)")
            environ, start_response = args[-2], args[-1]
            try:
                denied = check_access(environ, requirement)
            except RuntimeError:
                logger.error("require_* decorator used without BearerMiddleware %s", _where(environ))
                start_response(
                    "500 Internal Server Error",
                    [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(_MISCONFIGURED_BODY)))],
                )
                return [_MISCONFIGURED_BODY]
            if denied is None:
                return app(*args)  # type: ignore[no-any-return]
            return _send(start_response, denied)

        return guarded

    return decorate


# The require_* family (oidc_guard.rules.Decorators) over WSGI callables
# ``(environ, start_response)`` (or methods ``(self, environ, start_response)``).
_decorators = Decorators(_wsgi_decorator)
require_token = _decorators.require_token
require_scope = _decorators.require_scope
require_any_scope = _decorators.require_any_scope
require_scope_groups = _decorators.require_scope_groups
require_claims = _decorators.require_claims
require_issuer = _decorators.require_issuer
require_acr = _decorators.require_acr
require_auth_time = _decorators.require_auth_time
