"""MultiIssuerValidator: choosing the member by the unverified iss, the
bounds on the resolver, and the middleware with two real LocalIssuers (one
in IdentityServer v3's token shape, one in RFC 9068's)."""

import json
import logging
import random
import threading
import time

import pytest
import webtest

from oidc_guard import (
    BearerMiddleware,
    ConfigurationError,
    InvalidToken,
    MultiIssuerValidator,
    ProviderError,
    TokenValidator,
)
from oidc_guard.testing import forge_token


def idsrv3_token(iss, **kwargs):
    """An access token shaped as IdentityServer v3 issues them: typ JWT,
    scope a JSON array, aud <issuer>/resources, no sub for a client token."""
    kwargs.setdefault("scope", ["contacts", "wte"])
    kwargs.setdefault("subject", None)
    return iss.mint(audience=iss.issuer + "/resources", typ="JWT", **kwargs)


@pytest.fixture
def old(make_issuer):
    return make_issuer(algs=("RS256",))


@pytest.fixture
def new(make_issuer):
    return make_issuer(algs=("ES256",), client_token_sub=True)


@pytest.fixture
def multi(old, new):
    return MultiIssuerValidator([
        TokenValidator(old.issuer, audience=old.issuer + "/resources", http_timeout=2),
        TokenValidator(new.issuer, audience="api://contacts", http_timeout=2),
    ])


def fetches(*issuers):
    return sum(sum(i.fetch_counts.values()) for i in issuers)


def random_iss_token(rng, signature=b"s" * 64):
    iss = "https://%08x.example/%s" % (rng.getrandbits(32), rng.getrandbits(16))
    return iss, forge_token({"alg": "RS256", "typ": "JWT", "kid": "k1"},
                            {"iss": iss, "aud": "api://contacts", "exp": int(time.time()) + 60},
                            signature=signature)


# --- choosing by iss -------------------------------------------------------------


def test_each_issuer_reaches_its_own_validator(multi, old, new):
    a = multi.validate_access_token(idsrv3_token(old))
    assert a.issuer == old.issuer and a.subject is None and a.scopes == {"contacts", "wte"}
    assert a.audiences == (old.issuer + "/resources",)
    b = multi.validate_access_token(new.mint(scope="contacts wte", subject="alice"))
    assert b.issuer == new.issuer and b.subject == "alice" and b.header["typ"] == "at+jwt"
    # each member fetched its own provider only
    assert old.fetch_counts["jwks"] == 1 and new.fetch_counts["jwks"] == 1


def test_repeated_token_is_routed_again_by_the_same_member(multi, new):
    token = new.mint()
    first = multi.validate_access_token(token)
    assert multi.validate_access_token(token) is first  # member's cache hit
    # the member still re-checks expiry on a routed hit
    late = new.mint(expires_in=-3600)
    with pytest.raises(InvalidToken, match="expired"):
        multi.validate_access_token(late)


def test_members_keep_their_own_audience(multi, old, new):
    # an old-shaped token for the new issuer's audience is refused by the
    # old member's audience rule, not accepted because another member would
    with pytest.raises(InvalidToken, match="audience"):
        multi.validate_access_token(old.mint(audience="api://contacts"))
    with pytest.raises(InvalidToken, match="audience"):
        multi.validate_access_token(new.mint(audience=new.issuer + "/resources"))


def test_untrusted_iss_is_refused_by_name_without_network(multi, old, new):
    token = old.mint(issuer="https://evil.example")
    with pytest.raises(InvalidToken) as info:
        multi.validate_access_token(token)
    assert "'https://evil.example'" in info.value.description
    assert "not trusted" in info.value.description
    assert fetches(old, new) == 0


def test_issuer_match_is_exact(multi, old):
    for variant in (old.issuer + "/", old.issuer.upper(), " " + old.issuer, old.issuer.replace("127.0.0.1", "localhost")):
        with pytest.raises(InvalidToken, match="not trusted"):
            multi.validate_access_token(old.mint(issuer=variant))
    assert fetches(old) == 0


