#!/usr/bin/env python3
"""A back-end job ("wte") that calls the contacts API with its own token.

It uses the OAuth 2.0 client credentials grant (RFC 6749 section 4.4): no user
is involved, the worker authenticates as itself.  Then it shows both sides of
scope checking:

1. ``POST /wte/jobs`` needs scope ``wte``, which the worker has: expect 2xx.
2. ``GET /contacts`` needs scope ``contacts``, which it does not have: expect
   ``403`` with ``WWW-Authenticate: Bearer error="insufficient_scope"``
   (RFC 6750 section 3.1).

Exit code 0 only if both answers were the expected ones.

    python examples/wte_worker.py                       # dev provider defaults
    python examples/wte_worker.py --issuer http://127.0.0.1:4010 \\
        --client-secret wte-worker-dev-secret --resource api://contacts

Settings (argument, else environment, else the development provider's
defaults): --issuer / WTE_ISSUER, --api / WTE_API_URL, --client-id /
WTE_CLIENT_ID, --client-secret / WTE_CLIENT_SECRET, --scope / WTE_SCOPE,
--resource / WTE_RESOURCE.
``--reference`` uses the client registered for reference tokens (default
``wte-worker-ref``) and checks the token is opaque: the API validates it by
introspection (RFC 7662) instead of locally.
``--resource`` sends an RFC 8707 resource indicator, which providers such as
npm ``oidc-provider`` need to issue a JWT access token for the API.

``--dpop`` makes the token sender-constrained (RFC 9449): the worker holds an
EC P-256 key in memory only, sends a DPoP proof with the token request (the
provider answers ``token_type: DPoP`` and binds the token to the key), then a
fresh proof with every API call (``Authorization: DPoP``); when the provider
or the API asks for a nonce (``use_dpop_nonce`` + ``DPoP-Nonce``) it retries
once with it.  A copied token is useless without the key.

Standard library only (``--dpop`` uses ``cryptography`` for the key, which
oidc_guard depends on anyway).  The access token and the secret are never
printed.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

DEFAULT_ISSUER = "http://127.0.0.1:5000"
DEFAULT_API = "http://127.0.0.1:5001"
DEFAULT_CLIENT_ID = "wte-worker"
# The same worker registered for reference (opaque) access tokens, at the
# development provider and at scripts/oidc-provider (--reference).
DEFAULT_REFERENCE_CLIENT_ID = "wte-worker-ref"
DEFAULT_CLIENT_SECRET = "wte-secret"
DEFAULT_SCOPE = "wte"
MAX_RESPONSE_BYTES = 1 << 20


class WorkerError(Exception):
    """A step could not even be attempted (provider unreachable, bad answer)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Never follow redirects with credentials in the request.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)
# Loopback URLs (the demo, tests) never go through an HTTP proxy from the
# environment (http_proxy / https_proxy): it could not reach them anyway.
_LOOPBACK_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_request(
    method: str,
    url: str,
    *,
    headers: Optional[Dict[str, str]] = None,
    body: Optional[bytes] = None,
    timeout: float = 10.0,
) -> Tuple[int, Dict[str, str], bytes]:
    """One HTTP exchange: (status, headers, body); HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        opener = _LOOPBACK_OPENER if _is_loopback(url) else _OPENER
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read(MAX_RESPONSE_BYTES)
        finally:
            exc.close()
        return exc.code, dict(exc.headers.items()), data
    except (urllib.error.URLError, OSError) as exc:
        raise WorkerError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _unverified_claims(jwt: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Header and payload of a JWT, NOT verified: only to print the token's
    shape (the API is what verifies it)."""
    try:
        header_b64, payload_b64 = jwt.split(".")[:2]

        def part(b64: str) -> Dict[str, Any]:
            raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            value = json.loads(raw)
            return value if isinstance(value, dict) else {}

        return part(header_b64), part(payload_b64)
    except (ValueError, TypeError):
        return {}, {}


class DPoPSigner:
    """A DPoP key pair (ES256, P-256) held in memory, making one fresh proof
    per request (RFC 9449 section 4.2)."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = ec.generate_private_key(ec.SECP256R1())
        numbers = self._key.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256", "x": _b64url(numbers.x.to_bytes(32, "big")),
                    "y": _b64url(numbers.y.to_bytes(32, "big"))}

    def proof(self, method: str, url: str, access_token: Optional[str] = None, nonce: Optional[str] = None) -> str:
        import hashlib
        import time
        import uuid

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        parts = urllib.parse.urlsplit(url)
        claims: Dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": method, "iat": int(time.time()),
                                  # htu: the URL without query and fragment (section 4.2)
                                  "htu": urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))}
        if access_token is not None:
            claims["ath"] = _b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        r, s_ = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s_.to_bytes(32, "big"))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _header_value(headers: Dict[str, str], name: str) -> Optional[str]:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def api_request(method: str, url: str, token: str, *, dpop: Optional[DPoPSigner] = None,
                headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None,
                timeout: float = 10.0) -> Tuple[int, Dict[str, str], bytes]:
    """One API call with the access token: Bearer, or DPoP with a fresh
    proof, retried once with the server's nonce on ``use_dpop_nonce``."""
    base = dict(headers or {})
    if dpop is None:
        base["Authorization"] = "Bearer " + token
        return http_request(method, url, headers=base, body=body, timeout=timeout)
    base["Authorization"] = "DPoP " + token
    nonce: Optional[str] = None
    for _attempt in range(2):
        status, resp_headers, data = http_request(
            method, url, headers=dict(base, DPoP=dpop.proof(method, url, token, nonce)), body=body, timeout=timeout)
        challenge = _header_value(resp_headers, "WWW-Authenticate") or ""
        new_nonce = _header_value(resp_headers, "DPoP-Nonce")
        if status == 401 and 'error="use_dpop_nonce"' in challenge and new_nonce and nonce is None:
            nonce = new_nonce  # RFC 9449 section 9: retry once with the server's nonce
            continue
        break
    return status, resp_headers, data


