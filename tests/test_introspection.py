"""Reference tokens: RFC 7662 introspection through TokenValidator.

The provider is a LocalIssuer (discovery + JWKS) whose discovery document
names an introspection endpoint served by a programmable loopback server
(``Endpoint`` below): it parses the real form and Authorization header,
counts calls and the calls in flight at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from typing import Any, Dict, Optional
from urllib.parse import parse_qs, unquote_plus

import pytest

from oidc_guard import InvalidToken, ProviderError, TokenValidator
from oidc_guard.errors import ConfigurationError

CLIENT_ID = "contacts api:1"          # a space and a colon: RFC 6749 2.3.1 encoding matters
CLIENT_SECRET = "s&cr:t+/=ü-Secret42"


class Endpoint:
    """An RFC 7662 endpoint on a LoopbackServer route."""

    def __init__(self, loopback, path="/introspect", client_id=CLIENT_ID, secret=CLIENT_SECRET):
        self.loopback = loopback
        self.path = path
        self.url = loopback.url(path)
        self.client_id = client_id
        self.secret = secret
        self.tokens: Dict[str, Dict[str, Any]] = {}
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.status: Optional[int] = None
        self.raw: Optional[bytes] = None
        self.content_type = "application/json"
        self.forms = []
        self.auth_headers = []
        self._lock = threading.Lock()
        loopback.routes[path] = self.handle

    def _authenticated(self, handler, form) -> bool:
        header = handler.headers.get("Authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme != "Basic":
                return False
            ident, _, secret = base64.b64decode(value).decode("utf-8").partition(":")
            return unquote_plus(ident) == self.client_id and unquote_plus(secret) == self.secret
        return form.get("client_id") == self.client_id and form.get("client_secret") == self.secret

    def handle(self, handler) -> None:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            form = {k: v[0] for k, v in parse_qs(handler.body.decode("ascii"), keep_blank_values=True).items()}
            with self._lock:
                self.forms.append(form)
                self.auth_headers.append(handler.headers.get("Authorization"))
            if self.status is not None:
                status, body = self.status, (self.raw if self.raw is not None else b'{"error":"x"}')
            elif handler.command != "POST" or not self._authenticated(handler, form):
                status, body = 401, b'{"error":"invalid_client"}'
            elif self.raw is not None:
                status, body = 200, self.raw
            else:
                doc = self.tokens.get(form.get("token", ""), {"active": False})
                status, body = 200, json.dumps(doc).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", self.content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def op(make_issuer, loopback):
    iss = make_issuer(algs=("RS256",))
    ep = Endpoint(loopback)
    iss.discovery_overrides["introspection_endpoint"] = ep.url
    iss.endpoint = ep
    return iss


def active(op_, **extra):
    doc = {"active": True, "iss": op_.issuer, "aud": op_.audience, "client_id": "wte",
           "scope": "contacts read", "exp": int(time.time()) + 3600}
    doc.update(extra)
    return doc


@pytest.fixture
def make_v(op):
    def make(**kwargs) -> TokenValidator:
        kwargs.setdefault("audience", op.audience)
        kwargs.setdefault("http_timeout", 2)
        kwargs.setdefault("introspection_client_id", CLIENT_ID)
        kwargs.setdefault("introspection_client_secret", CLIENT_SECRET)
        return TokenValidator(op.issuer, **kwargs)
    return make


# --- request (RFC 7662 2.1, RFC 6749 2.3.1) ---------------------------------

def test_request_is_a_form_post_with_basic_auth_form_encoded_first(op, make_v):
    op.endpoint.tokens["ref-1"] = active(op)
    claims = make_v().validate_access_token("ref-1")
    assert claims.client_id == "wte"
    form = op.endpoint.forms[-1]
    assert form == {"token": "ref-1", "token_type_hint": "access_token"}
    auth = op.endpoint.auth_headers[-1]
    decoded = base64.b64decode(auth.split(" ", 1)[1]).decode("utf-8")
    # RFC 6749 2.3.1: each part form-urlencoded before joining with ":".
    assert decoded == "contacts+api%3A1:s%26cr%3At%2B%2F%3D%C3%BC-Secret42"


def test_client_secret_post(op, make_v):
    op.endpoint.tokens["ref-1"] = active(op)
    make_v(introspection_auth_method="client_secret_post").validate_access_token("ref-1")
    assert op.endpoint.auth_headers[-1] is None
    assert op.endpoint.forms[-1]["client_secret"] == CLIENT_SECRET


def test_explicit_endpoint_needs_no_discovery(op, make_v, make_loopback):
    other = make_loopback()
    ep = Endpoint(other)
    ep.tokens["ref-1"] = active(op)
    v = make_v(introspection_endpoint=ep.url)
    assert v.validate_access_token("ref-1").client_id == "wte"
    assert op.fetch_counts["discovery"] == 0 and ep.calls == 1


# --- response rules (RFC 7662 2.2) ------------------------------------------

def test_active_gives_claims_with_scopes_string_or_array(op, make_v):
    op.endpoint.tokens["s"] = active(op, sub="alice", cnf={"jkt": "abc"})
    op.endpoint.tokens["a"] = active(op, scope=["contacts", "write"])
    v = make_v()
    c = v.validate_access_token("s")
    assert c.scopes == {"contacts", "read"} and c.subject == "alice" and c.client_id == "wte"
    assert c["cnf"] == {"jkt": "abc"} and "active" not in c
    assert c.expires_at is not None and c.issuer == op.issuer
    assert v.validate_access_token("a").scopes == {"contacts", "write"}


@pytest.mark.parametrize("doc, words", [
    ({"active": False}, "not active"),
    ({"active": "true"}, "JSON value true"),
    ({"active": 1}, "JSON value true"),
    ({"scope": "x"}, "JSON value true"),
])
def test_only_the_json_value_true_is_active(op, make_v, doc, words):
    op.endpoint.tokens["t"] = doc
    with pytest.raises(InvalidToken, match=words):
        make_v().validate_access_token("t")


@pytest.mark.parametrize("extra, words", [
    ({"iss": "https://evil.example"}, "issuer"),
    ({"aud": "api://other"}, "audience"),
    ({"aud": ["api://other", 3]}, "aud"),
    ({"exp": 1000}, "expired"),
    ({"exp": "soon"}, "NumericDate"),
    ({"exp": 1e300}, "NumericDate"),
    ({"exp": True}, "NumericDate"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ({"iat": "x"}, "NumericDate"),
    ({"token_type": "refresh_token"}, "refresh token"),
    ({"token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "refresh token"),
    ({"sub": 42}, "sub"),
    ({"scope": {"a": 1}}, "scope"),
])
def test_response_rules(op, make_v, extra, words):
    op.endpoint.tokens["t"] = active(op, **extra)
    with pytest.raises(InvalidToken, match=words):
        make_v().validate_access_token("t")


def test_absent_iss_exp_are_accepted_and_audience_check_can_be_off(op, make_v):
    op.endpoint.tokens["bare"] = {"active": True, "aud": op.audience, "scope": "contacts"}
    op.endpoint.tokens["other"] = active(op, aud="api://other")
    assert make_v().validate_access_token("bare").scopes == {"contacts"}
    assert make_v(verify_audience=False).validate_access_token("other").client_id == "wte"
    op.endpoint.tokens["typed"] = active(op, token_type="Bearer")
    assert make_v().validate_access_token("typed")


# RFC 7662 2.2: aud is optional.  An endpoint that answers for any token of
# the provider (django-oauth-toolkit without RFC 8707 resource=) leaves it
# out, and "checked where present" would then accept every API's tokens.
def test_an_answer_without_aud_is_refused_by_default_naming_the_setting(op, make_v):
    doc = active(op)
    del doc["aud"]
    op.endpoint.tokens["no-aud"] = doc
    with pytest.raises(InvalidToken) as info:
        make_v().validate_access_token("no-aud")
    assert info.value.status == 401
    assert "no aud" in info.value.description
    assert "introspection_audience_optional=True" in info.value.description
    assert "OIDC_GUARD_INTROSPECTION_AUDIENCE_OPTIONAL" in info.value.description


def test_audience_optional_accepts_answers_without_aud_and_still_checks_a_present_one(op, make_v):
    op.endpoint.tokens["no-aud"] = {"active": True, "scope": "contacts", "client_id": "wte"}
    op.endpoint.tokens["other"] = active(op, aud="api://other")
    op.endpoint.tokens["ours"] = active(op, aud=["api://other", op.audience])
    v = make_v(introspection_audience_optional=True)
    assert v.introspector.audience_optional is True
    assert v.validate_access_token("no-aud").scopes == {"contacts"}
    assert v.validate_access_token("ours").client_id == "wte"
    with pytest.raises(InvalidToken, match="audience 'api://other' not accepted"):
        v.validate_access_token("other")
    # verify_audience=False: no audience rule at all, present or not
    off = make_v(verify_audience=False)
    assert off.validate_access_token("no-aud") and off.validate_access_token("other")


def test_nan_from_the_provider_is_refused(op, make_v):
    # NaN is not JSON (RFC 8259 section 6): a malformed provider response,
    # 503 like any other (oidc_guard.http.parse_json_body), never accepted
    op.endpoint.raw = b'{"active": true, "exp": NaN}'
    with pytest.raises(ProviderError, match="NaN is not a JSON value"):
        make_v().validate_access_token("t")


# --- endpoint failures: 503, never 401 ----------------------------------------

def test_refused_credentials_are_503_logged_once(op, make_v, caplog):
    v = make_v(introspection_client_secret="wrong-secret-value", introspection_cache_ttl=0)
    caplog.set_level(logging.WARNING, logger="oidc_guard.introspection")
    for token in ("a", "b", "c"):
        with pytest.raises(ProviderError) as err:
            v.validate_access_token(token)
        assert err.value.status == 503
        assert "refused this API's credentials" in err.value.description
        assert "wrong-secret-value" not in err.value.description
    records = [r for r in caplog.records if "credentials" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert all("wrong-secret-value" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status", [403, 500, 502, 503, 400])
def test_error_statuses_are_provider_errors(op, make_v, status):
    op.endpoint.status = status
    with pytest.raises(ProviderError):
        make_v().validate_access_token("t")


def test_non_json_and_non_object_are_provider_errors(op, make_v):
    op.endpoint.raw = b"<html>hi</html>"
    op.endpoint.content_type = "text/html"
    with pytest.raises(ProviderError, match="JSON"):
        make_v().validate_access_token("t")
    op.endpoint.content_type = "application/json"
    op.endpoint.raw = b"[true]"
    with pytest.raises(ProviderError, match="object"):
        make_v().validate_access_token("u")


def test_unreachable_and_slow_are_provider_errors(op, make_v, loopback):
    from redis_server import free_port

    v = make_v(introspection_endpoint=f"http://127.0.0.1:{free_port()}/introspect")
    with pytest.raises(ProviderError):
        v.validate_access_token("t")
    op.endpoint.delay = 1.5
    started = time.monotonic()
    with pytest.raises(ProviderError, match="timed out"):
        make_v(http_timeout=0.5).validate_access_token("t")
    assert time.monotonic() - started < 1.4


def test_redirect_to_another_origin_is_refused(op, make_v, make_loopback):
    other = make_loopback()
    ep = Endpoint(other)
    ep.tokens["t"] = active(op)
    op.endpoint.loopback.routes["/introspect"] = (307, {"Location": ep.url}, b"")
    with pytest.raises(ProviderError, match="another origin"):
        make_v().validate_access_token("t")
    assert ep.calls == 0


def test_discovery_without_endpoint(op, make_v):
    from oidc_guard.testing import OMIT

    op.discovery_overrides["introspection_endpoint"] = OMIT
    v = make_v()
    with pytest.raises(ProviderError, match="introspection_endpoint"):
        v.validate_access_token("t")
    with pytest.raises(ConfigurationError, match="introspection_endpoint"):
        make_v().check()
    op.discovery_overrides["introspection_endpoint"] = op.endpoint.url
    assert make_v().check() is None


# --- validation modes -------------------------------------------------------------

def test_mode_local_sends_nothing(op, loopback):
    v = TokenValidator(op.issuer, audience=op.audience)
    assert v.validation_mode == "local"
    with pytest.raises(InvalidToken, match="segment"):
        v.validate_access_token("SlAV32hkKG")
    v2 = TokenValidator(op.issuer, audience=op.audience, validation_mode="local",
                        introspection_client_id=CLIENT_ID, introspection_client_secret=CLIENT_SECRET)
    with pytest.raises(InvalidToken):
        v2.validate_access_token("1940a308-d492-3660-a9f8-46723cc582e9")
    assert op.endpoint.calls == 0 and loopback.total == 0


def test_mode_both_is_the_default_with_credentials(op, make_v):
    v = make_v()
    assert v.validation_mode == "both"
    jwt = op.mint()
    assert v.validate_access_token(jwt).subject == "alice"
    assert op.endpoint.calls == 0  # a dot: local
    op.endpoint.tokens["1940a308-d492-3660-a9f8-46723cc582e9"] = active(op)
    assert v.validate_access_token("1940a308-d492-3660-a9f8-46723cc582e9").client_id == "wte"
    assert op.endpoint.calls == 1


# RFC 7662 section 2.1 and RFC 9449 section 7.1 use "mF_9.B5f-4.1JqM" as an
# access token: a reference token may contain dots.  In "both" only a token
# with the shape of a compact JWS (three base64url segments, the first a JSON
# object with alg) is validated locally; every other one is introspected.
@pytest.mark.parametrize("token", [
    "mF_9.B5f-4.1JqM",                   # the RFCs' example
    "abc.def",                           # one dot
    "abc.def.ghi.jkl.mno",               # five segments
    "eyJ0eXAiOiJKV1QifQ.e30.c2ln",       # header {"typ":"JWT"}: JSON, but no alg
    "W10.e30.c2ln",                      # header [] : JSON, not an object
    "eyJhbGciOiJSUzI1NiJ9.e30.c2~n",     # a b64token character outside base64url
    ".e30.c2ln",                         # empty first segment
])
def test_mode_both_introspects_every_token_without_the_shape_of_a_jws(op, make_v, token):
    op.endpoint.tokens[token] = active(op, sub="carol")
    v = make_v()
    assert v.validate_access_token(token).subject == "carol"
    assert op.endpoint.calls == 1 and op.endpoint.forms[0]["token"] == token
    assert op.fetch_counts["jwks"] == 0  # nothing was tried locally


def test_mode_both_keeps_jws_shaped_tokens_local_even_broken_ones(op, make_v):
    v = make_v()
    jwt = op.mint()
    head, payload, _sig = jwt.split(".")
    assert v.validate_access_token(jwt).subject == "alice"
    assert v.validate_access_token(jwt).subject == "alice"  # a cache hit
    with pytest.raises(InvalidToken, match="signature is invalid"):
        v.validate_access_token(f"{head}.{payload}.c2ln")
    with pytest.raises(InvalidToken, match="unsigned"):
        v.validate_access_token(f"{head}.{payload}.")
    with pytest.raises(InvalidToken, match="unsigned"):
        v.validate_access_token("eyJhbGciOiJub25lIn0.e30.")  # {"alg":"none"}
    with pytest.raises(InvalidToken, match="duplicate member"):  # a JOSE header, refused here
        v.validate_access_token("eyJhbGciOiJSUzI1NiIsImFsZyI6Im5vbmUifQ.e30.c2ln")
    assert op.endpoint.calls == 0


def test_dotted_reference_tokens_are_bounded_like_any_other(op, make_v):
    # the flood bound (max_in_flight, then 503) applies to them as well
    op.endpoint.delay = 0.2
    v = make_v(introspection_max_in_flight=1, introspection_queue_timeout=0.05)
    outcomes = []
    barrier = threading.Barrier(6)

    def go(i):
        barrier.wait()
        try:
            v.validate_access_token(f"mF_9.B5f-{i}.1JqM")
            outcomes.append("200")
        except InvalidToken:
            outcomes.append("401")
        except ProviderError as exc:
            outcomes.append(f"503:{exc.retry_after}")

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert op.endpoint.max_in_flight == 1 and v.introspector.max_seen_in_flight == 1
    assert "503:1" in outcomes and "401" in outcomes and "200" not in outcomes


def test_mode_introspection_sends_jwts_too(op, make_v):
    jwt = op.mint()
    op.endpoint.tokens[jwt] = active(op, sub="bob")
    v = make_v(validation_mode="introspection")
    assert v.validate_access_token(jwt).subject == "bob"
    assert op.endpoint.calls == 1 and op.fetch_counts["jwks"] == 0


def test_bad_configurations():
    with pytest.raises(ConfigurationError):
        TokenValidator("https://idp.example", audience="a", validation_mode="introspection")
    with pytest.raises(ConfigurationError):
        TokenValidator("https://idp.example", audience="a", introspection_client_id="x")
    with pytest.raises(ConfigurationError):
        TokenValidator("https://idp.example", audience="a", validation_mode="Both")
    with pytest.raises(ConfigurationError):
        TokenValidator("https://idp.example", audience="a", introspection_client_id="x",
                       introspection_client_secret="y", introspection_auth_method="private_key_jwt")
    with pytest.raises(ConfigurationError):
        TokenValidator("https://idp.example", audience="a", introspection_client_id="x",
                       introspection_client_secret="y", introspection_endpoint="http://idp.example/i")


@pytest.mark.parametrize("junk", [
    "", "a b", "tok%20en", "t\u00e9", "x" * 20000, "a\r\nb", "=abc", "abc\x00",
])
def test_tokens_that_cannot_be_tokens_are_never_sent(op, make_v, junk):
    with pytest.raises(InvalidToken):
        make_v().validate_access_token(junk)
    assert op.endpoint.calls == 0


def test_non_str_tokens(op, make_v):
    for value in (None, 3, b"abc"):
        with pytest.raises(InvalidToken):
            make_v().validate_access_token(value)
        with pytest.raises(InvalidToken):
            make_v(validation_mode="introspection").validate_access_token(value)
    assert op.endpoint.calls == 0


# --- cache ---------------------------------------------------------------------------

def test_active_result_cached_until_min_of_exp_and_ttl(op, make_v, clock):
    now = clock.now
    op.endpoint.tokens["long"] = active(op, exp=int(now) + 3600)
    op.endpoint.tokens["short"] = active(op, exp=int(now) + 10)
    v = make_v(clock=clock, introspection_cache_ttl=60, leeway=0)
    for _ in range(5):
        v.validate_access_token("long")
        v.validate_access_token("short")
    assert op.endpoint.calls == 2
    clock.advance(11)  # "short" is past exp: its entry is gone
    with pytest.raises(InvalidToken, match="expired"):
        v.validate_access_token("short")  # asked again (entry ended at exp), and the rules apply
    v.validate_access_token("long")
    assert op.endpoint.calls == 3
    clock.advance(50)  # 61 s: the ttl ends "long"'s entry
    v.validate_access_token("long")
    assert op.endpoint.calls == 4


def test_revocation_seen_when_the_entry_ends(op, make_v, clock):
    op.endpoint.tokens["r"] = active(op, exp=int(clock.now) + 3600)
    v = make_v(clock=clock, introspection_cache_ttl=30)
    v.validate_access_token("r")
    op.endpoint.tokens["r"] = {"active": False}  # revoked at the provider
    clock.advance(29)
    v.validate_access_token("r")  # still cached: the documented trade-off
    clock.advance(2)
    with pytest.raises(InvalidToken, match="not active"):
        v.validate_access_token("r")


def test_inactive_cached_briefly(op, make_v, clock):
    v = make_v(clock=clock)
    for _ in range(5):
        with pytest.raises(InvalidToken):
            v.validate_access_token("unknown")
    assert op.endpoint.calls == 1
    clock.advance(10.5)
    with pytest.raises(InvalidToken):
        v.validate_access_token("unknown")
    assert op.endpoint.calls == 2


def test_ttl_zero_means_every_validation_asks(op, make_v):
    op.endpoint.tokens["t"] = active(op)
    v = make_v(introspection_cache_ttl=0)
    for _ in range(3):
        v.validate_access_token("t")
    assert op.endpoint.calls == 3


def test_cache_keys_are_sha256_never_the_token(op, make_v):
    op.endpoint.tokens["SlAV32hkKG"] = active(op)
    v = make_v()
    v.validate_access_token("SlAV32hkKG")
    keys = list(v.introspector._front)
    assert keys == [hashlib.sha256(b"SlAV32hkKG").digest()]


def test_provider_errors_are_not_cached(op, make_v):
    op.endpoint.tokens["t"] = active(op)
    op.endpoint.status = 500
    v = make_v()
    with pytest.raises(ProviderError):
        v.validate_access_token("t")
    op.endpoint.status = None
    assert v.validate_access_token("t")


# --- single flight and the in-flight bound -------------------------------------------

def test_concurrent_validations_of_one_token_make_one_call(op, make_v):
    op.endpoint.tokens["same"] = active(op)
    op.endpoint.delay = 0.3
    v = make_v()
    results = []
    barrier = threading.Barrier(16)

    def go():
        barrier.wait()
        results.append(v.validate_access_token("same").client_id)

    threads = [threading.Thread(target=go) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["wte"] * 16
    assert op.endpoint.calls == 1


def test_calls_in_flight_are_bounded(op, make_v):
    op.endpoint.delay = 0.2
    v = make_v(introspection_max_in_flight=2, introspection_queue_timeout=0.1)
    outcomes = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def go(i):
        barrier.wait()
        try:
            v.validate_access_token(f"random-{i}")
            outcome = "200"
        except InvalidToken:
            outcome = "401"
        except ProviderError as exc:
            assert exc.retry_after == 1
            outcome = "503"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert op.endpoint.max_in_flight <= 2
    assert v.introspector.max_seen_in_flight <= 2
    assert "503" in outcomes and "401" in outcomes and "200" not in outcomes


# --- secrets ---------------------------------------------------------------------------

def test_secret_never_in_repr_or_errors(op, make_v, caplog):
    caplog.set_level(logging.DEBUG)
    v = make_v()
    assert CLIENT_SECRET not in repr(v) and CLIENT_SECRET not in repr(v.introspector)
    op.endpoint.status = 401
    with pytest.raises(ProviderError) as err:
        v.validate_access_token("t")
    assert CLIENT_SECRET not in str(err.value) and CLIENT_SECRET not in repr(err.value)
    assert all(CLIENT_SECRET not in r.getMessage() for r in caplog.records)
    assert CLIENT_SECRET not in str(vars(v))  # not even in the validator's attributes


# --- shared cache (a real redis-server) ------------------------------------------------

def test_workers_share_results_through_redis(op, make_v, redis_server):
    op.endpoint.tokens["t"] = active(op)
    one = make_v(shared_cache=redis_server.url)
    two = make_v(shared_cache=redis_server.url)  # another worker: its own memory
    assert one.validate_access_token("t").client_id == "wte"
    assert two.validate_access_token("t").client_id == "wte"
    with pytest.raises(InvalidToken):
        one.validate_access_token("unknown")
    with pytest.raises(InvalidToken):
        two.validate_access_token("unknown")
    assert op.endpoint.calls == 2


def test_apis_that_differ_on_audience_optional_do_not_share_entries(op, make_v, redis_server):
    # A refusing worker caches "inactive" for an aud-less answer; a worker
    # that accepts such answers must not read that refusal (nor the reverse).
    doc = active(op)
    del doc["aud"]
    op.endpoint.tokens["no-aud"] = doc
    strict = make_v(shared_cache=redis_server.url)
    lenient = make_v(shared_cache=redis_server.url, introspection_audience_optional=True)
    with pytest.raises(InvalidToken, match="no aud"):
        strict.validate_access_token("no-aud")
    assert lenient.validate_access_token("no-aud").client_id == "wte"
    assert strict.introspector.cache_prefix != lenient.introspector.cache_prefix
    assert op.endpoint.calls == 2


def test_redis_keys_name_the_issuer_and_hash_the_token(op, make_v, redis_server):
    import redis

    op.endpoint.tokens["SlAV32hkKG"] = active(op)
    make_v(shared_cache=redis_server.url).validate_access_token("SlAV32hkKG")
    raw = redis.Redis.from_url(redis_server.url)
    keys = [k.decode() for k in raw.keys("*")]
    assert len(keys) == 1
    assert keys[0].startswith("oidc_guard:introspection:v2:" + op.issuer + ":")
    assert keys[0].endswith(hashlib.sha256(b"SlAV32hkKG").hexdigest())
    assert "SlAV32hkKG" not in keys[0]
    assert b"SlAV32hkKG" not in raw.get(keys[0])
    assert 0 < raw.pttl(keys[0]) <= 60000  # the expiry lives in Redis
    raw.close()


def test_entries_are_bound_to_the_configuration(op, make_v, redis_server):
    op.endpoint.tokens["t"] = active(op, aud=["api://contacts-other", op.audience])
    make_v(shared_cache=redis_server.url).validate_access_token("t")
    make_v(shared_cache=redis_server.url, audience="api://contacts-other").validate_access_token("t")
    assert op.endpoint.calls == 2  # another audience: another namespace


def test_tampered_or_garbage_redis_entries_are_never_believed(op, make_v, redis_server, caplog):
    import redis

    raw = redis.Redis.from_url(redis_server.url)
    v = make_v(shared_cache=redis_server.url)
    with pytest.raises(InvalidToken):
        v.validate_access_token("revoked")  # writes an inactive entry
    (key,) = raw.keys("*")
    # An attacker with Redis write access flips the entry to active:
    mac, _, value = raw.get(key).partition(b".")
    body = json.loads(value)
    body.update(active=True, doc=active(op))
    raw.set(key, mac + b"." + json.dumps(body).encode(), px=60000)
    caplog.set_level(logging.WARNING, logger="oidc_guard.introspection")
    fresh = make_v(shared_cache=redis_server.url)
    with pytest.raises(InvalidToken):
        fresh.validate_access_token("revoked")  # the endpoint was asked again
    assert op.endpoint.calls == 2
    assert any("not one this API wrote" in r.getMessage() for r in caplog.records)
    for junk in (b"", b"garbage", b"\xff" * 10, b"0" * 64 + b".{}"):
        raw.set(key, junk, px=60000)
        with pytest.raises(InvalidToken):
            make_v(shared_cache=redis_server.url).validate_access_token("revoked")
    raw.close()


def test_entries_read_from_redis_keep_the_front_cache_bounded(op, make_v, redis_server):
    # Random tokens sent to worker one land in Redis (inactive); the same
    # tokens sent to worker two come back from Redis and must not grow its
    # in-process front past its bound.
    for i in range(10):
        op.endpoint.tokens[f"live{i}"] = active(op)
    one = make_v(shared_cache=redis_server.url)
    two = make_v(shared_cache=redis_server.url)
    two.introspector._front.maxsize = 8
    tokens = [f"random{i}" for i in range(60)] + [f"live{i}" for i in range(10)]
    for token in tokens:
        try:
            one.validate_access_token(token)
        except InvalidToken:
            pass
    calls = op.endpoint.calls
    for token in tokens:
        try:
            two.validate_access_token(token)
        except InvalidToken:
            pass
    assert op.endpoint.calls == calls  # every answer came from Redis
    assert len(two.introspector._front) <= 8


def test_an_entry_written_with_another_secret_is_ignored(op, make_v, redis_server):
    op.endpoint.tokens["t"] = active(op)
    make_v(shared_cache=redis_server.url).validate_access_token("t")
    op.endpoint.secret = "another-secret"
    with pytest.raises(ProviderError):  # same namespace, other MAC key: asks, gets refused
        make_v(shared_cache=redis_server.url, introspection_client_secret="another-secret-x"
               ).validate_access_token("t")


def test_redis_killed_mid_run_falls_back_to_the_endpoint(op, make_v, redis_server, caplog):
    op.endpoint.tokens["a"] = active(op)
    op.endpoint.tokens["b"] = active(op)
    v = make_v(shared_cache=redis_server.url)
    v.validate_access_token("a")
    redis_server.stop()
    caplog.set_level(logging.WARNING)
    other = make_v(shared_cache=redis_server.url)
    assert other.validate_access_token("a").client_id == "wte"  # the endpoint, not a 500
    with pytest.raises(InvalidToken):
        other.validate_access_token("unknown")
    assert v.validate_access_token("b").client_id == "wte"
    down = [r for r in caplog.records if "unavailable" in r.getMessage() or "unusable" in r.getMessage()]
    assert 1 <= len(down) <= 4  # once per component, not per request
    redis_server.start()
    time.sleep(1.1)  # the cache's retry cooldown
    third = make_v(shared_cache=redis_server.url)
    op.endpoint.tokens["c"] = active(op)
    third.validate_access_token("c")
    calls = op.endpoint.calls
    make_v(shared_cache=redis_server.url).validate_access_token("c")
    assert op.endpoint.calls == calls  # recovered by itself: shared again


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_reader_never_keeps_a_shared_entry_beyond_its_own_ttl(op, make_v, redis_server):
    # Two APIs (or two releases) on one Redis: the writer caches for 12 s,
    # the reader for 2 s.  Once the token is revoked, the reader must notice
    # within its own 2 s, not the writer's 12.
    clock = _Clock()
    op.endpoint.tokens["t"] = active(op)
    writer = make_v(shared_cache=redis_server.url, introspection_cache_ttl=12, clock=clock)
    reader = make_v(shared_cache=redis_server.url, introspection_cache_ttl=2, clock=clock)
    assert writer.validate_access_token("t").client_id == "wte"
    assert op.endpoint.calls == 1
    clock.now += 1
    assert reader.validate_access_token("t").client_id == "wte"  # from Redis, within 2 s
    assert op.endpoint.calls == 1
    op.endpoint.tokens["t"] = {"active": False}  # revoked at the provider
    clock.now += 1.5  # 2.5 s after the answer: past the reader's TTL, not the writer's
    with pytest.raises(InvalidToken, match="not active"):
        reader.validate_access_token("t")
    assert op.endpoint.calls == 2
    # The token's exp caps it too: an entry written for a token expiring
    # in 3 s is not used after that by a reader whose TTL is longer.
    clock.now += 1
    op.endpoint.tokens["short"] = active(op, exp=int(clock.now) + 3)
    writer.validate_access_token("short")
    calls = op.endpoint.calls
    long_reader = make_v(shared_cache=redis_server.url, introspection_cache_ttl=12, clock=clock, leeway=0)
    assert long_reader.validate_access_token("short").client_id == "wte"
    assert op.endpoint.calls == calls
    clock.now += 4
    op.endpoint.tokens["short"] = {"active": False}
    with pytest.raises(InvalidToken):
        long_reader.validate_access_token("short")
    assert op.endpoint.calls == calls + 1


def test_a_reader_caps_inactive_shared_entries_at_its_own_inactive_ttl(op, make_v, redis_server):
    clock = _Clock()
    writer = make_v(shared_cache=redis_server.url, introspection_cache_ttl=12, clock=clock)
    reader = make_v(shared_cache=redis_server.url, introspection_cache_ttl=2, clock=clock)
    with pytest.raises(InvalidToken):
        writer.validate_access_token("later")  # unknown: inactive, kept 10 s
    op.endpoint.tokens["later"] = active(op)
    clock.now += 3
    assert reader.validate_access_token("later").client_id == "wte"  # asked again
    assert op.endpoint.calls == 2


def test_shared_entries_written_in_the_future_are_not_believed(op, make_v, redis_server):
    clock = _Clock()
    op.endpoint.tokens["t"] = active(op, exp=int(clock.now) + 86400)
    ahead = _Clock()
    ahead.now = clock.now + 3600  # a writer whose clock is an hour ahead
    make_v(shared_cache=redis_server.url, clock=ahead).validate_access_token("t")
    make_v(shared_cache=redis_server.url, clock=clock).validate_access_token("t")
    assert op.endpoint.calls == 2


def test_shared_cache_rejects_other_values():
    with pytest.raises(ConfigurationError):
        TokenValidator("https://idp.example", audience="a", shared_cache="memcached://x")


# --- Flask settings ---------------------------------------------------------------------

def test_flask_settings_build_an_introspecting_validator(op):
    from flask import Flask

    from oidc_guard.flask import OIDCGuard

    op.endpoint.tokens["ref"] = active(op)
    app = Flask(__name__)
    app.config.update(
        OIDC_GUARD_ISSUER=op.issuer, OIDC_GUARD_AUDIENCE=op.audience,
        OIDC_GUARD_INTROSPECTION_CLIENT_ID=CLIENT_ID, OIDC_GUARD_INTROSPECTION_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_GUARD_INTROSPECTION_AUTH_METHOD="client_secret_post", OIDC_GUARD_VALIDATION_MODE="Both",
        OIDC_GUARD_INTROSPECTION_CACHE_TTL="30", OIDC_GUARD_INTROSPECTION_MAX_IN_FLIGHT="2",
        OIDC_GUARD_INTROSPECTION_AUDIENCE_OPTIONAL="yes",
    )
    guard = OIDCGuard(app)
    v = guard.state(app).validator
    assert v.validation_mode == "both" and v.introspector.max_in_flight == 2
    assert v.introspector.audience_optional is True
    assert v.introspector.cache_ttl == 30 and v.introspector.auth_method == "client_secret_post"

    @app.get("/r")
    def r():
        from oidc_guard.flask import current_claims
        return {"client": current_claims.client_id}

    assert app.test_client().get("/r", headers={"Authorization": "Bearer ref"}).get_json() == {"client": "wte"}


def test_flask_secret_never_in_a_configuration_error():
    from flask import Flask

    from oidc_guard.flask import OIDCGuard

    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER="https://idp.example", OIDC_GUARD_AUDIENCE="a",
                      OIDC_GUARD_INTROSPECTION_CLIENT_SECRET=["top-secret-value"])
    with pytest.raises(ConfigurationError) as err:
        OIDCGuard(app)
    assert "top-secret-value" not in str(err.value)
