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

from .errors import ProviderError
from .http import check_url, fetch_json

__all__ = ["ProviderMetadata", "discovery_url"]

log = logging.getLogger("oidc_guard.discovery")

MAX_DISCOVERY_BYTES = 512 * 1024


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


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
        )
        doc = resp.json
        # Discovery 4.3: exact string comparison, no normalisation.
        if doc.get("issuer") != self.issuer:
            shown = doc.get("issuer")
            if isinstance(shown, str) and len(shown) > 200:
                shown = shown[:200] + "..."
            raise ProviderError(
                f"discovery document at {self.url} names issuer {shown!r}, "
                f"not the configured {self.issuer!r}"
            )
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise ProviderError(f"discovery document at {self.url} has no jwks_uri")
        check_url(jwks_uri, self.allow_http, "jwks_uri")
        return doc

    def jwks_uri(self) -> str:
        return self.document()["jwks_uri"]
