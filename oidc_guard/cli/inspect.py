"""``oidc-guard inspect``: a compact JWS decoded WITHOUT verifying anything
(every line says UNVERIFIED), its times in words, the keys that would be
needed to verify it and what oidc_guard would refuse on sight."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, List, Mapping, TextIO

from ..discovery import discovery_url
from ..jwks import SUPPORTED_ALGORITHMS
from ._common import EXIT_INVALID, EXIT_OK, TooDeep, decode_unverified, read_token, token_bindings
from ._output import TIME_CLAIMS, describe_time, human, indent, print_json, terminal_safe, token_label

__all__ = ["cmd_inspect"]


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
            print_json(out, {"verified": False, "jws": False, "token": token_label(token), "reason": str(exc)})
        else:
            what = "cannot decode" if isinstance(exc, TooDeep) else "not a JWS"
            human(out).write(f"{what} ({token_label(token)}): {terminal_safe(exc)}\n")
        return EXIT_INVALID
    except RecursionError:
        return _too_deep(args, out, token)
    times = []
    if isinstance(payload, dict):
        for name in TIME_CLAIMS:
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
        print_json(out, {
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
    out.write("UNVERIFIED header:\n" + indent(header_text) + "\n")
    out.write("UNVERIFIED payload:\n" + indent(payload_text) + "\n")
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
        print_json(out, {"verified": False, "jws": False, "token": token_label(token), "reason": reason})
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
        bindings = token_bindings(payload)
        if "dpop" in bindings:
            notes.append("cnf.jkt: a DPoP-bound token, it must be sent with a DPoP proof (RFC 9449)")
        if "mtls" in bindings:
            notes.append("cnf x5t#S256: a certificate-bound token, it needs the client's TLS certificate (RFC 8705)")
        if "unreadable" in bindings:
            notes.append("cnf is not a JSON object: oidc_guard refuses this token (RFC 7800 section 3.1)")
    return notes
