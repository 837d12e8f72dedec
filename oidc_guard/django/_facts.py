"""Translation between Django and the core: a Django ``HttpRequest`` as
:class:`~oidc_guard.credentials.RequestFacts`, and an
:class:`~oidc_guard.errors.ErrorResponse` as a Django ``HttpResponse``."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from django.core.exceptions import DisallowedHost
from django.http import HttpResponse

from ..credentials import form_over_limit
from ..errors import ErrorResponse

__all__ = ["DjangoFacts", "to_response", "DISALLOWED_ORIGIN"]

#: the origin of a request whose Host Django refuses (ALLOWED_HOSTS): no
#: DPoP proof's htu can name it, so such a proof is refused (401), never a 500
DISALLOWED_ORIGIN = "invalid://disallowed-host"


def _raw(text: str) -> str:
    """A path Django decoded (UTF-8) as the core reads paths: its bytes as
    latin-1 characters (what a WSGI ``PATH_INFO`` holds), so that the DPoP
    ``htu`` quotes the UTF-8 bytes the client sent."""
    try:
        return text.encode("utf-8").decode("latin-1")
    except UnicodeEncodeError:  # a lone surrogate: no client sent these bytes
        return text.encode("utf-8", "replace").decode("latin-1")


class DjangoFacts:
    """:class:`~oidc_guard.credentials.RequestFacts` of a Django request
    (WSGI or ASGI), read lazily.

    ``origin()`` follows Django's own ``request.build_absolute_uri()``
    rules: ``request.scheme`` (``https`` when ``SECURE_PROXY_SSL_HEADER``
    names a header the proxy set) and ``request.get_host()`` (the
    ``X-Forwarded-Host`` header only with ``USE_X_FORWARDED_HOST = True``,
    and only a host ``ALLOWED_HOSTS`` allows).  The path is Django's
    (``FORCE_SCRIPT_NAME`` included)."""

    __slots__ = ("request", "meta", "authorization")

    def __init__(self, request: Any) -> None:
        self.request = request
        self.meta = request.META
        self.authorization: Optional[str] = self.meta.get("HTTP_AUTHORIZATION")

    def __repr__(self) -> str:
        return f"DjangoFacts({self.method!r}, path={self.path!r})"  # never the credentials

    @property
    def method(self) -> str:
        return str(self.request.method or "GET")

    @property
    def dpop(self) -> Optional[str]:
        value: Optional[str] = self.meta.get("HTTP_DPOP")
        return value

    @property
    def content_type(self) -> str:
        return str(self.meta.get("CONTENT_TYPE", ""))

    @property
    def query(self) -> str:
        return str(self.meta.get("QUERY_STRING", ""))

    @property
    def root_path(self) -> str:
        full, info = self.request.path, self.request.path_info
        if info and full.endswith(info):
            return _raw(full[: len(full) - len(info)])
        return ""

    @property
    def path(self) -> str:
        return _raw(self.request.path_info or "/")

    def origin(self) -> str:
        request = self.request
        try:
            host = request.get_host()
        except DisallowedHost:
            return DISALLOWED_ORIGIN
        return f"{request.scheme}://{host}"

    def form_body(self, limit: int) -> Optional[bytes]:
        """``request.body`` when its length is known and at most ``limit``;
        Django keeps the body, so the view (and DRF's parsers) read it
        again."""
        text = str(self.meta.get("CONTENT_LENGTH") or "")
        if not text.isascii() or not text.isdigit():
            return None
        length = int(text)
        if length > limit:
            form_over_limit(length, limit)
            return None
        body: bytes = self.request.body
        return body

    def client_certificate(self, header: Optional[str]) -> Tuple[Optional[str], str]:
        if header is not None:
            return self.meta.get("HTTP_" + header.upper().replace("-", "_")), f"header {header}"
        return self.meta.get("SSL_CLIENT_CERT"), "SSL_CLIENT_CERT"


def to_response(refusal: ErrorResponse) -> Any:
    """The Django response of a refusal: its status, headers and JSON body."""
    return raw_response(refusal.status, refusal.headers, refusal.body_bytes())


def raw_response(status: int, headers: Any, body: bytes) -> Any:
    """A Django response with exactly ``status``, ``headers`` and ``body``
    (a refusal, or the RFC 9728 metadata answer)."""
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in headers:
        response[name] = value
    return response
