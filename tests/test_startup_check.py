"""TokenValidator.check() (docs/deployment.md, "Starting while the provider is down") and the Flask
switch OIDC_GUARD_CHECK_ON_START that runs it in init_app.

A mistyped issuer must show when the application starts, in words that say
what was configured, what the provider's document says, and what to change;
not as a 503 on every request.
"""

from __future__ import annotations

import socket

import pytest
from flask import Flask

from oidc_guard import ProviderError, TokenValidator
from oidc_guard.errors import ConfigurationError
from oidc_guard.flask import OIDCGuard
from oidc_guard.testing import LocalIssuer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_check_passes_and_fetches_discovery_and_jwks_now(issuer):
    issuer.reset_counts()
    validator = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2)
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}  # construction does no I/O
    assert validator.check() is None
    assert issuer.fetch_counts["discovery"] == 1 and issuer.fetch_counts["jwks"] == 1
    # the keys it fetched are the ones validation then uses: no second fetch
    validator.validate_access_token(issuer.mint())
    assert issuer.fetch_counts["jwks"] == 1


def test_check_fetches_again_even_when_keys_are_cached(issuer):
    validator = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2)
    validator.validate_access_token(issuer.mint())
    issuer.reset_counts()
    validator.check()
    assert issuer.fetch_counts["discovery"] == 1 and issuer.fetch_counts["jwks"] == 1


def test_trailing_slash(issuer):
    validator = TokenValidator(issuer.issuer + "/", audience=issuer.audience, http_timeout=2)
    with pytest.raises(ConfigurationError) as info:
        validator.check()
    assert info.value.description.startswith(
        f"the discovery document's issuer is {issuer.issuer!r} but the configured issuer is {issuer.issuer + '/'!r}")
    assert info.value.description.endswith(": remove the trailing slash")


def test_missing_trailing_slash(issuer):
    issuer.discovery_overrides["issuer"] = issuer.issuer + "/"
    try:
        with pytest.raises(ConfigurationError) as info:
            TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2).check()
    finally:
        issuer.discovery_overrides.clear()
    assert info.value.description.endswith(": add the trailing slash")


def test_localhost_instead_of_127_0_0_1(issuer):
    configured = issuer.issuer.replace("127.0.0.1", "localhost")
    with pytest.raises(ConfigurationError) as info:
        TokenValidator(configured, audience=issuer.audience, http_timeout=2).check()
    desc = info.value.description
    assert repr(configured) in desc and repr(issuer.issuer) in desc
    assert "the host ('localhost' vs '127.0.0.1'" in desc


def test_wrong_port_nothing_listening():
    port = _free_port()
    validator = TokenValidator(f"http://127.0.0.1:{port}", audience="api://x", http_timeout=2)
    with pytest.raises(ProviderError) as info:
        validator.check()
    desc = info.value.description
    assert f"127.0.0.1:{port}/.well-known/openid-configuration" in desc
    assert "scheme, host and port" in desc and "provider up" in desc


def test_wrong_port_behind_a_proxy(issuer):
    """The configured port reaches the provider (through a proxy, say) but
    the provider names itself with another port: the message says so."""
    public = f"http://127.0.0.1:{issuer.port + 1}"
    issuer.discovery_overrides["issuer"] = public
    try:
        with pytest.raises(ConfigurationError) as info:
            TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2).check()
    finally:
        issuer.discovery_overrides.clear()
    assert f"they differ in the port ({issuer.port} vs {issuer.port + 1})" in info.value.description


def test_wrong_path_is_a_provider_error_with_the_url(issuer):
    with pytest.raises(ProviderError) as info:
        TokenValidator(issuer.issuer + "/tenant", audience=issuer.audience, http_timeout=2).check()
    desc = info.value.description
    assert f"{issuer.issuer}/tenant/.well-known/openid-configuration: HTTP 404" in desc
    assert "is the issuer" in desc


