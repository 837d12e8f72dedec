"""Plain-HTTP OAuth 2.0 / OpenID Connect client helpers for the integration suite.

Standard library only (urllib, http.cookiejar, html.parser): the point is to
talk to the real provider the way any client would, without a client library
that could hide a mismatch.
"""

import base64
import hashlib
import http.cookiejar
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

HTTP_TIMEOUT = 10  # seconds; everything is on loopback
MAX_BODY = 1 << 20

# Everything here talks to 127.0.0.1: never through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def b64url_decode(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url_encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def jose_parts(token):
    """(header, payload) of a compact JWS, decoded WITHOUT verification.

    Only for describing what the provider sent (token shapes) and for
    building tampered variants; never for trusting anything.
    """
    header_b64, payload_b64, _sig = token.split(".")
    return json.loads(b64url_decode(header_b64)), json.loads(b64url_decode(payload_b64))


def get_json(url):
    with OPENER.open(url, timeout=HTTP_TIMEOUT) as resp:
        return json.loads(resp.read(MAX_BODY))


def _basic_auth(client_id, client_secret):
    # RFC 6749 section 2.3.1: id and secret are form-urlencoded, then joined
    # with ":" and base64-encoded (RFC 7617).
    pair = "%s:%s" % (urllib.parse.quote(client_id, safe=""), urllib.parse.quote(client_secret, safe=""))
    return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


