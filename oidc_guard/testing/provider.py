"""The development provider's HTTP endpoints and their routing table
:data:`ENDPOINTS`: discovery and JWKS (:mod:`.provider_documents`), the
login page, ``/authorize`` and ``/token`` (:mod:`.provider_auth`),
``/userinfo``, ``/introspect`` (RFC 7662) and ``/revoke`` (RFC 7009)
(:mod:`.provider_tokens`).

**Development only, not for production**: hard-coded users, no sessions,
no CSRF protection. Each path is a row of :data:`ENDPOINTS` that maps HTTP
methods to small views ``(handler, request) -> None``; the state (keys,
users, clients, codes, faults) lives on the issuer, which the views reach
through the :class:`~oidc_guard.testing.endpoint.DevProvider` protocol.
"""

from __future__ import annotations

from typing import Dict

from .endpoint import Endpoint, Request, RequestHandler, View
from .provider_auth import DEV_CLIENT_CERT_HEADER, get_authorize, post_authorize, post_token
from .provider_documents import get_discovery, get_jwks
from .provider_tokens import get_userinfo, post_introspect, post_revoke

__all__ = ["ENDPOINTS", "Endpoint", "Request", "View", "DevProviderHandler", "DEV_CLIENT_CERT_HEADER"]


#: Path (relative to the issuer URL) -> endpoint. To add an endpoint, write
#: a view ``(handler: RequestHandler, request: Request) -> None`` and add a row.
ENDPOINTS: Dict[str, Endpoint] = {
    # OpenID Connect Discovery 1.0 section 4
    "/.well-known/openid-configuration": Endpoint({"GET": get_discovery}, counter="discovery",
                                                  refuse_other_methods=True, cors=True),
    # RFC 7517 section 5 (jwks_uri)
    "/jwks": Endpoint({"GET": get_jwks}, counter="jwks", refuse_other_methods=True, cors=True),
    # RFC 6749 3.1, OIDC Core 3.1.2 / 3.2.2 (login page on GET, credentials on POST)
    "/authorize": Endpoint({"GET": get_authorize, "POST": post_authorize}, counter="authorize"),
    # RFC 6749 3.2
    "/token": Endpoint({"POST": post_token}, counter="token", cors=True),
    # OIDC Core 5.3 (GET and POST, 5.3.1)
    "/userinfo": Endpoint({"GET": get_userinfo, "POST": get_userinfo}, counter="userinfo"),
    # RFC 7662 section 2 (POST only)
    "/introspect": Endpoint({"POST": post_introspect}, counter="introspection", refuse_other_methods=True),
    # RFC 7009 section 2 (POST only)
    "/revoke": Endpoint({"POST": post_revoke}, counter="revocation", refuse_other_methods=True),
}


class DevProviderHandler(RequestHandler):
    """The request handler of :class:`~oidc_guard.testing.LocalIssuer`'s server."""

    endpoints = ENDPOINTS
