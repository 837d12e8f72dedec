"""WSGI layer: :class:`BearerMiddleware` and the WSGI scope decorators.

The middleware finds the bearer token of a request (RFC 6750 section 2,
:mod:`oidc_guard.credentials`), validates it once with a :class:`~oidc_guard.TokenValidator` and records the
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
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar, Union, cast, overload
from urllib.parse import quote, urlsplit

# Credential extraction (RFC 6750 section 2, RFC 9449 section 7.1) lives in
# oidc_guard.credentials; extract_token and extract_credentials stay
# importable from here (__all__).
from .credentials import (
    _AUTH_SCHEME,
    _DEFAULT_MAX_FORM_BYTES,
    Credential,
    extract_credentials,
    extract_token,
    find_credential,
)
from .dpop import DPoPNonces, DPoPProof, DPoPVerifier, InvalidDPoPProof, UseDPoPNonce
from .errors import (
    ConfigurationError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    OIDCGuardError,
    ProviderError,
    error_response,
    join_challenges,
    www_authenticate,
)
from . import metrics as _metrics
from .loghint import note_refusal
from .mtls import check_certificate_binding
from .protocols import AccessTokenValidator
from .rules import ClaimRules, InsufficientClaims, IssuerRule, Rule, ScopeGroups, check_scope_names, includes

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
    "extract_credentials",
    "Credential",
    "ENVIRON_CLAIMS",
    "ENVIRON_CREDENTIAL",
    "ENVIRON_SCHEME",
    "ENVIRON_ERROR",
    "ENVIRON_TOKEN_PRESENT",
    "ENVIRON_REALM",
]

logger = logging.getLogger("oidc_guard.wsgi")

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
# (dpop mode, algs) of the middleware, for the challenges of the decorators
ENVIRON_CHALLENGE = "oidc_guard.challenge"

_StartResponse = Callable[..., Any]
_WSGIApp = Callable[[Dict[str, Any], _StartResponse], Iterable[bytes]]


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
        dpop: str = "allowed",
        public_url: Optional[str] = None,
        client_cert_header: Optional[str] = None,
        dpop_algorithms: Optional[Iterable[str]] = None,
        dpop_max_age: float = 300.0,
        dpop_leeway: float = 30.0,
        dpop_nonce: bool = False,
        dpop_nonce_secret: Union[str, bytes, None] = None,
        dpop_nonce_step: float = 60.0,
        dpop_replay_store: Any = None,
    ) -> None:
        if not callable(getattr(validator, "validate_access_token", None)):
            raise TypeError("validator must have a validate_access_token(token) method, e.g. a TokenValidator")
        if realm is not None and not isinstance(realm, str):
            raise TypeError("realm must be a str or None")
        if not isinstance(max_form_bytes, int) or max_form_bytes < 0:
            raise ValueError("max_form_bytes must be a non-negative int")
        if dpop not in _DPOP_MODES:
            raise ConfigurationError(f"dpop must be one of {list(_DPOP_MODES)}, got {dpop!r}")
        self.app = app
        self.validator = validator
        self.realm = realm
        self.required = bool(required)
        self.accept_form = bool(accept_form)
        self.accept_query = bool(accept_query)
        self.max_form_bytes = max_form_bytes
        self.dpop = dpop
        self.public_url = _check_public_url(public_url)
        self.client_cert_header = _check_cert_header(client_cert_header)
        self._cert_environ_key = (
            "HTTP_" + self.client_cert_header.upper().replace("-", "_") if self.client_cert_header else None
        )
        self.dpop_verifier: Optional[DPoPVerifier] = None
        if dpop != "disabled":
            try:
                nonces = DPoPNonces(dpop_nonce_secret, step=dpop_nonce_step) if dpop_nonce else None
                self.dpop_verifier = DPoPVerifier(
                    algorithms=dpop_algorithms,
                    max_age=dpop_max_age,
                    leeway=dpop_leeway,
                    replay_store=dpop_replay_store if dpop_replay_store is not None else _replay_store_for(validator),
                    nonces=nonces,
                )
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"DPoP settings: {exc}") from None
        elif dpop_nonce:
            raise ConfigurationError("dpop_nonce needs DPoP: dpop='allowed' or 'required'")
        # What a decorator needs to build the challenges (see _error_response).
        self._challenge = (dpop, self.dpop_verifier.algs_value if self.dpop_verifier else "")
        # The WARNING that the proofs' htu is checked against the Host header
        # (no public_url) is logged once per middleware, at its first DPoP
        # request (see _warn_no_public_url).
        self._public_url_warned = self.public_url is not None
        self._warn_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"BearerMiddleware({self.app!r}, realm={self.realm!r}, required={self.required}, "
            f"accept_form={self.accept_form}, accept_query={self.accept_query}, dpop={self.dpop!r})"
        )

    def __call__(self, environ: Dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        environ[ENVIRON_CLAIMS] = None
        environ[ENVIRON_ERROR] = None
        environ[ENVIRON_TOKEN_PRESENT] = False
        environ[ENVIRON_REALM] = self.realm
        environ[ENVIRON_SCHEME] = None
        environ[ENVIRON_CREDENTIAL] = None
        environ[ENVIRON_CHALLENGE] = self._challenge

        try:
            found = find_credential(
                environ,
                dpop=self.dpop != "disabled",
                accept_form=self.accept_form,
                accept_query=self.accept_query,
                max_form_bytes=self.max_form_bytes,
            )
        except InvalidRequest as exc:
            logger.info("malformed bearer request %s reason=%s: %s", _where(environ), exc.reason, exc.description)
            note_refusal(logger)
            return _send(start_response, _error_response(environ, exc))

        if found is None:
            if self.required:
                logger.info("no bearer token %s; a token is required", _where(environ))
                note_refusal(logger)
                return _send(start_response, _error_response(environ, None))
            return self.app(environ, start_response)

        scheme, token = found.scheme, found.token
        environ[ENVIRON_TOKEN_PRESENT] = True
        environ[ENVIRON_SCHEME] = scheme
        environ[ENVIRON_CREDENTIAL] = found
        if scheme == "dpop" and not self._public_url_warned:
            self._warn_no_public_url()
        if scheme == "bearer" and self.dpop == "required":
            # Checked before validating: this API accepts no bearer tokens.
            error: Optional[OIDCGuardError] = InvalidToken(
                "this API accepts only DPoP-bound tokens: send Authorization: DPoP with a DPoP proof (RFC 9449)", reason="binding")
            logger.info("rejected bearer token %s reason=%s: %s", _where(environ), error.reason, error.description)  # type: ignore[union-attr]
            note_refusal(logger)
            proof = None
        else:
            error, proof = self._authenticate(environ, scheme, token)
        if _metrics.active is not None:  # one decision per request, after the binding check
            _metrics.record_decision(error)
        if error is None:
            if proof is not None and proof.nonce_state == "previous" and self.dpop_verifier is not None \
                    and self.dpop_verifier.nonces is not None:
                # RFC 9449 section 9: hand out the next nonce before this one expires.
                return self.app(environ, _add_header(start_response, "DPoP-Nonce",
                                                     self.dpop_verifier.nonces.current()))
            return self.app(environ, start_response)
        environ[ENVIRON_ERROR] = error
        if self.required:
            return _send(start_response, _error_response(environ, error))
        return self.app(environ, start_response)

    # --- sender-constrained tokens (RFC 9449, RFC 8705) ----------------------------
    def _authenticate(self, environ: Dict[str, Any], scheme: str, token: str) -> Tuple[Optional[OIDCGuardError], Optional[DPoPProof]]:
        """Validate the token, then check how it is bound; on success put the
        Claims in the environ.  Returns (error, verified DPoP proof)."""
        claims, error = _validated(self.validator, token, environ)
        if error is not None:
            return error, None
        assert claims is not None
        proof: Optional[DPoPProof] = None
        binding: Optional[str] = None
        try:
            cnf = claims.get("cnf") if hasattr(claims, "get") else None
            if cnf is not None and type(cnf) is not dict and not isinstance(cnf, Mapping):
                raise InvalidToken("token cnf claim is not an object (RFC 7800 section 3.1)", reason="binding")
            jkt = cnf.get("jkt") if cnf is not None else None
            x5t = cnf.get("x5t#S256") if cnf is not None else None
            if scheme == "dpop":
                # RFC 9449 section 7.1: the DPoP scheme is for DPoP-bound tokens.
                if jkt is None:
                    raise InvalidToken("token is not DPoP-bound (no cnf.jkt); send it with the Bearer scheme", reason="binding")
                if not isinstance(jkt, str):
                    raise InvalidToken("token cnf.jkt is not a string", reason="binding")
                assert self.dpop_verifier is not None
                # verify() on the HTTP_DPOP value itself (no header list to
                # build and search; the same checks).  PEP 3333: repeated
                # request headers arrive joined with commas in one HTTP_DPOP;
                # the verifier splits them again and refuses two proofs.
                proof = self.dpop_verifier._verify_header_value(
                    environ.get("REQUEST_METHOD", "GET"), self.request_url(environ),
                    environ.get("HTTP_DPOP"), token, jkt)
                binding = "dpop"
            elif jkt is not None:
                # RFC 9449 section 7.2: a DPoP-bound token must not be accepted
                # as a bearer token, or stealing it would be enough again.
                raise InvalidToken("token is DPoP-bound (cnf.jkt); send it with the DPoP scheme and a DPoP proof", reason="binding")
            if x5t is not None:
                # RFC 8705 section 3: only with the certificate it is bound to.
                check_certificate_binding(x5t, *self._client_certificate(environ))
                binding = binding or "mtls"
        except ProviderError as exc:  # the replay store cannot answer: fail closed
            logger.info("DPoP replay store unusable %s reason=%s: %s", _where(environ), exc.reason, exc.description)
            note_refusal(logger)
            return exc, None
        except InvalidToken as exc:
            logger.info("rejected %s token %s reason=%s: %s", "DPoP" if scheme == "dpop" else "bearer",
                        _where(environ), exc.reason, exc.description)
            note_refusal(logger)
            return exc, None
        except Exception:  # a bug must not become a 500 a client can trigger
            logger.exception("checking the token binding raised an unexpected error %s reason=internal", _where(environ))
            return InvalidToken("token binding could not be checked", reason="internal"), None
        if binding is not None and hasattr(claims, "_with_binding"):
            claims = claims._with_binding(binding)
        environ[ENVIRON_CLAIMS] = claims
        subject = getattr(claims, "subject", None)
        if subject:
            environ["REMOTE_USER"] = subject
        return None, proof

    def _warn_no_public_url(self) -> None:
        """Say once that, without ``public_url``, the URL a DPoP proof must
        name (RFC 9449 section 4.3 step 9, ``htu``) is rebuilt from the
        request's ``Host`` header, which the client chooses: right when the
        WSGI server is reached directly, wrong behind a proxy that rewrites
        the host (good proofs refused) and weaker wherever a proof made for
        another host could be replayed here."""
        with self._warn_lock:
            if self._public_url_warned:
                return
            self._public_url_warned = True
        logger.warning(
            "DPoP request received but public_url is not set: the URL each DPoP proof's htu must name is "
            "built from the request's Host header, which the client controls; set public_url "
            "(BearerMiddleware(public_url=...), Flask OIDC_GUARD_PUBLIC_URL) to the scheme and host clients "
            "use, e.g. 'https://api.example.com'")

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
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        quoted = _quote_path(path) if len(path) <= _QUOTE_MEMO_MAX_PATH else _quote_path.__wrapped__(path)
        if self.public_url is not None:
            return self.public_url + quoted
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST")
        if not host:
            host = environ.get("SERVER_NAME", "localhost")
            port = str(environ.get("SERVER_PORT", ""))
            if port and port != ("443" if scheme == "https" else "80"):
                host = f"{host}:{port}"
        return f"{scheme}://{host}{quoted}"

    def _client_certificate(self, environ: Dict[str, Any]) -> Tuple[Optional[str], str]:
        """(certificate text, where it came from): the trusted proxy's header
        when ``client_cert_header`` is set (and then only it), else the WSGI
        server's ``SSL_CLIENT_CERT``."""
        if self._cert_environ_key is not None:
            return environ.get(self._cert_environ_key), f"header {self.client_cert_header}"
        return environ.get("SSL_CLIENT_CERT"), "SSL_CLIENT_CERT"


