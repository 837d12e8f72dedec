"""``manage.py oidc_guard_check [--json]``: the start-up check
(:meth:`oidc_guard.TokenValidator.check`) with the project's settings, as
``flask oidc-guard check``: discovery and the JWKS are fetched now.  Exit 0
usable; 1 the configuration is wrong; 3 the provider is unusable."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

from django.core.management.base import BaseCommand

from ....cli._common import EXIT_INVALID, EXIT_OK, EXIT_PROVIDER
from ....cli._output import plural, terminal_safe
from ....errors import ConfigurationError, OIDCGuardError, ProviderError
from ... import _state


class Command(BaseCommand):  # type: ignore[misc]
    help = ("Run oidc_guard's start-up check with this project's settings: fetch discovery and the JWKS now "
            "and say exactly what is wrong (exit 0 usable, 1 configuration wrong, 3 provider unusable).")
    requires_system_checks: Any = []  # the check itself reports the settings' problems

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        error: Optional[OIDCGuardError] = None
        issuers: Any = ()
        try:
            _state.reset()
            validator = _state.current().validator
            issuers = getattr(validator, "issuers", None) or (getattr(validator, "issuer", None),)
            validator.check()  # type: ignore[attr-defined]
        except (ConfigurationError, ProviderError) as exc:
            error = exc
        if error is None:
            code, verdict = EXIT_OK, "ok"
        elif isinstance(error, ConfigurationError):
            code, verdict = EXIT_INVALID, "configuration error"
        else:
            code, verdict = EXIT_PROVIDER, "provider unusable"
        if options.get("as_json"):
            self.stdout.write(json.dumps({"ok": error is None, "issuers": list(issuers), "result": verdict,
                                          "error": error.description if error else None, "exit": code}, indent=2))
        elif error is None:
            keys = getattr(getattr(validator, "keys", None), "keys", None)
            detail = f", {plural(len(keys), 'usable key')}" if keys is not None else ""
            self.stdout.write(f"ok: {terminal_safe(', '.join(map(str, issuers)))}: discovery and JWKS fetched{detail}")
        else:
            # The description quotes the provider's documents: terminal_safe.
            self.stdout.write(f"{verdict.upper()}: {terminal_safe(error.description)}")
        self.stdout.flush()
        sys.exit(code)
