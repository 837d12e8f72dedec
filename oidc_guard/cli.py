"""The ``oidc-guard`` command line (also ``python -m oidc_guard``).

Three commands, for the operator who wants to know, without writing code,
why a token is refused:

``oidc-guard discover ISSUER``
    fetch the provider's discovery document and JWKS (the raw documents, as
    a reviewer reads them), print a summary and the keys, and flag what a
    reviewer would: plain http, RSA keys under 2048 bits, keys without
    ``kid``, ``use: enc`` keys, symmetric or private key material, an
    ``issuer`` that differs, a missing ``introspection_endpoint`` when one
    is needed (looked up as the library does: the environment's setting,
    the discovery document, the issuer's RFC 8414 document), the JWKS
    ``Cache-Control``.  Then the library's own start-up
    check (:meth:`oidc_guard.TokenValidator.check`).  Exit 0; 3 when
    discovery or the JWKS is unusable.
``oidc-guard validate TOKEN --issuer I --audience A [--scope S]...``
    validate exactly as the library does (same options).  Exit 0 valid and
    every ``--scope`` present; 1 invalid or a scope missing; 3 provider
    unusable.  ``--id-token --client-id C`` for an ID Token (the client is
    its audience).  Introspection credentials come only from the environment
    (``OIDC_GUARD_INTROSPECTION_CLIENT_ID`` / ``..._SECRET``), never from
    the command line, where they would land in shell history and ``ps``.
``oidc-guard inspect TOKEN``
    decode a JWS without verifying anything; every line says UNVERIFIED.
    Exit 0; 1 when the token is not a JWS.

``TOKEN`` may be ``-`` for standard input (a whole ``Authorization:``
header line is accepted).  Every value shown as text passes
``terminal_safe()`` (no control character reaches the terminal).  ``--json`` prints one JSON
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
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Sequence, TextIO, Tuple, cast
from urllib.parse import urlsplit

from .claims import Claims
from .discovery import (authorization_server_metadata_url, discovery_url, fetch_authorization_server_metadata,
                        looks_like_discovery_url, mismatch_hint)
from .errors import ConfigurationError, InvalidToken, OIDCGuardError, ProviderError
from .http import check_url, fetch_json, is_loopback_host
from .jwks import MIN_RSA_BITS, SUPPORTED_ALGORITHMS, parse_jwks

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_PROVIDER"]

EXIT_OK = 0
EXIT_INVALID = 1  # the token is invalid, a scope is missing, inspect: not a JWS
EXIT_USAGE = 2  # argparse's own code for usage errors
EXIT_PROVIDER = 3  # discovery / JWKS (or introspection) unusable

ENV_CLIENT_ID = "OIDC_GUARD_INTROSPECTION_CLIENT_ID"
ENV_CLIENT_SECRET = "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET"
ENV_ENDPOINT = "OIDC_GUARD_INTROSPECTION_ENDPOINT"
ENV_AUTH_METHOD = "OIDC_GUARD_INTROSPECTION_AUTH_METHOD"

_MAX_DOC_BYTES = 512 * 1024
_MAX_TOKEN_CHARS = 1024 * 1024  # stdin is read up to this much, then refused
_TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")
# JWK members that only a private key has (RFC 7518 section 6.2.2 / 6.3.2 / 6.4, RFC 8037 section 2)
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class UsageError(Exception):
    """A command-line mistake: exit 2 with the message."""


# --- terminal safety ------------------------------------------------------------------
#
# Everything the text output shows comes from somewhere else: the token (its
# header and payload are anyone's writing, unverified in inspect), the
# provider's documents and keys, error descriptions that quote them.  A
# terminal acts on some characters instead of showing them: ESC starts an
# ECMA-48 control sequence (ESC [2J clears the screen, others move the
# cursor, retitle the window or rewrite earlier lines), CR returns to column
# 0 and overprints, BS backs up, U+009B is a one-character CSI (ECMA-48
# section 5.3, C1 set), DEL is a control too.  Unicode's bidirectional
# formatting characters and line / paragraph separators reorder or break a
# line on screen (Unicode UAX #9), and a lone surrogate cannot even be
# encoded.  With any of them a token could clear the screen and draw its own
# "VALID" verdict.  So every value printed as text goes through
# terminal_safe(), which writes each such character as a visible escape
# (\x1b, \x9b, \u202e); --json output is escaped by json.dumps already.
_TERMINAL_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_TERMINAL_UNSAFE_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape_char(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(value: Any, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every control character (C0 including ESC, CR,
    LF and TAB; DEL; C1 U+0080-U+009F), bidirectional formatting character,
    line / paragraph separator and lone surrogate written as a visible
    escape, so that printing it cannot drive the terminal.  The one escaping
    function of the text output; ``keep_newlines`` is for the writer that
    guards whole lines (the newlines there are the program's own)."""
    text = value if isinstance(value, str) else str(value)
    pattern = _TERMINAL_UNSAFE_BUT_NEWLINE if keep_newlines else _TERMINAL_UNSAFE
    return pattern.sub(_escape_char, text)


