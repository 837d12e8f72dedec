"""A local OpenID Provider stand-in for tests and for the development demo.

**This module is a test and development tool. Never use it in production.**

:class:`LocalIssuer` runs a real HTTP server (stdlib ``ThreadingHTTPServer``
in a daemon thread) on a loopback address, so code under test goes through
its real discovery and JWKS fetch path:

* ``GET /.well-known/openid-configuration`` - the discovery document
  (OpenID Connect Discovery 1.0 section 3), merged with
  :attr:`LocalIssuer.discovery_overrides`;
* ``GET /jwks`` - the public keys (RFC 7517), with
  ``Cache-Control: max-age=<jwks_max_age>``;
* fault injection for both (:meth:`LocalIssuer.set_fault`), request counters
  (:attr:`LocalIssuer.fetch_counts`), and outages (:meth:`LocalIssuer.stop`
  then :meth:`LocalIssuer.start` again on the same port);
* token minting: :meth:`LocalIssuer.mint` (access tokens, RFC 9068 shape by
  default) and :meth:`LocalIssuer.mint_id_token` (OIDC Core 2 / 3.1.3.6 /
  3.2.2.9), with any header or claim changed so tests can craft attacks;
* a *development-only* provider for the demo: ``/authorize`` (implicit
  ``id_token token`` / ``id_token`` and authorization code with PKCE, behind
  a simple login page with hard-coded users), ``/token``
  (``client_credentials`` and ``authorization_code``) and ``/userinfo``.

Keys: RSA (RS256/384/512, PS256/384/512; 2048 bits), EC P-256 (ES256),
P-384 (ES384), P-521 (ES512) and Ed25519 (EdDSA) are generated with
``cryptography``. Because RSA generation is slow, generated private keys are
kept in a small module-level pool and **may be shared between issuers in one
process** (each issuer still publishes its own random ``kid`` values, and the
keys *within* one issuer are always distinct). Pass ``fresh_keys=True`` when a
test needs key material that no other issuer in the process holds.

Importing this module is cheap: no key is generated, and neither flask nor
pytest is imported. The module is also a pytest plugin (entry point
``pytest11: oidc_guard = oidc_guard.testing``) that provides the fixtures
``oidc_issuer`` and ``oidc_issuer_factory``.

Example::

    from oidc_guard import TokenValidator
    from oidc_guard.testing import LocalIssuer

    with LocalIssuer(algs=("RS256", "ES256")) as iss:
        v = TokenValidator(issuer=iss.issuer, audience="api://contacts")
        v.validate_access_token(iss.mint(scope="contacts"))
        iss.rotate()                       # new signing key, old one still published
        iss.set_fault("jwks", status=503)  # the JWKS endpoint now fails
        iss.stop()                         # outage: connections refused
        iss.start()                        # back, same URL
        iss.clear_faults()

    def test_api(oidc_issuer):             # pytest fixture from the plugin
        token = oidc_issuer.mint(scope=["contacts"], subject=None)
        ...
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import secrets
import selectors
import socket
import threading
import time
import urllib.parse
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "LocalIssuer",
    "OMIT",
    "SUPPORTED_ALGS",
    "token_hash",
    "forge_token",
    "hmac_token",
    "sign_raw",
    "b64url_encode",
    "b64url_decode",
]

log = logging.getLogger("oidc_guard.testing")


class _Omit:
    """Sentinel: a header/claim/discovery value equal to OMIT is removed."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMIT"


#: Use as a value in ``claims=``, ``header=``, ``discovery_overrides`` or
#: ``jwk_overrides`` to remove that member instead of setting it.
OMIT = _Omit()

_DEFAULT = object()  # "argument not given" marker

# alg -> (key family, hash name). Hash per RFC 7518 3.3-3.5 and RFC 8037;
# the "hash name" is also the at_hash/c_hash hash (OIDC Core 3.1.3.6), which
# for EdDSA with Ed25519 is SHA-512 (OpenID Connect Core errata / RFC 8037).
_ALGS: Dict[str, Tuple[str, str]] = {
    "RS256": ("RSA", "sha256"),
    "RS384": ("RSA", "sha384"),
    "RS512": ("RSA", "sha512"),
    "PS256": ("RSA", "sha256"),
    "PS384": ("RSA", "sha384"),
    "PS512": ("RSA", "sha512"),
    "ES256": ("P-256", "sha256"),
    "ES384": ("P-384", "sha384"),
    "ES512": ("P-521", "sha512"),
    "EdDSA": ("Ed25519", "sha512"),
}

#: The JWS algorithms LocalIssuer can sign with.
SUPPORTED_ALGS: Tuple[str, ...] = tuple(_ALGS)

# --------------------------------------------------------------------------
# small encoding helpers
# --------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url_encode` (adds the padding back)."""
    raw = text.encode("ascii")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode("utf-8")


