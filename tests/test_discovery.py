"""Provider metadata (oidc_guard.discovery) and how the validator uses it:
lazy, exact issuer match, jwks_uri rules, outage at start-up and recovery.

The issuer is a real LocalIssuer on 127.0.0.1.
"""

from __future__ import annotations

import logging
import time

import pytest

from oidc_guard import InvalidToken, ProviderError, TokenValidator
from oidc_guard.discovery import MAX_DISCOVERY_BYTES, ProviderMetadata, discovery_url
from oidc_guard.http import check_url
from oidc_guard.testing import OMIT
from oidc_guard.errors import ConfigurationError


def metadata(iss, **kwargs):
    kwargs.setdefault("http_timeout", 2)
    kwargs.setdefault("allow_http", False)
    return ProviderMetadata(iss.issuer, **kwargs)


@pytest.mark.parametrize("issuer, url", [
    ("https://idp.example.com", "https://idp.example.com/.well-known/openid-configuration"),
    ("https://idp.example.com/", "https://idp.example.com/.well-known/openid-configuration"),
    ("https://idp.example.com/tenant", "https://idp.example.com/tenant/.well-known/openid-configuration"),
    ("https://idp.example.com/tenant/", "https://idp.example.com/tenant/.well-known/openid-configuration"),
])
def test_discovery_url(issuer, url):
    # Discovery section 4: a trailing "/" of the issuer is removed first.
    assert discovery_url(issuer) == url


# --- lazy ---------------------------------------------------------------------------


def test_constructing_a_validator_makes_no_request(issuer, make_validator):
    validator = make_validator(issuer)
    validator2 = make_validator(issuer, algorithms=["RS256"], jwks_cooldown=1, cache_size=0)
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}
    assert len(issuer.requests) == 0
    # First use fetches discovery and JWKS once each.
    validator.validate_access_token(issuer.mint())
    assert issuer.fetch_counts == {"discovery": 1, "jwks": 1}
    del validator2


def test_constructing_a_validator_for_an_unreachable_issuer_works():
    started = time.monotonic()
    TokenValidator("https://idp.invalid", audience="api", http_timeout=5)
    TokenValidator("http://127.0.0.1:1", audience="api")
    assert time.monotonic() - started < 0.5


def test_document_is_fetched_once_and_cached(issuer):
    meta = metadata(issuer)
    assert meta.fetch_count == 0
    doc = meta.document()
    assert doc["issuer"] == issuer.issuer
    assert meta.jwks_uri() == issuer.jwks_uri
    meta.document()
    assert issuer.fetch_counts["discovery"] == 1


def test_issuer_with_a_path(make_issuer, make_validator):
    iss = make_issuer(issuer_path="/tenant-a")
    assert iss.issuer.endswith("/tenant-a")
    claims = make_validator(iss).validate_access_token(iss.mint())
    assert claims.issuer == iss.issuer


# --- the issuer must match exactly (Discovery 4.3) ---------------------------------------


def test_issuer_mismatch_is_a_provider_error(issuer):
    issuer.discovery_overrides["issuer"] = "https://evil.example.com"
    with pytest.raises(ProviderError) as info:
        metadata(issuer).document()
    desc = info.value.description
    assert "'https://evil.example.com'" in desc
    assert repr(issuer.issuer) in desc
    assert issuer.discovery_url in desc


def test_issuer_mismatch_fails_validation_as_provider_error_and_no_keys_are_fetched(issuer, make_validator):
    issuer.discovery_overrides["issuer"] = issuer.issuer + "/other"
    validator = make_validator(issuer)
    with pytest.raises(ProviderError) as info:
        validator.validate_access_token(issuer.mint())
    assert not isinstance(info.value, InvalidToken)
    assert "the discovery document's issuer is" in info.value.description
    assert issuer.fetch_counts["jwks"] == 0  # keys from a mismatched document are never trusted


