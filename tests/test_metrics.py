"""oidc_guard.metrics: OpenTelemetry instruments, read back with the SDK's
InMemoryMetricReader, while real requests go through BearerMiddleware to a
LocalIssuer (discovery, JWKS, introspection, UserInfo on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import webtest

pytest.importorskip("opentelemetry.sdk.metrics")

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402

from oidc_guard import BearerMiddleware, TokenValidator, metrics  # noqa: E402
from oidc_guard.testing import (  # noqa: E402
    INTROSPECTION_CLIENT_ID,
    INTROSPECTION_CLIENT_SECRET,
    DPoPKey,
    LocalIssuer,
)

HOST = "api.test"


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@pytest.fixture
def reader():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics.enable(provider)
    try:
        yield reader
    finally:
        metrics.disable()
        provider.shutdown()


def points(reader):
    """{instrument name: [(attributes, value or histogram point)]}."""
    out = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.name == "oidc_guard"
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    value = point.value if hasattr(point, "value") else point
                    out.setdefault(metric.name, []).append((dict(point.attributes), value))
    return out


def counts(reader, name):
    return {tuple(sorted(attrs.items())): value for attrs, value in points(reader).get(name, [])}


@pytest.fixture
def iss():
    with LocalIssuer(algs=("RS256",)) as issuer:
        yield issuer


def middleware(validator, **kwargs):
    kwargs.setdefault("required", True)
    return webtest.TestApp(BearerMiddleware(_app, validator, **kwargs), extra_environ={"HTTP_HOST": HOST})


def test_decisions_accepted_refused_unavailable(reader, iss):
    v = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=1, validation_mode="local")
    api = middleware(v)
    api.get("/", headers={"Authorization": "Bearer " + iss.mint()})
    api.get("/", headers={"Authorization": "Bearer " + iss.mint()})
    api.get("/", headers={"Authorization": "Bearer " + iss.mint(expires_in=-3600)}, status=401)
    api.get("/", headers={"Authorization": "Bearer " + iss.mint(audience="api://another")}, status=401)
    api.get("/", headers={"Authorization": "Bearer not-a-jwt"}, status=401)
    api.get("/", status=401)  # no token: no validation, no decision
    # an unknown key while the JWKS endpoint is down: 503
    fresh = iss.mint(kid=iss.rotate())
    iss.set_fault("jwks", status=500)
    api.get("/", headers={"Authorization": "Bearer " + fresh}, status=503)
    iss.clear_faults()

    assert counts(reader, "oidc_guard.decisions") == {
        (("outcome", "accepted"),): 2,
        (("outcome", "refused"), ("reason", "expired")): 1,
        (("outcome", "refused"), ("reason", "audience")): 1,
        (("outcome", "refused"), ("reason", "malformed")): 1,
        (("outcome", "unavailable"), ("reason", "provider_unavailable")): 1,
    }


def test_one_decision_per_request_with_a_binding_check(reader, iss):
    # A token that validates but whose DPoP proof does not: one refused
    # decision (dpop_proof), not an accepted one as well.
    v = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=1, validation_mode="local")
    api = middleware(v)
    key = DPoPKey("ES256")
    bound = iss.mint(claims={"cnf": key.cnf})
    url = f"http://{HOST}/"
    api.get("/", headers={"Authorization": "DPoP " + bound, "DPoP": key.proof("GET", url, bound)})
    api.get("/", headers={"Authorization": "DPoP " + bound, "DPoP": "garbage"}, status=401)
    api.get("/", headers={"Authorization": "Bearer " + bound}, status=401)
    assert counts(reader, "oidc_guard.decisions") == {
        (("outcome", "accepted"),): 1,
        (("outcome", "refused"), ("reason", "dpop_proof")): 1,
        (("outcome", "refused"), ("reason", "binding")): 1,
    }


def test_provider_requests_ok_and_error_with_durations(reader, iss):
    v = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=1,
                       introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret=INTROSPECTION_CLIENT_SECRET)
    token = iss.mint(scope="openid contacts")
    v.validate_access_token(token)                      # discovery + JWKS
    v.validate_access_token(iss.mint(reference=True))   # introspection
    v.userinfo(token)                                   # UserInfo
    iss.set_fault("introspection", status=502)
    with pytest.raises(Exception):
        v.validate_access_token(iss.mint(reference=True))
    iss.set_fault("userinfo", delay=0.2)
    v.userinfo(iss.mint(scope="openid", subject="alice"))
    iss.clear_faults()

    requests = counts(reader, "oidc_guard.provider.requests")
    assert requests == {
        (("kind", "discovery"), ("outcome", "ok")): 1,
        (("kind", "jwks"), ("outcome", "ok")): 1,
        (("kind", "introspection"), ("outcome", "ok")): 1,
        (("kind", "introspection"), ("outcome", "error")): 1,
        (("kind", "userinfo"), ("outcome", "ok")): 2,
    }
    durations = {attrs["kind"]: point for attrs, point in points(reader)["oidc_guard.provider.duration"]}
    assert set(durations) == {"discovery", "jwks", "introspection", "userinfo"}
    assert durations["introspection"].count == 2 and durations["userinfo"].count == 2
    # seconds, not milliseconds: the delayed UserInfo call took at least 0.2 s, all of them far less than 10 s
    assert 0.2 <= durations["userinfo"].max < 10
    assert all(0 < p.sum < 10 for p in durations.values())
    # buckets made for seconds (the SDK's default ones are for milliseconds)
    assert tuple(durations["jwks"].explicit_bounds)[:3] == (0.005, 0.01, 0.025)


def test_provider_unreachable_is_an_error(reader, iss):
    v = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=0.5, validation_mode="local")
    token = iss.mint()
    iss.stop()
    with pytest.raises(Exception):
        v.validate_access_token(token)
    assert counts(reader, "oidc_guard.provider.requests") == {(("kind", "discovery"), ("outcome", "error")): 1}


def test_no_secret_or_identity_in_any_attribute(reader, iss):
    v = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=1,
                       introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret=INTROSPECTION_CLIENT_SECRET)
    api = middleware(v)
    token = iss.mint(subject="alice-secret-subject", client_id="client-xyz")
    api.get("/", headers={"Authorization": "Bearer " + token})
    api.get("/", headers={"Authorization": "Bearer " + iss.mint(reference=True, subject="bob-subject")})
    api.get("/", headers={"Authorization": "Bearer " + token[:-6] + "AAAAAA"}, status=401)
    seen = json.dumps({name: [attrs for attrs, _ in values] for name, values in points(reader).items()})
    for secret in (token, token[:40], "alice-secret-subject", "bob-subject", "client-xyz",
                   INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET, iss.issuer, "127.0.0.1"):
        assert secret not in seen
    allowed = {"outcome", "reason", "kind"}
    for values in points(reader).values():
        for attrs, _ in values:
            assert set(attrs) <= allowed


def test_disabled_records_nothing_and_never_imports_opentelemetry(iss):
    # In this process: a provider that was never enabled sees nothing.
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics.enable(provider)
    metrics.disable()
    v = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=1, validation_mode="local")
    api = middleware(v)
    api.get("/", headers={"Authorization": "Bearer " + iss.mint()})
    api.get("/", headers={"Authorization": "Bearer x.y.z"}, status=401)
    assert points(reader) == {}
    provider.shutdown()

    # In a fresh interpreter: the whole request path (middleware, discovery,
    # JWKS, validation) runs without opentelemetry ever being imported.
    code = f"""
