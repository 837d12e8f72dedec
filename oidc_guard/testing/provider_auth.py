"""The development provider's sign-in and token issuance: the login page
and ``/authorize`` (OIDC Core 3.1.2 / 3.2.2: implicit ``id_token token`` /
``id_token``, authorization code with PKCE), ``/token`` (RFC 6749 4.1.3
``authorization_code`` and 4.4 ``client_credentials``, DPoP- and
certificate-bound tokens on request) and the tokens a signed-in user gets.

Both endpoints honour RFC 8707 resource indicators (``resource``: the
access token's ``aud``); ``/authorize`` honours ``acr_values`` and
``max_age`` (OIDC Core 3.1.2.1, the parameters of RFC 9470 step-up), and
the tokens of a signed-in user carry ``acr`` and ``auth_time``.

**Development only, not for production**: hard-coded users, no sessions,
no CSRF protection.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import time
import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Union

from .accounts import ACR_LOA1, resource_problem
from .endpoint import AuthorizationCode, DevProvider, OAuthError, Request, RequestHandler, authenticate_client
from .jose import b64url_encode

__all__ = ["DEV_CLIENT_CERT_HEADER", "get_authorize", "post_authorize", "post_token"]

#: Development provider only: the request header its token endpoint reads a
#: client certificate from (RFC 8705 certificate-bound tokens in tests; the
#: server is plain http, so nothing else could carry it).  Never trust such a
#: header from clients in production.
DEV_CLIENT_CERT_HEADER = "X-Client-Cert"

_HTML_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)

# Usable on a phone: the inputs and the button take the column's full width
# and are at least 44 px high (WCAG 2.5.5 target size); text in the inputs
# is at least 16 px, below which iOS Safari zooms into a focused field.
_LOGIN_STYLE = (
    "body{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em;line-height:1.4}"
    ".warning{background:#fff3cd;border:1px solid #c9a227;padding:.6em}"
    ".error{color:#a00}label{display:block;margin:.8em 0}"
    "code{overflow-wrap:anywhere}"
    "label input,button{display:block;box-sizing:border-box;width:100%;min-height:44px;"
    "font:inherit;font-size:max(16px,1rem);padding:.5em .6em;margin-top:.3em}"
    "button{cursor:pointer}"
)

# Without it a phone lays the page out 980 px wide and shrinks it to fit.
_VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


# -------------------------------------------------------------- /authorize

def get_authorize(handler: RequestHandler, request: Request) -> None:
    _authorize(handler, request.params, request.lists.get("resource", []), request.params_error, form=None)


def post_authorize(handler: RequestHandler, request: Request) -> None:
    form, lists, error = handler.read_form_with_lists()  # the query string is ignored on POST
    _authorize(handler, form, lists.get("resource", []), error, form=form)


# ------------------------------------------------- RFC 8707 resource indicators

def _requested_resources(client: Mapping[str, Any], values: List[str]) -> List[str]:
    """The ``resource`` values of a request, checked (RFC 8707 section 2):
    each an absolute URI without a fragment, and (when the client was
    registered with ``resources``) one of the client's. Duplicates are
    dropped. :class:`OAuthError` ``invalid_target`` otherwise."""
    allowed = client.get("resources")
    out: List[str] = []
    for value in values:
        problem = resource_problem(value)
        if problem:
            raise OAuthError("invalid_target", f"{problem}: {value!r}")
        if allowed is not None and value not in allowed:
            raise OAuthError("invalid_target", f"this client may not ask for the resource {value!r}")
        if value not in out:
            out.append(value)
    return out


def _one_resource(resources: List[str], where: str) -> Optional[str]:
    """This provider issues an access token for one resource at a time (as
    npm oidc-provider does): its ``aud`` is that resource. RFC 8707
    section 2: ``invalid_target`` when the combination asked for cannot be
    issued."""
    if len(resources) > 1:
        raise OAuthError("invalid_target",
                         f"{where}: this development provider issues an access token for one resource at a "
                         "time; send one resource parameter")
    return resources[0] if resources else None


def _audience_claims(resource: Optional[str]) -> Dict[str, Any]:
    """RFC 8707 section 2 / RFC 9068 section 3: the access token for a
    resource is audience-restricted to it; without one, the issuer's
    default audience (nothing to override)."""
    return {} if resource is None else {"aud": resource}


# ------------------------------------------------ acr_values and max_age

def _requested_acrs(params: Mapping[str, str]) -> List[str]:
    """``acr_values`` (OIDC Core 3.1.2.1): space-separated, in order of preference."""
    return list(dict.fromkeys(params.get("acr_values", "").split()))


def _max_age(params: Mapping[str, str]) -> Optional[int]:
    """``max_age`` (OIDC Core 3.1.2.1): a non-negative number of seconds."""
    raw = params.get("max_age")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise OAuthError("invalid_request", "max_age must be a non-negative integer number of seconds")
    return int(raw)


def _reached_acr(user: Mapping[str, Any], requested: List[str]) -> Optional[str]:
    """The ``acr`` of this sign-in: the first of the requested values the
    user can reach (the user's ``acrs``), or, with none requested, the
    user's first (a plain sign-in). None: no requested value is reachable."""
    reachable = list(user.get("acrs") or [ACR_LOA1])
    if not requested:
        return str(reachable[0])
    return next((acr for acr in requested if acr in reachable), None)


def _error_page(handler: RequestHandler, status: int, message: str) -> None:
    page = (
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{_VIEWPORT}"
        "<title>Sign-in error - oidc_guard development provider</title>"
        f"<style>{_LOGIN_STYLE}</style></head><body>"
        "<p class=\"warning\"><strong>Development only, not for production.</strong></p>"
        f"<h1>Sign-in request rejected</h1><p class=\"error\" id=\"error\">{html.escape(message)}</p>"
        "</body></html>"
    )
    handler.respond(status, page.encode("utf-8"), "text/html; charset=utf-8", _HTML_HEADERS)


def _redirect(handler: RequestHandler, uri: str, params: Mapping[str, str], fragment: bool) -> None:
    encoded = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    if fragment:
        location = f"{uri}#{encoded}"
    else:
        location = f"{uri}{'&' if '?' in uri else '?'}{encoded}"
    handler.respond(302, b"", "text/plain", [("Location", location), ("Cache-Control", "no-store")])


def _authorize(handler: RequestHandler, params: Dict[str, str], resource_values: List[str],
               parse_error: Optional[str], form: Optional[Dict[str, str]]) -> None:
    """Authorization endpoint (development only, not for production).

    OIDC Core 3.1.2 / 3.2.2: the client and the exact redirect URI are
    checked first; if either is wrong nothing is redirected anywhere (an
    error page is shown). Other errors go back to the client (RFC 6749
    4.1.2.1 / 4.2.2.1). GET shows the login form; POST checks the
    credentials and answers with a 302 to the redirect URI.

    ``resource`` (RFC 8707 section 2.1, may be repeated for the code flow:
    the code is bound to those resources; the implicit flow takes one, the
    access token's ``aud``); a bad one is ``invalid_target``.
    ``acr_values`` (OIDC Core 3.1.2.1): the sign-in's ``acr`` is the first
    requested value the user can reach, else the answer is
    ``unmet_authentication_requirements`` (OpenID Connect Core Unmet
    Authentication Requirements 1.0). ``max_age``: this provider keeps no
    sessions, so every sign-in is fresh and ``auth_time`` is now; a value
    that is not a non-negative integer is ``invalid_request``.
    """
    provider = handler.provider
    if parse_error:
        _error_page(handler, 400, parse_error)
        return
    client_id = params.get("client_id", "")
    client = provider.client(client_id)
    if client is None:
        _error_page(handler, 400, f"Unknown client_id {client_id!r}.")
        return
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client["redirect_uris"]:
        _error_page(handler, 400, f"redirect_uri {redirect_uri!r} is not registered for client {client_id!r}.")
        return

    response_type = frozenset(params.get("response_type", "").split())
    implicit = response_type in (frozenset({"id_token", "token"}), frozenset({"id_token"}))
    use_fragment = "token" in response_type or "id_token" in response_type
    state = params.get("state")

    def fail(error: str, description: str) -> None:
        out = {"error": error, "error_description": description}
        if state is not None:
            out["state"] = state
        _redirect(handler, redirect_uri, out, use_fragment)

    if not implicit and response_type != frozenset({"code"}):
        fail("unsupported_response_type", "response_type must be 'id_token token', 'id_token' or 'code'")
        return
    grant = "implicit" if implicit else "authorization_code"
    if grant not in client["grant_types"]:
        fail("unauthorized_client", f"client may not use the {grant} flow")
        return
    requested = params.get("scope", "").split()
    if "openid" not in requested:
        fail("invalid_scope", "the openid scope is required")
        return
    allowed = set(client["scopes"]) | {"openid"}
    granted: List[str] = []
    for scope in requested:  # RFC 6749 3.3: the server may grant fewer scopes
        if scope in allowed and scope not in granted:
            granted.append(scope)
    nonce = params.get("nonce")
    if implicit and not nonce:
        fail("invalid_request", "nonce is required for the implicit flow (OIDC Core 3.2.2.1)")
        return
    challenge = params.get("code_challenge")
    if not implicit:
        method = params.get("code_challenge_method", "plain" if challenge else None)
        if challenge is not None and method != "S256":
            fail("invalid_request", "only code_challenge_method S256 is supported")
            return
        if client["secret"] is None and not challenge:
            fail("invalid_request", "public clients must use PKCE (RFC 7636) with S256")
            return
    try:
        resources = _requested_resources(client, resource_values)
        if implicit:
            _one_resource(resources, "implicit flow")
        _max_age(params)
    except OAuthError as exc:
        fail(exc.error, exc.description)
        return
    acr_values = _requested_acrs(params)
    if params.get("prompt") == "none":
        fail("login_required", "this development provider keeps no sessions")
        return

    if form is None:
        _login_page(handler, params, resources, client_id, granted, acr_values, error=None)
        return
    username = form.get("username", "")
    password = form.get("password", "")
    user = provider.user(username)
    expected = (user or {}).get("password", "")
    # Compare in constant time even for unknown users.
    if not (hmac.compare_digest(password.encode("utf-8"), str(expected).encode("utf-8")) and user is not None):
        # The username typed is kept (the user corrects the password);
        # the password never comes back in the page.
        _login_page(handler, params, resources, client_id, granted, acr_values,
                    error="Wrong username or password.", status=200, username=username)
        return

    acr = _reached_acr(user, acr_values)
    if acr is None:
        # OpenID Connect Core Unmet Authentication Requirements 1.0 section 2:
        # the sign-in could not meet the requested acr_values.
        fail("unmet_authentication_requirements",
             f"user {username!r} cannot reach any of the requested acr_values: {' '.join(acr_values)}")
        return
    # No sessions: every sign-in is a fresh authentication, so max_age
    # (OIDC Core 3.1.2.1) is always met and auth_time is now.
    auth_time = int(time.time())
    if implicit:
        out = _issue_user_tokens(
            provider, client_id, user, granted, nonce=nonce, auth_time=auth_time,
            with_access_token="token" in response_type, acr=acr,
            resource=resources[0] if resources else None,
        )
    else:
        code = secrets.token_urlsafe(24)
        provider.authorization_codes.save(code, AuthorizationCode(
            client_id, redirect_uri, user["sub"], granted, nonce, challenge, auth_time, time.time() + 60,
            resources=resources, acr=acr,
        ))
        out = {"code": code}
    if state is not None:
        out["state"] = state
    _redirect(handler, redirect_uri, out, fragment=implicit)


def _login_page(handler: RequestHandler, params: Mapping[str, str], resources: List[str], client_id: str,
                scopes: List[str], acr_values: List[str], *,
                error: Optional[str], status: int = 200, username: str = "") -> None:
    esc = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'
        for name, value in params.items()
        if name not in ("username", "password")
    ) + "".join(f'<input type="hidden" name="resource" value="{esc(value)}">' for value in resources)
    # What the request asks for beyond the scopes, shown to the user.
    asks = ""
    if resources:
        asks += f"<p id=\"resources\">For: <code>{esc(' '.join(resources))}</code></p>"
    if acr_values:
        asks += (f"<p id=\"acr-values\">Sign-in level asked for: <code>{esc(' '.join(acr_values))}</code> "
                 "(this development provider asks for no second factor: each user has a fixed list of levels "
                 "it reaches).</p>")
    error_html = f'<p class="error" id="error" role="alert">{esc(error)}</p>' if error else ""
    # The cursor goes where the user types next: the password once the
    # username is known.
    focus_user, focus_password = ("", " autofocus") if username else (" autofocus", "")
    hint = ""
    if handler.provider.demo_users:
        hint = ("<p>Demo users: <code>alice</code> / <code>alice</code> (levels <code>urn:oidc-guard:loa:1</code> "
                "and <code>urn:oidc-guard:loa:2</code>), <code>bob</code> / <code>bob</code> (level "
                "<code>urn:oidc-guard:loa:1</code>).</p>")
    page = (
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{_VIEWPORT}"
        "<title>Sign in - oidc_guard development provider</title>"
        f"<style>{_LOGIN_STYLE}</style></head><body>"
        "<p class=\"warning\" id=\"dev-warning\"><strong>Development only, not for production.</strong> "
        "This sign-in page is oidc_guard.testing.LocalIssuer, a stand-in OpenID Provider for tests "
        "and demos, with hard-coded users.</p>"
        "<h1>Sign in</h1>"
        f"<p>Application <code>{esc(client_id)}</code> asks for: <code>{esc(' '.join(scopes))}</code></p>"
        f"{asks}{error_html}"
        f"<form method=\"post\" action=\"{esc(handler.provider.issuer_path)}/authorize\">{hidden}"
        "<label>Username <input id=\"username\" name=\"username\" autocomplete=\"username\" "
        f"autocapitalize=\"none\" autocorrect=\"off\" spellcheck=\"false\" value=\"{esc(username)}\"{focus_user}></label>"
        "<label>Password <input id=\"password\" name=\"password\" type=\"password\" "
        f"autocomplete=\"current-password\"{focus_password}></label>"
        "<button id=\"sign-in\" type=\"submit\">Sign in</button></form>"
        f"{hint}</body></html>"
    )
    handler.respond(status, page.encode("utf-8"), "text/html; charset=utf-8", _HTML_HEADERS)


