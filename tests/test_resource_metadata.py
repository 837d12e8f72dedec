"""RFC 9728 protected resource metadata and RFC 8707 resource indicators
in the WSGI middleware (through the core's Authenticator), against the
real LocalIssuer: the document at its path-inserted URL (GET, HEAD,
preflight, 405), its members built from the settings, ``resource_metadata``
in every challenge, the audience refusal naming the resource, and requests
made each way the document lists (every one accepted)."""

from __future__ import annotations

import json
import logging
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import webtest

from oidc_guard import BearerMiddleware, ConfigurationError, MultiIssuerValidator, TokenValidator
from oidc_guard.auth import Authenticator
from oidc_guard.cli.probe import protected_resource_metadata_url
from oidc_guard.resource import CACHE_MAX_AGE, check_resource, metadata_url
from oidc_guard.testing import DPoPKey, LocalIssuer
from oidc_guard.wsgi import require_scope, require_token

from challenges import parse_challenges

RESOURCE = "https://api.test/contacts"
WELL_KNOWN = "/.well-known/oauth-protected-resource/contacts"
METADATA_URL = "https://api.test" + WELL_KNOWN
HOST = "api.test"


def _json(start_response, obj):
    body = json.dumps(obj).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@require_scope("contacts")
def _contacts(environ, start_response):
    claims = environ["oidc_guard.claims"]
    return _json(start_response, {"sub": claims.subject, "source": environ["oidc_guard.credential"].source,
                                  "binding": claims.binding})


def app(environ, start_response):
    if environ["PATH_INFO"] == "/token":
        return require_token()(_contacts.__wrapped__)(environ, start_response)
    if environ["PATH_INFO"] == "/public":
        return _json(start_response, {"public": True})
    return _contacts(environ, start_response)


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",), audience=RESOURCE) as iss:
        yield iss


@pytest.fixture(scope="module")
def validator(issuer):
    return TokenValidator(issuer.issuer, audience=RESOURCE)


def client(validator, **kwargs):
    kwargs.setdefault("realm", "contacts")
    kwargs.setdefault("resource", RESOURCE)
    return webtest.TestApp(BearerMiddleware(app, validator, **kwargs), extra_environ={"HTTP_HOST": HOST})


def challenges(response):
    return {scheme: params for scheme, params, _raw in parse_challenges(response.headers.getall("WWW-Authenticate"))}


# --- the URL (RFC 9728 section 3.1) -------------------------------------------------------


@pytest.mark.parametrize("resource, url", [
    ("https://api.example.com/contacts", "https://api.example.com/.well-known/oauth-protected-resource/contacts"),
    ("https://api.example.com/a/b/", "https://api.example.com/.well-known/oauth-protected-resource/a/b"),
    ("https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"),
    ("https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"),
    ("https://api.example.com:8443/x", "https://api.example.com:8443/.well-known/oauth-protected-resource/x"),
    ("http://127.0.0.1:5001", "http://127.0.0.1:5001/.well-known/oauth-protected-resource"),
])
def test_the_well_known_segment_goes_before_the_path(resource, url):
    assert metadata_url(resource) == url
    # what the served document's URL is, and what a client (oidc-guard probe) derives
    assert protected_resource_metadata_url(resource) == url


@pytest.mark.parametrize("resource, words", [
    ("http://api.example.com/contacts", "https"),
    ("api.example.com/contacts", "absolute https"),
    ("https://api.example.com/contacts#x", "fragment"),
    ("https://api.example.com/contacts?tenant=a", "query"),
    ("https://user@api.example.com/", "user information"),
    ("https://api.example.com/cont acts", "ASCII URL without spaces"),
    ("https://api.example.com:port/", "invalid port"),
    ("", "the API's URL"),
    (["https://api.example.com"], "the API's URL"),
])
def test_a_resource_that_is_not_a_usable_identifier_is_refused(resource, words):
    with pytest.raises(ConfigurationError, match=words):
        check_resource(resource)


