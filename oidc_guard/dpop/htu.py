"""The ``htu`` comparison of RFC 9449 section 4.3 step 9: an http(s) URL
normalised by RFC 3986 sections 6.2.2 and 6.2.3 (part of oidc_guard.dpop)."""

from __future__ import annotations

import re
from typing import List, Tuple
from urllib.parse import unquote_to_bytes, urlsplit

from .._bounded import memo_function

__all__ = ["normalize_htu"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 section 5.2.4."""
    out: List[bytes] = []
    segments = path.split(b"/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == b".":
            if last:
                out.append(b"")
            continue
        if seg == b"..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append(b"")
            continue
        out.append(seg)
    result = b"/".join(out)
    if path.startswith(b"/") and not result.startswith(b"/"):
        result = b"/" + result
    return result


def normalize_htu(url: str) -> Tuple[str, str, int, bytes]:
    """``(scheme, host, port, path)`` of an http(s) URL, normalised for the
    ``htu`` comparison of RFC 9449 section 4.3 step 9:

    * scheme and host case-insensitive (RFC 3986 6.2.2.1), port default
      filled in (6.2.3: ``https://h`` = ``https://h:443``);
    * empty path is ``/`` (6.2.3); percent-encodings decoded and dot segments
      removed (6.2.2.2-6.2.2.3).  The path is compared decoded because a
      WSGI application only ever sees the decoded path (PEP 3333
      ``PATH_INFO``): two URLs that reach the same route are the same URL;
    * query and fragment ignored (RFC 9449 4.3 step 9).

    Raises ``ValueError`` for anything that is not an absolute http(s) URL
    with a host (user info is refused too).
    """
    if not isinstance(url, str) or not url or len(url) > 4096:
        raise ValueError("not a URL")
    return _normalize_htu(url)


@memo_function(1024)
def _normalize_htu(url: str) -> Tuple[str, str, int, bytes]:
    # Pure function of the string: memoised (a client names the same few
    # URLs, and the request URL repeats), bounded.
    if _CONTROL.search(url) is not None:
        raise ValueError("contains whitespace or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("scheme is not http or https")
    netloc = parts.netloc
    if not netloc or "@" in netloc:
        raise ValueError("no host, or user info in the authority")
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("bad port") from None
    if port is None:
        if netloc.endswith(":"):  # "host:" is allowed by RFC 3986 3.2.3, means default
            pass
        port = _DEFAULT_PORTS[scheme]
    path = unquote_to_bytes(parts.path or "/")
    if not path.startswith(b"/"):
        path = b"/" + path
    return scheme, host.lower(), port, _remove_dot_segments(path)
