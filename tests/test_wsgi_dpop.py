"""BearerMiddleware with sender-constrained tokens: DPoP (RFC 9449) and
certificate-bound tokens (RFC 8705), through webtest against LocalIssuer."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
import webtest

from oidc_guard import BearerMiddleware, ConfigurationError, ProviderError, TokenValidator
from oidc_guard.testing import DPoPKey
from oidc_guard.cache import CacheUnavailable
from oidc_guard.testing import LocalIssuer
from oidc_guard.wsgi import require_scope, require_token

from certs import make_cert, pem, x5t
from challenges import challenges as parse_challenges

REALM = "contacts-api"
AUDIENCE = "api://contacts"
HOST = "api.test"
URL = f"http://{HOST}/token"


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _whoami(environ, start_response):
    claims = environ["oidc_guard.claims"]
    error = environ["oidc_guard.error"]
    return _json(start_response, {
        "sub": claims.subject if claims is not None else None,
        "binding": claims.binding if claims is not None else None,
        "scheme": environ.get("oidc_guard.scheme"),
        "error": getattr(error, "error", None),
    })


ROUTES = {
    "/public": _whoami,
    "/token": require_token()(_whoami),
    "/bound": require_token(bound=True)(_whoami),
    "/bound-contacts": require_scope("contacts", bound=True)(_whoami),
    "/a/b": require_token()(_whoami),
}


def app(environ, start_response):
    handler = ROUTES.get(environ["PATH_INFO"])
    if handler is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    return handler(environ, start_response)


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",)) as iss:
        yield iss


@pytest.fixture(scope="module")
def validator(issuer):
    return TokenValidator(issuer=issuer.issuer, audience=AUDIENCE)


@pytest.fixture(scope="module")
def key():
    return DPoPKey("ES256")


def client(validator, **kwargs):
    kwargs.setdefault("realm", REALM)
    return webtest.TestApp(BearerMiddleware(app, validator, **kwargs), extra_environ={"HTTP_HOST": HOST})


@pytest.fixture
def api(validator):
    return client(validator)


def dpop_headers(token, proof):
    return {"Authorization": "DPoP " + token, "DPoP": proof}


def challenges(response):
    """{scheme: challenge} in the order sent, from the one WWW-Authenticate field."""
    fields = response.headers.getall("WWW-Authenticate")
    assert len(fields) == 1, fields
    return parse_challenges(fields)


def bound_token(issuer, key, **kw):
    return issuer.mint(claims={"cnf": key.cnf}, **kw)


# --- DPoP: accepted ------------------------------------------------------------------


def test_dpop_token_with_fresh_proof(api, issuer, key):
    token = bound_token(issuer, key)
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)))
    assert r.json == {"sub": "alice", "binding": "dpop", "scheme": "dpop", "error": None}
    # a second request needs a second proof; the token is reused (cached)
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)))
    assert r.json["binding"] == "dpop"


def test_dpop_scheme_case_insensitive_and_scope_decorators(api, issuer, key):
    token = bound_token(issuer, key, scope="contacts")
    r = api.get("/bound-contacts", headers={"Authorization": "dpop " + token,
                                            "DPoP": key.proof("GET", f"http://{HOST}/bound-contacts", token)})
    assert r.json["binding"] == "dpop"


def test_bearer_token_unchanged(api, issuer):
    r = api.get("/token", headers={"Authorization": "Bearer " + issuer.mint()})
    assert r.json == {"sub": "alice", "binding": None, "scheme": "bearer", "error": None}


# --- DPoP: refused ---------------------------------------------------------------------


def test_replayed_proof_refused_with_dpop_challenge(api, issuer, key):
    token = bound_token(issuer, key)
    proof = key.proof("GET", URL, token)
    api.get("/token", headers=dpop_headers(token, proof))
    r = api.get("/token", headers=dpop_headers(token, proof), status=401)
    assert r.json["error"] == "invalid_dpop_proof" and "already used" in r.json["error_description"]
    ch = challenges(r)
    assert list(ch) == ["DPoP", "Bearer"]  # the scheme the request used first
    assert ch["DPoP"].startswith(f'DPoP realm="{REALM}", error="invalid_dpop_proof", error_description="')
    assert 'algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"' in ch["DPoP"]
    assert ch["Bearer"] == f'Bearer realm="{REALM}"'  # bare: the request did not use Bearer


@pytest.mark.parametrize("case", ["missing", "two", "other url", "other method", "no ath", "other key", "garbage"])
def test_bad_proofs_refused(api, issuer, key, case):
    token = bound_token(issuer, key)
    other = DPoPKey("ES256")
    headers = {
        "missing": {"Authorization": "DPoP " + token},
        "two": dpop_headers(token, key.proof("GET", URL, token) + ", " + key.proof("GET", URL, token)),
        "other url": dpop_headers(token, key.proof("GET", f"http://{HOST}/other", token)),
        "other method": dpop_headers(token, key.proof("POST", URL, token)),
        "no ath": dpop_headers(token, key.proof("GET", URL)),
        "other key": dpop_headers(token, other.proof("GET", URL, token)),
        "garbage": dpop_headers(token, "not-a-proof"),
    }[case]
    r = api.get("/token", headers=headers, status=401)
    assert r.json["error"] == "invalid_dpop_proof"
    assert 'error="invalid_dpop_proof"' in challenges(r)["DPoP"]
    # public routes see the refusal too, anonymous
    r = api.get("/public", headers=headers)
    assert r.json["error"] == "invalid_dpop_proof" and r.json["sub"] is None


def test_bound_token_as_bearer_refused(api, issuer, key):
    token = bound_token(issuer, key)
    r = api.get("/token", headers={"Authorization": "Bearer " + token}, status=401)
    assert r.json["error"] == "invalid_token" and "DPoP-bound" in r.json["error_description"]
    assert list(challenges(r)) == ["Bearer", "DPoP"]  # the scheme the request used first
    assert 'error="invalid_token"' in challenges(r)["Bearer"]
    assert "error=" not in challenges(r)["DPoP"]


def test_unbound_token_with_dpop_scheme_refused(api, issuer, key):
    token = issuer.mint()
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)), status=401)
    assert r.json["error"] == "invalid_token" and "not DPoP-bound" in r.json["error_description"]


def test_invalid_token_with_dpop_scheme_is_invalid_token(api, issuer, key):
    token = bound_token(issuer, key, expires_in=-600)
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)), status=401)
    assert r.json["error"] == "invalid_token" and "expired" in r.json["error_description"]
    assert list(challenges(r)) == ["DPoP", "Bearer"]
    assert 'error="invalid_token"' in challenges(r)["DPoP"]


def test_no_token_gets_both_bare_challenges(api):
    r = api.get("/token", status=401)
    ch = challenges(r)
    assert list(ch) == ["Bearer", "DPoP"]  # no token: Bearer first
    assert ch["Bearer"] == f'Bearer realm="{REALM}"'
    assert ch["DPoP"].startswith(f'DPoP realm="{REALM}", algs="') and "error=" not in ch["DPoP"]


def test_insufficient_scope_answers_the_scheme_used(api, issuer, key):
    token = bound_token(issuer, key, scope="wte")
    r = api.get("/bound-contacts", headers=dpop_headers(token, key.proof("GET", f"http://{HOST}/bound-contacts", token)),
                status=403)
    assert list(challenges(r)) == ["DPoP"] and 'scope="contacts"' in challenges(r)["DPoP"]


def test_malformed_dpop_header_is_400(api, issuer):
    r = api.get("/public", headers={"Authorization": "DPoP a b"}, status=400)
    assert r.json["error"] == "invalid_request"
    r = api.get("/public", headers={"Authorization": "Basic x, DPoP abc"}, status=400)
    assert "more than one credential" in r.json["error_description"]


# --- modes -------------------------------------------------------------------------------


def test_required_mode_refuses_bearer(validator, issuer, key):
    api = client(validator, dpop="required")
    r = api.get("/token", headers={"Authorization": "Bearer " + issuer.mint()}, status=401)
    assert r.json["error"] == "invalid_token" and "only DPoP" in r.json["error_description"]
    assert list(challenges(r)) == ["DPoP"] and 'error="invalid_token"' in challenges(r)["DPoP"]
    token = bound_token(issuer, key)
    assert api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token))).json["binding"] == "dpop"
    assert list(challenges(api.get("/token", status=401))) == ["DPoP"]


def test_disabled_mode_dpop_scheme_is_not_ours(validator, issuer, key):
    api = client(validator, dpop="disabled")
    token = bound_token(issuer, key)
    r = api.get("/public", headers=dpop_headers(token, key.proof("GET", URL, token)))
    assert r.json == {"sub": None, "binding": None, "scheme": None, "error": None}
    r = api.get("/token", status=401)
    assert r.headers.getall("WWW-Authenticate") == [f'Bearer realm="{REALM}"']
    # a DPoP-bound token is still refused as Bearer
    r = api.get("/token", headers={"Authorization": "Bearer " + token}, status=401)
    assert "DPoP-bound" in r.json["error_description"]


def test_bad_settings_refused(validator):
    for kwargs in ({"dpop": "on"}, {"public_url": "ftp://x"}, {"public_url": "https://x/?q=1"},
                   {"client_cert_header": "X Cert"}, {"dpop_algorithms": ["HS256"]}, {"dpop_max_age": 0},
                   {"dpop": "disabled", "dpop_nonce": True}, {"dpop_nonce": True, "dpop_nonce_secret": "short"}):
        with pytest.raises(ConfigurationError):
            BearerMiddleware(app, validator, **kwargs)


def test_bound_routes_refuse_bearer_tokens(api, issuer, key):
    r = api.get("/bound", headers={"Authorization": "Bearer " + issuer.mint()}, status=401)
    assert r.json["error"] == "invalid_token" and "sender-constrained" in r.json["error_description"]
    token = bound_token(issuer, key)
    r = api.get("/bound", headers=dpop_headers(token, key.proof("GET", f"http://{HOST}/bound", token)))
    assert r.json["binding"] == "dpop"


# --- htu: the request URL -------------------------------------------------------------------


def test_htu_from_environ_variants(validator, issuer, key):
    mw = BearerMiddleware(app, validator)
    env = {"wsgi.url_scheme": "https", "HTTP_HOST": "API.example.com:443", "SCRIPT_NAME": "/app", "PATH_INFO": "/a b"}
    assert mw.request_url(env) == "https://API.example.com:443/app/a%20b"
    env = {"wsgi.url_scheme": "http", "SERVER_NAME": "srv", "SERVER_PORT": "8080", "PATH_INFO": "/x"}
    assert mw.request_url(env) == "http://srv:8080/x"
    env = {"wsgi.url_scheme": "https", "SERVER_NAME": "srv", "SERVER_PORT": "443", "PATH_INFO": "/x",
           "HTTP_X_FORWARDED_HOST": "evil.example", "HTTP_X_FORWARDED_PROTO": "http"}
    assert mw.request_url(env) == "https://srv/x"  # X-Forwarded-* never read
    mw = BearerMiddleware(app, validator, public_url="https://api.example.com/")
    assert mw.request_url({"wsgi.url_scheme": "http", "HTTP_HOST": "internal:8000", "PATH_INFO": "/x"}) \
        == "https://api.example.com/x"


def test_request_url_path_quoting_memo_is_bounded_and_exact(validator):
    from oidc_guard import wsgi

    mw = BearerMiddleware(app, validator, public_url="https://api.example.com")
    wsgi._quote_path.cache_clear()
    for i in range(1100):  # more distinct paths than the memo holds
        assert mw.request_url({"PATH_INFO": f"/p {i}"}) == f"https://api.example.com/p%20{i}"
    assert wsgi._quote_path.cache_info().currsize <= 1024
    long_path = "/" + "a b" * 300  # longer than the memo takes: quoted all the same, not stored
    wsgi._quote_path.cache_clear()
    assert mw.request_url({"PATH_INFO": long_path}) == "https://api.example.com/" + "a%20b" * 300
    assert wsgi._quote_path.cache_info().currsize == 0
    assert wsgi._quote_path("/p 1") is wsgi._quote_path("/p 1")


def test_public_url_is_what_the_proof_must_name(validator, issuer, key):
    api = client(validator, public_url="https://api.example.com")
    token = bound_token(issuer, key)
    assert api.get("/token", headers=dpop_headers(token, key.proof("GET", "https://api.example.com/token", token)))
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)), status=401)
    assert "is not the request URL" in r.json["error_description"]


def _public_url_warnings(caplog):
    return [r for r in caplog.records
            if r.name == "oidc_guard.wsgi" and r.levelno == logging.WARNING and "public_url" in r.getMessage()]


def test_dpop_without_public_url_warns_once_per_middleware(validator, issuer, key, caplog):
    caplog.set_level(logging.WARNING, logger="oidc_guard.wsgi")
    token = bound_token(issuer, key)
    api = client(validator)
    api.get("/token", headers={"Authorization": "Bearer " + issuer.mint()})
    assert _public_url_warnings(caplog) == []  # a Bearer request does not need the URL
    for _ in range(3):
        api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)))
    api.get("/token", headers=dpop_headers(token, "not-a-proof"), status=401)
    (warning,) = _public_url_warnings(caplog)
    assert "Host header" in warning.getMessage() and "OIDC_GUARD_PUBLIC_URL" in warning.getMessage()
    # once per middleware: a second one warns again, once
    other = client(validator)
    for _ in range(2):
        other.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)))
    assert len(_public_url_warnings(caplog)) == 2


def test_dpop_with_public_url_does_not_warn(validator, issuer, key, caplog):
    caplog.set_level(logging.WARNING, logger="oidc_guard.wsgi")
    token = bound_token(issuer, key)
    api = client(validator, public_url="https://api.example.com")
    api.get("/token", headers=dpop_headers(token, key.proof("GET", "https://api.example.com/token", token)))
    assert _public_url_warnings(caplog) == []


def test_forwarded_headers_do_not_make_a_foreign_proof_pass(api, issuer, key):
    token = bound_token(issuer, key)
    proof = key.proof("GET", "https://evil.example/token", token)
    headers = dict(dpop_headers(token, proof), **{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
    api.get("/token", headers=headers, status=401)


def test_percent_encoded_path(validator, issuer, key):
    api = client(validator)
    token = bound_token(issuer, key)
    assert api.get("/a/b", headers=dpop_headers(token, key.proof("GET", f"http://{HOST}/a/%62", token)))


# --- nonces ----------------------------------------------------------------------------------


def test_nonce_flow(validator, issuer, key):
    api = client(validator, dpop_nonce=True, dpop_nonce_secret="n" * 32)
    token = bound_token(issuer, key)
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)), status=401)
    assert r.json["error"] == "use_dpop_nonce"
    assert 'error="use_dpop_nonce"' in challenges(r)["DPoP"]
    nonce = r.headers["DPoP-Nonce"]
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token, nonce=nonce)))
    assert r.json["binding"] == "dpop" and "DPoP-Nonce" not in r.headers
    # another worker with the same secret accepts the nonce
    api2 = client(validator, dpop_nonce=True, dpop_nonce_secret="n" * 32)
    assert api2.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token, nonce=nonce)))


def test_previous_step_nonce_gets_a_fresh_one(validator, issuer, key):
    from oidc_guard.dpop import DPoPNonces

    mw = BearerMiddleware(app, validator, dpop_nonce=True, dpop_nonce_secret="n" * 32)
    old = DPoPNonces("n" * 32, clock=lambda: __import__("time").time() - 60).current()
    token = bound_token(issuer, key)
    r = webtest.TestApp(mw, extra_environ={"HTTP_HOST": HOST}).get(
        "/token", headers=dpop_headers(token, key.proof("GET", URL, token, nonce=old)))
    assert r.headers["DPoP-Nonce"] == mw.dpop_verifier.nonces.current() != old


# --- replay store ------------------------------------------------------------------------------


class DownStore:
    def add(self, key, value, ttl):
        raise CacheUnavailable("shared cache redis://127.0.0.1:1/0: ConnectionError during SET NX")


def test_replay_store_down_is_503_for_dpop_only(validator, issuer, key, caplog):
    api = client(validator, dpop_replay_store=DownStore())
    caplog.set_level(logging.WARNING, logger="oidc_guard.dpop")
    token = bound_token(issuer, key)
    for _ in range(3):
        r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)), status=503)
        assert r.headers["Retry-After"] and "WWW-Authenticate" not in r.headers
        assert "redis" not in r.text  # the internal address is for the log only
    assert len([rec for rec in caplog.records if "replay store is unavailable" in rec.getMessage()]) == 1
    assert api.get("/token", headers={"Authorization": "Bearer " + issuer.mint()}).json["binding"] is None


EVICTING = ("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")


def test_an_evicting_redis_is_refused_by_check_and_dpop_gets_503(issuer, key, make_redis_server, caplog):
    # RFC 9449 section 11.1: a replay record Redis may evict is no record.
    server = make_redis_server(args=EVICTING)
    v = TokenValidator(issuer=issuer.issuer, audience=AUDIENCE, shared_cache=server.url)
    with pytest.raises(ConfigurationError) as err:
        v.check()
    for words in ("'allkeys-lru'", "noeviction", "dpop_accept_evicting_redis=True"):
        assert words in err.value.description
    api = client(v)
    caplog.set_level(logging.WARNING, logger="oidc_guard.dpop")
    token = bound_token(issuer, key)
    for _ in range(3):
        r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)), status=503)
        assert int(r.headers["Retry-After"]) >= 1 and "WWW-Authenticate" not in r.headers
        assert "allkeys" not in r.text and "redis" not in r.text  # for the log only
    logged = [rec for rec in caplog.records if "allkeys-lru" in rec.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR  # once, not per request
    # Bearer tokens do not use the replay store
    assert api.get("/token", headers={"Authorization": "Bearer " + issuer.mint()}).json["binding"] is None
    # The operator fixes the policy: noticed at the next re-read, no restart
    import redis

    from oidc_guard.cache import POLICY_RECHECK_SECONDS

    raw = redis.Redis.from_url(server.url)
    raw.config_set("maxmemory-policy", "noeviction")
    raw.close()
    api.app.dpop_verifier.replay_store._state().policy_read_at -= POLICY_RECHECK_SECONDS  # a minute later
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)))
    assert r.json["binding"] == "dpop"
    assert any("trusted again" in rec.getMessage() for rec in caplog.records)
    v.check()


def test_check_says_when_the_shared_cache_cannot_be_reached(issuer):
    from redis_server import free_port

    v = TokenValidator(issuer=issuer.issuer, audience=AUDIENCE, shared_cache=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ProviderError, match="start-up check: shared_cache"):
        v.check()


def test_accepting_an_evicting_redis_by_name_and_the_risk_it_accepts(issuer, key, make_redis_server, caplog):
    import redis

    server = make_redis_server(args=EVICTING)
    caplog.set_level(logging.WARNING)
    v = TokenValidator(issuer=issuer.issuer, audience=AUDIENCE, shared_cache=server.url,
                       dpop_accept_evicting_redis=True)
    v.check()
    assert any("accepting the risk" in rec.getMessage() and rec.levelno == logging.WARNING
               for rec in caplog.records)
    api = client(v)
    token = bound_token(issuer, key)
    proof = key.proof("GET", URL, token)
    assert api.get("/token", headers=dpop_headers(token, proof)).json["binding"] == "dpop"
    api.get("/token", headers=dpop_headers(token, proof), status=401)  # replay refused: the record is there
    # Memory pressure (an attacker's fresh proofs make the same) evicts the record ...
    raw = redis.Redis.from_url(server.url)
    for round_ in range(20):
        if not raw.keys("oidc_guard:dpop:jti:*"):
            break
        with raw.pipeline(transaction=False) as pipe:
            for i in range(1000):
                pipe.set(f"junk:{round_}:{i}", b"x" * 1024)
            pipe.execute()
    assert not raw.keys("oidc_guard:dpop:jti:*")
    raw.close()
    # ... and the captured proof is accepted again: the risk the keyword names.
    assert api.get("/token", headers=dpop_headers(token, proof)).json["binding"] == "dpop"
    with pytest.raises(ConfigurationError):
        TokenValidator(issuer=issuer.issuer, audience=AUDIENCE, dpop_accept_evicting_redis=1)


def test_shared_cache_of_the_validator_is_the_replay_store(validator):
    from oidc_guard.cache import MemoryCache

    class Shared(MemoryCache):
        shared = True

    class V:
        shared_cache = Shared()

        def validate_access_token(self, token):
            return validator.validate_access_token(token)

    mw = BearerMiddleware(app, V())
    assert mw.dpop_verifier.replay_store is V.shared_cache


# --- mTLS (RFC 8705) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs():
    return make_cert("client"), make_cert("other")


def test_cert_bound_token_with_ssl_client_cert(api, issuer, certs):
    cert, other = certs
    token = issuer.mint(claims={"cnf": {"x5t#S256": x5t(cert)}})
    r = api.get("/bound", headers={"Authorization": "Bearer " + token}, extra_environ={"SSL_CLIENT_CERT": pem(cert)})
    assert r.json["binding"] == "mtls"
    r = api.get("/token", headers={"Authorization": "Bearer " + token}, extra_environ={"SSL_CLIENT_CERT": pem(other)},
                status=401)
    assert r.json["error"] == "invalid_token" and "another client certificate" in r.json["error_description"]
    r = api.get("/token", headers={"Authorization": "Bearer " + token}, status=401)
    assert "the request has none" in r.json["error_description"]


def test_cert_bound_token_through_trusted_header(validator, issuer, certs):
    cert, other = certs
    api = client(validator, client_cert_header="X-Client-Cert")
    token = issuer.mint(claims={"cnf": {"x5t#S256": x5t(cert)}})
    auth = {"Authorization": "Bearer " + token}
    assert api.get("/token", headers=dict(auth, **{"X-Client-Cert": quote(pem(cert), safe="")})).json["binding"] == "mtls"
    api.get("/token", headers=dict(auth, **{"X-Client-Cert": quote(pem(other), safe="")}), status=401)
    # with a header configured, SSL_CLIENT_CERT is not what counts
    api.get("/token", headers=auth, extra_environ={"SSL_CLIENT_CERT": pem(cert)}, status=401)


def test_cert_header_ignored_unless_configured(api, issuer, certs):
    cert, _ = certs
    token = issuer.mint(claims={"cnf": {"x5t#S256": x5t(cert)}})
    api.get("/token", headers={"Authorization": "Bearer " + token, "X-Client-Cert": quote(pem(cert), safe="")},
            status=401)


def test_dpop_and_cert_bound_token_needs_both(api, issuer, key, certs):
    cert, other = certs
    token = issuer.mint(claims={"cnf": {"jkt": key.jkt, "x5t#S256": x5t(cert)}})
    r = api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)),
                extra_environ={"SSL_CLIENT_CERT": pem(cert)})
    assert r.json["binding"] == "dpop"
    api.get("/token", headers=dpop_headers(token, key.proof("GET", URL, token)),
            extra_environ={"SSL_CLIENT_CERT": pem(other)}, status=401)


def test_cnf_not_an_object_refused(api, issuer):
    r = api.get("/token", headers={"Authorization": "Bearer " + issuer.mint(claims={"cnf": "jkt"})}, status=401)
    assert "cnf claim is not an object" in r.json["error_description"]


# --- Flask ----------------------------------------------------------------------------------------


def test_flask_config_and_bound_decorator(issuer, key):
    flask = pytest.importorskip("flask")
    from oidc_guard.flask import OIDCGuard, current_claims
    from oidc_guard.flask import require_token as flask_require_token

    app_ = flask.Flask("t")
    app_.config.update(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE=AUDIENCE, OIDC_GUARD_DPOP="required",
                       OIDC_GUARD_PUBLIC_URL="https://api.example.com", OIDC_GUARD_DPOP_MAX_AGE="60")
    OIDCGuard(app_)

    @app_.get("/me")
    @flask_require_token(bound=True)
    def me():
        return {"sub": current_claims.subject, "binding": current_claims.binding}

    c = app_.test_client()
    token = bound_token(issuer, key)
    r = c.get("/me", headers=dpop_headers(token, key.proof("GET", "https://api.example.com/me", token)))
    assert r.json == {"sub": "alice", "binding": "dpop"}
    r = c.get("/me", headers={"Authorization": "Bearer " + issuer.mint()})
    assert r.status_code == 401 and r.headers.getlist("WWW-Authenticate")[0].startswith("DPoP ")
    mw = app_.extensions["oidc_guard"].middleware
    assert mw.dpop == "required" and mw.dpop_verifier.max_age == 60.0


@pytest.mark.parametrize("case, words", [
    ("missing", "no DPoP header"), ("two", "more than one DPoP proof"), ("empty", "the DPoP header is empty"),
    ("blank", "the DPoP header is empty"), ("comma", "more than one DPoP proof"),
    ("padded", None), ("bytes", None),
])
def test_http_dpop_value_read_as_verify_reads_a_header(validator, issuer, key, case, words):
    # The middleware hands HTTP_DPOP itself to the verifier (no header list):
    # the same splitting, stripping and counting as DPoPVerifier.verify.
    token = bound_token(issuer, key)
    proof = key.proof("GET", URL, token)
    value = {"missing": None, "two": proof + "," + proof, "empty": "", "blank": " \t ", "comma": ",",
             "padded": f" \t{proof}\t ", "bytes": proof.encode("ascii")}[case]
    seen = {}

    def inner(environ, start_response):
        seen["claims"], seen["error"] = environ["oidc_guard.claims"], environ["oidc_guard.error"]
        start_response("204 No Content", [])
        return [b""]

    mw = BearerMiddleware(inner, validator, required=False)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/token", "SCRIPT_NAME": "", "wsgi.url_scheme": "http",
               "HTTP_HOST": HOST, "HTTP_AUTHORIZATION": "DPoP " + token}
    if value is not None:
        environ["HTTP_DPOP"] = value
    mw(environ, lambda status, headers, exc_info=None: None)
    if words is None:
        assert seen["error"] is None and seen["claims"].binding == "dpop"
    else:
        assert seen["claims"] is None and seen["error"].error == "invalid_dpop_proof"
        assert words in seen["error"].description
    # and verify() says the same of the same value given as a header
    from oidc_guard.dpop import DPoPVerifier, InvalidDPoPProof

    headers = [] if value is None else [("DPoP", value)]
    if words is None:
        DPoPVerifier().verify("GET", URL, headers, access_token=token, jkt=key.jkt)
    else:
        with pytest.raises(InvalidDPoPProof, match=words):
            DPoPVerifier().verify("GET", URL, headers, access_token=token, jkt=key.jkt)
