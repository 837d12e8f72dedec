"""BearerMiddleware and the WSGI decorators through webtest, against the
real LocalIssuer (discovery and JWKS fetched over loopback HTTP).

Every status/header/body combination of RFC 6750 section 3 the middleware
and the decorators can produce, with the scopes of the contacts API:
``contacts``, ``wte`` and ``coordinate``.
"""

import json
import logging
import re
from urllib.parse import urlsplit

import pytest
import webtest
from challenges import parse_challenges

from oidc_guard import BearerMiddleware, InvalidToken, ProviderError, TokenValidator
from oidc_guard.testing import LocalIssuer
from oidc_guard.wsgi import require_any_scope, require_scope, require_token

REALM = "contacts-api"
AUDIENCE = "api://contacts"


# --- the challenges, read independently of errors.py (tests/challenges.py) ----

# The DPoP challenge that follows the Bearer one with the default
# dpop="allowed": bare (the error is on the scheme the request used).
BARE_DPOP = 'DPoP realm="contacts-api", algs="'


def parse_challenge(value):
    """The one WWW-Authenticate field: the Bearer challenge first (the
    scheme of every request here) -> its params {"realm": "x", "error":
    "y"}; after it at most a bare DPoP challenge (realm, algs, no error)."""
    found = parse_challenges([value])
    scheme, params, _raw = found[0]
    assert scheme == "Bearer", value
    assert len(found) <= 2, value
    for other, other_params, _raw in found[1:]:
        assert other == "DPoP" and set(other_params) <= {"realm", "algs"}, value
    return params


def assert_error(response, status, error, *, realm=REALM, scope=None, description=None):
    """The whole RFC 6750 section 3 error response: status, challenge,
    Cache-Control, JSON body; returns the description."""
    assert response.status_int == status, response
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = json.loads(response.body)
    assert set(body) == {"error", "error_description"}
    challenge = parse_challenge(response.headers["WWW-Authenticate"])
    expected = {"realm": realm} if realm is not None else {}
    if error is None:
        # no token sent: no error attribute (RFC 6750 section 3.1)
        assert challenge == expected
        assert body["error"] == "unauthorized"
        return body["error_description"]
    expected.update(error=error, error_description=body["error_description"])
    if scope is not None:
        expected["scope"] = scope
    assert challenge == expected
    assert body["error"] == error
    assert "Retry-After" not in response.headers
    if description is not None:
        assert description in body["error_description"]
    return body["error_description"]


def assert_unavailable(response):
    assert response.status_int == 503
    assert "WWW-Authenticate" not in response.headers  # not a token problem
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["Cache-Control"] == "no-store"
    body = json.loads(response.body)
    assert body["error"] == "temporarily_unavailable"
    # The precise reason names the provider's URLs: it goes to the log, never
    # to a client (issue 9).  No URL, host or port in the body or a header.
    assert body["error_description"] == "identity provider temporarily unavailable"
    exposed = response.body.decode("latin-1") + " ".join(f"{k}: {v}" for k, v in response.headerlist)
    for leak in ("http:", "https:", "127.0.0.1", "localhost", "::1", ".well-known", "jwks", "refused", "HTTP 5"):
        assert leak not in exposed, (leak, exposed)
    assert re.search(r":\d{2,5}\b", exposed) is None, exposed


# --- the application under test ---------------------------------------------


def _json(start_response, payload, status="200 OK"):
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _whoami(environ, start_response):
    claims = environ["oidc_guard.claims"]
    error = environ["oidc_guard.error"]
    return _json(
        start_response,
        {
            "sub": claims.subject if claims is not None else None,
            "scopes": sorted(claims.scopes) if claims is not None else None,
            "remote_user": environ.get("REMOTE_USER"),
            "error": type(error).__name__ if error is not None else None,
            "token_present": environ["oidc_guard.token_present"],
        },
    )


@require_token()
def _token_only(environ, start_response):
    return _whoami(environ, start_response)


@require_scope("contacts")
def _contacts(environ, start_response):
    return _whoami(environ, start_response)


@require_scope("contacts", "wte")
def _contacts_and_wte(environ, start_response):
    return _whoami(environ, start_response)


@require_any_scope("wte", "coordinate")
def _wte_or_coordinate(environ, start_response):
    return _whoami(environ, start_response)


@require_token
def _echo_body(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data)))])
    return [data]