def discover_token_endpoint(issuer: str, timeout: float = 10.0) -> str:
    """OpenID Connect Discovery 1.0 section 4: the token endpoint, after
    checking the document names exactly our issuer (section 4.3)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    status, _, body = http_request("GET", url, headers={"Accept": "application/json"}, timeout=timeout)
    doc = _json(body)
    if status != 200 or not isinstance(doc, dict):
        raise WorkerError(f"discovery at {url} answered HTTP {status}, not a JSON document")
    if doc.get("issuer") != issuer:
        raise WorkerError(f"discovery names issuer {doc.get('issuer')!r}, expected {issuer!r}")
    endpoint = doc.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise WorkerError("discovery has no token_endpoint")
    return endpoint


def client_credentials_token(
    token_endpoint: str,
    client_id: str,
    client_secret: str,
    *,
    scope: str = DEFAULT_SCOPE,
    resources: Tuple[str, ...] = (),
    auth_method: str = "client_secret_basic",
    timeout: float = 10.0,
    dpop: Optional[DPoPSigner] = None,
) -> Dict[str, Any]:
    """RFC 6749 section 4.4.2: request a token; returns the JSON answer.
    With ``dpop``: a proof for the token request (RFC 9449 section 5), one
    retry with the provider's nonce (section 8), token_type must be DPoP."""
    form: List[Tuple[str, str]] = [("grant_type", "client_credentials"), ("scope", scope)]
    for resource in resources:  # RFC 8707 section 2: may repeat
        form.append(("resource", resource))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if auth_method == "client_secret_basic":
        # RFC 6749 section 2.3.1: id and secret are form-urlencoded, then
        # joined with ":" and base64-encoded.
        pair = urllib.parse.quote_plus(client_id) + ":" + urllib.parse.quote_plus(client_secret)
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")
    elif auth_method == "client_secret_post":
        form += [("client_id", client_id), ("client_secret", client_secret)]
    else:
        raise ValueError(f"unsupported client authentication method {auth_method!r}")
    body = urllib.parse.urlencode(form).encode("ascii")
    nonce: Optional[str] = None
    for _attempt in range(2):
        if dpop is not None:
            headers["DPoP"] = dpop.proof("POST", token_endpoint, nonce=nonce)
        status, resp_headers, data = http_request("POST", token_endpoint, headers=headers, body=body, timeout=timeout)
        answer = _json(data)
        new_nonce = _header_value(resp_headers, "DPoP-Nonce")
        if (dpop is not None and status == 400 and isinstance(answer, dict) and nonce is None
                and answer.get("error") == "use_dpop_nonce" and new_nonce):
            nonce = new_nonce
            continue
        break
    if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        detail = answer if isinstance(answer, dict) else data[:200].decode("utf-8", "replace")
        raise WorkerError(f"token endpoint answered HTTP {status}: {detail}")
    expected = "dpop" if dpop is not None else "bearer"
    if str(answer.get("token_type", "")).lower() != expected:
        raise WorkerError(f"token endpoint gave token_type {answer.get('token_type')!r}, expected {expected}")
    return answer


