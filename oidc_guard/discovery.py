"""Provider metadata (OpenID Connect Discovery 1.0).

The document lives at ``issuer + "/.well-known/openid-configuration"``
(Discovery section 4: a trailing ``/`` of the issuer is removed first).
Section 4.3: the ``issuer`` it names MUST be identical to the issuer the
application configured, else the document is rejected: otherwise one
provider could pass off another's tokens.

The document is fetched on first use, cached for ``max_age`` seconds and
refreshed after that; when a refresh fails (or names another issuer) the
last good document stays in use and the failure is logged.

The introspection endpoint (RFC 7662) is read from that document; when it
names none, from the RFC 8414 authorization server metadata of the same
issuer (``/.well-known/oauth-authorization-server``, section 3.1), which
some providers (django-oauth-toolkit) are the only ones to name it in.  The
same rules hold for that document: fetched with the same timeout and size
limit, and its ``issuer`` must be identical to the configured one (RFC 8414
section 3.3).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from ._text import show as _shown
from .errors import ProviderError
from .http import check_url, decode_json_object, fetch, fetch_json

__all__ = ["ProviderMetadata", "IssuerMismatch", "discovery_url", "issuer_mismatch", "looks_like_discovery_url",
           "authorization_server_metadata_url", "fetch_authorization_server_metadata", "mismatch_hint"]


class IssuerMismatch(ProviderError):
    """The discovery document names another issuer (Discovery 4.3).  A
    ProviderError (503) at request time; the start-up check turns it into
    a ConfigurationError, since the usual cause is the configured value."""

log = logging.getLogger("oidc_guard.discovery")

MAX_DISCOVERY_BYTES = 512 * 1024


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def authorization_server_metadata_url(issuer: str) -> str:
    """RFC 8414 section 3.1: ``/.well-known/oauth-authorization-server`` is
    inserted between the host and the path of the issuer (a terminating
    ``/`` of the path removed first): ``https://as.example/tenant`` ->
    ``https://as.example/.well-known/oauth-authorization-server/tenant``.
    (Unlike OpenID Connect Discovery, which appends it to the path.)"""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", ""))


def fetch_authorization_server_metadata(
    issuer: str, *, timeout: float, max_bytes: int, allow_http: bool
) -> Tuple[Optional[Dict[str, Any]], str]:
    """The RFC 8414 document of ``issuer`` and a note on the outcome:
    ``(document, "")``, or ``(None, why)`` when the provider has none
    (any 4xx answer: there is no such document for us).  ``ProviderError``
    when it cannot be told (unreachable, timeout, 5xx, too large, not a JSON
    object) and ``IssuerMismatch`` when the document names another issuer
    (RFC 8414 section 3.3: it MUST then not be used)."""
    url = authorization_server_metadata_url(issuer)
    what = "authorization server metadata (RFC 8414)"
    raw = fetch(url, timeout=timeout, max_bytes=max_bytes, allow_http=allow_http, what=what)
    if 400 <= raw.status < 500:
        return None, f"{url}: HTTP {raw.status}"
    if raw.status != 200:
        raise ProviderError(f"{what} {raw.url}: HTTP {raw.status}")
    doc = decode_json_object(raw, what)
    # RFC 8414 section 3.3: identical to the issuer the metadata was asked for.
    if doc.get("issuer") != issuer:
        # No spelling hint: the configured issuer is the OpenID document's, so
        # the fault is the provider's (or a document of another tenant).
        raise IssuerMismatch(
            f"the RFC 8414 document {url} names issuer {_shown(doc.get('issuer'), 120)}, not {issuer!r}; they "
            "must be identical (RFC 8414 section 3.3), so it is not used")
    return doc, ""


_WELL_KNOWN = "/.well-known/"


def looks_like_discovery_url(issuer: str) -> Optional[str]:
    """When ``issuer`` is a discovery URL (it has a ``/.well-known/`` path
    segment, which no issuer identifier has: Discovery section 4.1 appends
    it), return the issuer it most likely meant; else None."""
    path = urlsplit(issuer).path
    at = path.find(_WELL_KNOWN)
    if at < 0 and not path.endswith("/.well-known"):
        return None
    return issuer[: issuer.find(path) + (at if at >= 0 else len(path) - len("/.well-known"))]


def issuer_mismatch(url: str, configured: str, found: Any) -> str:
    """The reason, in plain words, why the document at ``url`` naming the
    issuer ``found`` cannot be used for the configured issuer, with a hint
    for the usual typing mistakes.  Discovery 4.3 and RFC 7519 4.1.1 want
    an exact string match, so this only explains; it never relaxes it."""
    message = (f"the discovery document's issuer is {_shown(found, 120)} but the configured issuer is "
               f"{configured!r} (document {url}); they must be identical (OpenID Connect Discovery "
               "section 4.3)")
    return message + mismatch_hint(configured, found)


def mismatch_hint(configured: str, found: Any) -> str:
    """``": remove the trailing slash"`` and the like: what differs between
    the configured issuer and the one a document names ("" when nothing
    more can be said)."""
    if not isinstance(found, str):
        return ": the document has no issuer string"
    if found == configured.rstrip("/"):
        return ": remove the trailing slash"
    if configured == found.rstrip("/"):
        return ": add the trailing slash"
    if found.lower() == configured.lower():
        return ": the letter case differs; copy the issuer exactly as the document writes it"
    differs = []
    try:  # urlsplit itself raises ValueError on some strings ("http://[x")
        mine, theirs = urlsplit(configured), urlsplit(found)
        if mine.scheme != theirs.scheme:
            differs.append(f"the scheme ({_shown(mine.scheme, 40)} vs {_shown(theirs.scheme, 40)})")
        if mine.hostname != theirs.hostname:
            differs.append(f"the host ({_shown(mine.hostname, 80)} vs {_shown(theirs.hostname, 60)}: "
                           "configure the document's spelling, even if both reach the same server)")
        if mine.port != theirs.port:
            differs.append(f"the port ({mine.port} vs {theirs.port})")
        if mine.path.rstrip("/") != theirs.path.rstrip("/"):
            differs.append(f"the path ({_shown(mine.path, 80)} vs {_shown(theirs.path, 60)})")
    except ValueError:  # an unparsable port or host in the document
        differs = []
    if differs:
        return ": they differ in " + ", ".join(differs)
    return ""


class ProviderMetadata:
    """The issuer's discovery document, fetched lazily and cached."""

    def __init__(
        self,
        issuer: str,
        *,
        http_timeout: float,
        allow_http: bool,
        max_age: float = 86400.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.url = discovery_url(issuer)
        self.http_timeout = http_timeout
        self.allow_http = allow_http
        self.max_age = max_age
        self._timer = timer
        self._lock = threading.Lock()
        self._doc: Optional[Dict[str, Any]] = None
        self._fetched_at = 0.0
        self.fetch_count = 0
        #: the RFC 8414 document's URL (read only when this one names no
        #: introspection_endpoint)
        self.oauth_url = authorization_server_metadata_url(issuer)
        self._oauth_lock = threading.Lock()
        self._oauth: Optional[Tuple[Optional[Dict[str, Any]], str]] = None  # (document or None, why none)
        self._oauth_fetched_at = 0.0

    def document(self) -> Dict[str, Any]:
        """The current document; fetches it when absent or older than max_age."""
        doc = self._doc
        if doc is not None and self._timer() - self._fetched_at < self.max_age:
            return doc
        with self._lock:
            doc = self._doc
            if doc is not None and self._timer() - self._fetched_at < self.max_age:
                return doc
            try:
                fresh = self._fetch()
            except ProviderError as exc:
                if doc is None:
                    raise
                log.warning("oidc_guard: refreshing discovery for %s failed: %s; keeping the last good document",
                            self.issuer, exc.description)
                self._fetched_at = self._timer() - self.max_age + 60.0  # try again in a minute
                return doc
            self._doc = fresh
            self._fetched_at = self._timer()
            return fresh

    def _fetch(self) -> Dict[str, Any]:
        self.fetch_count += 1
        resp = fetch_json(
            self.url,
            timeout=self.http_timeout,
            max_bytes=MAX_DISCOVERY_BYTES,
            allow_http=self.allow_http,
            what="discovery document",
            kind="discovery",
        )
        doc = resp.json
        # Discovery 4.3: exact string comparison, no normalisation.
        if doc.get("issuer") != self.issuer:
            raise IssuerMismatch(issuer_mismatch(self.url, self.issuer, doc.get("issuer")))
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise ProviderError(f"discovery document at {self.url} has no jwks_uri")
        check_url(jwks_uri, self.allow_http, "jwks_uri")
        return doc

    def fetch_now(self) -> Dict[str, Any]:
        """Fetch the document now, whatever the cache holds (for the
        start-up check); on success it becomes the current document.
        Raises ProviderError (the issuer mismatch among others)."""
        with self._lock:
            fresh = self._fetch()
            self._doc = fresh
            self._fetched_at = self._timer()
            return fresh

    def jwks_uri(self) -> str:
        uri: str = self.document()["jwks_uri"]
        return uri

    def introspection_endpoint(self, *, fresh: bool = False) -> Tuple[Any, str]:
        """``(endpoint, where)``: the ``introspection_endpoint`` the provider
        names and the URL of the document that names it.  The OpenID
        document first; when it has no such member, the RFC 8414 document
        of the same issuer (fetched now with ``fresh``, else cached like
        this one).  ``(None, why)`` when neither names one; ProviderError
        when the RFC 8414 document cannot be read (IssuerMismatch when it
        names another issuer).  The value is not checked here: see
        :func:`oidc_guard.http.check_url`."""
        doc = self.document()
        if doc.get("introspection_endpoint") is not None:
            return doc["introspection_endpoint"], self.url
        oauth, why = self._authorization_server_document(fresh)
        if oauth is not None and oauth.get("introspection_endpoint") is not None:
            return oauth["introspection_endpoint"], self.oauth_url
        if oauth is not None:
            why = f"{self.oauth_url} names none either"
        return None, f"neither the discovery document at {self.url} nor the RFC 8414 document ({why}) names one"

    def _authorization_server_document(self, fresh: bool) -> Tuple[Optional[Dict[str, Any]], str]:
        with self._oauth_lock:
            known = self._oauth
            if known is not None and not fresh and self._timer() - self._oauth_fetched_at < self.max_age:
                return known
            try:
                result = fetch_authorization_server_metadata(
                    self.issuer, timeout=self.http_timeout, max_bytes=MAX_DISCOVERY_BYTES,
                    allow_http=self.allow_http)
            except ProviderError as exc:
                if known is None or fresh:
                    raise
                log.warning("oidc_guard: refreshing the RFC 8414 document %s failed: %s; keeping the last "
                            "good one", self.oauth_url, exc.description)
                self._oauth_fetched_at = self._timer() - self.max_age + 60.0  # try again in a minute
                return known
            self._oauth = result
            self._oauth_fetched_at = self._timer()
            found = result[0].get("introspection_endpoint") if result[0] is not None else None
            if found is not None:
                # Said once per fetch (the start-up check fetches it): where the endpoint came from.
                log.info("oidc_guard: %s names no introspection_endpoint; using %s from the RFC 8414 "
                         "document %s", self.url, _shown(found, 200), self.oauth_url)
            return result
