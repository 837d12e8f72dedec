"""The ``oidc-guard`` command line (also ``python -m oidc_guard``).

Three commands, for the operator who wants to know, without writing code,
why a token is refused:

``oidc-guard discover ISSUER``
    fetch the provider's discovery document and JWKS (the raw documents, as
    a reviewer reads them), print a summary and the keys, and flag what a
    reviewer would: plain http, RSA keys under 2048 bits, keys without
    ``kid``, ``use: enc`` keys, symmetric or private key material, an
    ``issuer`` that differs, a missing ``introspection_endpoint`` when one
    is needed, the JWKS ``Cache-Control``.  Then the library's own start-up
    check (:meth:`oidc_guard.TokenValidator.check`).  Exit 0; 3 when
    discovery or the JWKS is unusable.
``oidc-guard validate TOKEN --issuer I --audience A [--scope S]...``
    validate exactly as the library does (same options).  Exit 0 valid and
    every ``--scope`` present; 1 invalid or a scope missing; 3 provider
    unusable.  Introspection credentials come only from the environment
    (``OIDC_GUARD_INTROSPECTION_CLIENT_ID`` / ``..._SECRET``), never from
    the command line, where they would land in shell history and ``ps``.
``oidc-guard inspect TOKEN``
    decode a JWS without verifying anything; every line says UNVERIFIED.
    Exit 0; 1 when the token is not a JWS.

``TOKEN`` may be ``-`` for standard input.  ``--json`` prints one JSON
object on standard output instead of text.  Usage errors exit 2.  Nothing
here prints a whole token or a secret: a token is shown by its length and
the start of its SHA-256 (which is how it can be found in a cache).

Standard library only (argparse); the Flask commands (``flask oidc-guard
check`` / ``validate``) live in :mod:`oidc_guard.flask` and reuse the
formatting below.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import hashlib
import inspect as _inspect
import json
import logging
import os
import re
import sys
import time
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Sequence, TextIO, Tuple
from urllib.parse import urlsplit

from .claims import Claims
from .discovery import discovery_url
from .errors import ConfigurationError, InvalidToken, OIDCGuardError, ProviderError
from .http import fetch_json, is_loopback_host
from .jwks import MIN_RSA_BITS, SUPPORTED_ALGORITHMS, parse_jwks

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_PROVIDER"]

EXIT_OK = 0
EXIT_INVALID = 1  # the token is invalid, a scope is missing, inspect: not a JWS
EXIT_USAGE = 2  # argparse's own code for usage errors
EXIT_PROVIDER = 3  # discovery / JWKS (or introspection) unusable

ENV_CLIENT_ID = "OIDC_GUARD_INTROSPECTION_CLIENT_ID"
ENV_CLIENT_SECRET = "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET"

_MAX_DOC_BYTES = 512 * 1024
_MAX_TOKEN_CHARS = 1024 * 1024  # stdin is read up to this much, then refused
_TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")
# JWK members that only a private key has (RFC 7518 section 6.2.2 / 6.3.2 / 6.4, RFC 8037 section 2)
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class UsageError(Exception):
    """A command-line mistake: exit 2 with the message."""


# --- small helpers ------------------------------------------------------------------


def token_label(token: str) -> str:
    """How a token is named in output: its length and SHA-256 prefix, never
    the token itself (RFC 6750 section 5.1: a bearer token is a credential)."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{len(token)} chars, sha256 {digest[:16]}"


def relative(seconds: float) -> str:
    """``-10800`` -> ``"3 h ago"``, ``720`` -> ``"in 12 min"``."""
    magnitude = abs(seconds)
    if magnitude < 90:
        text = f"{int(round(magnitude))} s"
    elif magnitude < 90 * 60:
        text = f"{int(round(magnitude / 60))} min"
    elif magnitude < 48 * 3600:
        text = f"{int(round(magnitude / 3600))} h"
    else:
        text = f"{int(round(magnitude / 86400))} d"
    return f"{text} ago" if seconds < 0 else f"in {text}"


def iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def describe_time(name: str, value: Any, now: float) -> Optional[Dict[str, Any]]:
    """A time claim as ISO date + words (``"expired 3 h ago"``), or None
    when the value is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        date = iso(float(value))
    except (OverflowError, OSError, ValueError):
        return None
    delta = float(value) - now
    when = relative(delta)
    if name == "exp":
        words = f"expired {when}" if delta < 0 else f"expires {when}"
    elif name == "nbf":
        words = f"valid from {when}" if delta > 0 else f"valid since {when}"
    elif name == "iat":
        words = f"issued {when}" + (" (in the future!)" if delta > 0 else "")
    else:
        words = f"authenticated {when}"
    return {"claim": name, "value": value, "iso": date, "relative": words}


def read_token(value: str, stdin: TextIO) -> str:
    """The TOKEN argument: itself, or standard input for ``-``.  Surrounding
    whitespace and a ``Bearer `` / ``DPoP `` prefix (copied from a header)
    are removed."""
    if value == "-":
        value = stdin.read(_MAX_TOKEN_CHARS + 1)
        if len(value) > _MAX_TOKEN_CHARS:
            raise UsageError(f"standard input holds more than {_MAX_TOKEN_CHARS} characters: not a token")
    token = value.strip()
    match = re.match(r"(?i)^(bearer|dpop)\s+", token)
    if match:
        token = token[match.end():].strip()
    if not token:
        raise UsageError("the token is empty" + (" (nothing on standard input)" if value == "" else ""))
    if any(ch.isspace() for ch in token):
        raise UsageError("the token contains whitespace: pass exactly one token")
    return token


def _b64url_json(segment: str, what: str) -> Any:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", segment):
        raise ValueError(f"the {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"the {what} is not base64url") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"the {what} is not JSON") from None


def decode_unverified(token: str) -> Tuple[Dict[str, Any], Any, int]:
    """(header, payload, signature length in bytes) of a compact JWS,
    nothing verified; ValueError saying why it is not a JWS."""
    parts = token.split(".")
    if len(parts) == 5:
        raise ValueError("it has 5 segments: an encrypted JWT (JWE), which oidc_guard refuses; only the "
                         "provider's private key could read it")
    if len(parts) == 1:
        raise ValueError("it has no '.': an opaque (reference) token, which only the provider's "
                         "introspection endpoint can read (RFC 7662)")
    if len(parts) != 3:
        raise ValueError(f"it has {len(parts)} segments; a JWS has 3")
    header = _b64url_json(parts[0], "header")
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    payload = _b64url_json(parts[1], "payload")
    signature = parts[2]
    if not re.fullmatch(r"[A-Za-z0-9_-]*", signature):
        raise ValueError("the signature is not base64url")
    return header, payload, len(signature) * 3 // 4


def _print_json(out: TextIO, obj: Mapping[str, Any]) -> None:
    out.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def _claims_dict(claims: Mapping[str, Any]) -> Dict[str, Any]:
    return {key: claims[key] for key in claims}


# --- inspect ------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    token = read_token(args.token, stdin)
    now = time.time()
    try:
        header, payload, sig_len = decode_unverified(token)
    except ValueError as exc:
        if args.json:
            _print_json(out, {"verified": False, "jws": False, "token": token_label(token), "reason": str(exc)})
        else:
            out.write(f"not a JWS ({token_label(token)}): {exc}\n")
        return EXIT_INVALID
    times = []
    if isinstance(payload, dict):
        for name in _TIME_CLAIMS:
            if name in payload:
                described = describe_time(name, payload[name], now)
                times.append(described or {"claim": name, "value": payload[name], "iso": None,
                                           "relative": "not a number of seconds"})
    iss = payload.get("iss") if isinstance(payload, dict) else None
    needed: Dict[str, Any] = {
        "issuer": iss if isinstance(iss, str) else None,
        "jwks": (discovery_url(iss) + " -> jwks_uri") if isinstance(iss, str) and iss else None,
        "kid": header.get("kid"),
        "alg": header.get("alg"),
    }
    notes = _inspect_notes(header, payload)
    if args.json:
        _print_json(out, {
            "verified": False,
            "jws": True,
            "warning": "UNVERIFIED: decoded only; the signature and claims were not checked",
            "token": token_label(token),
            "header": header,
            "payload": payload,
            "signature_bytes": sig_len,
            "times": times,
            "keys_needed": needed,
            "notes": notes,
        })
        return EXIT_OK
    out.write("UNVERIFIED: decoded only. Nothing below is checked; this says nothing about validity.\n")
    out.write(f"token: {token_label(token)}, signature {sig_len} bytes\n\n")
    out.write("UNVERIFIED header:\n" + _indent(json.dumps(header, indent=2)) + "\n")
    out.write("UNVERIFIED payload:\n" + _indent(json.dumps(payload, indent=2, default=str)) + "\n")
    if times:
        out.write("\nUNVERIFIED times:\n")
        for entry in times:
            shown = entry["iso"] or repr(entry["value"])
            out.write(f"  {entry['claim']:<9} {shown}  ({entry['relative']})\n")
    out.write("\nKeys needed to verify it: ")
    if needed["issuer"]:
        out.write(f"the JWKS of issuer {needed['issuer']} (discovery: {needed['jwks']})")
    else:
        out.write("unknown: the payload names no issuer (iss)")
    out.write(f", kid {needed['kid']!r}, alg {needed['alg']!r}\n")
    for note in notes:
        out.write(f"note: {note}\n")
    if needed["issuer"]:
        out.write(f"To verify: oidc-guard validate - --issuer {needed['issuer']} --audience YOUR-API\n")
    return EXIT_OK


def _inspect_notes(header: Mapping[str, Any], payload: Any) -> List[str]:
    """What oidc_guard would refuse on sight, worded as hints (still unverified)."""
    notes = []
    alg = header.get("alg")
    if alg not in SUPPORTED_ALGORITHMS:
        notes.append(f"alg {alg!r} is not one oidc_guard accepts ({', '.join(SUPPORTED_ALGORITHMS)})")
    for member in ("jwk", "jku", "x5u", "x5c"):
        if member in header:
            notes.append(f"header {member!r} is ignored: keys come only from the issuer's JWKS")
    if "crit" in header:
        notes.append("header 'crit' is refused")
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower() not in ("jwt", "at+jwt", "application/at+jwt"):
        notes.append(f"typ {typ!r} is not an access token type (JWT or at+jwt)")
    if not isinstance(payload, dict):
        notes.append("the payload is not a JSON object")
    else:
        if "exp" not in payload:
            notes.append("no exp: oidc_guard requires exp on access tokens")
        if "aud" not in payload:
            notes.append("no aud: the audience check will fail unless it is turned off")
        cnf = payload.get("cnf")
        if isinstance(cnf, dict) and "jkt" in cnf:
            notes.append("cnf.jkt: a DPoP-bound token, it must be sent with a DPoP proof (RFC 9449)")
        if isinstance(cnf, dict) and "x5t#S256" in cnf:
            notes.append("cnf x5t#S256: a certificate-bound token, it needs the client's TLS certificate (RFC 8705)")
    return notes


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# --- discover ---------------------------------------------------------------------------------


def _jwk_size(jwk: Mapping[str, Any]) -> Optional[int]:
    kty = jwk.get("kty")
    if kty == "RSA" and isinstance(jwk.get("n"), str):
        try:
            n = base64.urlsafe_b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4))
        except (binascii.Error, ValueError):
            return None
        return int.from_bytes(n, "big").bit_length()
    if kty == "EC":
        return {"P-256": 256, "P-384": 384, "P-521": 521}.get(str(jwk.get("crv")))
    if kty == "OKP":
        return {"Ed25519": 256, "Ed448": 456}.get(str(jwk.get("crv")))
    if kty == "oct" and isinstance(jwk.get("k"), str):
        return len(jwk["k"]) * 6
    return None


def _scheme_flag(url: Any, what: str) -> Optional[str]:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return f"{what} is plain http ({url}): tokens, keys and metadata can be changed on the way"
    return None


def _cache_control_flags(value: Optional[str]) -> List[Tuple[str, str]]:
    """(severity, text) about the JWKS Cache-Control (RFC 9111 section 5.2);
    the key set keeps keys for max-age clamped to 60 s - 24 h, 1 h without."""
    if not value:
        return [("warning", "the JWKS has no Cache-Control: oidc_guard keeps the keys 1 h, then refetches")]
    flags: List[Tuple[str, str]] = []
    lowered = value.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        flags.append(("warning", f"JWKS Cache-Control {value!r}: every process refetches at least every 60 s "
                                 "(oidc_guard's lower bound); the provider asks for no caching at all"))
    match = re.search(r"max-age\s*=\s*\"?(\d+)", lowered)
    if match:
        age = int(match.group(1))
        if age < 60:
            flags.append(("warning", f"JWKS max-age {age} s is below oidc_guard's floor: keys are kept 60 s"))
        elif age > 86400:
            flags.append(("warning", f"JWKS max-age {age} s is above oidc_guard's ceiling: keys are kept 24 h; "
                                     "an unknown kid refetches sooner"))
    elif not flags:
        flags.append(("warning", f"JWKS Cache-Control {value!r} has no max-age: oidc_guard keeps the keys 1 h"))
    return flags


def cmd_discover(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    issuer = args.issuer
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"ISSUER must be an https URL such as https://idp.example.com, not {issuer!r}")
    flags: List[Tuple[str, str]] = []  # (severity, text); severity "error" makes the exit 3
    result: Dict[str, Any] = {"issuer": issuer, "discovery_url": discovery_url(issuer)}
    plain = _scheme_flag(issuer, "the issuer")
    if plain:
        flags.append(("warning" if args.allow_http else "error",
                      plain + ("" if args.allow_http else "; oidc_guard refuses it without allow_http=True")))
    if "/.well-known/" in parts.path:
        flags.append(("error", "ISSUER is a discovery URL; pass the issuer identifier (the part before "
                               "/.well-known/)"))

    doc: Optional[Dict[str, Any]] = None
    jwks: Optional[Dict[str, Any]] = None
    cache_control: Optional[str] = None
    try:
        response = fetch_json(discovery_url(issuer), timeout=args.timeout, max_bytes=_MAX_DOC_BYTES,
                              allow_http=True, what="discovery document")
        doc = response.json
    except ProviderError as exc:
        flags.append(("error", f"discovery unusable: {exc.description}"))
    if doc is not None:
        named = doc.get("issuer")
        if named != issuer:
            flags.append(("error", f"the discovery document names issuer {named!r}, not {issuer!r}: oidc_guard "
                                   "refuses it (OpenID Connect Discovery 4.3: exact string match)"))
        for key in ("jwks_uri", "introspection_endpoint", "userinfo_endpoint", "token_endpoint",
                    "authorization_endpoint"):
            flag = _scheme_flag(doc.get(key), key)
            if flag:
                flags.append(("error" if key == "jwks_uri" and not args.allow_http else "warning", flag))
        for key in ("id_token_signing_alg_values_supported",):
            algs = doc.get(key)
            if isinstance(algs, list):
                weak = [a for a in algs if isinstance(a, str) and (a == "none" or a.startswith("HS"))]
                if weak:
                    flags.append(("warning", f"{key} lists {weak}: oidc_guard never accepts them"))
        needs_introspection = bool(args.introspection or os.environ.get(ENV_CLIENT_ID))
        if not doc.get("introspection_endpoint"):
            if needs_introspection:
                flags.append(("error", "no introspection_endpoint, and introspection is configured (reference "
                                       "tokens cannot be validated): pass introspection_endpoint= explicitly"))
            else:
                flags.append(("info", "no introspection_endpoint: fine for JWT access tokens only"))
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            flags.append(("error", "the discovery document has no jwks_uri"))
        elif _scheme_flag(jwks_uri, "jwks_uri") and not args.allow_http:
            pass  # flagged above; not fetched, as the library would not fetch it
        else:
            try:
                jwks_response = fetch_json(jwks_uri, timeout=args.timeout, max_bytes=_MAX_DOC_BYTES,
                                           allow_http=True, what="JWKS")
                jwks = jwks_response.json
                cache_control = jwks_response.headers.get("cache-control")
            except ProviderError as exc:
                flags.append(("error", f"JWKS unusable: {exc.description}"))
        result["metadata"] = {key: doc.get(key) for key in (
            "issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "userinfo_endpoint",
            "introspection_endpoint", "scopes_supported", "response_types_supported",
            "id_token_signing_alg_values_supported", "dpop_signing_alg_values_supported",
            "introspection_endpoint_auth_methods_supported") if key in doc}

    keys_out: List[Dict[str, Any]] = []
    if jwks is not None:
        result["jwks_cache_control"] = cache_control
        flags.extend(_cache_control_flags(cache_control))
        raw_keys = jwks.get("keys")
        if not isinstance(raw_keys, list):
            flags.append(("error", 'the JWKS has no "keys" array'))
            raw_keys = []
        try:
            usable, skipped = parse_jwks(jwks) if isinstance(jwks.get("keys"), list) else ([], [])
        except ValueError:
            usable, skipped = [], []
        kids_usable = {k.kid for k in usable}
        for index, jwk in enumerate(raw_keys):
            if not isinstance(jwk, dict):
                flags.append(("warning", f"key {index} is not a JSON object"))
                continue
            entry = {
                "kid": jwk.get("kid"), "kty": jwk.get("kty"), "alg": jwk.get("alg"),
                "size": _jwk_size(jwk), "use": jwk.get("use"), "crv": jwk.get("crv"),
                "usable": jwk.get("kid") in kids_usable and jwk.get("use") != "enc",
            }
            keys_out.append(entry)
            name = f"key {index} (kid {jwk.get('kid')!r})"
            if "kid" not in jwk:
                flags.append(("warning", f"{name} has no kid: tokens cannot name it, rotation is guesswork"))
            if jwk.get("use") == "enc":
                flags.append(("warning", f"{name} is use: enc (an encryption key); never used to verify"))
            if jwk.get("kty") == "oct":
                flags.append(("error", f"{name} is a symmetric (oct) key published in a JWKS: a secret made "
                                       "public; oidc_guard never loads it"))
            elif any(member in jwk for member in _PRIVATE_MEMBERS):
                flags.append(("error", f"{name} carries private key members: the provider leaks its private key"))
            size = entry["size"]
            if jwk.get("kty") == "RSA" and isinstance(size, int) and size < MIN_RSA_BITS:
                flags.append(("warning", f"{name} is RSA {size} bits, under {MIN_RSA_BITS}: oidc_guard refuses it"))
        for reason in skipped:
            flags.append(("info", f"not loaded by oidc_guard: {reason}"))
        if not usable:
            flags.append(("error", "no key of the JWKS can verify a token"))
    result["keys"] = keys_out

    # The library's own opinion: the start-up check, with its algorithms rules.
    library: Dict[str, Any] = {"checked": False}
    if not any(sev == "error" for sev, _ in flags):
        from .validator import TokenValidator

        try:
            validator = TokenValidator(issuer, audience=None, verify_audience=False, allow_http=args.allow_http,
                                       http_timeout=args.timeout)
            validator.check()
            library = {"checked": True, "ok": True}
        except OIDCGuardError as exc:
            library = {"checked": True, "ok": False, "error": exc.description}
            flags.append(("error", f"oidc_guard's start-up check: {exc.description}"))
    result["library_check"] = library
    result["flags"] = [{"severity": sev, "message": text} for sev, text in flags]
    unusable = any(sev == "error" for sev, _ in flags)
    result["usable"] = not unusable

    if args.json:
        _print_json(out, result)
    else:
        _print_discovery(out, result, flags)
    return EXIT_PROVIDER if unusable else EXIT_OK


def _print_discovery(out: TextIO, result: Mapping[str, Any], flags: Sequence[Tuple[str, str]]) -> None:
    out.write(f"issuer:    {result['issuer']}\ndiscovery: {result['discovery_url']}\n")
    for key, value in result.get("metadata", {}).items():
        if key == "issuer":
            continue
        shown = " ".join(map(str, value)) if isinstance(value, list) else value
        out.write(f"  {key}: {shown}\n")
    if "jwks_cache_control" in result:
        out.write(f"  JWKS Cache-Control: {result['jwks_cache_control'] or '(none)'}\n")
    keys = result.get("keys", [])
    if keys:
        out.write(f"\nkeys ({len(keys)}):\n")
        out.write(f"  {'kid':<28} {'kty':<4} {'alg':<6} {'size':>5}  {'use':<4} usable\n")
        for key in keys:
            out.write(f"  {str(key['kid']):<28} {str(key['kty']):<4} {str(key['alg'] or '-'):<6} "
                      f"{str(key['size'] or '?'):>5}  {str(key['use'] or '-'):<4} "
                      f"{'yes' if key['usable'] else 'no'}\n")
    check = result.get("library_check", {})
    if check.get("checked"):
        out.write("\noidc_guard start-up check: " + ("ok" if check.get("ok") else "FAILED") + "\n")
    if flags:
        out.write("\n")
        for severity, text in flags:
            out.write(f"{severity.upper()}: {text}\n")
    out.write("\n" + ("UNUSABLE: oidc_guard cannot validate tokens of this issuer as it stands\n"
                      if not result.get("usable") else "usable\n"))


# --- validate -----------------------------------------------------------------------------------


def _validator_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    from .validator import TokenValidator

    kwargs: Dict[str, Any] = {
        "audience": args.audience or None,
        "verify_audience": not args.no_verify_audience,
        "leeway": args.leeway,
        "allow_http": args.allow_http,
        "http_timeout": args.timeout,
    }
    if args.algorithm:
        kwargs["algorithms"] = args.algorithm
    if args.jwks_uri:
        kwargs["jwks_uri"] = args.jwks_uri
    accepted = _inspect.signature(TokenValidator.__init__).parameters
    client_id = os.environ.get(ENV_CLIENT_ID)
    secret = os.environ.get(ENV_CLIENT_SECRET)
    if client_id or secret:
        if "introspection_client_id" not in accepted:
            raise UsageError(f"{ENV_CLIENT_ID} is set, but this oidc_guard cannot introspect reference tokens")
        if not (client_id and secret):
            raise UsageError(f"set both {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}")
        kwargs["introspection_client_id"] = client_id
        kwargs["introspection_client_secret"] = secret
    endpoint = os.environ.get("OIDC_GUARD_INTROSPECTION_ENDPOINT")
    if endpoint and "introspection_endpoint" in accepted:
        kwargs["introspection_endpoint"] = endpoint
    auth_method = os.environ.get("OIDC_GUARD_INTROSPECTION_AUTH_METHOD")
    if auth_method and "introspection_auth_method" in accepted:
        kwargs["introspection_auth_method"] = auth_method
    if args.validation_mode:
        if "validation_mode" not in accepted:
            raise UsageError("--validation-mode needs an oidc_guard with introspection support")
        kwargs["validation_mode"] = args.validation_mode
    return kwargs


def claims_summary(claims: Claims, now: float) -> Dict[str, Any]:
    """The verified claims as one JSON-able object (text output prints it too)."""
    summary: Dict[str, Any] = {
        "subject": claims.subject,
        "client_id": claims.client_id,
        "scopes": sorted(claims.scopes),
        "issuer": claims.issuer,
        "audiences": list(claims.audiences),
        "expires_at": claims.expires_at.isoformat() if claims.expires_at else None,
        "times": [t for t in (describe_time(n, claims.get(n), now) for n in _TIME_CLAIMS if n in claims) if t],
        "claims": _claims_dict(claims),
        "binding": _binding_note(claims),
    }
    return summary


def _binding_note(claims: Mapping[str, Any]) -> Optional[str]:
    """The signature and claims are valid, but a sender-constrained token is
    only accepted with its proof: say so rather than let "VALID" mislead."""
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict):
        return None
    if "jkt" in cnf:
        return ("DPoP-bound (cnf.jkt, RFC 9449): a request needs 'Authorization: DPoP' and a proof signed "
                "by that key; sent as Bearer it gets 401")
    if "x5t#S256" in cnf:
        return ("certificate-bound (cnf x5t#S256, RFC 8705): a request needs the client's TLS certificate "
                "with that thumbprint")
    return None


def write_validation(out: TextIO, *, as_json: bool, token: str, claims: Optional[Claims],
                     error: Optional[OIDCGuardError], wanted: Sequence[str]) -> int:
    """Print a validation outcome (shared with ``flask oidc-guard validate``);
    return the exit code."""
    now = time.time()
    if error is not None:
        code = EXIT_PROVIDER if isinstance(error, ProviderError) else EXIT_INVALID
        if as_json:
            _print_json(out, {"valid": False, "token": token_label(token), "error": error.error,
                              "error_description": error.description, "exit": code})
        elif code == EXIT_PROVIDER:
            out.write(f"PROVIDER UNUSABLE (not a verdict on the token): {error.description}\n")
        else:
            out.write(f"INVALID ({error.error}): {error.description}\n")
        return code
    assert claims is not None
    missing = [scope for scope in wanted if scope not in claims.scopes]
    summary = claims_summary(claims, now)
    if as_json:
        _print_json(out, {"valid": not missing, "token": token_label(token), "signature_verified": True,
                          "missing_scopes": missing, **summary, "exit": EXIT_INVALID if missing else EXIT_OK})
    else:
        if missing:
            out.write(f"INSUFFICIENT SCOPE: the token is valid but lacks {' '.join(missing)} "
                      f"(it has: {' '.join(sorted(claims.scopes)) or 'none'})\n")
        else:
            out.write("VALID: signature and claims verified against the issuer's keys\n")
        out.write(f"  token:      {token_label(token)}\n")
        for key in ("subject", "client_id", "issuer"):
            out.write(f"  {key + ':':<11} {summary[key]}\n")
        out.write(f"  scopes:     {' '.join(summary['scopes']) or '(none)'}\n")
        out.write(f"  audiences:  {' '.join(summary['audiences'])}\n")
        for entry in summary["times"]:
            out.write(f"  {entry['claim'] + ':':<11} {entry['iso']} ({entry['relative']})\n")
        if summary["binding"]:
            out.write(f"  note:       {summary['binding']}\n")
        out.write("claims:\n" + _indent(json.dumps(summary["claims"], indent=2, default=str)) + "\n")
    return EXIT_INVALID if missing else EXIT_OK


def cmd_validate(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from .validator import TokenValidator

    token = read_token(args.token, stdin)
    if not args.audience and not args.no_verify_audience:
        raise UsageError("--audience is required (this API's identifier); --no-verify-audience turns the check off")
    if args.id_token and not args.client_id:
        raise UsageError("--id-token needs --client-id")
    try:
        validator = TokenValidator(args.issuer, **_validator_kwargs(args))
    except ConfigurationError as exc:
        raise UsageError(exc.description) from None
    claims: Optional[Claims] = None
    error: Optional[OIDCGuardError] = None
    try:
        if args.id_token:
            claims = validator.validate_id_token(token, client_id=args.client_id, nonce=args.nonce)
        else:
            claims = validator.validate_access_token(token)
    except (InvalidToken, ProviderError) as exc:
        error = exc
    except ConfigurationError as exc:
        raise UsageError(exc.description) from None
    except OIDCGuardError as exc:
        error = exc
    return write_validation(out, as_json=args.json, token=token, claims=claims, error=error, wanted=args.scope)


# --- the parser ----------------------------------------------------------------------------------

_INTRO = """\
Check OpenID Connect providers and tokens the way oidc_guard does.