# ------------------------------------------------------------------ /token


def post_token(handler: RequestHandler, request: Request) -> None:
    """Token endpoint (development only, not for production): RFC 6749
    4.4 client_credentials and 4.1.3 authorization_code (+ RFC 7636
    PKCE), with an RFC 8707 ``resource`` (one per request; a bad one, or
    several, is ``invalid_target``). Errors per RFC 6749 5.2, as JSON."""
    no_store = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]  # RFC 6749 5.1
    form, lists, error = handler.read_form_with_lists()
    try:
        if error:
            raise OAuthError("invalid_request", error)
        client_id, client, method = authenticate_client(handler, form)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is missing")
        # RFC 8707 section 2.2: the resource of the token request.
        resource = _one_resource(_requested_resources(client, lists.get("resource", [])), "token request")
        cnf = _sender_constraint(handler)
        if grant_type == "client_credentials":
            body = _client_credentials(handler, client_id, client, form, cnf, resource)
        elif grant_type == "authorization_code":
            body = _authorization_code(handler, client_id, client, form, cnf, resource)
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    except OAuthError as exc:
        handler.respond_oauth_error(exc, no_store)
        return
    handler.respond_json(200, body, no_store)


def _sender_constraint(handler: RequestHandler) -> Optional[Dict[str, str]]:
    """The ``cnf`` claim for the tokens of this token request (development only):

    * a ``DPoP`` header with a valid proof for ``POST <issuer>/token``
      (RFC 9449 section 5; checked by :class:`oidc_guard.dpop.DPoPVerifier`,
      replay included) binds the token to the proof's key: ``cnf.jkt``,
      ``token_type: DPoP``; a bad proof is 400 ``invalid_dpop_proof``;
    * a client certificate (RFC 8705 section 3) in the
      :data:`DEV_CLIENT_CERT_HEADER` header (PEM, URL-encoded PEM or RFC
      9440 ``:base64:``) binds it to that certificate:
      ``cnf["x5t#S256"]``.  **Test-only**: this server speaks plain http
      and believes whoever sends that header.
    """
    from ..dpop import InvalidDPoPProof
    from ..mtls import certificate_thumbprint, parse_client_certificate

    provider = handler.provider
    cnf: Dict[str, str] = {}
    proofs = handler.headers.get_all("DPoP") or []
    if proofs:
        try:
            proof = provider.dpop_verifier().verify("POST", provider.token_endpoint, [("DPoP", p) for p in proofs])
        except InvalidDPoPProof as exc:
            raise OAuthError("invalid_dpop_proof", exc.description) from None
        cnf["jkt"] = proof.jkt
    cert = handler.headers.get(DEV_CLIENT_CERT_HEADER)
    if cert:
        try:
            cnf["x5t#S256"] = certificate_thumbprint(parse_client_certificate(cert))
        except ValueError as exc:
            raise OAuthError("invalid_request", f"client certificate: {exc}") from None
    return cnf or None


