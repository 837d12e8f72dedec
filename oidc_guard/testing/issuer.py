""":class:`LocalIssuer`: an OpenID Provider stand-in on a loopback address,
for tests and the development demo. It puts the pieces together, each in
a module named for it: it is a :class:`~.tokens.Minter` (minting,
introspection, revocation), itself a :class:`~.keyring.KeyRing` (signing
keys, JWKS); it keeps the users and clients (:mod:`.accounts`), the faults
(:mod:`.faults`), the request counters and the settings of the
development provider, and serves on a loopback server (:mod:`.server`)
the HTTP endpoints of :mod:`.provider`, which reach the issuer only
through the :class:`~.endpoint.DevProvider` protocol (implemented here by
a small adapter, so that the issuer's own API stays what tests use).

**Test and development tool only. Never use it in production.**
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from typing import (TYPE_CHECKING, Any, Deque, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Type,
                    Union)

from .accounts import (DEFAULT_SPA_REDIRECT_URIS, DEV_CLI_CLIENT_ID, DEV_CLI_REDIRECT_URI, INTROSPECTION_CLIENT_ID,
                       INTROSPECTION_CLIENT_SECRET, client_record, client_table, user_by_subject, user_table)
from .endpoint import CodeStore, DevProvider
from .faults import Fault, FaultTable
from .jose import with_changes
from .keys import pyjwt_signer
from .provider import DevProviderHandler
from .server import LoopbackServer, bind_loopback, is_loopback_host
from .tokens import Minter

if TYPE_CHECKING:
    from ..dpop import DPoPVerifier

# The client constants are defined in .accounts; importable from here as before.
__all__ = ["LocalIssuer", "INTROSPECTION_CLIENT_ID", "INTROSPECTION_CLIENT_SECRET", "DEV_CLI_CLIENT_ID",
           "DEV_CLI_REDIRECT_URI"]

# The same logger as the development provider's endpoints.
log = logging.getLogger("oidc_guard.testing")


class LocalIssuer(Minter):
    """An OpenID Provider stand-in on a loopback address. Test/dev tool only.

    ``LocalIssuer(algs=("RS256",)).start()`` starts a real HTTP server in a
    daemon thread (``port=0``: an ephemeral port) and returns the issuer; it
    is also a context manager (``with LocalIssuer() as iss: ...``).

    Parameters:

    ``algs``
        one signing key is created per alg, in order; the first is the
        default signing key (:attr:`signing_kid`).
    ``host``
        must be a loopback address (127.0.0.0/8, ``::1`` or ``localhost``);
        anything else raises ``ValueError``: this server has hard-coded users
        and must never be reachable from the network.
    ``port``
        0 for an ephemeral port. After the first :meth:`start` the port is
        kept, so :meth:`stop` + :meth:`start` simulate an outage and recovery
        at the same URL (connections are refused while stopped).
    ``audience``
        ``aud`` of minted access tokens and of the dev provider's tokens.
    ``users`` / ``clients``
        for the dev provider. ``users``: ``{username: {"password": ...,
        "sub": ..., "acrs": [...], other claims}}`` or ``{username:
        password}``; ``acrs`` are the ``acr`` values the user can reach
        (default ``["urn:oidc-guard:loa:1"]``). ``clients``:
        ``{client_id: {"redirect_uris": [...], "scopes": "a b",
        "grant_types": [...], "secret": str or None, "resources": [...] or
        None}}``. Defaults: users alice/alice (acrs ``urn:oidc-guard:loa:1``
        and ``urn:oidc-guard:loa:2``) and bob/bob (``urn:oidc-guard:loa:1``
        only); client ``spa`` (public; implicit and
        authorization_code with PKCE; redirect URIs ``spa_redirect_uris``,
        default ``http://127.0.0.1:8080/`` and ``http://localhost:8080/``;
        scopes ``openid profile contacts wte coordinate``) and client
        ``wte-worker`` (secret ``wte-secret``; client_credentials; scope
        ``wte``), its twin ``wte-worker-ref`` (reference tokens), the API's
        introspection client, and ``dev-cli`` (public; authorization_code
        with PKCE; the client of ``python -m oidc_guard.testing token``).
        :meth:`register_client` adds or replaces clients later.
    ``token_lifetime``
        seconds; ``exp - iat`` of tokens from the dev provider, and the
        default of ``mint(expires_in=)``.
    ``client_token_sub``
        False (default, like IdentityServer v3): client-credentials tokens
        have no ``sub``. True: ``sub`` = client_id (RFC 9068 section 2.2).
    ``scope_format``
        ``"string"`` (RFC 9068, default) or ``"list"`` (IdentityServer v3's
        JSON array) for the dev provider's access tokens.
    ``issuer_path``
        optional path after host:port in the issuer URL, e.g. ``"/tenant"``.
    ``token_shape``
        ``"rfc9068"`` (default: header ``typ`` ``at+jwt``, the settings
        above) or ``"identityserver3"``: access tokens shaped as
        IdentityServer v3 issues them -- header ``typ`` ``JWT``, ``scope`` a
        JSON array, ``aud`` ``<issuer>/resources`` (unless ``audience`` is
        given), no ``sub`` in client-credentials tokens, and ``idp`` in
        user tokens.  For a migration test: one LocalIssuer of each shape.
    ``fresh_keys``
        True: generate new key material instead of using the shared pool.

    The dev provider's login page (development only, not for production)
    has the fields ``#username`` and ``#password`` and the button
    ``#sign-in``; a wrong password re-renders it (200, ``#error``) without
    redirecting. It has no CSRF protection and keeps no sessions: it is a
    stand-in for tests and the demo, not an identity provider.

    Attributes that tests may change at any time: :attr:`discovery_overrides`,
    :attr:`jwks_max_age` (``None``: no Cache-Control header),
    :attr:`jwk_overrides` (``{kid: {member: value}}`` merged into that key's
    published JWK), :attr:`extra_jwks` (raw JWK dicts appended to the JWKS),
    :attr:`users`, :attr:`clients`.
    """

    __test__ = False  # a helper, not a test class: pytest must not collect it

    def __init__(
        self,
        *,
        algs: Sequence[str] = ("RS256",),
        host: str = "127.0.0.1",
        port: int = 0,
        audience: Union[str, Sequence[str], None] = None,
        users: Optional[Mapping[str, Any]] = None,
        clients: Optional[Mapping[str, Mapping[str, Any]]] = None,
        token_lifetime: int = 3600,
        client_token_sub: bool = False,
        scope_format: str = "string",
        spa_redirect_uris: Sequence[str] = DEFAULT_SPA_REDIRECT_URIS,
        issuer_path: str = "",
        fresh_keys: bool = False,
        token_shape: str = "rfc9068",
    ) -> None:
        pyjwt_signer()  # ImportError naming the extra to install, before anything starts
        _check_loopback(host)
        if scope_format not in ("string", "list"):
            raise ValueError("scope_format must be 'string' or 'list'")
        Minter.__init__(self, fresh_keys=fresh_keys, token_lifetime=token_lifetime, token_shape=token_shape,
                        audience=audience)
        if token_shape == "identityserver3":
            scope_format = "list"
            client_token_sub = False
        if issuer_path and (not issuer_path.startswith("/") or issuer_path.endswith("/")):
            raise ValueError("issuer_path must start with '/' and not end with '/'")
        self.host = host
        self._port = int(port)
        self.client_token_sub = bool(client_token_sub)
        self.scope_format = scope_format
        self.issuer_path = issuer_path
        self._demo_users = users is None
        self._lock = threading.RLock()  # users, clients, counters, server

        self.users: Dict[str, Dict[str, Any]] = user_table(users)
        self.clients: Dict[str, Dict[str, Any]] = client_table(clients, spa_redirect_uris)

        self.discovery_overrides: Dict[str, Any] = {}
        self.jwks_max_age: Optional[int] = 3600

        self._faults = FaultTable()
        self._counts: Dict[str, int] = {}
        #: introspection requests being answered now, and the most at once
        self.introspection_in_flight = 0
        self.introspection_max_in_flight = 0
        #: the last 1000 requests as (method, path) tuples, for assertions
        self.requests: Deque[Tuple[str, str]] = deque(maxlen=1000)

        self._server: Optional[LoopbackServer] = None
        self._served = _Served(self)

        for alg in algs:
            self.add_key(alg)

    # ---------------------------------------------------------------- server

    def start(self) -> "LocalIssuer":
        """Start serving (again). Returns self.

        The first start binds ``port`` (0: ephemeral) and remembers the port;
        every later start binds that same port, so after :meth:`stop` the
        issuer comes back at the same URL. (In the rare case that another
        process took the port meanwhile, this raises ``OSError``.)
        """
        with self._lock:
            if self._server is not None:
                return self
            # ``host`` is a plain attribute: checked again here, not only in
            # the constructor, so that ``issuer.host = "0.0.0.0"`` cannot
            # make this development provider (demo users, known client
            # secrets, unauthenticated test endpoints) listen on a network.
            _check_loopback(self.host)
            server = bind_loopback(self.host, self._port, DevProviderHandler, self._served)
            self._port = server.port
            self._server = server
            server.start(name=f"LocalIssuer:{self._port}")
        log.warning(
            "LocalIssuer at %s is a development provider with demo users and known secrets: "
            "for tests and local development only, never for production", self.issuer)
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket: new connections are
        refused until :meth:`start` is called again (same port). Requests
        being delayed by a fault are dropped without an answer."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    close = stop

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> "LocalIssuer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("LocalIssuer has no port yet: call start() first")
        return self._port

    @property
    def issuer(self) -> str:
        """The issuer identifier, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.issuer_path}"

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def discovery_url(self) -> str:
        return self.url("/.well-known/openid-configuration")

    @property
    def jwks_uri(self) -> str:
        return self.url("/jwks")

    @property
    def authorization_endpoint(self) -> str:
        return self.url("/authorize")

    @property
    def token_endpoint(self) -> str:
        return self.url("/token")

    @property
    def introspection_endpoint(self) -> str:
        return self.url("/introspect")

    @property
    def revocation_endpoint(self) -> str:
        return self.url("/revoke")

    @property
    def userinfo_endpoint(self) -> str:
        return self.url("/userinfo")

    # ------------------------------------------------------ counters/faults

    @property
    def fetch_counts(self) -> Dict[str, int]:
        """A copy of the request counters: ``{"discovery": n, "jwks": n, ...}``
        (also "authorize" and "token"). Every request counts, faulted or not."""
        with self._lock:
            counts = {"discovery": 0, "jwks": 0}
            counts.update(self._counts)
            return counts

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    def set_fault(self, kind: str, status: Optional[int] = None, body: Any = None,
                  delay: Optional[float] = None, content_type: Optional[str] = None,
                  headers: Optional[Mapping[str, str]] = None) -> None:
        """Make the ``"discovery"``, ``"jwks"``, ``"introspection"`` or
        ``"userinfo"`` endpoint misbehave until :meth:`clear_faults`.

        ``delay``: sleep that many seconds before answering. ``status``: the
        HTTP status to answer with (default 200). ``body``: bytes or str sent
        as is, or a dict/list sent as JSON; default: the normal document for
        a 2xx status, else ``{"error": "server_error"}``. ``content_type``:
        default ``application/json``. ``headers``: extra response headers
        (e.g. ``{"Location": ...}`` or ``{"Retry-After": "5"}``).
        ``set_fault("jwks", delay=2)`` alone just slows the normal answer.
        """
        self._faults.set(kind, status, body, delay, content_type, headers)

    def clear_faults(self, kind: Optional[str] = None) -> None:
        self._faults.clear(kind)

    # ------------------------------------------------------------- discovery

    def discovery_document(self) -> Dict[str, Any]:
        """The discovery document as served (OpenID Connect Discovery 1.0
        section 3), with :attr:`discovery_overrides` merged in."""
        algs = self._published_algs()
        with self._lock:
            scopes = {"openid"}
            for client in self.clients.values():
                scopes.update(client["scopes"])
            acrs = sorted({acr for user in self.users.values() for acr in user.get("acrs", ())})
            overrides = dict(self.discovery_overrides)
        doc = {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
            "introspection_endpoint": self.introspection_endpoint,
            "revocation_endpoint": self.revocation_endpoint,
            "response_types_supported": ["code", "id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": ["authorization_code", "implicit", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "scopes_supported": sorted(scopes),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "at_hash", "name",
                                 "email"],
            # OpenID Connect Discovery 1.0 section 3: the acr values /authorize
            # can satisfy (acr_values, OIDC Core 3.1.2.1).  RFC 8707 resource
            # indicators are honoured too, but neither RFC 8414, RFC 8707 nor
            # the OpenID registries define a member that says so.
            "acr_values_supported": acrs,
        }
        return with_changes(doc, overrides)

    # ------------------------------------------------------- dev provider

    def register_client(self, client_id: str, *, redirect_uris: Iterable[str] = (), scopes: Union[str, Iterable[str]] = "",
                        grant_types: Iterable[str] = ("implicit",), secret: Optional[str] = None,
                        access_token_format: str = "jwt", resources: Optional[Iterable[str]] = None) -> None:
        """Register (or replace) a dev-provider client. ``secret=None``: a
        public client (no client authentication; PKCE required for code).
        ``access_token_format="reference"``: its access tokens are opaque
        handles (IdentityServer v3 reference tokens) that an API validates at
        ``/introspect``; ``"jwt"`` (default): signed JWTs.
        Redirect URIs are compared exactly (RFC 6749 3.1.2, OIDC Core
        3.1.2.1) and must not contain a fragment (RFC 6749 3.1.2).
        ``resources``: the RFC 8707 resource indicators the client may ask
        for (compared exactly; another is refused with ``invalid_target``);
        None (default): any absolute URI without a fragment."""
        record = client_record(redirect_uris=redirect_uris, scopes=scopes, grant_types=grant_types, secret=secret,
                               access_token_format=access_token_format, resources=resources)
        with self._lock:
            self.clients[client_id] = record

class _Served:
    """What the development provider's endpoints see of one
    :class:`LocalIssuer`: the :class:`~.endpoint.DevProvider` protocol (the
    server's ``context``), and the state only the endpoints keep."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self._issuer = issuer
        self.authorization_codes = CodeStore()
        self._dpop_verifier: Optional["DPoPVerifier"] = None

    # settings, read at each request (tests may change them at any time)
    @property
    def issuer(self) -> str:
        return self._issuer.issuer

    @property
    def issuer_path(self) -> str:
        return self._issuer.issuer_path

    @property
    def audience(self) -> Union[str, List[str]]:
        return self._issuer.audience

    @property
    def token_endpoint(self) -> str:
        return self._issuer.token_endpoint

    @property
    def token_lifetime(self) -> int:
        return self._issuer.token_lifetime

    @property
    def token_shape(self) -> str:
        return self._issuer.token_shape

    @property
    def scope_format(self) -> str:
        return self._issuer.scope_format

    @property
    def client_token_sub(self) -> bool:
        return self._issuer.client_token_sub

    @property
    def jwks_max_age(self) -> Optional[int]:
        return self._issuer.jwks_max_age

    @property
    def demo_users(self) -> bool:
        return self._issuer._demo_users

    # requests, counters, faults
    def record_request(self, method: str, path: str) -> None:
        self._issuer.requests.append((method, path))

    def count(self, kind: str) -> None:
        issuer = self._issuer
        with issuer._lock:
            issuer._counts[kind] = issuer._counts.get(kind, 0) + 1

    def fault(self, kind: str) -> Optional[Fault]:
        return self._issuer._faults.get(kind)

    @contextlib.contextmanager
    def introspection_call(self) -> Iterator[None]:
        issuer = self._issuer
        with issuer._lock:
            issuer.introspection_in_flight += 1
            issuer.introspection_max_in_flight = max(issuer.introspection_max_in_flight,
                                                     issuer.introspection_in_flight)
        try:
            yield
        finally:
            with issuer._lock:
                issuer.introspection_in_flight -= 1

    # documents
    def discovery_document(self) -> Dict[str, Any]:
        return self._issuer.discovery_document()

    def jwks(self) -> Dict[str, Any]:
        return self._issuer.jwks()

    # users and clients: copies, taken under the issuer's lock
    def client(self, client_id: str) -> Optional[Dict[str, Any]]:
        with self._issuer._lock:
            client = self._issuer.clients.get(client_id)
            return None if client is None else {k: (list(v) if isinstance(v, list) else v) for k, v in client.items()}

    def user(self, username: str) -> Optional[Dict[str, Any]]:
        with self._issuer._lock:
            user = self._issuer.users.get(username)
            return None if user is None else dict(user)

    def user_by_subject(self, subject: str) -> Optional[Dict[str, Any]]:
        with self._issuer._lock:
            return user_by_subject(self._issuer.users, subject)

    # tokens
    def mint(self, claims: Optional[Mapping[str, Any]] = None, *, subject: Optional[str] = "alice",
             scope: Union[str, Sequence[str], None] = "contacts", client_id: Optional[str] = "spa",
             reference: bool = False) -> str:
        return self._issuer.mint(claims, subject=subject, scope=scope, client_id=client_id, reference=reference)

    def mint_id_token(self, client_id: str, *, nonce: Optional[str] = None, access_token: Optional[str] = None,
                      subject: str = "alice", auth_time: Optional[int] = None,
                      extra: Optional[Mapping[str, Any]] = None) -> str:
        return self._issuer.mint_id_token(client_id, nonce=nonce, access_token=access_token, subject=subject,
                                          auth_time=auth_time, extra=extra)

    def introspect(self, token: str) -> Dict[str, Any]:
        return self._issuer.introspect(token)

    def revoke(self, token: str) -> None:
        self._issuer.revoke(token)

    def verify_access_token(self, token: str) -> Dict[str, Any]:
        issuer = self._issuer
        return issuer._decode_jwt(token, issuer=issuer.issuer, audience=issuer.audience,
                                 options={"require": ["exp", "sub"]})

    def is_revoked(self, jti: Any) -> bool:
        return self._issuer._is_revoked(jti)

    def dpop_verifier(self) -> "DPoPVerifier":
        # One per issuer, made on first use: its replay cache is this issuer's.
        with self._issuer._lock:
            if self._dpop_verifier is None:
                from ..dpop import DPoPVerifier

                self._dpop_verifier = DPoPVerifier()
            return self._dpop_verifier


if TYPE_CHECKING:
    _conforms: Type[DevProvider] = _Served  # mypy checks that _Served implements the protocol


def _check_loopback(host: Any) -> None:
    if not isinstance(host, str) or not is_loopback_host(host):
        raise ValueError(f"LocalIssuer is a test/development tool and binds to loopback only; got host {host!r}")
