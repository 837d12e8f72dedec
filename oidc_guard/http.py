"""Fetching the provider's JSON documents (discovery, JWKS) safely.

Rules (docs/security.md, "What is deliberately refused"):

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
  an object, decoded strictly: an object with a duplicate member name, at
  any depth, is refused (RFC 8259 section 4 leaves the outcome to each
  parser: some keep the first, Python keeps the last, so another reader of
  the same document could see ``"active": false`` where we see ``true``).

Every failure becomes a :class:`~oidc_guard.errors.ProviderError` naming the
URL and the reason.  Plain stdlib (``http.client`` + ``ssl``), no proxies from
the environment: keys are fetched directly from the provider.

This is the one fetch layer: every request to the provider (discovery,
the RFC 8414 document, JWKS, introspection, UserInfo) goes through
:func:`fetch` / :func:`fetch_json`, which also record the provider metrics.
No other module opens a connection.  An async caller runs these functions
off its event loop (a thread), behind the same single flight
(``oidc_guard._flight``) as the threads; an async transport, when one is
added, belongs here, beside the blocking one, with the same rules.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urljoin, urlsplit

from . import metrics as _metrics
from ._sharing import check_no_duplicates
from .errors import ProviderError

__all__ = ["fetch_json", "fetch", "is_loopback_host", "check_url", "parse_json_body", "Response", "RawResponse"]

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
    if not isinstance(url, str) or not url:
        raise ProviderError(f"{what} is not a non-empty string")
    # RFC 3986 section 2: a URI is printable ASCII without spaces.  Anything
    # else (a space, CR/LF, non-ASCII, a lone surrogate from a JSON escape)
    # would make http.client fail in its own ways; say it here in words.
    if not url.isascii() or not url.isprintable() or " " in url:
        raise ProviderError(f"{what} {_bounded(url)} contains a character that is not allowed in a URL "
                            "(RFC 3986: printable ASCII; internationalised hosts in their xn-- form)")
    try:
        parts = urlsplit(url)
        parts.port  # an unparsable port raises ValueError
    except ValueError:
        raise ProviderError(f"{what} {_bounded(url)} is not a valid URL") from None
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


def _bounded(url: str) -> str:
    text = repr(url)
    return text if len(text) <= 200 else text[:197] + "..."


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
    kind: Optional[str] = None,
) -> Response:
    """GET ``url`` and return its JSON object, or raise ``ProviderError``.

    ``kind`` (``"discovery"``, ``"jwks"``): count the call in the
    oidc_guard.metrics instruments, when they are on; ``error`` unless a
    JSON object came back with HTTP 200."""
    if kind is not None and _metrics.active is not None:
        started = time.monotonic()
        ok = False
        try:
            response = fetch_json(url, timeout=timeout, max_bytes=max_bytes, allow_http=allow_http, what=what,
                                  ssl_context=ssl_context)
            ok = True
            return response
        finally:
            _metrics.record_provider_call(kind, time.monotonic() - started, ok)
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
        doc = parse_json_body(body)
    except ValueError as exc:
        if str(exc).startswith("duplicate member"):
            # A document two readers may read differently is unusable: the
            # provider is broken (503), whichever member would have won.
            raise ProviderError(f"the {what} response from {current} is refused: it has a {exc} "
                                "(RFC 8259 section 4: parsers disagree on which one counts)") from None
        raise ProviderError(f"the {what} response from {current} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ProviderError(f"the {what} response from {current} is JSON but not an object")
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
    kind: Optional[str] = None,
) -> RawResponse:
    """One HTTP exchange under the module's rules; any status is returned
    (the caller decides what 401 or 503 means), transport failures raise
    ``ProviderError``.

    ``kind`` (``"introspection"``, ``"userinfo"``): count the call in the
    oidc_guard.metrics instruments, when they are on; ``error`` for a
    transport failure or an HTTP 5xx, ``ok`` for any other answer.

    Redirects: for GET, same-origin ones are followed (at most 3).  A POST
    (introspection) carries a credential and a token, so only 307/308 -- which
    keep method and body (RFC 9110 15.4.8/15.4.9) -- to the same origin are
    followed; any other redirect of a POST is an error.
    """
    if kind is not None and _metrics.active is not None:
        started = time.monotonic()
        ok = False
        try:
            raw = fetch(url, timeout=timeout, max_bytes=max_bytes, allow_http=allow_http, what=what, method=method,
                        body=body, headers=headers, accept=accept, ssl_context=ssl_context)
            ok = raw.status < 500
            return raw
        finally:
            _metrics.record_provider_call(kind, time.monotonic() - started, ok)
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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (RFC 8259 section 6)")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # "1e999": not NaN/Infinity, but decodes to inf
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _unique_members(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """``object_pairs_hook``: refuse an object with a duplicate member name
    (RFC 8259 section 4: the names SHOULD be unique, and parsers then
    differ -- first wins, last wins, error).  Called for every object, so
    nested ones (a JWKS's keys, a cnf) are covered too.  The check and its
    text are the JWT path's (oidc_guard._sharing.check_no_duplicates)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        check_no_duplicates(pairs, obj)
    return obj


_json_decoder = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_no_constant,
                                 parse_float=_finite_float)


def parse_json_body(body: bytes) -> Any:
    """Decode a provider's JSON body (RFC 8259) strictly, or raise
    ``ValueError`` with a plain reason.  Every way a body can be malformed
    ends here, never as another exception: not UTF-8 (section 8.1), not
    JSON, NaN / Infinity (Python's json accepts them, RFC 8259 does not),
    a duplicate member name in any object (``"duplicate member 'x'"``),
    an integer too long to convert (Python's int limit), or nesting so deep
    that the decoder runs out of recursion (``"[" * 100000``)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    try:
        return _json_decoder.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # NaN / Infinity / 1e999 (above), too many digits
        message = str(exc)
        if "Exceeds the limit" in message:
            raise ValueError("a number with too many digits") from None
        raise ValueError(message[:100]) from None


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
            # RFC 9110 section 5.3: repeated fields are one comma-separated
            # list (WWW-Authenticate may come as several lines, one per
            # challenge); a dict of the last line would drop the others.
            resp_headers: Dict[str, str] = {}
            for name, value in resp.getheaders():
                name = name.lower()
                resp_headers[name] = resp_headers[name] + ", " + value if name in resp_headers else value
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