def test_trailing_slash_difference_is_a_mismatch(issuer, make_validator):
    # Configured with a slash, document without: not identical, so refused.
    validator = TokenValidator(issuer.issuer + "/", audience=issuer.audience)
    # A token carrying the configured spelling reaches discovery, which
    # names the other spelling: refused, with the hint.
    with pytest.raises(ProviderError) as info:
        validator.validate_access_token(issuer.mint(issuer=issuer.issuer + "/"))
    assert "but the configured issuer is" in info.value.description
    assert info.value.description.endswith("remove the trailing slash")
    # The provider's own tokens name the document's spelling: refused as not
    # ours (no network request for that), saying what differs.
    with pytest.raises(InvalidToken) as info:
        validator.validate_access_token(issuer.mint())
    assert "they differ only in a trailing slash" in info.value.description


def test_issuer_missing_from_document(issuer):
    issuer.discovery_overrides["issuer"] = OMIT
    with pytest.raises(ProviderError) as info:
        metadata(issuer).document()
    assert "the discovery document's issuer is None" in info.value.description
    assert "the document has no issuer string" in info.value.description


def test_hostile_issuer_value_is_shown_bounded(issuer):
    issuer.discovery_overrides["issuer"] = "https://x/" + "a" * 5000
    with pytest.raises(ProviderError) as info:
        metadata(issuer).document()
    assert len(info.value.description) < 600


# --- jwks_uri -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [OMIT, None, "", 5, ["https://idp/jwks"]])
def test_missing_or_malformed_jwks_uri(issuer, value):
    issuer.discovery_overrides["jwks_uri"] = value
    with pytest.raises(ProviderError) as info:
        metadata(issuer).document()
    assert "has no jwks_uri" in info.value.description


def test_http_jwks_uri_on_a_network_host_refused(issuer, make_validator):
    issuer.discovery_overrides["jwks_uri"] = "http://keys.example.com/jwks"
    with pytest.raises(ProviderError) as info:
        metadata(issuer).document()
    assert "plain http" in info.value.description
    # And through the validator: a provider error, never a request to that host.
    with pytest.raises(ProviderError):
        make_validator(issuer).validate_access_token(issuer.mint())


def test_http_jwks_uri_on_a_network_host_allowed_with_allow_http(issuer):
    issuer.discovery_overrides["jwks_uri"] = "http://keys.example.com/jwks"
    doc = metadata(issuer, allow_http=True).document()
    assert doc["jwks_uri"] == "http://keys.example.com/jwks"


@pytest.mark.parametrize("url", ["ftp://keys.example.com/jwks", "file:///etc/jwks.json", "keys.example.com/jwks"])
def test_jwks_uri_with_another_scheme_refused(issuer, url):
    issuer.discovery_overrides["jwks_uri"] = url
    with pytest.raises(ProviderError):
        metadata(issuer, allow_http=True).document()


def test_check_url_rules_for_jwks_uri():
    check_url("https://keys.example.com/jwks", False, "jwks_uri")
    check_url("http://127.0.0.1:5000/jwks", False, "jwks_uri")
    check_url("http://localhost:5000/jwks", False, "jwks_uri")
    check_url("http://[::1]:5000/jwks", False, "jwks_uri")
    check_url("http://keys.example.com/jwks", True, "jwks_uri")
    for url in ("http://keys.example.com/jwks", "http://10.1.2.3/jwks", "http://127.0.0.1.example.com/jwks"):
        with pytest.raises(ProviderError):
            check_url(url, False, "jwks_uri")


def test_http_issuer_on_a_network_host_is_a_configuration_error():
    with pytest.raises(ConfigurationError) as info:
        TokenValidator("http://idp.example.com", audience="api")
    assert "allow_http" in info.value.description
    TokenValidator("http://idp.example.com", audience="api", allow_http=True)  # explicit opt-in


