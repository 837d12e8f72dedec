"""The hello-world Flask applications the benchmark loads (also under gunicorn).

Two applications with the same JSON route ``GET /hello``:

* ``create_app("open")``: plain Flask, no oidc_guard at all (the baseline);
* ``create_app("protected")``: the same route behind ``OIDCGuard`` and
  ``@require_scope("contacts")``.

The issuer and audience come from the arguments or, for gunicorn, from the
environment variables ``BENCH_ISSUER`` and ``BENCH_AUDIENCE``::

    BENCH_ISSUER=http://127.0.0.1:PORT BENCH_AUDIENCE=contacts \
        gunicorn --pythonpath bench 'webapp:create_app("protected")'
"""

from __future__ import annotations

import os
from typing import Optional

from flask import Flask

# The JSON body both routes answer.
HELLO = {"hello": "world"}


def create_app(kind: str = "open", issuer: Optional[str] = None, audience: Optional[str] = None) -> Flask:
    if kind not in ("open", "protected"):
        raise ValueError("kind must be 'open' or 'protected'")
    app = Flask(f"bench_{kind}")

    if kind == "open":
        @app.get("/hello")
        def hello():
            return HELLO

        return app

    # Imported only here so the "open" app never touches oidc_guard.
    from oidc_guard.flask import OIDCGuard, require_scope

    issuer = issuer or os.environ["BENCH_ISSUER"]
    audience = audience or os.environ.get("BENCH_AUDIENCE", "contacts")
    extra = {}
    if os.environ.get("BENCH_INTROSPECTION_CLIENT_ID"):
        # Reference tokens (bench section "introspection"): introspect at the
        # issuer, optionally sharing results through Redis.
        extra["introspection_client_id"] = os.environ["BENCH_INTROSPECTION_CLIENT_ID"]
        extra["introspection_client_secret"] = os.environ["BENCH_INTROSPECTION_CLIENT_SECRET"]
        if os.environ.get("BENCH_SHARED_CACHE"):
            extra["shared_cache"] = os.environ["BENCH_SHARED_CACHE"]
    OIDCGuard(app, issuer=issuer, audience=audience, realm="bench", **extra)
    scope = os.environ.get("BENCH_SCOPE", "contacts")

    @app.get("/hello")
    @require_scope(scope)
    def hello_protected():
        return HELLO

    return app
