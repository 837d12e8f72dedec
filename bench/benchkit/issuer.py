"""The issuer the benchmark validates against: oidc_guard.testing.LocalIssuer,
else a tiny loopback server (MiniIssuer); and the IdentityServer v3 shaped
token every section uses."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Sequence, Tuple

from benchkit import AUDIENCE



def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class MiniIssuer:
    """Fallback when ``oidc_guard.testing`` is not there: discovery + JWKS
    over http.server on 127.0.0.1, and ``sign(claims, alg=, header=)``."""

    def __init__(self, algs: Sequence[str]) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        self._keys: Dict[str, Tuple[str, Any]] = {}
        for alg in algs:
            if alg == "RS256":
                priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            elif alg == "ES256":
                priv = ec.generate_private_key(ec.SECP256R1())
            elif alg == "EdDSA":
                priv = ed25519.Ed25519PrivateKey.generate()
            else:
                raise ValueError(alg)
            self._keys[f"{alg.lower()}-bench"] = (alg, priv)
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def kids(self) -> List[str]:
        return list(self._keys)

    def key_alg(self, kid: str) -> str:
        return self._keys[kid][0]

    def public_key(self, kid: str) -> Any:
        return self._keys[kid][1].public_key()

    def _jwk(self, kid: str) -> Dict[str, Any]:
        from cryptography.hazmat.primitives import serialization

        alg, priv = self._keys[kid]
        pub = priv.public_key()
        if alg == "RS256":
            n = pub.public_numbers()
            jwk = {"kty": "RSA", "n": _b64url(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
                   "e": _b64url(n.e.to_bytes(3, "big"))}
        elif alg == "ES256":
            n = pub.public_numbers()
            jwk = {"kty": "EC", "crv": "P-256", "x": _b64url(n.x.to_bytes(32, "big")),
                   "y": _b64url(n.y.to_bytes(32, "big"))}
        else:
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        return jwk

    def jwks(self) -> Dict[str, Any]:
        return {"keys": [self._jwk(kid) for kid in self._keys]}

    def start(self) -> "MiniIssuer":
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/.well-known/openid-configuration":
                    doc = {"issuer": issuer.issuer, "jwks_uri": issuer.jwks_uri}
                elif self.path == "/jwks":
                    doc = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=3600")
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def issuer(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/jwks"

    def sign(self, claims: Dict[str, Any], *, alg: str, kid: Optional[str] = None,
             header: Optional[Dict[str, Any]] = None, typ: Optional[str] = "JWT") -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if kid is None:
            kid = next(k for k, (a, _) in self._keys.items() if a == alg)
        priv = self._keys[kid][1]
        head = {"alg": alg, "kid": kid}
        if typ is not None:
            head["typ"] = typ
        head.update(header or {})
        signing_input = (_b64url(json.dumps(head, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if alg == "RS256":
            sig = priv.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256":
            r, s = decode_dss_signature(priv.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = priv.sign(signing_input)
        return signing_input.decode() + "." + _b64url(sig)


def start_issuer(algs: Sequence[str]) -> Tuple[Any, str]:
    """(issuer, description): LocalIssuer when oidc_guard.testing exists."""
    try:
        from oidc_guard.testing import LocalIssuer
    except ImportError as exc:
        return MiniIssuer(algs).start(), f"bench MiniIssuer (oidc_guard.testing unavailable: {exc})"
    return LocalIssuer(algs=tuple(algs)).start(), "oidc_guard.testing.LocalIssuer"


def kid_for(issuer: Any, alg: str) -> str:
    return next(k for k in issuer.kids if issuer.key_alg(k) == alg)


def idsrv_claims(issuer_url: str, now: int, *, n: int = 0) -> Dict[str, Any]:
    """An IdentityServer v3 shaped access-token payload (see
    ../shared/seeds next to the repository): scope as a JSON array, aud = <issuer>/resources plus
    the APIs, client_id, amr, idp, auth_time, sub, nbf/exp, no iat."""
    return {
        "iss": issuer_url,
        "aud": [issuer_url + "/resources", AUDIENCE, "wte", "coordinate"],
        "exp": now + 3600,
        "nbf": now,
        "client_id": "Coordinate",
        "scope": ["profile", "openid", "contacts", "wte", "coordinate"],
        "sub": str(10 + n),
        "auth_time": now,
        "idp": "local",
        "amr": ["pwd"],
    }


def mint(issuer: Any, alg: str, now: int, n: int = 0) -> str:
    # IdentityServer v3 also sends x5t (ignored by every validator here).
    return issuer.sign(idsrv_claims(issuer.issuer, now, n=n), alg=alg, kid=kid_for(issuer, alg),
                       header={"x5t": "a3rMUgMFv9tPclLa6yF3zAkfquE"}, typ="JWT")
