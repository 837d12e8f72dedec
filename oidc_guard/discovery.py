"""Provider metadata (OpenID Connect Discovery 1.0).

The document lives at ``issuer + "/.well-known/openid-configuration"``
(Discovery section 4: a trailing ``/`` of the issuer is removed first).
Section 4.3: the ``issuer`` it names MUST be identical to the issuer the
application configured, else the document is rejected: otherwise one
provider could pass off another's tokens.

The document is fetched on first use, cached for ``max_age`` seconds and
refreshed after that; when a refresh fails (or names another issuer) the
last good document stays in use and the failure is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlsplit

from .errors import ProviderError
from .http import check_url, fetch_json

__all__ = ["ProviderMetadata", "IssuerMismatch", "discovery_url", "issuer_mismatch", "looks_like_discovery_url"]


class IssuerMismatch(ProviderError):
    """The discovery document names another issuer (Discovery 4.3).  A
    ProviderError (503) at request time; the start-up check turns it into
    a ConfigurationError, since the usual cause is the configured value."""

log = logging.getLogger("oidc_guard.discovery")

MAX_DISCOVERY_BYTES = 512 * 1024


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


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


def _shown(value: Any, limit: int = 200) -> str:
    """A bounded repr of a value the provider's document holds."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def issuer_mismatch(url: str, configured: str, found: Any) -> str:
    """The reason, in plain words, why the document at ``url`` naming the
    issuer ``found`` cannot be used for the configured issuer, with a hint
    for the usual typing mistakes.  Discovery 4.3 and RFC 7519 4.1.1 want
    an exact string match, so this only explains; it never relaxes it."""
    message = (f"the discovery document's issuer is {_shown(found, 120)} but the configured issuer is "
               f"{configured!r} (document {url}); they must be identical (OpenID Connect Discovery "
               "section 4.3)")
    if not isinstance(found, str):
        return message + ": the document has no issuer string"
    if found == configured.rstrip("/"):
        return message + ": remove the trailing slash"
    if configured == found.rstrip("/"):
        return message + ": add the trailing slash"
    if found.lower() == configured.lower():
        return message + ": the letter case differs; copy the issuer exactly as the document writes it"
    mine, theirs = urlsplit(configured), urlsplit(found)
    differs = []
    try:
        if mine.scheme != theirs.scheme:
            differs.append(f"the scheme ({_shown(mine.scheme, 40)} vs {_shown(theirs.scheme, 40)})")
        if mine.hostname != theirs.hostname:
            differs.append(f"the host ({_shown(mine.hostname, 80)} vs {_shown(theirs.hostname, 60)}: "
                           "configure the document's spelling, even if both reach the same server)")
        if mine.port != theirs.port:
            differs.append(f"the port ({mine.port} vs {theirs.port})")
        if mine.path.rstrip("/") != theirs.path.rstrip("/"):
            differs.append(f"the path ({_shown(mine.path, 80)} vs {_shown(theirs.path, 60)})")
    except ValueError:  # an unparsable port in the document
        differs = []
    if differs:
        return message + ": they differ in " + ", ".join(differs)
    return message


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
