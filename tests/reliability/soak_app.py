"""The small protected Flask application the soak test runs under gunicorn.

Configured by environment variables (set by test_soak.py):
``SOAK_ISSUER`` (the LocalIssuer's URL), ``SOAK_AUDIENCE``,
``SOAK_JWKS_COOLDOWN`` (seconds).

Routes: ``/contacts`` needs scope ``contacts`` and answers with the token's
``sub`` (read through ``current_claims``, so a claims mix-up between
gunicorn threads would show as a wrong owner); ``/public`` needs nothing;
``/_pid`` tells the test which process to sample for memory.
"""

import os

from flask import Flask

from oidc_guard.flask import OIDCGuard, current_claims, get_claims, require_scope

app = Flask(__name__)
guard = OIDCGuard(
    app,
    issuer=os.environ["SOAK_ISSUER"],
    audience=os.environ.get("SOAK_AUDIENCE", "api://contacts"),
    jwks_cooldown=float(os.environ.get("SOAK_JWKS_COOLDOWN", "5")),
    http_timeout=2,
    realm="soak",
)


@app.get("/contacts")
@require_scope("contacts")
def contacts():
    return {"owner": current_claims.subject}


@app.get("/public")
def public():
    return {"anonymous": get_claims() is None}


@app.get("/_pid")
def pid():
    return {"pid": os.getpid()}
