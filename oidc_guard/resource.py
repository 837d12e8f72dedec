"""OAuth 2.0 Protected Resource Metadata (RFC 9728), framework-free.

A protected resource configured with its resource identifier
(``resource="https://api.example.com/contacts"``) publishes a JSON document
saying how a client gets a token for it: which authorization servers, how
the token is sent, which scopes exist, whether DPoP is needed.  The
document lives at the URL of RFC 9728 section 3.1 (:func:`metadata_url`)
and every challenge names it (``resource_metadata``, section 5.1), so a
client that knows nothing but the API's URL (an MCP client, for one) can
find the authorization server on its first 401.

:class:`ResourceMetadata` is built once, from the settings the
:class:`~oidc_guard.auth.Authenticator` really enforces (never from a
separate list that could drift), and answers the metadata requests:
:meth:`ResourceMetadata.response`.  Adapters do not call it directly: they
call :meth:`oidc_guard.auth.Authenticator.metadata_response` first for
every request and send what it returns.

Decisions:

* ``GET`` and ``HEAD`` answer 200 ``application/json`` (HEAD without the
  body, with the GET's ``Content-Length``); ``OPTIONS`` is the CORS
  preflight (204); any other method is 405 with ``Allow: GET, HEAD,
  OPTIONS`` (RFC 9110 section 15.5.6) -- the path is the metadata's, so no
  application route can be behind it.
* ``Access-Control-Allow-Origin: *`` on every answer: the document is
  public (it is served to anyone without a token), so a browser-based
  client of any origin may read it; no credentials are ever involved
  (``*`` forbids them), so this opens nothing.  The preflight allows any
  request header (``Access-Control-Allow-Headers: *``): MCP clients send
  ``MCP-Protocol-Version`` with the metadata request.
* ``Cache-Control: public, max-age=3600``: the document changes only when
  the API is redeployed with other settings; clients fetch it on every
  discovery (every 401 of a new client), and an hour bounds how long a
  client may keep an outdated list of authorization servers after such a
  redeployment, while sparing the API a fetch per client per token.
* ``signed_metadata`` (section 2.2) is not produced: the document is
  already served over TLS by the resource it describes, the resource holds
  no signing key of its own (it only verifies), and no client in use
  (the MCP SDKs included) checks a signature over it.  Section 2.2 makes
  the member optional.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Dict, FrozenSet, Iterable, List, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import ConfigurationError

__all__ = [
    "WELL_KNOWN",
    "CACHE_MAX_AGE",
    "MetadataResponse",
    "ResourceMetadata",
    "check_resource",
    "metadata_url",
    "authorization_servers_of",
]

#: RFC 9728 section 3: the well-known URI suffix (registered with IANA).
WELL_KNOWN = "/.well-known/oauth-protected-resource"

#: Seconds a client or cache may reuse the document (see the module doc).
CACHE_MAX_AGE = 3600

_ALLOW = "GET, HEAD, OPTIONS"


class MetadataResponse(NamedTuple):
    """An answer to a metadata request, as every adapter sends it:
    ``status`` (200, 204 or 405), ``headers`` (a new list of ``(name,
    value)``, *with* ``Content-Length``: the body is final) and ``body``
    (bytes; empty for HEAD, OPTIONS).  The same shape as
    :class:`~oidc_guard.errors.ErrorResponse` apart from the body, which is
    already serialised."""

    status: int
    headers: List[Tuple[str, str]]
    body: bytes

    @property
    def status_line(self) -> str:
        """``"200 OK"``: the status as a WSGI status line."""
        return _STATUS_LINES[self.status]

    def wsgi(self) -> Tuple[str, List[Tuple[str, str]], bytes]:
        """``(status_line, headers, body)``."""
        return self.status_line, self.headers, self.body


_STATUS_LINES = {200: "200 OK", 204: "204 No Content", 405: "405 Method Not Allowed"}


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_resource(resource: Any) -> str:
    """``resource`` if it is a usable resource identifier, else
    :class:`~oidc_guard.ConfigurationError`: an absolute ``https`` URL
    (RFC 9728 section 1.2; RFC 8707 section 2: absolute, no fragment),
    ``http`` only on a loopback host (development), ASCII, without user
    information, query or fragment.  RFC 8707 section 2 says a resource
    SHOULD NOT have a query; one is refused here because the document's
    URL would then depend on matching queries too."""
    if not isinstance(resource, str) or not resource:
        raise ConfigurationError("resource must be the API's URL as a str, e.g. 'https://api.example.com/contacts'")
    if not resource.isascii() or any(ch.isspace() or ord(ch) < 0x21 for ch in resource):
        raise ConfigurationError(f"resource must be an ASCII URL without spaces, got {resource[:120]!r}")
    parts = urlsplit(resource)
    host = parts.hostname or ""
    problem = None
    if parts.scheme not in ("https", "http") or not host:
        problem = "an absolute https URL"
    elif parts.scheme == "http" and not _is_loopback(host):
        problem = "an https URL (http only on a loopback host)"
    elif "@" in parts.netloc:
        problem = "a URL without user information"
    elif parts.query or "?" in resource:
        problem = "a URL without a query (RFC 8707 section 2)"
    elif parts.fragment or "#" in resource:
        problem = "a URL without a fragment (RFC 8707 section 2, RFC 9728 section 1.2)"
    if problem is not None:
        raise ConfigurationError(f"resource must be {problem}, got {resource[:120]!r}")
    try:
        parts.port  # a port that is not a number
    except ValueError:
        raise ConfigurationError(f"resource has an invalid port: {resource[:120]!r}") from None
    return resource


def metadata_url(resource: str) -> str:
    """RFC 9728 section 3.1: the well-known suffix goes between the host
    and the path, a terminating ``/`` of the path removed:
    ``https://api.example.com/contacts`` ->
    ``https://api.example.com/.well-known/oauth-protected-resource/contacts``;
    ``https://api.example.com`` (or ``.../``) ->
    ``https://api.example.com/.well-known/oauth-protected-resource``."""
    parts = urlsplit(resource)
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + parts.path.rstrip("/"), "", ""))