def _client_credentials(handler: RequestHandler, client_id: str, client: Mapping[str, Any], form: Mapping[str, str],
                        cnf: Optional[Dict[str, str]] = None, resource: Optional[str] = None) -> Dict[str, Any]:
    provider = handler.provider
    if "client_credentials" not in client["grant_types"] or client.get("secret") is None:
        # RFC 6749 4.4: only confidential clients may use this grant.
        raise OAuthError("unauthorized_client", "client may not use the client_credentials grant")
    allowed = list(client["scopes"])
    if "scope" in form:
        requested = form["scope"].split()
        refused = [s for s in requested if s not in allowed]
        if refused:
            raise OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(refused)}")
        granted = list(dict.fromkeys(requested))
    else:
        granted = allowed  # RFC 6749 3.3: the pre-defined default scope
    claims: Dict[str, Any] = _audience_claims(resource)
    if cnf:
        claims["cnf"] = cnf
    token = provider.mint(
        claims or None,
        subject=client_id if provider.client_token_sub else None,
        scope=_format_scope(provider.scope_format, granted),
        client_id=client_id,
        reference=client.get("access_token_format") == "reference",
    )
    # RFC 9449 section 5: token_type "DPoP" for a DPoP-bound token.
    token_type = "DPoP" if cnf and "jkt" in cnf else "Bearer"
    return {"access_token": token, "token_type": token_type, "expires_in": provider.token_lifetime,
            "scope": " ".join(granted)}


