"""The small protected WSGI application the soak test runs under gunicorn.

Configured by environment variables (set by test_soak.py):
``SOAK_ISSUER`` (the LocalIssuer's URL), ``SOAK_AUDIENCE``,
``SOAK_JWKS_COOLDOWN`` (seconds).

Routes: ``/contacts`` needs scope ``contacts``; ``/public`` needs nothing;
``/_pid`` tells the test which process to sample for memory.
"""

import json
import os

from oidc_guard import BearerMiddleware, TokenValidator
from oidc_guard.wsgi import require_scope


def _json(start_response, status, obj):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@require_scope("contacts")
def contacts(environ, start_response):
    return _json(start_response, "200 OK", {"owner": environ["oidc_guard.claims"].subject})


def public(environ, start_response):
    return _json(start_response, "200 OK", {"anonymous": environ["oidc_guard.claims"] is None})


def routes(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/contacts":
        return contacts(environ, start_response)
    if path == "/public":
        return public(environ, start_response)
    if path == "/_pid":
        return _json(start_response, "200 OK", {"pid": os.getpid()})
    return _json(start_response, "404 Not Found", {"error": "not_found"})


validator = TokenValidator(
    os.environ["SOAK_ISSUER"],
    audience=os.environ.get("SOAK_AUDIENCE", "api://contacts"),
    jwks_cooldown=float(os.environ.get("SOAK_JWKS_COOLDOWN", "5")),
    http_timeout=2,
)
app = BearerMiddleware(routes, validator, realm="soak")
