"""An MCP server over the contacts of the example API, protected by
``oidc_guard.mcp.TokenVerifier`` (see ``server.py``).

Run it with the development provider (loopback only)::

    python -m examples.mcp_contacts --dev-provider

or against a provider of your own with ``MCP_CONTACTS_ISSUER`` set.
"""

from .server import create_app, create_server

__all__ = ["create_app", "create_server"]