def test_without_resource_nothing_is_served_and_challenges_are_unchanged(validator):
    api = client(validator, resource=None)
    r = api.get(WELL_KNOWN, status=401)  # an ordinary (protected) path now
    assert "resource_metadata" not in r.headers["WWW-Authenticate"]
    with pytest.raises(ConfigurationError, match="needs resource"):
        BearerMiddleware(app, validator, scopes_supported=["contacts"])


# --- the document -------------------------------------------------------------------------


def test_get_answers_the_document_built_from_the_settings(validator, issuer):
    api = client(validator, scopes_supported=["contacts", "wte"])
    r = api.get(WELL_KNOWN)
    assert r.status_int == 200 and r.content_type == "application/json"
    assert r.json == {
        "resource": RESOURCE,
        "authorization_servers": [issuer.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["contacts", "wte"],
        "dpop_signing_alg_values_supported": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                              "ES256", "ES384", "ES512", "EdDSA"],
    }
    assert r.headers["Cache-Control"] == f"public, max-age={CACHE_MAX_AGE}"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert int(r.headers["Content-Length"]) == len(r.body)


def test_head_has_the_get_headers_and_no_body(validator):
    api = client(validator)
    get = api.get(WELL_KNOWN)
    head = api.head(WELL_KNOWN)
    assert head.status_int == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(get.body))
    assert head.headers["Content-Type"] == "application/json"
    assert head.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_preflight_and_other_methods(validator):
    api = client(validator)
    r = api.options(WELL_KNOWN, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET",
                                         "Access-Control-Request-Headers": "mcp-protocol-version"})
    assert r.status_int == 204 and r.body == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert r.headers["Access-Control-Allow-Headers"] == "*"
    for method in ("post", "put", "delete", "patch"):
        r = getattr(api, method)(WELL_KNOWN, status=405)
        assert r.headers["Allow"] == "GET, HEAD, OPTIONS" and r.json["error"] == "method_not_allowed"


def test_the_document_is_public_even_with_required_and_a_bad_token(validator):
    api = client(validator, required=True)
    assert api.get("/contacts", status=401)
    r = api.get(WELL_KNOWN, headers={"Authorization": "Bearer not-a-token"})
    assert r.json["resource"] == RESOURCE
    # only that exact path: a neighbour is protected as ever
    api.get(WELL_KNOWN + "/x", status=401)
    api.get(WELL_KNOWN + "/", status=401)


def test_a_resource_without_path_and_a_mount_point(validator):
    api = client(validator, resource="https://api.test")
    assert api.get("/.well-known/oauth-protected-resource").json["resource"] == "https://api.test"
    # the resource's path is compared with SCRIPT_NAME + PATH_INFO
    api = client(validator)
    r = api.get("/oauth-protected-resource/contacts", extra_environ={"SCRIPT_NAME": "/.well-known"})
    assert r.json["resource"] == RESOURCE


def test_members_follow_the_settings(validator):
    doc = client(validator, accept_form=True, accept_query=True, dpop="required", dpop_algorithms=["ES256", "EdDSA"],
                 client_cert_header="X-Client-Cert").get(WELL_KNOWN).json
    assert doc["bearer_methods_supported"] == ["header", "body", "query"]
    assert doc["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA"]
    assert doc["dpop_bound_access_tokens_required"] is True
    assert doc["tls_client_certificate_bound_access_tokens"] is True
    assert "scopes_supported" not in doc
    doc = client(validator, dpop="disabled").get(WELL_KNOWN).json
    assert set(doc) == {"resource", "authorization_servers", "bearer_methods_supported"}