def run(
    issuer: str = DEFAULT_ISSUER,
    api_url: str = DEFAULT_API,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    *,
    scope: str = DEFAULT_SCOPE,
    resources: Tuple[str, ...] = (),
    auth_method: str = "client_secret_basic",
    timeout: float = 10.0,
    say: Callable[[str], None] = print,
    reference: bool = False,
    dpop: bool = False,
) -> bool:
    """The whole job; ``say`` gets one line per step.  True when the wte
    call succeeded and the contacts call was refused with insufficient_scope
    (and, with ``reference``, the token was an opaque reference token)."""
    api = api_url.rstrip("/")
    try:
        endpoint = discover_token_endpoint(issuer, timeout=timeout)
        say(f"token endpoint (from discovery): {endpoint}")
        signer = DPoPSigner() if dpop else None
        answer = client_credentials_token(
            endpoint, client_id, client_secret, scope=scope, resources=resources, auth_method=auth_method,
            timeout=timeout, dpop=signer,
        )
    except WorkerError as exc:
        say(f"FAIL  could not get a client-credentials token: {exc}")
        return False
    token = answer["access_token"]
    if reference:
        if "." in token:
            say("FAIL  expected a reference (opaque) token, got a JWT: is the client registered for reference tokens?")
            return False
        say(f"PASS  reference token: opaque, {len(token)} characters; the API introspects it (RFC 7662)")
    header, payload = _unverified_claims(token)
    say(
        "PASS  client-credentials token for {cid}: expires_in={exp} scope={scope!r}".format(
            cid=client_id, exp=answer.get("expires_in"), scope=answer.get("scope")
        )
    )
    if payload:
        say(
            "      token shape (unverified): typ={typ} alg={alg} aud={aud} scope={sc} sub={sub} client_id={c}".format(
                typ=header.get("typ"),
                alg=header.get("alg"),
                aud=json.dumps(payload.get("aud")),
                sc=json.dumps(payload.get("scope")),
                sub=json.dumps(payload.get("sub")),
                c=json.dumps(payload.get("client_id")),
            )
        )
    if signer is not None:
        if not isinstance(payload.get("cnf"), dict) and "." in token:
            say("FAIL  token_type DPoP but the token has no cnf claim")
            return False
        say("PASS  DPoP-bound token (token_type DPoP); every call below sends a fresh proof")
    accept = {"Accept": "application/json"}

    ok = True
    # 1. the route we are allowed to call
    job = json.dumps({"kind": "sync", "payload": {"source": "wte_worker"}}).encode("utf-8")
    try:
        status, _, body = api_request(
            "POST", api + "/wte/jobs", token, dpop=signer, headers=dict(accept, **{"Content-Type": "application/json"}),
            body=job, timeout=timeout,
        )
    except WorkerError as exc:
        say(f"FAIL  POST /wte/jobs: {exc}")
        return False
    if 200 <= status < 300:
        say(f"PASS  POST /wte/jobs -> {status} {body.decode('utf-8', 'replace').strip()}")
    else:
        ok = False
        say(f"FAIL  POST /wte/jobs -> {status} (expected 2xx) {body.decode('utf-8', 'replace').strip()}")

    # 2. a route that needs a scope we do not have
    try:
        status, headers, body = api_request("GET", api + "/contacts", token, dpop=signer, headers=accept,
                                            timeout=timeout)
    except WorkerError as exc:
        say(f"FAIL  GET /contacts: {exc}")
        return False
    challenge = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
    if signer is not None and status == 200:
        ok = False
        say("FAIL  GET /contacts -> 200 with a wte-only DPoP token")
    elif status == 403 and 'error="insufficient_scope"' in challenge:
        say(f"PASS  GET /contacts -> 403 as expected; WWW-Authenticate: {challenge}")
    else:
        ok = False
        say(
            f"FAIL  GET /contacts -> {status} (expected 403 insufficient_scope);"
            f" WWW-Authenticate: {challenge or '(none)'} body: {body.decode('utf-8', 'replace').strip()}"
        )
    return ok


def main(argv: Optional[List[str]] = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", default=env.get("WTE_ISSUER", DEFAULT_ISSUER))
    parser.add_argument("--api", default=env.get("WTE_API_URL", DEFAULT_API), help="contacts API base URL")
    parser.add_argument("--client-id", default=env.get("WTE_CLIENT_ID"),
                        help=f"default {DEFAULT_CLIENT_ID}, or {DEFAULT_REFERENCE_CLIENT_ID} with --reference")
    parser.add_argument("--client-secret", default=env.get("WTE_CLIENT_SECRET", DEFAULT_CLIENT_SECRET))
    parser.add_argument("--scope", default=env.get("WTE_SCOPE", DEFAULT_SCOPE))
    parser.add_argument(
        "--resource",
        action="append",
        default=None,
        help="RFC 8707 resource indicator (repeatable), e.g. api://contacts for npm oidc-provider",
    )
    parser.add_argument(
        "--auth-method", choices=("client_secret_basic", "client_secret_post"), default="client_secret_basic"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")
    parser.add_argument("--reference", action="store_true",
                        help="use reference (opaque) access tokens, validated by the API through introspection")
    parser.add_argument("--dpop", action="store_true",
                        help="DPoP-bound token (RFC 9449): EC key in memory, a fresh proof per request")
    args = parser.parse_args(argv)
    if args.client_id is None:
        args.client_id = DEFAULT_REFERENCE_CLIENT_ID if args.reference else DEFAULT_CLIENT_ID
    resources = tuple(args.resource) if args.resource else tuple(env.get("WTE_RESOURCE", "").split())
    ok = run(
        args.issuer,
        args.api,
        args.client_id,
        args.client_secret,
        scope=args.scope,
        resources=resources,
        auth_method=args.auth_method,
        timeout=args.timeout,
        reference=args.reference,
        dpop=args.dpop,
    )
    print("worker: OK" if ok else "worker: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
