"""WSGI applications several test modules put behind the middleware."""

import json

from oidc_guard.wsgi import require_token


@require_token(bound=True)
def bound_app(environ, start_response):
    """A route that demands a sender-constrained token; answers the
    token's client_id and how it was bound (Claims.binding)."""
    claims = environ["oidc_guard.claims"]
    body = json.dumps({"client_id": claims.client_id, "binding": claims.binding}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