def _apply(base: Dict[str, Any], changes: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """Merge ``changes`` into a copy of ``base``; values that are OMIT delete."""
    out = dict(base)
    for name, value in (changes or {}).items():
        if value is OMIT:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def _int_bytes(value: int, length: Optional[int] = None) -> bytes:
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")


def token_hash(value: str, alg: str) -> str:
    """at_hash / c_hash of ``value`` for an id_token signed with ``alg``.

    OIDC Core 3.1.3.6 and 3.3.2.11: hash the ASCII octets of the value with
    the hash used by the JWS alg, keep the left-most half, base64url-encode.
    SHA-256 for *256, SHA-384 for *384, SHA-512 for *512 and for EdDSA with
    Ed25519.
    """
    if alg not in _ALGS:
        raise ValueError(f"no at_hash/c_hash hash is defined here for alg {alg!r}")
    digest = hashlib.new(_ALGS[alg][1], value.encode("ascii")).digest()
    return b64url_encode(digest[: len(digest) // 2])


def forge_token(header: Mapping[str, Any], claims: Mapping[str, Any], *, signature: bytes = b"") -> str:
    """Build a JWS compact string with an arbitrary header and signature.

    For attack tests, e.g. ``forge_token({"alg": "none"}, claims)`` gives an
    unsecured JWT (RFC 7519 section 6) with an empty signature part.
    """
    return ".".join(
        (b64url_encode(_json_bytes(dict(header))), b64url_encode(_json_bytes(dict(claims))), b64url_encode(signature))
    )


def hmac_token(claims: Mapping[str, Any], secret: Union[bytes, str], *, alg: str = "HS256",
               header: Optional[Mapping[str, Any]] = None) -> str:
    """An HMAC-signed JWS (RFC 7518 3.2), for the "HS256 signed with the RSA
    public key" attack: pass the public key's PEM bytes as ``secret``."""
    hashes = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    if alg not in hashes:
        raise ValueError(f"not an HMAC alg: {alg!r}")
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    head = _apply({"alg": alg, "typ": "JWT"}, header)
    signing_input = b64url_encode(_json_bytes(head)) + "." + b64url_encode(_json_bytes(dict(claims)))
    sig = hmac.new(secret, signing_input.encode("ascii"), hashes[alg]).digest()
    return signing_input + "." + b64url_encode(sig)


# --------------------------------------------------------------------------
# keys
# --------------------------------------------------------------------------


def _generate(family: str):
    # Imported here so that importing this module stays cheap.
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if family == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if family == "P-256":
        return ec.generate_private_key(ec.SECP256R1())
    if family == "P-384":
        return ec.generate_private_key(ec.SECP384R1())
    if family == "P-521":
        return ec.generate_private_key(ec.SECP521R1())
    if family == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key family {family!r}")


# Module-level pool of generated private keys, per key family. Issuer number
# N's i-th key of a family is pool[family][i]: keys are shared *between*
# issuers in one process (this is a test helper), never within one issuer.
_POOL_LOCK = threading.Lock()
_KEY_POOL: Dict[str, List[Any]] = {}


def _pooled_key(family: str, index: int):
    with _POOL_LOCK:
        keys = _KEY_POOL.setdefault(family, [])
        while len(keys) <= index:
            keys.append(_generate(family))
        return keys[index]


def _public_jwk(private_key, alg: str, kid: str) -> Dict[str, Any]:
    """The public JWK (RFC 7517 / RFC 7518 section 6 / RFC 8037) for a key."""
    family = _ALGS[alg][0]
    public = private_key.public_key()
    jwk: Dict[str, Any]
    if family == "RSA":
        numbers = public.public_numbers()
        jwk = {"kty": "RSA", "n": b64url_encode(_int_bytes(numbers.n)), "e": b64url_encode(_int_bytes(numbers.e))}
    elif family in ("P-256", "P-384", "P-521"):
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8  # RFC 7518 6.2.1.2: full field size
        jwk = {
            "kty": "EC",
            "crv": family,
            "x": b64url_encode(_int_bytes(numbers.x, size)),
            "y": b64url_encode(_int_bytes(numbers.y, size)),
        }
    else:
        from cryptography.hazmat.primitives import serialization

        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def sign_raw(private_key, alg: str, header: bytes, payload: bytes) -> str:
    """A JWS over exactly these header and payload bytes, for tests of JSON
    an issuer would never write (duplicate members, arrays, non-JSON)."""
    signing_input = (b64url_encode(header) + "." + b64url_encode(payload)).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url_encode(_sign(private_key, alg, signing_input))


def _sign(private_key, alg: str, signing_input: bytes) -> bytes:
    """JWS signature per RFC 7518 section 3 (and RFC 8037 for EdDSA)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    hash_cls = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[_ALGS[alg][1]]
    if alg.startswith("RS"):  # RSASSA-PKCS1-v1_5, RFC 7518 3.3
        return private_key.sign(signing_input, padding.PKCS1v15(), hash_cls())
    if alg.startswith("PS"):  # RSASSA-PSS, MGF1 with the same hash, salt = hash size, RFC 7518 3.5
        pss = padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)
        return private_key.sign(signing_input, pss, hash_cls())
    if alg.startswith("ES"):  # ECDSA, R || S fixed width, RFC 7518 3.4
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hash_cls())))
        size = (private_key.curve.key_size + 7) // 8
        return _int_bytes(r, size) + _int_bytes(s, size)
    if alg == "EdDSA":  # RFC 8037 3.1
        return private_key.sign(signing_input)
    raise ValueError(f"unsupported alg {alg!r}")


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


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    subject: str
    scopes: List[str]
    nonce: Optional[str]
    code_challenge: Optional[str]
    auth_time: int
    expires_at: float


class _OAuthError(Exception):
    """An RFC 6749 error: ``error`` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


# --------------------------------------------------------------------------
# the issuer
# --------------------------------------------------------------------------

_DEFAULT_SPA_REDIRECT_URIS = ("http://127.0.0.1:8080/", "http://localhost:8080/")
_DEFAULT_USERS = {
    "alice": {"password": "alice", "sub": "alice", "name": "Alice Example", "email": "alice@example.com"},
    "bob": {"password": "bob", "sub": "bob", "name": "Bob Example", "email": "bob@example.com"},
}


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        ``wte``). :meth:`register_client` adds or replaces clients later.
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
        audience: Union[str, Sequence[str]] = "api://contacts",
        users: Optional[Mapping[str, Any]] = None,
        clients: Optional[Mapping[str, Mapping[str, Any]]] = None,
        token_lifetime: int = 3600,
        client_token_sub: bool = False,
        scope_format: str = "string",
        spa_redirect_uris: Sequence[str] = _DEFAULT_SPA_REDIRECT_URIS,
        issuer_path: str = "",
        fresh_keys: bool = False,
    ) -> None:
        if not _loopback_host(host):
            raise ValueError(
                f"LocalIssuer is a test/development tool and binds to loopback only; got host {host!r}"
            )
        if scope_format not in ("string", "list"):
            raise ValueError("scope_format must be 'string' or 'list'")
        if issuer_path and (not issuer_path.startswith("/") or issuer_path.endswith("/")):
            raise ValueError("issuer_path must start with '/' and not end with '/'")
        self.host = host
        self._port = int(port)
        self.audience = audience if isinstance(audience, str) else list(audience)
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
        else:
            for client_id, entry in clients.items():
                self.register_client(
                    client_id,
                    redirect_uris=entry.get("redirect_uris", ()),
                    scopes=entry.get("scopes", ""),
                    grant_types=entry.get("grant_types", ("implicit",)),
                    secret=entry.get("secret"),
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
        #: the last 1000 requests as (method, path) tuples, for assertions
        self.requests: deque = deque(maxlen=1000)

        self._server: Optional[ThreadingHTTPServer] = None
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
            server_cls = _IPv6Server if ":" in self.host else _Server
            bind_host = "127.0.0.1" if self.host == "localhost" else self.host
            server = server_cls((bind_host, self._port), _Handler)
            server.provider = self  # type: ignore[attr-defined]
            self._port = server.server_address[1]
            self._stop_event = threading.Event()
            self._server = server
            self._wake = socket.socketpair()
            self._thread = threading.Thread(
                target=server.serve_until_woken, args=(self._wake[0],),
                name=f"LocalIssuer:{self._port}", daemon=True,
            )
            self._thread.start()
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

    def __exit__(self, *exc_info) -> None:
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
        """Make the ``"discovery"`` or ``"jwks"`` endpoint misbehave until
        :meth:`clear_faults`.

        ``delay``: sleep that many seconds before answering. ``status``: the
        HTTP status to answer with (default 200). ``body``: bytes or str sent
        as is, or a dict/list sent as JSON; default: the normal document for
        a 2xx status, else ``{"error": "server_error"}``. ``content_type``:
        default ``application/json``. ``headers``: extra response headers
        (e.g. ``{"Location": ...}`` or ``{"Retry-After": "5"}``).
        ``set_fault("jwks", delay=2)`` alone just slows the normal answer.
        """
        if kind not in ("discovery", "jwks"):
            raise ValueError("fault kind must be 'discovery' or 'jwks'")
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

    def private_key(self, kid: str):
        with self._lock:
            return self._keys[kid].private_key

    def public_key(self, kid: str):
        """The ``cryptography`` public key object of ``kid``."""
        return self.private_key(kid).public_key()

    def public_key_pem(self, kid: Optional[str] = None) -> bytes:
        """SubjectPublicKeyInfo PEM of ``kid`` (default: the signing key),
        e.g. as the HMAC secret of the HS256 key-confusion attack."""
        from cryptography.hazmat.primitives import serialization

        return self.public_key(kid or self.signing_kid).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

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
        the chosen key's own alg, whatever ``header["alg"]`` says."""
        key = self._pick_key(alg, kid)
        head: Dict[str, Any] = {"alg": key.alg, "kid": key.kid}
        if typ is not None:
            head["typ"] = typ
        head = _apply(head, header)
        signing_input = (b64url_encode(_json_bytes(head)) + "." + b64url_encode(_json_bytes(dict(claims)))).encode(
            "ascii"
        )
        signature = _sign(key.private_key, key.alg, signing_input)
        return signing_input.decode("ascii") + "." + b64url_encode(signature)

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
        expires_in: Optional[int] = _DEFAULT,  # type: ignore[assignment]
        issuer: Optional[str] = None,
        typ: Optional[str] = "at+jwt",
        omit: Iterable[str] = (),
        client_id: Optional[str] = "spa",
        now: Optional[float] = None,
    ) -> str:
        """Mint an access token (RFC 9068 shape by default).

        Claims: ``iss`` (this issuer, or ``issuer``), ``sub`` (``subject``;
        None leaves it out, like a client-credentials token), ``aud``
        (default: the issuer's ``audience``; a list gives an array),
        ``scope`` (a str is sent as is, space-delimited; a list/tuple is sent
        as a JSON array like IdentityServer v3; None leaves it out),
        ``client_id``, ``iat`` and ``nbf`` (``now``, default the current
        time), ``exp`` (``now + expires_in``; None leaves it out), ``jti``.
        Then ``claims`` overrides/extends them (OMIT removes one) and the
        names in ``omit`` are removed.

        Header: ``alg``, ``kid``, ``typ`` (``"at+jwt"``; None leaves it out),
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
        return self.sign(body, alg=alg, kid=kid, header=header, typ=typ)

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
                        grant_types: Iterable[str] = ("implicit",), secret: Optional[str] = None) -> None:
        """Register (or replace) a dev-provider client. ``secret=None``: a
        public client (no client authentication; PKCE required for code).
        Redirect URIs are compared exactly (RFC 6749 3.1.2, OIDC Core
        3.1.2.1) and must not contain a fragment (RFC 6749 3.1.2)."""
        uris = list(redirect_uris)
        for uri in uris:
            if "#" in uri:
                raise ValueError(f"redirect URI must not contain a fragment: {uri!r}")
        scope_list = scopes.split() if isinstance(scopes, str) else list(scopes)
        with self._lock:
            self.clients[client_id] = {
                "redirect_uris": uris,
                "scopes": scope_list,
                "grant_types": list(grant_types),
                "secret": secret,
            }

    def _format_scope(self, scopes: List[str]) -> Union[str, List[str]]:
        return list(scopes) if self.scope_format == "list" else " ".join(scopes)

    def _issue_user_tokens(self, client_id: str, user: Mapping[str, Any], scopes: List[str], *,
                           nonce: Optional[str], with_access_token: bool, auth_time: int) -> Dict[str, str]:
        result: Dict[str, str] = {}
        access_token = None
        if with_access_token:
            access_token = self.mint(
                {"auth_time": auth_time, "amr": ["pwd"]},
                subject=user["sub"], scope=self._format_scope(scopes), client_id=client_id,
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


# --------------------------------------------------------------------------
# HTTP server and request handler
# --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay fault never blocks stop()
    allow_reuse_address = True  # rebind the same port right after stop()

    def serve_until_woken(self, wake: socket.socket) -> None:
        """Like ``serve_forever()``, but instead of polling for a shutdown
        flag it sleeps in ``select`` until a connection arrives or a byte is
        written to the other end of ``wake``: no polling, and stop() returns
        at once."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _events in selector.select()]
                if wake in ready:
                    return
                if self in ready:
                    # BaseServer's accept-and-dispatch step (what serve_forever calls).
                    self._handle_request_noblock()


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


_MAX_BODY = 64 * 1024

_HTML_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)

