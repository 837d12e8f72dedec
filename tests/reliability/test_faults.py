"""Fault injection against a real loopback identity provider (LocalIssuer).

What must hold while the provider misbehaves (issue 6; docs/security.md,
"Availability and last-known-good"):

* tokens signed by keys already known keep validating (last-known-good);
* a token with a kid the validator has never seen gets ``ProviderError``,
  which the middleware answers with 503 + Retry-After, never 401: an outage
  must not make clients throw away good tokens (RFC 6750 section 3.1 is for
  token problems only);
* recovery is automatic, within the unknown-kid cooldown, once the provider
  answers again;
* nobody waits longer than the HTTP timeout plus a small margin;
* the cause is logged once per outage, not once per request.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import Counter
from typing import Callable, Dict, List

import pytest

from oidc_guard import InvalidToken, ProviderError
from oidc_guard.testing import LocalIssuer

from .conftest import HTTP_TIMEOUT, call_wsgi, protected_app, validator_for

pytestmark = pytest.mark.reliability

COOLDOWN = 1.0
#: The correctness bound against hangs (not a speed goal): a caller may lead
#: one fetch (discovery + JWKS, each bounded by http_timeout) or wait for the
#: one in flight; anything beyond that plus a second of scheduling slack on a
#: busy 2-core CI machine is a hang.
LATENCY_BOUND = 2 * HTTP_TIMEOUT + 1.0


def _bad_keys_jwks(iss: LocalIssuer) -> Dict:
    """A JWKS whose every key has bad parameters: each must be skipped."""
    good = iss.public_jwk(iss.signing_kid)
    return {"keys": [
        dict(good, n=good["n"][:100]),              # RSA modulus far below 2048 bits
        dict(good, e="Ag"),                          # even public exponent (2)
        dict(good, n="!!not base64url!!"),
        {"kty": "EC", "crv": "P-256", "kid": "off-curve", "alg": "ES256",
         "x": "AQ" + "A" * 41, "y": "AQ" + "A" * 41},  # a point not on P-256
        {"kty": "oct", "kid": "sym", "k": "c2VjcmV0", "alg": "HS256"},
        {"kty": "OKP", "crv": "X25519", "kid": "ecdh", "x": "A" * 43},
        dict(good, use="enc"),
        dict(good, alg="HS256"),
        "not an object",
        {"kty": "RSA", "kid": 12, "n": good["n"], "e": good["e"]},
    ]}


def _truncated_jwks(iss: LocalIssuer) -> bytes:
    text = json.dumps(iss.jwks())
    return text[: len(text) // 2].encode()


#: name -> (break the provider, repair it).  Each outage breaks the JWKS
#: endpoint only: discovery was fetched while warming up and is cached.
OUTAGES: Dict[str, Callable[[LocalIssuer], None]] = {
    "connection-refused": lambda iss: iss.stop(),
    "http-500": lambda iss: iss.set_fault("jwks", status=500),
    "http-503": lambda iss: iss.set_fault("jwks", status=503, headers={"Retry-After": "120"}),
    "slow-past-timeout": lambda iss: iss.set_fault("jwks", delay=HTTP_TIMEOUT * 6),
    "html-error-page": lambda iss: iss.set_fault(
        "jwks", status=200, body="<html><body>Bad gateway</body></html>", content_type="text/html"),
    "html-labelled-json": lambda iss: iss.set_fault("jwks", status=200, body="<html>oops</html>"),
    "truncated-json": lambda iss: iss.set_fault("jwks", status=200, body=_truncated_jwks(iss)),
    "json-not-an-object": lambda iss: iss.set_fault("jwks", status=200, body=[1, 2, 3]),
    "no-keys-array": lambda iss: iss.set_fault("jwks", status=200, body={"keys": "none"}),
    "empty-key-set": lambda iss: iss.set_fault("jwks", status=200, body={"keys": []}),
    "keys-with-bad-parameters": lambda iss: iss.set_fault("jwks", status=200, body=_bad_keys_jwks(iss)),
    "50MB-body": lambda iss: iss.set_fault("jwks", status=200, body=b" " * (50 * 1024 * 1024)),
}


def _repair(iss: LocalIssuer) -> None:
    iss.clear_faults()
    if not iss.running:
        iss.start()


@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_jwks_outage_last_known_good_503_and_recovery(issuer, outage):
    v = validator_for(issuer, jwks_cooldown=COOLDOWN, cache_size=0)  # no cache: every call verifies
    app = protected_app(v)
    old_token = issuer.mint()
    assert v.validate_access_token(old_token).subject == "alice"  # warm: discovery + JWKS cached

    new_kid = issuer.rotate()
    new_token = issuer.mint()
    OUTAGES[outage](issuer)
    try:
        # 1. keys already known keep working, directly and through the middleware
        assert v.validate_access_token(old_token).subject == "alice"
        assert call_wsgi(app, authorization="Bearer " + old_token).status == 200

        # 2. a kid never seen: the provider's fault, not the token's
        t0 = time.monotonic()
        with pytest.raises(ProviderError) as info:
            v.validate_access_token(new_token)
        assert time.monotonic() - t0 < LATENCY_BOUND
        # Retry-After points at the next refetch the cooldown allows
        assert 1 <= info.value.retry_after <= COOLDOWN + 1
        assert new_token not in info.value.description
        for _ in range(3):  # also inside the cooldown (no refetch): still 503, never 401
            r = call_wsgi(app, authorization="Bearer " + new_token)
            assert r.status == 503, r
            assert 1 <= int(r.header("Retry-After")) <= COOLDOWN + 1
            assert "invalid_token" not in (r.header("WWW-Authenticate") or "")
            assert r.json()["error"] == "temporarily_unavailable"
        assert v.validate_access_token(old_token).subject == "alice"
    finally:
        _repair(issuer)

    # 3. recovery without a restart, within the cooldown (+ one fetch, + slack)
    repaired = time.monotonic()
    while True:
        try:
            claims = v.validate_access_token(new_token)
            break
        except ProviderError:
            assert time.monotonic() - repaired < COOLDOWN + HTTP_TIMEOUT + 1.0, "no recovery"
            time.sleep(0.05)
    assert call_wsgi(app, authorization="Bearer " + new_token).status == 200
    assert call_wsgi(app, authorization="Bearer " + old_token).status == 200


def test_first_use_during_outage_is_503_and_recovers(issuer):
    """The issuer is down when the app starts: the validator is built
    (no I/O at construction), requests get 503, and the first request after
    the provider returns (after the retry interval) works."""
    token = issuer.mint()
    issuer.stop()
    v = validator_for(issuer, jwks_cooldown=COOLDOWN)
    app = protected_app(v, required=True)
    for _ in range(5):
        t0 = time.monotonic()
        r = call_wsgi(app, authorization="Bearer " + token)
        assert time.monotonic() - t0 < LATENCY_BOUND
        assert r.status == 503, r
        assert int(r.header("Retry-After")) >= 1
    issuer.start()
    deadline = time.monotonic() + COOLDOWN + HTTP_TIMEOUT + 1.0
    while call_wsgi(app, authorization="Bearer " + token).status != 200:
        assert time.monotonic() < deadline, "no recovery after the issuer came back"
        time.sleep(0.05)


def test_discovery_names_another_issuer_at_start(issuer):
    """OIDC Discovery 4.3: the document's issuer must equal the configured
    one; a mismatch is a provider problem (503), never a reason to trust the
    document's keys."""
    issuer.discovery_overrides["issuer"] = "https://evil.example"
    v = validator_for(issuer)
    with pytest.raises(ProviderError) as info:
        v.validate_access_token(issuer.mint())
    assert "evil.example" in info.value.description
    assert issuer.fetch_counts["jwks"] == 0  # the keys of a wrong document are never fetched
    r = call_wsgi(protected_app(v), authorization="Bearer " + issuer.mint())
    assert r.status == 503


