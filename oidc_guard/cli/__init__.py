"""The ``oidc-guard`` command line (also ``python -m oidc_guard``).

Four commands, for the operator who wants to know, without writing code,
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
``oidc-guard probe URL``
    call an API without a token as a client that knows only its URL would
    (an MCP client, for one): read its challenge, fetch its protected
    resource metadata (RFC 9728) and its authorization servers' metadata
    (RFC 8414 / OpenID), say which server, flow, ``resource`` (RFC 8707)
    and scopes a client would use, and flag what is inconsistent.  Exit 0;
    1 inconsistent or insufficient; 3 a document cannot be fetched or read.

``TOKEN`` may be ``-`` for standard input (a whole ``Authorization:``
header line is accepted).  Every value shown as text passes
``terminal_safe`` (no control character reaches the terminal).  ``--json`` prints one JSON
object on standard output instead of text.  Usage errors exit 2.  Nothing
here prints a whole token or a secret: a token is shown by its length and
the start of its SHA-256 (which is how it can be found in a cache).

Standard library only (argparse); the Flask commands (``flask oidc-guard
check`` / ``validate``) live in :mod:`oidc_guard.flask_cli` and reuse the
output helpers of this package.

One module per command (``oidc_guard.cli.discover``, ``.validate``,
``.inspect``, ``.probe``); what they share lives in underscore modules (``_output``:
terminal escaping, JSON, plurals, times; ``_common``: exit codes, the TOKEN
argument, the unverified JWS read; ``_settings``: the environment's
introspection settings).  This module parses the arguments and dispatches;
the names documented below are importable from ``oidc_guard.cli``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn, Optional, Sequence, TextIO

from ..jwks import SUPPORTED_ALGORITHMS
from ._common import EXIT_INVALID, EXIT_OK, EXIT_PROVIDER, EXIT_USAGE, UsageError
from .discover import cmd_discover
from .inspect import cmd_inspect
from .probe import cmd_probe
from .validate import cmd_validate

# Names that lived in this module before it became a package, importable
# from oidc_guard.cli as before (tests, users' scripts); "as" marks them as
# re-exported for type checkers.
from ._common import TooDeep as TooDeep, decode_unverified as decode_unverified, read_token as read_token
from ._output import (describe_time as describe_time, human as human, iso as iso, relative as relative,
                      terminal_safe as terminal_safe, token_label as token_label)
from ._settings import (ENV_AUTH_METHOD as ENV_AUTH_METHOD, ENV_CLIENT_ID as ENV_CLIENT_ID,
                        ENV_CLIENT_SECRET as ENV_CLIENT_SECRET, ENV_ENDPOINT as ENV_ENDPOINT,
                        introspection_settings as introspection_settings)
from .validate import claims_summary as claims_summary, write_validation as write_validation

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_PROVIDER"]


# --- the parser ----------------------------------------------------------------------------------

_INTRO = """\
Check OpenID Connect providers and tokens the way oidc_guard does.

examples:
  oidc-guard discover https://idp.example.com
  oidc-guard validate "$TOKEN" --issuer https://idp.example.com --audience api://contacts --scope contacts
  pbpaste | oidc-guard inspect -
  oidc-guard probe https://api.example.com/contacts

exit codes: 0 ok; 1 invalid token, missing scope, not a JWS, or (probe) an
inconsistency; 2 usage error; 3 the provider (discovery, JWKS, metadata) is
unusable.
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


_PROBE_HELP = """\
Call URL (an API) without a token, as a client that knows nothing else
would (an MCP client, for one), and report what it learns: the 401 challenge
(WWW-Authenticate: Bearer / DPoP), the protected resource metadata (RFC 9728:
the challenge's resource_metadata, else the well-known URL
/.well-known/oauth-protected-resource inserted before the path), each
authorization server's metadata (RFC 8414, else OpenID discovery), and then
which server, flow (authorization code with PKCE S256), resource (RFC 8707)
and scopes a client would use. Flags what is inconsistent: no challenge, a
metadata resource that differs from URL, no authorization_servers, a server
without PKCE S256, scopes that are not named. Only GETs without credentials
are sent.

example:
  oidc-guard probe https://api.example.com/contacts
  oidc-guard probe --json http://127.0.0.1:5000/contacts | jq .client

exit: 0 a client can get in and nothing is inconsistent; 1 something is
inconsistent or missing; 3 the API or a metadata document cannot be fetched
or read.
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
                         help="accept plain http for a non-loopback issuer or API (loopback always works)")

    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="oidc-guard", description=_INTRO, formatter_class=raw, parents=[common])
    from .. import __version__

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

    p = sub.add_parser("probe", help="call an API without a token and report how a client would get in",
                       description=_PROBE_HELP, formatter_class=raw, parents=[common, network])
    p.add_argument("url", metavar="URL", help="the API's URL (its resource identifier), e.g. "
                                              "https://api.example.com/contacts")
    p.set_defaults(func=cmd_probe)
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
        return EXIT_PROVIDER if args.command in ("discover", "probe") else EXIT_INVALID
    except KeyboardInterrupt:
        return 130


def console_main() -> None:
    """Entry point of the ``oidc-guard`` console script."""
    sys.exit(main())
