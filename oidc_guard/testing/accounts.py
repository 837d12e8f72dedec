"""The development provider's users and clients: the demo defaults, the
shape of a user and of a client record, and the well-known client ids the
API, the demo and ``python -m oidc_guard.testing token`` use.

**Development only, not for production**: the users' passwords and the
clients' secrets are hard-coded.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

__all__ = [
    "INTROSPECTION_CLIENT_ID", "INTROSPECTION_CLIENT_SECRET", "DEV_CLI_CLIENT_ID", "DEV_CLI_REDIRECT_URI",
    "DEFAULT_SPA_REDIRECT_URIS", "DEFAULT_USERS", "ACR_LOA1", "ACR_LOA2", "user_table", "client_record",
    "client_table", "user_by_subject", "resource_problem",
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

#: The development provider's Authentication Context Class References (the
#: ``acr`` claim, OIDC Core 2; requested with ``acr_values``, OIDC Core
#: 3.1.2.1): level 1 is a password sign-in, level 2 stands for a stronger one.
#: The provider asks for no second factor: a user "reaches" the levels
#: listed in its ``acrs`` (default: level 1 only).
ACR_LOA1 = "urn:oidc-guard:loa:1"
ACR_LOA2 = "urn:oidc-guard:loa:2"

DEFAULT_USERS = {
    # alice can step up to level 2; bob cannot.
    "alice": {"password": "alice", "sub": "alice", "name": "Alice Example", "email": "alice@example.com",
              "acrs": [ACR_LOA1, ACR_LOA2]},
    "bob": {"password": "bob", "sub": "bob", "name": "Bob Example", "email": "bob@example.com",
            "acrs": [ACR_LOA1]},
}


def user_table(users: Optional[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """``{username: {"password": ..., "sub": ..., "acrs": [...], other
    claims}}`` from the ``users`` argument of LocalIssuer (None:
    :data:`DEFAULT_USERS`); an entry may be just the password, ``sub``
    defaults to the username, ``acrs`` (the ``acr`` values the user can
    reach, the first being a plain sign-in's) to ``[ACR_LOA1]``."""
    table: Dict[str, Dict[str, Any]] = {}
    for name, entry in (users if users is not None else DEFAULT_USERS).items():
        if isinstance(entry, str):
            entry = {"password": entry, "sub": name}
        table[name] = dict(entry)
        table[name].setdefault("sub", name)
        acrs = table[name].get("acrs", [ACR_LOA1])
        if isinstance(acrs, str) or not acrs or not all(isinstance(a, str) and a for a in acrs):
            raise ValueError(f"user {name!r}: acrs must be a non-empty list of strings")
        table[name]["acrs"] = list(acrs)
    return table


def user_by_subject(users: Mapping[str, Mapping[str, Any]], subject: str) -> Optional[Dict[str, Any]]:
    """A copy of the user whose ``sub`` is ``subject``, or None."""
    return next((dict(user) for user in users.values() if user["sub"] == subject), None)


def client_record(*, redirect_uris: Iterable[str] = (), scopes: Union[str, Iterable[str]] = "",
                  grant_types: Iterable[str] = ("implicit",), secret: Optional[str] = None,
                  access_token_format: str = "jwt", resources: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """A client as the provider keeps it (see
    :meth:`LocalIssuer.register_client <oidc_guard.testing.LocalIssuer.register_client>`).
    Redirect URIs must not contain a fragment (RFC 6749 3.1.2).
    ``resources``: the RFC 8707 resources the client may ask for (None: any
    absolute URI)."""
    uris = list(redirect_uris)
    for uri in uris:
        if "#" in uri:
            raise ValueError(f"redirect URI must not contain a fragment: {uri!r}")
    if access_token_format not in ("jwt", "reference"):
        raise ValueError("access_token_format must be 'jwt' or 'reference'")
    allowed: Optional[List[str]] = None
    if resources is not None:
        if isinstance(resources, str):
            raise ValueError("resources must be a list of URIs, not one string")
        allowed = list(resources)
        for resource in allowed:
            problem = resource_problem(resource)
            if problem:
                raise ValueError(f"resource {resource!r}: {problem}")
    return {
        "redirect_uris": uris,
        "scopes": scopes.split() if isinstance(scopes, str) else list(scopes),
        "grant_types": list(grant_types),
        "secret": secret,
        "access_token_format": access_token_format,
        "resources": allowed,
    }


# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")


def resource_problem(value: str) -> Optional[str]:
    """Why ``value`` is not a valid RFC 8707 ``resource`` (None when it is).

    RFC 8707 section 2: an absolute URI (RFC 3986 section 4.3: a scheme and
    a hier-part) that MUST NOT include a fragment. A query is allowed (it
    SHOULD NOT be there, but the RFC names cases that need one). Spaces and
    control characters are refused: they cannot appear in a URI."""
    if not value:
        return "the resource is empty"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "the resource contains spaces or control characters"
    if "#" in value:
        return "the resource must not contain a fragment (RFC 8707 section 2)"
    scheme, sep, rest = value.partition(":")
    if not sep or not _SCHEME.match(scheme) or not rest:
        return "the resource must be an absolute URI (RFC 8707 section 2)"
    if rest.startswith("//") and not urllib.parse.urlsplit(value).netloc:
        return "the resource names no host"
    return None


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
                resources=entry.get("resources"),
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