def test_missing_or_non_string_iss(multi, old, new):
    with pytest.raises(InvalidToken, match="no iss claim"):
        multi.validate_access_token(old.mint(omit=("iss",)))
    with pytest.raises(InvalidToken, match="iss is not a string"):
        multi.validate_access_token(old.mint({"iss": [old.issuer]}))
    assert fetches(old, new) == 0


def test_hostile_iss_is_quoted_and_capped(multi, old):
    nasty = "https://x\r\nSet-Cookie: a=b/" + "A" * 5000
    with pytest.raises(InvalidToken) as info:
        multi.validate_access_token(old.mint(issuer=nasty))
    text = info.value.description
    assert "\r" not in text and "\n" not in text and "\\r\\n" in text
    assert len(text) < 200


def test_size_limit_comes_before_decoding(old, new):
    v = MultiIssuerValidator([TokenValidator(old.issuer, audience="a")], max_token_bytes=100)
    with pytest.raises(InvalidToken, match="limit is 100"):
        v.validate_access_token("a" * 50 + "." + "!" * 60 + ".b")  # not even base64url
    assert fetches(old) == 0


def test_parse_is_as_strict_as_the_validator(multi, old):
    good = old.mint()
    h, p, s = good.split(".")
    cases = {
        "segment": h + "." + p + "x.",          # 2 segments / empty signature
        "base64url": h + "." + p[:-1] + "*." + s,
        "JSON": h + ".bm90IGpzb24." + s,        # "not json"
    }
    for token in cases.values():
        with pytest.raises(InvalidToken):
            multi.validate_access_token(token)
    dup = forge_token({"alg": "RS256"}, {}, signature=b"x").split(".")
    dup[1] = "eyJpc3MiOiJhIiwiaXNzIjoiYiJ9"  # {"iss":"a","iss":"b"}
    with pytest.raises(InvalidToken, match="duplicate member"):
        multi.validate_access_token(".".join(dup))
    with pytest.raises(InvalidToken, match="must be a string"):
        multi.validate_access_token(None)
    assert fetches(old) == 0


def test_payload_alphabet_is_checked_before_choosing_a_member(multi, old):
    # The payload segment is converted and alphabet-checked in one
    # translate: standard-base64 "+" "/", padding "=", the marker byte "!"
    # itself and any other byte are refused with the validator's own shape
    # message, before any member (or the network) is involved.
    h, p, s = old.mint().split(".")
    for char in ("+", "/", "=", "!", " ", "%", "\x7f"):
        for pos in (0, 7, len(p)):
            token = f"{h}.{p[:pos]}{char}{p[pos:]}.{s}"
            with pytest.raises(InvalidToken, match="base64url alphabet"):
                multi.validate_access_token(token)
    assert fetches(old) == 0


def test_a_token_naming_another_trusted_issuer_fails_that_issuers_checks(multi, old, new):
    # signed by old's key but claiming new's iss: routed to new, whose keys
    # do not verify it
    forged = old.mint(issuer=new.issuer)
    with pytest.raises(InvalidToken):
        multi.validate_access_token(forged)
    assert old.fetch_counts["jwks"] == 0


def test_id_tokens_are_routed_too(multi, old, new):
    claims = multi.validate_id_token(new.mint_id_token("spa", nonce="n1"), client_id="spa", nonce="n1")
    assert claims.issuer == new.issuer
    claims = multi.validate_id_token(old.mint_id_token("spa"), client_id="spa")
    assert claims.issuer == old.issuer
    with pytest.raises(InvalidToken, match="not trusted"):
        multi.validate_id_token(old.mint_id_token("spa", extra={"iss": "https://x"}), client_id="spa")
    with pytest.raises(InvalidToken, match="not a JWT"):
        multi.validate_id_token("opaque", client_id="spa")