examples:
  oidc-guard discover https://idp.example.com
  oidc-guard validate "$TOKEN" --issuer https://idp.example.com --audience api://contacts --scope contacts
  pbpaste | oidc-guard inspect -

exit codes: 0 ok; 1 invalid token, missing scope, or not a JWS; 2 usage error;
3 the provider (discovery, JWKS) is unusable.
"""

_DISCOVER_HELP = """\
Fetch ISSUER/.well-known/openid-configuration and the JWKS it names, show the
metadata and the keys (kid, kty, alg, size), flag what a security reviewer
would (plain http, RSA under 2048 bits, keys without kid, use: enc keys,
symmetric or private keys, an issuer that differs, no introspection endpoint
when introspection is configured, the JWKS Cache-Control), then run
oidc_guard's own start-up check.

example:
  oidc-guard discover https://idp.example.com
  oidc-guard discover --json http://127.0.0.1:8000 | jq .flags

exit: 0 usable (warnings may be printed); 3 discovery or JWKS unusable.
"""

_VALIDATE_HELP = f"""\
Validate TOKEN exactly as the library does (discovery, JWKS, signature, iss,
aud, exp/nbf/iat, typ) and print the verified claims, or the reason.

Reference (opaque) tokens are introspected when the environment holds this
API's credentials: {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}
(optionally OIDC_GUARD_INTROSPECTION_ENDPOINT and _AUTH_METHOD). They are read ONLY from the
environment, never from the command line, where they would end up in shell
history and in the process list.

