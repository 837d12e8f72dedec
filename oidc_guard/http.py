"""Fetching the provider's JSON documents (discovery, JWKS) safely.

Rules (DESIGN.md "Network"):

* https only, except loopback hosts (127.0.0.0/8, ::1, localhost) or when
  the application explicitly set ``allow_http=True``.
* One overall deadline per request (``timeout`` seconds): connect and every
  read get only what is left of it, so a server that drips one byte a second
  cannot hold a thread for longer than the timeout.
* A hard body size limit, enforced while reading (a 50 MB answer costs at
  most ``max_bytes`` of memory).
* Redirects are followed only within the same origin (scheme, host, port)
  and at most 3 times: keys must come from where the issuer's document says.
* The answer must be JSON (``application/json`` or a ``+json`` type) holding
  an object.

Every failure becomes a :class:`~oidc_guard.errors.ProviderError` naming the
URL and the reason.  Plain stdlib (``http.client`` + ``ssl``), no proxies from
the environment: keys are fetched directly from the provider.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import urljoin, urlsplit

from .errors import ProviderError

__all__ = ["fetch_json", "fetch", "is_loopback_host", "check_url", "Response", "RawResponse"]

_MAX_REDIRECTS = 3
_CHUNK = 65536
_USER_AGENT = "oidc_guard/0.1 (+resource server)"


def is_loopback_host(host: Optional[str]) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_http: bool, what: str) -> None:
    """Refuse a URL the library must not fetch (scheme rules above)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        if not parts.hostname:
            raise ProviderError(f"{what} {url!r} has no host")
        _no_userinfo(parts, what)
        return
    if parts.scheme == "http":
        if allow_http or is_loopback_host(parts.hostname):
            _no_userinfo(parts, what)
            return
        raise ProviderError(
            f"{what} {url!r} is plain http; use https, or pass allow_http=True "
            "(only for a provider on a network you trust)"
        )
    raise ProviderError(f"{what} {url!r} must be an https URL")


def _no_userinfo(parts: Any, what: str) -> None:
    # user:password@ in a URL would put a credential in every error message
    # that names the URL; credentials go in their own settings.
    if parts.username is not None or parts.password is not None:
        raise ProviderError(f"{what} URL must not carry user name or password (host {parts.hostname!r})")