def test_explicit_jwks_uri_skips_discovery(issuer):
    validator = TokenValidator(issuer.issuer, audience=issuer.audience, jwks_uri=issuer.jwks_uri)
    validator.validate_access_token(issuer.mint())
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 1}


def test_explicit_http_jwks_uri_on_network_host_is_a_configuration_error(issuer):
    with pytest.raises(ConfigurationError):
        TokenValidator(issuer.issuer, audience="api", jwks_uri="http://keys.example.com/jwks")


# --- bad documents --------------------------------------------------------------------------


@pytest.mark.parametrize("fault, word", [
    ({"status": 500}, "HTTP 500"),
    ({"status": 404}, "HTTP 404"),
    ({"body": "<html></html>", "content_type": "text/html"}, "expected JSON"),
    ({"body": "[]"}, "not an object"),
    ({"body": "{not json"}, "not valid JSON"),
])
def test_unusable_document_is_a_provider_error(issuer, make_validator, fault, word):
    issuer.set_fault("discovery", **fault)
    with pytest.raises(ProviderError) as info:
        make_validator(issuer).validate_access_token(issuer.mint())
    assert word in info.value.description
    assert "discovery document" in info.value.description


def test_oversized_document_refused(issuer):
    issuer.discovery_overrides["padding"] = "x" * (MAX_DISCOVERY_BYTES + 1)
    with pytest.raises(ProviderError) as info:
        metadata(issuer).document()
    assert "limit" in info.value.description


def test_slow_discovery_is_bounded_by_http_timeout(issuer, make_validator):
    issuer.set_fault("discovery", delay=5)
    validator = make_validator(issuer, http_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        validator.validate_access_token(issuer.mint())
    assert time.monotonic() - started < 1.5
    assert "timed out" in info.value.description


# --- refresh and last good document --------------------------------------------------------


class FakeTimer:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_document_refreshed_after_max_age(issuer):
    timer = FakeTimer()
    meta = metadata(issuer, max_age=600, timer=timer)
    meta.document()
    timer.now += 599
    meta.document()
    assert issuer.fetch_counts["discovery"] == 1
    timer.now += 2
    meta.document()
    assert issuer.fetch_counts["discovery"] == 2


def test_failed_refresh_keeps_the_last_good_document(issuer, caplog):
    timer = FakeTimer()
    meta = metadata(issuer, max_age=600, timer=timer)
    good = meta.document()
    issuer.set_fault("discovery", status=500)
    caplog.set_level(logging.WARNING, logger="oidc_guard.discovery")
    timer.now += 601
    assert meta.document() == good
    assert any("keeping the last good document" in r.getMessage() for r in caplog.records)
    # Not retried on every call: next attempt in about a minute.
    meta.document()
    assert issuer.fetch_counts["discovery"] == 2
    timer.now += 61
    meta.document()
    assert issuer.fetch_counts["discovery"] == 3


def test_refresh_naming_another_issuer_keeps_the_last_good_document(issuer):
    timer = FakeTimer()
    meta = metadata(issuer, max_age=600, timer=timer)
    good = meta.document()
    issuer.discovery_overrides["issuer"] = "https://evil.example.com"
    issuer.discovery_overrides["jwks_uri"] = "https://evil.example.com/jwks"
    timer.now += 601
    assert meta.document() == good
    assert meta.jwks_uri() == issuer.jwks_uri


# --- issuer down at start-up --------------------------------------------------------------


def test_issuer_down_at_startup_then_recovers(issuer, make_validator):
    token = issuer.mint()
    issuer.stop()  # connections refused from now on, same port later
    validator = make_validator(issuer, jwks_cooldown=0.2)  # retry interval min(5, 0.2)
    assert validator.keys.retry_interval == 0.2
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            validator.validate_access_token(token)
        assert not isinstance(info.value, InvalidToken)
        assert issuer.issuer in info.value.description
        assert info.value.retry_after >= 1
    issuer.start()
    time.sleep(0.25)  # past the retry interval
    claims = validator.validate_access_token(token)
    assert claims.subject == "alice"
    assert issuer.fetch_counts == {"discovery": 1, "jwks": 1}


def test_jwks_down_at_startup_then_recovers(issuer, make_validator):
    issuer.set_fault("jwks", status=503)
    validator = make_validator(issuer, jwks_cooldown=0.2)
    token = issuer.mint()
    with pytest.raises(ProviderError) as info:
        validator.validate_access_token(token)
    assert "HTTP 503" in info.value.description
    issuer.clear_faults()
    time.sleep(0.25)
    assert validator.validate_access_token(token).subject == "alice"


# --- the introspection endpoint from the RFC 8414 document ---------------------------------
#
# django-oauth-toolkit names its introspection endpoint only in its RFC 8414
# document (/.well-known/oauth-authorization-server).  The provider below is
# the loopback server: its OpenID document has no introspection_endpoint, its
# keys are a LocalIssuer's, its RFC 8414 document names the endpoint.


def serve_rfc8414_only(loopback, keys, *, path: str = "", rfc8414: object = "default") -> str:
    """Make ``loopback`` such a provider for the issuer ``loopback.base + path``
    (``rfc8414``: the RFC 8414 document to serve instead, or None for none:
    404); returns the issuer."""
    import json as _json

    issuer = loopback.base + path
    openid = {"issuer": issuer, "jwks_uri": keys.jwks_uri, "token_endpoint": issuer + "/o/token/",
              "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"]}
    loopback.json(path + "/.well-known/openid-configuration", _json.dumps(openid))
    if rfc8414 == "default":
        rfc8414 = {"issuer": issuer, "token_endpoint": issuer + "/o/token/",
                   "introspection_endpoint": issuer + "/o/introspect/",
                   "introspection_endpoint_auth_methods_supported": ["client_secret_basic"]}
    if rfc8414 is not None:
        # RFC 8414 section 3.1: inserted between the host and the issuer's path.
        body = rfc8414 if isinstance(rfc8414, (bytes, str)) else _json.dumps(rfc8414)
        loopback.json("/.well-known/oauth-authorization-server" + path, body)
    return issuer