def test_a_multi_issuer_validator_lists_its_configured_issuers(make_issuer):
    first, second, tenant = (make_issuer(algs=("RS256",), audience=RESOURCE) for _ in range(3))
    members = [TokenValidator(i.issuer, audience=RESOURCE) for i in (first, second)]
    doc = client(MultiIssuerValidator(members)).get(WELL_KNOWN).json
    assert doc["authorization_servers"] == [first.issuer, second.issuer]

    # A resolver's tenants are not known in advance: even one it has
    # already resolved is not listed, only the configured members.
    multi = MultiIssuerValidator(members[:1], resolver=lambda iss: TokenValidator(iss, audience=RESOURCE)
                                 if iss == tenant.issuer else None)
    assert multi.validate_access_token(tenant.mint()).issuer == tenant.issuer
    assert tenant.issuer in multi.issuers
    api = client(multi)
    assert api.get(WELL_KNOWN).json["authorization_servers"] == [first.issuer]
    # ... and its tokens are accepted all the same
    assert api.get("/contacts", headers={"Authorization": "Bearer " + tenant.mint()}).json["sub"] == "alice"


# --- the audience (RFC 8707) --------------------------------------------------------------


def test_a_token_for_another_resource_is_refused_naming_both(validator, issuer):
    api = client(validator)
    token = issuer.mint(claims={"aud": "https://api.test/other"})
    r = api.get("/contacts", headers={"Authorization": "Bearer " + token}, status=401)
    description = r.json["error_description"]
    assert "https://api.test/other" in description and RESOURCE in description
    assert r.json["error"] == "invalid_token"
    # the token for this resource is accepted
    assert api.get("/contacts", headers={"Authorization": "Bearer " + issuer.mint()}).json["sub"] == "alice"


def test_the_refusal_names_the_resource_when_the_audience_is_another_name(issuer, caplog):
    logical = TokenValidator(issuer.issuer, audience="api://contacts")
    with caplog.at_level(logging.WARNING, logger="oidc_guard.wsgi"):
        api = client(logical)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and RESOURCE in warned[0] and "api://contacts" in warned[0]
    token = issuer.mint(claims={"aud": "https://api.test/other"})
    r = api.get("/contacts", headers={"Authorization": "Bearer " + token}, status=401)
    description = r.json["error_description"]
    assert "https://api.test/other" in description and RESOURCE in description and "api://contacts" in description
    assert r.json["error"] == "invalid_token"


def test_no_audience_check_with_a_resource_is_a_configuration_error(issuer):
    loose = TokenValidator(issuer.issuer, audience=None, verify_audience=False)
    with pytest.raises(ConfigurationError, match="checks the audience"):
        Authenticator(loose, resource=RESOURCE)
    loose_member = MultiIssuerValidator([TokenValidator(issuer.issuer, audience=None, verify_audience=False)])
    with pytest.raises(ConfigurationError, match="checks the audience"):
        BearerMiddleware(app, loose_member, resource=RESOURCE)


@pytest.mark.parametrize("scopes, words", [("contacts wte", "not one str"), (["con tacts"], "not a valid scope"),
                                           ([1], "scope names as str")])
def test_bad_scopes_supported(validator, scopes, words):
    with pytest.raises(ConfigurationError, match=words):
        Authenticator(validator, resource=RESOURCE, scopes_supported=scopes)


# --- resource_metadata in every challenge (RFC 9728 section 5.1) ---------------------------


def test_every_401_and_403_challenge_names_the_document(validator, issuer):
    api = client(validator)
    no_token = challenges(api.get("/contacts", status=401))
    assert list(no_token) == ["Bearer", "DPoP"]
    assert all(c["resource_metadata"] == METADATA_URL for c in no_token.values())
    bad = challenges(api.get("/contacts", headers={"Authorization": "Bearer " + issuer.mint(expires_in=-600)},
                             status=401))
    assert bad["Bearer"]["error"] == "invalid_token" and bad["Bearer"]["resource_metadata"] == METADATA_URL
    assert bad["DPoP"]["resource_metadata"] == METADATA_URL
    scope = challenges(api.get("/contacts", headers={"Authorization": "Bearer " + issuer.mint(scope="wte")},
                               status=403))
    assert scope == {"Bearer": {"realm": "contacts", "error": "insufficient_scope",
                                "error_description": "the token lacks the required scope contacts",
                                "scope": "contacts", "resource_metadata": METADATA_URL}}


