"""Authentication of one request, framework-free: the core every adapter
(WSGI, Flask, and the ones to come) translates to and from.

An adapter turns its framework's request into
:class:`~oidc_guard.credentials.RequestFacts`, calls
:meth:`Authenticator.authenticate`, keeps the :class:`AuthResult` where its
framework keeps per-request state (the WSGI environ, ``oidc_guard.result``)
and turns a refusal into its framework's response
(:meth:`Authenticator.refusal`, :meth:`AuthResult.render`).  It decides
nothing about tokens.

:meth:`Authenticator.authenticate` runs these steps, each a method an
asynchronous adapter can call on its own (running the ones that may wait
on the network in a worker thread):

1. :meth:`~Authenticator.extract` -- the credential (RFC 6750 section 2,
   RFC 9449 section 7.1); a malformed request is ``InvalidRequest``.  Pure,
   except that it may read a form body through the facts.
2. :meth:`~Authenticator.precheck` -- refusals made before validating (a
   Bearer token where DPoP is required).  Pure.
3. :meth:`~Authenticator.validate` -- the validator (network I/O on a cache
   miss); never raises: every failure is an error value, a validator bug
   included (logged at ERROR, refused as ``InvalidToken``: never a 500).
4. :meth:`~Authenticator.bind` -- the sender binding (RFC 9449 DPoP proof
   and ``cnf.jkt``, RFC 8705 ``x5t#S256``); the DPoP replay store may do
   network I/O (Redis).
5. :meth:`~Authenticator.conclude` -- one metrics decision, the next DPoP
   nonce, the :class:`AuthResult`.

Refusals are logged at INFO, one line per request with the reason, on the
authenticator's logger (``oidc_guard.wsgi`` unless the adapter passes its
own), followed by ``oidc_guard.loghint.note_refusal()``.
"""


import logging
import threading
from typing import Any, Iterable, NamedTuple, Optional, Tuple, Union
from urllib.parse import urlsplit

from . import metrics as _metrics
from .claims import Claims, confirmation_keys, with_binding
from .credentials import DEFAULT_MAX_FORM_BYTES, Credential, RequestFacts, credential_from, request_url
from .dpop import DPoPNonces, DPoPProof, DPoPVerifier
from .errors import (
    ChallengeSettings,
    ConfigurationError,
    ErrorResponse,
    InvalidRequest,
    InvalidToken,
    OIDCGuardError,
    ProviderError,
    render_error,
)
from .loghint import note_refusal
from .mtls import check_certificate_binding
from .multi import members_of
from .protocols import AccessTokenValidator
from .rules import check_scope_names
from .resource import MetadataResponse, ResourceMetadata, authorization_servers_of, check_resource

__all__ = ["AuthResult", "Authenticator", "DPOP_MODES", "RequestFacts"]

#: The values of ``dpop=``.
DPOP_MODES = ("allowed", "required", "disabled")

# AuthResult(...) without the generated NamedTuple.__new__ (a Python frame):
# the same tuple, half the cost, for the results made on every request.
_new_result = tuple.__new__

_RFC_TOKEN = frozenset("!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")


class AuthResult(NamedTuple):
    """What authenticating one request found: one immutable record, made
    once by :meth:`Authenticator.authenticate` and read by everything after
    it (decorators, ``current_claims``, ``current_userinfo``), so nothing
    looks at the request's credentials a second time.

    ``credential``: the :class:`~oidc_guard.credentials.Credential`
    (``scheme``, ``source``, ``token``; the token is left out of its repr),
    ``None`` when the request carried none.  ``claims``: the
    :class:`~oidc_guard.Claims` of a valid token (its ``binding`` says how
    the request proved possession), else ``None``.  ``error``: why the
    token was refused (``InvalidToken``, ``ProviderError``, or
    ``InvalidRequest`` for a malformed request), else ``None``.  ``proof``:
    the verified DPoP proof.  ``challenge``: the challenge settings of the
    authenticator, for rendering refusals.  ``dpop_nonce``: a DPoP nonce
    to send in a ``DPoP-Nonce`` header of the response (RFC 9449 section
    9: the proof used the previous one), else ``None``.
    """

    credential: Optional[Credential]
    claims: Optional[Claims]
    error: Optional[OIDCGuardError]
    proof: Optional[DPoPProof]
    challenge: ChallengeSettings
    dpop_nonce: Optional[str] = None

    @property
    def token_present(self) -> bool:
        """``True`` when the request carried a token by a method accepted."""
        return self.credential is not None

    @property
    def scheme(self) -> Optional[str]:
        """``"bearer"`` or ``"dpop"``: the scheme the token came with."""
        return None if self.credential is None else self.credential.scheme

    @property
    def binding(self) -> Optional[str]:
        """:attr:`oidc_guard.Claims.binding` of a valid token, else ``None``."""
        return getattr(self.claims, "binding", None)

    def render(self, error: Optional[OIDCGuardError]) -> ErrorResponse:
        """``error`` (``None``: no token) rendered with this request's
        challenge settings and scheme (:func:`oidc_guard.errors.render_error`)."""
        return render_error(error, self.challenge, None if self.credential is None else self.credential.scheme)


