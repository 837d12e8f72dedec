"""WSGI layer: :class:`BearerMiddleware` and the WSGI scope decorators.

The middleware finds the bearer token of a request (RFC 6750 section 2),
validates it once with a :class:`~oidc_guard.TokenValidator` and records the
outcome in the WSGI environ.  The decorators (:func:`require_token`,
:func:`require_scope`, :func:`require_any_scope`) only read that outcome and
answer 401 / 403 / 503; they never validate anything themselves, so Flask and
plain WSGI share one mechanism and a token is verified once per request.

Environ keys the middleware sets on *every* request it sees (a fresh value
each time, so a nested or repeated middleware cannot leak a previous
result):

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
import io
import logging
import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar, cast, overload
from urllib.parse import parse_qsl

from .errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    OIDCGuardError,
    ProviderError,
    error_response,
)
from .loghint import note_refusal
from .protocols import AccessTokenValidator
from .rules import ClaimRules, InsufficientClaims, IssuerRule, Rule, ScopeGroups, includes

__all__ = [
    "BearerMiddleware",
    "require_token",
    "require_scope",
    "require_any_scope",
    "require_scope_groups",
    "require_claims",
    "require_issuer",
    "includes",
    "InsufficientClaims",
    "check_access",
    "extract_token",
    "ENVIRON_CLAIMS",
    "ENVIRON_ERROR",
    "ENVIRON_TOKEN_PRESENT",
    "ENVIRON_REALM",
]

logger = logging.getLogger("oidc_guard.wsgi")

ENVIRON_CLAIMS = "oidc_guard.claims"
ENVIRON_ERROR = "oidc_guard.error"
ENVIRON_TOKEN_PRESENT = "oidc_guard.token_present"
ENVIRON_REALM = "oidc_guard.realm"

# RFC 6750 section 2.1:
#   b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 7235 section 2.1 / RFC 7230 section 3.2.6: auth-scheme = token
_AUTH_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# A "Bearer" credential further along a comma-joined header value.  Servers
# join repeated Authorization headers with ", " (RFC 7230 section 3.2.2).
_LATER_BEARER = re.compile(r",[ \t]*bearer(?:[ \t]|$)", re.IGNORECASE)
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")

# RFC 6750 section 2.2: the body has defined semantics for these methods;
# "GET" MUST NOT be used.
_FORM_METHODS = frozenset(("POST", "PUT", "PATCH"))
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_DEFAULT_MAX_FORM_BYTES = 1024 * 1024

_StartResponse = Callable[..., Any]
_WSGIApp = Callable[[Dict[str, Any], _StartResponse], Iterable[bytes]]


# --- token extraction (RFC 6750 section 2) ----------------------------------


def _token_from_header(value: str) -> Optional[str]:
    """The bearer token of an ``Authorization`` header value, or ``None``
    when the header uses another scheme.

    RFC 6750 section 2.1: ``credentials = "Bearer" 1*SP b64token``; the
    scheme is case-insensitive (RFC 7235 section 2.1).  A header that names
    the Bearer scheme but does not follow that grammar raises
    :class:`InvalidRequest`.
    """
    # Fast path for the usual "Bearer <b64token>" (one space, any case).
    if value[6:7] == " " and value[:6].lower() == "bearer" and _B64TOKEN.fullmatch(value, 7):
        return value[7:]
    # RFC 7230 section 3.2.4: leading and trailing whitespace is not part of
    # the field value.
    value = value.strip(" \t")
    match = _AUTH_SCHEME.match(value)
    if match is None or match.group().lower() != "bearer":
        # Another scheme (Basic, Digest, DPoP, ...) belongs to someone else:
        # not a bearer token, not our error.  Only when a Bearer credential
        # hides behind it in a comma-joined list do we refuse, because
        # silently ignoring a token the client did send would be wrong.
        if _LATER_BEARER.search(value):
            raise InvalidRequest("the Authorization header carries more than one credential")
        return None
    rest = value[match.end():]
    if not rest:
        raise InvalidRequest("the Authorization header names the Bearer scheme but carries no token")
    if rest[0] != " ":
        raise InvalidRequest("the Bearer scheme must be followed by a space and the token (RFC 6750 section 2.1)")
    token = rest.lstrip(" ")
    if not token:
        raise InvalidRequest("the Authorization header names the Bearer scheme but carries no token")
    if _B64TOKEN.fullmatch(token) is None:
        if " " in token or "," in token or "\t" in token:
            raise InvalidRequest("the Authorization header carries more than one token")
        raise InvalidRequest("the bearer token contains characters RFC 6750 section 2.1 does not allow")
    return token


def _form_pairs(text: str) -> List[Tuple[str, str]]:
    # latin-1 maps every byte (raw or %-escaped) to one character and never
    # fails, so any body or query decodes; a byte outside the b64token
    # alphabet then fails the grammar check below instead of raising here.
    return parse_qsl(text, keep_blank_values=True, encoding="latin-1", errors="strict")


def _token_from_pairs(pairs: List[Tuple[str, str]], where: str) -> Optional[str]:
    """The single ``access_token`` of decoded form/query pairs, or ``None``."""
    found = [value for key, value in pairs if key == "access_token"]
    if not found:
        return None
    if len(found) > 1:
        # RFC 6750 section 3.1: "repeats the same parameter" is invalid_request.
        raise InvalidRequest(f"the access_token parameter appears more than once in the {where}")
    token = found[0]
    if not token:
        raise InvalidRequest(f"the access_token parameter in the {where} is empty")
    if _B64TOKEN.fullmatch(token) is None:
        raise InvalidRequest(f"the access_token in the {where} contains characters RFC 6750 section 2.1 does not allow")
    return token


def _is_form_request(environ: Dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD", "GET").upper() not in _FORM_METHODS:
        return False
    # RFC 6750 section 2.2: Content-Type "application/x-www-form-urlencoded";
    # media types compare case-insensitively and parameters (charset) are
    # ignored (RFC 7231 section 3.1.1.1).
    content_type = str(environ.get("CONTENT_TYPE", ""))
    media_type = content_type.split(";", 1)[0].strip(" \t").lower()
    return media_type == _FORM_MEDIA_TYPE


def _read_form_body(environ: Dict[str, Any], limit: int) -> Optional[bytes]:
    """Read a form body of known length (at most ``limit`` bytes) and put it
    back into ``wsgi.input`` so the application can still read it.

    Returns ``None``, without touching the stream, when the length is
    unknown (chunked) or over the limit: such a body is not searched for a
    token.
    """
    length_text = environ.get("CONTENT_LENGTH", "")
    if not length_text or not length_text.isdigit() or not length_text.isascii():
        return None
    length = int(length_text)
    if length > limit:
        logger.info(
            "form body of %d bytes is over the %d-byte limit; not searched for access_token", length, limit
        )
        return None
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    chunks = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break  # client sent less than Content-Length; hand on what came
        chunks.append(chunk)
        remaining -= len(chunk)
    body = b"".join(chunks)
    # PEP 3333: the application reads wsgi.input up to CONTENT_LENGTH; give it
    # the very same bytes.  CONTENT_LENGTH stays as the client sent it.
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def extract_token(
    environ: Dict[str, Any],
    *,
    accept_form: bool = False,
    accept_query: bool = False,
    max_form_bytes: int = _DEFAULT_MAX_FORM_BYTES,
) -> Optional[str]:
    """Find the bearer token of a request (RFC 6750 section 2).

    Returns the token, ``None`` when the request carries none, or raises
    :class:`InvalidRequest` for a malformed ``Authorization`` header, a
    malformed or repeated ``access_token`` parameter, or a token sent by more
    than one method (RFC 6750 section 3.1).
    """
    found: List[Tuple[str, str]] = []

    header = environ.get("HTTP_AUTHORIZATION")
    if header is not None:
        token = _token_from_header(header)
        if token is not None:
            found.append(("Authorization header", token))

    if accept_form and _is_form_request(environ):
        body = _read_form_body(environ, max_form_bytes)
        if body:
            token = _token_from_pairs(_form_pairs(body.decode("latin-1")), "form body")
            if token is not None:
                found.append(("form body", token))

    if accept_query:
        query = environ.get("QUERY_STRING", "")
        if query:
            # PEP 3333: QUERY_STRING is the raw bytes decoded as latin-1.
            token = _token_from_pairs(_form_pairs(query), "query string")
            if token is not None:
                found.append(("query string", token))

    if len(found) > 1:
        # RFC 6750 section 2: "Clients MUST NOT use more than one method to
        # transmit the token in each request."
        methods = " and ".join(where for where, _ in found)
        raise InvalidRequest(f"the access token was sent by more than one method ({methods})")
    return found[0][1] if found else None


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
        max_form_bytes: int = _DEFAULT_MAX_FORM_BYTES,
    ) -> None:
        if not callable(getattr(validator, "validate_access_token", None)):
            raise TypeError("validator must have a validate_access_token(token) method, e.g. a TokenValidator")
        if realm is not None and not isinstance(realm, str):
            raise TypeError("realm must be a str or None")
        if not isinstance(max_form_bytes, int) or max_form_bytes < 0:
            raise ValueError("max_form_bytes must be a non-negative int")
        self.app = app
        self.validator = validator
        self.realm = realm
        self.required = bool(required)
        self.accept_form = bool(accept_form)
        self.accept_query = bool(accept_query)
        self.max_form_bytes = max_form_bytes

    def __repr__(self) -> str:
        return (
            f"BearerMiddleware({self.app!r}, realm={self.realm!r}, required={self.required}, "
            f"accept_form={self.accept_form}, accept_query={self.accept_query})"
        )

    def __call__(self, environ: Dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        environ[ENVIRON_CLAIMS] = None
        environ[ENVIRON_ERROR] = None
        environ[ENVIRON_TOKEN_PRESENT] = False
        environ[ENVIRON_REALM] = self.realm

        try:
            token = extract_token(
                environ,
                accept_form=self.accept_form,
                accept_query=self.accept_query,
                max_form_bytes=self.max_form_bytes,
            )
        except InvalidRequest as exc:
            logger.info("malformed bearer request %s: %s", _where(environ), exc.description)
            note_refusal(logger)
            return _send(start_response, error_response(exc, self.realm))

        if token is None:
            if self.required:
                logger.info("no bearer token %s; a token is required", _where(environ))
                note_refusal(logger)
                return _send(start_response, error_response(None, self.realm))
            return self.app(environ, start_response)

        environ[ENVIRON_TOKEN_PRESENT] = True
        error = _validate(self.validator, token, environ)
        if error is None:
            return self.app(environ, start_response)
        environ[ENVIRON_ERROR] = error
        if self.required:
            return _send(start_response, error_response(error, self.realm))
        return self.app(environ, start_response)


def _where(environ: Dict[str, Any]) -> str:
    # repr() so that control characters in a path cannot forge log lines.
    return f"({environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')!r})"


def _validate(validator: AccessTokenValidator, token: str, environ: Dict[str, Any]) -> Optional[OIDCGuardError]:
    """Validate ``token``; on success fill the environ and return ``None``,
    else return the error (never raises for a token problem)."""
    try:
        claims = validator.validate_access_token(token)
    except ProviderError as exc:
        # INFO, not WARNING: the key set (oidc_guard.jwks) logs the cause at
        # WARNING once when an outage starts and once when it ends; a line
        # per request at WARNING would flood the logs during an outage.
        logger.info("identity provider unusable %s: %s", _where(environ), exc.description)
        note_refusal(logger)
        return exc
    except InvalidToken as exc:
        logger.info("rejected bearer token %s: %s", _where(environ), exc.description)
        note_refusal(logger)
        return exc
    except OIDCGuardError as exc:
        # Another library error from the validator (none is expected): still
        # a token problem, answered like an invalid token.
        logger.info("rejected bearer token %s: %s", _where(environ), exc.description)
        note_refusal(logger)
        return InvalidToken(exc.description)
    except Exception:
        # A bug in the validator.  It must be visible (traceback at ERROR)
        # but must not become a 500 that a client can trigger at will.
        logger.exception("the token validator raised an unexpected error %s", _where(environ))
        return InvalidToken("token could not be validated")
    environ[ENVIRON_CLAIMS] = claims
    subject = getattr(claims, "subject", None)
    if subject:
        environ["REMOTE_USER"] = subject
    return None


# --- decorators --------------------------------------------------------------


class _Requirement(Rule):
    """What a decorated resource needs: a valid token, and all (``mode ==
    "all"``) or any (``mode == "any"``) of ``scopes``."""

    __slots__ = ("scopes", "mode")

    def __init__(self, scopes: Tuple[str, ...], mode: str) -> None:
        self.scopes = scopes
        self.mode = mode

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        granted = claims.scopes
        if self.mode == "all":
            missing = [scope for scope in self.scopes if scope not in granted]
            if not missing:
                return None
            plural = "s" if len(missing) > 1 else ""
            description = f"the token lacks the required scope{plural} " + " ".join(missing)
        else:
            if any(scope in granted for scope in self.scopes):
                return None
            description = "the token has none of the accepted scopes " + " ".join(self.scopes)
        # RFC 6750 section 3: scope="..." lists the scopes the resource needs.
        return InsufficientScope(description, self.scopes)


def _scope_requirement(scopes: Tuple[Any, ...], mode: str, name: str) -> _Requirement:
    """Check the scopes given to a decorator once, at decoration time."""
    if not scopes:
        raise TypeError(f"{name}() needs at least one scope; use require_token() for any valid token")
    for scope in scopes:
        if not isinstance(scope, str):
            raise TypeError(
                f"{name}() takes scope names as str, got {type(scope).__name__}"
                f" (write @{name}(\"scope\"), not @{name})"
            )
        if _SCOPE_TOKEN.fullmatch(scope) is None:
            raise ValueError(
                f"{name}(): {scope!r} is not a valid scope name (RFC 6749 section 3.3; pass each scope separately)"
            )
    unique = tuple(dict.fromkeys(scopes))
    return _Requirement(unique, mode)


def check_access(
    environ: Dict[str, Any], requirement: Optional[Rule] = None
) -> Optional[Tuple[str, List[Tuple[str, str]], bytes]]:
    """Decide whether the request may reach a resource with ``requirement``.

    Returns ``None`` when access is granted, else the ready error response
    ``(status_line, headers, body)`` built by
    :func:`oidc_guard.errors.error_response` with the middleware's realm:
    401 with a bare challenge when no token was sent, 401 ``invalid_token``
    for a bad token, 503 with ``Retry-After`` while the identity provider is
    unusable, 403 ``insufficient_scope`` for a missing scope, 403
    ``insufficient_claims`` for a failed claim or issuer rule (see
    :mod:`oidc_guard.rules`).

    Raises :class:`RuntimeError` when no :class:`BearerMiddleware` saw this
    request: a deployment mistake that must fail closed, not look like an
    anonymous request.
    """
    if ENVIRON_TOKEN_PRESENT not in environ:
        raise RuntimeError(
            "oidc_guard: a require_* decorator ran but BearerMiddleware did not see this request; "
            "wrap the application in BearerMiddleware (or use OIDCGuard for Flask)"
        )
    realm = environ.get(ENVIRON_REALM)
    claims = environ.get(ENVIRON_CLAIMS)
    if claims is None:
        # The middleware already logged why (rejected token, provider down).
        # error None = no token sent: bare challenge (RFC 6750 section 3.1).
        return error_response(environ.get(ENVIRON_ERROR), realm)
    if requirement is None:
        return None
    denied = requirement.deny(claims)
    if denied is None:
        return None
    if isinstance(denied, InsufficientScope):
        logger.info("insufficient scope %s: %s", _where(environ), denied.description)
    else:
        logger.info("access denied %s: %s", _where(environ), denied.description)
    note_refusal(logger)
    return error_response(denied, realm)


_MISCONFIGURED_BODY = b"authentication is not configured for this route"


#: a WSGI callable (function or method); the decorators keep its signature
_App = TypeVar("_App", bound=Callable[..., Iterable[bytes]])


def _wsgi_decorator(requirement: Optional[Rule]) -> Callable[[_App], _App]:
    def decorate(app: _App) -> _App:
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
                return app(*args)
            return _send(start_response, denied)

        return cast(_App, guarded)

    return decorate


@overload
def require_token(app: _App) -> _App: ...
@overload
def require_token(app: None = None) -> Callable[[_App], _App]: ...


def require_token(app: Optional[_App] = None) -> Any:
    """Decorate a WSGI callable so it runs only for a request with a valid
    token (401 otherwise, 503 while the identity provider is unusable).

    Use as ``@require_token()``; ``@require_token`` works too.
    """
    decorate = _wsgi_decorator(None)
    if app is not None:
        return decorate(app)
    return decorate


def require_scope(*scopes: str) -> Callable[[_App], _App]:
    """Decorate a WSGI callable so it runs only for a valid token that has
    *every* one of ``scopes``; otherwise 403 ``insufficient_scope`` with
    ``scope="..."`` naming the required scopes (RFC 6750 section 3.1)."""
    return _wsgi_decorator(_scope_requirement(scopes, "all", "require_scope"))


def require_any_scope(*scopes: str) -> Callable[[_App], _App]:
    """Decorate a WSGI callable so it runs only for a valid token that has
    *at least one* of ``scopes``; otherwise 403 ``insufficient_scope``."""
    return _wsgi_decorator(_scope_requirement(scopes, "any", "require_any_scope"))


def require_scope_groups(*groups: Any) -> Callable[[_App], _App]:
    """Decorate a WSGI callable so it runs only for a valid token that has
    every scope of *at least one* group; each group is a space-delimited
    str or a list: ``@require_scope_groups("contacts wte", "coordinate")``.
    Otherwise 403 ``insufficient_scope``; ``scope="..."`` names the group
    the token is closest to (see :mod:`oidc_guard.rules`)."""
    return _wsgi_decorator(ScopeGroups.parse(groups))


def require_claims(_claims: Optional[Any] = None, /, **rules: Any) -> Callable[[_App], _App]:
    """Decorate a WSGI callable so it runs only for a valid token whose
    claims satisfy every rule: a value to compare (``tenant="acme"``),
    ``includes(...)`` (``roles=includes("admin")``) or a predicate
    (``amr=lambda v: "mfa" in v``).  A mapping as the first argument gives
    claim names that are not Python identifiers.  Otherwise 403
    ``insufficient_claims`` naming the claim, never its values."""
    return _wsgi_decorator(ClaimRules.parse(_claims, rules))


def require_issuer(*issuers: str) -> Callable[[_App], _App]:
    """Decorate a WSGI callable so it runs only for a valid token from one of
    ``issuers`` (exact match with the verified ``iss``): routes only one
    tenant may call behind a :class:`~oidc_guard.MultiIssuerValidator`.
    Otherwise 403 ``insufficient_claims``."""
    return _wsgi_decorator(IssuerRule(issuers))
