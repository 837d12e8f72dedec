"""Stable refusal reasons: every OIDCGuardError has ``reason``, a lowercase
code for programs, logs and metrics.

* a scan of the library's source (ast) fails when an ``InvalidToken(...)``
  is built without ``reason=``, or when a code used in the source is not in
  the error reference (docs/errors.md);
* the main refusal kinds, through the real TokenValidator / BearerMiddleware
  against a LocalIssuer, carry the documented code;
* the middleware's log line of every refusal names the code.
"""

from __future__ import annotations

import ast
import logging
import pathlib
import re
import time

import pytest
import webtest

from oidc_guard import (
    BearerMiddleware,
    ConfigurationError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    OIDCGuardError,
    ProviderError,
    TokenValidator,
)
from oidc_guard.dpop import InvalidDPoPProof, UseDPoPNonce
from oidc_guard.rules import InsufficientClaims
from oidc_guard.testing import (
    INTROSPECTION_CLIENT_ID,
    INTROSPECTION_CLIENT_SECRET,
    OMIT,
    DPoPKey,
    LocalIssuer,
    b64url_encode,
    hmac_token,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "oidc_guard"
ERRORS_PAGE = ROOT / "docs" / "errors.md"
HOST = "api.test"


# --- the source scan ----------------------------------------------------------------


def _sources():
    return sorted(p for p in PACKAGE.rglob("*.py") if "testing" not in p.relative_to(PACKAGE).parts)


def _invalid_token_calls():
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
                if name == "InvalidToken":
                    yield path, node


def test_every_invalid_token_names_its_reason():
    calls = list(_invalid_token_calls())
    assert len(calls) > 80, "the scan found too few InvalidToken(...) calls: is it looking at the package?"
    missing = [f"{path.relative_to(ROOT)}:{node.lineno}" for path, node in calls
               if not any(keyword.arg == "reason" for keyword in node.keywords)]
    assert not missing, "InvalidToken(...) without reason=: " + ", ".join(missing)


def _codes_in_source():
    """Every reason code written in the library: reason="..." keywords and
    ``reason = "..."`` class attributes of error classes."""
    import oidc_guard.cache, oidc_guard.discovery, oidc_guard.dpop, oidc_guard.rules  # noqa: F401,E401

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    error_classes = {OIDCGuardError.__name__} | {cls.__name__ for cls in subclasses(OIDCGuardError)}
    codes = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
                if name not in error_classes:
                    continue
                for keyword in node.keywords:
                    if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant) \
                            and isinstance(keyword.value.value, str):
                        codes.setdefault(keyword.value.value, f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Constant):
                        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                        if any(isinstance(t, ast.Name) and t.id == "reason" for t in targets):
                            codes.setdefault(stmt.value.value, f"{path.name}:{stmt.lineno}")
    return codes


def _documented_codes():
    # The reference table: rows "| `code` | class | status | ... |".
    text = ERRORS_PAGE.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M))


def test_every_reason_code_is_documented_and_well_formed():
    codes = _codes_in_source()
    for required in ("malformed", "algorithm", "unknown_key", "signature", "issuer", "audience", "expired",
                     "not_yet_valid", "token_type", "inactive", "binding", "dpop_proof", "nonce", "token_hash",
                     "authorized_party", "auth_time", "insufficient_scope", "invalid_request",
                     "provider_unavailable"):
        assert required in codes, f"reason {required!r} is never used"
    for code, where in codes.items():
        assert re.fullmatch(r"[a-z][a-z_]*", code), f"{code!r} ({where}) is not a lowercase code"
    undocumented = sorted(set(codes) - _documented_codes())
    assert not undocumented, f"reasons missing from docs/errors.md: {undocumented}"