def _authorization_code(handler: RequestHandler, client_id: str, client: Mapping[str, Any], form: Mapping[str, str],
                        cnf: Optional[Dict[str, str]] = None, resource: Optional[str] = None) -> Dict[str, Any]:
    provider = handler.provider
    if "authorization_code" not in client["grant_types"]:
        raise OAuthError("unauthorized_client", "client may not use the authorization_code grant")
    code = form.get("code", "")
    record = provider.authorization_codes.take(code)  # single use (RFC 6749 4.1.2)
    if record is None or record.expires_at < time.time():
        raise OAuthError("invalid_grant", "unknown, used or expired code")
    if record.client_id != client_id:
        raise OAuthError("invalid_grant", "code was issued to another client")
    if form.get("redirect_uri") != record.redirect_uri:  # RFC 6749 4.1.3
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if record.code_challenge is not None:  # RFC 7636 4.6
        verifier = form.get("code_verifier", "")
        computed = b64url_encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
        if not hmac.compare_digest(computed, record.code_challenge):
            raise OAuthError("invalid_grant", "PKCE code_verifier does not match")
    resource = _granted_resource(record, resource)
    user = provider.user_by_subject(record.subject) or {"sub": record.subject}
    out: Dict[str, Any] = dict(_issue_user_tokens(
        provider, client_id, user, record.scopes, nonce=record.nonce, with_access_token=True,
        auth_time=record.auth_time, cnf=cnf, acr=record.acr, resource=resource,
    ))
    if cnf and "jkt" in cnf:
        out["token_type"] = "DPoP"  # RFC 9449 section 5
    out["expires_in"] = provider.token_lifetime
    return out