def token_request(token_endpoint, form, client_id=None, client_secret=None):
    """POST to the token endpoint; return (status, json_body).

    With ``client_secret`` the client authenticates with client_secret_basic.
    Error answers (400/401) are returned, not raised, so tests can look at them.
    """
    body = urllib.parse.urlencode(form).encode("ascii")
    req = urllib.request.Request(token_endpoint, data=body, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("Accept", "application/json")
    if client_secret is not None:
        req.add_header("Authorization", _basic_auth(client_id, client_secret))
    try:
        with OPENER.open(req, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, json.loads(resp.read(MAX_BODY))
    except urllib.error.HTTPError as exc:
        raw = exc.read(MAX_BODY)
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"raw": raw.decode("utf-8", "replace")}


def client_credentials(token_endpoint, client_id, client_secret, scope, resource=None):
    """RFC 6749 section 4.4 (+ RFC 8707 ``resource``). Returns the token response."""
    form = {"grant_type": "client_credentials", "scope": scope}
    if resource is not None:
        form["resource"] = resource
    status, body = token_request(token_endpoint, form, client_id, client_secret)
    if status != 200:
        raise AssertionError("token endpoint answered %s: %r" % (status, body))
    return body


def pkce_pair():
    """RFC 7636 section 4.1/4.2: (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-]
    challenge = b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())
    return verifier, challenge


class _FormParser(HTMLParser):
    """Collects the first <form>: its action, method and <input> name/values."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.method = None
        self.inputs = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._done:
            return
        if tag == "form":
            self._in_form = True
            self.action = attrs.get("action")
            self.method = (attrs.get("method") or "get").lower()
        elif tag == "input" and self._in_form and attrs.get("name"):
            self.inputs[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the caller follows redirects itself


class DevLoginBrowser:
    """Drives the provider's built-in development login/consent screens.

    A minimal user agent: a cookie jar, redirects followed by hand (so the
    final redirect to the client's redirect_uri is captured, not fetched),
    and the one form on each interaction page submitted with a login name.
    """

    MAX_STEPS = 15

    def __init__(self, login="alice", password="any-password"):
        self.login = login
        self.password = password
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())
        self.pages = []  # (method, url, status) for failure messages

    def _request(self, method, url, form=None):
        data = urllib.parse.urlencode(form).encode("ascii") if form is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            resp = self.opener.open(req, timeout=HTTP_TIMEOUT)
        except urllib.error.HTTPError as exc:
            resp = exc  # 3xx (not followed) and 4xx/5xx land here
        with resp:
            status = resp.status if hasattr(resp, "status") else resp.code
            body = resp.read(MAX_BODY).decode("utf-8", "replace")
            location = resp.headers.get("Location")
        self.pages.append((method, url, status))
        return status, location, body

    def authorize(self, authorization_url, redirect_uri):
        """Follow the authorization request through login and consent.

        Returns the URL the provider finally redirected to (starting with
        ``redirect_uri``): the authorization response, in its query (code
        flow) or fragment (implicit flow).
        """
        method, url, form = "GET", authorization_url, None
        for _ in range(self.MAX_STEPS):
            status, location, body = self._request(method, url, form)
            if status in (301, 302, 303, 307, 308):
                target = urllib.parse.urljoin(url, location)
                if target.startswith(redirect_uri):
                    return target
                method, url, form = "GET", target, None
                continue
            if status != 200:
                raise AssertionError("provider answered %s at %s: %s" % (status, url, body[:500]))
            parser = _FormParser()
            parser.feed(body)
            if parser.action is None:
                raise AssertionError("no form on interaction page %s: %s" % (url, body[:500]))
            fields = dict(parser.inputs)
            if fields.get("prompt") == "login":
                fields["login"] = self.login
                fields["password"] = self.password
            method = "POST" if parser.method == "post" else "GET"
            url = urllib.parse.urljoin(url, parser.action)
            form = fields
        raise AssertionError("no redirect to the client after %d steps: %r" % (self.MAX_STEPS, self.pages))


def authorization_url(endpoint, **params):
    return endpoint + "?" + urllib.parse.urlencode(params)


def response_params(redirected_to, part):
    """Parameters of an authorization response from its query or fragment."""
    parsed = urllib.parse.urlsplit(redirected_to)
    raw = parsed.query if part == "query" else parsed.fragment
    return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


def token_shape(token):
    """What an access token looks like, for the closing note (no secrets:
    only header fields, claim names and the format of scope/aud)."""
    header, payload = jose_parts(token)
    scope = payload.get("scope")
    aud = payload.get("aud")
    return {
        "header": {k: header[k] for k in ("alg", "typ") if k in header},
        "claims": sorted(payload),
        "scope_format": ("space-delimited string" if isinstance(scope, str)
                         else "JSON array" if isinstance(scope, list) else repr(type(scope).__name__)),
        "scope": scope,
        "aud": aud,
        "sub": payload.get("sub"),
        "client_id": payload.get("client_id"),
        "lifetime_s": (payload["exp"] - payload["iat"]) if "exp" in payload and "iat" in payload else None,
    }


# Development clients of scripts/oidc-provider/provider.mjs (loopback only).
API = "api://contacts"
WORKER = ("wte-worker", "wte-secret")
SYNC = ("contacts-sync", "contacts-sync-dev-secret")
SERVER_APP = ("server-app", "server-app-dev-secret")
SERVER_APP_ES = ("server-app-es", "server-app-es-dev-secret")  # ES256-signed ID Tokens
SERVER_APP_REDIRECT = "http://127.0.0.1:1/callback"  # never fetched: the test reads the redirect
SPA_REDIRECT = "http://127.0.0.1:5002/"  # registered without port (native loopback, RFC 8252 7.3)
SPA = ("spa", None)  # public client


def cc_token(provider, client, scope, resource=API):
    return client_credentials(provider.token_endpoint, client[0], client[1], scope, resource)["access_token"]


def code_flow(provider, scope="openid profile email contacts", resource=API, login="alice", extra=None,
              client=SERVER_APP, redirect_uri=SERVER_APP_REDIRECT):
    """Authorization code + PKCE through the dev login. Returns (token response, nonce, code).

    ``client`` is (client_id, secret); a secret of None is a public client,
    which sends its client_id in the form instead of authenticating (RFC 6749 4.1.3).
    """
    client_id, secret = client
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = dict(client_id=client_id, response_type="code", redirect_uri=redirect_uri,
                  scope=scope, state=state, nonce=nonce,
                  code_challenge=challenge, code_challenge_method="S256")
    if resource:
        params["resource"] = resource
    params.update(extra or {})
    browser = DevLoginBrowser(login=login)
    redirected = browser.authorize(authorization_url(provider.authorization_endpoint, **params), redirect_uri)
    answer = response_params(redirected, "query")
    assert answer.get("state") == state, answer
    # RFC 9207: this provider also says who answered.
    assert answer.get("iss") == provider.issuer, answer
    assert "code" in answer, answer
    form = {"grant_type": "authorization_code", "code": answer["code"],
            "redirect_uri": redirect_uri, "code_verifier": verifier}
    if resource:
        form["resource"] = resource
    if secret is None:
        form["client_id"] = client_id
    status, body = token_request(provider.token_endpoint, form, client_id, secret)
    assert status == 200, body
    return body, nonce, answer["code"]


def implicit_flow(provider, scope="openid profile contacts wte coordinate", login="alice", extra=None):
    """Implicit ``id_token token`` through the dev login. Returns (fragment params, nonce)."""
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = dict(client_id="spa", response_type="id_token token", redirect_uri=SPA_REDIRECT,
                  scope=scope, state=state, nonce=nonce)
    params.update(extra or {})
    browser = DevLoginBrowser(login=login)
    redirected = browser.authorize(authorization_url(provider.authorization_endpoint, **params),
                                   SPA_REDIRECT)
    answer = response_params(redirected, "fragment")
    assert "error" not in answer, answer
    assert answer.get("state") == state, answer
    return answer, nonce
