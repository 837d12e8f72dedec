"""A DPoP-protected Flask app for test_dpop_replay.py, run by gunicorn with
several worker processes that share one Redis (the replay store).

Environment: ``DPOP_ISSUER``, ``DPOP_REDIS`` (redis://...), ``DPOP_PUBLIC_URL``.
Every response names the worker process in ``X-Worker-Pid``.
"""

import os

from flask import Flask

from oidc_guard.flask import OIDCGuard, current_claims, require_token

app = Flask(__name__)
OIDCGuard(
    app,
    issuer=os.environ["DPOP_ISSUER"],
    audience="api://contacts",
    shared_cache=os.environ["DPOP_REDIS"],
    public_url=os.environ["DPOP_PUBLIC_URL"],
    http_timeout=2,
    realm="dpop",
)


@app.after_request
def name_the_worker(response):
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.get("/jobs")
@require_token()
def jobs():
    return {"sub": current_claims.subject, "binding": current_claims.binding}
