"""Credential extraction: the access token of a request.

An adapter translates its framework's request into :class:`RequestFacts`
(what the core reads of a request: method, headers, path, body on demand);
:func:`credential_from` finds the access token in them.  For WSGI,
:class:`EnvironFacts` reads the environ lazily.

RFC 6750 section 2 (the ``Bearer`` scheme of the ``Authorization`` header,
section 2.1; the form body, section 2.2; the query string, section 2.3) and
RFC 9449 section 7.1 (the ``DPoP`` scheme).  :func:`extract_credentials`
finds ``(scheme, token)``, :func:`extract_token` the bearer token alone;
both refuse a malformed header or parameter, and a token sent by more than
one method, with :class:`~oidc_guard.InvalidRequest` (RFC 6750 section 3.1).

:func:`extract_token`, :func:`extract_credentials` and :func:`find_credential`
take a WSGI environ (and are also importable from :mod:`oidc_guard.wsgi`).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Tuple, Union
from urllib.parse import parse_qsl, quote

from ._bounded import memo_function
from .errors import InvalidRequest

__all__ = [
    "extract_token",
    "extract_credentials",
    "find_credential",
    "credential_from",
    "Credential",
    "RequestFacts",
    "Facts",
    "EnvironFacts",
    "request_url",
    "quote_path",
    "DEFAULT_MAX_FORM_BYTES",
]

# The one line logged here (a form body over max_form_bytes) belongs with
# the middleware's other refusal lines: same logger as oidc_guard.wsgi
# (docs/logging.md).
logger = logging.getLogger("oidc_guard.wsgi")

# RFC 6750 section 2.1:
#   b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 7235 section 2.1 / RFC 7230 section 3.2.6: auth-scheme = token
_AUTH_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# A "Bearer" credential further along a comma-joined header value.  Servers
# join repeated Authorization headers with ", " (RFC 7230 section 3.2.2).
_LATER_BEARER = re.compile(r",[ \t]*bearer(?:[ \t]|$)", re.IGNORECASE)
_LATER_DPOP = re.compile(r",[ \t]*dpop(?:[ \t]|$)", re.IGNORECASE)

# RFC 6750 section 2.2: the body has defined semantics for these methods;
# "GET" MUST NOT be used.
_FORM_METHODS = frozenset(("POST", "PUT", "PATCH"))
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
#: The largest form body searched for ``access_token`` unless configured (1 MiB).
DEFAULT_MAX_FORM_BYTES = 1024 * 1024
_DEFAULT_MAX_FORM_BYTES = DEFAULT_MAX_FORM_BYTES


@dataclass(frozen=True)
class Credential:
    """The access token a request authenticated with, as the middleware
    found it: one immutable record per request, put in the environ under
    ``oidc_guard.credential`` so that nothing after the middleware has to
    find the token again (a second extraction can disagree with the first:
    a form body is gone once the application has read it).

    ``scheme``: ``"bearer"`` (RFC 6750) or ``"dpop"`` (RFC 9449 section
    7.1).  ``source``: ``"header"`` (the ``Authorization`` header),
    ``"form"`` (an ``access_token`` body field, RFC 6750 section 2.2) or
    ``"query"`` (RFC 6750 section 2.3).  ``token``: the access token itself;
    a credential, so it is left out of ``repr()`` (RFC 6750 section 5.1:
    tokens must not end up in logs).
    """

    scheme: str
    source: str
    token: str = field(repr=False)


_SOURCES = {"Authorization header": "header", "form body": "form", "query string": "query"}


def _credential(scheme: str, source: str, token: str, _new: Any = object.__new__) -> Credential:
    """``Credential(scheme, source, token)`` for the values found here
    (already checked), without the frozen dataclass's ``__init__``, which
    sets each field through ``object.__setattr__``: half the cost, once per
    request.  The same object: equality, hash and repr are the dataclass's."""
    credential: Credential = _new(Credential)
    fields = credential.__dict__
    fields["scheme"] = scheme
    fields["source"] = source
    fields["token"] = token
    return credential