def test_class_defaults_and_keyword():
    assert InsufficientScope("x").reason == "insufficient_scope"
    assert InvalidRequest("x").reason == "invalid_request"
    assert ProviderError("x").reason == "provider_unavailable"
    assert ConfigurationError("x").reason == "configuration"
    assert InsufficientClaims("x").reason == "insufficient_claims"
    assert InvalidDPoPProof("x").reason == "dpop_proof"
    assert UseDPoPNonce("x", "n").reason == "dpop_nonce"
    assert InvalidToken("x", reason="expired").reason == "expired"
    assert ProviderError("x", 5, reason="store_unavailable").reason == "store_unavailable"
    assert InsufficientScope("x", ("a",), reason="insufficient_scope").scopes == ("a",)
    # a keyword on one instance never changes the class default
    assert InvalidToken("y").reason == "invalid_token" and OIDCGuardError("z").reason == "internal"


# --- reasons through the real validator -----------------------------------------------


@pytest.fixture(scope="module")
def iss():
    with LocalIssuer(algs=("RS256",)) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def v(iss):
    """Local validation only: nothing is sent to an introspection endpoint."""
    return TokenValidator(iss.issuer, audience=iss.audience, http_timeout=2, validation_mode="local")


@pytest.fixture(scope="module")
def v_ref(iss):
    """Reference tokens too (RFC 7662 introspection at the LocalIssuer)."""
    return TokenValidator(iss.issuer, audience=iss.audience, http_timeout=2,
                          introspection_client_id=INTROSPECTION_CLIENT_ID,
                          introspection_client_secret=INTROSPECTION_CLIENT_SECRET)


def reason_of(validator, token):
    with pytest.raises(OIDCGuardError) as info:
        validator.validate_access_token(token)
    return info.value.reason


def _other_signature(iss):
    one, two = iss.mint(), iss.mint(subject="bob")
    h, p, _ = one.split(".")
    return ".".join((h, p, two.split(".")[2]))  # a real signature, of another payload


def test_reasons_of_the_main_refusals(iss, v):
    now = time.time()
    assert v.validate_access_token(iss.mint()).subject == "alice"
    assert reason_of(v, iss.mint(now=now - 7200, expires_in=600)) == "expired"
    assert reason_of(v, iss.mint(claims={"nbf": int(now) + 3600})) == "not_yet_valid"
    assert reason_of(v, iss.mint(audience="api://another")) == "audience"
    assert reason_of(v, iss.mint(audience=None)) == "audience"
    assert reason_of(v, _other_signature(iss)) == "signature"
    assert reason_of(v, iss.mint(header={"kid": "no-such-key"})) == "unknown_key"
    assert reason_of(v, iss.mint(issuer="https://evil.example")) == "issuer"
    assert reason_of(v, iss.mint(claims={"iss": OMIT})) == "issuer"
    assert reason_of(v, iss.mint(typ="dpop+jwt")) == "token_type"
    assert reason_of(v, iss.mint(claims={"exp": "tomorrow"})) == "claims"
    assert reason_of(v, hmac_token({"iss": iss.issuer, "sub": "alice"}, "secret")) == "algorithm"
    none_token = b64url_encode(b'{"alg":"none"}') + "." + iss.mint().split(".")[1] + ".c2ln"
    assert reason_of(v, none_token) == "algorithm"
    for junk in ("a.b", "a.b.c.d", "e30.e30.%%%", "x" * 20000, "", b"\xff", 42, "eyJ9.e30.c2ln"):
        assert reason_of(v, junk) == "malformed", junk


def test_inactive_and_other_introspection_reasons(iss, v_ref):
    token = iss.mint(reference=True)
    assert v_ref.validate_access_token(token).subject == "alice"
    revoked = iss.mint(reference=True)
    iss.revoke(revoked)
    assert reason_of(v_ref, revoked) == "inactive"
    # an active answer for another API; the cached refusal keeps its reason
    foreign = iss.mint(reference=True, audience="api://another")
    assert reason_of(v_ref, foreign) == "audience"
    assert reason_of(v_ref, foreign) == "audience"
    assert reason_of(v_ref, revoked) == "inactive"