def authorization_servers_of(validator: Any) -> Tuple[str, ...]:
    """The issuers ``validator`` trusts, for ``authorization_servers``: a
    :class:`~oidc_guard.TokenValidator`'s ``issuer``; a
    :class:`~oidc_guard.MultiIssuerValidator`'s configured members (the
    ones a ``resolver`` may add later are not known in advance and are not
    listed: a client cannot be told about a tenant before it exists); for
    any other validator its ``issuers`` or ``issuer`` attribute, else
    nothing."""
    static = getattr(validator, "_static", None)  # MultiIssuerValidator: the configured members
    if isinstance(static, tuple):
        found: Iterable[Any] = (getattr(member, "issuer", None) for member in static)
    else:
        issuers = getattr(validator, "issuers", None)
        if isinstance(issuers, (list, tuple)):
            found = issuers
        else:
            found = (getattr(validator, "issuer", None),)
    return tuple(dict.fromkeys(i for i in found if isinstance(i, str) and i))


class ResourceMetadata:
    """The metadata document of one protected resource (RFC 9728 section
    2) and the answers to requests for it.

    ``resource``: the resource identifier (checked by
    :func:`check_resource`), published exactly as given.  The other
    arguments are what the resource accepts: ``authorization_servers``
    (issuer URLs), ``bearer_methods`` (``"header"``, ``"body"``,
    ``"query"``: RFC 6750 section 2), ``scopes_supported`` (``None``:
    member left out), ``dpop_algorithms`` (``None``: DPoP disabled, member
    left out), ``dpop_required`` and ``tls_client_certificate_bound``.
    """

    __slots__ = ("resource", "url", "url_path", "document", "body", "_paths", "_ok_headers", "_options_headers", "_refused")

    def __init__(
        self,
        resource: str,
        *,
        authorization_servers: Sequence[str] = (),
        bearer_methods: Sequence[str] = ("header",),
        scopes_supported: Optional[Sequence[str]] = None,
        dpop_algorithms: Optional[Sequence[str]] = None,
        dpop_required: bool = False,
        tls_client_certificate_bound: bool = False,
    ) -> None:
        self.resource = check_resource(resource)
        #: the document's URL (RFC 9728 section 3.1): what ``resource_metadata`` names
        self.url = metadata_url(resource)
        document: Dict[str, Any] = {"resource": resource}
        if authorization_servers:
            document["authorization_servers"] = list(authorization_servers)
        document["bearer_methods_supported"] = list(bearer_methods)
        if scopes_supported is not None:
            document["scopes_supported"] = list(scopes_supported)
        if dpop_algorithms is not None:
            document["dpop_signing_alg_values_supported"] = list(dpop_algorithms)
            if dpop_required:
                document["dpop_bound_access_tokens_required"] = True
        if tls_client_certificate_bound:
            document["tls_client_certificate_bound_access_tokens"] = True
        #: the document as a dict (a copy is served; changing this changes nothing)
        self.document = document
        #: the document as served: UTF-8 JSON
        self.body = json.dumps(document, indent=2).encode("utf-8") + b"\n"
        # The path as adapters give it: raw (latin-1, PEP 3333, as WSGI and
        # RequestFacts do) or percent-decoded as UTF-8 (ASGI, Django).
        raw = urlsplit(self.url).path
        #: the document's path on the host (for an adapter that routes it)
        self.url_path = raw
        self._paths: FrozenSet[str] = frozenset((raw, unquote(raw), unquote(raw, encoding="latin-1")))
        common = [("Access-Control-Allow-Origin", "*"), ("X-Content-Type-Options", "nosniff")]
        length = ("Content-Length", str(len(self.body)))
        ok = [("Content-Type", "application/json"), ("Cache-Control", f"public, max-age={CACHE_MAX_AGE}"),
              length] + common
        self._ok_headers = ok  # GET, and HEAD (RFC 9110 section 9.3.2: the GET's fields, no body)
        # Fetch standard, CORS preflight: what a later GET may carry.
        self._options_headers = [("Access-Control-Allow-Methods", _ALLOW), ("Access-Control-Allow-Headers", "*"),
                                 ("Access-Control-Max-Age", str(CACHE_MAX_AGE)), ("Allow", _ALLOW),
                                 ("Content-Length", "0")] + common
        refused = json.dumps({"error": "method_not_allowed",
                              "error_description": "the protected resource metadata answers GET and HEAD"}
                             ).encode("utf-8")
        self._refused = (refused, [("Content-Type", "application/json"), ("Allow", _ALLOW),
                                   ("Cache-Control", "no-store"), ("Content-Length", str(len(refused)))] + common)

    def __repr__(self) -> str:
        return f"ResourceMetadata(resource={self.resource!r}, url={self.url!r})"

    @property
    def challenge_params(self) -> Tuple[Tuple[str, str], ...]:
        """``(("resource_metadata", url),)``: the auth-param every challenge
        carries (RFC 9728 section 5.1)."""
        return (("resource_metadata", self.url),)

    def matches(self, path: str) -> bool:
        """``True`` when ``path`` (the request's whole path: the
        application's mount point and the path within it) is the
        document's."""
        return path in self._paths

    def response(self, method: str) -> MetadataResponse:
        """The answer to a request for the document with ``method``."""
        if method == "GET":
            return MetadataResponse(200, list(self._ok_headers), self.body)
        if method == "HEAD":
            return MetadataResponse(200, list(self._ok_headers), b"")
        if method == "OPTIONS":
            return MetadataResponse(204, list(self._options_headers), b"")
        body, headers = self._refused
        return MetadataResponse(405, list(headers), body)