_DPOP_MODES = ("allowed", "required", "disabled")


def _check_public_url(url: Optional[str]) -> Optional[str]:
    if url is None:
        return None
    if not isinstance(url, str):
        raise ConfigurationError("public_url must be a str such as 'https://api.example.com'")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or "@" in parts.netloc:
        raise ConfigurationError(
            f"public_url must be scheme://host[:port][/path prefix] without query, e.g. "
            f"'https://api.example.com', got {url!r}")
    return url.rstrip("/")


def _check_cert_header(name: Optional[str]) -> Optional[str]:
    if name is None:
        return None
    if not isinstance(name, str) or _AUTH_SCHEME.fullmatch(name) is None:
        raise ConfigurationError(f"client_cert_header must be a header name such as 'X-Client-Cert', got {name!r}")
    return name


def _replay_store_for(validator: Any) -> Any:
    """The DPoP replay store: the validator's shared cache (Redis) when it
    has one, so every worker and host sees every jti; else ``None`` (the
    verifier's in-process default).  A MultiIssuerValidator's members are
    searched in order."""
    candidates = [validator] + list(getattr(validator, "validators", ()) or ())
    for candidate in candidates:
        cache = getattr(candidate, "shared_cache", None)
        if cache is not None and getattr(cache, "shared", False) and callable(getattr(cache, "add", None)):
            namespaced = getattr(cache, "namespaced", None)
            return namespaced("oidc_guard:") if callable(namespaced) else cache
    return None


