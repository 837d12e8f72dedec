"""The contacts MCP server: the MCP Python SDK's ``MCPServer`` (streamable
HTTP) with two tools over the contacts store of ``examples/contacts_api``,
its tokens checked by :class:`oidc_guard.mcp.TokenVerifier`.

========================  ==============  ============================================
tool                      needs           what it does
========================  ==============  ============================================
``list_contacts()``       scope contacts  the caller's own contacts, nobody else's
``add_contact(email)``    scope contacts  store one address for the caller
========================  ==============  ============================================

Both need a user's token (``sub``), as the API's routes do: the store keeps
contacts per user (``iss`` + ``sub``).  The scope is the server's
(``AuthSettings.required_scopes``): the SDK answers a token without it 403
``insufficient_scope`` before any tool runs.

What the SDK does with ``auth=`` (nothing here re-does it): the 401
challenge with ``resource_metadata`` (RFC 9728 section 5.1), the protected
resource metadata at ``/.well-known/oauth-protected-resource/mcp``
(section 3.1) naming the issuer as the authorization server, and the
refusal of a token whose ``AccessToken.resource`` is not this server
(``validate_token_resource``).  What oidc_guard does: validate the token
(signature against the issuer's JWKS, ``iss``, ``aud`` = this server's URL,
times, type) off the event loop, and answer 503 instead of 401 while the
provider is down (:class:`~oidc_guard.mcp.ProviderOutageMiddleware`).

Configuration: ``create_app(config)`` takes a mapping; anything not in it
comes from the environment, then from defaults that match the development
provider (``python -m examples.mcp_contacts --dev-provider``):

======================  ===========================  ==========================================
config key              environment variable         default
======================  ===========================  ==========================================
ISSUER                  MCP_CONTACTS_ISSUER          http://127.0.0.1:5000
RESOURCE                MCP_CONTACTS_RESOURCE        http://127.0.0.1:5005/mcp
CONTACTS_DB_PATH        CONTACTS_API_DB              the contacts API's database
======================  ===========================  ==========================================

``RESOURCE`` is this server's URL as clients reach it: the MCP endpoint
is served at its path, the audience tokens must carry is exactly this
string (RFC 8707), and clients ask the provider for it (``resource=``).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from typing_extensions import TypedDict
from urllib.parse import urlsplit

import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from oidc_guard import Claims, TokenValidator
from oidc_guard.mcp import ProviderOutageMiddleware, TokenVerifier

from ..contacts_api.app import normalise_email
from ..contacts_api.db import ContactLimitExceeded, Store

__all__ = ["create_server", "create_app", "settings_from", "SCOPE"]

HERE = os.path.dirname(os.path.abspath(__file__))
#: The scope every tool needs (the contacts API's scope for the same data).
SCOPE = "contacts"

_DEFAULTS = {
    "ISSUER": ("MCP_CONTACTS_ISSUER", "http://127.0.0.1:5000"),
    "RESOURCE": ("MCP_CONTACTS_RESOURCE", "http://127.0.0.1:5005/mcp"),
    "CONTACTS_DB_PATH": ("CONTACTS_API_DB", os.path.join(HERE, "..", "contacts_api", "instance",
                                                         "contacts.sqlite3")),
}


def settings_from(config: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The settings: ``config``, then the environment, then the defaults."""
    settings: Dict[str, Any] = {}
    for key, (variable, default) in _DEFAULTS.items():
        settings[key] = (config or {}).get(key) or os.environ.get(variable) or default
    for key, value in (config or {}).items():
        settings.setdefault(key, value)
    return settings


class Contact(TypedDict):
    email: str
    added_at: int


class ContactList(TypedDict):
    """What ``list_contacts`` answers (its output schema)."""

    sub: str
    count: int
    contacts: List[Contact]


class Added(TypedDict):
    """What ``add_contact`` answers: the stored form of the address and the
    counts of the contacts API's import."""

    sub: str
    email: str
    added: int
    duplicates: int
    total: int


def _caller() -> Tuple[str, str]:
    """``(iss, sub)`` of the user whose token this request carries."""
    access = get_access_token()
    if access is None or access.claims is None:  # the SDK runs no tool without one
        raise ToolError("no access token")
    claims = Claims(access.claims)
    if claims.is_client_token:
        raise ToolError("the contacts tools need a user's token (with sub), not a client's own")
    return claims.issuer or "", claims.subject or ""


def create_server(config: Optional[Mapping[str, Any]] = None, *, validator: Any = None) -> MCPServer:
    """The MCP server with its tools.  ``validator``: the token validator
    (default: a :class:`~oidc_guard.TokenValidator` for ``ISSUER`` whose
    audience is ``RESOURCE``)."""
    settings = settings_from(config)
    resource = settings["RESOURCE"]
    if validator is None:
        validator = TokenValidator(settings["ISSUER"], audience=resource)
    store = Store(settings["CONTACTS_DB_PATH"])
    server: MCPServer = MCPServer(
        "contacts",
        instructions="The caller's contacts (e-mail addresses): list them or add one.",
        token_verifier=TokenVerifier(validator, resource=resource),
        auth=AuthSettings(
            issuer_url=settings["ISSUER"],
            resource_server_url=resource,
            required_scopes=[SCOPE],
            # The verifier sets AccessToken.resource to this server only
            # for tokens whose aud names it; the SDK then checks it again.
            validate_token_resource=True,
        ),
    )

    @server.tool()
    async def list_contacts() -> ContactList:
        """The caller's own contacts, sorted by address."""
        iss, sub = _caller()
        rows: List[Dict[str, Any]] = await anyio.to_thread.run_sync(store.list_contacts, iss, sub)
        contacts = [Contact(email=row["email"], added_at=row["added_at"]) for row in rows]
        return ContactList(sub=sub, count=len(contacts), contacts=contacts)

    @server.tool()
    async def add_contact(email: str) -> Added:
        """Store one e-mail address for the caller (nothing is ever sent to it)."""
        iss, sub = _caller()
        try:  # the contacts API's rules: the error says what is wrong with the address
            clean = normalise_email(email)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        try:
            result = await anyio.to_thread.run_sync(store.import_contacts, iss, sub, [clean])
        except ContactLimitExceeded as exc:
            raise ToolError(str(exc)) from None
        return Added(sub=sub, email=clean, added=result.added, duplicates=result.duplicates, total=result.total)

    return server


def create_app(config: Optional[Mapping[str, Any]] = None, *, validator: Any = None) -> Any:
    """The ASGI app to serve (uvicorn): the MCP endpoint at ``RESOURCE``'s
    path, the protected resource metadata, and 503 for a provider outage."""
    settings = settings_from(config)
    parts = urlsplit(settings["RESOURCE"])
    server = create_server(settings, validator=validator)
    app = server.streamable_http_app(streamable_http_path=parts.path or "/", host=parts.hostname or "127.0.0.1")
    return ProviderOutageMiddleware(app)
