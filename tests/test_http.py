"""Fetching the provider's JSON documents (oidc_guard.http).

Every test talks to a real HTTP server on 127.0.0.1 (the ``loopback``
fixture): slow drips, oversized bodies, lying headers and redirects are
produced on the wire, not mocked.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from oidc_guard.errors import ProviderError
from oidc_guard import http
from oidc_guard.http import check_url, fetch_json, is_loopback_host

TIMEOUT = 1.0
MARGIN = 1.0  # scheduling slack on a shared 2-core machine


def fetch(url, **kwargs):
    kwargs.setdefault("timeout", TIMEOUT)
    kwargs.setdefault("max_bytes", 64 * 1024)
    kwargs.setdefault("what", "JWKS")
    return fetch_json(url, **kwargs)


# --- scheme and host rules -----------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST", "127.0.0.1", "127.5.6.7", "::1", "[::1]", "api.localhost"],
)
def test_loopback_hosts(host):
    assert is_loopback_host(host) is True


@pytest.mark.parametrize(
    "host",
    [None, "", "example.com", "10.0.0.1", "192.168.1.1", "0.0.0.0", "localhost.example.com",
     "127.0.0.1.nip.io", "::2", "128.0.0.1"],
)
def test_non_loopback_hosts(host):
    assert is_loopback_host(host) is False


@pytest.mark.parametrize(
    "url",
    ["https://idp.example.com/jwks", "http://127.0.0.1:8080/jwks", "http://localhost/jwks",
     "http://[::1]:9000/jwks"],
)
def test_check_url_accepts_https_and_loopback_http(url):
    check_url(url, False, "jwks_uri")  # does not raise


def test_check_url_refuses_plain_http_on_a_network_host():
    with pytest.raises(ProviderError) as info:
        check_url("http://idp.example.com/jwks", False, "jwks_uri")
    assert "plain http" in info.value.description
    assert "allow_http=True" in info.value.description
    assert "http://idp.example.com/jwks" in info.value.description


def test_check_url_allow_http_opt_in():
    check_url("http://idp.example.com/jwks", True, "jwks_uri")  # does not raise


@pytest.mark.parametrize(
    "url",
    ["ftp://idp.example.com/jwks", "file:///etc/passwd", "gopher://127.0.0.1/", "idp.example.com/jwks",
     "javascript:alert(1)", ""],
)
@pytest.mark.parametrize("allow_http", [False, True])
def test_check_url_refuses_other_schemes_even_with_allow_http(url, allow_http):
    with pytest.raises(ProviderError):
        check_url(url, allow_http, "jwks_uri")


def test_check_url_https_without_host():
    with pytest.raises(ProviderError) as info:
        check_url("https:///jwks", False, "jwks_uri")
    assert "no host" in info.value.description


def test_fetch_refuses_plain_http_network_host_before_connecting():
    # 192.0.2.0/24 is TEST-NET-1: if a connection were attempted it would hang.
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        fetch("http://192.0.2.1/jwks")
    assert time.monotonic() - started < 0.5
    assert "plain http" in info.value.description


# --- happy path ----------------------------------------------------------------


def test_fetch_returns_the_json_object_and_headers(loopback):
    url = loopback.json("/jwks", '{"keys": []}', headers={"Cache-Control": "max-age=600"})
    resp = fetch(url + "?x=1")
    assert resp.json == {"keys": []}
    assert resp.status == 200
    assert resp.headers["cache-control"] == "max-age=600"  # names lower-cased
    assert resp.url == url + "?x=1"
    raw_path, headers = loopback.requests[0]
    assert raw_path == "/jwks?x=1"  # the query string is kept
    assert headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    "ctype", ["application/json", "application/json; charset=utf-8", "application/jwk-set+json",
              "Application/JSON", "application/problem+json"],
)
def test_json_content_types_accepted(loopback, ctype):
    url = loopback.json("/doc", '{"a": 1}', content_type=ctype)
    assert fetch(url).json == {"a": 1}


def test_no_proxy_from_the_environment(loopback, make_loopback, monkeypatch):
    proxy = make_loopback()
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.base)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = loopback.json("/doc", '{"a": 1}')
    assert fetch(url).json == {"a": 1}
    assert proxy.total == 0


def test_body_exactly_at_the_limit_is_accepted(loopback):
    body = json.dumps({"pad": "x" * 100})
    url = loopback.json("/doc", body)
    assert fetch(url, max_bytes=len(body)).json["pad"] == "x" * 100
    with pytest.raises(ProviderError) as info:
        fetch(url, max_bytes=len(body) - 1)
    assert "limit" in info.value.description


# --- bad answers ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 404, 403, 204])
def test_http_errors(loopback, status):
    url = loopback.json("/jwks", '{"keys": []}', status=status)
    with pytest.raises(ProviderError) as info:
        fetch(url)
    assert f"HTTP {status}" in info.value.description
    assert url in info.value.description
    assert info.value.description.startswith("JWKS ")


@pytest.mark.parametrize("ctype", ["text/html", "text/plain", "application/javascript", "application/jsonp", ""])
def test_non_json_content_type_refused(loopback, ctype):
    url = loopback.json("/jwks", '{"keys": []}', content_type=ctype)
    with pytest.raises(ProviderError) as info:
        fetch(url)
    assert "expected JSON" in info.value.description


def test_missing_content_type_refused(loopback):
    loopback.routes["/jwks"] = (200, {}, b'{"keys": []}')
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"))
    assert "content type" in info.value.description


@pytest.mark.parametrize("body", ['[{"keys": []}]', '"keys"', "42", "null", "true"])
def test_json_that_is_not_an_object_refused(loopback, body):
    url = loopback.json("/jwks", body)
    with pytest.raises(ProviderError) as info:
        fetch(url)
    assert "not an object" in info.value.description


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"keys": [', b"", b"\xff\xfe{}", b'{"a": NaN'])
def test_invalid_json_refused(loopback, body):
    loopback.routes["/jwks"] = (200, {"Content-Type": "application/json"}, body)
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"))
    assert "not valid JSON" in info.value.description


def test_connection_refused(loopback):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(ProviderError) as info:
        fetch(f"http://127.0.0.1:{port}/jwks")
    assert f"127.0.0.1:{port}" in info.value.description


# --- size limits -----------------------------------------------------------------------


def test_declared_content_length_over_the_limit_refused_before_reading(loopback):
    sent = []

    def big_declared(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        handler.wfile.write(b'{"keys": [')
        sent.append(True)
        # Then nothing: a client that tried to read 50 MB would hang here.
        loopback.stopping.wait(10)

    loopback.routes["/jwks"] = big_declared
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"), max_bytes=1000, timeout=5)
    assert time.monotonic() - started < 1.0  # did not wait for the body
    assert "52428800 bytes exceeds the 1000-byte limit" in info.value.description


def test_body_over_the_limit_without_content_length_refused(loopback):
    written = []

    def endless(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()  # HTTP/1.0, no Content-Length: the body ends at close
        handler.wfile.write(b'{"pad": "')
        for _ in range(200):  # up to 12.8 MB
            handler.wfile.write(b"x" * 65536)
            written.append(65536)
        handler.wfile.write(b'"}')

    loopback.routes["/jwks"] = endless
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"), max_bytes=100_000, timeout=5)
    assert "exceeds the 100000-byte limit" in info.value.description
    # The client stopped reading long before the server finished.
    time.sleep(0.1)
    assert sum(written) < 200 * 65536


def test_content_length_lying_small_is_still_bounded(loopback):
    def liar(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "10")
        handler.end_headers()
        handler.wfile.write(b'{"a": "' + b"x" * 500_000 + b'"}')

    loopback.routes["/jwks"] = liar
    # Reads at most what was declared; 10 bytes of that body are not JSON.
    with pytest.raises(ProviderError):
        fetch(loopback.url("/jwks"), max_bytes=1000)


# --- timeouts: one deadline for the whole request ------------------------------------


def _assert_times_out(url, timeout=TIMEOUT):
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        fetch(url, timeout=timeout)
    elapsed = time.monotonic() - started
    assert elapsed < timeout + MARGIN, f"took {elapsed:.2f} s for a {timeout} s timeout"
    assert "timed out" in info.value.description
    assert f"{timeout:g} s" in info.value.description
    return elapsed


def test_server_that_never_answers(loopback):
    loopback.routes["/jwks"] = lambda handler: loopback.stopping.wait(10)
    elapsed = _assert_times_out(loopback.url("/jwks"))
    assert elapsed >= TIMEOUT * 0.9


def test_server_that_drips_the_body_slowly(loopback):
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"{")
        handler.wfile.flush()
        for _ in range(100):  # one byte every 0.1 s: each read succeeds, the total must not
            if loopback.stopping.wait(0.1):
                return
            handler.wfile.write(b" ")
            handler.wfile.flush()

    loopback.routes["/jwks"] = drip
    _assert_times_out(loopback.url("/jwks"))


def test_server_that_drips_the_headers_slowly(loopback):
    # Slowloris on the response head: every single read succeeds within the
    # timeout, only an overall deadline stops it.
    def drip_headers(handler):
        handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
        handler.wfile.flush()
        for _ in range(12):
            if loopback.stopping.wait(0.3):
                return
            handler.wfile.write(b"X-Slow: 1\r\n")
            handler.wfile.flush()

    loopback.routes["/jwks"] = drip_headers
    _assert_times_out(loopback.url("/jwks"))


def test_redirects_share_one_deadline(loopback):
    def slow_redirect(handler):
        loopback.stopping.wait(0.4)
        handler.send_response(302)
        handler.send_header("Location", "/jwks")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    loopback.routes["/jwks"] = slow_redirect  # redirects to itself, 0.4 s each
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"), timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT + MARGIN
    assert "timed out" in info.value.description


# --- redirects ----------------------------------------------------------------------------


def _redirect(location, status=302):
    return (status, {"Location": location, "Content-Type": "text/plain"}, b"")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_same_origin_redirect_followed(loopback, status):
    loopback.routes["/jwks"] = _redirect("/keys/v2", status)
    target = loopback.json("/keys/v2", '{"keys": []}')
    resp = fetch(loopback.url("/jwks"))
    assert resp.json == {"keys": []}
    assert resp.url == target


def test_absolute_same_origin_redirect_followed(loopback):
    loopback.routes["/jwks"] = _redirect(loopback.url("/other"))
    loopback.json("/other", '{"ok": true}')
    assert fetch(loopback.url("/jwks")).json == {"ok": True}


def test_cross_origin_redirect_refused(loopback, make_loopback):
    attacker = make_loopback()
    attacker.json("/jwks", '{"keys": []}')
    loopback.routes["/jwks"] = _redirect(attacker.url("/jwks"))
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"))
    assert "another origin" in info.value.description
    assert attacker.total == 0


@pytest.mark.parametrize(
    "location",
    ["http://localhost:{port}/jwks2",  # same port, other host name
     "https://127.0.0.1:{port}/jwks2",  # other scheme
     "//127.0.0.2:{port}/jwks2",  # scheme-relative, other host
     "http://127.0.0.1:1/jwks2"],  # other port
)
def test_redirect_to_other_host_scheme_or_port_refused(loopback, location):
    loopback.json("/jwks2", '{"keys": []}')
    loopback.routes["/jwks"] = _redirect(location.format(port=loopback.port))
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"))
    assert "another origin" in info.value.description
    assert loopback.counts["/jwks2"] == 0


def test_redirect_loop_stops_after_three_redirects(loopback):
    loopback.routes["/jwks"] = _redirect("/jwks")
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"))
    assert "too many redirects" in info.value.description
    assert loopback.counts["/jwks"] == 4  # the request and 3 redirects


def test_redirect_without_location(loopback):
    loopback.routes["/jwks"] = (302, {"Content-Type": "text/plain"}, b"")
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"))
    assert "without Location" in info.value.description


def test_https_url_on_plain_server_is_a_provider_error(loopback):
    loopback.json("/jwks", '{"keys": []}')
    with pytest.raises(ProviderError) as info:
        fetch(f"https://127.0.0.1:{loopback.port}/jwks")
    assert "TLS error" in info.value.description or "127.0.0.1" in info.value.description


# --- every malformed body is a ProviderError with a plain reason (issue 9) -------------


MALFORMED = [
    ("[" * 100000, "nested too deeply"),
    ('{"a":' * 100000, "nested too deeply"),
    ('{"keys": NaN}', "NaN is not a JSON value"),
    ('{"keys": [-Infinity]}', "-Infinity is not a JSON value"),
    ('{"keys": [1e999]}', "out of range"),
    ('{"keys": [' + "9" * 5000 + "]}", "a number with too many digits"),
    (b'{"keys": ["\xff"]}', "not UTF-8"),
    (b'{"keys": ["\xed\xa0\x80"]}', "not UTF-8"),  # a UTF-8-encoded lone surrogate
    ("\ufeff{}", "Expecting value at line 1 column 1"),
]


@pytest.mark.parametrize("body, reason", MALFORMED, ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_malformed_bodies_are_provider_errors_with_a_reason(loopback, body, reason):
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    loopback.routes["/jwks"] = (200, {"Content-Type": "application/json"}, raw)
    with pytest.raises(ProviderError) as info:
        fetch(loopback.url("/jwks"), what="JWKS", max_bytes=512 * 1024)
    assert info.value.description == f"the JWKS response from {loopback.url('/jwks')} is not valid JSON: " \
                                     + info.value.description.split("is not valid JSON: ", 1)[1]
    assert reason in info.value.description


@pytest.mark.parametrize("kind", ["jwks", "discovery"])
@pytest.mark.parametrize("body, reason", MALFORMED[:6])
def test_malformed_provider_bodies_log_a_warning_not_an_error_traceback(kind, body, reason, caplog):
    import logging

    from oidc_guard import TokenValidator
    from oidc_guard.testing import LocalIssuer

    with LocalIssuer() as iss:
        iss.set_fault(kind, status=200, body=body)
        validator = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=2)
        with caplog.at_level(logging.INFO, logger="oidc_guard"):
            for _ in range(3):
                with pytest.raises(ProviderError) as info:
                    validator.validate_access_token(iss.mint())
    assert reason in info.value.description and "unexpectedly" not in info.value.description
    # (LocalIssuer's own start-up warning, oidc_guard.testing, is not the library's)
    library = [r for r in caplog.records if r.name != "oidc_guard.testing"]
    assert [r.levelno for r in library if r.levelno >= logging.WARNING] == [logging.WARNING]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("url", ["http://127.0.0.1/jwks\ud800", "http://127.0.0.1/jwks\u00e9", "http://127.0.0.1/a b",
                                 "http://127.0.0.1/a\r\nX-Evil: 1", "http://127.0.0.1/\x00", "http://127.0.0.1:99999x/"])
def test_urls_with_characters_outside_rfc3986_are_refused_in_words(url):
    with pytest.raises(ProviderError) as info:
        check_url(url, False, "jwks_uri")
    assert "jwks_uri" in info.value.description
    assert "\r" not in info.value.description and "\n" not in info.value.description


def test_repeated_response_fields_are_joined_not_dropped(loopback):
    """RFC 9110 section 5.3: two WWW-Authenticate lines are one list; the
    fetch layer joins them with ", " instead of keeping only the last."""
    loopback.routes["/api"] = (401, [("Content-Type", "application/json"),
                                     ("WWW-Authenticate", 'Bearer realm="a"'),
                                     ("WWW-Authenticate", 'DPoP algs="ES256"')], b"{}")
    raw = http.fetch(loopback.url("/api"), timeout=5, max_bytes=1024)
    assert raw.status == 401
    assert raw.headers["www-authenticate"] == 'Bearer realm="a", DPoP algs="ES256"'