class RawResponse:
    """What :func:`fetch` returns: status, lower-cased headers and the body
    (empty for statuses other than 200)."""

    __slots__ = ("url", "status", "headers", "body")

    def __init__(self, url: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class Response:
    """What :func:`fetch_json` returns: the decoded JSON object and headers."""

    __slots__ = ("url", "status", "headers", "json")

    def __init__(self, url: str, status: int, headers: Mapping[str, str], body: Dict[str, Any]) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self.json = body


def _connection(url: str, timeout: float, ssl_context: Optional[ssl.SSLContext]) -> Tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    host = parts.hostname
    if not host:  # check_url refused such URLs already
        raise ProviderError(f"URL has no host: {url[:200]!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        ctx = ssl_context or ssl.create_default_context()
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=ctx
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    return conn, path


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def fetch_json(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_http: bool = False,
    what: str = "document",
    ssl_context: Optional[ssl.SSLContext] = None,
) -> Response:
    """GET ``url`` and return its JSON object, or raise ``ProviderError``."""
    raw = fetch(url, timeout=timeout, max_bytes=max_bytes, allow_http=allow_http, what=what,
                ssl_context=ssl_context)
    current, status, headers = raw.url, raw.status, raw.headers
    if status != 200:
        raise ProviderError(f"{what} {current}: HTTP {status}")
    return Response(current, status, headers, decode_json_object(raw, what))


def decode_json_object(raw: RawResponse, what: str) -> Dict[str, Any]:
    """The body of a 200 ``raw`` as a JSON object (content type
    ``application/json`` or ``+json``), or ``ProviderError``."""
    current, body = raw.url, raw.body
    ctype = raw.content_type
    if not (ctype == "application/json" or ctype.endswith("+json")):
        raise ProviderError(f"{what} {current}: expected JSON, got content type {ctype or 'none'!r}")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProviderError(f"{what} {current}: body is not valid JSON ({exc.__class__.__name__})") from None
    except RecursionError:
        raise ProviderError(f"{what} {current}: JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise ProviderError(f"{what} {current}: JSON is not an object")
    return doc


def fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_http: bool = False,
    what: str = "document",
    method: str = "GET",
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
    accept: str = "application/json",
    ssl_context: Optional[ssl.SSLContext] = None,
) -> RawResponse:
    """One HTTP exchange under the module's rules; any status is returned
    (the caller decides what 401 or 503 means), transport failures raise
    ``ProviderError``.

    Redirects: for GET, same-origin ones are followed (at most 3).  A POST
    (introspection) carries a credential and a token, so only 307/308 -- which
    keep method and body (RFC 9110 15.4.8/15.4.9) -- to the same origin are
    followed; any other redirect of a POST is an error.
    """
    check_url(url, allow_http, what)
    deadline = time.monotonic() + timeout
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        status, resp_headers, resp_body = _get_once(
            current, deadline, timeout, max_bytes, what, ssl_context,
            method=method, body=body, headers=headers, accept=accept,
        )
        if status in (301, 302, 303, 307, 308):
            if method != "GET" and status not in (307, 308):
                raise ProviderError(f"{what} {current}: HTTP {status} redirect of a {method} refused")
            location = resp_headers.get("location")
            if not location:
                raise ProviderError(f"{what} {current}: redirect without Location")
            target = urljoin(current, location)
            if not _same_origin(url, target):
                raise ProviderError(
                    f"{what} {url}: redirect to another origin ({urlsplit(target).netloc}) refused"
                )
            current = target
            continue
        break
    else:
        raise ProviderError(f"{what} {url}: too many redirects")
    return RawResponse(current, status, resp_headers, resp_body)


def _get_once(
    url: str,
    deadline: float,
    timeout: float,
    max_bytes: int,
    what: str,
    ssl_context: Optional[ssl.SSLContext],
    *,
    method: str = "GET",
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
    accept: str = "application/json",
) -> Tuple[int, Dict[str, str], bytes]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ProviderError(f"{what} {url}: timed out after {timeout:g} s")
    conn, path = _connection(url, remaining, ssl_context)
    # Socket timeouts bound each read, not the whole exchange: a server that
    # drips one header line per second would restart them forever
    # (slowloris).  A watchdog shuts the socket down at the deadline, which
    # makes any blocked read return at once.
    watchdog = threading.Timer(remaining, _shutdown, args=(conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            request_headers = {"Accept": accept, "User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
            if headers:
                request_headers.update(headers)
            conn.request(method, path, body=body, headers=request_headers)
            if conn.sock is not None:
                conn.sock.settimeout(max(0.001, deadline - time.monotonic()))
            resp = conn.getresponse()
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
            status = resp.status
            if status in (301, 302, 303, 307, 308) or status != 200:
                return status, resp_headers, b""
            declared = resp_headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise ProviderError(f"{what} {url}: body of {declared} bytes exceeds the {max_bytes}-byte limit")
            chunks = []
            size = 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProviderError(f"{what} {url}: timed out after {timeout:g} s")
                if conn.sock is not None:
                    conn.sock.settimeout(left)
                chunk = resp.read1(_CHUNK) if hasattr(resp, "read1") else resp.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise ProviderError(f"{what} {url}: body exceeds the {max_bytes}-byte limit")
                chunks.append(chunk)
            if time.monotonic() >= deadline:  # EOF caused by the watchdog: a cut body
                raise ProviderError(f"{what} {url}: timed out after {timeout:g} s")
            return status, resp_headers, b"".join(chunks)
        except ProviderError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            # socket.timeout / TimeoutError are OSErrors; after the deadline
            # any error is the watchdog cutting the connection.
            if isinstance(exc, (socket.timeout, TimeoutError)) or time.monotonic() >= deadline:
                raise ProviderError(f"{what} {url}: timed out after {timeout:g} s") from None
            if isinstance(exc, ssl.SSLError):
                raise ProviderError(f"{what} {url}: TLS error ({exc.reason or exc})") from None
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
            raise ProviderError(f"{what} {url}: {reason}") from None
    finally:
        watchdog.cancel()
        conn.close()


def _shutdown(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