def _granted_resource(record: AuthorizationCode, requested: Optional[str]) -> Optional[str]:
    """The resource of the access token for this code (RFC 8707 section 2.2):
    the one the token request names, which must be one the authorization
    request named; without one, the authorization request's only resource
    (several: the client must say which). A code whose authorization
    request named no resource gives a token for the default audience
    only: a resource at ``/token`` is then ``invalid_target`` (the user
    never saw it)."""
    if requested is not None:
        if requested not in record.resources:
            raise OAuthError("invalid_target",
                             f"the resource {requested!r} was not named in the authorization request")
        return requested
    if len(record.resources) > 1:
        raise OAuthError("invalid_target", "the authorization request named several resources: send the one "
                                           "this token is for as the resource parameter")
    return record.resources[0] if record.resources else None


# ------------------------------------------------------------ user tokens

def _format_scope(scope_format: str, scopes: List[str]) -> Union[str, List[str]]:
    """The ``scope`` claim: a JSON array for ``scope_format="list"``
    (IdentityServer v3), else a space-delimited string (RFC 9068)."""
    return list(scopes) if scope_format == "list" else " ".join(scopes)


def _issue_user_tokens(provider: DevProvider, client_id: str, user: Mapping[str, Any], scopes: List[str], *,
                      nonce: Optional[str], with_access_token: bool, auth_time: int,
                      cnf: Optional[Mapping[str, str]] = None, acr: Optional[str] = None,
                      resource: Optional[str] = None) -> Dict[str, str]:
    """The ID Token of a signed-in user, and (``with_access_token``) an
    access token (a reference token for clients registered with
    ``access_token_format="reference"``) bound to ``cnf`` when given, for
    ``resource`` (its ``aud``) when given. Both carry ``auth_time`` and
    ``acr`` (OIDC Core 2; RFC 9068 section 2.2.1 for the access token)."""
    result: Dict[str, str] = {}
    access_token = None
    if with_access_token:
        extra_claims: Dict[str, Any] = {"auth_time": auth_time, "amr": ["pwd"]}
        extra_claims.update(_audience_claims(resource))
        if acr is not None:
            extra_claims["acr"] = acr
        if cnf:
            extra_claims["cnf"] = dict(cnf)  # sender-constrained (RFC 9449 / RFC 8705)
        if provider.token_shape == "identityserver3":
            extra_claims["idp"] = "idsrv"  # IdentityServer v3's identity-provider claim
        reference = (provider.client(client_id) or {}).get("access_token_format") == "reference"
        access_token = provider.mint(
            extra_claims,
            subject=user["sub"], scope=_format_scope(provider.scope_format, scopes), client_id=client_id,
            reference=reference,
        )
        result.update({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": str(provider.token_lifetime),
            "scope": " ".join(scopes),
        })
    extra: Dict[str, Any] = {}
    if acr is not None:
        extra["acr"] = acr
    if "profile" in scopes and "name" in user:
        extra["name"] = user["name"]
    if "email" in scopes and "email" in user:
        extra["email"] = user["email"]
    result["id_token"] = provider.mint_id_token(
        client_id, nonce=nonce, access_token=access_token, subject=user["sub"],
        auth_time=auth_time, extra=extra,
    )
    return result