_LOGIN_STYLE = (
    "body{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em}"
    ".warning{background:#fff3cd;border:1px solid #c9a227;padding:.6em}"
    ".error{color:#a00}label{display:block;margin:.6em 0}"
)


class _Handler(BaseHTTPRequestHandler):
    server_version = "oidc_guard-LocalIssuer/dev"
    protocol_version = "HTTP/1.0"  # one request per connection: stop() really cuts clients off

    @property
    def provider(self) -> LocalIssuer:
        return self.server.provider  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    # --------------------------------------------------------------- utils

    def _send(self, status: int, body: bytes, content_type: str, headers: Iterable[Tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: Iterable[Tuple[str, str]] = ()) -> None:
        self._send(status, _json_bytes(obj), "application/json", headers)

    def _route(self) -> Tuple[Optional[str], Dict[str, str], Optional[str]]:
        """(path relative to the issuer, single-valued query, error)."""
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        prefix = self.provider.issuer_path
        if prefix:
            if not (path == prefix or path.startswith(prefix + "/")):
                return None, {}, None
            path = path[len(prefix):]
        params, error = _single_values(parts.query)
        return path, params, error

    def _read_form(self) -> Tuple[Dict[str, str], Optional[str]]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return {}, "bad Content-Length"
        if length < 0 or length > _MAX_BODY:
            return {}, "request body too large"
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return {}, "Content-Type must be application/x-www-form-urlencoded"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return {}, "request body is not UTF-8"
        return _single_values(text)

    # ------------------------------------------------------------- methods

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path, params, error = self._route()
        self.provider.requests.append(("GET", self.path))
        if path == "/.well-known/openid-configuration":
            self._serve_document("discovery")
        elif path == "/jwks":
            self._serve_document("jwks")
        elif path == "/authorize":
            self.provider._count("authorize")
            self._authorize(params, error, form=None)
        elif path == "/userinfo":
            self.provider._count("userinfo")
            self._userinfo()
        else:
            self._send_json(404, {"error": "not_found"})

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        path, _query, _error = self._route()
        self.provider.requests.append(("POST", self.path))
        if path == "/authorize":
            self.provider._count("authorize")
            form, error = self._read_form()
            self._authorize(form, error, form=form)
        elif path == "/token":
            self.provider._count("token")
            self._token()
        elif path == "/userinfo":
            self.provider._count("userinfo")
            self._userinfo()
        elif path in ("/.well-known/openid-configuration", "/jwks"):
            self._send_json(405, {"error": "method_not_allowed"}, [("Allow", "GET")])
        else:
            self._send_json(404, {"error": "not_found"})

    # ---------------------------------------------------- discovery / jwks

    def _serve_document(self, kind: str) -> None:
        provider = self.provider
        provider._count(kind)
        with provider._lock:
            fault = provider._faults.get(kind)
            stop_event = provider._stop_event
        if fault is not None and fault.delay:
            # Wait, but give up (answer nothing) if the issuer is stopped meanwhile.
            if stop_event.wait(fault.delay):
                self.close_connection = True
                return
        document = provider.discovery_document() if kind == "discovery" else provider.jwks()
        headers: List[Tuple[str, str]] = []
        if kind == "jwks" and provider.jwks_max_age is not None:
            headers.append(("Cache-Control", f"max-age={int(provider.jwks_max_age)}"))
        if fault is None or (fault.status is None and fault.body is None and fault.content_type is None
                             and not fault.headers):
            self._send_json(200, document, headers)
            return
        status = 200 if fault.status is None else int(fault.status)
        body = fault.body
        if body is None:
            body = document if 200 <= status < 300 else {"error": "server_error"}
        if isinstance(body, (dict, list)):
            body = _json_bytes(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        headers.extend(fault.headers.items())
        self._send(status, body, fault.content_type or "application/json", headers)

    # ----------------------------------------------------------- /authorize

    def _error_page(self, status: int, message: str) -> None:
        page = (
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Sign-in error - oidc_guard development provider</title>"
            f"<style>{_LOGIN_STYLE}</style></head><body>"
            "<p class=\"warning\"><strong>Development only, not for production.</strong></p>"
            f"<h1>Sign-in request rejected</h1><p class=\"error\" id=\"error\">{html.escape(message)}</p>"
            "</body></html>"
        )
        self._send(status, page.encode("utf-8"), "text/html; charset=utf-8", _HTML_HEADERS)

    def _redirect(self, uri: str, params: Mapping[str, str], fragment: bool) -> None:
        encoded = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        if fragment:
            location = f"{uri}#{encoded}"
        else:
            location = f"{uri}{'&' if '?' in uri else '?'}{encoded}"
        self._send(302, b"", "text/plain", [("Location", location), ("Cache-Control", "no-store")])

    def _authorize(self, params: Dict[str, str], parse_error: Optional[str], form: Optional[Dict[str, str]]) -> None:
        """Authorization endpoint (development only, not for production).

        OIDC Core 3.1.2 / 3.2.2: the client and the exact redirect URI are
        checked first; if either is wrong nothing is redirected anywhere (an
        error page is shown). Other errors go back to the client (RFC 6749
        4.1.2.1 / 4.2.2.1). GET shows the login form; POST checks the
        credentials and answers with a 302 to the redirect URI.
        """
        provider = self.provider
        if parse_error:
            self._error_page(400, parse_error)
            return
        client_id = params.get("client_id", "")
        with provider._lock:
            client = provider.clients.get(client_id)
            client = None if client is None else {k: (list(v) if isinstance(v, list) else v) for k, v in client.items()}
        if client is None:
            self._error_page(400, f"Unknown client_id {client_id!r}.")
            return
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client["redirect_uris"]:
            self._error_page(400, f"redirect_uri {redirect_uri!r} is not registered for client {client_id!r}.")
            return

        response_type = frozenset(params.get("response_type", "").split())
        implicit = response_type in (frozenset({"id_token", "token"}), frozenset({"id_token"}))
        use_fragment = "token" in response_type or "id_token" in response_type
        state = params.get("state")

        def fail(error: str, description: str) -> None:
            out = {"error": error, "error_description": description}
            if state is not None:
                out["state"] = state
            self._redirect(redirect_uri, out, use_fragment)

        if not implicit and response_type != frozenset({"code"}):
            fail("unsupported_response_type", "response_type must be 'id_token token', 'id_token' or 'code'")
            return
        grant = "implicit" if implicit else "authorization_code"
        if grant not in client["grant_types"]:
            fail("unauthorized_client", f"client may not use the {grant} flow")
            return
        requested = params.get("scope", "").split()
        if "openid" not in requested:
            fail("invalid_scope", "the openid scope is required")
            return
        allowed = set(client["scopes"]) | {"openid"}
        granted: List[str] = []
        for scope in requested:  # RFC 6749 3.3: the server may grant fewer scopes
            if scope in allowed and scope not in granted:
                granted.append(scope)
        nonce = params.get("nonce")
        if implicit and not nonce:
            fail("invalid_request", "nonce is required for the implicit flow (OIDC Core 3.2.2.1)")
            return
        challenge = params.get("code_challenge")
        if not implicit:
            method = params.get("code_challenge_method", "plain" if challenge else None)
            if challenge is not None and method != "S256":
                fail("invalid_request", "only code_challenge_method S256 is supported")
                return
            if client["secret"] is None and not challenge:
                fail("invalid_request", "public clients must use PKCE (RFC 7636) with S256")
                return
        if params.get("prompt") == "none":
            fail("login_required", "this development provider keeps no sessions")
            return

        if form is None:
            self._login_page(params, client_id, granted, error=None)
            return
        username = form.get("username", "")
        password = form.get("password", "")
        with provider._lock:
            user = provider.users.get(username)
            user = None if user is None else dict(user)
        expected = (user or {}).get("password", "")
        # Compare in constant time even for unknown users.
        if not (hmac.compare_digest(password.encode("utf-8"), str(expected).encode("utf-8")) and user is not None):
            self._login_page(params, client_id, granted, error="Wrong username or password.", status=200)
            return

        auth_time = int(time.time())
        if implicit:
            out = provider._issue_user_tokens(
                client_id, user, granted, nonce=nonce, auth_time=auth_time,
                with_access_token="token" in response_type,
            )
        else:
            code = secrets.token_urlsafe(24)
            with provider._lock:
                now = time.time()
                for stale in [c for c, rec in provider._codes.items() if rec.expires_at < now]:
                    del provider._codes[stale]
                provider._codes[code] = _Code(
                    client_id, redirect_uri, user["sub"], granted, nonce, challenge, auth_time, now + 60,
                )
            out = {"code": code}
        if state is not None:
            out["state"] = state
        self._redirect(redirect_uri, out, fragment=implicit)

    def _login_page(self, params: Mapping[str, str], client_id: str, scopes: List[str], *,
                    error: Optional[str], status: int = 200) -> None:
        esc = html.escape
        hidden = "".join(
            f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'
            for name, value in params.items()
            if name not in ("username", "password")
        )
        error_html = f'<p class="error" id="error" role="alert">{esc(error)}</p>' if error else ""
        hint = ""
        if self.provider._demo_users:
            hint = "<p>Demo users: <code>alice</code> / <code>alice</code>, <code>bob</code> / <code>bob</code>.</p>"
        page = (
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Sign in - oidc_guard development provider</title>"
            f"<style>{_LOGIN_STYLE}</style></head><body>"
            "<p class=\"warning\" id=\"dev-warning\"><strong>Development only, not for production.</strong> "
            "This sign-in page is oidc_guard.testing.LocalIssuer, a stand-in OpenID Provider for tests "
            "and demos, with hard-coded users.</p>"
            "<h1>Sign in</h1>"
            f"<p>Application <code>{esc(client_id)}</code> asks for: <code>{esc(' '.join(scopes))}</code></p>"
            f"{error_html}"
            f"<form method=\"post\" action=\"{esc(self.provider.issuer_path)}/authorize\">{hidden}"
            "<label>Username <input id=\"username\" name=\"username\" autocomplete=\"username\" autofocus></label>"
            "<label>Password <input id=\"password\" name=\"password\" type=\"password\" "
            "autocomplete=\"current-password\"></label>"
            "<button id=\"sign-in\" type=\"submit\">Sign in</button></form>"
            f"{hint}</body></html>"
        )
        self._send(status, page.encode("utf-8"), "text/html; charset=utf-8", _HTML_HEADERS)

    # --------------------------------------------------------------- /token

    def _token(self) -> None:
        """Token endpoint (development only, not for production): RFC 6749
        4.4 client_credentials and 4.1.3 authorization_code (+ RFC 7636
        PKCE). Errors per RFC 6749 5.2, as JSON."""
        no_store = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]  # RFC 6749 5.1
        form, error = self._read_form()
        try:
            if error:
                raise _OAuthError("invalid_request", error)
            client_id, client, method = self._authenticate_client(form)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise _OAuthError("invalid_request", "grant_type is missing")
            if grant_type == "client_credentials":
                body = self._client_credentials(client_id, client, form)
            elif grant_type == "authorization_code":
                body = self._authorization_code(client_id, client, form)
            else:
                raise _OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        except _OAuthError as exc:
            headers = list(no_store)
            if exc.status == 401:
                headers.append(("WWW-Authenticate", 'Basic realm="oidc_guard-dev"'))
            self._send_json(exc.status, {"error": exc.error, "error_description": exc.description}, headers)
            return
        self._send_json(200, body, no_store)

    def _userinfo(self) -> None:
        """UserInfo endpoint (OIDC Core 5.3; development only). Accepts only
        an access token from the Authorization header (RFC 6750 2.1), checks
        it with PyJWT against this issuer's own keys (the alg comes from the
        key, never from the token), and answers with the user's claims for
        the token's scopes. Errors: RFC 6750 section 3."""
        import jwt

        provider = self.provider
        realm = 'Bearer realm="oidc_guard-dev"'
        scheme, _, token = (self.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._send_json(401, {"error": "invalid_request", "error_description": "no bearer token"},
                            [("WWW-Authenticate", realm)])
            return
        token = token.strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            with provider._lock:
                key = provider._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise jwt.InvalidTokenError("unknown kid")
            claims = jwt.decode(token, key.private_key.public_key(), algorithms=[key.alg],
                                issuer=provider.issuer, audience=provider.audience,
                                options={"require": ["exp", "sub"]})
        except jwt.InvalidTokenError as exc:
            description = f"access token rejected: {exc}"
            self._send_json(401, {"error": "invalid_token", "error_description": description},
                            [("WWW-Authenticate", f'{realm}, error="invalid_token"')])
            return
        scope = claims.get("scope", "")
        scopes = set(scope.split() if isinstance(scope, str) else scope)
        out: Dict[str, Any] = {"sub": claims["sub"]}
        with provider._lock:
            user = next((dict(u) for u in provider.users.values() if u["sub"] == claims["sub"]), {})
        if "profile" in scopes and "name" in user:
            out["name"] = user["name"]
        if "email" in scopes and "email" in user:
            out["email"] = user["email"]
        self._send_json(200, out, [("Cache-Control", "no-store")])

    def _authenticate_client(self, form: Mapping[str, str]) -> Tuple[str, Dict[str, Any], str]:
        """RFC 6749 2.3.1: client_secret_basic or client_secret_post, never
        both; public clients (no secret) send only client_id."""
        auth = self.headers.get("Authorization")
        body_id = form.get("client_id")
        body_secret = form.get("client_secret")
        secret: Optional[str]
        if auth is not None:
            scheme, _, credentials = auth.strip().partition(" ")
            if scheme.lower() != "basic":
                raise _OAuthError("invalid_client", "only HTTP Basic client authentication is supported", 401)
            if body_secret is not None:
                raise _OAuthError("invalid_request", "more than one client authentication method was used")
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise _OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                raise _OAuthError("invalid_client", "malformed Basic credentials", 401)
            # RFC 6749 2.3.1: id and secret are form-urlencoded before Basic.
            client_id = urllib.parse.unquote_plus(raw_id)
            secret = urllib.parse.unquote_plus(raw_secret)
            if body_id is not None and body_id != client_id:
                raise _OAuthError("invalid_request", "client_id in the body differs from the authenticated client")
            method = "client_secret_basic"
        else:
            client_id = body_id or ""
            secret = body_secret
            method = "client_secret_post" if secret is not None else "none"
        with self.provider._lock:
            client = self.provider.clients.get(client_id)
            client = None if client is None else dict(client)
        if client is None:
            raise _OAuthError("invalid_client", "unknown client", 401)
        expected = client.get("secret")
        if expected is None:
            if secret is not None:
                raise _OAuthError("invalid_client", "this public client has no secret", 401)
        elif secret is None or not hmac.compare_digest(secret.encode("utf-8"), expected.encode("utf-8")):
            raise _OAuthError("invalid_client", "client authentication failed", 401)
        return client_id, client, method

    def _client_credentials(self, client_id: str, client: Mapping[str, Any], form: Mapping[str, str]) -> Dict[str, Any]:
        provider = self.provider
        if "client_credentials" not in client["grant_types"] or client.get("secret") is None:
            # RFC 6749 4.4: only confidential clients may use this grant.
            raise _OAuthError("unauthorized_client", "client may not use the client_credentials grant")
        allowed = list(client["scopes"])
        if "scope" in form:
            requested = form["scope"].split()
            refused = [s for s in requested if s not in allowed]
            if refused:
                raise _OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(refused)}")
            granted = list(dict.fromkeys(requested))
        else:
            granted = allowed  # RFC 6749 3.3: the pre-defined default scope
        token = provider.mint(
            subject=client_id if provider.client_token_sub else None,
            scope=provider._format_scope(granted),
            client_id=client_id,
        )
        return {"access_token": token, "token_type": "Bearer", "expires_in": provider.token_lifetime,
                "scope": " ".join(granted)}

    def _authorization_code(self, client_id: str, client: Mapping[str, Any], form: Mapping[str, str]) -> Dict[str, Any]:
        provider = self.provider
        if "authorization_code" not in client["grant_types"]:
            raise _OAuthError("unauthorized_client", "client may not use the authorization_code grant")
        code = form.get("code", "")
        with provider._lock:
            record = provider._codes.pop(code, None)  # single use (RFC 6749 4.1.2)
        if record is None or record.expires_at < time.time():
            raise _OAuthError("invalid_grant", "unknown, used or expired code")
        if record.client_id != client_id:
            raise _OAuthError("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != record.redirect_uri:  # RFC 6749 4.1.3
            raise _OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        if record.code_challenge is not None:  # RFC 7636 4.6
            verifier = form.get("code_verifier", "")
            computed = b64url_encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            if not hmac.compare_digest(computed, record.code_challenge):
                raise _OAuthError("invalid_grant", "PKCE code_verifier does not match")
        with provider._lock:
            user = next((dict(u) for u in provider.users.values() if u["sub"] == record.subject), {"sub": record.subject})
        out: Dict[str, Any] = dict(provider._issue_user_tokens(
            client_id, user, record.scopes, nonce=record.nonce, with_access_token=True,
            auth_time=record.auth_time,
        ))
        out["expires_in"] = provider.token_lifetime
        return out


def _single_values(query: str) -> Tuple[Dict[str, str], Optional[str]]:
    """Parse a query/form string; a repeated parameter is an error
    (RFC 6749 3.1 / 3.2: parameters MUST NOT be included more than once)."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, max_num_fields=100)
    except ValueError as exc:
        return {}, f"malformed parameters: {exc}"
    out: Dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            return {}, f"parameter {name!r} given more than once"
        out[name] = value
    return out, None


# --------------------------------------------------------------------------
# pytest plugin (entry point pytest11: oidc_guard = oidc_guard.testing)
# --------------------------------------------------------------------------


def _make_fixture_module(pytest_module) -> "types.ModuleType":
    """Build the plugin object holding the fixtures. It is done inside
    :func:`pytest_configure` so that pytest is only imported when pytest
    itself loads this plugin (pytest reads fixtures from a module's dict)."""
    import types

    fixture = pytest_module.fixture

    @fixture
    def oidc_issuer(request):
        """A started :class:`LocalIssuer` (stopped after the test).
        Configure it with ``@pytest.mark.oidc_issuer(algs=("ES256",), ...)``
        (keyword arguments of LocalIssuer)."""
        marker = request.node.get_closest_marker("oidc_issuer")
        kwargs = dict(marker.kwargs) if marker else {}
        issuer = LocalIssuer(**kwargs).start()
        try:
            yield issuer
        finally:
            issuer.stop()

    @fixture
    def oidc_issuer_factory():
        """Call with LocalIssuer keyword arguments to get more started
        issuers; all are stopped after the test."""
        started: List[LocalIssuer] = []

        def make(**kwargs: Any) -> LocalIssuer:
            issuer = LocalIssuer(**kwargs).start()
            started.append(issuer)
            return issuer

        try:
            yield make
        finally:
            for issuer in started:
                issuer.stop()

    module = types.ModuleType(_FIXTURE_PLUGIN_NAME, "oidc_guard's LocalIssuer fixtures")
    module.oidc_issuer = oidc_issuer  # type: ignore[attr-defined]
    module.oidc_issuer_factory = oidc_issuer_factory  # type: ignore[attr-defined]
    return module


_FIXTURE_PLUGIN_NAME = "oidc_guard.testing.fixtures"


def pytest_configure(config) -> None:
    import pytest

    config.addinivalue_line(
        "markers", "oidc_issuer(**kwargs): LocalIssuer keyword arguments for the oidc_issuer fixture"
    )
    if not config.pluginmanager.has_plugin(_FIXTURE_PLUGIN_NAME):
        config.pluginmanager.register(_make_fixture_module(pytest), _FIXTURE_PLUGIN_NAME)