class _CoordinateResource:
    """A WSGI application object with a decorated __call__ method."""

    def __init__(self):
        self.calls = 0

    @require_scope("coordinate")
    def __call__(self, environ, start_response):
        self.calls += 1
        return _whoami(environ, start_response)


ROUTES = {
    "/public": _whoami,
    "/token": _token_only,
    "/contacts": _contacts,
    "/contacts-wte": _contacts_and_wte,
    "/wte-or-coordinate": _wte_or_coordinate,
    "/echo": _echo_body,
}


def make_app(extra_routes=None):
    routes = dict(ROUTES, **(extra_routes or {}))

    def app(environ, start_response):
        handler = routes.get(environ["PATH_INFO"])
        if handler is None:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        return handler(environ, start_response)

    return app


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256", "ES256")) as iss:
        yield iss


@pytest.fixture(scope="module")
def validator(issuer):
    return TokenValidator(issuer=issuer.issuer, audience=AUDIENCE)


def client(validator, **kwargs):
    kwargs.setdefault("realm", REALM)
    return webtest.TestApp(BearerMiddleware(make_app(kwargs.pop("routes", None)), validator, **kwargs))


@pytest.fixture()
def api(validator):
    return client(validator)


def bearer(token):
    return {"Authorization": "Bearer " + token}


# --- no token ----------------------------------------------------------------


def test_public_route_without_token_is_anonymous(api):
    response = api.get("/public")
    assert response.json == {
        "sub": None, "scopes": None, "remote_user": None, "error": None, "token_present": False,
    }


@pytest.mark.parametrize("path", ["/token", "/contacts", "/contacts-wte", "/wte-or-coordinate"])
def test_protected_route_without_token_is_bare_401(api, path):
    response = api.get(path, status=401)
    assert_error(response, 401, None)
    # exactly the bare challenges: no error attribute (RFC 6750 section 3.1),
    # Bearer first, in one field
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="contacts-api", ' + BARE_DPOP)
    assert len(response.headers.getall("WWW-Authenticate")) == 1


def test_realm_is_optional_and_escaped(validator):
    response = client(validator, realm=None).get("/token", status=401)
    assert response.headers["WWW-Authenticate"].startswith('Bearer, DPoP algs="')
    response = client(validator, realm='con"tacts\\api').get("/token", status=401)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="con\\"tacts\\\\api", DPoP ')
    assert parse_challenge(response.headers["WWW-Authenticate"]) == {"realm": 'con"tacts\\api'}


@pytest.mark.parametrize("header, dpop", [("Basic YWxpY2U6YWxpY2U=", "allowed"), ("Digest username=\"alice\"", "allowed"),
                                          ("DPoP abc", "disabled")])
def test_other_schemes_are_anonymous_not_400(validator, header, dpop):
    api = client(validator, dpop=dpop)
    response = api.get("/public", headers={"Authorization": header})
    assert response.json["token_present"] is False and response.json["error"] is None
    response = api.get("/token", headers={"Authorization": header}, status=401)
    assert_error(response, 401, None)


# --- valid tokens --------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_valid_token_sets_claims_and_remote_user(api, issuer, scheme):
    token = issuer.mint(scope="contacts")
    response = api.get("/token", headers={"Authorization": f"{scheme} {token}"})
    assert response.json == {
        "sub": "alice", "scopes": ["contacts"], "remote_user": "alice", "error": None, "token_present": True,
    }


def test_valid_token_on_public_route(api, issuer):
    response = api.get("/public", headers=bearer(issuer.mint(subject="bob")))
    assert response.json["sub"] == "bob" and response.json["remote_user"] == "bob"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_every_published_key_works(api, issuer, alg):
    response = api.get("/contacts", headers=bearer(issuer.mint(alg=alg)))
    assert response.json["sub"] == "alice"


def test_client_credentials_token_without_sub_has_no_remote_user(api, issuer):
    # IdentityServer v3 shape: no sub, scope as a JSON array
    token = issuer.mint(subject=None, scope=["wte"], client_id="wte-worker")
    response = api.get("/wte-or-coordinate", headers=bearer(token))
    assert response.json["sub"] is None
    assert response.json["remote_user"] is None
    assert response.json["scopes"] == ["wte"]


def test_remote_user_from_server_left_alone_for_anonymous(api):
    response = api.get("/public", extra_environ={"REMOTE_USER": "from-server"})
    assert response.json["remote_user"] == "from-server"


