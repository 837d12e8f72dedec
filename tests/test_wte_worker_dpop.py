"""examples/wte_worker.py --dpop against a real loopback WSGI server whose
middleware requires server nonces: the worker's first proof is answered
use_dpop_nonce + DPoP-Nonce, it retries once with the nonce and is accepted."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from oidc_guard import BearerMiddleware, TokenValidator
from oidc_guard.testing import LocalIssuer

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("wte_worker_dpop", ROOT / "examples" / "wte_worker.py")
wte_worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wte_worker)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_worker_retries_once_with_the_server_nonce():
    seen = []

    def app(environ, start_response):
        claims = environ["oidc_guard.claims"]
        body = json.dumps({"binding": getattr(claims, "binding", None)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    with LocalIssuer(algs=("RS256",)) as iss:
        mw = BearerMiddleware(app, TokenValidator(iss.issuer, audience=iss.audience), dpop="required",
                              dpop_nonce=True, dpop_nonce_secret="s" * 32, required=True)

        def counting(environ, start_response):
            seen.append(environ.get("HTTP_DPOP") is not None)
            return mw(environ, start_response)

        server = make_server("127.0.0.1", 0, counting, handler_class=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            signer = wte_worker.DPoPSigner()
            answer = wte_worker.client_credentials_token(iss.token_endpoint, "wte-worker", "wte-secret", dpop=signer)
            assert answer["token_type"] == "DPoP"
            url = f"http://127.0.0.1:{server.server_port}/jobs"
            status, _headers, body = wte_worker.api_request("GET", url, answer["access_token"], dpop=signer)
            assert status == 200 and json.loads(body) == {"binding": "dpop"}
            assert seen == [True, True]  # one use_dpop_nonce answer, one retry
            # without the key, the token is useless
            status, _h, _b = wte_worker.api_request("GET", url, answer["access_token"])
            assert status == 401
        finally:
            server.shutdown()
            server.server_close()