class _TerminalOut:
    """The text output stream: whatever is written passes terminal_safe()
    (newlines kept), a second line of defence behind the per-value escaping,
    so that no value a format string forgot can reach the terminal raw."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(terminal_safe(text, keep_newlines=True))

    def flush(self) -> None:
        self._out.flush()


def human(out: TextIO) -> TextIO:
    """``out`` wrapped for text output (see terminal_safe); idempotent."""
    if isinstance(out, _TerminalOut):
        return out
    return cast(TextIO, _TerminalOut(out))


def _plural(count: int, word: str, plural: Optional[str] = None) -> str:
    """``"1 usable key"``, ``"2 usable keys"``."""
    return f"{count} {word if count == 1 else (plural or word + 's')}"


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
    whitespace, an ``Authorization:`` header name and a ``Bearer `` /
    ``DPoP `` scheme (a header line copied whole) are removed.

    The ``DPoP`` scheme is accepted as well (RFC 9449 section 7.1): the token
    is the same; that a DPoP-bound token also needs its proof is said in the
    output.  A ``DPoP:`` *proof* header line is refused: it is not the token."""
    if value == "-":
        value = stdin.read(_MAX_TOKEN_CHARS + 1)
        if len(value) > _MAX_TOKEN_CHARS:
            raise UsageError(f"standard input holds more than {_MAX_TOKEN_CHARS} characters: not a token")
    token = value.strip()
    # A whole header line: "Authorization: Bearer <token>" (RFC 9110 section
    # 5.1: the field name is case-insensitive; optional whitespace around it).
    header = re.match(r"(?i)^authorization[ \t]*:[ \t]*", token)
    if header:
        token = token[header.end():]
    elif re.match(r"(?i)^dpop[ \t]*:", token):
        raise UsageError("that is the DPoP proof header (DPoP: ...), not the token: pass the Authorization "
                         "header's value (DPoP <token>) or the token alone")
    # RFC 6750 section 2.1 / RFC 9449 section 7.1: the scheme, then one or more spaces.
    match = re.match(r"(?i)^(bearer|dpop)(?:[ \t]+|$)", token)
    if match:
        token = token[match.end():].strip()
    elif header:
        scheme = token.split(None, 1)[0] if token.strip() else ""
        raise UsageError(f"the Authorization header's scheme is {scheme[:20]!r}, not Bearer or DPoP: "
                         "it does not carry an access token")
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
    except RecursionError:  # e.g. 1,000 nested arrays: the parser's own limit
        raise TooDeep(f"the {what} nests JSON arrays/objects too deeply to decode; oidc_guard refuses "
                      "such a token") from None


