"""``oidc-guard discover``: a provider's discovery document and JWKS (the
raw documents, as a reviewer reads them), what a reviewer would flag in
them, where the introspection endpoint comes from, and the library's own
start-up check."""

from __future__ import annotations

import argparse
import base64
import binascii
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple
from urllib.parse import urlsplit

from ..discovery import (authorization_server_metadata_url, discovery_url, fetch_authorization_server_metadata,
                         looks_like_discovery_url, mismatch_hint)
from ..errors import OIDCGuardError, ProviderError
from ..http import check_url, fetch_json, is_loopback_host
from ..jwks import MIN_RSA_BITS, parse_jwks
from ._common import EXIT_OK, EXIT_PROVIDER, UsageError
from ._output import human, print_json, terminal_safe
from ._settings import ENV_ENDPOINT, introspection_settings

__all__ = ["cmd_discover"]

_MAX_DOC_BYTES = 512 * 1024
# JWK members that only a private key has (RFC 7518 section 6.2.2 / 6.3.2 / 6.4, RFC 8037 section 2)
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


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
        from ..validator import TokenValidator

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
        print_json(out, result)
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