def test_discovery_changing_its_issuer_later_keeps_the_last_good_document(issuer, caplog):
    v = validator_for(issuer, jwks_cooldown=COOLDOWN, cache_size=0)
    old_token = issuer.mint()
    v.validate_access_token(old_token)
    v.metadata.max_age = 0.0  # make the next JWKS fetch re-read discovery
    issuer.discovery_overrides["issuer"] = "https://evil.example"
    issuer.discovery_overrides["jwks_uri"] = "http://127.0.0.1:9/evil-jwks"
    issuer.rotate()
    new_token = issuer.mint()
    with caplog.at_level(logging.WARNING, logger="oidc_guard"):
        # the refresh reads the changed discovery document, refuses it, and
        # keeps using the last good one (and its jwks_uri) for the rotation
        assert v.validate_access_token(new_token).subject == "alice"
        assert v.validate_access_token(old_token).subject == "alice"
    assert issuer.fetch_counts["discovery"] == 2
    mentions = [r for r in caplog.records if "evil.example" in r.getMessage()]
    assert len(mentions) == 1, [r.getMessage() for r in caplog.records]


def test_key_with_bad_parameters_is_skipped_and_the_others_used(issuer, caplog):
    v = validator_for(issuer)
    # (LocalIssuer.extra_jwks takes objects; the non-object entry is covered
    # by the "keys-with-bad-parameters" outage above)
    issuer.extra_jwks.extend(k for k in _bad_keys_jwks(issuer)["keys"] if isinstance(k, dict))
    with caplog.at_level(logging.WARNING, logger="oidc_guard"):
        assert v.validate_access_token(issuer.mint()).subject == "alice"
    skipped = [r for r in caplog.records if "skipping" in r.getMessage()]
    assert len(skipped) == len(issuer.extra_jwks)