@pytest.mark.parametrize("issuer, url", [
    ("https://as.example.com", "https://as.example.com/.well-known/oauth-authorization-server"),
    ("https://as.example.com/", "https://as.example.com/.well-known/oauth-authorization-server"),
    ("https://as.example.com/tenant", "https://as.example.com/.well-known/oauth-authorization-server/tenant"),
    ("https://as.example.com/a/b/", "https://as.example.com/.well-known/oauth-authorization-server/a/b"),
    ("http://127.0.0.1:8000/o", "http://127.0.0.1:8000/.well-known/oauth-authorization-server/o"),
])
def test_authorization_server_metadata_url(issuer, url):
    from oidc_guard.discovery import authorization_server_metadata_url

    # RFC 8414 section 3.1 (not appended to the path as OpenID Connect Discovery does)
    assert authorization_server_metadata_url(issuer) == url


def _introspecting(issuer_url, **kwargs):
    kwargs.setdefault("http_timeout", 2)
    return TokenValidator(issuer_url, audience="api://contacts", introspection_client_id="contacts-api",
                          introspection_client_secret="s3cr3t", **kwargs)


@pytest.mark.parametrize("path", ["", "/o"])
def test_introspection_endpoint_found_in_the_rfc8414_document(issuer, loopback, path, caplog):
    url = serve_rfc8414_only(loopback, issuer, path=path)
    validator = _introspecting(url)
    with caplog.at_level(logging.INFO, logger="oidc_guard"):
        validator.check()  # was: ConfigurationError "names no introspection_endpoint"
    assert validator.introspector.endpoint() == url + "/o/introspect/"
    # check() says where it came from
    said = [r.getMessage() for r in caplog.records if "RFC 8414" in r.getMessage()]
    assert said and (url + "/o/introspect/") in said[0]
    assert loopback.base + "/.well-known/oauth-authorization-server" + path in said[0]
    # fetched once, then cached with the OpenID document's lifetime
    assert loopback.counts["/.well-known/oauth-authorization-server" + path] == 1
    validator.introspector.endpoint()
    assert loopback.counts["/.well-known/oauth-authorization-server" + path] == 1