# --- scopes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, scope, granted",
    [
        ("/contacts", "contacts", True),
        ("/contacts", "contacts wte coordinate", True),
        ("/contacts-wte", "contacts wte", True),
        ("/contacts-wte", "wte contacts coordinate", True),
        ("/wte-or-coordinate", "wte", True),
        ("/wte-or-coordinate", "coordinate", True),
        ("/wte-or-coordinate", "contacts coordinate", True),
        ("/contacts", ["contacts", "wte"], True),  # IdentityServer v3 JSON array
    ],
)
def test_enough_scope_is_200(api, issuer, path, scope, granted):
    response = api.get(path, headers=bearer(issuer.mint(scope=scope)))
    assert response.status_int == 200
    assert "contacts" in response.json["scopes"] or path == "/wte-or-coordinate"


@pytest.mark.parametrize(
    "path, scope, required, missing_words",
    [
        ("/contacts", "wte coordinate", "contacts", "the token lacks the required scope contacts"),
        ("/contacts", None, "contacts", "the token lacks the required scope contacts"),
        ("/contacts", "contactsX", "contacts", "the token lacks the required scope contacts"),
        ("/contacts-wte", "contacts", "contacts wte", "the token lacks the required scope wte"),
        ("/contacts-wte", "coordinate", "contacts wte", "the token lacks the required scopes contacts wte"),
        ("/contacts-wte", ["wte"], "contacts wte", "the token lacks the required scope contacts"),
        ("/wte-or-coordinate", "contacts", "wte coordinate", "the token has none of the accepted scopes wte coordinate"),
    ],
)
def test_missing_scope_is_403_insufficient_scope(api, issuer, path, scope, required, missing_words):
    response = api.get(path, headers=bearer(issuer.mint(scope=scope)), status=403)
    description = assert_error(response, 403, "insufficient_scope", scope=required)
    assert description == missing_words


def test_decorated_method_of_an_application_object(validator, issuer):
    resource = _CoordinateResource()
    app = client(validator, routes={"/coordinate": resource})
    app.get("/coordinate", headers=bearer(issuer.mint(scope="contacts")), status=403)
    assert resource.calls == 0
    response = app.get("/coordinate", headers=bearer(issuer.mint(scope="coordinate")))
    assert response.json["scopes"] == ["coordinate"]
    assert resource.calls == 1


# --- invalid tokens ---------------------------------------------------------


@pytest.fixture(scope="module")
def bad_tokens(issuer):
    unpublished = issuer.add_key("RS256", publish=False)
    good = issuer.mint()
    head, payload, signature = good.split(".")
    other_sig = issuer.mint(subject="mallory").split(".")[2]
    return {
        "expired": (issuer.mint(expires_in=-3600), "expired"),
        "wrong audience": (issuer.mint(audience="api://other"), "audience"),
        "wrong issuer": (issuer.mint(issuer="http://127.0.0.1:1"), "issuer"),
        "unknown key": (issuer.mint(kid=unpublished), unpublished),
        "bad signature": (f"{head}.{payload}.{other_sig}", "signature"),
        "not a JWT": ("abc", None),
        "two segments": ("abc.def", None),
    }


@pytest.mark.parametrize(
    "case", ["expired", "wrong audience", "wrong issuer", "unknown key", "bad signature", "not a JWT", "two segments"]
)
def test_invalid_token_on_protected_route_is_401_invalid_token(api, bad_tokens, case):
    token, words = bad_tokens[case]
    response = api.get("/contacts", headers=bearer(token), status=401)
    description = assert_error(response, 401, "invalid_token", description=words)
    assert token not in description and token not in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("case", ["expired", "bad signature"])
def test_invalid_token_on_public_route_goes_on_anonymous(api, bad_tokens, case):
    response = api.get("/public", headers=bearer(bad_tokens[case][0]))
    assert response.json == {
        "sub": None, "scopes": None, "remote_user": None, "error": "InvalidToken", "token_present": True,
    }


def test_rejected_token_is_logged_at_info_without_the_token(api, bad_tokens, caplog):
    token = bad_tokens["expired"][0]
    with caplog.at_level(logging.DEBUG, logger="oidc_guard"):
        api.get("/contacts", headers=bearer(token), status=401)
    records = [r for r in caplog.records if r.name == "oidc_guard.wsgi"]
    assert [r.levelno for r in records] == [logging.INFO]
    assert "rejected bearer token" in records[0].getMessage()
    assert "expired" in records[0].getMessage()
    assert all(token not in r.getMessage() for r in caplog.records)
    assert all(token.split(".")[2] not in r.getMessage() for r in caplog.records)


