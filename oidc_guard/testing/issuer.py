""":class:`LocalIssuer`: an OpenID Provider stand-in on a loopback address,
for tests and the development demo. Its state (keys, faults, counters, users,
clients) lives here; the HTTP endpoints are in :mod:`.provider`, the server
in :mod:`.server`, the key material in :mod:`.keys`.

**Test and development tool only. Never use it in production.**
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union, cast

from .jose import _apply, _json_bytes
from .keys import _ALGS, SUPPORTED_ALGS, _generate, _pooled_key, _public_jwk, _pyjwt_signer, sign_jws
from .provider import _Code, _Handler
from .server import _IPv6Server, _loopback_host, _Server
from .tokens import token_hash

__all__ = ["LocalIssuer"]

# The same logger as the development provider's endpoints (provider.py).
log = logging.getLogger("oidc_guard.testing")

_DEFAULT: Any = object()  # "argument not given" marker


#: The default clients' credentials for ``/introspect`` (development only).
INTROSPECTION_CLIENT_ID = "contacts-api"
INTROSPECTION_CLIENT_SECRET = "contacts-api-secret"

#: The development command line's client (``python -m oidc_guard.testing
#: token``): public, authorization code with PKCE only.  Its redirect URI is
#: a loopback one (RFC 8252 section 7.3) that nothing needs to listen on: the
#: command reads the code from the provider's redirect response itself.
DEV_CLI_CLIENT_ID = "dev-cli"
DEV_CLI_REDIRECT_URI = "http://127.0.0.1/oidc_guard-dev-cli/callback"


@dataclass
class _Key:
    kid: str
    alg: str
    private_key: Any
    published: bool = True


@dataclass
class _Fault:
    status: Optional[int] = None
    body: Any = None
    delay: Optional[float] = None
    content_type: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)



_DEFAULT_SPA_REDIRECT_URIS = ("http://127.0.0.1:8080/", "http://localhost:8080/")
_DEFAULT_USERS = {
    "alice": {"password": "alice", "sub": "alice", "name": "Alice Example", "email": "alice@example.com"},
    "bob": {"password": "bob", "sub": "bob", "name": "Bob Example", "email": "bob@example.com"},
}



class LocalIssuer:
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
        "sub": ..., other claims}}`` or ``{username: password}``. ``clients``:
        ``{client_id: {"redirect_uris": [...], "scopes": "a b",
        "grant_types": [...], "secret": str or None}}``. Defaults: users
        alice/alice and bob/bob; client ``spa`` (public; implicit and
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
        spa_redirect_uris: Sequence[str] = _DEFAULT_SPA_REDIRECT_URIS,
        issuer_path: str = "",
        fresh_keys: bool = False,
        token_shape: str = "rfc9068",
    ) -> None:
        _pyjwt_signer()  # ImportError naming the extra to install, before anything starts
        if not _loopback_host(host):
            raise ValueError(
                f"LocalIssuer is a test/development tool and binds to loopback only; got host {host!r}"
            )
        if scope_format not in ("string", "list"):
            raise ValueError("scope_format must be 'string' or 'list'")
        if token_shape not in ("rfc9068", "identityserver3"):
            raise ValueError("token_shape must be 'rfc9068' or 'identityserver3'")
        self.token_shape = token_shape
        if token_shape == "identityserver3":
            scope_format = "list"
            client_token_sub = False
        if issuer_path and (not issuer_path.startswith("/") or issuer_path.endswith("/")):
            raise ValueError("issuer_path must start with '/' and not end with '/'")
        self.host = host
        self._port = int(port)
        # None: the shape's default ("api://contacts", or <issuer>/resources
        # for IdentityServer v3, which needs the port: see the property)
        self._audience: Union[str, List[str], None] = (
            None if audience is None else audience if isinstance(audience, str) else list(audience))
        self.token_lifetime = int(token_lifetime)
        self.client_token_sub = bool(client_token_sub)
        self.scope_format = scope_format
        self.issuer_path = issuer_path
        self.fresh_keys = bool(fresh_keys)
        self._demo_users = users is None
        self._lock = threading.RLock()

        self.users: Dict[str, Dict[str, Any]] = {}
        for name, entry in (users if users is not None else _DEFAULT_USERS).items():
            if isinstance(entry, str):
                entry = {"password": entry, "sub": name}
            self.users[name] = dict(entry)
            self.users[name].setdefault("sub", name)
        self.clients: Dict[str, Dict[str, Any]] = {}
        if clients is None:
            self.register_client(
                "spa",
                redirect_uris=spa_redirect_uris,
                scopes="openid profile contacts wte coordinate",
                grant_types=("implicit", "authorization_code"),
            )
            self.register_client(
                "wte-worker", secret="wte-secret", scopes="wte", grant_types=("client_credentials",)
            )
            # The same worker with reference (opaque) access tokens.
            self.register_client(
                "wte-worker-ref", secret="wte-secret", scopes="wte", grant_types=("client_credentials",),
                access_token_format="reference",
            )
            # The API's own credentials for /introspect (RFC 7662 section 2.1).
            self.register_client(INTROSPECTION_CLIENT_ID, secret=INTROSPECTION_CLIENT_SECRET, grant_types=())
            # python -m oidc_guard.testing token: a user's token for curl or the CLI.
            self.register_client(
                DEV_CLI_CLIENT_ID, redirect_uris=(DEV_CLI_REDIRECT_URI,),
                scopes="openid profile contacts wte coordinate", grant_types=("authorization_code",),
            )
        else:
            for client_id, entry in clients.items():
                self.register_client(
                    client_id,
                    redirect_uris=entry.get("redirect_uris", ()),
                    scopes=entry.get("scopes", ""),
                    grant_types=entry.get("grant_types", ("implicit",)),
                    secret=entry.get("secret"),
                    access_token_format=entry.get("access_token_format", "jwt"),
                )

        self.discovery_overrides: Dict[str, Any] = {}
        self.jwks_max_age: Optional[int] = 3600
        self.jwk_overrides: Dict[str, Dict[str, Any]] = {}
        self.extra_jwks: List[Dict[str, Any]] = []

        self._keys: Dict[str, _Key] = {}  # insertion-ordered
        self._signing_kid: Optional[str] = None
        self._family_use: Dict[str, int] = {}
        self._faults: Dict[str, _Fault] = {}
        self._counts: Dict[str, int] = {}
        self._codes: Dict[str, _Code] = {}
        # Reference tokens (handle -> claims) and revoked JWT ids (RFC 7009).
        self._reference_tokens: Dict[str, Dict[str, Any]] = {}
        self._revoked_jtis: Set[str] = set()
        #: introspection requests being answered now, and the most at once
        self.introspection_in_flight = 0
        self.introspection_max_in_flight = 0
        #: the last 1000 requests as (method, path) tuples, for assertions
        self.requests: Deque[Tuple[str, str]] = deque(maxlen=1000)

        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._wake: Optional[Tuple[socket.socket, socket.socket]] = None
        self._stop_event = threading.Event()

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
            host = self.host
            if not isinstance(host, str) or not _loopback_host(host):
                raise ValueError(
                    f"LocalIssuer is a test/development tool and binds to loopback only; got host {host!r}"
                )
            server_cls = _IPv6Server if ":" in host else _Server
            bind_host = "127.0.0.1" if host == "localhost" else host
            server = server_cls((bind_host, self._port), _Handler)
            # Belt and braces: the address actually bound must be loopback too.
            bound = str(server.server_address[0])
            if not ipaddress.ip_address(bound.split("%", 1)[0]).is_loopback:
                server.server_close()
                raise ValueError(f"LocalIssuer bound the non-loopback address {bound!r}; refusing to serve")
            server.provider = self
            self._port = server.server_address[1]
            self._stop_event = threading.Event()
            self._server = server
            self._wake = socket.socketpair()
            self._thread = threading.Thread(
                target=server.serve_until_woken, args=(self._wake[0],),
                name=f"LocalIssuer:{self._port}", daemon=True,
            )
            self._thread.start()
        log.warning(
            "LocalIssuer at %s is a development provider with demo users and known secrets: "
            "for tests and local development only, never for production", self.issuer)
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket: new connections are
        refused until :meth:`start` is called again (same port). Requests
        being delayed by a fault are dropped without an answer."""
        with self._lock:
            server, thread, wake = self._server, self._thread, self._wake
            self._server = self._thread = self._wake = None
            self._stop_event.set()
        if wake is not None:
            wake[1].send(b"x")  # wakes serve_until_woken()
        if thread is not None:
            thread.join(timeout=5)
        if server is not None:
            server.server_close()  # closes the listening socket: connections are refused
        if wake is not None:
            wake[0].close()
            wake[1].close()

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
    def audience(self) -> Union[str, List[str]]:
        """``aud`` of minted access tokens and of the dev provider's tokens."""
        if self._audience is not None:
            return self._audience
        if self.token_shape == "identityserver3":
            return self.issuer + "/resources"
        return "api://contacts"

    @audience.setter
    def audience(self, value: Union[str, Sequence[str]]) -> None:
        self._audience = value if isinstance(value, str) else list(value)

    @property
    def access_token_typ(self) -> str:
        """Header ``typ`` of the access tokens of this shape."""
        return "JWT" if self.token_shape == "identityserver3" else "at+jwt"

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

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1

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
        if kind not in ("discovery", "jwks", "introspection", "userinfo"):
            raise ValueError("fault kind must be 'discovery', 'jwks', 'introspection' or 'userinfo'")
        with self._lock:
            self._faults[kind] = _Fault(status, body, delay, content_type, dict(headers or {}))

    def clear_faults(self, kind: Optional[str] = None) -> None:
        with self._lock:
            if kind is None:
                self._faults.clear()
            else:
                self._faults.pop(kind, None)

    # ------------------------------------------------------------------ keys

    def add_key(self, alg: str = "RS256", kid: Optional[str] = None, publish: bool = True) -> str:
        """Add a signing key for ``alg``; returns its kid. Does not change
        the default signing key unless there was none (see :meth:`rotate`).
        ``publish=False`` keeps it out of the JWKS (for unknown-kid tests;
        :meth:`publish` it later)."""
        if alg not in _ALGS:
            raise ValueError(f"unsupported alg {alg!r}; supported: {', '.join(SUPPORTED_ALGS)}")
        family = _ALGS[alg][0]
        with self._lock:
            if kid is None:
                kid = f"{alg.lower()}-{secrets.token_hex(6)}"
            if kid in self._keys:
                raise ValueError(f"kid {kid!r} already exists")
            if self.fresh_keys:
                private_key = _generate(family)
            else:
                index = self._family_use.get(family, 0)
                self._family_use[family] = index + 1
                private_key = _pooled_key(family, index)
            self._keys[kid] = _Key(kid, alg, private_key, publish)
            if self._signing_kid is None:
                self._signing_kid = kid
        return kid

    def rotate(self, alg: str = "RS256") -> str:
        """Key rotation (OIDC Core 10.1): add a new published key and make it
        the default signing key; the old keys stay published. Returns the new
        kid. Remove the old one later with :meth:`remove_key`."""
        kid = self.add_key(alg)
        with self._lock:
            self._signing_kid = kid
        return kid

    def remove_key(self, kid: str) -> None:
        """Forget a key (it leaves the JWKS). If it was the signing key, the
        most recently added remaining key becomes the signing key."""
        with self._lock:
            if kid not in self._keys:
                raise KeyError(kid)
            del self._keys[kid]
            if self._signing_kid == kid:
                self._signing_kid = next(reversed(list(self._keys)), None)

    def publish(self, kid: str) -> None:
        with self._lock:
            self._keys[kid].published = True

    def unpublish(self, kid: str) -> None:
        """Keep the key for signing but take it out of the JWKS."""
        with self._lock:
            self._keys[kid].published = False

    @property
    def signing_kid(self) -> Optional[str]:
        """The kid ``mint()`` uses when given neither ``kid`` nor ``alg``."""
        with self._lock:
            return self._signing_kid

    @signing_kid.setter
    def signing_kid(self, kid: str) -> None:
        with self._lock:
            if kid not in self._keys:
                raise KeyError(kid)
            self._signing_kid = kid

    @property
    def kids(self) -> List[str]:
        with self._lock:
            return list(self._keys)

    def key_alg(self, kid: str) -> str:
        with self._lock:
            return self._keys[kid].alg

    def private_key(self, kid: str) -> Any:
        with self._lock:
            return self._keys[kid].private_key

    def public_key(self, kid: str) -> Any:
        """The ``cryptography`` public key object of ``kid``."""
        return self.private_key(kid).public_key()

    def public_key_pem(self, kid: Optional[str] = None) -> bytes:
        """SubjectPublicKeyInfo PEM of ``kid`` (default: the signing key),
        e.g. as the HMAC secret of the HS256 key-confusion attack."""
        from cryptography.hazmat.primitives import serialization

        pem: bytes = self.public_key(cast(str, kid or self.signing_kid)).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem

    def public_jwk(self, kid: str) -> Dict[str, Any]:
        """The JWK as published for ``kid`` (with :attr:`jwk_overrides`)."""
        with self._lock:
            key = self._keys[kid]
            return _apply(_public_jwk(key.private_key, key.alg, key.kid), self.jwk_overrides.get(kid))

    def jwks(self) -> Dict[str, Any]:
        """The JWKS document as served (RFC 7517 section 5)."""
        with self._lock:
            keys = [self.public_jwk(k.kid) for k in self._keys.values() if k.published]
            keys.extend(dict(extra) for extra in self.extra_jwks)
        return {"keys": keys}

    def _pick_key(self, alg: Optional[str], kid: Optional[str]) -> _Key:
        with self._lock:
            if kid is not None:
                if kid not in self._keys:
                    raise KeyError(f"no key with kid {kid!r}")
                key = self._keys[kid]
                if alg is not None and key.alg != alg:
                    raise ValueError(f"kid {kid!r} is a {key.alg} key, not {alg}")
                return key
            if alg is not None:
                if alg not in _ALGS:
                    raise ValueError(f"unsupported alg {alg!r}")
                signing = self._keys.get(self._signing_kid or "")
                if signing is not None and signing.alg == alg:
                    return signing
                matching = [k for k in self._keys.values() if k.alg == alg]
                if matching:
                    return matching[-1]
                return self._keys[self.add_key(alg)]
            if self._signing_kid is None:
                raise RuntimeError("LocalIssuer has no keys: add_key() first")
            return self._keys[self._signing_kid]

    # ----------------------------------------------------------------- tokens

    def sign(self, claims: Mapping[str, Any], *, alg: Optional[str] = None, kid: Optional[str] = None,
             header: Optional[Mapping[str, Any]] = None, typ: Optional[str] = "JWT") -> str:
        """Sign exactly ``claims`` (nothing added) with one of this issuer's
        keys. Header: ``alg``, ``kid`` and ``typ`` (if not None), then
        ``header`` merged in (OMIT removes). The signature is always made with
        the chosen key's own alg, whatever ``header["alg"]`` says.

        The signature is made by PyJWT (an independent JOSE implementation)
        when the header is one an issuer writes (``alg`` of the key, ``kid``,
        ``typ``, ``x5t``, ``x5t#S256``, non-empty strings), else over exactly
        these bytes with ``cryptography`` (attack tests); the token's bytes
        are the same either way."""
        key = self._pick_key(alg, kid)
        head: Dict[str, Any] = {"alg": key.alg, "kid": key.kid}
        if typ is not None:
            head["typ"] = typ
        head = _apply(head, header)
        return sign_jws(key.private_key, key.alg, head, _json_bytes(dict(claims)))

    def mint(
        self,
        claims: Optional[Mapping[str, Any]] = None,
        *,
        alg: Optional[str] = None,
        kid: Optional[str] = None,
        header: Optional[Mapping[str, Any]] = None,
        audience: Any = _DEFAULT,
        subject: Optional[str] = "alice",
        scope: Union[str, Sequence[str], None] = "contacts",
        expires_in: Optional[int] = _DEFAULT,
        issuer: Optional[str] = None,
        typ: Optional[str] = _DEFAULT,
        omit: Iterable[str] = (),
        client_id: Optional[str] = "spa",
        now: Optional[float] = None,
        reference: bool = False,
    ) -> str:
        """Mint an access token (RFC 9068 shape by default).

        ``reference=True``: the same claims are kept by the provider and the
        token is an opaque handle (43 base64url characters, no dot), valid
        at ``/introspect`` and ``/userinfo`` until its ``exp`` or
        :meth:`revoke`.

        Claims: ``iss`` (this issuer, or ``issuer``), ``sub`` (``subject``;
        None leaves it out, like a client-credentials token), ``aud``
        (default: the issuer's ``audience``; a list gives an array),
        ``scope`` (a str is sent as is, space-delimited; a list/tuple is sent
        as a JSON array like IdentityServer v3; None leaves it out),
        ``client_id``, ``iat`` and ``nbf`` (``now``, default the current
        time), ``exp`` (``now + expires_in``; None leaves it out), ``jti``.
        Then ``claims`` overrides/extends them (OMIT removes one) and the
        names in ``omit`` are removed.

        Header: ``alg``, ``kid``, ``typ`` (``"at+jwt"``, ``"JWT"`` for the
        ``identityserver3`` token shape; None leaves it out),
        then ``header`` overrides/extends (OMIT removes; e.g.
        ``header={"kid": OMIT}`` for a kid-less token, ``header={"jwk":
        ...}`` for the embedded-key attack). ``kid=`` picks the signing key;
        ``alg=`` picks (or adds) a key of that alg.
        """
        issued = int(time.time() if now is None else now)
        lifetime = self.token_lifetime if expires_in is _DEFAULT else expires_in
        body: Dict[str, Any] = {"iss": issuer or self.issuer}
        if subject is not None:
            body["sub"] = subject
        aud = self.audience if audience is _DEFAULT else audience
        if aud is not None:
            body["aud"] = aud if isinstance(aud, str) else list(aud)
        if scope is not None:
            body["scope"] = scope if isinstance(scope, str) else list(scope)
        if client_id is not None:
            body["client_id"] = client_id
        body["iat"] = issued
        body["nbf"] = issued
        if lifetime is not None:
            body["exp"] = issued + int(lifetime)
        body["jti"] = uuid.uuid4().hex
        body = _apply(body, claims)
        for name in omit:
            body.pop(name, None)
        if reference:
            handle = secrets.token_urlsafe(32)
            with self._lock:
                self._reference_tokens[handle] = body
            return handle
        return self.sign(body, alg=alg, kid=kid, header=header,
                         typ=self.access_token_typ if typ is _DEFAULT else typ)

    # ------------------------------------------ introspection / revocation

    def introspect(self, token: str) -> Dict[str, Any]:
        """What ``/introspect`` answers for ``token`` (RFC 7662 section 2.2):
        ``{"active": true, ...claims, "token_type": "Bearer"}`` for a live
        reference token or a JWT of this issuer (signature checked, not
        revoked, not expired), else ``{"active": false}``."""
        now = time.time()
        with self._lock:
            claims = self._reference_tokens.get(token)
            claims = None if claims is None else dict(claims)
        if claims is None and token.count(".") == 2:
            claims = self._verified_jwt(token)
            if claims is not None:
                with self._lock:
                    if claims.get("jti") in self._revoked_jtis:
                        claims = None
        if claims is None:
            return {"active": False}
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp <= now:
            return {"active": False}
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now + 5:
            return {"active": False}
        out: Dict[str, Any] = {"active": True}
        out.update(claims)
        out.setdefault("token_type", "Bearer")
        return out

    def revoke(self, token: str) -> None:
        """RFC 7009: make ``token`` inactive at once (a reference token is
        forgotten; a JWT's ``jti`` is remembered as revoked, which only
        introspection sees: a JWT validated locally stays valid until exp)."""
        with self._lock:
            if self._reference_tokens.pop(token, None) is not None:
                return
        claims = self._verified_jwt(token)
        if claims is not None and isinstance(claims.get("jti"), str):
            with self._lock:
                self._revoked_jtis.add(claims["jti"])

    def _verified_jwt(self, token: str) -> Optional[Dict[str, Any]]:
        """The payload of a JWT signed by one of this issuer's keys, or None."""
        import jwt

        try:
            kid = jwt.get_unverified_header(token).get("kid")
            with self._lock:
                key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                return None
            payload = jwt.decode(token, key.private_key.public_key(), algorithms=[key.alg],
                                 options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                          "verify_iat": False})
        except jwt.InvalidTokenError:
            return None
        return dict(payload) if isinstance(payload, dict) else None

    def mint_id_token(
        self,
        client_id: str,
        *,
        nonce: Optional[str] = None,
        access_token: Optional[str] = None,
        code: Optional[str] = None,
        subject: str = "alice",
        auth_time: Optional[int] = None,
        extra: Optional[Mapping[str, Any]] = None,
        alg: Optional[str] = None,
        kid: Optional[str] = None,
        header: Optional[Mapping[str, Any]] = None,
        expires_in: Optional[int] = None,
        now: Optional[float] = None,
    ) -> str:
        """Mint an id_token (OIDC Core section 2) for ``client_id``.

        ``iss``, ``sub``, ``aud`` = client_id, ``iat``, ``exp`` (``now +
        expires_in``, default the issuer's token lifetime), ``nonce`` and
        ``auth_time`` when given, ``at_hash`` when ``access_token`` is given
        and ``c_hash`` when ``code`` is given (OIDC Core 3.1.3.6 / 3.2.2.9 /
        3.3.2.11, with the hash that matches the signing alg, see
        :func:`token_hash`). ``extra`` overrides/extends (OMIT removes).
        Header ``typ`` is ``"JWT"``.
        """
        key = self._pick_key(alg, kid)
        issued = int(time.time() if now is None else now)
        body: Dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "iat": issued,
            "exp": issued + int(self.token_lifetime if expires_in is None else expires_in),
        }
        if auth_time is not None:
            body["auth_time"] = int(auth_time)
        if nonce is not None:
            body["nonce"] = nonce
        if access_token is not None:
            body["at_hash"] = token_hash(access_token, key.alg)
        if code is not None:
            body["c_hash"] = token_hash(code, key.alg)
        body = _apply(body, extra)
        return self.sign(body, kid=key.kid, header=header, typ="JWT")

    # ------------------------------------------------------------- discovery

    def discovery_document(self) -> Dict[str, Any]:
        """The discovery document as served (OpenID Connect Discovery 1.0
        section 3), with :attr:`discovery_overrides` merged in."""
        with self._lock:
            algs = sorted({k.alg for k in self._keys.values() if k.published})
            scopes = {"openid"}
            for client in self.clients.values():
                scopes.update(client["scopes"])
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
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "email"],
        }
        return _apply(doc, overrides)

    # ------------------------------------------------------- dev provider

    def register_client(self, client_id: str, *, redirect_uris: Iterable[str] = (), scopes: Union[str, Iterable[str]] = "",
                        grant_types: Iterable[str] = ("implicit",), secret: Optional[str] = None,
                        access_token_format: str = "jwt") -> None:
        """Register (or replace) a dev-provider client. ``secret=None``: a
        public client (no client authentication; PKCE required for code).
        ``access_token_format="reference"``: its access tokens are opaque
        handles (IdentityServer v3 reference tokens) that an API validates at
        ``/introspect``; ``"jwt"`` (default): signed JWTs.
        Redirect URIs are compared exactly (RFC 6749 3.1.2, OIDC Core
        3.1.2.1) and must not contain a fragment (RFC 6749 3.1.2)."""
        uris = list(redirect_uris)
        for uri in uris:
            if "#" in uri:
                raise ValueError(f"redirect URI must not contain a fragment: {uri!r}")
        if access_token_format not in ("jwt", "reference"):
            raise ValueError("access_token_format must be 'jwt' or 'reference'")
        scope_list = scopes.split() if isinstance(scopes, str) else list(scopes)
        with self._lock:
            self.clients[client_id] = {
                "redirect_uris": uris,
                "scopes": scope_list,
                "grant_types": list(grant_types),
                "secret": secret,
                "access_token_format": access_token_format,
            }

    def _format_scope(self, scopes: List[str]) -> Union[str, List[str]]:
        return list(scopes) if self.scope_format == "list" else " ".join(scopes)

    def _issue_user_tokens(self, client_id: str, user: Mapping[str, Any], scopes: List[str], *,
                           nonce: Optional[str], with_access_token: bool, auth_time: int,
                           cnf: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        result: Dict[str, str] = {}
        access_token = None
        if with_access_token:
            extra_claims: Dict[str, Any] = {"auth_time": auth_time, "amr": ["pwd"]}
            if cnf:
                extra_claims["cnf"] = dict(cnf)  # sender-constrained (RFC 9449 / RFC 8705)
            if self.token_shape == "identityserver3":
                extra_claims["idp"] = "idsrv"  # IdentityServer v3's identity-provider claim
            with self._lock:
                reference = self.clients.get(client_id, {}).get("access_token_format") == "reference"
            access_token = self.mint(
                extra_claims,
                subject=user["sub"], scope=self._format_scope(scopes), client_id=client_id,
                reference=reference,
            )
            result.update({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": str(self.token_lifetime),
                "scope": " ".join(scopes),
            })
        extra: Dict[str, Any] = {}
        if "profile" in scopes and "name" in user:
            extra["name"] = user["name"]
        if "email" in scopes and "email" in user:
            extra["email"] = user["email"]
        result["id_token"] = self.mint_id_token(
            client_id, nonce=nonce, access_token=access_token, subject=user["sub"],
            auth_time=auth_time, extra=extra,
        )
        return result