def test_id_token_reasons(iss, v):
    def id_reason(token, **kwargs):
        with pytest.raises(InvalidToken) as info:
            v.validate_id_token(token, client_id="spa", **kwargs)
        return info.value.reason

    assert id_reason(iss.mint_id_token(client_id="spa", nonce="n-1"), nonce="n-2") == "nonce"
    assert id_reason(iss.mint_id_token(client_id="other")) == "audience"
    assert id_reason(iss.mint_id_token(client_id="spa", extra={"azp": "other"})) == "authorized_party"
    assert id_reason(iss.mint_id_token(client_id="spa"), access_token="an-access-token") == "token_hash"


def test_provider_outage_reason(iss):
    v = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=2)
    iss.set_fault("discovery", status=500)
    try:
        assert reason_of(v, iss.mint()) == "provider_unavailable"
    finally:
        iss.clear_faults()


# --- reasons and log lines through the middleware --------------------------------------


def _app(environ, start_response):
    error = environ.get("oidc_guard.error")
    body = (error.reason if error is not None else "ok").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture(scope="module")
def api(v):
    return webtest.TestApp(BearerMiddleware(_app, v, required=False), extra_environ={"HTTP_HOST": HOST})


def test_binding_and_dpop_proof_reasons_through_the_middleware(api, iss, caplog):
    key = DPoPKey("ES256")
    url = f"http://{HOST}/r"
    bound = iss.mint(claims={"cnf": key.cnf})
    caplog.set_level(logging.INFO, logger="oidc_guard.wsgi")
    # a DPoP-bound token sent as a bearer token (RFC 9449 section 7.2)
    assert api.get("/r", headers={"Authorization": "Bearer " + bound}).text == "binding"
    # ... with the DPoP scheme and a proof of another key
    other = DPoPKey("ES256")
    r = api.get("/r", headers={"Authorization": "DPoP " + bound, "DPoP": other.proof("GET", url, bound)})
    assert r.text == "binding"
    # ... with no proof, or a broken one
    assert api.get("/r", headers={"Authorization": "DPoP " + bound}).text == "dpop_proof"
    assert api.get("/r", headers={"Authorization": "DPoP " + bound, "DPoP": "not-a-proof"}).text == "dpop_proof"
    assert api.get("/r", headers={"Authorization": "DPoP " + bound, "DPoP": key.proof("GET", url, bound)}).text == "ok"
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "oidc_guard.wsgi"]
    assert sum("reason=binding" in line for line in lines) == 2, lines
    assert sum("reason=dpop_proof" in line for line in lines) == 2, lines


def test_every_refusal_log_line_names_its_reason(api, iss, caplog):
    caplog.set_level(logging.INFO, logger="oidc_guard.wsgi")
    cases = {
        "expired": {"Authorization": "Bearer " + iss.mint(now=time.time() - 7200, expires_in=60)},
        "malformed": {"Authorization": "Bearer abc"},
        "audience": {"Authorization": "Bearer " + iss.mint(audience="api://another")},
        "invalid_request": {"Authorization": "Bearer a b"},
    }
    for reason, headers in cases.items():
        caplog.clear()
        r = api.get("/r", headers=headers, expect_errors=True)
        assert r.status_int == 400 if reason == "invalid_request" else r.text == reason
        lines = [rec.getMessage() for rec in caplog.records if rec.name == "oidc_guard.wsgi"]
        assert len(lines) == 1 and f" reason={reason}: " in lines[0], lines


def test_reason_comes_before_the_attacker_controlled_description(api, iss, caplog):
    # The iss value is the attacker's; the code is written before it, so a
    # "reason=" inside the value cannot pass for the line's reason.
    caplog.set_level(logging.INFO, logger="oidc_guard.wsgi")
    token = iss.mint(issuer="https://x.example/ reason=expired: ")
    assert api.get("/r", headers={"Authorization": "Bearer " + token}).text == "issuer"
    line = [rec.getMessage() for rec in caplog.records if rec.name == "oidc_guard.wsgi"][-1]
    assert re.search(r"reason=([a-z_]+)", line).group(1) == "issuer", line
