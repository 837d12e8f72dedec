"""The development provider's users and clients: the demo defaults, the
shape of a user and of a client record, and the well-known client ids the
API, the demo and ``python -m oidc_guard.testing token`` use.

**Development only, not for production**: the users' passwords and the
clients' secrets are hard-coded.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Union

__all__ = [
    "INTROSPECTION_CLIENT_ID", "INTROSPECTION_CLIENT_SECRET", "DEV_CLI_CLIENT_ID", "DEV_CLI_REDIRECT_URI",
    "DEFAULT_SPA_REDIRECT_URIS", "DEFAULT_USERS", "user_table", "client_record", "client_table", "user_by_subject",
]

#: The default clients' credentials for ``/introspect`` (development only).
INTROSPECTION_CLIENT_ID = "contacts-api"
INTROSPECTION_CLIENT_SECRET = "contacts-api-secret"

#: The development command line's client (``python -m oidc_guard.testing
#: token``): public, authorization code with PKCE only.  Its redirect URI is
#: a loopback one (RFC 8252 section 7.3) that nothing needs to listen on: the
#: command reads the code from the provider's redirect response itself.
DEV_CLI_CLIENT_ID = "dev-cli"
DEV_CLI_REDIRECT_URI = "http://127.0.0.1/oidc_guard-dev-cli/callback"

DEFAULT_SPA_REDIRECT_URIS = ("http://127.0.0.1:8080/", "http://localhost:8080/")
DEFAULT_USERS = {
    "alice": {"password": "alice", "sub": "alice", "name": "Alice Example", "email": "alice@example.com"},
    "bob": {"password": "bob", "sub": "bob", "name": "Bob Example", "email": "bob@example.com"},
}


def user_table(users: Optional[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """``{username: {"password": ..., "sub": ..., other claims}}`` from the
    ``users`` argument of LocalIssuer (None: :data:`DEFAULT_USERS`); an
    entry may be just the password, ``sub`` defaults to the username."""
    table: Dict[str, Dict[str, Any]] = {}
    for name, entry in (users if users is not None else DEFAULT_USERS).items():
        if isinstance(entry, str):
            entry = {"password": entry, "sub": name}
        table[name] = dict(entry)
        table[name].setdefault("sub", name)
    return table


def user_by_subject(users: Mapping[str, Mapping[str, Any]], subject: str) -> Optional[Dict[str, Any]]:
    """A copy of the user whose ``sub`` is ``subject``, or None."""
    return next((dict(user) for user in users.values() if user["sub"] == subject), None)


def client_record(*, redirect_uris: Iterable[str] = (), scopes: Union[str, Iterable[str]] = "",
                  grant_types: Iterable[str] = ("implicit",), secret: Optional[str] = None,
                  access_token_format: str = "jwt") -> Dict[str, Any]:
    """A client as the provider keeps it (see
    :meth:`LocalIssuer.register_client <oidc_guard.testing.LocalIssuer.register_client>`).
    Redirect URIs must not contain a fragment (RFC 6749 3.1.2)."""
    uris = list(redirect_uris)
    for uri in uris:
        if "#" in uri:
            raise ValueError(f"redirect URI must not contain a fragment: {uri!r}")
    if access_token_format not in ("jwt", "reference"):
        raise ValueError("access_token_format must be 'jwt' or 'reference'")
    return {
        "redirect_uris": uris,
        "scopes": scopes.split() if isinstance(scopes, str) else list(scopes),
        "grant_types": list(grant_types),
        "secret": secret,
        "access_token_format": access_token_format,
    }


def client_table(clients: Optional[Mapping[str, Mapping[str, Any]]],
                 spa_redirect_uris: Sequence[str] = DEFAULT_SPA_REDIRECT_URIS) -> Dict[str, Dict[str, Any]]:
    """The clients of the ``clients`` argument of LocalIssuer, or (None) the
    demo's: ``spa``, ``wte-worker``, ``wte-worker-ref``, the API's
    introspection client and ``dev-cli``."""
    if clients is not None:
        return {
            client_id: client_record(
                redirect_uris=entry.get("redirect_uris", ()),
                scopes=entry.get("scopes", ""),
                grant_types=entry.get("grant_types", ("implicit",)),
                secret=entry.get("secret"),
                access_token_format=entry.get("access_token_format", "jwt"),
            )
            for client_id, entry in clients.items()
        }
    return {
        "spa": client_record(
            redirect_uris=spa_redirect_uris,
            scopes="openid profile contacts wte coordinate",
            grant_types=("implicit", "authorization_code"),
        ),
        "wte-worker": client_record(secret="wte-secret", scopes="wte", grant_types=("client_credentials",)),
        # The same worker with reference (opaque) access tokens.
        "wte-worker-ref": client_record(
            secret="wte-secret", scopes="wte", grant_types=("client_credentials",), access_token_format="reference",
        ),
        # The API's own credentials for /introspect (RFC 7662 section 2.1).
        INTROSPECTION_CLIENT_ID: client_record(secret=INTROSPECTION_CLIENT_SECRET, grant_types=()),
        # python -m oidc_guard.testing token: a user's token for curl or the CLI.
        DEV_CLI_CLIENT_ID: client_record(
            redirect_uris=(DEV_CLI_REDIRECT_URI,),
            scopes="openid profile contacts wte coordinate", grant_types=("authorization_code",),
        ),
    }
