"""TokenValidator.userinfo (OpenID Connect Core 5.3) against a loopback
UserInfo endpoint named by a LocalIssuer's discovery document."""

from __future__ import annotations

import json

import pytest

from oidc_guard import InsufficientScope, InvalidToken, ProviderError, TokenValidator


@pytest.fixture
def op(make_issuer, loopback):
    iss = make_issuer(algs=("RS256",))
    iss.discovery_overrides["userinfo_endpoint"] = loopback.url("/userinfo")
    iss.loopback = loopback
    return iss


def serve(op, body, status=200, content_type="application/json"):
    if isinstance(body, dict):
        body = json.dumps(body)
    op.loopback.json("/userinfo", body, status=status, content_type=content_type)


def test_json_profile_for_the_token_user(op, make_validator):
    serve(op, {"sub": "alice", "name": "Alice", "email": "alice@example.com"})
    v = make_validator(op)
    token = op.mint(subject="alice")
    profile = v.userinfo(token)
    assert profile["name"] == "Alice" and profile["sub"] == "alice"
    with pytest.raises(TypeError):
        profile["name"] = "x"  # read-only
    path, headers = op.loopback.requests[-1]
    assert headers["Authorization"] == "Bearer " + token


def test_cached_per_token_within_its_lifetime(op, make_validator, clock):
    serve(op, {"sub": "alice"})
    v = make_validator(op, clock=clock)
    token = op.mint(subject="alice", expires_in=3600, claims={"iat": int(clock.now)})
    for _ in range(3):
        v.userinfo(token)
    assert op.loopback.counts["/userinfo"] == 1
    other = op.mint(subject="alice", claims={"jti": "2", "iat": int(clock.now)})
    v.userinfo(other)
    assert op.loopback.counts["/userinfo"] == 2
    clock.advance(61)
    v.userinfo(token)
    assert op.loopback.counts["/userinfo"] == 3


@pytest.mark.parametrize("body, words", [
    ({"name": "no sub"}, "no sub"),
    ({"sub": "mallory"}, "not the access token's sub"),
    ({"sub": 7}, "no sub"),
])
def test_sub_must_be_present_and_the_tokens(op, make_validator, body, words):
    serve(op, body)
    with pytest.raises(InvalidToken, match=words):
        make_validator(op).userinfo(op.mint(subject="alice"))


def test_client_token_without_sub_takes_any_sub(op, make_validator):
    serve(op, {"sub": "svc"})
    assert make_validator(op).userinfo(op.mint(subject=None))["sub"] == "svc"


def test_statuses(op, make_validator):
    token = op.mint(subject="alice")
    serve(op, {"error": "invalid_token"}, status=401)
    with pytest.raises(InvalidToken, match="401"):
        make_validator(op).userinfo(token)
    serve(op, {"error": "insufficient_scope"}, status=403)
    with pytest.raises(InsufficientScope):
        make_validator(op).userinfo(token)
    for status in (500, 502, 404):
        serve(op, {"error": "x"}, status=status)
        with pytest.raises(ProviderError):
            make_validator(op).userinfo(token)
    serve(op, "<html/>", content_type="text/html")
    with pytest.raises(ProviderError):
        make_validator(op).userinfo(token)


def test_unreachable_is_a_provider_error(op, make_validator):
    from redis_server import free_port

    op.discovery_overrides["userinfo_endpoint"] = f"http://127.0.0.1:{free_port()}/userinfo"
    with pytest.raises(ProviderError):
        make_validator(op).userinfo(op.mint(subject="alice"))


def test_no_endpoint_in_discovery(op, make_validator):
    from oidc_guard.testing import OMIT

    op.discovery_overrides["userinfo_endpoint"] = OMIT
    with pytest.raises(ProviderError, match="userinfo_endpoint"):
        make_validator(op).userinfo(op.mint(subject="alice"))


def test_signed_userinfo_is_verified_with_the_issuers_keys(op, make_validator, make_issuer):
    signed = op.sign({"sub": "alice", "iss": op.issuer, "name": "Alice"})
    serve(op, signed, content_type="application/jwt")
    assert make_validator(op).userinfo(op.mint(subject="alice"))["name"] == "Alice"
    stranger = make_issuer(algs=("RS256",))
    serve(op, stranger.sign({"sub": "alice", "iss": op.issuer}), content_type="application/jwt")
    with pytest.raises(InvalidToken):
        make_validator(op).userinfo(op.mint(subject="alice"))
    serve(op, op.sign({"sub": "alice", "iss": "https://other"}), content_type="application/jwt")
    with pytest.raises(InvalidToken, match="issuer"):
        make_validator(op).userinfo(op.mint(subject="alice"))
    serve(op, op.sign({"sub": "bob", "iss": op.issuer}), content_type="application/jwt")
    with pytest.raises(InvalidToken, match="sub"):
        make_validator(op).userinfo(op.mint(subject="alice"))


def test_an_invalid_token_is_never_sent(op, make_validator):
    serve(op, {"sub": "alice"})
    with pytest.raises(InvalidToken):
        make_validator(op).userinfo(op.mint(subject="alice", audience="api://other"))
    with pytest.raises(InvalidToken):
        make_validator(op).userinfo("not-a-jwt")
    assert op.loopback.counts["/userinfo"] == 0


def test_calls_in_flight_are_bounded(op, make_validator):
    # Twelve requests for twelve uncached tokens at once: the provider sees at
    # most max_in_flight (4) UserInfo calls at a time; the rest wait for a
    # slot (or get a 503 after queue_timeout), never a thirteenth socket.
    import threading
    import time

    state = {"now": 0, "most": 0}
    lock = threading.Lock()
    body = json.dumps({"sub": "alice"}).encode()

    def slow(handler):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            time.sleep(0.15)
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        finally:
            with lock:
                state["now"] -= 1

    op.loopback.routes["/userinfo"] = slow
    v = make_validator(op)
    tokens = [op.mint(subject="alice", claims={"jti": str(i)}) for i in range(12)]
    outcomes = []

    def go(token):
        try:
            outcomes.append(v.userinfo(token)["sub"])
        except ProviderError as exc:
            outcomes.append(exc.description)

    threads = [threading.Thread(target=go, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 12
    assert all(o == "alice" or "too many UserInfo calls" in o for o in outcomes)
    assert 1 <= state["most"] <= 4