# --- malformed requests: 400 invalid_request -------------------------------------


@pytest.mark.parametrize("path", ["/public", "/contacts"])
@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer   ", "Bearer a b", "Bearer a,b", "Bearer a$b", "Bearer\tabc", "Basic x, Bearer abc"],
)
def test_malformed_authorization_header_is_400_on_every_route(api, path, header):
    response = api.get(path, headers={"Authorization": header}, status=400)
    assert_error(response, 400, "invalid_request")


def test_two_authorization_headers_joined_by_the_server_are_400(api, issuer):
    token = issuer.mint()
    response = api.get(
        "/contacts", extra_environ={"HTTP_AUTHORIZATION": f"Bearer {token}, Bearer {token}"}, status=400
    )
    assert_error(response, 400, "invalid_request", description="more than one token")


def test_invalid_request_logged_at_info(api, caplog):
    with caplog.at_level(logging.INFO, logger="oidc_guard"):
        api.get("/public", headers={"Authorization": "Bearer a$b"}, status=400)
    assert any(r.name == "oidc_guard.wsgi" and r.levelno == logging.INFO for r in caplog.records)


# --- form body and query (RFC 6750 sections 2.2 and 2.3) ------------------------


def test_form_token_accepted_and_body_still_readable(validator, issuer):
    app = client(validator, accept_form=True)
    token = issuer.mint()
    body = f"note=hello+world&access_token={token}&n=1"
    response = app.post("/echo", body, content_type="application/x-www-form-urlencoded")
    assert response.body == body.encode()


def test_form_token_with_charset_parameter(validator, issuer):
    app = client(validator, accept_form=True)
    response = app.put(
        "/token", f"access_token={issuer.mint()}", content_type="application/x-www-form-urlencoded; charset=utf-8"
    )
    assert response.json["sub"] == "alice"


def test_form_token_ignored_when_not_enabled(api, issuer):
    body = f"access_token={issuer.mint()}"
    response = api.post("/echo", body, content_type="application/x-www-form-urlencoded", status=401)
    assert_error(response, 401, None)
    response = api.post("/public", body, content_type="application/x-www-form-urlencoded")
    assert response.json["token_present"] is False


def test_form_token_not_read_from_json_or_get(validator, issuer):
    app = client(validator, accept_form=True)
    body = json.dumps({"access_token": issuer.mint()})
    response = app.post("/echo", body, content_type="application/json", status=401)
    assert_error(response, 401, None)
    response = app.get("/token?" + f"access_token={issuer.mint()}", status=401)  # query not enabled
    assert_error(response, 401, None)


def test_form_token_over_size_limit_is_not_searched_and_body_survives(validator, issuer):
    app = client(validator, accept_form=True, max_form_bytes=100)
    body = f"access_token={issuer.mint()}&pad={'x' * 200}"
    response = app.post("/public", body, content_type="application/x-www-form-urlencoded")
    assert response.json["token_present"] is False
    response = app.post("/echo", body, content_type="application/x-www-form-urlencoded", status=401)
    assert_error(response, 401, None)


def test_header_and_form_token_is_400(validator, issuer):
    app = client(validator, accept_form=True)
    token = issuer.mint()
    response = app.post(
        "/public", f"access_token={token}", content_type="application/x-www-form-urlencoded",
        headers=bearer(token), status=400,
    )
    assert_error(response, 400, "invalid_request", description="more than one method")


def test_repeated_form_token_is_400(validator, issuer):
    app = client(validator, accept_form=True)
    token = issuer.mint()
    response = app.post(
        "/public", f"access_token={token}&access_token={token}",
        content_type="application/x-www-form-urlencoded", status=400,
    )
    assert_error(response, 400, "invalid_request", description="more than once")


def test_query_token_only_when_enabled(api, validator, issuer):
    token = issuer.mint()
    response = api.get(f"/token?access_token={token}", status=401)
    assert_error(response, 401, None)
    response = client(validator, accept_query=True).get(f"/token?access_token={token}")
    assert response.json["sub"] == "alice"


@pytest.mark.parametrize(
    "query, words",
    [("access_token={t}&access_token={t}", "more than once"), ("access_token=", "empty"), ("access_token=a%20b", "allow")],
)
def test_bad_query_token_is_400(validator, issuer, query, words):
    app = client(validator, accept_query=True)
    response = app.get("/public?" + query.format(t=issuer.mint()), status=400)
    assert_error(response, 400, "invalid_request", description=words)


