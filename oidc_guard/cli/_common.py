"""What every ``oidc-guard`` command shares besides its output: the exit
codes, :class:`UsageError`, the TOKEN argument (:func:`read_token`) and the
unverified read of a compact JWS (:func:`decode_unverified`, for ``inspect``
and for the hint of ``validate``) with the binding its ``cnf`` claim asks
for (:func:`token_bindings`).  Internal to the command line; the names
users import are re-exported by :mod:`oidc_guard.cli`."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Dict, Mapping, TextIO, Tuple

from ..claims import confirmation_keys
from ..errors import InvalidToken

__all__ = ["EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_PROVIDER", "UsageError", "read_token", "TooDeep",
           "decode_unverified", "token_bindings"]

EXIT_OK = 0
EXIT_INVALID = 1  # the token is invalid, a scope is missing, inspect: not a JWS
EXIT_USAGE = 2  # argparse's own code for usage errors
EXIT_PROVIDER = 3  # discovery / JWKS (or introspection) unusable

_MAX_TOKEN_CHARS = 1024 * 1024  # stdin is read up to this much, then refused


class UsageError(Exception):
    """A command-line mistake: exit 2 with the message."""


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


def token_bindings(claims: Mapping[str, Any]) -> Tuple[str, ...]:
    """The proofs a token's ``cnf`` claim (RFC 7800 section 3.1) asks for,
    in the order they are checked: ``"dpop"`` for ``cnf.jkt`` (RFC 9449
    section 6), ``"mtls"`` for ``cnf["x5t#S256"]`` (RFC 8705 section 3.1);
    ``()`` for a plain bearer token; ``("unreadable",)`` when ``cnf`` is
    there but not a JSON object (the guard refuses such a token, reason
    ``binding``).  Read by :func:`oidc_guard.claims.confirmation_keys`, the
    decision the guard itself makes, so the command says what a request
    would meet (a member whose value is ``null`` is absent there too).
    Only reads the claims: ``inspect`` passes the unverified payload,
    ``validate`` the verified claims; nothing here checks a proof."""
    try:
        jkt, x5t = confirmation_keys(claims)
    except InvalidToken:
        return ("unreadable",)
    return tuple(kind for kind, value in (("dpop", jkt), ("mtls", x5t)) if value is not None)
