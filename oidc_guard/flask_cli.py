"""``flask oidc-guard ...``: the command line with the application's own
configuration.  :meth:`oidc_guard.flask.OIDCGuard.init_app` registers the
group on ``app.cli``.

``flask oidc-guard check``
    the start-up check (:meth:`oidc_guard.TokenValidator.check`) of the
    application's validator: discovery and the JWKS are fetched now.  Exit
    0 usable; 1 the configuration is wrong (``ConfigurationError``); 3 the
    provider is unusable (``ProviderError``).
``flask oidc-guard validate TOKEN [--scope S]...``
    validate a token (``-``: standard input) exactly as the application
    would; the output and exit codes of ``oidc-guard validate``.

Flask (hence click) is imported only here and in :mod:`oidc_guard.flask`.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Optional, Tuple

import click
from flask import current_app
from flask.cli import AppGroup

from .cli._common import EXIT_INVALID, EXIT_OK, EXIT_PROVIDER, UsageError, read_token
from .cli._output import plural, terminal_safe
from .cli.validate import write_validation
from .claims import Claims
from .errors import ConfigurationError, OIDCGuardError, ProviderError

__all__ = ["oidc_guard_cli"]

oidc_guard_cli = AppGroup(
    "oidc-guard",
    help="Check the identity provider and tokens with this application's oidc_guard settings.",
)


def _validator() -> Any:
    state = current_app.extensions.get("oidc_guard")
    if state is None:
        raise click.UsageError(f"oidc_guard is not initialised on app {current_app.name!r}")
    return state.validator


@oidc_guard_cli.command("check")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of text")
def check_command(as_json: bool) -> None:
    """Run the start-up check with the app's configuration: fetch discovery
    and the JWKS now and say exactly what is wrong.

    \b
    example:
      flask --app contacts_api oidc-guard check
    exit: 0 usable; 1 configuration wrong; 3 provider unusable.
    """
    validator = _validator()
    issuers = getattr(validator, "issuers", None) or (getattr(validator, "issuer", None),)
    error: Optional[OIDCGuardError] = None
    try:
        validator.check()
    except (ConfigurationError, ProviderError) as exc:
        error = exc
    if error is None:
        code, verdict = EXIT_OK, "ok"
    elif isinstance(error, ConfigurationError):
        code, verdict = EXIT_INVALID, "configuration error"
    else:
        code, verdict = EXIT_PROVIDER, "provider unusable"
    if as_json:
        click.echo(json.dumps({"ok": error is None, "issuers": list(issuers), "result": verdict,
                               "error": error.description if error else None, "exit": code}, indent=2))
    elif error is None:
        keys = getattr(getattr(validator, "keys", None), "keys", None)
        detail = f", {plural(len(keys), 'usable key')}" if keys is not None else ""
        click.echo(f"ok: {terminal_safe(', '.join(map(str, issuers)))}: discovery and JWKS fetched{detail}")
    else:
        # The description quotes the provider's documents: terminal_safe (oidc_guard.cli._output).
        click.echo(f"{verdict.upper()}: {terminal_safe(error.description)}")
    sys.exit(code)


@oidc_guard_cli.command("validate")
@click.argument("token")
@click.option("--scope", "scopes", multiple=True, metavar="S", help="a scope the token must have; repeat")
@click.option("--id-token", "client_id", metavar="CLIENT_ID", help="TOKEN is an ID Token for this client")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of text")
def validate_command(token: str, scopes: Tuple[str, ...], client_id: Optional[str], as_json: bool) -> None:
    """Validate TOKEN (or - for standard input) exactly as this app would.

    \b
    example:
      flask --app contacts_api oidc-guard validate "$TOKEN" --scope contacts
    exit: 0 valid and every --scope present; 1 invalid or a scope missing;
    3 provider unusable.
    """
    try:
        text = read_token(token, sys.stdin)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    validator = _validator()
    claims: Optional[Claims] = None
    error: Optional[OIDCGuardError] = None
    try:
        if client_id:
            claims = validator.validate_id_token(text, client_id=client_id)
        else:
            claims = validator.validate_access_token(text)
    except OIDCGuardError as exc:
        error = exc
    introspects = bool(client_id) or getattr(validator, "validation_mode", None) != "local"
    sys.exit(write_validation(sys.stdout, as_json=as_json, token=text, claims=claims, error=error, wanted=scopes,
                              introspects=introspects))
