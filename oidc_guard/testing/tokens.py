"""Minting and forging: :class:`Minter` (the key ring that signs the test
issuer's access tokens and ID Tokens, keeps its reference tokens and
revoked JWT ids, and answers introspection for them), and helpers for
attack tests:
at_hash/c_hash, JWS with an arbitrary header and signature (``alg: none``
and friends), and HMAC-signed JWS (the key-confusion attack).

Test and development tool only; never use it in production.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Union

from .jose import b64url_encode, compact_json, with_changes
from .keyring import KeyRing
from .keys import SUPPORTED_ALGS, hash_name, sign_jws

__all__ = ["token_hash", "forge_token", "hmac_token", "Minter"]

_DEFAULT: Any = object()  # "argument not given" marker


def token_hash(value: str, alg: str) -> str:
    """at_hash / c_hash of ``value`` for an id_token signed with ``alg``.

    OIDC Core 3.1.3.6 and 3.3.2.11: hash the ASCII octets of the value with
    the hash used by the JWS alg, keep the left-most half, base64url-encode.
    SHA-256 for ``*256``, SHA-384 for ``*384``, SHA-512 for ``*512`` and
    for EdDSA with Ed25519.
    """
    if alg not in SUPPORTED_ALGS:
        raise ValueError(f"no at_hash/c_hash hash is defined here for alg {alg!r}")
    digest = hashlib.new(hash_name(alg), value.encode("ascii")).digest()
    return b64url_encode(digest[: len(digest) // 2])


def forge_token(header: Mapping[str, Any], claims: Mapping[str, Any], *, signature: bytes = b"") -> str:
    """Build a JWS compact string with an arbitrary header and signature.

    For attack tests, e.g. ``forge_token({"alg": "none"}, claims)`` gives an
    unsecured JWT (RFC 7519 section 6) with an empty signature part.
    """
    return ".".join(
        (b64url_encode(compact_json(dict(header))), b64url_encode(compact_json(dict(claims))), b64url_encode(signature))
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
    head = with_changes({"alg": alg, "typ": "JWT"}, header)
    signing_input = b64url_encode(compact_json(head)) + "." + b64url_encode(compact_json(dict(claims)))
    sig = hmac.new(secret, signing_input.encode("ascii"), hashes[alg]).digest()
    return signing_input + "." + b64url_encode(sig)


class Minter(KeyRing):
    """A key ring that mints tokens: access tokens (RFC 9068 shape, or
    IdentityServer v3's), ID Tokens, reference tokens, and the signing of
    any claims and header, with what an issuer answers for them later
    (introspection, revocation). :class:`~oidc_guard.testing.LocalIssuer`
    is one; a subclass provides :attr:`issuer`."""

    def __init__(self, *, fresh_keys: bool = False, token_lifetime: int = 3600, token_shape: str = "rfc9068",
                 audience: Union[str, Sequence[str], None] = None) -> None:
        if token_shape not in ("rfc9068", "identityserver3"):
            raise ValueError("token_shape must be 'rfc9068' or 'identityserver3'")
        KeyRing.__init__(self, fresh_keys=fresh_keys)
        self.token_shape = token_shape
        self.token_lifetime = int(token_lifetime)
        # None: the shape's default ("api://contacts", or <issuer>/resources
        # for IdentityServer v3, which needs the port: see the property)
        self.__audience: Union[str, List[str], None] = (
            None if audience is None else audience if isinstance(audience, str) else list(audience))
        # Reference tokens (handle -> claims) and revoked JWT ids (RFC 7009).
        self.__book_lock = threading.Lock()
        self.__reference_tokens: Dict[str, Dict[str, Any]] = {}
        self.__revoked_jtis: Set[str] = set()

    @property
    def issuer(self) -> str:
        """The ``iss`` of the tokens (the subclass's issuer identifier)."""
        raise NotImplementedError

    @property
    def audience(self) -> Union[str, List[str]]:
        """``aud`` of minted access tokens and of the dev provider's tokens."""
        if self.__audience is not None:
            return self.__audience
        if self.token_shape == "identityserver3":
            return self.issuer + "/resources"
        return "api://contacts"

    @audience.setter
    def audience(self, value: Union[str, Sequence[str]]) -> None:
        self.__audience = value if isinstance(value, str) else list(value)

    @property
    def access_token_typ(self) -> str:
        """Header ``typ`` of the access tokens of this shape."""
        return "JWT" if self.token_shape == "identityserver3" else "at+jwt"

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
        head = with_changes(head, header)
        return sign_jws(key.private_key, key.alg, head, compact_json(dict(claims)))

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
        body = with_changes(body, claims)
        for name in omit:
            body.pop(name, None)
        if reference:
            handle = secrets.token_urlsafe(32)
            with self.__book_lock:
                self.__reference_tokens[handle] = body
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
        with self.__book_lock:
            claims = self.__reference_tokens.get(token)
            claims = None if claims is None else dict(claims)
        if claims is None and token.count(".") == 2:
            claims = self._verified_jwt(token)
            if claims is not None and self._is_revoked(claims.get("jti")):
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
        with self.__book_lock:
            if self.__reference_tokens.pop(token, None) is not None:
                return
        claims = self._verified_jwt(token)
        if claims is not None and isinstance(claims.get("jti"), str):
            with self.__book_lock:
                self.__revoked_jtis.add(claims["jti"])

    def _is_revoked(self, jti: Any) -> bool:
        """True when a JWT with this ``jti`` was revoked (:meth:`revoke`)."""
        with self.__book_lock:
            return jti in self.__revoked_jtis

    def _verified_jwt(self, token: str) -> Optional[Dict[str, Any]]:
        """The payload of a JWT signed by one of this issuer's keys, or None."""
        import jwt

        try:
            return dict(self._decode_jwt(token, options={"verify_aud": False, "verify_exp": False,
                                                        "verify_nbf": False, "verify_iat": False}))
        except jwt.InvalidTokenError:
            return None

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
        body = with_changes(body, extra)
        return self.sign(body, kid=key.kid, header=header, typ="JWT")
