"""``oidc-guard validate``: a token validated exactly as the library does,
and the outcome printed (:func:`write_validation`, shared with ``flask
oidc-guard validate``)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, Mapping, Optional, Sequence, TextIO

from ..claims import Claims
from ..errors import ConfigurationError, InvalidToken, OIDCGuardError, ProviderError
from ._common import EXIT_INVALID, EXIT_OK, EXIT_PROVIDER, UsageError, decode_unverified, read_token, token_bindings
from ._output import TIME_CLAIMS, describe_time, human, indent, plural, print_json, relative, terminal_safe, token_label
from ._settings import ENV_CLIENT_ID, ENV_CLIENT_SECRET, introspection_settings, validator_parameters

__all__ = ["cmd_validate", "write_validation", "claims_summary"]


def _validator_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
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
    accepted = validator_parameters()
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
        "times": [t for t in (describe_time(n, claims.get(n), now) for n in TIME_CLAIMS if n in claims) if t],
        "claims": _claims_dict(claims),
        "binding": _binding_note(claims),
    }
    return summary


def _binding_note(claims: Mapping[str, Any]) -> Optional[str]:
    """The signature and claims are valid, but a sender-constrained token is
    only accepted with its proof: say so rather than let "VALID" mislead."""
    bindings = token_bindings(claims)
    if not bindings:
        return None
    if bindings[0] == "unreadable":
        return ("cnf is not a JSON object (RFC 7800 section 3.1): the middleware refuses this token "
                "(401, reason binding)")
    if bindings[0] == "dpop":
        return ("DPoP-bound (cnf.jkt, RFC 9449): a request needs 'Authorization: DPoP' and a proof signed "
                "by that key; sent as Bearer it gets 401")
    return ("certificate-bound (cnf x5t#S256, RFC 8705): a request needs the client's TLS certificate "
            "with that thumbprint")


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
            print_json(out, doc)
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
        print_json(out, {"valid": not missing, "token": token_label(token), "signature_verified": True,
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
    out.write("claims:\n" + indent(claims_text) + "\n")
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
    amount = plural(int(round(past / 86400)), "day") if past >= 48 * 3600 else relative(-past)[: -len(" ago")]
    return (f"the token's unverified exp is {amount} past: once the provider answers, it will be refused "
            "as expired")


def cmd_validate(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from ..validator import TokenValidator

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

def _claims_dict(claims: Mapping[str, Any]) -> Dict[str, Any]:
    return {key: claims[key] for key in claims}