@pytest.mark.parametrize("suffix", ["/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                                    "/.well-known"])
def test_discovery_url_given_as_the_issuer(issuer, suffix):
    issuer.reset_counts()
    with pytest.raises(ConfigurationError) as info:
        TokenValidator(issuer.issuer + suffix, audience=issuer.audience, http_timeout=2).check()
    desc = info.value.description
    assert desc.startswith("the issuer looks like a discovery URL")
    assert f"probably {issuer.issuer!r}" in desc
    assert issuer.fetch_counts["discovery"] == 0


def test_jwks_failure_is_provider_error(issuer):
    validator = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2)
    issuer.set_fault("jwks", status=500)
    try:
        with pytest.raises(ProviderError) as info:
            validator.check()
    finally:
        issuer.clear_faults()
    assert "HTTP 500" in info.value.description and "JWKS" in info.value.description
    # and once the provider is fixed, check() passes (no cooldown in the way)
    assert validator.check() is None


def test_jwks_failure_after_keys_were_known_still_raises(issuer):
    validator = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2)
    validator.check()
    issuer.set_fault("jwks", status=502)
    try:
        with pytest.raises(ProviderError, match="HTTP 502"):
            validator.check()
    finally:
        issuer.clear_faults()


def test_no_key_fits_the_allowed_algorithms():
    with LocalIssuer(algs=("RS256",)) as iss:
        validator = TokenValidator(iss.issuer, audience=iss.audience, algorithms=["ES256"], http_timeout=2)
        with pytest.raises(ConfigurationError) as info:
            validator.check()
    assert "['ES256']" in info.value.description and "RSA" in info.value.description


def test_explicit_jwks_uri_does_not_need_discovery(issuer):
    issuer.reset_counts()
    validator = TokenValidator(issuer.issuer, audience=issuer.audience, jwks_uri=issuer.jwks_uri, http_timeout=2)
    validator.check()
    assert issuer.fetch_counts["discovery"] == 0 and issuer.fetch_counts["jwks"] == 1


def test_check_extra_hook_gets_the_document(issuer):
    seen = []

    class Extended(TokenValidator):
        def _check_extra(self, document):
            seen.append(document)
            raise ConfigurationError("introspection endpoint missing")

    with pytest.raises(ConfigurationError, match="introspection endpoint missing"):
        Extended(issuer.issuer, audience=issuer.audience, http_timeout=2).check()
    assert seen and seen[0]["issuer"] == issuer.issuer


# --- Flask: OIDC_GUARD_CHECK_ON_START ----------------------------------------------------


def _app(issuer_url, **config):
    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER=issuer_url, OIDC_GUARD_AUDIENCE="api://contacts",
                      OIDC_GUARD_HTTP_TIMEOUT=2, **config)
    return app


def test_flask_default_starts_while_the_provider_is_down():
    port = _free_port()
    app = _app(f"http://127.0.0.1:{port}")
    OIDCGuard(app)  # no I/O, no error: the app starts
    assert "oidc_guard" in app.extensions


def test_flask_check_on_start_refuses_a_wrong_issuer(issuer):
    app = _app(issuer.issuer + "/", OIDC_GUARD_CHECK_ON_START="true")
    with pytest.raises(ConfigurationError, match="remove the trailing slash"):
        OIDCGuard(app)
    assert "oidc_guard" not in app.extensions


def test_flask_check_on_start_keyword_and_provider_down():
    port = _free_port()
    with pytest.raises(ProviderError):
        OIDCGuard(_app(f"http://127.0.0.1:{port}"), check_on_start=True)


def test_flask_check_on_start_passes(issuer):
    issuer.reset_counts()
    app = _app(issuer.issuer, OIDC_GUARD_CHECK_ON_START=True)
    OIDCGuard(app)
    assert issuer.fetch_counts["discovery"] == 1 and issuer.fetch_counts["jwks"] == 1


def test_flask_check_on_start_is_read_strictly(issuer):
    with pytest.raises(ConfigurationError, match="OIDC_GUARD_CHECK_ON_START"):
        OIDCGuard(_app(issuer.issuer, OIDC_GUARD_CHECK_ON_START="sometimes"))