import sys, webtest
from oidc_guard import BearerMiddleware, TokenValidator, metrics
from oidc_guard.testing import LocalIssuer
def app(environ, start_response):
    start_response("200 OK", [])
    return [b""]
with LocalIssuer() as iss:
    v = TokenValidator(iss.issuer, audience=iss.audience, validation_mode="local")
    api = webtest.TestApp(BearerMiddleware(app, v, required=True))
    api.get("/", headers={{"Authorization": "Bearer " + iss.mint()}})
    api.get("/", headers={{"Authorization": "Bearer x.y.z"}}, status=401)
assert metrics.active is None
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
assert not loaded, loaded
print("clean")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "clean", result.stderr


def test_enable_without_opentelemetry_says_what_to_install():
    code = """
import sys
sys.modules["opentelemetry"] = None  # as if not installed
from oidc_guard import ConfigurationError, metrics
try:
    metrics.enable()
except ConfigurationError as exc:
    assert "oidc_guard[metrics]" in str(exc), exc
    print("refused")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "refused", result.stderr


def test_enable_uses_the_global_meter_provider_by_default():
    code = """
from opentelemetry import metrics as otel
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from oidc_guard import InvalidToken, metrics
reader = InMemoryMetricReader()
otel.set_meter_provider(MeterProvider(metric_readers=[reader]))
metrics.enable()
metrics.record_decision(InvalidToken("x", reason="expired"))
names = [m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
assert names == ["oidc_guard.decisions"], names
print("global")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "global", result.stderr