def test_dpop_challenges_name_the_document(validator, issuer):
    key = DPoPKey("ES256")
    token = issuer.mint(claims={"cnf": key.cnf})
    api = client(validator)
    r = api.get("/contacts", headers={"Authorization": "DPoP " + token, "DPoP": "garbage"}, status=401)
    ch = challenges(r)
    assert list(ch) == ["DPoP", "Bearer"] and ch["DPoP"]["error"] == "invalid_dpop_proof"
    assert ch["DPoP"]["resource_metadata"] == METADATA_URL and ch["Bearer"]["resource_metadata"] == METADATA_URL
    wte = issuer.mint(claims={"cnf": key.cnf}, scope="wte")
    r = api.get("/contacts", headers={"Authorization": "DPoP " + wte,
                                      "DPoP": key.proof("GET", f"http://{HOST}/contacts", wte)}, status=403)
    assert challenges(r)["DPoP"]["resource_metadata"] == METADATA_URL
    required = challenges(client(validator, dpop="required").get("/contacts", status=401))
    assert list(required) == ["DPoP"] and required["DPoP"]["resource_metadata"] == METADATA_URL


# --- the document never lists something the middleware does not accept ----------------------


def test_every_listed_bearer_method_and_dpop_alg_is_accepted(validator, issuer):
    api = client(validator, accept_form=True, accept_query=True)
    doc = api.get(WELL_KNOWN).json
    token = issuer.mint()
    ways = {
        "header": lambda: api.get("/contacts", headers={"Authorization": "Bearer " + token}),
        "body": lambda: api.post("/contacts", {"access_token": token}),
        "query": lambda: api.get("/contacts", {"access_token": token}),
    }
    source = {"header": "header", "body": "form", "query": "query"}  # RFC 9728 name -> Credential.source
    for method in doc["bearer_methods_supported"]:
        r = ways[method]()
        assert r.status_int == 200 and r.json == {"sub": "alice", "source": source[method], "binding": None}, method
    assert doc["dpop_signing_alg_values_supported"]
    for alg in doc["dpop_signing_alg_values_supported"]:
        key = DPoPKey(alg)
        bound = issuer.mint(claims={"cnf": key.cnf})
        r = api.get("/contacts", headers={"Authorization": "DPoP " + bound,
                                          "DPoP": key.proof("GET", f"http://{HOST}/contacts", bound)})
        assert r.json["binding"] == "dpop", alg
    # and what the document leaves out is refused: a restricted list
    api = client(validator, dpop_algorithms=["ES256"])
    assert api.get(WELL_KNOWN).json["dpop_signing_alg_values_supported"] == ["ES256"]
    key = DPoPKey("ES384")
    bound = issuer.mint(claims={"cnf": key.cnf})
    r = api.get("/contacts", headers={"Authorization": "DPoP " + bound,
                                      "DPoP": key.proof("GET", f"http://{HOST}/contacts", bound)}, status=401)
    assert r.json["error"] == "invalid_dpop_proof"
    r = api.get("/contacts", {"access_token": token}, status=401)  # query not listed, not read
    assert "error=" not in r.headers["WWW-Authenticate"]


# --- oidc-guard probe against the real middleware -------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_probe_finds_its_way_through_the_real_middleware(issuer, capsys):
    from oidc_guard.cli import EXIT_OK, main

    server = make_server("127.0.0.1", 0, lambda e, s: [b""], handler_class=_Quiet)
    resource = f"http://127.0.0.1:{server.server_port}/contacts"
    server.set_app(BearerMiddleware(app, TokenValidator(issuer.issuer, audience=resource), realm="contacts",
                                    resource=resource, scopes_supported=["contacts"]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code = main(["probe", resource, "--timeout", "5"])
        out = capsys.readouterr().out
        assert code == EXIT_OK, out
        assert f"with resource={resource} (RFC 8707)" in out
        assert f"get a token from {issuer.issuer}" in out
        assert out.rstrip().endswith("a client can get in")
    finally:
        server.shutdown()
        server.server_close()