def test_duplicate_issuers_are_a_configuration_error(old):
    with pytest.raises(ConfigurationError, match="listed twice"):
        MultiIssuerValidator([TokenValidator(old.issuer, audience="a"), TokenValidator(old.issuer, audience="b")])
    with pytest.raises(ConfigurationError, match="at least one"):
        MultiIssuerValidator([])
    with pytest.raises(ConfigurationError, match="TokenValidator"):
        MultiIssuerValidator([object()])
    with pytest.raises(ConfigurationError):
        MultiIssuerValidator("https://idp")


def test_members_are_exposed(multi, old, new):
    assert [v.issuer for v in multi.validators] == [old.issuer, new.issuer]
    assert multi.issuers == (old.issuer, new.issuer)
    assert multi.validator_for(new.issuer) is multi.validators[1]
    assert multi.validator_for("https://nope") is None
    assert multi.algorithms == multi.validators[0].algorithms | multi.validators[1].algorithms
    assert old.issuer in repr(multi)


# --- opaque tokens -----------------------------------------------------------------


def test_opaque_token_without_an_introspecting_member(multi, old, new):
    with pytest.raises(InvalidToken, match="no trusted issuer accepts reference tokens"):
        multi.validate_access_token("2YotnFZFEjr1zCsicMWpAA")
    assert fetches(old, new) == 0


def test_opaque_token_goes_to_the_one_introspecting_member(old, loopback):
    """RFC 7662: the opaque token is introspected by the member with
    credentials; the JWT member is never asked."""
    endpoint = loopback.json("/introspect", json.dumps({
        "active": True, "iss": "https://idsrv3.example", "sub": "alice", "client_id": "spa",
        "scope": "contacts", "exp": int(time.time()) + 60}))
    # IdentityServer's endpoint answers only for tokens meant for the calling
    # API, and without aud: the setting that accepts such answers
    intro = TokenValidator("https://idsrv3.example", audience="https://idsrv3.example/resources",
                           introspection_client_id="contacts-api", introspection_client_secret="s3cret",
                           introspection_endpoint=endpoint, introspection_audience_optional=True)
    v = MultiIssuerValidator([TokenValidator(old.issuer, audience="a"), intro])
    claims = v.validate_access_token("2YotnFZFEjr1zCsicMWpAA")
    assert claims.subject == "alice" and claims.scopes == {"contacts"}
    assert loopback.counts["/introspect"] == 1 and fetches(old) == 0
    with pytest.raises(ConfigurationError, match="only one member may introspect"):
        MultiIssuerValidator([intro, TokenValidator("https://other.example", audience="a",
                                                    introspection_client_id="c", introspection_client_secret="d")])
    # "local" mode does not introspect: the opaque token finds no member
    local = TokenValidator("https://idsrv3.example", audience="a", introspection_client_id="c",
                           introspection_client_secret="d", validation_mode="local")
    with pytest.raises(InvalidToken, match="no trusted issuer accepts reference tokens"):
        MultiIssuerValidator([local]).validate_access_token("2YotnFZFEjr1zCsicMWpAA")
    assert loopback.counts["/introspect"] == 1


