"""Client certificates for the certificate-bound token tests (RFC 8705):
one self-signed EC certificate maker and the forms the tests present it in.

``x5t`` is computed here with hashlib and base64 directly, not with
oidc_guard.mtls, so the library is checked against code that is not its own.
"""

from __future__ import annotations

import base64
import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_cert(cn: str = "client") -> x509.Certificate:
    """A fresh self-signed P-256 certificate for ``cn``, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def x5t(cert: x509.Certificate) -> str:
    """RFC 8705 section 3.1 ``x5t#S256``: base64url(SHA-256(DER)), no padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(der(cert)).digest()).rstrip(b"=").decode()
