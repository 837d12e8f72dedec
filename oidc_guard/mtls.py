"""Certificate-bound access tokens (RFC 8705 section 3).

A token whose ``cnf`` claim has ``x5t#S256`` may be used only over a TLS
connection authenticated with the client certificate whose SHA-256 DER
thumbprint (base64url, no padding) is that value.  The resource server
learns the certificate from whoever terminated TLS:

* the WSGI server itself: ``environ["SSL_CLIENT_CERT"]`` in PEM (Apache
  mod_wsgi with ``SSLOptions +ExportCertData``, uWSGI ``https`` with client
  certificates);
* a TLS-terminating proxy in front, through a request header that only this
  proxy may set (``client_cert_header`` of the middleware).  What proxies send:

  ==========================================  =============================================
  proxy / setting                             form (all accepted here)
  ==========================================  =============================================
  nginx ``$ssl_client_escaped_cert``          URL-encoded PEM
  nginx ``$ssl_client_cert`` (deprecated)     PEM with the line breaks replaced by tabs
  Apache ``%{SSL_CLIENT_CERT}s``              PEM (line breaks become spaces)
  HAProxy ``:%[ssl_c_der,base64]:``           RFC 9440 ``Client-Cert`` byte sequence
  RFC 9440 ``Client-Cert``                    ``:base64(DER):`` (RFC 8941 byte sequence)
  AWS ALB ``X-Amzn-Mtls-Clientcert``          URL-encoded PEM
  Traefik ``X-Forwarded-Tls-Client-Cert``     URL-encoded base64 DER without PEM lines
  ==========================================  =============================================

  Only the first (leaf) certificate is used.  Envoy's
  ``x-forwarded-client-cert`` (key=value list) is not one of them; have Envoy
  set a plain header instead.

The proxy must remove any such header the client sent (or always overwrite
it): a client that can set it can claim any certificate.  This is why the
header is read only when ``client_cert_header`` names it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Any, Optional
from urllib.parse import unquote

from ._b64 import b64url_encode
from .errors import InvalidToken

__all__ = ["certificate_thumbprint", "parse_client_certificate", "check_certificate_binding",
           "MAX_CERT_HEADER_BYTES"]

#: A client certificate header longer than this is refused unread (a leaf
#: certificate is 1-2 KB; PEM and URL encoding add about 60 %).
MAX_CERT_HEADER_BYTES = 16384

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def certificate_thumbprint(der: bytes) -> str:
    """RFC 8705 section 3.1 ``x5t#S256``: base64url(SHA-256(DER))."""
    return b64url_encode(hashlib.sha256(der).digest())


def _b64_der(text: str) -> bytes:
    compact = "".join(text.split())  # line breaks, spaces, tabs
    if not compact or _B64.fullmatch(compact) is None:
        raise ValueError("the certificate is not base64")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the certificate is not valid base64") from None


def parse_client_certificate(value: Any) -> bytes:
    """The DER bytes of the (first) certificate in ``value``: PEM, URL-encoded
    PEM, an RFC 9440 byte sequence ``:base64:``, or bare base64 DER.  The
    bytes must parse as an X.509 certificate.  Raises ``ValueError``."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        raise ValueError("no certificate")
    if len(value) > MAX_CERT_HEADER_BYTES:
        raise ValueError(f"the certificate value is {len(value)} bytes; the limit is {MAX_CERT_HEADER_BYTES}")
    text = value.strip(" \t\r\n")
    if not text:
        raise ValueError("the certificate value is empty")
    if "%" in text:  # nginx $ssl_client_escaped_cert, ALB, Traefik
        text = unquote(text, errors="strict").strip()
    if text.startswith(":") and text.endswith(":") and len(text) > 2:
        der = _b64_der(text[1:-1])  # RFC 9440 section 2.2 / RFC 8941 section 3.3.5
    elif "-----BEGIN" in text:
        match = _PEM.search(text)
        if match is None:
            raise ValueError("the PEM has no complete CERTIFICATE block")
        der = _b64_der(match.group(1))
    else:
        der = _b64_der(text.split(",", 1)[0])  # Traefik: a comma-separated chain, leaf first
    from cryptography import x509  # parsed only to refuse what is not a certificate

    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise ValueError("the bytes are not an X.509 certificate") from None
    return der


def check_certificate_binding(expected: Any, certificate: Optional[str], source: str) -> str:
    """RFC 8705 section 3.1: the certificate's thumbprint must equal
    ``expected`` (the token's ``cnf["x5t#S256"]``).  Returns the thumbprint;
    raises :class:`~oidc_guard.InvalidToken` when the certificate is absent,
    unreadable or another one."""
    if not isinstance(expected, str) or not expected:
        raise InvalidToken('token cnf "x5t#S256" is not a string', reason="binding")
    if certificate is None or certificate == "":
        raise InvalidToken(
            f"token is bound to a client certificate (cnf x5t#S256) but the request has none ({source})"
        , reason="binding")
    try:
        der = parse_client_certificate(certificate)
    except ValueError as exc:
        raise InvalidToken(f"the client certificate ({source}) cannot be read: {exc}", reason="binding") from None
    got = certificate_thumbprint(der)
    if not hmac.compare_digest(got.encode("ascii"), expected.encode("ascii", "replace")):
        raise InvalidToken("token is bound to another client certificate (cnf x5t#S256 mismatch, RFC 8705 section 3)", reason="binding")
    return got