def test_the_openid_document_wins_and_the_rfc8414_one_is_not_fetched(issuer):
    validator = _introspecting(issuer.issuer)
    validator.check()
    assert validator.introspector.endpoint() == issuer.introspection_endpoint
    assert not any("oauth-authorization-server" in path for _m, path in issuer.requests)


def test_neither_document_names_an_endpoint(issuer, loopback):
    url = serve_rfc8414_only(loopback, issuer, rfc8414=None)  # 404
    with pytest.raises(ConfigurationError) as info:
        _introspecting(url).check()
    text = info.value.description
    assert "no introspection_endpoint" in text and "RFC 8414" in text and "HTTP 404" in text
    assert "pass introspection_endpoint=" in text
    # at request time: 503 (the provider's answer is missing), never a crash
    with pytest.raises(ProviderError) as at_request:
        _introspecting(url).validate_access_token("2YotnFZFEjr1zCsicMWpAA")
    assert "RFC 8414" in at_request.value.description
    # a document that names none either
    other = serve_rfc8414_only(loopback, issuer, path="/t", rfc8414={"issuer": loopback.base + "/t"})
    with pytest.raises(ConfigurationError) as none_either:
        _introspecting(other).check()
    assert "names none" in none_either.value.description


@pytest.mark.parametrize("named", ["https://evil.example", "{base}/", "{base}/other", None])
def test_rfc8414_document_of_another_issuer_is_not_used(issuer, loopback, named):
    base = loopback.base
    doc = {"introspection_endpoint": "https://evil.example/introspect"}
    if named is not None:
        doc["issuer"] = named.format(base=base)
    url = serve_rfc8414_only(loopback, issuer, rfc8414=doc)
    validator = _introspecting(url)
    with pytest.raises(ConfigurationError) as info:
        validator.check()
    assert "RFC 8414" in info.value.description and "identical" in info.value.description
    assert "not used" in info.value.description
    with pytest.raises(ProviderError):
        validator.introspector.endpoint()  # and never the other issuer's endpoint


def test_rfc8414_document_is_bounded(issuer, loopback):
    big = json_body = '{"issuer": "%s", "padding": "%s"}' % (loopback.base, "x" * (MAX_DISCOVERY_BYTES + 1))
    assert len(json_body) > MAX_DISCOVERY_BYTES
    url = serve_rfc8414_only(loopback, issuer, rfc8414=big)
    with pytest.raises(ProviderError) as info:
        _introspecting(url).check()
    assert "limit" in info.value.description

    def slow(handler):
        time.sleep(3)

    loopback.routes["/.well-known/oauth-authorization-server"] = slow
    started = time.monotonic()
    with pytest.raises(ProviderError) as timed:
        _introspecting(url, http_timeout=0.5).check()
    assert time.monotonic() - started < 2 and "timed out" in timed.value.description


@pytest.mark.parametrize("named", ["http://[::1", "https://[not-an-ip]/x", "http://h:99999999"])
def test_an_unparsable_issuer_in_the_document_is_a_clear_mismatch(issuer, make_validator, named):
    # urlsplit() raises ValueError on these: explaining the mismatch must not crash
    issuer.discovery_overrides = {"issuer": named}
    with pytest.raises(ProviderError) as info:
        metadata(issuer).document()
    assert "must be identical" in info.value.description
    with pytest.raises(ConfigurationError):
        make_validator(issuer).check()
