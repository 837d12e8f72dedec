"""The FastAPI application the benchmark's ``asgi`` section loads (in
process, and under uvicorn): the same JSON route twice,

* ``GET /open``: no oidc_guard at all (the baseline);
* ``GET /hello``: ``Security(guard, scopes=["contacts"])`` with an
  :class:`oidc_guard.fastapi.OIDCGuard`;
* ``GET /floor``: a security dependency that checks nothing: what FastAPI's
  dependency system itself costs any security dependency.

Under uvicorn the issuer and audience come from ``BENCH_ISSUER`` and
``BENCH_AUDIENCE``, and ``BENCH_JWKS_COOLDOWN`` sets the validator's
unknown-kid cooldown::

    BENCH_ISSUER=http://127.0.0.1:PORT uvicorn --factory --app-dir bench asgiapp:create_app
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from fastapi import FastAPI, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

HELLO = {"hello": "world"}


class _NoOp(SecurityBase):
    """A security dependency that checks nothing (the floor of the table)."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel()
        self.scheme_name = "noop"

    async def __call__(self, connection: HTTPConnection, security_scopes: SecurityScopes) -> None:
        return None


def create_app(issuer: Optional[str] = None, audience: Optional[str] = None, **validator_options: Any) -> FastAPI:
    from oidc_guard import TokenValidator
    from oidc_guard.fastapi import OIDCGuard

    issuer = issuer or os.environ["BENCH_ISSUER"]
    audience = audience or os.environ.get("BENCH_AUDIENCE", "contacts")
    if "BENCH_JWKS_COOLDOWN" in os.environ:
        validator_options.setdefault("jwks_cooldown", float(os.environ["BENCH_JWKS_COOLDOWN"]))
    guard = OIDCGuard(TokenValidator(issuer, audience=audience, **validator_options), realm="bench")
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/open")
    async def open_route() -> Dict[str, str]:
        return HELLO

    @app.get("/hello")
    async def hello(claims: Any = Security(guard, scopes=["contacts"])) -> Dict[str, str]:
        return HELLO

    # FastAPI's own cost of a security dependency: one that does nothing.
    floor = _NoOp()

    @app.get("/floor")
    async def floor_route(claims: Any = Security(floor, scopes=["contacts"])) -> Dict[str, str]:
        return HELLO

    return app