def test_dotted_opaque_tokens_go_to_the_introspecting_member(old, loopback):
    """The member is chosen by the rule of validation_mode "both"
    (validator.looks_like_jws): only a token with the shape of a compact
    JWS is routed by its iss; any other -- the RFC 7662 / RFC 9449 example
    mF_9.B5f-4.1JqM, five segments, a JSON first segment without alg -- is
    a reference token for the introspecting member."""
    endpoint = loopback.json("/introspect", json.dumps({
        "active": True, "iss": "https://idsrv3.example", "aud": "https://idsrv3.example/resources",
        "sub": "alice", "client_id": "spa", "scope": "contacts", "exp": int(time.time()) + 60}))
    intro = TokenValidator("https://idsrv3.example", audience="https://idsrv3.example/resources",
                           introspection_client_id="contacts-api", introspection_client_secret="s3cret",
                           introspection_endpoint=endpoint)
    v = MultiIssuerValidator([TokenValidator(old.issuer, audience=old.audience, http_timeout=2), intro])
    opaque = ("mF_9.B5f-4.1JqM", "abc.def.ghi.jkl.mno", "eyJ0eXAiOiJKV1QifQ.e30.c2ln")
    for n, token in enumerate(opaque, 1):
        assert v.validate_access_token(token).subject == "alice"
        assert loopback.counts["/introspect"] == n
    assert v.choose("mF_9.B5f-4.1JqM") is intro
    # a JWT is still routed by its iss, and never introspected
    assert v.validate_access_token(old.mint()).subject == "alice"
    # JWS-shaped but broken: refused by routing, nothing introspected
    with pytest.raises(InvalidToken, match="no iss claim"):
        v.validate_access_token("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
    assert loopback.counts["/introspect"] == len(opaque) and fetches(old) == 2
    # an ID Token is never opaque: the old messages stay
    with pytest.raises(InvalidToken, match="segment"):
        v.validate_id_token("mF_9.B5f-4.1JqM", client_id="spa")


# --- middleware ------------------------------------------------------------------


def _app(environ, start_response):
    claims = environ.get("oidc_guard.claims")
    body = json.dumps({"iss": claims.issuer if claims else None}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def test_middleware_with_two_issuers(multi, old, new):
    app = webtest.TestApp(BearerMiddleware(_app, multi, realm="r", required=True))
    for iss, token in ((old, idsrv3_token(old)), (new, new.mint())):
        r = app.get("/", headers={"Authorization": "Bearer " + token})
        assert r.json == {"iss": iss.issuer}
    r = app.get("/", headers={"Authorization": "Bearer " + old.mint(issuer="https://evil.example")},
                status=401)
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert "https://evil.example" in r.json["error_description"]


def test_one_provider_down_leaves_the_other_working(multi, old, new):
    old.stop()
    app = webtest.TestApp(BearerMiddleware(_app, multi, required=True))
    app.get("/", headers={"Authorization": "Bearer " + old.mint()}, status=503)
    assert app.get("/", headers={"Authorization": "Bearer " + new.mint()}).json == {"iss": new.issuer}


# --- check() -----------------------------------------------------------------------


def test_check_checks_every_member_and_names_the_failing_one(multi, old, new, make_issuer):
    multi.check()
    assert old.fetch_counts["jwks"] >= 1 and new.fetch_counts["jwks"] >= 1
    down = make_issuer()
    v = MultiIssuerValidator([TokenValidator(down.issuer, audience="a", http_timeout=1),
                              TokenValidator(new.issuer, audience="a")])
    down.stop()
    new.reset_counts()
    with pytest.raises(ProviderError) as info:
        v.check()
    assert repr(down.issuer) in info.value.description and new.issuer not in info.value.description
    assert new.fetch_counts["jwks"] >= 1  # the second member was checked too


# --- the resolver --------------------------------------------------------------------


class Directory:
    """A tenant directory: the resolver asks it, counting calls."""

    def __init__(self, tenants):
        self.tenants = dict(tenants)
        self.calls = []
        self.created = []
        self.lock = threading.Lock()
        self.fail = False
        self.delay = 0.0

    def __call__(self, issuer):
        with self.lock:
            self.calls.append(issuer)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("tenant directory unreachable (password=hunter2)")
        audience = self.tenants.get(issuer)
        if audience is None:
            return None
        v = TokenValidator(issuer, audience=audience, http_timeout=2)
        with self.lock:
            self.created.append(v)
        return v


def test_resolver_builds_a_validator_once_per_tenant(old, new):
    d = Directory({new.issuer: "api://contacts"})
    v = MultiIssuerValidator([TokenValidator(old.issuer, audience="a")], resolver=d)
    for _ in range(3):
        assert v.validate_access_token(new.mint()).issuer == new.issuer
    assert d.calls == [new.issuer] and len(d.created) == 1
    assert v.validators[-1] is d.created[0] and v.resolved_count == 1


def test_resolver_refusals_are_cached_and_bounded(old, new):
    clock = [0.0]
    d = Directory({})
    v = MultiIssuerValidator([TokenValidator(old.issuer, audience="a")], resolver=d,
                             negative_cache_size=2, negative_ttl=10, clock=lambda: clock[0])
    token = new.mint()
    for _ in range(5):
        with pytest.raises(InvalidToken, match="not trusted"):
            v.validate_access_token(token)
    assert d.calls == [new.issuer]
    clock[0] = 11  # the refusal expired: asked again (the tenant may exist now)
    d.tenants[new.issuer] = "api://contacts"
    assert v.validate_access_token(token).issuer == new.issuer
    assert len(d.calls) == 2
    # the negative cache holds at most 2 issuers
    for i in range(5):
        with pytest.raises(InvalidToken):
            v.validate_access_token(old.mint(issuer=f"https://t{i}.example"))
    assert len(v._negative) == 2
    assert fetches(old) == 0


def test_resolver_is_offered_plausible_issuer_urls_only(old):
    d = Directory({})
    v = MultiIssuerValidator([], resolver=d)
    for bad in ("not a url", "ftp://x", "http://idp.example", "https://" + "a" * 3000, "javascript:alert(1)"):
        with pytest.raises(InvalidToken, match="not trusted"):
            v.validate_access_token(old.mint(issuer=bad))
    assert d.calls == []
    v2 = MultiIssuerValidator([], resolver=d, allow_http=True)
    with pytest.raises(InvalidToken):
        v2.validate_access_token(old.mint(issuer="http://idp.example"))
    assert d.calls == ["http://idp.example"]


def test_resolver_failure_is_503_logged_without_secrets_and_not_cached(new, caplog):
    clock = [0.0]
    d = Directory({new.issuer: "api://contacts"})
    d.fail = True
    v = MultiIssuerValidator([], resolver=d, resolver_backoff=5, clock=lambda: clock[0])
    token = new.mint()
    caplog.set_level(logging.ERROR, logger="oidc_guard.multi")
    with pytest.raises(ProviderError) as info:
        v.validate_access_token(token)
    assert "resolver failed" in info.value.description and "hunter2" not in info.value.description
    assert info.value.status == 503
    assert any("resolver raised" in r.getMessage() for r in caplog.records)
    # during the back-off, new issuers get 503 without a resolver call
    for i in range(50):
        with pytest.raises(ProviderError) as info:
            v.validate_access_token(new.mint(issuer=f"https://t{i}.example"))
        assert 1 <= info.value.retry_after <= 5
    assert len(d.calls) == 1
    clock[0] = 6
    with pytest.raises(ProviderError):
        v.validate_access_token(token)  # asked again: still failing
    assert len(d.calls) == 2
    d.fail = False  # the directory is back: the tenant works after the back-off
    clock[0] = 12
    assert v.validate_access_token(token).issuer == new.issuer
    assert len(d.calls) == 3


def test_resolver_returning_a_validator_for_another_issuer_is_refused(old, new):
    v = MultiIssuerValidator([], resolver=lambda iss: TokenValidator(old.issuer, audience="a"))
    with pytest.raises(ProviderError, match="unusable validator"):
        v.validate_access_token(new.mint())
    assert v.validators == () and fetches(old, new) == 0


def test_concurrent_requests_for_a_new_tenant_make_one_validator(new):
    d = Directory({new.issuer: "api://contacts"})
    d.delay = 0.2
    v = MultiIssuerValidator([], resolver=d)
    token = new.mint()
    results, errors = [], []
    barrier = threading.Barrier(16)

    def run():
        barrier.wait()
        try:
            results.append(v.validate_access_token(token).issuer)
        except Exception as exc:  # pragma: no cover - the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and results == [new.issuer] * 16
    assert len(d.calls) == 1 and len(d.created) == 1 and v.resolved_count == 1


def test_ten_thousand_random_issuers_cost_nothing(old, new):
    """The figure of issue 12: 10,000 tokens with random iss values make 0
    network requests and 0 validators, with a static list and with a
    resolver that only trusts its directory."""
    rng = random.Random(12)
    static = MultiIssuerValidator([TokenValidator(old.issuer, audience="a"), TokenValidator(new.issuer, audience="b")])
    d = Directory({new.issuer: "api://contacts"})
    resolving = MultiIssuerValidator([TokenValidator(old.issuer, audience="a")], resolver=d,
                                     negative_cache_size=1000)
    refused = 0
    for _ in range(10000):
        _, token = random_iss_token(rng)
        for v in (static, resolving):
            try:
                v.validate_access_token(token)
            except InvalidToken:
                refused += 1
    assert refused == 20000
    assert fetches(old, new) == 0
    assert len(static.validators) == 2 and len(resolving.validators) == 1
    assert d.created == [] and resolving.resolved_count == 0
    assert len(resolving._negative) == 1000


def test_permissive_resolver_creates_at_most_max_resolved(old, caplog):
    """Even a resolver that trusts every issuer it is offered (a user bug)
    makes at most max_resolved validators, however many iss values come."""
    created = []

    def trust_all(issuer):
        created.append(TokenValidator(issuer, audience="a", http_timeout=1))
        return created[-1]

    caplog.set_level(logging.WARNING, logger="oidc_guard.multi")
    v = MultiIssuerValidator([], resolver=trust_all, max_resolved=5)
    rng = random.Random(7)
    for _ in range(10000):
        # never fetched: the token is refused by routing before any member
        # is used, or the member's discovery at an unroutable host would be
        # tried; use names the resolver accepts but that stay unvalidated
        iss = f"https://t{rng.getrandbits(40)}.invalid"
        try:
            v.choose(forge_token({"alg": "RS256"}, {"iss": iss}, signature=b"s"))
        except ProviderError:
            pass  # past the bound: 503 (see below)
    assert len(created) == 5 and v.resolved_count == 5 and len(v.validators) == 5
    assert sum("maximum of 5" in r.getMessage() for r in caplog.records) == 1
    # past the bound a new issuer is 503, never 401: the server cannot take
    # another tenant, which says nothing about the token
    with pytest.raises(ProviderError, match="maximum of 5"):
        v.choose(forge_token({"alg": "RS256"}, {"iss": "https://one-more.invalid"}, signature=b"s"))


# --- the resolver under concurrency: undecided is 503, never 401 -----------------------


class SlowDirectory:
    """A resolver whose answer for each issuer waits on a gate (a real
    threading.Event) or a delay; junk issuers are refused (None)."""

    def __init__(self, tenants, delay=0.0):
        self.tenants = dict(tenants)
        self.delay = delay
        self.gates = {}
        self.started = threading.Semaphore(0)
        self.lock = threading.Lock()
        self.calls = []

    def __call__(self, issuer):
        with self.lock:
            self.calls.append(issuer)
        self.started.release()
        gate = self.gates.get(issuer)
        if gate is not None:
            gate.wait(30)
        elif issuer not in self.tenants:
            time.sleep(self.delay)
        audience = self.tenants.get(issuer)
        return None if audience is None else TokenValidator(issuer, audience=audience, http_timeout=2)


def junk_token(n):
    return forge_token({"alg": "RS256"}, {"iss": f"https://junk{n}.example"}, signature=b"s")


def in_threads(fn, args):
    """Run fn(arg) for every arg in its own thread; returns the threads and
    the results list of (arg, outcome) filled as they end."""
    out = []

    def run(arg):
        try:
            out.append((arg, fn(arg)))
        except Exception as exc:
            out.append((arg, exc))

    threads = [threading.Thread(target=run, args=(arg,), daemon=True) for arg in args]
    for t in threads:
        t.start()
    return threads, out


def test_junk_issuers_resolving_at_once_do_not_refuse_a_real_tenant(new):
    # The figures: a 1.5 s resolver, max_resolved=5, five junk
    # issuers resolving at once; a real new tenant arriving meanwhile used to
    # get 401 "not trusted" because calls in flight counted against the bound.
    d = SlowDirectory({new.issuer: "api://contacts"}, delay=1.5)
    v = MultiIssuerValidator([], resolver=d, max_resolved=5)
    threads, out = in_threads(lambda n: v.validate_access_token(junk_token(n)), range(5))
    for _ in range(5):
        assert d.started.acquire(timeout=5)  # all five are inside the resolver
    assert len(v._in_flight) == 5
    claims = v.validate_access_token(new.mint())
    assert claims.issuer == new.issuer and v.resolved_count == 1
    for t in threads:
        t.join(10)
    # the junk got the resolver's definite answer: 401
    assert len(out) == 5 and all(isinstance(exc, InvalidToken) and "not trusted" in exc.description
                                 for _n, exc in out)


def test_all_resolution_slots_busy_means_wait_then_503_never_401(new):
    d = SlowDirectory({new.issuer: "api://contacts"}, delay=1.0)
    v = MultiIssuerValidator([], resolver=d, max_concurrent_resolutions=2, resolver_timeout=5)
    threads, _out = in_threads(lambda n: v.validate_access_token(junk_token(n)), range(2))
    for _ in range(2):
        assert d.started.acquire(timeout=5)
    started = time.monotonic()
    assert v.validate_access_token(new.mint()).issuer == new.issuer  # waited for a free slot
    assert 0.5 < time.monotonic() - started < 4.5
    for t in threads:
        t.join(10)

    # slots busy for longer than resolver_timeout: 503 with Retry-After, not 401
    v = MultiIssuerValidator([], resolver=d, max_concurrent_resolutions=2, resolver_timeout=0.3)
    threads, _out = in_threads(lambda n: v.validate_access_token(junk_token(100 + n)), range(2))
    for _ in range(2):
        assert d.started.acquire(timeout=5)
    started = time.monotonic()
    with pytest.raises(ProviderError, match="slots stayed busy") as info:
        v.validate_access_token(new.mint())
    assert time.monotonic() - started < 3.0 and info.value.retry_after >= 1
    assert v.validators == ()  # the tenant was not asked about, nothing remembered
    for t in threads:
        t.join(10)


def test_waiters_behind_a_hanging_resolver_get_503_within_the_timeout(new, caplog):
    caplog.set_level(logging.ERROR, logger="oidc_guard.multi")
    d = SlowDirectory({new.issuer: "api://contacts"})
    gate = d.gates[new.issuer] = threading.Event()
    v = MultiIssuerValidator([], resolver=d, resolver_timeout=0.5, resolver_backoff=0)
    token = new.mint()
    leader, leader_out = in_threads(v.validate_access_token, [token])
    assert d.started.acquire(timeout=5)  # the leader hangs inside the resolver
    started = time.monotonic()
    waiters, out = in_threads(v.validate_access_token, [token] * 4)
    for t in waiters:
        t.join(5)
    elapsed = time.monotonic() - started
    assert len(out) == 4 and all(isinstance(exc, ProviderError) for _t, exc in out), out
    assert 0.4 < elapsed < 3.0
    assert d.calls == [new.issuer]  # the waiters never called the resolver themselves
    assert any("has not answered" in r.getMessage() for r in caplog.records)
    # Through the middleware: 503 with Retry-After and no challenge
    api = webtest.TestApp(BearerMiddleware(_whoami_app, v, realm="r", required=True))
    r = api.get("/", headers={"Authorization": "Bearer " + token}, status=503)
    assert int(r.headers["Retry-After"]) >= 1 and "WWW-Authenticate" not in r.headers
    # once the resolver answers, the tenant works, for the leader too
    gate.set()
    leader[0].join(10)
    assert leader_out[0][1].issuer == new.issuer
    assert v.validate_access_token(token).issuer == new.issuer


def _whoami_app(environ, start_response):
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


def test_resolver_concurrency_settings_are_checked():
    for kwargs in ({"max_concurrent_resolutions": 0}, {"resolver_timeout": 0}, {"resolver_timeout": -1}):
        with pytest.raises(ConfigurationError):
            MultiIssuerValidator([], resolver=lambda iss: None, **kwargs)


# --- the header guess (first sight of a token) ------------------------------------


def test_first_sight_guess_by_header_still_routes_by_iss(make_issuer):
    a = make_issuer(algs=("RS256",))
    b = make_issuer(algs=("RS256",), fresh_keys=True)
    # b signs with a key of its own under a's kid: both issuers' tokens have
    # the very same header segment
    b.signing_kid = b.add_key("RS256", kid=a.signing_kid)
    v = MultiIssuerValidator([TokenValidator(a.issuer, audience="api://contacts", cache_size=0),
                              TokenValidator(b.issuer, audience="api://contacts", cache_size=0)])
    ta, tb = a.mint(), b.mint()
    assert ta.split(".")[0] == tb.split(".")[0]
    for _ in range(3):
        assert v.validate_access_token(a.mint()).issuer == a.issuer
        assert v.validate_access_token(b.mint()).issuer == b.issuer
    assert a.fetch_counts["jwks"] == 1 and b.fetch_counts["jwks"] == 1  # no refetch for the other's tokens
    # a wrong guess never accepts: b's header, a's iss, b's key
    with pytest.raises(InvalidToken):
        v.validate_access_token(b.mint(issuer=a.issuer))
    # a token the guessed member refuses for its own reasons keeps that reason
    with pytest.raises(InvalidToken, match="expired"):
        v.validate_access_token(a.mint(expires_in=-3600))


def test_random_iss_behind_a_known_header_costs_no_request(multi, old, new):
    multi.validate_access_token(idsrv3_token(old))  # the header is now known
    old.reset_counts()
    new.reset_counts()
    rng = random.Random(3)
    for _ in range(2000):
        iss = "https://%08x.example" % rng.getrandbits(32)
        with pytest.raises(InvalidToken, match="not trusted"):
            multi.validate_access_token(idsrv3_token(old, claims={"iss": iss}))
    assert fetches(old, new) == 0
    assert len(multi.validators) == 2


def test_userinfo_goes_to_the_tokens_provider(multi, new):
    profile = multi.userinfo(new.mint(scope="openid profile", subject="alice"))
    assert profile["sub"] == "alice"
    assert new.fetch_counts.get("userinfo") == 1


def test_header_routing_never_sends_foreign_tokens_to_an_introspecting_member(make_issuer, new):
    # A member that introspects every token (validation_mode="introspection")
    # does not refuse a foreign iss before the network: tokens copying its
    # header must not be guessed to it, or each random iss would cost a call
    # at its introspection endpoint (and a real token of another issuer would
    # be sent to the wrong provider).
    from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET

    intro = make_issuer(algs=("RS256",))
    multi = MultiIssuerValidator([
        TokenValidator(intro.issuer, audience=intro.audience, http_timeout=2, validation_mode="introspection",
                       introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret=INTROSPECTION_CLIENT_SECRET),
        TokenValidator(new.issuer, audience="api://contacts", http_timeout=2),
    ])
    token = intro.mint()
    assert multi.validate_access_token(token).issuer == intro.issuer
    header = token.split(".")[0]
    calls = intro.fetch_counts.get("introspection", 0)
    assert calls == 1
    rng = random.Random(7)
    for _ in range(20):
        _iss, forged = random_iss_token(rng)
        forged = header + forged[forged.index("."):]
        with pytest.raises(InvalidToken, match="not trusted"):
            multi.validate_access_token(forged)
    assert intro.fetch_counts.get("introspection", 0) == calls