# --- the body size limit is enforced while reading ----------------------------


def test_50MB_body_without_content_length_is_cut_at_the_limit(raw_servers, issuer):
    """A JWKS answer with no Content-Length (HTTP/1.0, close-delimited) that
    goes on for 50 MB: the client must stop reading at its limit, so the
    server manages to send only the limit plus what socket buffers hold."""
    total = 50 * 1024 * 1024
    chunk = b" " * 65536

    def endless(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
        sent = 0
        while sent < total:
            conn.sendall(chunk)
            sent += len(chunk)
            server.count_sent(len(chunk))

    server = raw_servers(endless)
    v = validator_for(issuer, jwks_uri=server.url("/jwks"), http_timeout=5)
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as info:
        v.validate_access_token(issuer.mint())
    elapsed = time.monotonic() - t0
    assert "limit" in info.value.description
    time.sleep(0.2)  # let the server notice the closed connection
    assert server.bytes_sent < 20 * 1024 * 1024, server.bytes_sent
    assert elapsed < 5


def test_dripping_server_is_cut_at_the_timeout(raw_servers, issuer):
    """One byte every 50 ms: each read succeeds, but the overall deadline
    must end the fetch after http_timeout."""
    def drip(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"keys\": [")
        for _ in range(400):
            conn.sendall(b" ")
            time.sleep(0.05)

    server = raw_servers(drip)
    v = validator_for(issuer, jwks_uri=server.url("/jwks"))
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as info:
        v.validate_access_token(issuer.mint())
    assert time.monotonic() - t0 < HTTP_TIMEOUT + 0.5
    assert "timed out" in info.value.description


# --- many threads during an outage ----------------------------------------------


def _hammer(v, tokens: Dict[str, str], seconds: float, threads: int = 32):
    """Call validate_access_token from many threads; return (outcomes by
    token kind, max latency, number of calls)."""
    outcomes: Counter = Counter()
    latencies: List[float] = []
    lock = threading.Lock()
    kinds = sorted(tokens)
    stop_at = time.monotonic() + seconds

    def worker(offset: int) -> None:
        n = offset
        local: Counter = Counter()
        worst = 0.0
        while time.monotonic() < stop_at:
            kind = kinds[n % len(kinds)]
            n += 1
            t0 = time.perf_counter()
            try:
                v.validate_access_token(tokens[kind])
                outcome = "valid"
            except ProviderError:
                outcome = "ProviderError"
            except InvalidToken:
                outcome = "InvalidToken"
            except Exception as exc:  # anything else is a bug
                outcome = "BUG " + type(exc).__name__
            worst = max(worst, time.perf_counter() - t0)
            local[(kind, outcome)] += 1
        with lock:
            outcomes.update(local)
            latencies.append(worst)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return outcomes, max(latencies), sum(outcomes.values())


@pytest.mark.parametrize("outage", ["slow-past-timeout", "connection-refused", "http-500"])
@pytest.mark.parametrize("stale", [False, True], ids=["fresh-jwks", "jwks-ttl-expired"])
def test_no_caller_waits_past_the_timeout_during_an_outage(issuer, stale, outage, capsys):
    """32 threads, known and unknown kids, during a JWKS outage (the worst
    case for waiting: answering after 6x the timeout).  With ``stale`` the
    cached JWKS is past its lifetime too, so known-kid calls also run into
    refreshes."""
    v = validator_for(issuer, jwks_cooldown=COOLDOWN, cache_size=0)
    known = issuer.mint()
    if stale:
        # the issuer says max-age=0 and the set accepts that lifetime: every
        # use of the key set finds it stale and wants a refresh
        v.keys.min_ttl = 0.0
        issuer.jwks_max_age = 0
    v.validate_access_token(known)
    unknown = {f"unknown-{i}": issuer.mint(kid=issuer.add_key(publish=False)) for i in range(4)}
    rotated = issuer.mint(kid=issuer.rotate())
    OUTAGES[outage](issuer)
    issuer.reset_counts()
    tokens = dict(unknown, known=known, rotated=rotated)
    seconds = 2.0
    outcomes, worst, calls = _hammer(v, tokens, seconds)
    jwks_fetches = issuer.fetch_counts["jwks"]  # (a stopped issuer counts nothing: refused)
    with capsys.disabled():
        print(f"\n[reliability] JWKS outage {outage} ({'stale' if stale else 'fresh'} key set): "
              f"{calls} validations from 32 threads in {seconds:g} s, worst latency {worst * 1000:.0f} ms "
              f"(bound {LATENCY_BOUND * 1000:.0f} ms), JWKS fetches {jwks_fetches}, outcomes {dict(outcomes)}")
    assert not [k for k in outcomes if k[1].startswith("BUG")]
    assert worst < LATENCY_BOUND
    # last-known-good: the known key never failed
    assert outcomes[("known", "valid")] > 0
    assert not [k for k in outcomes if k[0] == "known" and k[1] != "valid"]
    # unknown and rotated kids: provider trouble, never "invalid token"
    assert not [k for k in outcomes if k[0] != "known" and k[1] != "ProviderError"]
    # one fetch in flight at a time, at most one unknown-kid refetch per cooldown
    # (stale: plus retries of the lifetime refresh, one per retry interval)
    assert jwks_fetches <= seconds / COOLDOWN + 2
    if outage != "connection-refused":
        assert jwks_fetches >= 1


def test_cold_start_outage_many_threads(issuer, caplog):
    """No key known yet and discovery hangs: every caller gets 503 quickly,
    the provider sees one attempt per retry interval, not one per call, and
    the cause is logged once."""
    issuer.set_fault("discovery", delay=HTTP_TIMEOUT * 6)
    v = validator_for(issuer, jwks_cooldown=COOLDOWN)
    with caplog.at_level(logging.WARNING, logger="oidc_guard"):
        outcomes, worst, calls = _hammer(v, {"token": issuer.mint()}, 2.0, threads=16)
    assert set(k[1] for k in outcomes) == {"ProviderError"}, outcomes
    assert worst < LATENCY_BOUND
    assert issuer.fetch_counts["discovery"] <= 2.0 / COOLDOWN + 2
    assert len([r for r in caplog.records if "timed out" in r.getMessage()]) == 1, \
        [r.getMessage() for r in caplog.records]


def test_response_head_dripped_forever_is_cut_at_the_timeout(raw_servers, issuer):
    """Slowloris on the response head: a header line every 50 ms, never
    ending the head.  Per-read socket timeouts alone would never fire."""
    def drip_head(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\n")
        for i in range(400):
            conn.sendall(b"X-Drip-%d: 1\r\n" % i)
            time.sleep(0.05)

    server = raw_servers(drip_head)
    v = validator_for(issuer, jwks_uri=server.url("/jwks"))
    t0 = time.monotonic()
    with pytest.raises(ProviderError):
        v.validate_access_token(issuer.mint())
    assert time.monotonic() - t0 < HTTP_TIMEOUT + 0.5


# --- logs: once per outage -------------------------------------------------------


def _outage_with_traffic(issuer, caplog, requests: int = 200):
    """``requests`` requests through the middleware during a JWKS outage
    (HTTP 500), half with a kid the validator has not seen, then recovery."""
    v = validator_for(issuer, jwks_cooldown=COOLDOWN, cache_size=0)
    app = protected_app(v)
    old_token = issuer.mint()
    v.validate_access_token(old_token)
    issuer.rotate()
    new_token = issuer.mint()
    issuer.set_fault("jwks", status=500)
    statuses = Counter()
    with caplog.at_level(logging.INFO, logger="oidc_guard"):
        for i in range(requests):
            token = new_token if i % 2 else old_token
            statuses[call_wsgi(app, authorization="Bearer " + token).status] += 1
        issuer.clear_faults()
        time.sleep(COOLDOWN + 0.1)
        assert call_wsgi(app, authorization="Bearer " + new_token).status == 200
    assert statuses == {200: requests // 2, 503: requests // 2}
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_key_set_logs_the_cause_once_per_outage(issuer, caplog):
    loud = [r for r in _outage_with_traffic(issuer, caplog) if r.name == "oidc_guard.jwks"]
    assert len([r for r in loud if "HTTP 500" in r.getMessage()]) == 1, [r.getMessage() for r in loud]
    assert len([r for r in loud if "reachable again" in r.getMessage()]) == 1


def test_outage_is_not_logged_once_per_request(issuer, caplog):
    """Operators get one WARNING naming the cause when the outage starts
    (and one when it ends), not one per request: 100 requests during the
    outage must not produce 100 warnings."""
    loud = _outage_with_traffic(issuer, caplog)
    naming_cause = [r for r in loud if "HTTP 500" in r.getMessage()]
    assert len(naming_cause) == 1, [f"{r.name}: {r.getMessage()}" for r in naming_cause][:3]


# --- key rotation while requests are being served -------------------------------


def test_key_rotation_mid_traffic(issuer):
    """16 threads keep validating fresh tokens (cache on, default cooldown)
    while the issuer rotates its signing key and later retires the old one.
    Every token signed by a published key validates; the rotation costs one
    JWKS fetch; after retirement the old key's tokens (even cached ones)
    are refused."""
    v = validator_for(issuer)  # production defaults: cooldown 30 s, cache on
    old_kid = issuer.signing_kid
    old_tokens = [issuer.mint() for _ in range(20)]
    for t in old_tokens:
        v.validate_access_token(t)
    rotated = threading.Event()
    stop = threading.Event()
    failures: List[str] = []
    counts = Counter()
    lock = threading.Lock()

    def worker(i: int) -> None:
        n = 0
        while not stop.is_set():
            use_new = rotated.is_set() and n % 2 == 0
            token = issuer.mint(kid=new_kid_box[0]) if use_new else old_tokens[(i + n) % len(old_tokens)]
            n += 1
            try:
                v.validate_access_token(token)
                with lock:
                    counts["new" if use_new else "old"] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is reported
                with lock:
                    failures.append(f"{'new' if use_new else 'old'}: {exc!r}")

    new_kid_box = [None]
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    issuer.reset_counts()
    for t in pool:
        t.start()
    time.sleep(0.5)
    new_kid_box[0] = issuer.rotate()
    rotated.set()
    time.sleep(1.5)
    stop.set()
    for t in pool:
        t.join()
    assert not failures, failures[:5]
    assert counts["new"] > 0 and counts["old"] > 0
    assert issuer.fetch_counts["jwks"] == 1, issuer.fetch_counts  # the rotation, once for all threads

    # retire the old key: once the JWKS is re-read its tokens are refused,
    # also those in the verified-token cache
    issuer.remove_key(old_kid)
    v.keys.refresh()
    with pytest.raises(InvalidToken):
        v.validate_access_token(old_tokens[0])
    assert v.validate_access_token(issuer.mint()).subject == "alice"


# --- clock skew ------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("leeway", [0, 60, 300])
def test_clock_skew_within_leeway(issuer, leeway):
    now = time.time()
    clock = Clock(now)
    v = validator_for(issuer, leeway=leeway, clock=clock)
    token = issuer.mint(expires_in=120, now=now)
    assert v.validate_access_token(token)

    # our clock runs fast: the token expired 120 s after issue, plus leeway
    clock.now = now + 120 + leeway - 1
    assert v.validate_access_token(token)  # a cache hit must honour the clock too
    clock.now = now + 120 + leeway + 1
    with pytest.raises(InvalidToken, match="expired"):
        v.validate_access_token(token)

    # the provider's clock runs fast: iat/nbf in our future
    clock.now = now
    ahead = issuer.mint(now=now + leeway - 5)
    assert v.validate_access_token(ahead)
    too_far = issuer.mint(now=now + leeway + 30)
    with pytest.raises(InvalidToken, match="not valid before|future"):
        v.validate_access_token(too_far)


def test_clock_skew_cached_token_dies_at_exp(issuer):
    now = time.time()
    clock = Clock(now)
    v = validator_for(issuer, leeway=0, clock=clock)
    token = issuer.mint(expires_in=30, now=now)
    for _ in range(3):
        v.validate_access_token(token)  # cached
    clock.now = now + 31
    with pytest.raises(InvalidToken, match="expired"):
        v.validate_access_token(token)


# --- a flood of unknown kids must not become a flood of JWKS fetches -------------


def test_unknown_kid_flood_costs_one_fetch_per_cooldown(issuer):
    """32 threads sending tokens with kids the issuer never published, for a
    second, with a healthy (slightly slow) provider and the default 30 s
    cooldown: one refetch in total, shared by every thread, and every
    answer is InvalidToken (the provider is fine, the tokens are not)."""
    v = validator_for(issuer, cache_size=0)
    v.validate_access_token(issuer.mint())
    unknown = {f"unknown-{i}": issuer.mint(kid=issuer.add_key(publish=False)) for i in range(8)}
    issuer.set_fault("jwks", delay=0.05)  # a fetch in flight long enough for many threads to pile up
    issuer.reset_counts()
    outcomes, worst, calls = _hammer(v, unknown, 1.0)
    assert {k[1] for k in outcomes} == {"InvalidToken"}, outcomes
    assert issuer.fetch_counts["jwks"] == 1, issuer.fetch_counts
    assert worst < LATENCY_BOUND


def test_kid_reused_for_new_key_material_evicts_cached_tokens(issuers):
    """The provider keeps a kid but publishes different key material under
    it (a botched rotation, or a compromised key replaced in place).  After
    the next JWKS refresh, tokens verified with the old material, including
    those in the verified-token cache, must stop validating: the cache is
    keyed to the key's RFC 7638 thumbprint, not to its kid."""
    iss = issuers(algs=("RS256",))
    other = issuers(algs=("RS256",), fresh_keys=True)
    v = validator_for(iss)
    kid = iss.signing_kid
    token = iss.mint()
    for _ in range(3):
        assert v.validate_access_token(token).subject == "alice"  # now cached
    replacement = other.public_jwk(other.signing_kid)
    iss.jwk_overrides[kid] = {"n": replacement["n"], "e": replacement["e"]}
    v.keys.refresh()
    with pytest.raises(InvalidToken, match="signature"):
        v.validate_access_token(token)


def test_discovery_and_jwks_both_hanging(issuer):
    """The worst single fetch: the cached discovery document is due for a
    refresh and both endpoints hang.  The leader spends one timeout on
    discovery (keeping the old document) and one on the JWKS; followers wait
    for it, never longer than the bound."""
    v = validator_for(issuer, jwks_cooldown=COOLDOWN, cache_size=0)
    known = issuer.mint()
    v.validate_access_token(known)
    v.metadata.max_age = 0.0
    unknown = {f"unknown-{i}": issuer.mint(kid=issuer.add_key(publish=False)) for i in range(4)}
    issuer.set_fault("discovery", delay=HTTP_TIMEOUT * 6)
    issuer.set_fault("jwks", delay=HTTP_TIMEOUT * 6)
    outcomes, worst, calls = _hammer(v, dict(unknown, known=known), 2.0, threads=16)
    assert not [k for k in outcomes if k[0] == "known" and k[1] != "valid"], outcomes
    assert not [k for k in outcomes if k[0] != "known" and k[1] != "ProviderError"], outcomes
    assert worst < LATENCY_BOUND, worst


def test_rotation_right_after_an_unknown_kid_refetch_waits_for_the_cooldown(issuer):
    """The price of bounding refetches (docs/security.md: at most one unknown-kid
    refetch per cooldown): someone sends a junk kid, which spends the
    refetch; the provider then starts signing with a key it had not
    published before.  Those tokens are refused (401: the provider is
    healthy, the kid is unknown) until the cooldown ends, then accepted
    without a restart.  Providers avoid this window by publishing a new key
    before signing with it (OIDC Core 10.1); see SECURITY.md."""
    v = validator_for(issuer, jwks_cooldown=COOLDOWN, cache_size=0)
    v.validate_access_token(issuer.mint())
    junk = issuer.mint(kid=issuer.add_key(publish=False))
    with pytest.raises(InvalidToken, match="after refresh"):
        v.validate_access_token(junk)  # spends the refetch
    spent_at = time.monotonic()
    issuer.rotate()
    fresh = issuer.mint()
    with pytest.raises(InvalidToken, match="cooldown"):
        v.validate_access_token(fresh)
    while True:
        try:
            v.validate_access_token(fresh)
            break
        except InvalidToken:
            assert time.monotonic() - spent_at < COOLDOWN + HTTP_TIMEOUT + 1.0
            time.sleep(0.05)
    assert time.monotonic() - spent_at >= COOLDOWN - 0.05