class TooDeep(ValueError):
    """A header or payload nested beyond what the JSON parser follows."""


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
        # Rendered before anything is printed: a value the parser accepted
        # may still be too deep for the encoder.
        header_text = json.dumps(header, indent=2)
        payload_text = json.dumps(payload, indent=2, default=str)
    except ValueError as exc:
        if args.json:
            _print_json(out, {"verified": False, "jws": False, "token": token_label(token), "reason": str(exc)})
        else:
            what = "cannot decode" if isinstance(exc, TooDeep) else "not a JWS"
            human(out).write(f"{what} ({token_label(token)}): {terminal_safe(exc)}\n")
        return EXIT_INVALID
    except RecursionError:
        return _too_deep(args, out, token)
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
    # Every value below is the token's own (unverified) writing: each goes
    # through terminal_safe (json.dumps escapes controls already).
    out = human(out)
    out.write("UNVERIFIED: decoded only. Nothing below is checked; this says nothing about validity.\n")
    out.write(f"token: {token_label(token)}, signature {sig_len} bytes\n\n")
    out.write("UNVERIFIED header:\n" + _indent(header_text) + "\n")
    out.write("UNVERIFIED payload:\n" + _indent(payload_text) + "\n")
    if times:
        out.write("\nUNVERIFIED times:\n")
        for entry in times:
            shown = entry["iso"] or _bounded_repr(entry["value"])
            out.write(f"  {entry['claim']:<9} {terminal_safe(shown)}  ({entry['relative']})\n")
    out.write("\nKeys needed to verify it: ")
    if needed["issuer"]:
        out.write(f"the JWKS of issuer {terminal_safe(needed['issuer'])} "
                  f"(discovery: {terminal_safe(needed['jwks'])})")
    else:
        out.write("unknown: the payload names no issuer (iss)")
    out.write(f", kid {_bounded_repr(needed['kid'])}, alg {_bounded_repr(needed['alg'])}\n")
    for note in notes:
        out.write(f"note: {terminal_safe(note)}\n")
    if needed["issuer"]:
        out.write(f"To verify: oidc-guard validate - --issuer {terminal_safe(needed['issuer'])} "
                  "--audience YOUR-API\n")
    return EXIT_OK