# request_url() quotes the request path for every DPoP request: a pure
# function of the path string, memoised for the few paths an API has
# (bounded: 1,024 entries of at most 512 characters; longer paths are quoted
# without the memo).
_QUOTE_MEMO_MAX_PATH = 512


@functools.lru_cache(maxsize=1024)
def _quote_path(path: str) -> str:
    return quote(path.encode("latin-1", "replace"), safe="/!$&'()*+,;=:@~-._")


def _add_header(start_response: _StartResponse, name: str, value: str) -> _StartResponse:
    def start(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        headers = list(headers) + [(name, value)]
        if exc_info is not None:
            return start_response(status, headers, exc_info)
        return start_response(status, headers)

    return start


def _where(environ: Dict[str, Any]) -> str:
    # repr() so that control characters in a path cannot forge log lines.
    return f"({environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')!r})"


def _validated(validator: AccessTokenValidator, token: str, environ: Dict[str, Any]
               ) -> Tuple[Any, Optional[OIDCGuardError]]:
    """Validate ``token``: ``(claims, None)``, or ``(None, error)`` (never
    raises for a token problem)."""
    try:
        return validator.validate_access_token(token), None
    except ProviderError as exc:
        # INFO, not WARNING: the key set (oidc_guard.jwks) logs the cause at
        # WARNING once when an outage starts and once when it ends; a line
        # per request at WARNING would flood the logs during an outage.
        logger.info("identity provider unusable %s reason=%s: %s", _where(environ), exc.reason, exc.description)
        note_refusal(logger)
        return None, exc
    except InvalidToken as exc:
        logger.info("rejected bearer token %s reason=%s: %s", _where(environ), exc.reason, exc.description)
        note_refusal(logger)
        return None, exc
    except OIDCGuardError as exc:
        # Another library error from the validator (none is expected): still
        # a token problem, answered like an invalid token.
        logger.info("rejected bearer token %s reason=%s: %s", _where(environ), exc.reason, exc.description)
        note_refusal(logger)
        return None, InvalidToken(exc.description, reason=exc.reason)
    except Exception:
        # A bug in the validator.  It must be visible (traceback at ERROR)
        # but must not become a 500 that a client can trigger at will.
        logger.exception("the token validator raised an unexpected error %s reason=internal", _where(environ))
        return None, InvalidToken("token could not be validated", reason="internal")


def _error_response(environ: Dict[str, Any], exc: Optional[OIDCGuardError]) -> Tuple[str, List[Tuple[str, str]], bytes]:
    """:func:`oidc_guard.errors.error_response` with the challenges of the
    schemes the middleware accepts (RFC 9449 section 7.1): a ``Bearer``
    challenge unless DPoP is required, a ``DPoP`` challenge with ``algs``
    unless DPoP is disabled.

    Order: the challenge of the scheme the request used comes first and
    carries the ``error`` (a request without a token counts as Bearer);
    the other scheme's challenge follows, bare (401 only: a 400 or 403
    answers the scheme that was used).  A bad Bearer token therefore leads
    with ``Bearer ... error="invalid_token"`` and a DPoP client (one that
    retries on ``use_dpop_nonce``) finds its ``DPoP`` challenge first.

    Layout: one ``WWW-Authenticate`` field holding the challenges
    comma-separated (see :func:`oidc_guard.errors.join_challenges`), so that
    every way of reading a header gets the same value.  A ``use_dpop_nonce``
    error adds the ``DPoP-Nonce`` header."""
    realm = environ.get(ENVIRON_REALM)
    status, headers, body = error_response(exc, realm)
    mode, algs = environ.get(ENVIRON_CHALLENGE) or ("disabled", "")
    if mode == "disabled" or not any(name == "WWW-Authenticate" for name, _ in headers):
        return status, headers, body
    used = environ.get(ENVIRON_SCHEME)
    if isinstance(exc, InvalidDPoPProof):
        used = "dpop"
    elif used is None or (mode == "required" and used == "bearer"):
        used = "dpop" if mode == "required" else "bearer"
    code = error_code = description = None
    scope = None
    if exc is not None:
        code = exc.status
        error_code, description = exc.error, exc.description
        scope = exc.scopes if isinstance(exc, InsufficientScope) else None
    challenges: List[str] = []
    order = ("dpop", "bearer") if used == "dpop" else ("bearer", "dpop")
    for scheme in order:
        if scheme == "bearer" and mode == "required":
            continue
        mine = scheme == used
        if not mine and code not in (None, 401):
            continue  # a 403/400 answers the scheme that was used
        challenges.append(www_authenticate(
            realm,
            error_code if mine else None,
            description if mine else None,
            scope if mine else None,
            scheme="Bearer" if scheme == "bearer" else "DPoP",
            algs=algs if scheme == "dpop" else None,
        ))
    out: List[Tuple[str, str]] = []
    for name, value in headers:
        if name == "WWW-Authenticate":
            out.append((name, join_challenges(challenges)))
            if isinstance(exc, UseDPoPNonce):
                out.append(("DPoP-Nonce", exc.nonce))
        else:
            out.append((name, value))
    return status, out, body


# --- decorators --------------------------------------------------------------


class _Requirement(Rule):
    """What a decorated resource needs: a valid token, and all (``mode ==
    "all"``) or any (``mode == "any"``) of ``scopes``."""

    __slots__ = ("scopes", "mode", "bound")

    def __init__(self, scopes: Tuple[str, ...], mode: str, bound: bool = False) -> None:
        self.scopes = scopes
        self.mode = mode
        #: the token must be sender-constrained (Claims.binding not None)
        self.bound = bound

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        if self.bound and getattr(claims, "binding", None) is None:
            # A sender-constrained route: a stolen bearer token must not work here.
            return InvalidToken(
                "this resource needs a sender-constrained token (DPoP, RFC 9449, or certificate-bound, RFC 8705)", reason="binding")
        if not self.scopes:
            return None
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


def _scope_requirement(scopes: Tuple[Any, ...], mode: str, name: str, bound: bool = False) -> _Requirement:
    """Check the scopes given to a decorator once, at decoration time."""
    if not scopes:
        raise TypeError(f"{name}() needs at least one scope; use require_token() for any valid token")
    check_scope_names(scopes, name)
    unique = tuple(dict.fromkeys(scopes))
    return _Requirement(unique, mode, bool(bound))


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
    claims = environ.get(ENVIRON_CLAIMS)
    if claims is None:
        # The middleware already logged why (rejected token, provider down).
        # error None = no token sent: bare challenge (RFC 6750 section 3.1).
        return _error_response(environ, environ.get(ENVIRON_ERROR))
    if requirement is None:
        return None
    denied = requirement.deny(claims)
    if denied is None:
        return None
    if isinstance(denied, InsufficientScope):
        logger.info("insufficient scope %s reason=%s: %s", _where(environ), denied.reason, denied.description)
    else:
        logger.info("access denied %s reason=%s: %s", _where(environ), denied.reason, denied.description)
    note_refusal(logger)
    return _error_response(environ, denied)


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
def require_token(app: _App, *, bound: bool = False) -> _App: ...
@overload
def require_token(app: None = None, *, bound: bool = False) -> Callable[[_App], _App]: ...


def require_token(app: Optional[_App] = None, *, bound: bool = False) -> Any:
    """Decorate a WSGI callable so it runs only for a request with a valid
    token (401 otherwise, 503 while the identity provider is unusable).

    ``bound=True``: the token must also be sender-constrained -- a DPoP
    token with its proof or a certificate-bound token with its certificate
    (``Claims.binding`` is ``"dpop"`` or ``"mtls"``); a plain bearer token
    gets 401 ``invalid_token``.

    Use as ``@require_token()``; ``@require_token`` works too.
    """
    decorate = _wsgi_decorator(_Requirement((), "all", True) if bound else None)
    if app is not None:
        return decorate(app)
    return decorate


def require_scope(*scopes: str, bound: bool = False) -> Callable[[_App], _App]:
    """Decorate a WSGI callable so it runs only for a valid token that has
    *every* one of ``scopes``; otherwise 403 ``insufficient_scope`` with
    ``scope="..."`` naming the required scopes (RFC 6750 section 3.1).
    ``bound=True`` as for :func:`require_token`."""
    return _wsgi_decorator(_scope_requirement(scopes, "all", "require_scope", bound))


def require_any_scope(*scopes: str, bound: bool = False) -> Callable[[_App], _App]:
    """Decorate a WSGI callable so it runs only for a valid token that has
    *at least one* of ``scopes``; otherwise 403 ``insufficient_scope``.
    ``bound=True`` as for :func:`require_token`."""
    return _wsgi_decorator(_scope_requirement(scopes, "any", "require_any_scope", bound))


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