example:
  oidc-guard validate "$TOKEN" --issuer https://idp.example.com \\
      --audience api://contacts --scope contacts
  echo "$TOKEN" | oidc-guard validate - --issuer https://idp.example.com --audience api://contacts --json

exit: 0 valid and every --scope present; 1 invalid or a scope missing;
3 provider unusable (not a verdict on the token).
"""

_INSPECT_HELP = """\
Decode TOKEN (a JWS) WITHOUT verifying anything: header, payload, times as
ISO dates and relative ("expired 3 h ago"), and which issuer's keys would be
needed to verify it. Everything printed is UNVERIFIED; use validate to know
whether a token is valid. The token itself is never printed.

example:
  oidc-guard inspect "$TOKEN"
  oidc-guard inspect - --json < token.txt

exit: 0 decoded; 1 not a JWS (opaque token, JWE, garbage).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON object instead of text")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show oidc_guard's log (INFO) on standard error")
    network = _Parser(add_help=False)
    network.add_argument("--timeout", type=float, default=5.0, metavar="S",
                         help="seconds for each HTTP request (default 5)")
    network.add_argument("--allow-http", action="store_true",
                         help="accept plain http for a non-loopback issuer (loopback always works)")

    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="oidc-guard", description=_INTRO, formatter_class=raw, parents=[common])
    from . import __version__

    parser.add_argument("--version", action="version", version=f"oidc-guard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("discover", help="show a provider's metadata and keys, and what is wrong with them",
                       description=_DISCOVER_HELP, formatter_class=raw, parents=[common, network])
    p.add_argument("issuer", metavar="ISSUER", help="issuer identifier, e.g. https://idp.example.com")
    p.add_argument("--introspection", action="store_true",
                   help="reference tokens will be introspected: a missing introspection_endpoint is an error "
                        f"(implied when {ENV_CLIENT_ID} is set)")
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("validate", help="verify a token against its issuer and print its claims",
                       description=_VALIDATE_HELP, formatter_class=raw, parents=[common, network])
    p.add_argument("token", metavar="TOKEN", help="the token, or - to read it from standard input")
    p.add_argument("--issuer", required=True, metavar="I", help="the issuer identifier (exact iss)")
    p.add_argument("--audience", action="append", default=[], metavar="A",
                   help="this API's identifier; repeat for several (aud must contain one)")
    p.add_argument("--no-verify-audience", action="store_true", help="skip the audience check (explicit opt-out)")
    p.add_argument("--scope", action="append", default=[], metavar="S",
                   help="a scope the token must have; repeat for several (all required)")
    p.add_argument("--leeway", type=float, default=60.0, metavar="SECONDS",
                   help="clock skew allowed for exp/nbf/iat (default 60)")
    p.add_argument("--algorithm", action="append", default=[], metavar="ALG",
                   help=f"an allowed JWS alg; repeat (default: all of {', '.join(SUPPORTED_ALGORITHMS)})")
    p.add_argument("--jwks-uri", metavar="URL", help="fetch keys from this URL instead of discovery's jwks_uri")
    p.add_argument("--validation-mode", choices=("local", "both", "introspection"),
                   help="local: JWTs only; both: opaque tokens are introspected; introspection: all are")
    p.add_argument("--id-token", action="store_true", help="TOKEN is an ID Token (OIDC Core 3.1.3.7)")
    p.add_argument("--client-id", metavar="ID", help="with --id-token: the client it was issued to")
    p.add_argument("--nonce", metavar="N", help="with --id-token: the nonce the client sent")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("inspect", help="decode a token WITHOUT verifying it (UNVERIFIED)",
                       description=_INSPECT_HELP, formatter_class=raw, parents=[common])
    p.add_argument("token", metavar="TOKEN", help="the token, or - to read it from standard input")
    p.set_defaults(func=cmd_inspect)
    return parser


def main(argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None,
         stdin: Optional[TextIO] = None) -> int:
    """Run the command line; return the exit code (the console script calls
    ``sys.exit(main())``)."""
    out = stdout or sys.stdout
    source = stdin or sys.stdin
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    # The outcome is printed in full; the library's own log lines (a failed
    # fetch, at WARNING) would only repeat it on stderr unless -v asks.
    library_log = logging.getLogger("oidc_guard")
    if not getattr(args, "verbose", False):
        library_log.addHandler(logging.NullHandler())
        library_log.propagate = False
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        library_log.addHandler(handler)
        library_log.setLevel(logging.INFO)
    try:
        code: int = args.func(args, out, source)
        return code
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"oidc-guard {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def console_main() -> None:
    """Entry point of the ``oidc-guard`` console script."""
    sys.exit(main())