def _credentials_from_header(value: str, *, dpop: bool) -> Optional[Tuple[str, str]]:
    """``(scheme, token)`` of an ``Authorization`` header value, scheme
    ``"bearer"`` or (when ``dpop``) ``"dpop"``; ``None`` for another scheme.

    RFC 6750 section 2.1 (``Bearer`` 1*SP b64token) and RFC 9449 section 7.1
    (``DPoP`` 1*SP token68, the same characters); schemes are
    case-insensitive (RFC 7235 section 2.1).  A header that names one of
    these schemes but breaks the grammar raises :class:`InvalidRequest`.
    """
    # Fast path for the usual "Bearer <b64token>" (one space, any case).
    if value[6:7] == " " and value[:6].lower() == "bearer" and _B64TOKEN.fullmatch(value, 7):
        return "bearer", value[7:]
    if dpop and value[4:5] == " " and value[:4].lower() == "dpop" and _B64TOKEN.fullmatch(value, 5):
        return "dpop", value[5:]
    # RFC 7230 section 3.2.4: leading and trailing whitespace is not part of
    # the field value.
    value = value.strip(" \t")
    match = _AUTH_SCHEME.match(value)
    scheme = match.group().lower() if match is not None else None
    if scheme != "bearer" and not (dpop and scheme == "dpop"):
        # Another scheme (Basic, Digest, DPoP when disabled, ...) belongs to
        # someone else: not a token of ours, not our error.  Only when a
        # Bearer (or DPoP) credential hides behind it in a comma-joined list
        # do we refuse, because silently ignoring a token the client did
        # send would be wrong.
        if _LATER_BEARER.search(value) or (dpop and _LATER_DPOP.search(value)):
            raise InvalidRequest("the Authorization header carries more than one credential")
        return None
    assert match is not None and scheme is not None
    name = "Bearer" if scheme == "bearer" else "DPoP"
    section = "RFC 6750 section 2.1" if scheme == "bearer" else "RFC 9449 section 7.1"
    rest = value[match.end():]
    if not rest:
        raise InvalidRequest(f"the Authorization header names the {name} scheme but carries no token")
    if rest[0] != " ":
        raise InvalidRequest(f"the {name} scheme must be followed by a space and the token ({section})")
    token = rest.lstrip(" ")
    if not token:
        raise InvalidRequest(f"the Authorization header names the {name} scheme but carries no token")
    if _B64TOKEN.fullmatch(token) is None:
        if " " in token or "," in token or "\t" in token:
            raise InvalidRequest("the Authorization header carries more than one token")
        what = "bearer token" if scheme == "bearer" else "DPoP-bound access token"
        raise InvalidRequest(f"the {what} contains characters {section} does not allow")
    return scheme, token


def _form_pairs(text: str) -> List[Tuple[str, str]]:
    # latin-1 maps every byte (raw or %-escaped) to one character and never
    # fails, so any body or query decodes; a byte outside the b64token
    # alphabet then fails the grammar check below instead of raising here.
    return parse_qsl(text, keep_blank_values=True, encoding="latin-1", errors="strict")


def _token_from_pairs(pairs: List[Tuple[str, str]], where: str) -> Optional[str]:
    """The single ``access_token`` of decoded form/query pairs, or ``None``."""
    found = [value for key, value in pairs if key == "access_token"]
    if not found:
        return None
    if len(found) > 1:
        # RFC 6750 section 3.1: "repeats the same parameter" is invalid_request.
        raise InvalidRequest(f"the access_token parameter appears more than once in the {where}")
    token = found[0]
    if not token:
        raise InvalidRequest(f"the access_token parameter in the {where} is empty")
    if _B64TOKEN.fullmatch(token) is None:
        raise InvalidRequest(f"the access_token in the {where} contains characters RFC 6750 section 2.1 does not allow")
    return token


# --- the request, as an adapter hands it over ------------------------------------