def test_header_and_query_token_is_400(validator, issuer):
    token = issuer.mint()
    app = client(validator, accept_query=True)
    response = app.get(f"/public?access_token={token}", headers=bearer(token), status=400)
    assert_error(response, 400, "invalid_request", description="Authorization header and query string")


def test_invalid_query_token_is_401(validator, issuer):
    app = client(validator, accept_query=True)
    response = app.get(f"/token?access_token={issuer.mint(expires_in=-600)}", status=401)
    assert_error(response, 401, "invalid_token", description="expired")


# --- required=True --------------------------------------------------------------


def test_required_answers_401_itself(validator, issuer):
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        return _whoami(environ, start_response)

    api = webtest.TestApp(BearerMiddleware(app, validator, realm=REALM, required=True))
    response = api.get("/anything", status=401)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="contacts-api", ' + BARE_DPOP)
    assert_error(response, 401, None)
    response = api.get("/anything", headers=bearer(issuer.mint(expires_in=-600)), status=401)
    assert_error(response, 401, "invalid_token", description="expired")
    response = api.get("/anything", headers={"Authorization": "Basic YWxpY2U6YWxpY2U="}, status=401)
    assert_error(response, 401, None)
    assert calls == []  # the application never saw an unauthenticated request
    response = api.get("/anything", headers=bearer(issuer.mint()))
    assert response.json["sub"] == "alice"
    assert calls == ["/anything"]


# --- identity provider unusable: 503, never 401 -----------------------------------


@pytest.fixture()
def broken_issuer():
    """A LocalIssuer whose JWKS endpoint answers 500."""
    with LocalIssuer(algs=("RS256",)) as iss:
        iss.set_fault("jwks", status=500)
        yield iss


def test_provider_down_protected_route_is_503(broken_issuer, caplog):
    validator = TokenValidator(issuer=broken_issuer.issuer, audience=AUDIENCE, http_timeout=2)
    api = client(validator)
    with caplog.at_level(logging.INFO, logger="oidc_guard"):
        response = api.get("/contacts", headers=bearer(broken_issuer.mint()), status=503)
    assert_unavailable(response)
    assert broken_issuer.fetch_counts["jwks"] >= 1  # a real fetch happened
    # the cause at WARNING (from the key set, once per outage); the refused
    # request at INFO from the middleware
    assert any(r.levelno == logging.WARNING and "HTTP 500" in r.getMessage() for r in caplog.records)
    mine = [r for r in caplog.records if r.name == "oidc_guard.wsgi"]
    assert [r.levelno for r in mine] == [logging.INFO]
    assert "identity provider unusable" in mine[0].getMessage()


def test_outage_logs_one_warning_not_one_per_request(broken_issuer, caplog):
    validator = TokenValidator(issuer=broken_issuer.issuer, audience=AUDIENCE, http_timeout=2)
    api = client(validator)
    token = broken_issuer.mint()
    with caplog.at_level(logging.INFO, logger="oidc_guard"):
        for _ in range(20):
            api.get("/contacts", headers=bearer(token), status=503)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def test_provider_down_public_route_still_works(broken_issuer):
    validator = TokenValidator(issuer=broken_issuer.issuer, audience=AUDIENCE, http_timeout=2)
    api = client(validator)
    response = api.get("/public", headers=bearer(broken_issuer.mint()))
    assert response.json["error"] == "ProviderError"
    assert response.json["sub"] is None and response.json["token_present"] is True
    # no token at all: still a bare 401 on a protected route, not a 503
    assert_error(api.get("/token", status=401), 401, None)


@pytest.mark.parametrize("path", ["/token", "/contacts", "/contacts-wte", "/wte-or-coordinate"])
@pytest.mark.parametrize("fault", ["refused", "http500", "mismatch"])
def test_no_503_names_an_internal_url(path, fault, caplog):
    """Every 503 path (middleware with required=True, and each decorator
    behind a required=False middleware) sends the fixed sentence; the
    precise reason, with the URL, is logged at WARNING once."""
    with LocalIssuer() as iss:
        token = iss.mint(scope="contacts wte")
        if fault == "refused":
            issuer_url = iss.issuer
            iss.stop()
        else:
            issuer_url = iss.issuer
            if fault == "http500":
                iss.set_fault("jwks", status=500)
            else:
                iss.discovery_overrides["issuer"] = iss.issuer + "/"
        for required in (True, False):
            validator = TokenValidator(issuer=issuer_url, audience=AUDIENCE, http_timeout=2)
            with caplog.at_level(logging.INFO, logger="oidc_guard"):
                caplog.clear()
                for _ in range(3):
                    assert_unavailable(client(validator, required=required).get(
                        path, headers=bearer(token), status=503))
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1, warnings
            assert urlsplit(issuer_url).netloc in warnings[0]


