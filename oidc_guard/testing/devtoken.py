"""``python -m oidc_guard.testing token``: a user's access token from a running
development provider, for curl, ``oidc-guard validate`` or a quick test.

**Development only.** It signs in to :class:`~oidc_guard.testing.LocalIssuer`
(the demo's provider, ``bash scripts/demo.sh``) as a browser would, with the
authorization code flow and PKCE (RFC 6749 section 4.1, RFC 7636) of the
public client ``dev-cli``: it posts the username and password to the login
form of ``/authorize``, takes the code from the redirect response (no server
needs to listen on the redirect URI), and redeems it at ``/token``.  It
talks to loopback issuers only: a password typed here never leaves the
machine, and a real identity provider's login page is not this form.

Usage::

    python -m oidc_guard.testing token --issuer http://127.0.0.1:5000 \\
        --user alice --password alice --scope contacts \\
        [--resource https://api.example.com/contacts] [--acr-values urn:oidc-guard:loa:2]

prints the access token (``--id-token``: the ID Token; ``--json``: the whole
token response) on standard output and nothing else, so that
``TOKEN=$(...)`` works.  Exit codes: 0 token printed, 1 the provider
refused (wrong password, scope not granted, ...), 2 usage error, 3 the
provider could not be reached or is not a development provider.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from .accounts import DEV_CLI_CLIENT_ID, DEV_CLI_REDIRECT_URI
from .jose import b64url_encode
from .server import is_loopback_host

__all__ = ["main", "user_token", "DevTokenError"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
_TIMEOUT = 10.0  # seconds per request
_MAX_BODY = 256 * 1024


class DevTokenError(Exception):
    """Why no token was obtained; ``exit_code`` is 1 (refused) or 3
    (unreachable, or not a development provider)."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The redirect of /authorize carries the code: read it, never follow it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy from the environment for loopback requests, no redirects followed.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _request(url: str, form: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
    data = urllib.parse.urlencode(form).encode("ascii") if form is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if form is not None else "GET")
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with _OPENER.open(request, timeout=_TIMEOUT) as response:
            return response.status, dict(response.headers.items()), response.read(_MAX_BODY)
    except urllib.error.HTTPError as exc:  # 3xx (not followed), 4xx, 5xx
        body = exc.read(_MAX_BODY) if exc.fp is not None else b""
        return exc.code, dict(exc.headers.items()), body
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DevTokenError(f"cannot reach {url}: {reason} (is the development provider running? "
                            "bash scripts/demo.sh starts one)", EXIT_UNREACHABLE) from None


def _json(body: bytes, what: str) -> Dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DevTokenError(f"{what} is not JSON", EXIT_UNREACHABLE) from None
    if not isinstance(value, dict):
        raise DevTokenError(f"{what} is not a JSON object", EXIT_UNREACHABLE)
    return value


