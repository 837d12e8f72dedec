"""``python -m examples.mcp_contacts [--dev-provider]``: serve the contacts
MCP server with uvicorn at ``MCP_CONTACTS_RESOURCE``
(default http://127.0.0.1:5005/mcp).

``--dev-provider`` also starts the DEVELOPMENT provider
(:class:`oidc_guard.testing.LocalIssuer`, never for production) at
``MCP_CONTACTS_ISSUER`` (default http://127.0.0.1:5000), so the server runs
on its embedded defaults alone.  A token for it::

    python -m oidc_guard.testing token --issuer http://127.0.0.1:5000 \\
        --user alice --password alice --scope contacts \\
        --resource http://127.0.0.1:5005/mcp
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator, Optional, Sequence
from urllib.parse import urlsplit

from .server import settings_from


@contextlib.contextmanager
def _dev_provider(issuer: str) -> Iterator[None]:
    from oidc_guard.testing import LocalIssuer

    parts = urlsplit(issuer)
    if parts.scheme != "http" or parts.path or not parts.port:
        raise SystemExit(f"--dev-provider needs an issuer like http://127.0.0.1:5000, not {issuer!r}")
    with LocalIssuer(host=parts.hostname or "127.0.0.1", port=parts.port):
        print(f"development provider (never for production): {issuer}", file=sys.stderr)
        yield


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.mcp_contacts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev-provider", action="store_true",
                        help="also start the development provider at the issuer URL (loopback only)")
    args = parser.parse_args(argv)
    import uvicorn

    from .server import create_app

    settings = settings_from()
    resource = urlsplit(settings["RESOURCE"])
    provider = _dev_provider(settings["ISSUER"]) if args.dev_provider else contextlib.nullcontext()
    with provider:
        print(f"MCP server: {settings['RESOURCE']} (issuer {settings['ISSUER']})", file=sys.stderr)
        uvicorn.run(create_app(settings), host=resource.hostname or "127.0.0.1", port=resource.port or 80,
                    log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