def test_provider_down_with_required_is_503():
    # nothing listens on port 1: connection refused, a real network failure
    validator = TokenValidator(issuer="http://127.0.0.1:1", audience=AUDIENCE, http_timeout=2)
    with LocalIssuer() as iss:
        token = iss.mint(issuer="http://127.0.0.1:1")
    api = webtest.TestApp(BearerMiddleware(make_app(), validator, realm=REALM, required=True))
    assert_unavailable(api.get("/public", headers=bearer(token), status=503))


# --- the validator's own bugs never become a 500 ----------------------------------


class _BuggyValidator:
    def validate_access_token(self, token):
        raise KeyError("boom")


class _StubValidator:
    def __init__(self, exc):
        self.exc = exc

    def validate_access_token(self, token):
        raise self.exc


def test_unexpected_validator_exception_is_401_and_logged(caplog):
    api = webtest.TestApp(BearerMiddleware(make_app(), _BuggyValidator(), realm=REALM))
    with caplog.at_level(logging.INFO, logger="oidc_guard"):
        response = api.get("/token", headers=bearer("abc.def.ghi"), status=401)
    assert_error(response, 401, "invalid_token", description="token could not be validated")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "abc.def.ghi" not in errors[0].getMessage()


def test_stub_provider_error_carries_retry_after():
    api = webtest.TestApp(
        BearerMiddleware(make_app(), _StubValidator(ProviderError("JWKS unreachable", retry_after=7)), realm=REALM)
    )
    response = api.get("/token", headers=bearer("abc"), status=503)
    assert_unavailable(response)
    assert response.headers["Retry-After"] == "7"
    assert response.json["error_description"] == "identity provider temporarily unavailable"


def test_stub_invalid_token_description_is_escaped_in_header():
    api = webtest.TestApp(
        BearerMiddleware(make_app(), _StubValidator(InvalidToken('kid "x\\y"\r\nX-Evil: 1')), realm=REALM)
    )
    response = api.get("/token", headers=bearer("abc"), status=401)
    header = response.headers["WWW-Authenticate"]
    assert "\r" not in header and "\n" not in header
    assert "X-Evil" not in response.headers
    assert parse_challenge(header)["error_description"] == 'kid "x\\y"??X-Evil: 1'


# --- misuse is caught early / fails closed -------------------------------------


def test_decorator_without_middleware_fails_closed(caplog):
    api = webtest.TestApp(make_app())
    with caplog.at_level(logging.ERROR, logger="oidc_guard"):
        response = api.get("/contacts", status=500)
    assert b"not configured" in response.body
    assert any("without BearerMiddleware" in r.getMessage() for r in caplog.records)


def test_middleware_rejects_a_non_validator():
    with pytest.raises(TypeError, match="validate_access_token"):
        BearerMiddleware(make_app(), object())


def test_environ_is_reset_for_each_request(validator, issuer):
    # two middlewares in a row (e.g. mounted twice): the inner one starts fresh
    inner = BearerMiddleware(make_app(), validator, realm=REALM)
    outer = BearerMiddleware(inner, validator, realm=REALM)
    api = webtest.TestApp(outer)
    assert api.get("/public", headers=bearer(issuer.mint())).json["sub"] == "alice"
    assert api.get("/public").json["sub"] is None


# --- RFC 6749 section 3.3: scope separators (issue 9, hostile-input run) ----------


_SEPARATORS = (["\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680"]
               + [chr(c) for c in range(0x2000, 0x200B)] + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"])


@pytest.mark.parametrize("sep", _SEPARATORS, ids=[f"U+{ord(c):04X}" for c in _SEPARATORS])
def test_a_signed_scope_with_another_separator_never_grants(issuer, api, sep):
    for scope in (f"wte{sep}contacts", [f"wte{sep}contacts"], f"contacts{sep}"):
        response = api.get("/contacts", headers=bearer(issuer.mint(scope=scope)), status=401)
        description = assert_error(response, 401, "invalid_token")
        assert "RFC 6749 scope-token" in description
    # the same token with a real SP works
    api.get("/contacts", headers=bearer(issuer.mint(scope="wte contacts")), status=200)