class RequestFacts(Protocol):
    """What the core reads of a request, as an adapter translates it.

    Attributes (plain attributes or properties): ``method`` (``"GET"``),
    ``authorization`` and ``dpop`` (the ``Authorization`` and ``DPoP``
    field values; a field sent several times as one value joined with
    ``", "``, RFC 9110 section 5.3, as WSGI servers do; ``None`` when
    absent), ``content_type`` (``""`` when absent), ``query`` (the raw
    query string, bytes decoded as latin-1), ``root_path`` and ``path``
    (the application's mount point and the path within it, raw bytes
    decoded as latin-1: ``SCRIPT_NAME`` and ``PATH_INFO``; ``path`` is
    what log lines show).

    Methods, called only when needed: ``origin()`` (``scheme://host[:port]``
    the server saw, for the DPoP ``htu`` when no ``public_url`` is set;
    never from ``X-Forwarded-*``), ``form_body(limit)`` (the body of a
    request whose length is known and at most ``limit`` bytes, else
    ``None``; a WSGI adapter puts what it read back), and
    ``client_certificate(header)`` (``(PEM text or None, where it came
    from)``: the value of the request header ``header`` a trusted proxy
    sets, or with ``header=None`` the certificate of the TLS connection).
    """

    @property
    def method(self) -> str: ...
    @property
    def authorization(self) -> Optional[str]: ...
    @property
    def dpop(self) -> Optional[str]: ...
    @property
    def content_type(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def root_path(self) -> str: ...
    @property
    def path(self) -> str: ...
    def origin(self) -> str: ...
    def form_body(self, limit: int) -> Optional[bytes]: ...
    def client_certificate(self, header: Optional[str]) -> Tuple[Optional[str], str]: ...


class Facts:
    """:class:`RequestFacts` from values an adapter already has (an ASGI
    scope and its read body, a Django ``HttpRequest``).

    ``form``: the body as bytes already read (searched when at most the
    limit), or a function ``limit -> bytes or None`` that reads it on
    demand, or ``None``.  ``origin``: ``scheme://host[:port]``, or a
    function computing it.  ``client_cert``: the TLS connection's client
    certificate (PEM).  ``headers``: request headers by lower-case name,
    for ``client_certificate(header)``.
    """

    __slots__ = ("method", "authorization", "dpop", "content_type", "query", "root_path", "path",
                 "_origin", "_form", "_client_cert", "_headers")

    def __init__(
        self,
        method: str = "GET",
        *,
        authorization: Optional[str] = None,
        dpop: Optional[str] = None,
        content_type: str = "",
        query: str = "",
        root_path: str = "",
        path: str = "/",
        origin: Union[str, Callable[[], str]] = "http://localhost",
        form: Union[bytes, Callable[[int], Optional[bytes]], None] = None,
        client_cert: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.method = method
        self.authorization = authorization
        self.dpop = dpop
        self.content_type = content_type
        self.query = query
        self.root_path = root_path
        self.path = path
        self._origin = origin
        self._form = form
        self._client_cert = client_cert
        self._headers = headers

    def __repr__(self) -> str:
        return f"Facts({self.method!r}, path={self.path!r})"  # never the credentials

    def origin(self) -> str:
        return self._origin if isinstance(self._origin, str) else self._origin()

    def form_body(self, limit: int) -> Optional[bytes]:
        form = self._form
        if form is None or isinstance(form, bytes):
            if form is not None and len(form) > limit:
                form_over_limit(len(form), limit)
                return None
            return form
        return form(limit)

    def client_certificate(self, header: Optional[str]) -> Tuple[Optional[str], str]:
        if header is not None:
            return (self._headers or {}).get(header.lower()), f"header {header}"
        return self._client_cert, "TLS client certificate"


class EnvironFacts:
    """:class:`RequestFacts` of a WSGI environ (PEP 3333), read lazily:
    only what the request's authentication needs is looked at."""

    __slots__ = ("environ", "authorization")

    def __init__(self, environ: Dict[str, Any]) -> None:
        self.environ = environ
        self.authorization: Optional[str] = environ.get("HTTP_AUTHORIZATION")

    def __repr__(self) -> str:
        return f"EnvironFacts({self.method!r}, path={self.path!r})"

    @property
    def method(self) -> str:
        value: str = self.environ.get("REQUEST_METHOD", "GET")  # PEP 3333: a str
        return value

    @property
    def dpop(self) -> Optional[str]:
        return self.environ.get("HTTP_DPOP")

    @property
    def content_type(self) -> str:
        return str(self.environ.get("CONTENT_TYPE", ""))

    @property
    def query(self) -> str:
        value: str = self.environ.get("QUERY_STRING", "")  # PEP 3333: a str
        return value

    @property
    def root_path(self) -> str:
        value: str = self.environ.get("SCRIPT_NAME", "")  # PEP 3333: a str
        return value

    @property
    def path(self) -> str:
        value: str = self.environ.get("PATH_INFO", "")  # PEP 3333: a str
        return value

    def origin(self) -> str:
        """``wsgi.url_scheme``://``HTTP_HOST`` (else ``SERVER_NAME``, with
        ``SERVER_PORT`` unless it is the scheme's default): PEP 3333's URL
        reconstruction."""
        environ = self.environ
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST")
        if not host:
            host = environ.get("SERVER_NAME", "localhost")
            port = str(environ.get("SERVER_PORT", ""))
            if port and port != ("443" if scheme == "https" else "80"):
                host = f"{host}:{port}"
        return f"{scheme}://{host}"

    def form_body(self, limit: int) -> Optional[bytes]:
        return _read_form_body(self.environ, limit)

    def client_certificate(self, header: Optional[str]) -> Tuple[Optional[str], str]:
        """The trusted proxy's header when ``header`` is set (and then only
        it), else the WSGI server's ``SSL_CLIENT_CERT``."""
        if header is not None:
            return self.environ.get("HTTP_" + header.upper().replace("-", "_")), f"header {header}"
        return self.environ.get("SSL_CLIENT_CERT"), "SSL_CLIENT_CERT"


# request_url() quotes the request path for every DPoP request: a pure
# function of the path string, memoised for the few paths an API has
# (bounded: 1,024 entries of at most 512 characters; longer paths are quoted
# without the memo).
_QUOTE_MEMO_MAX_PATH = 512


def _quote(path: str) -> str:
    return quote(path.encode("latin-1", "replace"), safe="/!$&'()*+,;=:@~-._")


@memo_function(1024)
def quote_path(path: str) -> str:
    """A request path (raw bytes decoded as latin-1) percent-encoded as a
    URL path; memoised."""
    return _quote(path)


def request_url(facts: RequestFacts, public_url: Optional[str]) -> str:
    """The URL a DPoP proof's ``htu`` must name (RFC 9449 section 4.3 step
    9): ``public_url`` (already checked, no trailing slash) + the quoted
    ``root_path`` + ``path``, or without ``public_url`` the request's own
    ``origin()`` + the same.  ``X-Forwarded-*`` headers
    are never read: any client can send them."""
    path = facts.root_path + facts.path
    quoted = quote_path(path) if len(path) <= _QUOTE_MEMO_MAX_PATH else _quote(path)
    return (public_url if public_url is not None else facts.origin()) + quoted


def is_form_request(facts: RequestFacts) -> bool:
    """A POST, PUT or PATCH with an application/x-www-form-urlencoded body:
    the only requests whose body may carry the token (RFC 6750 section 2.2)."""
    if facts.method.upper() not in _FORM_METHODS:
        return False
    # RFC 6750 section 2.2: Content-Type "application/x-www-form-urlencoded";
    # media types compare case-insensitively and parameters (charset) are
    # ignored (RFC 7231 section 3.1.1.1).
    media_type = facts.content_type.split(";", 1)[0].strip(" \t").lower()
    return media_type == _FORM_MEDIA_TYPE


def form_over_limit(length: int, limit: int) -> None:
    """Log (INFO) that a form body over ``limit`` bytes was not searched."""
    logger.info("form body of %d bytes is over the %d-byte limit; not searched for access_token", length, limit)


def _read_form_body(environ: Dict[str, Any], limit: int) -> Optional[bytes]:
    """Read a form body of known length (at most ``limit`` bytes) and put it
    back into ``wsgi.input`` so the application can still read it.

    Returns ``None``, without touching the stream, when the length is
    unknown (chunked) or over the limit: such a body is not searched for a
    token.
    """
    length_text = environ.get("CONTENT_LENGTH", "")
    if not length_text or not length_text.isdigit() or not length_text.isascii():
        return None
    length = int(length_text)
    if length > limit:
        form_over_limit(length, limit)
        return None
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    chunks = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break  # client sent less than Content-Length; hand on what came
        chunks.append(chunk)
        remaining -= len(chunk)
    body = b"".join(chunks)
    # PEP 3333: the application reads wsgi.input up to CONTENT_LENGTH; give it
    # the very same bytes.  CONTENT_LENGTH stays as the client sent it.
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def extract_token(
    environ: Dict[str, Any],
    *,
    accept_form: bool = False,
    accept_query: bool = False,
    max_form_bytes: int = _DEFAULT_MAX_FORM_BYTES,
) -> Optional[str]:
    """Find the bearer token of a request (RFC 6750 section 2).

    Returns the token, ``None`` when the request carries none, or raises
    :class:`InvalidRequest` for a malformed ``Authorization`` header, a
    malformed or repeated ``access_token`` parameter, or a token sent by more
    than one method (RFC 6750 section 3.1).  The DPoP scheme is not read
    here (see :func:`extract_credentials`).
    """
    found = extract_credentials(environ, dpop=False, accept_form=accept_form, accept_query=accept_query,
                                max_form_bytes=max_form_bytes)
    return None if found is None else found[1]


def extract_credentials(
    environ: Dict[str, Any],
    *,
    dpop: bool = True,
    accept_form: bool = False,
    accept_query: bool = False,
    max_form_bytes: int = _DEFAULT_MAX_FORM_BYTES,
) -> Optional[Tuple[str, str]]:
    """``(scheme, token)`` of a request: scheme ``"bearer"`` (header, or
    form/query when switched on) or ``"dpop"`` (``Authorization: DPoP``,
    RFC 9449 section 7.1; only with ``dpop=True``); ``None`` when there is no
    token; :class:`InvalidRequest` as :func:`extract_token`.
    """
    credential = find_credential(environ, dpop=dpop, accept_form=accept_form, accept_query=accept_query,
                                 max_form_bytes=max_form_bytes)
    return None if credential is None else (credential.scheme, credential.token)


def find_credential(
    environ: Dict[str, Any],
    *,
    dpop: bool = True,
    accept_form: bool = False,
    accept_query: bool = False,
    max_form_bytes: int = _DEFAULT_MAX_FORM_BYTES,
) -> Optional[Credential]:
    """The :class:`Credential` of a WSGI request, ``None`` when it carries
    no token, or :class:`InvalidRequest` as :func:`extract_credentials`."""
    return credential_from(EnvironFacts(environ), dpop=dpop, accept_form=accept_form, accept_query=accept_query,
                           max_form_bytes=max_form_bytes)


def credential_from(
    facts: RequestFacts,
    *,
    dpop: bool = True,
    accept_form: bool = False,
    accept_query: bool = False,
    max_form_bytes: int = _DEFAULT_MAX_FORM_BYTES,
) -> Optional[Credential]:
    """The :class:`Credential` of a request's :class:`RequestFacts`:
    ``None`` when it carries no token; :class:`InvalidRequest` for a
    malformed header or parameter, or a token sent by more than one method
    (RFC 6750 sections 2 and 3.1)."""
    header = facts.authorization
    creds = _credentials_from_header(header, dpop=dpop) if header is not None else None
    if not accept_form and not accept_query:  # the usual configuration: the header alone
        return None if creds is None else _credential(creds[0], "header", creds[1])

    found: List[Tuple[str, str, str]] = []
    if creds is not None:
        found.append(("Authorization header", creds[1], creds[0]))

    if accept_form and is_form_request(facts):
        body = facts.form_body(max_form_bytes)
        if body:
            token = _token_from_pairs(_form_pairs(body.decode("latin-1")), "form body")
            if token is not None:
                found.append(("form body", token, "bearer"))

    if accept_query:
        query = facts.query
        if query:
            # PEP 3333: QUERY_STRING is the raw bytes decoded as latin-1.
            token = _token_from_pairs(_form_pairs(query), "query string")
            if token is not None:
                found.append(("query string", token, "bearer"))

    if len(found) > 1:
        # RFC 6750 section 2: "Clients MUST NOT use more than one method to
        # transmit the token in each request."
        methods = " and ".join(where for where, _, _ in found)
        raise InvalidRequest(f"the access token was sent by more than one method ({methods})")
    if not found:
        return None
    where, token, scheme = found[0]
    return _credential(scheme, _SOURCES[where], token)