def _same_origin(url: str, issuer: str) -> bool:
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(issuer)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def user_token(issuer: str, user: str, password: str, scope: Sequence[str] = ("contacts",), *,
               resource: Optional[str] = None, acr_values: Sequence[str] = ()) -> Dict[str, Any]:
    """Sign in to the development provider at ``issuer`` as ``user`` and
    return its token response (``access_token``, ``id_token``,
    ``token_type``, ``expires_in``, ``scope``).  ``resource``: the RFC 8707
    resource the access token is for (its ``aud``); ``acr_values``: the
    sign-in levels asked for (OIDC Core 3.1.2.1; the tokens' ``acr``).
    Raises :class:`DevTokenError`."""
    parts = urllib.parse.urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DevTokenError(f"--issuer must be an http(s) URL, got {issuer!r}", EXIT_USAGE)
    if not is_loopback_host(parts.hostname):
        raise DevTokenError(
            f"{parts.hostname!r} is not a loopback address: this command signs in to the development "
            "provider (oidc_guard.testing, on 127.0.0.1) only; get tokens from a real provider its own way",
            EXIT_USAGE,
        )
    status, _headers, body = _request(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if status != 200:
        raise DevTokenError(f"no discovery document at {issuer} (HTTP {status})", EXIT_UNREACHABLE)
    discovery = _json(body, "the discovery document")
    if discovery.get("issuer") != issuer:
        # OpenID Connect Discovery 1.0 section 4.3: exactly the issuer asked for
        raise DevTokenError(f"the discovery document's issuer is {discovery.get('issuer')!r}, not {issuer!r}",
                            EXIT_UNREACHABLE)
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint"):
        url = discovery.get(name)
        if not isinstance(url, str) or not _same_origin(url, issuer):
            raise DevTokenError(f"the discovery document has no {name} on {issuer}", EXIT_UNREACHABLE)
        endpoints[name] = url

    requested: List[str] = ["openid"] + [s for s in scope if s != "openid"]
    verifier = secrets.token_urlsafe(48)  # RFC 7636 4.1: 43-128 characters
    state = secrets.token_urlsafe(16)
    authorization = {
        "response_type": "code",
        "client_id": DEV_CLI_CLIENT_ID,
        "redirect_uri": DEV_CLI_REDIRECT_URI,
        "scope": " ".join(requested),
        "state": state,
        "code_challenge": b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest()),  # RFC 7636 4.2
        "code_challenge_method": "S256",
        "username": user,
        "password": password,
    }
    if resource is not None:
        # RFC 8707 2.1: the code is bound to it; /token then issues the
        # access token for it (the provider's default for a single resource).
        authorization["resource"] = resource
    if acr_values:
        authorization["acr_values"] = " ".join(acr_values)
    status, headers, body = _request(endpoints["authorization_endpoint"], authorization)
    if status == 200:  # the login page again: the credentials were wrong
        raise DevTokenError(f"wrong username or password for {user!r}")
    location = {k.lower(): v for k, v in headers.items()}.get("location", "")
    if status != 302 or not location.startswith(DEV_CLI_REDIRECT_URI + "?"):
        raise DevTokenError(
            f"the authorization endpoint answered HTTP {status} without redirecting to the {DEV_CLI_CLIENT_ID!r} "
            "client: is this a development provider (oidc_guard.testing.LocalIssuer) with its default clients?",
            EXIT_UNREACHABLE,
        )
    answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    if answer.get("state") != state:  # RFC 6749 10.12
        raise DevTokenError("the redirect carries another state than the request")
    if "error" in answer:  # RFC 6749 4.1.2.1
        raise DevTokenError(f"the provider refused: {answer['error']}: {answer.get('error_description', '')}")
    code = answer.get("code")
    if not code:
        raise DevTokenError("the redirect carries no code")

    status, _headers, body = _request(endpoints["token_endpoint"], {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": DEV_CLI_REDIRECT_URI,
        "client_id": DEV_CLI_CLIENT_ID,
        "code_verifier": verifier,
    })
    response = _json(body, "the token response")
    if status != 200 or not isinstance(response.get("access_token"), str):
        raise DevTokenError(f"the token endpoint refused (HTTP {status}): {response.get('error')}: "
                            f"{response.get('error_description', '')}")
    granted = str(response.get("scope", "")).split()
    missing = [s for s in requested if s not in granted]
    if missing:  # RFC 6749 3.3: the server may grant less; say so rather than print a useless token
        raise DevTokenError(f"scope not granted to {DEV_CLI_CLIENT_ID!r}: {' '.join(missing)} "
                            f"(granted: {' '.join(granted) or 'none'})")
    return response


def main(argv: Optional[Sequence[str]] = None, *, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m oidc_guard.testing",
        description="Development tools of oidc_guard.testing (never for production).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    token = commands.add_parser(
        "token", help="a user's access token from a running development provider",
        description="Sign in to a running development provider (LocalIssuer, e.g. the demo's) as a user and "
                    "print the access token. Loopback issuers only.",
    )
    token.add_argument("--issuer", required=True, help="the development provider's issuer URL, e.g. http://127.0.0.1:5000")
    token.add_argument("--user", required=True, help="username (the demo's users: alice, bob)")
    token.add_argument("--password", help="password (the demo's: the username); asked for when omitted")
    token.add_argument("--scope", action="append", default=[], metavar="SCOPE",
                       help="scope to ask for besides openid; repeat it or separate with spaces (default: contacts)")
    token.add_argument("--resource", metavar="URI",
                       help="the API the access token is for (RFC 8707; its aud); default: the provider's audience")
    token.add_argument("--acr-values", action="append", default=[], metavar="ACR",
                       help="sign-in level to ask for (the tokens' acr), e.g. urn:oidc-guard:loa:2; repeat it "
                            "or separate with spaces")
    shown = token.add_mutually_exclusive_group()
    shown.add_argument("--id-token", action="store_true", help="print the ID Token instead")
    shown.add_argument("--json", action="store_true", help="print the whole token response as JSON")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    if args.command != "token":
        parser.print_usage(stderr)
        return EXIT_USAGE
    scopes = [s for item in args.scope for s in item.split()] or ["contacts"]
    password = args.password
    if password is None:
        password = getpass.getpass(f"password for {args.user}: ")
    try:
        response = user_token(args.issuer, args.user, password, scopes, resource=args.resource,
                              acr_values=[a for item in args.acr_values for a in item.split()])
    except DevTokenError as exc:
        print(f"oidc_guard.testing token: {exc}", file=stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(response, indent=2, sort_keys=True), file=stdout)
    elif args.id_token:
        print(response.get("id_token", ""), file=stdout)
    else:
        print(response["access_token"], file=stdout)
    return EXIT_OK
