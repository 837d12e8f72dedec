"""oidc_guard.mcp.TokenVerifier: the MCP Python SDK's token verifier on a
real TokenValidator and the loopback LocalIssuer.  A valid token gives the
SDK's own AccessToken; every other answer is None with its reason logged,
and nothing is ever raised into the SDK."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest

pytest.importorskip("mcp", reason="the MCP Python SDK (extra 'mcp', Python 3.10+)")

from mcp.server.auth.provider import AccessToken  # noqa: E402

from oidc_guard import ConfigurationError, MultiIssuerValidator, TokenValidator  # noqa: E402
from oidc_guard.mcp import TokenVerifier  # noqa: E402
from oidc_guard.testing import DPoPKey  # noqa: E402

RESOURCE = "https://mcp.example.test/mcp"
OTHER = "api://contacts"


def verify(verifier, token):
    return asyncio.run(verifier.verify_token(token))


def reasons(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "oidc_guard.mcp"]


@pytest.fixture
def verifier(issuer):
    return TokenVerifier(TokenValidator(issuer.issuer, audience=RESOURCE, http_timeout=2), resource=RESOURCE)


def test_a_valid_token_gives_the_sdks_access_token(issuer, verifier):
    token = issuer.mint(audience=RESOURCE, scope="contacts wte", client_id="claude")
    access = verify(verifier, token)
    assert isinstance(access, AccessToken)
    assert access.token == token
    assert access.client_id == "claude"
    assert access.scopes == ["contacts", "wte"]
    assert access.resource == RESOURCE
    assert access.subject == "alice"
    assert access.claims["iss"] == issuer.issuer
    exp = access.claims["exp"]
    assert access.expires_at == exp and exp > time.time()


def test_a_token_for_another_resource_is_refused_even_when_the_validator_accepts_it(issuer, caplog):
    # The validator serves two resources; the MCP server is one of them and
    # takes only tokens issued for it (RFC 8707, the MCP authorization spec).
    validator = TokenValidator(issuer.issuer, audience=[RESOURCE, OTHER])
    verifier = TokenVerifier(validator, resource=RESOURCE)
    caplog.set_level(logging.INFO, logger="oidc_guard")
    assert validator.validate_access_token(issuer.mint(audience=OTHER)).audiences == (OTHER,)
    assert verify(verifier, issuer.mint(audience=OTHER)) is None
    [line] = reasons(caplog)
    assert "reason=audience" in line and OTHER in line and RESOURCE in line  # names both
    # and one for both audiences is this resource's too
    assert verify(verifier, issuer.mint(audience=[OTHER, RESOURCE])).resource == RESOURCE


@pytest.mark.parametrize("kind, reason", [
    ("expired", "expired"),
    ("audience", "audience"),
    ("signature", "signature"),
    ("issuer", "issuer"),
    ("garbage", "malformed"),
    ("spaces", "invalid_request"),
    ("empty", "malformed"),
    ("nbf", "not_yet_valid"),
])
def test_an_invalid_token_is_none_with_its_reason_logged(issuer, verifier, caplog, kind, reason):
    caplog.set_level(logging.INFO, logger="oidc_guard")
    good = issuer.mint(audience=RESOURCE)
    token = {
        "expired": lambda: issuer.mint(audience=RESOURCE, expires_in=-600),
        "audience": lambda: issuer.mint(audience=OTHER),
        "signature": lambda: good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "issuer": lambda: issuer.mint(audience=RESOURCE, issuer="https://evil.example"),
        "garbage": lambda: "not-a-token",
        "spaces": lambda: good + " " + good,
        "empty": lambda: "",
        "nbf": lambda: issuer.mint({"nbf": int(time.time()) + 3600}, audience=RESOURCE),
    }[kind]()
    assert verify(verifier, token) is None
    lines = reasons(caplog)
    assert len(lines) == 1 and f"reason={reason}" in lines[0], lines
    assert not token or token not in lines[0]  # never the token itself


def test_a_sender_constrained_token_is_refused(issuer, verifier, caplog):
    # The SDK takes Bearer only and checks no DPoP proof or certificate: a
    # token bound to a key (RFC 9449) or a certificate (RFC 8705) must not
    # pass as a bearer token.
    caplog.set_level(logging.INFO, logger="oidc_guard")
    dpop = issuer.mint({"cnf": DPoPKey().cnf}, audience=RESOURCE)
    mtls = issuer.mint({"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}, audience=RESOURCE)
    broken = issuer.mint({"cnf": "not an object"}, audience=RESOURCE)
    for token in (dpop, mtls, broken):
        assert verify(verifier, token) is None
    lines = reasons(caplog)
    assert len(lines) == 3 and all("reason=binding" in line for line in lines), lines


def test_an_outage_is_none_never_an_exception_and_says_what_to_do(issuer, verifier, caplog):
    caplog.set_level(logging.INFO, logger="oidc_guard")
    token = issuer.mint(audience=RESOURCE)
    issuer.stop()
    assert verify(verifier, token) is None
    assert verify(verifier, issuer.mint(audience=RESOURCE)) is None
    lines = reasons(caplog)
    assert sum("reason=provider_unavailable" in line for line in lines) == 2, lines
    hints = [line for line in lines if "ProviderOutageMiddleware" in line]
    assert len(hints) == 1  # once, not per request


def test_an_unexpected_validator_error_is_none_not_raised(caplog):
    class Broken:
        def validate_access_token(self, token):
            raise RuntimeError("bug")

    caplog.set_level(logging.INFO, logger="oidc_guard")
    assert verify(TokenVerifier(Broken(), resource=RESOURCE), "abc") is None
    [line] = reasons(caplog)
    assert "reason=internal" in line


def test_the_validator_must_accept_the_resource_as_audience(issuer):
    with pytest.raises(ConfigurationError) as refused:
        TokenVerifier(TokenValidator(issuer.issuer, audience=OTHER), resource=RESOURCE)
    assert RESOURCE in str(refused.value) and OTHER in str(refused.value)
    # a MultiIssuerValidator: every member
    multi = MultiIssuerValidator([TokenValidator(issuer.issuer, audience=RESOURCE),
                                  TokenValidator("https://other.example", audience=OTHER)])
    with pytest.raises(ConfigurationError) as refused:
        TokenVerifier(multi, resource=RESOURCE)
    assert "https://other.example" in str(refused.value)
    # without its own audience check, the verifier's check is the one
    unchecked = TokenVerifier(TokenValidator(issuer.issuer, audience=None, verify_audience=False),
                              resource=RESOURCE)
    assert verify(unchecked, issuer.mint(audience=OTHER)) is None
    assert verify(unchecked, issuer.mint(audience=RESOURCE)).resource == RESOURCE


@pytest.mark.parametrize("resource", ["mcp.example/mcp", "https://mcp.example/mcp#x", "urn:mcp", "", 42,
                                      "https://mcp.example/m cp"])
def test_a_resource_that_is_not_an_absolute_url_is_refused(issuer, resource):
    with pytest.raises(ConfigurationError):
        TokenVerifier(TokenValidator(issuer.issuer, audience=RESOURCE), resource=resource)


def test_something_that_is_not_a_validator_is_refused():
    with pytest.raises(ConfigurationError):
        TokenVerifier("https://idp.example", resource=RESOURCE)


def test_without_resource_the_audience_is_the_validators(issuer):
    verifier = TokenVerifier(TokenValidator(issuer.issuer, audience=[OTHER, RESOURCE]))
    access = verify(verifier, issuer.mint(audience=["https://unrelated.example", RESOURCE]))
    assert access.resource == RESOURCE  # the audience the validator accepted
    assert verify(verifier, issuer.mint(audience="https://unrelated.example")) is None


def test_validation_runs_off_the_loop_and_a_cached_token_on_it(issuer, verifier, monkeypatch):
    seen = []
    real_connect = socket.socket.connect

    def connect(self, address):
        seen.append(threading.current_thread())
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    token = issuer.mint(audience=RESOURCE)

    async def run():
        first = await verifier.verify_token(token)
        before = len(seen)
        second = await verifier.verify_token(token)
        return threading.current_thread(), first, second, before

    loop_thread, first, second, before = asyncio.run(run())
    assert first is not None and second is not None
    assert seen and all(thread is not loop_thread for thread in seen)  # discovery and JWKS: a worker
    assert len(seen) == before  # the second answer came from the cache


def test_a_cached_token_is_answered_while_another_waits_for_a_slow_jwks(issuer):
    validator = TokenValidator(issuer.issuer, audience=RESOURCE, jwks_cooldown=0)
    verifier = TokenVerifier(validator, resource=RESOURCE)
    cached = issuer.mint(audience=RESOURCE)
    validator.validate_access_token(cached)
    issuer.add_key("RS256", kid="rotated")
    fresh = issuer.mint(audience=RESOURCE, kid="rotated")
    issuer.set_fault("jwks", delay=1.5)

    async def run():
        slow = asyncio.ensure_future(verifier.verify_token(fresh))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        quick = await verifier.verify_token(cached)
        took = time.monotonic() - started
        pending = not slow.done()
        return quick, took, pending, await slow

    quick, took, pending, slow = asyncio.run(run())
    assert quick is not None and took < 0.5 and pending
    assert slow is not None and slow.resource == RESOURCE


def test_each_verification_is_one_decision_in_the_metrics(issuer):
    pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from oidc_guard import metrics

    validator = TokenValidator(issuer.issuer, audience=[RESOURCE, OTHER], http_timeout=1)
    verifier = TokenVerifier(validator, resource=RESOURCE)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics.enable(provider)
    try:
        verify(verifier, issuer.mint(audience=RESOURCE))
        verify(verifier, issuer.mint(audience=OTHER))  # the validator's yes, the resource's no
        verify(verifier, issuer.mint(audience=RESOURCE, expires_in=-600))
        issuer.stop()
        verify(verifier, issuer.mint(audience=RESOURCE, kid=issuer.rotate()))
        data = reader.get_metrics_data()
    finally:
        metrics.disable()
        provider.shutdown()
    seen = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == "oidc_guard.decisions":
                    for point in metric.data.data_points:
                        seen[tuple(sorted(point.attributes.items()))] = point.value
    assert seen == {
        (("outcome", "accepted"),): 1,
        (("outcome", "refused"), ("reason", "audience")): 1,
        (("outcome", "refused"), ("reason", "expired")): 1,
        (("outcome", "unavailable"), ("reason", "provider_unavailable")): 1,
    }