class Authenticator:
    """The authentication policy of one protected application: which
    credentials are read, how they are validated and bound, and what a
    refusal's challenges offer.  The keywords are those of
    :class:`~oidc_guard.wsgi.BearerMiddleware` (see there), plus
    ``dpop_verifier`` (a ready :class:`~oidc_guard.dpop.DPoPVerifier`,
    instead of the ``dpop_*`` settings; ``dpop=`` may also be the verifier
    itself, meaning ``"allowed"`` with it) and ``logger`` (the logger of the
    refusal lines; default ``oidc_guard.wsgi``).

    ``resource`` (RFC 9728, RFC 8707): this API's resource identifier, an
    ``https`` URL such as ``"https://api.example.com/contacts"``.  With it
    the authenticator publishes the protected resource metadata
    (:attr:`metadata`, answered by :meth:`metadata_response`), every
    challenge carries ``resource_metadata`` (RFC 9728 section 5.1), and an
    audience refusal names the resource.  A validator that does not check
    the audience (``verify_audience=False``) is a
    :class:`~oidc_guard.ConfigurationError` then: the document invites
    clients to get tokens for this resource, and a token for any other
    resource must not be accepted (RFC 8707; the MCP authorization spec
    forbids token passthrough).  A validator whose audiences do not
    include the resource is logged at WARNING once, at construction: it
    may be right (a provider whose ``aud`` is a logical name such as
    ``api://contacts``), but tokens a client requests with
    ``resource=<this URL>`` (RFC 8707 section 2) will then be refused.
    ``scopes_supported``: the scopes published in the document (optional;
    each an RFC 6749 scope token)."""

    def __init__(
        self,
        validator: AccessTokenValidator,
        *,
        realm: Optional[str] = None,
        required: bool = False,
        accept_form: bool = False,
        accept_query: bool = False,
        max_form_bytes: int = DEFAULT_MAX_FORM_BYTES,
        dpop: Union[str, DPoPVerifier] = "allowed",
        dpop_verifier: Optional[DPoPVerifier] = None,
        public_url: Optional[str] = None,
        client_cert_header: Optional[str] = None,
        dpop_algorithms: Optional[Iterable[str]] = None,
        dpop_max_age: float = 300.0,
        dpop_leeway: float = 30.0,
        dpop_nonce: bool = False,
        dpop_nonce_secret: Union[str, bytes, None] = None,
        dpop_nonce_step: float = 60.0,
        dpop_replay_store: Any = None,
        logger: Optional[logging.Logger] = None,
        resource: Optional[str] = None,
        scopes_supported: Optional[Iterable[str]] = None,
    ) -> None:
        if not callable(getattr(validator, "validate_access_token", None)):
            raise TypeError("validator must have a validate_access_token(token) method, e.g. a TokenValidator")
        if realm is not None and not isinstance(realm, str):
            raise TypeError("realm must be a str or None")
        if not isinstance(max_form_bytes, int) or max_form_bytes < 0:
            raise ValueError("max_form_bytes must be a non-negative int")
        if isinstance(dpop, DPoPVerifier):
            if dpop_verifier is not None and dpop_verifier is not dpop:
                raise ConfigurationError("pass the DPoPVerifier once: dpop=verifier or dpop_verifier=verifier")
            dpop_verifier = dpop
            dpop = "allowed"
        if dpop not in DPOP_MODES:
            raise ConfigurationError(f"dpop must be one of {list(DPOP_MODES)} or a DPoPVerifier, got {dpop!r}")
        self.validator = validator
        self.realm = realm
        self.required = bool(required)
        self.accept_form = bool(accept_form)
        self.accept_query = bool(accept_query)
        self.max_form_bytes = max_form_bytes
        self.dpop: str = dpop
        self.public_url = _check_public_url(public_url)
        self.client_cert_header = _check_cert_header(client_cert_header)
        self.logger = logger if logger is not None else logging.getLogger("oidc_guard.wsgi")
        self.dpop_verifier: Optional[DPoPVerifier] = None
        if dpop_verifier is not None:
            if not isinstance(dpop_verifier, DPoPVerifier):
                raise TypeError("dpop_verifier must be a DPoPVerifier")
            if dpop == "disabled":
                raise ConfigurationError("a DPoPVerifier was given but dpop='disabled'")
            settings = (dpop_algorithms is not None or dpop_max_age != 300.0 or dpop_leeway != 30.0
                        or dpop_nonce or dpop_nonce_secret is not None or dpop_nonce_step != 60.0
                        or dpop_replay_store is not None)
            if settings:
                # Two sources of truth for one verifier: refuse rather than
                # silently ignore the dpop_* keywords.
                raise ConfigurationError("a ready DPoPVerifier was given: configure it there, not with dpop_* keywords")
            self.dpop_verifier = dpop_verifier
        elif dpop != "disabled":
            try:
                nonces = DPoPNonces(dpop_nonce_secret, step=dpop_nonce_step) if dpop_nonce else None
                self.dpop_verifier = DPoPVerifier(
                    algorithms=dpop_algorithms,
                    max_age=dpop_max_age,
                    leeway=dpop_leeway,
                    replay_store=dpop_replay_store if dpop_replay_store is not None else replay_store_for(validator),
                    nonces=nonces,
                )
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"DPoP settings: {exc}") from None
        elif dpop_nonce:
            raise ConfigurationError("dpop_nonce needs DPoP: dpop='allowed' or 'required'")
        #: The protected resource metadata (RFC 9728), or ``None`` without ``resource``.
        self.metadata: Optional[ResourceMetadata] = self._build_metadata(resource, scopes_supported)
        #: This API's resource identifier (RFC 8707), or ``None``.
        self.resource: Optional[str] = None if self.metadata is None else self.metadata.resource
        #: What every refusal's challenges offer (oidc_guard.errors.render_error).
        self.challenge = ChallengeSettings(realm, dpop, self.dpop_verifier.algs_value if self.dpop_verifier else "",
                                           self.metadata.challenge_params if self.metadata is not None else ())
        # The result of every request without a token: one shared record.
        self._anonymous = AuthResult(None, None, None, None, self.challenge)
        self._read_dpop = dpop != "disabled"
        self._header_only = not self.accept_form and not self.accept_query
        self._bearer_refused = dpop == "required"
        # The WARNING that the proofs' htu is checked against the Host header
        # (no public_url) is logged once per authenticator, at its first DPoP
        # request (see _warn_no_public_url).
        self._public_url_warned = self.public_url is not None
        self._warn_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Authenticator(realm={self.realm!r}, required={self.required}, accept_form={self.accept_form}, "
                f"accept_query={self.accept_query}, dpop={self.dpop!r})")

    # --- the whole pipeline -------------------------------------------------------------
    def authenticate(self, facts: RequestFacts) -> AuthResult:
        """Authenticate one request: never raises for anything the request
        contains (see the module doc for the steps)."""
        if facts.authorization is None and self._header_only:
            credential = None  # nowhere else to look: step 1 has nothing to do
        else:
            try:
                credential = self.extract(facts)
            except InvalidRequest as exc:
                return self.malformed(exc, facts)
        if credential is None:
            if self.required:
                self.logger.info("no bearer token %s; a token is required", where(facts))
                note_refusal(self.logger)
            return self._anonymous
        claims: Any = None
        proof: Optional[DPoPProof] = None
        # precheck() has nothing to do for a Bearer token where DPoP is not
        # required, nor for a DPoP one once the public_url warning is out.
        scheme = credential.scheme
        error = self.precheck(credential, facts) \
            if (self._bearer_refused if scheme == "bearer" else not self._public_url_warned) else None
        if error is None:
            claims, error = self.validate(credential, facts)
            if error is None:
                claims, error, proof = self.bind(claims, credential, facts)
        return self.conclude(credential, claims, error, proof)

    def refusal(self, result: AuthResult) -> Optional[ErrorResponse]:
        """The response the adapter must send *instead of* running the
        application, or ``None`` to go on: a malformed request always
        (400, whatever ``required`` says), and with ``required=True`` every
        request without a valid token (401, or 503 while the provider is
        unusable)."""
        error = result.error
        if error is None:
            if result.claims is not None or not self.required:
                return None
        elif not self.required and not isinstance(error, InvalidRequest):
            return None
        return result.render(error)

    # --- the steps ----------------------------------------------------------------------
    def extract(self, facts: RequestFacts) -> Optional[Credential]:
        """Step 1: the request's credential, ``None`` when it has none;
        raises :class:`~oidc_guard.InvalidRequest` for a malformed one."""
        return credential_from(facts, dpop=self._read_dpop, accept_form=self.accept_form,
                               accept_query=self.accept_query, max_form_bytes=self.max_form_bytes)

    def malformed(self, exc: InvalidRequest, facts: RequestFacts) -> AuthResult:
        """The result of a request whose credentials :meth:`extract` refused."""
        self.logger.info("malformed bearer request %s reason=%s: %s", where(facts), exc.reason, exc.description)
        note_refusal(self.logger)
        return AuthResult(None, None, exc, None, self.challenge)

    def precheck(self, credential: Credential, facts: RequestFacts) -> Optional[OIDCGuardError]:
        """Step 2: a refusal decided before validating, else ``None``."""
        if credential.scheme == "dpop":
            if not self._public_url_warned:
                self._warn_no_public_url()
            return None
        if self._bearer_refused:
            # This API accepts no bearer tokens (RFC 9449 section 7.1).
            error = InvalidToken("this API accepts only DPoP-bound tokens: send Authorization: DPoP with a DPoP "
                                 "proof (RFC 9449)", reason="binding")
            self.logger.info("rejected bearer token %s reason=%s: %s", where(facts), error.reason, error.description)
            note_refusal(self.logger)
            return error
        return None

    def validate(self, credential: Credential, facts: RequestFacts) -> Tuple[Any, Optional[OIDCGuardError]]:
        """Step 3: ``(claims, None)``, or ``(None, error)``; never raises."""
        try:
            return self.validator.validate_access_token(credential.token), None
        except ProviderError as exc:
            # INFO, not WARNING: the key set (oidc_guard.jwks) logs the cause at
            # WARNING once when an outage starts and once when it ends; a line
            # per request at WARNING would flood the logs during an outage.
            self.logger.info("identity provider unusable %s reason=%s: %s", where(facts), exc.reason, exc.description)
            note_refusal(self.logger)
            return None, exc
        except InvalidToken as exc:
            if exc.reason == "audience" and self.resource is not None and self.resource not in exc.description:
                exc = self._audience_error(exc)
            self.logger.info("rejected bearer token %s reason=%s: %s", where(facts), exc.reason, exc.description)
            note_refusal(self.logger)
            return None, exc
        except OIDCGuardError as exc:
            # Another library error from the validator (none is expected): still
            # a token problem, answered like an invalid token.
            self.logger.info("rejected bearer token %s reason=%s: %s", where(facts), exc.reason, exc.description)
            note_refusal(self.logger)
            return None, InvalidToken(exc.description, reason=exc.reason)
        except Exception:
            # A bug in the validator.  It must be visible (traceback at ERROR)
            # but must not become a 500 that a client can trigger at will.
            self.logger.exception("the token validator raised an unexpected error %s reason=internal", where(facts))
            return None, InvalidToken("token could not be validated", reason="internal")

    def bind(self, claims: Any, credential: Credential, facts: RequestFacts
             ) -> Tuple[Any, Optional[OIDCGuardError], Optional[DPoPProof]]:
        """Step 4: check that the request satisfies the token's ``cnf``
        (``oidc_guard.claims.confirmation_keys()``).  Returns ``(claims
        with their binding, None, verified proof or None)`` or ``(None,
        error, None)``; never raises."""
        scheme = credential.scheme
        proof: Optional[DPoPProof] = None
        binding: Optional[str] = None
        try:
            jkt, x5t = confirmation_keys(claims)
            if scheme == "dpop":
                # RFC 9449 section 7.1: the DPoP scheme is for DPoP-bound tokens.
                if jkt is None:
                    raise InvalidToken("token is not DPoP-bound (no cnf.jkt); send it with the Bearer scheme",
                                       reason="binding")
                if not isinstance(jkt, str):
                    raise InvalidToken("token cnf.jkt is not a string", reason="binding")
                assert self.dpop_verifier is not None
                # The DPoP field value itself (no header list to build and
                # search; the same checks).  Repeated fields arrive joined with
                # commas; the verifier splits them again and refuses two proofs.
                proof = self.dpop_verifier.verify_field(
                    facts.method, request_url(facts, self.public_url), facts.dpop, credential.token, jkt)
                binding = "dpop"
            elif jkt is not None:
                # RFC 9449 section 7.2: a DPoP-bound token must not be accepted
                # as a bearer token, or stealing it would be enough again.
                raise InvalidToken("token is DPoP-bound (cnf.jkt); send it with the DPoP scheme and a DPoP proof",
                                   reason="binding")
            if x5t is not None:
                # RFC 8705 section 3: only with the certificate it is bound to.
                check_certificate_binding(x5t, *facts.client_certificate(self.client_cert_header))
                binding = binding or "mtls"
        except ProviderError as exc:  # the replay store cannot answer: fail closed
            self.logger.info("DPoP replay store unusable %s reason=%s: %s", where(facts), exc.reason, exc.description)
            note_refusal(self.logger)
            return None, exc, None
        except InvalidToken as exc:
            self.logger.info("rejected %s token %s reason=%s: %s", "DPoP" if scheme == "dpop" else "bearer",
                             where(facts), exc.reason, exc.description)
            note_refusal(self.logger)
            return None, exc, None
        except Exception:  # a bug must not become a 500 a client can trigger
            self.logger.exception("checking the token binding raised an unexpected error %s reason=internal",
                                  where(facts))
            return None, InvalidToken("token binding could not be checked", reason="internal"), None
        if binding is not None:
            claims = with_binding(claims, binding)
        return claims, None, proof

    def conclude(self, credential: Credential, claims: Any, error: Optional[OIDCGuardError],
                 proof: Optional[DPoPProof]) -> AuthResult:
        """Step 5: count the decision (one per request with a credential,
        after the binding check: :mod:`oidc_guard.metrics`) and make the
        result."""
        if _metrics.active is not None:
            _metrics.record_decision(error)
        if error is not None:
            return _new_result(AuthResult, (credential, None, error, None, self.challenge, None))
        nonce = None
        if proof is not None and proof.nonce_state == "previous":
            nonces = self.dpop_verifier.nonces if self.dpop_verifier is not None else None
            if nonces is not None:
                # RFC 9449 section 9: hand out the next nonce before this one expires.
                nonce = nonces.current()
        return _new_result(AuthResult, (credential, claims, None, proof, self.challenge, nonce))

    # --- protected resource metadata (RFC 9728) ----------------------------------------
    def metadata_response(self, method: str, path: str) -> Optional[MetadataResponse]:
        """The answer to a request for the protected resource metadata, or
        ``None`` when ``path`` is not the document's (or no ``resource`` is
        set): every adapter calls this first, before authenticating, and
        sends the answer as it is (the document is public: no token is
        looked at, even with ``required=True``).  ``method``: the request
        method; ``path``: the request's whole path on this host (the
        application's mount point followed by the path within it: WSGI
        ``SCRIPT_NAME`` + ``PATH_INFO``, ASGI ``root_path`` + ``path``),
        raw or percent-decoded.  See :mod:`oidc_guard.resource` for the
        answers (200, 204 preflight, 405)."""
        metadata = self.metadata
        if metadata is None or not metadata.matches(path):
            return None
        return metadata.response(method)

    def _build_metadata(self, resource: Optional[str], scopes: Optional[Iterable[str]]) -> Optional[ResourceMetadata]:
        if resource is None:
            if scopes is not None:
                raise ConfigurationError("scopes_supported is published in the protected resource metadata, "
                                         "which needs resource= (this API's URL)")
            return None
        resource = check_resource(resource)
        scope_list: Optional[Tuple[str, ...]] = None
        if scopes is not None:
            if isinstance(scopes, str):
                raise ConfigurationError("scopes_supported takes a list of scope names, not one str")
            scope_list = tuple(dict.fromkeys(scopes))
            try:
                check_scope_names(scope_list, "scopes_supported")
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(str(exc)) from None
        self._check_audiences(resource)
        methods = ["header"]
        if self.accept_form:
            methods.append("body")
        if self.accept_query:
            methods.append("query")
        verifier = self.dpop_verifier
        return ResourceMetadata(
            resource,
            authorization_servers=authorization_servers_of(self.validator),
            bearer_methods=methods,
            scopes_supported=scope_list,
            dpop_algorithms=None if verifier is None else verifier.algorithms,
            dpop_required=self.dpop == "required",
            # Certificate-bound tokens (RFC 8705) are announced only when a
            # trusted proxy is configured to pass the client certificate:
            # without client_cert_header nothing says the server asks for one.
            tls_client_certificate_bound=self.client_cert_header is not None)

    def _check_audiences(self, resource: str) -> None:
        """RFC 8707 section 2 / the MCP authorization spec: tokens for this
        resource only (see the class doc)."""
        for member in members_of(self.validator):
            if getattr(member, "verify_audience", True) is False:
                raise ConfigurationError(
                    f"resource={resource!r} needs a validator that checks the audience: a token for any other "
                    f"resource would be accepted here (RFC 8707); remove verify_audience=False (the audience "
                    f"defaults to the resource in the Flask and Django settings)")
            audiences = getattr(member, "audiences", None)
            if isinstance(audiences, (tuple, list)) and audiences and resource not in audiences:
                self.logger.warning(
                    "resource=%r is not among the audiences %r of the validator for %r: tokens a client requests "
                    "for this resource (RFC 8707 resource=%s) will be refused with reason=audience; add the "
                    "resource to the audience unless the provider always issues %r", resource, list(audiences),
                    getattr(member, "issuer", "?"), resource, list(audiences))

    def _audience_error(self, exc: InvalidToken) -> InvalidToken:
        """An audience refusal that names this resource too (RFC 8707)."""
        return InvalidToken(f"token is not for this resource {resource_shown(self.resource)}: {exc.description}",
                            reason="audience")

    # --- helpers ------------------------------------------------------------------------
    def request_url(self, facts: RequestFacts) -> str:
        """The URL a DPoP proof's ``htu`` must name for this request
        (:func:`oidc_guard.credentials.request_url` with ``public_url``)."""
        return request_url(facts, self.public_url)

    def _warn_no_public_url(self) -> None:
        """Say once that, without ``public_url``, the URL a DPoP proof must
        name (RFC 9449 section 4.3 step 9, ``htu``) is rebuilt from the
        request's ``Host`` header, which the client chooses: right when the
        server is reached directly, wrong behind a proxy that rewrites the
        host (good proofs refused) and weaker wherever a proof made for
        another host could be replayed here."""
        with self._warn_lock:
            if self._public_url_warned:
                return
            self._public_url_warned = True
        self.logger.warning(
            "DPoP request received but public_url is not set: the URL each DPoP proof's htu must name is "
            "built from the request's Host header, which the client controls; set public_url "
            "(BearerMiddleware(public_url=...), Flask OIDC_GUARD_PUBLIC_URL) to the scheme and host clients "
            "use, e.g. 'https://api.example.com'")


def resource_shown(resource: Optional[str]) -> str:
    return repr(resource)[:200]


def where(facts: RequestFacts) -> str:
    """``(GET '/path')`` for a log line; repr() so that control characters
    in a path cannot forge log lines."""
    return f"({facts.method} {facts.path!r})"


def replay_store_for(validator: Any) -> Any:
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
    # RFC 9110 section 5.1: field-name = token
    if not isinstance(name, str) or not name or not set(name) <= _RFC_TOKEN:
        raise ConfigurationError(f"client_cert_header must be a header name such as 'X-Client-Cert', got {name!r}")
    return name