def _bounded_repr(value: Any, limit: int = 200) -> str:
    """repr() of an untrusted value, terminal-safe and at most ``limit`` characters."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deeply>"
    text = terminal_safe(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _too_deep(args: argparse.Namespace, out: TextIO, token: str) -> int:
    """One line, exit 1, for a token whose JSON is too deep to show."""
    reason = "the token's JSON nests arrays/objects too deeply to show; oidc_guard refuses such a token"
    if args.json:
        _print_json(out, {"verified": False, "jws": False, "token": token_label(token), "reason": reason})
    else:
        human(out).write(f"cannot decode ({token_label(token)}): {reason}\n")
    return EXIT_INVALID


def _inspect_notes(header: Mapping[str, Any], payload: Any) -> List[str]:
    """What oidc_guard would refuse on sight, worded as hints (still unverified)."""
    notes = []
    alg = header.get("alg")
    if alg not in SUPPORTED_ALGORITHMS:
        notes.append(f"alg {_bounded_repr(alg)} is not one oidc_guard accepts ({', '.join(SUPPORTED_ALGORITHMS)})")
    for member in ("jwk", "jku", "x5u", "x5c"):
        if member in header:
            notes.append(f"header {member!r} is ignored: keys come only from the issuer's JWKS")
    if "crit" in header:
        notes.append("header 'crit' is refused")
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower() not in ("jwt", "at+jwt", "application/at+jwt"):
        notes.append(f"typ {_bounded_repr(typ)} is not an access token type (JWT or at+jwt)")
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
    # The same settings as validate: the environment's introspection
    # variables (an explicit endpoint means the provider's documents need
    # not name one).  The secret is not needed to look at the provider.
    intro = introspection_settings(secret_required=False)
    meant = looks_like_discovery_url(issuer)
    if meant is not None:
        # Not fetched: issuer + /.well-known/openid-configuration would only add a 404.
        flags.append(("error", f"ISSUER is a discovery URL, not an issuer identifier; pass the issuer itself "
                               f"(OpenID Connect Discovery section 4): oidc-guard discover {meant}"))
        result["discovery_url"] = None

    doc: Optional[Dict[str, Any]] = None
    jwks: Optional[Dict[str, Any]] = None
    cache_control: Optional[str] = None
    if meant is None:
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
                                   "refuses it (OpenID Connect Discovery 4.3: exact string match)"
                                   + mismatch_hint(issuer, named)))
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
        needs_introspection = bool(args.introspection or intro.get("introspection_client_id"))
        result["introspection"] = _discover_introspection(args, issuer, doc, intro, needs_introspection, flags)
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
            # With the environment's credentials the check also finds the
            # introspection endpoint, as it would for validate.
            checked = intro if "introspection_client_secret" in intro else {
                k: v for k, v in intro.items() if not k.startswith("introspection_client")}
            validator = TokenValidator(issuer, audience=None, verify_audience=False, allow_http=args.allow_http,
                                       http_timeout=args.timeout, **checked)
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


def _discover_introspection(args: argparse.Namespace, issuer: str, doc: Mapping[str, Any],
                            intro: Mapping[str, Any], needed: bool, flags: List[Tuple[str, str]]) -> Dict[str, Any]:
    """Where the introspection endpoint comes from, as the library would find
    it: the explicit setting, else the OpenID document, else the issuer's
    RFC 8414 document.  Appends the flags; returns the JSON entry."""
    explicit = intro.get("introspection_endpoint")
    if explicit:
        flags.append(("info", f"introspection_endpoint {explicit} given by {ENV_ENDPOINT}: the provider's "
                              "documents are not consulted for it"))
        try:
            check_url(explicit, args.allow_http, ENV_ENDPOINT)
        except ProviderError as exc:
            flags.append(("error", exc.description))
        return {"endpoint": explicit, "source": ENV_ENDPOINT}
    if doc.get("introspection_endpoint"):
        return {"endpoint": doc["introspection_endpoint"], "source": discovery_url(issuer)}
    oauth_url = authorization_server_metadata_url(issuer)
    severity = "error" if needed else "info"
    try:
        oauth, why = fetch_authorization_server_metadata(issuer, timeout=args.timeout, max_bytes=_MAX_DOC_BYTES,
                                                         allow_http=True)
    except ProviderError as exc:  # IssuerMismatch among others
        flags.append((severity if needed else "warning",
                      f"no introspection_endpoint in the discovery document, and the RFC 8414 document cannot "
                      f"be used: {exc.description}"))
        return {"endpoint": None, "source": None}
    endpoint = oauth.get("introspection_endpoint") if oauth is not None else None
    if endpoint:
        flags.append(("info", f"introspection_endpoint found in the RFC 8414 document {oauth_url} (the "
                              "discovery document names none): oidc_guard uses it"))
        flag = _scheme_flag(endpoint, "introspection_endpoint")
        if flag:
            flags.append(("warning", flag))
        return {"endpoint": endpoint, "source": oauth_url}
    where = why if oauth is None else f"{oauth_url} names none"
    if needed:
        flags.append(("error", "no introspection_endpoint, and introspection is configured (reference tokens "
                               f"cannot be validated): neither the discovery document nor the RFC 8414 document "
                               f"({where}) names one; set {ENV_ENDPOINT} (introspection_endpoint=)"))
    else:
        flags.append((severity, f"no introspection_endpoint (nor in the RFC 8414 document: {where}): fine for "
                                "JWT access tokens only"))
    return {"endpoint": None, "source": None}


def _print_discovery(out: TextIO, result: Mapping[str, Any], flags: Sequence[Tuple[str, str]]) -> None:
    # The metadata, the keys and the flags quoting them are the provider's
    # writing (or an attacker's on the way): every value through terminal_safe.
    out = human(out)
    safe = terminal_safe
    shown_url = result["discovery_url"] or "(not fetched: ISSUER is a discovery URL)"
    out.write(f"issuer:    {safe(result['issuer'])}\ndiscovery: {safe(shown_url)}\n")
    for key, value in result.get("metadata", {}).items():
        if key == "issuer":
            continue
        shown = " ".join(map(safe, value)) if isinstance(value, list) else safe(value)
        out.write(f"  {key}: {shown}\n")
    intro = result.get("introspection") or {}
    if intro.get("endpoint") and intro.get("source") != result["discovery_url"] and "metadata" in result:
        out.write(f"  introspection_endpoint: {safe(intro['endpoint'])} (from {safe(intro['source'])})\n")
    if "jwks_cache_control" in result:
        out.write(f"  JWKS Cache-Control: {safe(result['jwks_cache_control'] or '(none)')}\n")
    keys = result.get("keys", [])
    if keys:
        out.write(f"\nkeys ({len(keys)}):\n")
        out.write(f"  {'kid':<28} {'kty':<4} {'alg':<6} {'size':>5}  {'use':<4} usable\n")
        for key in keys:
            out.write(f"  {safe(key['kid']):<28} {safe(key['kty']):<4} {safe(key['alg'] or '-'):<6} "
                      f"{safe(key['size'] or '?'):>5}  {safe(key['use'] or '-'):<4} "
                      f"{'yes' if key['usable'] else 'no'}\n")
    check = result.get("library_check", {})
    if check.get("checked"):
        out.write("\noidc_guard start-up check: " + ("ok" if check.get("ok") else "FAILED") + "\n")
    if flags:
        out.write("\n")
        for severity, text in flags:
            out.write(f"{severity.upper()}: {safe(text)}\n")
    out.write("\n" + ("UNUSABLE: oidc_guard cannot validate tokens of this issuer as it stands\n"
                      if not result.get("usable") else "usable\n"))


# --- validate -----------------------------------------------------------------------------------


def introspection_settings(*, secret_required: bool = True) -> Dict[str, Any]:
    """The introspection settings of the environment, as TokenValidator
    keywords: the one source for ``validate`` and ``discover``.  Only the
    environment: a secret on a command line lands in shell history and
    ``ps``.  ``secret_required=False`` (discover, which sends nothing)
    accepts the client id alone and returns no secret."""
    from .validator import TokenValidator

    accepted = _inspect.signature(TokenValidator.__init__).parameters
    kwargs: Dict[str, Any] = {}
    client_id = os.environ.get(ENV_CLIENT_ID)
    secret = os.environ.get(ENV_CLIENT_SECRET)
    if client_id or secret:
        if "introspection_client_id" not in accepted:
            raise UsageError(f"{ENV_CLIENT_ID} is set, but this oidc_guard cannot introspect reference tokens")
        if secret_required and not (client_id and secret):
            raise UsageError(f"set both {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}")
        if client_id:
            kwargs["introspection_client_id"] = client_id
        if secret and client_id:
            kwargs["introspection_client_secret"] = secret
    endpoint = os.environ.get(ENV_ENDPOINT)
    if endpoint and "introspection_endpoint" in accepted:
        kwargs["introspection_endpoint"] = endpoint
    auth_method = os.environ.get(ENV_AUTH_METHOD)
    if auth_method and "introspection_auth_method" in accepted:
        kwargs["introspection_auth_method"] = auth_method
    return kwargs


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
    kwargs.update(introspection_settings())
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
                     error: Optional[OIDCGuardError], wanted: Sequence[str], introspects: bool = True) -> int:
    """Print a validation outcome (shared with ``flask oidc-guard validate``);
    return the exit code.  ``introspects``: False when the validator has no
    introspection credentials (an opaque token is then explained as such)."""
    now = time.time()
    if error is not None:
        code = EXIT_PROVIDER if isinstance(error, ProviderError) else EXIT_INVALID
        description = error.description
        hint: Optional[str] = None
        if code == EXIT_PROVIDER:
            hint = _unverified_exp_hint(token, now)
        elif not introspects and "." not in token:
            # The library says "1 segment(s); a JWS has 3", true but not the
            # point: this is a reference token and nothing here can read it.
            hint = ("an opaque (reference) token, which only the provider's introspection endpoint can read "
                    f"(RFC 7662); set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} (this API's credentials) to "
                    "introspect it")
            description = hint
        if as_json:
            doc: Dict[str, Any] = {"valid": False, "token": token_label(token), "error": error.error,
                                   "error_description": error.description}
            if hint:
                doc["hint"] = hint
            doc["exit"] = code
            _print_json(out, doc)
            return code
        out = human(out)
        if code == EXIT_PROVIDER:
            out.write(f"PROVIDER UNUSABLE (not a verdict on the token): {terminal_safe(description)}\n")
            if hint:
                out.write(f"  hint: {terminal_safe(hint)}\n")
        else:
            out.write(f"INVALID ({terminal_safe(error.error)}): {terminal_safe(description)}\n")
        return code
    assert claims is not None
    missing = [scope for scope in wanted if scope not in claims.scopes]
    summary = claims_summary(claims, now)
    if as_json:
        _print_json(out, {"valid": not missing, "token": token_label(token), "signature_verified": True,
                          "missing_scopes": missing, **summary, "exit": EXIT_INVALID if missing else EXIT_OK})
        return EXIT_INVALID if missing else EXIT_OK
    # The claims are signed by the issuer, but they are still someone's
    # writing (a user's name, a client's id): every value through terminal_safe.
    out = human(out)
    safe = terminal_safe
    claims_text = json.dumps(summary["claims"], indent=2, default=str)
    if missing:
        out.write(f"INSUFFICIENT SCOPE: the token is valid but lacks {safe(' '.join(missing))} "
                  f"(it has: {safe(' '.join(sorted(claims.scopes))) or 'none'})\n")
    else:
        out.write("VALID: signature and claims verified against the issuer's keys\n")
    out.write(f"  token:      {token_label(token)}\n")
    for key in ("subject", "client_id", "issuer"):
        value = summary[key]
        out.write(f"  {key + ':':<11} {'(none)' if value is None else safe(value)}\n")
    out.write(f"  scopes:     {safe(' '.join(summary['scopes'])) or '(none)'}\n")
    out.write(f"  audiences:  {safe(' '.join(summary['audiences'])) or '(none)'}\n")
    for entry in summary["times"]:
        out.write(f"  {entry['claim'] + ':':<11} {entry['iso']} ({entry['relative']})\n")
    if summary["binding"]:
        out.write(f"  note:       {summary['binding']}\n")
    out.write("claims:\n" + _indent(claims_text) + "\n")
    return EXIT_INVALID if missing else EXIT_OK


def _unverified_exp_hint(token: str, now: float) -> Optional[str]:
    """With the provider unusable nothing is verified, but an ``exp`` long
    past (read unverified) tells the operator the token is dead anyway."""
    try:
        _header, payload, _sig = decode_unverified(token)
    except ValueError:
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not exp < now:
        return None
    if describe_time("exp", exp, now) is None:  # not a representable date
        return None
    past = now - float(exp)
    amount = _plural(int(round(past / 86400)), "day") if past >= 48 * 3600 else relative(-past)[: -len(" ago")]
    return (f"the token's unverified exp is {amount} past: once the provider answers, it will be refused "
            "as expired")


def cmd_validate(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from .validator import TokenValidator

    token = read_token(args.token, stdin)
    if args.id_token:
        # OpenID Connect Core 3.1.3.7 step 3: an ID Token's audience is the
        # client it was issued to, so --client-id is the audience here.
        if not args.client_id:
            raise UsageError("--id-token needs --client-id (the client the ID Token was issued to: its audience)")
        other = [aud for aud in args.audience if aud != args.client_id]
        if other:
            raise UsageError(f"--audience {other[0]!r} does not apply to --id-token: an ID Token's audience is "
                             "the client, --client-id; drop --audience")
        args.audience = [args.client_id]
    elif args.client_id or args.nonce:
        raise UsageError("--client-id and --nonce apply only with --id-token")
    elif not args.audience and not args.no_verify_audience:
        raise UsageError("--audience is required (this API's identifier); --no-verify-audience turns the check off")
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
    return write_validation(out, as_json=args.json, token=token, claims=claims, error=error, wanted=args.scope,
                            introspects=args.id_token or getattr(validator, "validation_mode", "local") != "local")


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
oidc_guard's own start-up check. The introspection endpoint is looked up as
the library does: OIDC_GUARD_INTROSPECTION_ENDPOINT, else the discovery
document, else the issuer's RFC 8414 document
(/.well-known/oauth-authorization-server).

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
  oidc-guard validate "$ID_TOKEN" --issuer https://idp.example.com --id-token --client-id spa

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
        human(sys.stderr).write(f"oidc-guard {args.command}: error: {terminal_safe(exc)}\n")
        return EXIT_USAGE
    except RecursionError:
        # A document or token nested beyond what json follows, at a place
        # no command caught it: one line, not a traceback.
        human(sys.stderr).write(f"oidc-guard {args.command}: error: the input nests JSON arrays/objects too "
                                "deeply to process\n")
        return EXIT_PROVIDER if args.command == "discover" else EXIT_INVALID
    except KeyboardInterrupt:
        return 130


def console_main() -> None:
    """Entry point of the ``oidc-guard`` console script."""
    sys.exit(main())
